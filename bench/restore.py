#!/usr/bin/env python3
"""Restore against a cold start: how close does a snapshot restore come to the
least a VMM can do to get a guest running?

One interleaved run, same 128 MiB machine, each timed from fork to reap by
bench/timeit:
  raw          bench/rawkvm --mem 128M outs_0.elf: KVM_CREATE_VM, memory, one
               vCPU, the guest's first instruction exits (the floor)
  hvmm cold    hvmm run --mem 128M outs_0.elf: hvmm's own cold start
  hvmm restore hvmm run --mem 128M --restore STATE: the same VMM restoring a
               snapshot of tests/guests/spinflag.S, taken while it spun on a
               flag the bench then set in the memory file, so the restored
               guest exits at its first loop iteration: exec -> exit is the
               restore plus one exit

Then: hvmm's restore step as --stats reports it (state read and checked, RAM
mapped, KVM and vCPU state, devices), and each hvmm run once under callgrind:
the user-space instructions of the whole process and of the restore step
(snapshot_restore_open + snapshot_restore_apply, inclusive). Instructions do
not depend on the host's speed: they are hvmm's own cost of a restore, where
the wall time in a nested KVM host is mostly the emulated kernel's.

Usage (where /dev/kvm is missing, in the nested KVM host):
  scripts/kvm-host --timeout 1200 -- python3 bench/restore.py --build build
"""
import argparse
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (Timer, EXPECT, callgrind_ir)


def args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-callgrind", action="store_true")
    return ap.parse_args()


def flag_address(elf):
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    m = re.search(r"^([0-9a-f]+) \w flag$", out, re.M)
    if not m:
        raise SystemExit(f"{elf}: no symbol 'flag'")
    return int(m.group(1), 16)


def take_snapshot(hvmm, guest, d):
    """The spinning guest, paused and snapshotted; its flag then set in the
    memory file. Returns the state file's path."""
    sock, state, mem = (os.path.join(d, n) for n in ("s.sock", "g.snap", "g.mem"))
    p = subprocess.Popen([hvmm, "run", "--mem", "128M", "--serial", "none", "--timeout", "120",
                          "--api-sock", sock, guest], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.time() + 60
        while not os.path.exists(sock):
            if p.poll() is not None or time.time() > end:
                raise SystemExit(f"the source did not start: {p.communicate()[1][-500:]!r}")
            time.sleep(0.05)
        time.sleep(0.5)  # well into the loop
        for cmd in (["pause"], ["snapshot", state, mem]):
            q = subprocess.run([hvmm, "ctl", sock] + cmd, capture_output=True, text=True, timeout=120)
            if q.returncode != 0:
                raise SystemExit(f"hvmm ctl {cmd[0]}: {q.stderr.strip()}")
    finally:
        p.terminate()
        p.communicate(timeout=60)
    with open(mem, "r+b") as f:
        f.seek(flag_address(guest))
        f.write(struct.pack("<I", 1))
    return state


def callgrind_restore(cmd):
    """(all instructions, the restore step's) of one run, or None."""
    with tempfile.TemporaryDirectory(prefix="hvmm-callgrind-") as d:
        out = os.path.join(d, "out")
        p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
        if p.returncode != bench.EXPECT:
            print(f"  callgrind: status {p.returncode}:\n{p.stderr[-1500:]}", file=sys.stderr)
            return None
        total = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True,
                             text=True).stdout
    step = 0
    for fn in ("snapshot_restore_open", "snapshot_restore_apply"):
        m = re.search(r"^\s*([\d,]+) \([^)]*\)\s+\S*:" + fn + r" ", ann, re.M)
        step += int(m.group(1).replace(",", "")) if m else 0
    return total, step


