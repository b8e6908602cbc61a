#!/usr/bin/env python3
"""Linux with its own drivers: hvmm against QEMU microvm and QEMU q35, in one
interleaved run, same kernel and images (scripts/linux-images).

    bench/linux.py [--build DIR] [--rounds N] [--io-rounds N] [--io-seconds S] [--skip-io]
                   [--io-jobs REGEX] [--json FILE]

1. Start to /init: the whole VMM process, from exec to its exit, with
   hvmm.exit-at-init on the command line (the initramfs's /init writes 0 to
   isa-debug-exit at once; the VMM exits with status 1). N rounds,
   interleaved; medians, and each VMM's KVM exits during the boot (KVM's own
   counters in debugfs, so the same count for every VMM). Twice: the bzImage
   (decompressed by hvmm, by the guest itself on QEMU) and the vmlinux ELF
   through its PVH entry on all three (no decompression anywhere).
2. virtio-blk with fio in the guest (O_DIRECT, libaio, on a second disk):
   4 KiB random read and write at queue depth 1 and 32, 1 MiB sequential
   read and write; IOPS or MiB/s, and KVM exits (that VM's own, from its
   debugfs directory) and guest interrupts per I/O.
3. virtio-net with iperf3: the guest serves, the host connects through a host
   forward (user networking on all three), both directions.
The three I/O guests run side by side and every job goes round them in turn,
--io-rounds times (the order rotating), so host load hits all alike; medians.
--rounds 0 leaves out part 1, --skip-io parts 2 and 3; --io-jobs REGEX runs
only the I/O jobs whose names match (e.g. 'net' or 'qd1').

Prints tables with hvmm's ratio to each QEMU machine type. Numbers are only
comparable within one run; in the nested KVM host everything is emulated,
so quote the ratios.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import free_port  # noqa: E402
from linuxvm import PROMPT, LinuxVM  # noqa: E402

MEM = "512M"
DEBUGFS = "/sys/kernel/debug/kvm"
VMMS = ("hvmm", "microvm", "q35")


def kvm_counters():
    """KVM's global counters (debugfs): exits and injected interrupts. The
    nested KVM host does not mount debugfs: mount it (we are root there)."""
    if not os.path.isdir(DEBUGFS) and os.geteuid() == 0:
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    for k in ("exits", "irq_injections", "io_exits", "mmio_exits", "halt_exits"):
        try:
            with open(os.path.join(DEBUGFS, k)) as f:
                out[k] = int(f.read())
        except OSError:
            return None
    return out


def delta(a, b):
    return {k: b[k] - a[k] for k in a} if a and b else None


def argv_for(vmm, a, cmdline, extra_disk=None, net_port=None, cpus=1, initrd="boot.cpio",
             kernel="vmlinuz", vm_timeout=600, stats=False):
    """boot.cpio for the boot times; rootfs.cpio (fio and iperf3 in it) for I/O;
    stats: hvmm with --stats (QEMU has no such report)."""
    L = os.path.join(a.build, "linux")
    if vmm == "hvmm":
        argv = [os.path.join(a.build, "hvmm"), "run", *(["--stats"] if stats else []),
                "--timeout", str(vm_timeout), "--mem", MEM, "--cpus", str(cpus),
                "--kernel", os.path.join(L, kernel), "--initrd", os.path.join(L, initrd),
                "--cmdline", cmdline]
        if extra_disk:
            argv += ["--disk", extra_disk]
        if net_port:
            argv += ["--network", f"user,hostfwd=tcp:127.0.0.1:{net_port}-:5201"]
        return argv
    machine = "microvm,x-option-roms=off,acpi=on,rtc=on,pcie=on" if vmm == "microvm" else "q35"
    # Inside the nested KVM host QEMU's guests lose the TSC-deadline timer,
    # which fires late or never there (README, the nested host): hvmm's
    # guests never have it with KVM's APIC, so both tick the same way.
    cpu = "host,-arch-capabilities" + (",-tsc-deadline" if os.environ.get("HVMM_IN_KVM_HOST") == "1" else "")
    argv = ["qemu-system-x86_64", "-M", machine, "-enable-kvm", "-cpu", cpu,
            "-m", MEM, "-smp", str(cpus), "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-kernel", os.path.join(L, kernel), "-initrd", os.path.join(L, initrd), "-append", cmdline]
    if extra_disk:
        argv += ["-drive", f"file={extra_disk},format=raw,if=none,id=d1", "-device", "virtio-blk-pci,drive=d1"]
    if net_port:
        argv += ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{net_port}-:5201",
                 "-device", "virtio-net-pci,netdev=n0"]
    return argv


def exits_to_prompt(a, v):
    """KVM's exits from start to the shell prompt. KVM's debugfs totals
    cover the VMs that exist, so they are read while the VM still runs."""
    c0 = kvm_counters()
    with LinuxVM(argv_for(v, a, "console=ttyS0 panic=-1 quiet"), 300) as vm:
        vm.expect(PROMPT, 240, what=f"{v}: the prompt")
        d = delta(c0, kvm_counters())
    return d["exits"] if d else None


# The same kernel two ways: the bzImage every VMM decompresses (hvmm in the
# host, QEMU's guest in itself: ~3.5 s of xz under TCG either way), and the
# uncompressed vmlinux through its PVH entry, which takes decompression out
# of both and leaves the VMM's own share of the boot.
KERNELS = (("bzImage", "vmlinuz"), ("vmlinux (PVH entry)", "vmlinux"))


def bench_boot(a):
    times = {k: {v: [] for v in VMMS} for _, k in KERNELS}
    loads = {k: [] for _, k in KERNELS}
    cmdline = "console=ttyS0 panic=-1 quiet hvmm.exit-at-init"
    for r in range(a.rounds):
        for _, k in KERNELS:
            for v in VMMS:
                # hvmm's --stats: its loading time, printed at the exit
                argv = argv_for(v, a, cmdline, kernel=k, stats=True)
                t0 = time.monotonic()
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
                t = time.monotonic() - t0
                if p.returncode != 1:
                    print(f"  {v} {k}: round {r}: status {p.returncode} (want 1): {p.stderr.decode()[-300:]}")
                    continue
                times[k][v].append(t)
                m = v == "hvmm" and re.search(rb"guest started at ([0-9.]+) ms", p.stderr)
                if m:
                    loads[k].append((float(m.group(1)) / 1000, t))
            print("  round %d, %s: " % (r + 1, k)
                  + ", ".join(f"{v} {times[k][v][-1]:.2f}s" for v in VMMS if times[k][v]), flush=True)
    out = {k: {v: {"median_s": statistics.median(times[k][v]) if times[k][v] else None,
                   "runs": times[k][v],
                   "exits_to_prompt": exits_to_prompt(a, v) if k == "vmlinuz" else None}
               for v in VMMS} for _, k in KERNELS}
    for _, k in KERNELS:
        out[k]["hvmm"]["load_s"] = statistics.median(ld for ld, _ in loads[k]) if loads[k] else None
        out[k]["hvmm"]["guest_s"] = statistics.median(t - ld for ld, t in loads[k]) if loads[k] else None
        out[k]["hvmm"]["load_runs"] = [ld for ld, _ in loads[k]]
    return out


FIO_JOBS = [
    ("4k randread qd1", "--rw=randread --bs=4k --iodepth=1", "read", "iops"),
    ("4k randwrite qd1", "--rw=randwrite --bs=4k --iodepth=1", "write", "iops"),
    ("4k randread qd32", "--rw=randread --bs=4k --iodepth=32", "read", "iops"),
    ("4k randwrite qd32", "--rw=randwrite --bs=4k --iodepth=32", "write", "iops"),
    ("1M read", "--rw=read --bs=1M --iodepth=4", "read", "bw"),
    ("1M write", "--rw=write --bs=1M --iodepth=4", "write", "bw"),
]


def guest_interrupts(vm):
    out = vm.run("cat /proc/interrupts")
    return sum(int(x) for line in out.splitlines() if "virtio" in line
               for x in line.split()[1:] if x.isdigit())


def vm_counters(pid):
    """KVM's counters of one VM: debugfs has a PID-FD directory per VM, so
    VMs running side by side do not count into each other's I/O."""
    try:
        dirs = [d for d in os.listdir(DEBUGFS) if d.startswith(f"{pid}-")]
    except OSError:
        return None
    if len(dirs) != 1:
        return None
    try:
        with open(os.path.join(DEBUGFS, dirs[0], "exits")) as f:
            return {"exits": int(f.read())}
    except OSError:
        return None


