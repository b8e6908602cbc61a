#!/usr/bin/env python3
"""Snapshot and restore: hvmm against QEMU, one interleaved run, same guest.

    bench/snapshot.py [--build DIR] [--rounds N] [--mem 512M]

The guest: Debian's kernel (vmlinux through PVH) with the test initramfs,
2 vCPUs, a disk, at its shell prompt with a counter process running. Each
VMM snapshots it once:
  hvmm  PATCH /vm Paused + PUT /snapshot/create (state file + sparse RAM file)
  QEMU  HMP migrate to a file ("exec:cat > FILE", QEMU's way of saving a
        VM whose disk is raw; it stops the VM at the end)
and then restores it --rounds times, interleaved:
  hvmm  hvmm run <same options> --restore STATE
  QEMU  qemu-system-x86_64 <same options> -incoming "exec:cat FILE"
Measured per restore: the wall time from exec to the guest's shell answering a
newline on the serial console (what a user waits for; QEMU drops what is typed
before its restored VM runs, so the newline goes once its monitor reports it
running, which is also printed); for hvmm its own
figures from --stats: the restore step itself (state checked, RAM mapped,
vCPUs and devices loaded) and the time from process start to the first
KVM_RUN. Medians and hvmm/QEMU ratios; also the time to take the snapshot and
the size of what it wrote. In the nested KVM host everything is emulated:
quote the ratios.
"""
import argparse
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
from linuxvm import PROMPT, LinuxVM  # noqa: E402
from linuxvm import images as linux_images  # noqa: E402

CMDLINE = "console=ttyS0 panic=-1 quiet pci=noearly"


def hmp(sock, *cmds, timeout=60):
    """Send HMP commands on QEMU's monitor socket; the text that came back."""
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    out = b""
    for c in cmds:
        s.sendall(c.encode() + b"\n")
        time.sleep(0.3)
    end = time.time() + 2
    s.settimeout(0.5)
    while time.time() < end:
        try:
            d = s.recv(65536)
            if not d:
                break
            out += d
        except OSError:
            break
    s.close()
    return out.decode(errors="replace")


def prime(vm):
    vm.expect(PROMPT, 120, what="the shell prompt")
    vm.run("{ (i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done) </dev/null >/dev/null 2>&1 & }")
    vm.run("dd if=/dev/urandom of=/tmp/ram bs=65536 count=64 2>/dev/null")
    time.sleep(1)


