#!/usr/bin/env python3
"""virtio benchmarks: virtio-blk and virtio-net, hvmm against QEMU, in one run.

The same guest (build/guest/hvmm-guest.elf, its ring-3 polling drivers) runs on:
  hvmm          hvmm, defaults: ioeventfd notifies, irqfd interrupts, io_uring
  hvmm-exits    hvmm --no-ioeventfd --no-irqfd: every notify exits to hvmm and
                every interrupt is injected by hvmm (KVM_SIGNAL_MSI)
  qemu          QEMU q35, virtio-blk-pci / virtio-net-pci (modern), default aio
  qemu-uring    the same with -drive aio=io_uring (the back end hvmm uses)
virtio-blk: `test=virtio-blk mode=poll blkbench=all` on one raw image file
(written in full first, so both read from the page cache): sequential 1 MiB
and random 4 KiB reads and writes, qd requests in flight, MiB/s and IOPS.
virtio-net: `test=virtio-net-tcp mode=poll|irq netbench=N` behind slirp with a
hostfwd; the host connects and reads N MiB; MiB/s measured on the host side.

Rounds are interleaved (the VMM order rotates each round); medians; ratio
hvmm / qemu (goal >= 1.2). The results section of docs/benchmarks.md between
the virtio-bench markers is rewritten unless --no-doc.
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import cases_net  # noqa: E402  (the TCP client and VM runner of the net test)

BEGIN = "<!-- virtio-bench-results:begin (rewritten by `make bench-virtio`; edit outside the markers) -->"
END = "<!-- virtio-bench-results:end -->"
BENCH = re.compile(r"# bench virtio-blk (\S+) MiB/s=([\d.]+) IOPS=(\d+) qd=(\d+) bs=(\d+) reqs=(\d+) errors=(\d+)")
GOAL = 1.2


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--benchms", type=int, default=1500, help="ms per blk workload")
    ap.add_argument("--qd", type=int, default=16)
    ap.add_argument("--net-mib", type=int, default=64)
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--only", choices=["blk", "net"], default=None)
    return ap.parse_args()


def blk_argv(vmm, a, kernel, image):
    append = f"test=virtio-blk mode=poll blkbench=all benchms={a.benchms} qd={a.qd}"
    if vmm.startswith("hvmm"):
        argv = [f"{a.build}/hvmm", "run", "--timeout", "120", "--mem", "256M", "--serial", "stdio",
                "--disk", image, "--cmdline", append]
        if vmm == "hvmm-exits":
            argv[2:2] = ["--no-ioeventfd", "--no-irqfd"]
        return argv + [kernel]
    drive = f"file={image},if=none,id=d0,format=raw,cache=writeback"
    if vmm == "qemu-uring":
        drive += ",aio=io_uring"
    return ["qemu-system-x86_64", "-M", "q35", "-enable-kvm", "-cpu", "host,-arch-capabilities",
            "-m", "256M", "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel, "-append", append,
            "-drive", drive, "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"]


def run_blk(vmm, a, kernel, image):
    argv = blk_argv(vmm, a, kernel, image)
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=180)
    except subprocess.TimeoutExpired:
        print(f"  {vmm}: blk run timed out", file=sys.stderr)
        return {}
    out = p.stdout.decode(errors="replace")
    res = {}
    for m in BENCH.finditer(out):
        name, mibs, iops, errors = m.group(1), float(m.group(2)), int(m.group(3)), int(m.group(7))
        if errors:
            print(f"  {vmm}: {name}: {errors} request errors: left out", file=sys.stderr)
            continue
        res[name] = (mibs, iops)
    if p.returncode != 1 or len(res) != 4:
        print(f"  {vmm}: blk run status {p.returncode}, {len(res)}/4 results; tail:\n{out[-800:]}"
              f"\n{p.stderr.decode(errors='replace')[-400:]}", file=sys.stderr)
    return res


def run_net(vmm, a, kernel, mode):
    port = cases_net.free_port()
    append = f"test=virtio-net-tcp mode={mode} netport={cases_net.GUEST_PORT} netbench={a.net_mib}"
    if vmm.startswith("hvmm"):
        argv = cases_net.hvmm_argv(f"{a.build}/hvmm", kernel, append, port, 150)
        if vmm == "hvmm-exits":
            argv[2:2] = ["--no-ioeventfd", "--no-irqfd"]
    else:
        argv = cases_net.qemu_argv(kernel, append, port)
    status, out, err, clients = cases_net.run_vm(argv, port, a.net_mib, timeout=170)
    for _, c in clients:
        if c.err is None and c.bad_at is None and c.bulk == a.net_mib << 20 and c.secs > 0:
            return c.bulk / c.secs / (1 << 20)
        print(f"  {vmm}: net run: {c.err or 'bad data'}", file=sys.stderr)
    if not clients:
        print(f"  {vmm}: net run status {status}, no listening line\n{out[-600:]}\n{err[-400:]}",
              file=sys.stderr)
    return None


def med(xs):
    return statistics.median(xs) if xs else None


def main():
    a = parse_args()
    kernel = os.path.abspath(f"{a.build}/guest/hvmm-guest.elf")
    vmms = ["hvmm", "hvmm-exits", "qemu", "qemu-uring"]
    blk = {v: {} for v in vmms}   # vmm -> workload -> [(MiB/s, IOPS)]
    net_vmms = [v for v in vmms if v != "qemu-uring"]
    net = {(v, m): [] for v in net_vmms for m in ("poll", "irq")}
    with tempfile.TemporaryDirectory(prefix="hvmm-bench-") as tmp:
        image = os.path.join(tmp, "disk.img")
        with open(image, "wb") as f:  # written in full: reads come from the page cache, not holes
            chunk = bytes((i * 7) & 255 for i in range(1 << 20))
            for _ in range(a.image_mib):
                f.write(chunk)
        for r in range(a.rounds):
            order = vmms[r % len(vmms):] + vmms[:r % len(vmms)]
            for v in order:
                if a.only in (None, "blk"):
                    for w, val in run_blk(v, a, kernel, image).items():
                        blk[v].setdefault(w, []).append(val)
                if a.only in (None, "net") and v in net_vmms:
                    for mode in ("poll", "irq"):
                        x = run_net(v, a, kernel, mode)
                        if x:
                            net[(v, mode)].append(x)
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Measured {now} with `make bench-virtio` ({a.rounds} interleaved rounds, medians; "
                 f"blk: qd={a.qd}, {a.benchms} ms per workload, {a.image_mib} MiB raw image in the page cache; "
                 f"net: {a.net_mib} MiB guest→host through slirp + hostfwd).")
    lines.append("")
    if a.only in (None, "blk"):
        lines.append("| virtio-blk (ring-3 polling driver) | hvmm | hvmm --no-ioeventfd --no-irqfd | QEMU (aio=threads) "
                     "| QEMU aio=io_uring | hvmm / QEMU | hvmm / QEMU io_uring |")
        lines.append("|---|---|---|---|---|---|---|")
        for w, unit, idx in (("seq-read", "MiB/s", 0), ("seq-write", "MiB/s", 0),
                             ("rand-read", "IOPS", 1), ("rand-write", "IOPS", 1)):
            m = {v: med([x[idx] for x in blk[v].get(w, [])]) for v in vmms}
            cell = {v: ("—" if m[v] is None else f"{m[v]:,.0f} {unit}") for v in vmms}
            rq = f"{m['hvmm'] / m['qemu']:.2f}×" if m["hvmm"] and m["qemu"] else "—"
            ru = f"{m['hvmm'] / m['qemu-uring']:.2f}×" if m["hvmm"] and m["qemu-uring"] else "—"
            lines.append(f"| {w} | {cell['hvmm']} | {cell['hvmm-exits']} | {cell['qemu']} | {cell['qemu-uring']} "
                         f"| {rq} | {ru} |")
        lines.append("")
    if a.only in (None, "net"):
        lines.append("| virtio-net guest→host TCP (slirp) | hvmm | hvmm --no-ioeventfd --no-irqfd | QEMU | hvmm / QEMU |")
        lines.append("|---|---|---|---|---|")
        for mode, label in (("poll", "polling driver"), ("irq", "interrupt-driven driver")):
            m = {v: med(net[(v, mode)]) for v in net_vmms}
            cell = {v: ("—" if m[v] is None else f"{m[v]:.1f} MiB/s") for v in net_vmms}
            r = f"{m['hvmm'] / m['qemu']:.2f}×" if m["hvmm"] and m["qemu"] else "—"
            lines.append(f"| {label} | {cell['hvmm']} | {cell['hvmm-exits']} | {cell['qemu']} | {r} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if not a.no_doc:
        doc = os.path.join(HERE, "..", "docs", "benchmarks.md")
        s = open(doc).read()
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in s and END in s:
            s = s[:s.index(BEGIN)] + block + s[s.index(END) + len(END):]
        else:
            s = s.rstrip("\n") + "\n\n## virtio-blk and virtio-net\n\n" + block + "\n"
        open(doc, "w").write(s)


if __name__ == "__main__":
    main()
