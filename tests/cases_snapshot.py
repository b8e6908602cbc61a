"""Snapshot and restore (PUT /snapshot/create, hvmm run --restore).

A Debian guest with 2 vCPUs, a disk, virtio-rng and user networking is
snapshotted while a counter process runs, the VM it came from is ended,
and a new hvmm process restored from the two files must go on: the shell
answers, the counter counts on from where it was, a file in the guest's
RAM and data on its disk are intact, its devices still work.
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import time

from harness import case, expect, free_port
from linuxvm import PROMPT, LinuxVM
from cases_api import ctl, wait_for
from cases_linux_shell import VM_TIMEOUT, boot_to_prompt, end_with, hvmm_argv, images

GUEST_PORT = 5002


def sha(vm, cmd):
    return vm.run(f"{cmd} | sha256sum | cut -d' ' -f1", timeout=90).strip()


def counter(vm):
    return int(vm.run("cat /tmp/count").strip().split()[-1])


def host_to_guest(vm, hport, who):
    """A new TCP connection through the port forward into a guest listener."""
    vm.run(f"{{ (nc -l -p {GUEST_PORT} </dev/null >/tmp/rx; echo done >/tmp/rx.end) >/dev/null 2>&1 & }}")
    listening = f"grep -qE ':{GUEST_PORT:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"
    vm.run(f"i=0; until {listening} || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; {listening}")
    data = os.urandom(64 << 10)
    end = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", hport), timeout=20) as c:
                c.sendall(data)
            break
        except OSError as e:
            expect(time.time() < end, f"{who}: the guest's listener never answered: {e}")
            time.sleep(0.3)
    vm.run("i=0; while [ ! -e /tmp/rx.end ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done", timeout=60)
    got = vm.run("wc -c < /tmp/rx; sha256sum /tmp/rx | cut -d' ' -f1").split()
    expect(got == [str(len(data)), hashlib.sha256(data).hexdigest()],
           f"{who}: the guest received {got} over TCP, want {len(data)} bytes")


@case("snapshot/linux")
def t_snapshot_linux(ctx):
    """Snapshot a busy Linux guest, end its hvmm, restore it in a new one:
    everything the guest had goes on."""
    images(ctx)
    disk = os.path.join(ctx.tmp, "snap.img")
    with open(disk, "wb") as f:
        f.truncate(8 << 20)
    sock = os.path.join(ctx.tmp, "snap.sock")
    state, mem = os.path.join(ctx.tmp, "vm.snap"), os.path.join(ctx.tmp, "vm.mem")
    hport = free_port()
    argv = hvmm_argv(ctx, cpus=2, extra=(
        "--api-sock", sock, "--disk", disk, "--rng",
        "--network", f"user,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}"))
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        boot_to_prompt(vm, "source")
        vm.run("dd if=/dev/urandom of=/tmp/d bs=65536 count=16 2>/dev/null && "
               "dd if=/tmp/d of=/dev/vda bs=65536 oflag=direct 2>/dev/null", timeout=90)
        disk_sha = sha(vm, "cat /tmp/d")
        vm.run("dd if=/dev/urandom of=/tmp/ram bs=65536 count=32 2>/dev/null")
        ram_sha = sha(vm, "cat /tmp/ram")
        vm.run("udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1", timeout=90)
        vm.run("{ (i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done) "
               "</dev/null >/dev/null 2>&1 & }")
        time.sleep(1.0)
        before = counter(vm)
        rc, out, err = ctl(ctx, sock, "pause")
        expect(rc == 0, f"hvmm ctl pause: {rc} {err!r}")
        rc, out, err = ctl(ctx, sock, "snapshot", state, mem)
        expect(rc == 0, f"hvmm ctl snapshot: {rc} {err!r}" + vm.tail())
        vm.p.terminate()
        st = vm.wait(30)
        expect(st == 128 + 15, f"the source hvmm ended with {st} on SIGTERM, want 143" + vm.tail())
        src_err = vm.err.decode(errors="replace")
    m = re.search(r"snapshots: 1, the last ([\d.]+) ms: (\d+) bytes of state, (\d+) of RAM data", src_err)
    expect(m, "the source's --stats has no snapshot line:\n" + src_err[-1500:])
    save_ms, state_bytes, ram_bytes = float(m.group(1)), int(m.group(2)), int(m.group(3))
    mem_disk = os.stat(mem).st_blocks * 512

    # The same options again, plus --restore: no image is read.
    with LinuxVM(argv + ["--restore", state], VM_TIMEOUT) as vm:
        vm.send("\n")
        vm.expect(PROMPT, 60, what="restored: the shell prompt")
        first = counter(vm)
        time.sleep(1.0)
        later = counter(vm)
        expect(before <= first < later, f"restored: the counter read {before} before the snapshot, "
               f"{first} and then {later} after the restore")
        expect(sha(vm, "cat /tmp/ram") == ram_sha, "restored: the file in the guest's RAM changed")
        expect(sha(vm, "dd if=/dev/vda bs=65536 count=16 iflag=direct 2>/dev/null") == disk_sha,
               "restored: the disk does not read back what was written before the snapshot")
        vm.run("dd if=/tmp/ram of=/dev/vda bs=65536 seek=32 oflag=direct 2>/dev/null")
        expect(sha(vm, "dd if=/dev/vda bs=65536 skip=32 count=32 iflag=direct 2>/dev/null") == ram_sha,
               "restored: a write after the restore does not read back")
        n = vm.run("head -c 4096 /dev/hwrng | wc -c").strip()
        expect(n == "4096", f"restored: /dev/hwrng gave {n!r} bytes")
        host_to_guest(vm, hport, "restored")
        end_with(vm, "restored", "poweroff")
    err = vm.err.decode(errors="replace")
    m = re.search(r"restore: ([\d.]+) ms", err)
    expect(m, "the restored hvmm's --stats has no restore line:\n" + err[-1500:])
    print(f"      snapshot of 512 MiB, 2 vCPUs: {save_ms:.0f} ms, {state_bytes} bytes of state, "
          f"{ram_bytes >> 20} MiB of RAM data ({mem_disk >> 20} MiB on disk); restore {float(m.group(1)):.1f} ms "
          f"to load; counter {before} -> {first} -> {later}; RAM file, disk, rng and a new TCP connection "
          f"intact", flush=True)