def answered(vm, t0):
    vm.send("\n")
    vm.expect(PROMPT, 120, what="the prompt after the restore")
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mem", default="512M")
    a = ap.parse_args()
    img = linux_images(a.build, "vmlinux", "boot.cpio")
    hvmm = os.path.join(a.build, "hvmm")
    tmp = tempfile.mkdtemp(prefix="hvmm-bench-snap-")
    try:
        disk = os.path.join(tmp, "d.img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        common_h = [hvmm, "run", "--stats", "--timeout", "600", "--mem", a.mem, "--cpus", "2",
                    "--kernel", img["vmlinux"], "--initrd", img["boot.cpio"], "--cmdline", CMDLINE,
                    "--disk", disk]
        common_q = ["qemu-system-x86_64", "-M", os.environ.get("BENCH_QEMU_MACHINE", "q35"),
                    "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", a.mem, "-smp", "2",
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                    "-kernel", img["vmlinux"], "-initrd", img["boot.cpio"], "-append", CMDLINE,
                    "-drive", f"file={disk},format=raw,if=none,id=d0",
                    "-device", "virtio-blk-pci,drive=d0"]
        # hvmm: snapshot
        sock = os.path.join(tmp, "h.sock")
        state, mem = os.path.join(tmp, "h.snap"), os.path.join(tmp, "h.mem")
        with LinuxVM(common_h + ["--api-sock", sock], 600) as vm:
            prime(vm)
            t = time.time()
            for c in (["pause"], ["snapshot", state, mem]):
                subprocess.run([hvmm, "ctl", sock, *c], check=True, capture_output=True, timeout=120)
            h_save = time.time() - t
            vm.p.terminate()
            vm.wait(60)
        h_size = os.stat(state).st_size + os.stat(mem).st_blocks * 512
        # QEMU: snapshot (migration to a file)
        mon = os.path.join(tmp, "q.mon")
        qfile = os.path.join(tmp, "q.mig")
        with LinuxVM(common_q + ["-monitor", f"unix:{mon},server,nowait"], 600) as vm:
            prime(vm)
            t = time.time()
            # a live migration into the file: QEMU stops the VM when it ends,
            # and the restored copy then runs (a VM stopped first would be
            # restored stopped)
            hmp(mon, f"migrate \"exec:cat > {qfile}\"")
            end = time.time() + 300
            while "completed" not in hmp(mon, "info migrate"):
                if time.time() > end:
                    raise SystemExit("QEMU's migration to a file did not complete")
                time.sleep(0.2)
            q_save = time.time() - t
            vm.kill()
        q_size = os.stat(qfile).st_size
        # restores, interleaved
        res = {"hvmm": [], "qemu": [], "qemu_running": [], "h_restore": [], "h_first_run": []}
        for r in range(a.rounds):
            for who in (("hvmm", "qemu") if r % 2 == 0 else ("qemu", "hvmm")):
                t0 = time.time()
                if who == "hvmm":
                    with LinuxVM(common_h + ["--restore", state], 300) as vm:
                        res["hvmm"].append(answered(vm, t0))
                        vm.send("poweroff\n")
                        vm.wait(120)
                    err = vm.err.decode(errors="replace")
                    m = re.search(r"restore: ([\d.]+) ms", err)
                    g = re.search(r"guest started at ([\d.]+) ms", err)
                    if m and g:
                        res["h_restore"].append(float(m.group(1)))
                        res["h_first_run"].append(float(g.group(1)))
                else:
                    rmon = os.path.join(tmp, f"r{r}.mon")
                    with LinuxVM(common_q + ["-incoming", f"exec:cat {qfile}",
                                             "-monitor", f"unix:{rmon},server,nowait"], 300) as vm:
                        # QEMU says on its monitor when the incoming state is
                        # in and the VM runs again
                        while not os.path.exists(rmon):
                            time.sleep(0.01)
                        while "VM status: running" not in hmp(rmon, "info status", timeout=10):
                            if time.time() - t0 > 120:
                                raise SystemExit("QEMU's restore did not reach running")
                        res["qemu_running"].append(time.time() - t0)
                        vm.send("\n")
                        try:
                            vm.expect(PROMPT, 30, final=False)
                            res["qemu"].append(time.time() - t0)
                        except AssertionError:
                            pass  # reported below as rounds without an answer
                        vm.kill()
                        vm.kill()
        med = {k: statistics.median(v) for k, v in res.items() if v}
        print(f"snapshot/restore, {a.mem} guest with 2 vCPUs at its prompt, {a.rounds} interleaved rounds (medians):")
        print(f"  take the snapshot:      hvmm {h_save * 1000:7.0f} ms ({h_size >> 20} MiB written)   "
              f"QEMU {q_save * 1000:7.0f} ms ({q_size >> 20} MiB)   ratio {h_save / q_save:.2f}")
        if "qemu" in med:
            print(f"  restore to the prompt:  hvmm {med['hvmm'] * 1000:7.0f} ms   QEMU {med['qemu'] * 1000:7.0f} ms   "
                  f"ratio {med['hvmm'] / med['qemu']:.2f}")
        else:
            print(f"  restore to the prompt:  hvmm {med['hvmm'] * 1000:7.0f} ms   QEMU: its restored guest never "
                  f"answered the console ({len(res['qemu_running'])} of {a.rounds} rounds)")
        print(f"  QEMU, exec to its monitor reporting the restored VM running: {med['qemu_running'] * 1000:.0f} ms "
              f"(hvmm, exec to the prompt answering: ratio {med['hvmm'] / med['qemu_running']:.2f})")
        if "h_restore" in med:
            print(f"  hvmm alone: the restore step {med['h_restore']:.1f} ms; process start to the first "
                  f"KVM_RUN {med['h_first_run']:.1f} ms")
        print("  per round (s): hvmm " + " ".join(f"{x:.2f}" for x in res["hvmm"]) +
              "; QEMU running " + " ".join(f"{x:.2f}" for x in res["qemu_running"]) +
              "; QEMU prompt " + " ".join(f"{x:.2f}" for x in res["qemu"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
