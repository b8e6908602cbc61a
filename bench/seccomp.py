#!/usr/bin/env python3
"""What the seccomp filters cost: hvmm with them (the default) and with
--seccomp off, side by side in one run, interleaved rounds (the order swaps
every round), medians.

  per exit  bench/timeit on the N-OUT guest and the 0-OUT guest (bench/bench.py's
            images): (t(N) - t(0)) / N, wall and CPU time. Every exit passes the
            vCPU thread's filter once (KVM_RUN's ioctl).
  per I/O   virtio-blk, hvmm's own guest driver (bench/virtio.py's blk workloads:
            sequential 1 MiB and random 4 KiB reads and writes at qd 16 on a raw
            image in the page cache). Each request passes the event loop's filter
            (io_uring_enter, eventfd reads/writes) a few times.

Run it where hvmm runs guests (in the nested KVM host here):
  scripts/kvm-host -- python3 bench/seccomp.py
It prints a markdown table; it writes no file.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import virtio  # noqa: E402

MODES = (("on", []), ("off", ["--seccomp", "off"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--n-exits", type=int, default=20000, choices=(2000, 20000, 200000))
    ap.add_argument("--rounds-exit", type=int, default=15)
    ap.add_argument("--rounds-blk", type=int, default=3)
    ap.add_argument("--benchms", type=int, default=1500)
    ap.add_argument("--qd", type=int, default=16)
    ap.add_argument("--image-mib", type=int, default=256)
    a = ap.parse_args()
    b = a.build
    img0, imgN = f"{b}/bench/guests/outs_0.elf", f"{b}/bench/guests/outs_{a.n_exits}.elf"
    hv = [f"{b}/hvmm", "run", "--mem", "128M", "--serial", "none"]
    timer = bench.Timer(b)
    t = {m: {"0": [], "N": [], "c0": [], "cN": []} for m, _ in MODES}
    try:
        for _, extra in MODES:  # warm-up, unrecorded
            timer.run(hv[:2] + extra + hv[2:] + [img0], 30)
        for r in range(a.rounds_exit):
            for m, extra in (MODES if r % 2 == 0 else MODES[::-1]):
                for key, img, to in (("0", img0, 30), ("N", imgN, 300)):
                    ns, _, status, err, cpu = timer.run(hv[:2] + extra + hv[2:] + [img], to)
                    if status != bench.EXPECT:
                        print(f"  round {r}: --seccomp {m} {key}: status {status}\n{err}", file=sys.stderr)
                        continue
                    t[m][key].append(ns)
                    t[m]["c" + key].append(cpu)
            print(f"  exits: round {r + 1}/{a.rounds_exit}", file=sys.stderr)
    finally:
        timer.close()

    blk = {m: {} for m, _ in MODES}
    kernel = os.path.abspath(f"{b}/guest/hvmm-guest.elf")
    va = argparse.Namespace(build=b, benchms=a.benchms, qd=a.qd)
    with tempfile.TemporaryDirectory(prefix="hvmm-bench-") as tmp:
        image = os.path.join(tmp, "disk.img")
        with open(image, "wb") as f:
            chunk = bytes((i * 7) & 255 for i in range(1 << 20))
            for _ in range(a.image_mib):
                f.write(chunk)
        for r in range(a.rounds_blk):
            for m, extra in (MODES if r % 2 == 0 else MODES[::-1]):
                argv = virtio.blk_argv("hvmm", va, kernel, image)
                argv[2:2] = extra
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=180)
                out = p.stdout.decode(errors="replace")
                for mt in virtio.BENCH.finditer(out):
                    if int(mt.group(7)) == 0:
                        blk[m].setdefault(mt.group(1), []).append((float(mt.group(2)), int(mt.group(3))))
                if p.returncode != 1:
                    print(f"  blk --seccomp {m}: status {p.returncode}\n{p.stderr.decode()[-600:]}",
                          file=sys.stderr)
            print(f"  blk: round {r + 1}/{a.rounds_blk}", file=sys.stderr)

    med = statistics.median
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Measured {now}: `python3 bench/seccomp.py` ({a.rounds_exit} rounds of N=0 and "
          f"N={a.n_exits} per mode, {a.rounds_blk} blk rounds of {a.benchms} ms per workload, qd={a.qd}; "
          f"load average {os.getloadavg()[0]:.2f} at the end).\n")
    print("| per exit (port I/O to hvmm) | --seccomp on | --seccomp off | on − off |")
    print("|---|---:|---:|---:|")
    pe = {}
    for m, _ in MODES:
        if t[m]["N"] and t[m]["0"]:
            pe[m] = ((med(t[m]["N"]) - med(t[m]["0"])) / a.n_exits / 1e3,
                     (med(t[m]["cN"]) - med(t[m]["c0"])) / a.n_exits / 1e3, med(t[m]["0"]) / 1e6)
    if len(pe) == 2:
        for i, label in ((0, "wall, µs"), (1, "CPU, µs")):
            d = pe["on"][i] - pe["off"][i]
            print(f"| {label} | {pe['on'][i]:.3f} | {pe['off'][i]:.3f} | {d:+.3f} ({d / pe['off'][i] * 100:+.1f}%) |")
        d = pe["on"][2] - pe["off"][2]
        print(f"| start→exit (N=0), ms | {pe['on'][2]:.2f} | {pe['off'][2]:.2f} | {d:+.2f} |")
    print()
    print("| virtio-blk (hvmm's ring-3 polling driver) | --seccomp on | --seccomp off | on / off |")
    print("|---|---:|---:|---:|")
    for w, unit, idx in (("seq-read", "MiB/s", 0), ("seq-write", "MiB/s", 0),
                         ("rand-read", "IOPS", 1), ("rand-write", "IOPS", 1)):
        on = [x[idx] for x in blk["on"].get(w, [])]
        off = [x[idx] for x in blk["off"].get(w, [])]
        if on and off:
            print(f"| {w} | {med(on):,.0f} {unit} | {med(off):,.0f} {unit} | {med(on) / med(off):.3f} |")
        else:
            print(f"| {w} | {len(on)} runs | {len(off)} runs | — |")


if __name__ == "__main__":
    main()