def main():
    a = args()
    b = a.build
    hvmm, raw = f"{b}/hvmm", f"{b}/bench/rawkvm"
    outs0, spin = f"{b}/bench/guests/outs_0.elf", f"{b}/bench/guests/spinflag.elf"
    for f in (hvmm, raw, outs0, spin, f"{b}/bench/timeit"):
        if not os.path.exists(f):
            raise SystemExit(f"{f} is missing: make all bench-build")
    d = tempfile.mkdtemp(prefix="hvmm-bench-restore-")
    timer = bench.Timer(b)
    try:
        state = take_snapshot(hvmm, spin, d)
        hv = [hvmm, "run", "--mem", "128M", "--serial", "none"]
        vms = [("raw", "raw KVM, cold start", [raw, "--mem", "128M", outs0]),
               ("cold", "hvmm, cold start", hv + [outs0]),
               ("restore", "hvmm, restore", hv + ["--restore", state])]
        res = {k: {"ns": [], "cpu": [], "kb": []} for k, _, _ in vms}
        for _, _, cmd in vms:  # warm-up, unrecorded; and a wrong status ends the bench
            ns, kb, st, err, cpu = timer.run(cmd, 60)
            if st != bench.EXPECT:
                raise SystemExit(f"{' '.join(cmd)}: status {st}: {err}")
        for r in range(a.rounds):
            for key, _, cmd in vms[r % 3:] + vms[:r % 3]:
                ns, kb, st, err, cpu = timer.run(cmd, 60)
                if st != bench.EXPECT:
                    raise SystemExit(f"{' '.join(cmd)}: status {st}: {err}")
                res[key]["ns"].append(ns)
                res[key]["cpu"].append(cpu)
                res[key]["kb"].append(kb)
        steps = []
        for _ in range(max(5, a.rounds // 3)):
            timer.run(hv + ["--stats", "--restore", state], 60)
            with open(timer.errfile, errors="replace") as f:
                m = re.search(r"restore: ([\d.]+) ms \(.*?RAM mapped ([\d.]+) ms; KVM and vCPU state "
                              r"([\d.]+) ms; (\d+) devices ([\d.]+) ms\)", f.read())
            if m:
                steps.append([float(m.group(i)) for i in (1, 2, 3, 5)] + [int(m.group(4))])
        ir = {}
        if not a.no_callgrind and shutil.which("valgrind"):
            nosc = [hvmm, "run", "--seccomp", "off", "--mem", "128M", "--serial", "none"]
            ir["raw"] = (bench.callgrind_ir([raw, "--mem", "128M", outs0]), None)
            ir["cold"] = (bench.callgrind_ir(nosc + [outs0]), None)
            ir["restore"] = callgrind_restore(nosc + ["--restore", state]) or (None, None)
    finally:
        timer.close()
        shutil.rmtree(d, ignore_errors=True)

    med = statistics.median
    base = med(res["raw"]["ns"])
    print(f"restore vs cold start, 128 MiB, 1 vCPU, {a.rounds} interleaved rounds (medians), "
          f"fork -> exit by bench/timeit:")
    print(f"  {'':22} {'wall':>9} {'x raw':>6} {'CPU':>9} {'peak RSS':>9} {'instructions':>13}")
    for key, label, _ in vms:
        r = res[key]
        irs = ir.get(key, (None, None))[0]
        print(f"  {label:22} {med(r['ns']) / 1e6:7.2f} ms {med(r['ns']) / base:6.2f} "
              f"{med(r['cpu']) / 1e6:6.2f} ms {med(r['kb']) / 1024:6.1f} MiB "
              f"{irs if irs is not None else '-':>13}")
    if steps:
        s = [med(x[i] for x in steps) for i in range(4)]
        print(f"  hvmm's restore step (--stats, median of {len(steps)}): {s[0]:.2f} ms = state read and "
              f"checked, RAM mapped {s[1]:.2f} ms + KVM and vCPU state {s[2]:.2f} ms + "
              f"{steps[0][4]} devices {s[3]:.2f} ms")
    if ir.get("restore", (None, None))[1]:
        print(f"  instructions of the restore step (snapshot_restore_open + _apply, inclusive): "
              f"{ir['restore'][1]}")


if __name__ == "__main__":
    main()
