#!/usr/bin/env python3
"""Interrupt latency by path and by the target vCPU's state: the lecture's
table of posted interrupts, measured.

The test kernel's test=irqlat (guest/smp.c) has vCPU 1 send vCPU 0 an IPI,
one at a time, and times each from the sender's TSC just before its ICR
write to the TSC in vCPU 0's handler. vCPU 0 waits either spinning with
interrupts on (the target is *running*) or in HLT (*halted*); with hvmm's
--pcpus 1 a spinning target has no CPU while the sender has it, so it is
*ready*. The paths:

  posted    --irqchip user: the IPI's IRT entry names vCPU 0's PID; the post
            sets its PIR bit and notifies (kick / wake-up) only if SN and ON
            allow; vCPU 0 takes PIR into IRR as it goes to running
  remapped  --irqchip user --posted-interrupts off: hvmm puts the vector in
            vCPU 0's IRR itself and kicks or wakes it, for every interrupt
  split     KVM's in-kernel LAPIC (the ICR write never leaves KVM)
  QEMU      QEMU+KVM with its in-kernel irqchip, the same guest

Exits per interrupt: the difference in exits to hvmm (KVM_RUN returns, all
vCPUs, --stats-json)
between a run of N and one of 3N IPIs, divided by 2N — the setup's exits
cancel out. Medians of the latencies; rounds interleave the configurations.

Usage: make bench-irqlat; where /dev/kvm is missing, that is, in the nested
KVM host with two CPUs (with one, a spinning target and its sender take turns
on it, and every latency is the host kernel's time slice):
  scripts/kvm-host --cpus 2 --timeout 1800 -- python3 bench/irqlat.py --build build
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

PATHS = {
    "posted": ["--irqchip", "user"],
    "remapped": ["--irqchip", "user", "--posted-interrupts", "off"],
    "split": [],
}
STATES = ("running", "ready", "halted")


def args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--hvmm", default=None)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    return ap.parse_args()


def hvmm_run(a, path, state, iters, tmp):
    extra = list(PATHS[path])
    if state == "ready":
        extra += ["--pcpus", "1"]
    js = os.path.join(tmp, "s.json")
    target = "halted" if state == "halted" else "running"
    argv = [a.hvmm, "run", "--cpus", "2", *extra, "--stats-json", js, "--timeout", "120",
            "--cmdline", f"test=irqlat target={target} iters={iters}",
            os.path.join(a.build, "guest", "hvmm-guest.elf")]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    m = re.search(r"# irqlat: target \w+, (\d+) IPIs: median (\d+) ns", p.stdout)
    if not m or p.returncode != 1:
        raise SystemExit(f"{' '.join(argv)}: status {p.returncode}\n{p.stdout[-800:]}\n{p.stderr[-800:]}")
    with open(js) as f:
        st = json.load(f)
    return int(m.group(2)), sum(st["exits_by_reason"].values())


def qemu_run(a, state, iters):
    if state == "ready":
        return None, None
    target = "halted" if state == "halted" else "running"
    argv = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off", "-m", "128M", "-smp", "2",
            "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-enable-kvm", "-cpu", "host",
            "-kernel", os.path.join(a.build, "guest", "hvmm-guest.elf"),
            "-append", f"test=irqlat target={target} iters={iters}"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    m = re.search(r"# irqlat: target \w+, (\d+) IPIs: median (\d+) ns", p.stdout)
    return (int(m.group(2)) if m else None), None


def main():
    a = args()
    a.hvmm = a.hvmm or os.path.join(a.build, "hvmm")
    tmp = tempfile.mkdtemp(prefix="hvmm-irqlat-")
    lat = {}
    ex = {}
    try:
        for r in range(a.rounds):
            for state in STATES:
                for path in PATHS:
                    if state == "ready" and path == "split":
                        continue  # --pcpus needs hvmm's own APICs
                    l1, e1 = hvmm_run(a, path, state, a.iters, tmp)
                    _, e3 = hvmm_run(a, path, state, 3 * a.iters, tmp)
                    lat.setdefault((path, state), []).append(l1)
                    ex.setdefault((path, state), []).append((e3 - e1) / (2 * a.iters))
                if shutil.which("qemu-system-x86_64"):
                    q, _ = qemu_run(a, state, a.iters)
                    if q is not None:
                        lat.setdefault(("QEMU", state), []).append(q)
            print(f"round {r + 1} of {a.rounds} done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = list(PATHS) + ["QEMU"]
    print(f"IPI latency, sender's TSC before the ICR write to the target's handler: median of "
          f"{a.rounds} runs of the per-run medians ({a.iters} IPIs each); exits to hvmm per IPI, all vCPUs")
    print("| target | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for state in STATES:
        cells = []
        for c in cols:
            v = lat.get((c, state))
            if not v:
                cells.append("n/a")
                continue
            cell = f"{statistics.median(v) / 1000:.1f} us"
            e = ex.get((c, state))
            if e:
                cell += f", {statistics.median(e):.1f} exits"
            cells.append(cell)
        print(f"| {state} | " + " | ".join(cells) + " |")
    base = lat.get(("split", "running"))
    if base:
        print("\nratios to split/running (KVM's in-kernel LAPIC, target running):")
        for (c, state), v in sorted(lat.items()):
            print(f"  {c:8} {state:8} {statistics.median(v) / statistics.median(base):6.2f}x")


if __name__ == "__main__":
    main()