def io_vm_start(a, vmm, tmp, port, stack):
    """One VMM's I/O guest: a 256 MiB second disk filled once, iperf3 serving."""
    disk = os.path.join(tmp, f"data-{vmm}.img")
    with open(disk, "wb") as f:
        f.truncate(256 << 20)
    vm = stack.enter_context(LinuxVM(argv_for(vmm, a, "console=ttyS0 panic=-1 quiet", extra_disk=disk,
                                              net_port=port, initrd="rootfs.cpio", vm_timeout=3600), 3600))
    vm.expect(PROMPT, 240, what=f"{vmm}: the prompt")
    vm.run("dd if=/dev/zero of=/dev/vda bs=1M count=256 2>/dev/null; sync", timeout=300)
    vm.run("ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; iperf3 -s -D -p 5201", timeout=90)
    vm.port = port
    return vm


def fio_once(a, vm, opts, side):
    c0, i0 = vm_counters(vm.p.pid), guest_interrupts(vm)
    out = vm.run(f"fio --name=j --filename=/dev/vda --direct=1 --ioengine=libaio {opts} "
                 f"--runtime={a.io_seconds} --time_based --size=256M --output-format=json "
                 f"--output=/tmp/fio.json >/dev/null && cat /tmp/fio.json", timeout=300)
    d, i1 = delta(c0, vm_counters(vm.p.pid)), guest_interrupts(vm)
    job = json.loads(out[out.index("{"):])["jobs"][0][side]
    ios = job["total_ios"] or 1
    return {"iops": job["iops"], "mib_s": job["bw"] / 1024.0,
            "exits_per_io": d["exits"] / ios if d else None, "irqs_per_io": (i1 - i0) / ios}


