"""Short libFuzzer runs of the guest-input parsers (fuzz/) inside `make test`.

Each target runs FUZZ_SECONDS (default 7), and race_virtqueue (two threads:
a guest rewriting its rings while the device walks them) RACE_SECONDS (4):
~75 s in all for the ten targets, each from its committed corpus
(fuzz/corpus/TARGET, read only), its generated seeds and a fresh corpus; any
crash, sanitizer report or failed check fails the case and prints the
reproducer's path. Long runs: `make fuzz-run` (10 million executions each).
Missing clang/libFuzzer (or targets not built, as in test-asan's build
directory) skips loudly rather than passing.
"""
import os
import resource
import subprocess

from harness import Skip, case, expect

SECONDS = int(os.environ.get("FUZZ_SECONDS", "7"))
RACE_SECONDS = int(os.environ.get("RACE_SECONDS", "4"))
TARGETS = ("fuzz_virtqueue", "fuzz_pci_config", "fuzz_virtio_pci", "fuzz_iommu", "fuzz_boot",
           "fuzz_fw_cfg", "fuzz_ioapic", "fuzz_uart", "fuzz_virtio_net", "fuzz_virtio_console",
           "fuzz_api", "fuzz_snapshot")
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


def fuzz_case(target):
    @case(f"fuzz/{target}", kvm=False)
    def fn(ctx):
        exe = ctx.path("fuzz", target)
        seeds = ctx.path("fuzz", "seeds", target)
        if not os.path.exists(exe):
            raise Skip(f"!!! {exe} not built: `make fuzz` builds it (needs clang + libclang-rt-14-dev; "
                       "test-asan does not: the targets are sanitized already) !!!")
        corpus = os.path.join(ctx.tmp, f"corpus-{target}")
        crash = ctx.path("fuzz", f"crash-{target}-")  # kept after the run for the reproducer
        os.makedirs(corpus, exist_ok=True)
        argv = [exe, f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
                "-print_final_stats=1", f"-artifact_prefix={crash}", corpus]
        if os.path.isdir(seeds):
            argv.append(seeds)
        committed = os.path.join(CORPUS, target)
        expect(os.path.isdir(committed) and os.listdir(committed),
               f"no committed corpus {committed} (`make fuzz-merge` writes it)")
        argv.append(committed)
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=SECONDS + 60)
        except subprocess.TimeoutExpired:
            p.kill()  # only the fuzzer this case started
            p.communicate()
            raise AssertionError(f"{target} ran past its time budget (killed pid {p.pid})")
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        out = out.decode(errors="replace")
        runs = [l for l in out.splitlines() if l.startswith("stat::number_of_executed_units")]
        expect(p.returncode == 0, f"{target} found a crash (status {p.returncode}); "
               f"reproduce with FUZZ_DEBUG=1 {exe} {crash}*:\n{out[-3000:]}")
        # "Barely ran" is a fuzzer that stopped working, not one the machine
        # gave little CPU (make test runs two nested hosts beside these): at
        # least 1000 inputs, or 100 per CPU second it got (the slowest
        # target, fuzz_snapshot, does ~300).
        n = int(runs[0].split()[-1]) if runs else 0
        expect(n > 1000 or (cpu < SECONDS / 2 and n > 100 * cpu),
               f"{target} barely ran: {n} inputs in {cpu:.1f} s of CPU:\n{out[-1500:]}")
        print(f"    {target}: {n} inputs in {SECONDS} s ({cpu:.1f} s of CPU)")
    return fn


for _t in TARGETS:
    fuzz_case(_t)


@case("fuzz/race_virtqueue", kvm=False)
def t_race(ctx):
    exe = ctx.path("fuzz", "race_virtqueue")
    if not os.path.exists(exe):
        raise Skip(f"!!! {exe} not built: `make fuzz` builds it (needs clang) !!!")
    p = subprocess.run([exe, str(RACE_SECONDS)], capture_output=True, timeout=RACE_SECONDS + 60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    expect(p.returncode == 0, f"race_virtqueue failed (status {p.returncode}):\n{out[-3000:]}")
    print("    " + out.strip().splitlines()[-1])
