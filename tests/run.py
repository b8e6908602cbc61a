#!/usr/bin/env python3
"""hvmm test runner: cmocka unit tests, then guest tests on hvmm and QEMU.

Prints one line per test and ends with `N passed, N failed, N skipped`.
Exit status 0 only when nothing failed.
"""
import argparse
import glob
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from kvm_mode import kvm_mode  # noqa: E402
import importlib  # noqa: E402

# Every tests/cases_*.py registers its cases on import (core first, then by name).
for _mod in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases_*.py")),
                   key=lambda p: (not p.endswith("cases_core.py"), p)):
    importlib.import_module(os.path.basename(_mod)[:-3])


# The unit-test programs that create VMs through /dev/kvm (the rest is pure
# logic): where KVM is nested they run inside the nested host, whole.
UNIT_KVM = {"test_boot_x86", "test_irq", "test_virtio_pci"}


def run_unit(build, counts, pattern, kvm=None):
    """kvm=None: every program; True/False: only those in / not in UNIT_KVM."""
    for exe in sorted(glob.glob(os.path.join(build, "tests", "unit", "test_*"))):
        if not os.access(exe, os.X_OK) or exe.endswith(".d"):
            continue
        name = os.path.basename(exe)
        if pattern and not re.search(pattern, name):
            continue
        if kvm is not None and (name in UNIT_KVM) != kvm:
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        try:
            p = subprocess.run([exe], capture_output=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            fail(counts, f"FAIL unit/{name}: timed out")
            continue
        out = p.stdout.decode(errors="replace")
        seen = 0
        for line in out.splitlines():
            m = re.match(r"(not ok|ok) \d+(?: -)? (?:# SKIP )?(\S+)(.*)", line)
            if not m:
                continue
            seen += 1
            if "# SKIP" in line:
                counts["skipped"] += 1
                print(f"SKIP unit/{name}/{m.group(2)}{m.group(3)}")
            elif m.group(1) == "ok":
                counts["passed"] += 1
                print(f"PASS unit/{name}/{m.group(2)}")
            else:
                fail(counts, f"FAIL unit/{name}/{m.group(2)}{m.group(3)}")
        if p.returncode != 0 and seen == 0 or (p.returncode != 0 and "not ok" not in out):
            err = p.stderr.decode(errors="replace")[-800:]
            fail(counts, f"FAIL unit/{name}: exit status {p.returncode}\n{out[-800:]}{err}")


# Every failure's first line, for the recap above the last line: CI shows a
# run's head and tail, and a FAIL in the middle of 700 lines went unseen.
FAILURES = []
FAILURES_LOCK = threading.Lock()


def fail(counts, line, echo=True):
    """Counts one failure; line is its FAIL line (printed unless echo is
    False: the nested runs' lines are already on their way out)."""
    counts["failed"] += 1
    with FAILURES_LOCK:
        FAILURES.append(line.splitlines()[0][:240])
    if echo:
        print(line, flush=True)


def run_cases(ctx, cases, counts):
    has_qemu = shutil.which("qemu-system-x86_64") is not None
    for name, fn, need_kvm, need_qemu in cases:
        if need_qemu and not has_qemu:
            fail(counts, f"FAIL {name}: qemu-system-x86_64 not installed (make deps installs it)")
            continue
        t = time.time()
        try:
            fn(ctx)
        except harness.Skip as e:
            counts["skipped"] += 1
            print(f"SKIP {name}: {e}", flush=True)
            continue
        except AssertionError as e:
            fail(counts, f"FAIL {name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - a broken case must not end the cases after it
            tb = traceback.format_exc(limit=-3)
            fail(counts, f"FAIL {name}: {type(e).__name__}: {e}\n{tb}")
            continue
        counts["passed"] += 1
        print(f"PASS {name} ({time.time() - t:.2f}s)", flush=True)


RESULT = re.compile(r"^(PASS|FAIL|SKIP) (\S+?):?(?: |$)")
# Seconds without a line from the nested run after which it counts as lost.
# The inner run prints a heartbeat every HEARTBEAT seconds from a thread of
# its own, so silence means the nested host itself stopped (a hung case ends
# at its own time limit, with the heartbeat going on meanwhile); a frozen host
# then costs 80 s and a fresh boot, not seven minutes. Five heartbeats missed
# in a row: inside the host only a CPU that takes no timer interrupt starves
# a thread that long (seen: the frozen hosts' CPUs, with the timer's vector
# pending in IRR for minutes).
SILENCE_LIMIT = 80
HEARTBEAT = 15
HEARTBEAT_LINE = "# nested host alive"


# The cases that need KVM run in two nested KVM hosts at once, each a TCG
# thread of its own: the Linux guests in one, everything else in the other
# (the two halves take about as long). One host ran them all in ~21 minutes,
# close to CI's 30-minute budget with the build, while the machine's other
# core idled once the cases that run out here (fuzzers, kvm-unit-tests
# launching nested hosts of their own) had ended.
NESTED_SHARDS = 2


def shard_of(name, n):
    """Which of n nested hosts runs case name (unit programs: the first).
    Every Linux case goes to the second: moving two of them to the first
    (which starts minutes earlier) had it end last by 150-250 s in both
    full runs after that (2026-12-07)."""
    return 1 if n > 1 and name.startswith("linux/") else 0


# How many times a shard's nested host is started again after it was lost
# (silent past SILENCE_LIMIT, or ended before reporting every case), and the
# latest time into the run a fresh one may still start: one frozen host then
# costs the case it was running, not every case after it.
NESTED_RESTARTS = 4
NESTED_RESTART_BEFORE = 1500


def nested_boot(a, shard, names):
    """One boot of the nested KVM host running the named cases and unit
    programs of a shard (all of them: names None). Yields its output lines;
    ends with (status, lost_by_silence)."""
    here = os.path.dirname(os.path.abspath(__file__))
    # 8G: guest/ram-above-4g gives QEMU a 5 GiB guest, more than the
    # nested host could otherwise commit.
    argv = [os.path.join(here, "..", "scripts", "kvm-host"), "--mem", "8G", "--timeout", str(a.nested_timeout), "--",
            sys.executable, os.path.abspath(__file__), "--inner", "--hvmm", os.path.abspath(a.hvmm),
            "--build", os.path.abspath(a.build), "--shard", f"{shard}/{NESTED_SHARDS}"]
    if names is not None:
        # Exact names: unit programs match by file name, cases by full name.
        argv += ["-k", "^(" + "|".join(re.escape(n.removeprefix("unit/")) for n in names) + ")$"]
    elif a.pattern:
        argv += ["-k", a.pattern]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace", bufsize=1)
    lines = queue.Queue()

    def pump():
        for line in p.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    silent = False
    poked = False
    while True:
        try:
            line = lines.get(timeout=SILENCE_LIMIT / 2)
        except queue.Empty:
            if not poked:
                # Half the limit: kvm-host reports where the CPU is and what
                # its APIC holds, while the host still lives.
                print(f"# the nested KVM host said nothing for {SILENCE_LIMIT // 2} s: asking where it is",
                      flush=True)
                p.send_signal(signal.SIGUSR1)
                poked = True
                continue
            # No case takes this long: the nested host is lost. kvm-host ends
            # its QEMU on SIGTERM.
            print(f"# the nested KVM host said nothing for {SILENCE_LIMIT} s: ending it", flush=True)
            p.terminate()
            silent = True
            # kvm-host says where the nested host's CPUs were on its way out
            end = time.time() + 30
            while time.time() < end:
                try:
                    line = lines.get(timeout=max(0.1, end - time.time()))
                except queue.Empty:
                    break
                if line is None:
                    break
                if line.startswith("kvm-host:"):
                    print(f"# {line}", end="", flush=True)
            break
        if line is None:
            break
        if poked and line.startswith("kvm-host:"):
            line = "# " + line
        elif poked:
            poked = False
            print("# the nested KVM host speaks again", flush=True)
        yield line
    try:
        status = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        status = p.wait()
    yield (status, silent)


def run_nested(a, cases, counts, shard=0):
    """The cases that need KVM of one shard, in the nested KVM host: this
    runner again inside it (--inner), its result lines streamed and counted
    here. When the host is lost, a fresh host runs the rest, the case it
    was running first; lost twice in that case, it fails. A case no inner
    run reported is a failure, never a skip."""
    cases = [c for c in cases if shard_of(c[0], NESTED_SHARDS) == shard]
    # The inner run's order: unit programs first, then the cases as listed.
    units = sorted("unit/" + u for u in UNIT_KVM if shard == 0 and (not a.pattern or re.search(a.pattern, u)))
    order = units + [name for name, *_ in cases]
    if not order:
        return
    seen = set()
    t0 = time.time()
    names = None
    lost_once = None  # the case a host was lost in, run again first on the next
    for attempt in range(NESTED_RESTARTS + 1):
        status, silent = None, False
        for line in nested_boot(a, shard, names):
            if isinstance(line, tuple):
                status, silent = line
                break
            m = RESULT.match(line)
            unit = m and "/".join(m.group(2).split("/")[:2])
            if m and (m.group(2) in order or unit in units):
                seen.add(unit if unit in units else m.group(2))
                if m.group(1) == "FAIL":
                    fail(counts, line, echo=False)
                else:
                    counts[{"PASS": "passed", "SKIP": "skipped"}[m.group(1)]] += 1
            if not re.match(r"^(\d+ passed, \d+ failed, \d+ skipped|# total time |" + HEARTBEAT_LINE + ")",
                            line):
                print(line, end="", flush=True)
        rest = [n for n in order if n not in seen]
        print(f"# nested KVM host {shard}: {len(seen)} of {len(order)} cases done after {time.time() - t0:.1f}s, "
              f"kvm-host status {status}", flush=True)
        if not rest:
            return
        # The inner run goes in order, so the first unreported one is the
        # case the host was lost in. The emulated host freezes now and then
        # whatever runs in it (two in some ten full runs here, each during a
        # Linux guest; kvm-host's report above says where its CPU was): the
        # case runs once more, first on a fresh host, and fails if it is
        # lost again or fails there. The rest follow it.
        how = f"silent for {SILENCE_LIMIT} s" if silent else f"ended, kvm-host status {status}"
        if rest[0] == lost_once:
            fail(counts, f"FAIL {rest[0]}: the nested KVM host was lost during it twice ({how})")
            seen.add(rest[0])
            names = rest[1:]
        else:
            print(f"# nested KVM host {shard} was lost during {rest[0]} ({how}): it runs again, first, "
                  "on a fresh host", flush=True)
            lost_once = rest[0]
            names = rest
        if not names or attempt == NESTED_RESTARTS or time.time() - t0 > NESTED_RESTART_BEFORE:
            break
        print(f"# nested KVM host {shard}: a fresh one for the {len(names)} cases left", flush=True)
    for name in order:
        if name not in seen:
            why = "the nested KVM host was lost during it" if name == lost_once else \
                "not run: the nested KVM host was lost"
            fail(counts, f"FAIL {name}: {why}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hvmm", default="build/hvmm")
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", dest="pattern", help="only tests whose name matches this regex")
    ap.add_argument("--inner", action="store_true",
                    help="inside the nested KVM host: run only the cases that need KVM")
    # The nested run took 1378 s of a 25-minute `make test` here (a clean
    # clone, the machine partly busy); the cap is for a lost nested host,
    # which the silence limit usually ends much sooner.
    ap.add_argument("--nested-timeout", type=int, default=2400,
                    help="seconds the nested host's run may take (default 2400)")
    ap.add_argument("--shard", default="0/1", help="with --inner: run the KVM cases of shard I of N (I/N)")
    a = ap.parse_args()
    try:
        shard, nshards = (int(x) for x in a.shard.split("/"))
        if not 0 <= shard < nshards:
            raise ValueError
    except ValueError:
        sys.exit(f"run.py: --shard {a.shard}: want I/N with 0 <= I < N")
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    t0 = time.time()
    if a.inner:
        def beat():
            # One write(2) of a whole line, beside sys.stdout's buffer (which
            # goes out a line or more at a time): never inside another line.
            while True:
                time.sleep(HEARTBEAT)
                os.write(1, (HEARTBEAT_LINE + "\n").encode())
        threading.Thread(target=beat, daemon=True).start()
    cases = [c for c in harness.CASES if not a.pattern or re.search(a.pattern, c[0])]
    try:
        mode = "direct" if a.inner else kvm_mode()
    except ValueError as e:
        sys.exit(f"run.py: {e}")
    if mode == "nested":
        print("# no usable hardware-virtualized /dev/kvm here (or HVMM_KVM_HOST=nested): the tests that need KVM run "
              "in a nested KVM host (scripts/kvm-host: QEMU TCG emulating AMD-V, Linux KVM inside)",
              flush=True)
    # Unit programs: all of them directly; inside the nested host only those
    # that need KVM, and outside it the others.
    if not a.inner or shard == 0:
        run_unit(a.build, counts, a.pattern, kvm=True if a.inner else (False if mode == "nested" else None))
    ctx = harness.Ctx(a.hvmm, a.build)
    try:
        if a.inner:
            run_cases(ctx, [c for c in cases if c[2] and shard_of(c[0], nshards) == shard], counts)
        elif mode == "direct":
            run_cases(ctx, cases, counts)
        else:
            # The nested host's one TCG thread keeps one CPU busy; the cases
            # that run here (fuzzers, TCG references, launchers of nested
            # hosts of their own) use the other meanwhile.
            kvm_cases = [c for c in cases if c[2]]
            if kvm_cases:
                # What the inner runs cannot fetch themselves (no network).
                here = os.path.dirname(os.path.abspath(__file__))
                fetch = subprocess.run([os.path.join(here, "..", "scripts", "linux-images"), a.build],
                                       capture_output=True, text=True)
                if fetch.returncode != 0:
                    print("# scripts/linux-images failed (the linux/ cases will fail): "
                          f"{fetch.stderr.strip()[-300:]}")
            shards = []

            def start_shard(i):
                c = {"passed": 0, "failed": 0, "skipped": 0}
                t = threading.Thread(target=run_nested, args=(a, kvm_cases, c, i))
                t.start()
                shards.append((t, c))
            # The first nested host at once; the second once the cases here
            # that time something on this machine's CPUs (the fuzzers' runs,
            # the test kernel under QEMU TCG) are done, so they share the
            # two cores with one TCG thread, not two. The kvm-unit-tests
            # cases compare pass/fail only: they run beside both.
            here_cases = [c for c in cases if not c[2]]
            early = [c for c in here_cases if not c[0].startswith("kut/")]
            late = [c for c in here_cases if c[0].startswith("kut/")]
            if kvm_cases:
                start_shard(0)
            run_cases(ctx, early, counts)
            for i in range(1, NESTED_SHARDS if kvm_cases else 0):
                start_shard(i)
            run_cases(ctx, late, counts)
            for t, c in shards:
                t.join()
                for k in counts:
                    counts[k] += c[k]
    finally:
        ctx.cleanup()
    if FAILURES and not a.inner:
        print(f"# {len(FAILURES)} failed:")
        for line in FAILURES:
            print(f"#   {line}")
    print(f"# total time {time.time() - t0:.1f}s")
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
