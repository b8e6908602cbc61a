"""kvm-unit-tests, the upstream KVM conformance suite, on hvmm and on QEMU+KVM.

Every x86_64 entry of its x86/unittests.cfg runs on both VMMs (tests/kut.py
says how); a case per group of entries asserts that every test QEMU passes,
hvmm passes too, and prints the table. Where hvmm passes and QEMU fails the
table says so. The suite is built by scripts/kvm-unit-tests.sh (from a
tarball or source directory; nothing of it is committed); without a source
the cases skip with the script's one line.

These cases start their guests themselves, in nested KVM hosts of their own
where /dev/kvm is missing (kvm=False: they run on the outer machine, like
the kvm-host/ cases): a kvm-unit-test has brought the whole nested host down
(the outer QEMU aborted), and a case in the shared nested run would take
every later case with it. Here a lost host costs the run it was doing
(counted as that VMM's failure; QEMU's gets its one more run) and a fresh
host goes on with the rest.
"""
import os
import subprocess
import sys
import time

import kut
from harness import Skip, case, expect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from kvm_mode import kvm_mode  # noqa: E402

BUILD_SCRIPT = os.path.join(HERE, "..", "scripts", "kvm-unit-tests.sh")


def group_of(name, groups):
    """Which case runs a cfg entry: nested virtualization, the vmexit cost
    tests, interrupts (APIC, IOAPIC, SMP, event injection, timers), the rest."""
    if {"svm", "vmx", "nested_exception"} & set(groups) or name.startswith(("svm", "vmx", "ept")):
        return "nested"
    if "vmexit" in groups:
        return "vmexit"
    if {"apic", "hyperv"} & set(groups) or name in ("ioapic", "smptest", "smptest3", "eventinj",
                                                   "kvmclock_test", "tsc", "tsc_adjust"):
        return "interrupts"
    return "cpu"


# Tests QEMU+KVM passes and hvmm does not yet, each with what hvmm lacks.
# They are reported on every run and fail nothing while they fail on hvmm;
# one that starts to pass on hvmm fails its case until it is taken off this
# list, so the list can only shrink. Every other QEMU pass must be an hvmm pass.
KNOWN_GAPS = {
}

_built = {}


def ensure_built(ctx):
    """Build (or find cached) kvm-unit-tests in BUILD/kvm-unit-tests, once."""
    if ctx.build not in _built:
        p = subprocess.run([BUILD_SCRIPT, "--out", os.path.join(ctx.build, "kvm-unit-tests")],
                           capture_output=True, text=True)
        _built[ctx.build] = (p.returncode, (p.stderr.strip().splitlines() or [""])[-1])
    status, line = _built[ctx.build]
    if status == 3:
        raise Skip(line)  # no source on this machine: the script's one line
    expect(status == 0, f"scripts/kvm-unit-tests.sh failed (status {status}): {line}")


def run_group(ctx, group):
    t0 = time.monotonic()
    ensure_built(ctx)
    kut.load_hvmm_features(os.path.join(HERE, ".."))
    run, skipped = kut.select(ctx.build)
    run = [t for t in run if group_of(t.name, t.groups) == group]
    cfg = {t.name: t for t in kut.parse_cfg(os.path.join(ctx.build, "kvm-unit-tests", "x86",
                                                          "unittests.cfg"))}
    skipped = [(n, why) for n, why in skipped if group_of(n, cfg[n].groups) == group]
    res = kut.supervise(run, ctx.build, ctx.hvmm_bin, kvm_mode() == "nested",
                        say=lambda s: print(s, flush=True))
    rows = [(t.name, None, *res[t.name]) for t in run] + [(n, why, None, None) for n, why in skipped]
    for line in kut.table(rows):
        print("      " + line, flush=True)
    total = sum(o.total() for t in run for o in res[t.name])
    print(f"      {len(run)} tests on each VMM, {len(skipped)} not for x86_64/KVM; "
          f"{total:.0f} s of guest runs, {time.monotonic() - t0:.0f} s in all", flush=True)
    missing, closed = [], []
    for t in run:
        q, h = res[t.name]
        if t.name in KNOWN_GAPS:
            if h.verdict == "PASS":
                closed.append(t.name)
            else:
                print(f"      known gap: {t.name} (QEMU {q.verdict}, hvmm {h.verdict}): hvmm lacks "
                      f"{KNOWN_GAPS[t.name]}", flush=True)
        elif q.verdict == "PASS" and h.verdict != "PASS":
            tail = h.tail.strip().splitlines()
            why = "; ".join(h.fails[:3]) or h.why or (tail[-1] if tail else "")
            missing.append(f"{t.name}: hvmm {h.verdict} ({why})")
    expect(not missing, "QEMU+KVM passes, hvmm does not:\n      " + "\n      ".join(missing))
    expect(not closed, f"hvmm passes {', '.join(closed)}: take it off KNOWN_GAPS in tests/cases_kut.py")


def kut_case(group):
    @case(f"kut/{group}", kvm=False, qemu=True)
    def fn(ctx):
        run_group(ctx, group)
    return fn


for _g in ("interrupts", "vmexit", "cpu", "nested"):
    kut_case(_g)