def iperf_once(a, vm, rev):
    p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(vm.port), "-t", str(a.io_seconds), "-J", *rev],
                       capture_output=True, text=True, timeout=120)
    try:
        return {"mbit_s": json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6}
    except (ValueError, KeyError):
        print(f"  iperf3 failed: {p.stdout[-300:]} {p.stderr[-300:]}")
        return None


def median_of(runs):
    """Each key's median over the rounds that produced it."""
    out = {}
    for k in {k for r in runs for k in r}:
        vals = [r[k] for r in runs if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    out["rounds"] = len(runs)
    return out


def bench_io(a, tmp):
    """All three VMMs' guests run at once, and each job goes round them in
    turn (the order rotating every round), a.io_rounds times: a load that
    comes and goes on the host then hits every VMM alike, and the medians
    are comparable."""
    runs = {v: {} for v in VMMS}
    with contextlib.ExitStack() as stack:
        vms = {v: io_vm_start(a, v, tmp, free_port(), stack) for v in VMMS}
        time.sleep(1)
        jobs = [(name, lambda vm, o=opts, sd=side: fio_once(a, vm, o, sd)) for name, opts, side, _ in FIO_JOBS]
        jobs += [("net host->guest", lambda vm: iperf_once(a, vm, [])),
                 ("net guest->host", lambda vm: iperf_once(a, vm, ["-R"]))]
        jobs = [(name, fn) for name, fn in jobs if re.search(a.io_jobs, name)]
        for name, fn in jobs:
            for r in range(a.io_rounds):
                order = VMMS[r % len(VMMS):] + VMMS[:r % len(VMMS)]
                for v in order:
                    res = fn(vms[v])
                    if res:
                        runs[v].setdefault(name, []).append(res)
                print(f"  {name} round {r + 1}: " + ", ".join(
                    f"{v} " + (f"{runs[v][name][-1].get('iops') or runs[v][name][-1].get('mbit_s'):.0f}"
                               if runs[v].get(name) else "-") for v in VMMS), flush=True)
        for vm in vms.values():
            vm.send("poweroff -f\n")
        for vm in vms.values():
            vm.wait(60)
    return {v: {name: median_of(rs) for name, rs in runs[v].items()} for v in VMMS}


def ratio(h, q):
    return f"{h / q:.2f}x" if h and q else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--io-seconds", type=int, default=5)
    ap.add_argument("--io-rounds", type=int, default=3)
    ap.add_argument("--skip-io", action="store_true")
    ap.add_argument("--io-jobs", default="", metavar="REGEX", help="only the I/O jobs whose names match")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    if not os.path.isdir(DEBUGFS):
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"], capture_output=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    boot = bench_boot(a) if a.rounds > 0 else {}
    if boot:
        result.update(boot=boot["vmlinuz"], boot_vmlinux=boot["vmlinux"])
    for name, k in KERNELS if boot else []:
        b = boot[k]
        print("\nstart to /init (whole VMM process), %s, median of %d rounds:" % (name, a.rounds))
        print(f"  {'VMM':10} {'median':>8} {'KVM exits to the prompt':>24}   hvmm vs it")
        for v in VMMS:
            exits = b[v]["exits_to_prompt"]
            print(f"  {v:10} {b[v]['median_s'] or 0:7.2f}s {exits if exits is not None else '-':>24}   "
                  f"{ratio(b['hvmm']['median_s'], b[v]['median_s'])}")
        load = b["hvmm"].get("load_s")
        if load is not None:
            # What hvmm spends before the guest's first instruction (the
            # bzImage: mostly xz), against what is left: the guest's own boot.
            print(f"  of hvmm's: {load:.2f}s to build the VM and load the kernel (--stats: 'guest started at'), "
                  f"{b['hvmm']['guest_s']:.2f}s from the guest's entry to its exit (medians)")
    if not a.skip_io:
        tmp = tempfile.mkdtemp(prefix="hvmm-bench-linux-", dir="/var/tmp")
        try:
            result["io"] = bench_io(a, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        io = result["io"]
        print("\nvirtio with Linux's drivers, median of %d interleaved rounds "
              "(hvmm / QEMU microvm, hvmm / q35):" % a.io_rounds)
        for name, *_ in FIO_JOBS + [("net host->guest",), ("net guest->host",)]:
            if not re.search(a.io_jobs, name):
                continue
            key = "mbit_s" if name.startswith("net") else ("iops" if "4k" in name else "mib_s")
            vals = [io[v].get(name, {}).get(key) for v in VMMS]
            print(f"  {name:18} " + " ".join(f"{x or 0:10.1f}" for x in vals)
                  + f"   {ratio(vals[0], vals[1])} {ratio(vals[0], vals[2])}  ({key})")
    out = a.json or os.path.join(a.build, "bench", "linux.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n(results in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
