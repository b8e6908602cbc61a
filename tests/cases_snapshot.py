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
    out = vm.run("cat /tmp/count").strip().split()
    expect(out and out[-1].isdigit(), f"/tmp/count read {out!r}, want a number")
    return int(out[-1])


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
        vm.run("{ (i=0; while :; do i=$((i+1)); echo $i > /tmp/count.n; mv /tmp/count.n /tmp/count; sleep 0.1; done) "
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


def counts(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def wait_counts(path, n, secs=60):
    end = time.time() + secs
    while len(re.findall(r"count [0-9a-f]{8}\n", counts(path))) < n:
        expect(time.time() < end, f"fewer than {n} count lines in {secs} s: {counts(path)[-300:]!r}")
        time.sleep(0.05)


def start(ctx, args, out):
    return subprocess.Popen([ctx.hvmm_bin, "run", "--timeout", "120", "--stats", *args],
                            stdin=subprocess.DEVNULL, stdout=open(out, "wb"), stderr=subprocess.PIPE)


def stop(p, what):
    p.terminate()
    _, err = p.communicate(timeout=30)
    err = err.decode(errors="replace")
    expect(p.returncode == 128 + 15, f"{what}: ended with {p.returncode}: {err[-800:]}")
    return err


def in_sequence(text, what):
    """Every count from 1 on, once each, in order (a line cut by the pause is
    finished by the restored copy): nothing lost, nothing repeated."""
    got = re.findall(r"count ([0-9a-f]{8})\n", text)
    nums = [int(x, 16) for x in got]
    expect(nums and nums == list(range(1, len(nums) + 1)) and
           text.count("count") == len(nums) + (0 if text.endswith("\n") else 1),
           f"{what}: the counts are not 1, 2, 3, ... in order: {nums[:5]}...{nums[-5:]} "
           f"({text[-200:]!r})")
    return nums[-1]


@case("snapshot/tiny-guest")
def t_snapshot_tiny(ctx):
    """A guest counting in RAM and printing each count on COM1 is
    snapshotted mid-run; two VMs restored from the files at once both go on
    from its count (source output + restored output = 1, 2, 3, ... with
    nothing lost or repeated, the cut line finished). What a restore
    refuses, with one line: a snapshot taken while running, other --mem or
    --cpus (status 2), a damaged state file, a file that is no snapshot, a
    memory file of another size or of another snapshot (status 4)."""
    g = ctx.guest("count.elf")
    sock = os.path.join(ctx.tmp, "c.sock")
    state, mem = os.path.join(ctx.tmp, "c.snap"), os.path.join(ctx.tmp, "c.mem")
    src_out = os.path.join(ctx.tmp, "src.out")
    p = start(ctx, ["--api-sock", sock, g], src_out)
    try:
        wait_for(sock)
        wait_counts(src_out, 3)
        rc, _, err = ctl(ctx, sock, "snapshot", state, mem)
        expect(rc == 1 and "pause it first" in err and not os.path.exists(state),
               f"a snapshot of a running VM: {rc} {err!r}")
        rc, _, err = ctl(ctx, sock, "pause")
        expect(rc == 0, f"pause: {rc} {err!r}")
        rc, _, err = ctl(ctx, sock, "snapshot", state, mem)
        expect(rc == 0, f"hvmm ctl snapshot: {rc} {err!r}")
        time.sleep(0.3)
        src = counts(src_out)
        err = stop(p, "the source")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    last = in_sequence(src, "the source")
    expect(re.search(r"snapshots: 1, the last [\d.]+ ms", err), f"no snapshot line in --stats: {err[-600:]}")
    # two restored copies at once, from one pair of files
    outs = [os.path.join(ctx.tmp, f"r{i}.out") for i in range(2)]
    socks = [os.path.join(ctx.tmp, f"r{i}.sock") for i in range(2)]
    # (the second without --api-sock, which the source had: what it switched
    # on in KVM for itself, the restore must switch on from the state)
    ps = [start(ctx, ["--api-sock", socks[0], "--restore", state], outs[0]),
          start(ctx, ["--restore", state], outs[1])]
    try:
        for o in outs:
            wait_counts(o, 3)
        # a second snapshot, from a restored copy: its memory file is another's
        rc, _, err = ctl(ctx, socks[0], "pause")
        rc2, _, err2 = ctl(ctx, socks[0], "snapshot", state + "2", mem + "2")
        expect(rc == 0 and rc2 == 0, f"a snapshot of a restored VM: {rc} {err!r} {rc2} {err2!r}")
        errs = [stop(q, f"restored copy {i}") for i, q in enumerate(ps)]
    finally:
        for q in ps:
            if q.poll() is None:
                q.kill()
                q.communicate()
    for i, o in enumerate(outs):
        n = in_sequence(src + counts(o), f"restored copy {i}")
        expect(n > last + 1, f"restored copy {i} did not count on ({last} -> {n})")
        expect(re.search(r"restore: [\d.]+ ms", errs[i]), f"copy {i}: no restore line: {errs[i][-600:]}")
    bad = os.path.join(ctx.tmp, "bad.snap")
    with open(state, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x40
    with open(bad, "wb") as f:
        f.write(data)
    short = os.path.join(ctx.tmp, "short.mem")
    with open(short, "wb") as f:
        f.truncate(1 << 20)
    for args, status, want in (
            (["--mem", "64M", "--restore", state], 2, "the snapshot is of a VM with --mem 128M"),
            (["--cpus", "2", "--restore", state], 2, "--cpus 1"),
            (["--restore", bad], 4, "corrupt section"),
            (["--restore", g], 4, "is not an hvmm snapshot"),
            (["--restore", state + ",mem=" + short], 4, "is not the memory file of a 128 MiB guest"),
            (["--restore", state + ",mem=" + mem + "2"], 4, "belongs to another snapshot"),
            (["--restore", os.path.join(ctx.tmp, "none.snap")], 4, "No such file")):
        q = subprocess.run([ctx.hvmm_bin, "run", "--timeout", "20", *args], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        lines = q.stderr.strip().splitlines()
        expect(q.returncode == status and len(lines) == 1 and want in lines[0],
               f"{args}: status {q.returncode}, stderr {q.stderr!r}; want {status} and one line with {want!r}")
    print(f"      source counted to {last}; both restored copies went on from there; "
          f"{os.path.getsize(state)} bytes of state, {os.stat(mem).st_blocks // 2} KiB of memory file on disk",
          flush=True)


def tap_up(name, addr):
    """A tap device on the (nested) host with addr on it; root only."""
    subprocess.run(["ip", "link", "del", name], capture_output=True)
    for cmd in (["ip", "tuntap", "add", "dev", name, "mode", "tap"], ["ip", "addr", "add", addr, "dev", name],
                ["ip", "link", "set", name, "up"]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        expect(p.returncode == 0, f"{' '.join(cmd)}: {p.stderr.strip()} (the tap needs root and tun)")


@case("snapshot/tap-tcp")
def t_snapshot_tap_tcp(ctx):
    """A TCP connection from the host into the guest over a tap device,
    open across a snapshot, the end of the VM that had it, and a restore in
    a new hvmm process: the guest's TCP state is in its RAM and the tap
    outlives both processes, so the host's retransmissions reach the
    restored guest and every byte arrives, those sent while no VM existed
    included. (User networking cannot do this: its host-side sockets end
    with the process; docs/snapshot.md.)"""
    images(ctx)
    tap = "hvsnap0"
    tap_up(tap, "192.168.77.1/24")
    try:
        sock = os.path.join(ctx.tmp, "t.sock")
        state, mem = os.path.join(ctx.tmp, "t.snap"), os.path.join(ctx.tmp, "t.mem")
        argv = hvmm_argv(ctx, extra=("--api-sock", sock, "--network", f"tap:{tap}"))
        half = os.urandom(48 << 10)
        with LinuxVM(argv, VM_TIMEOUT) as vm:
            boot_to_prompt(vm, "source")
            vm.run("ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up")
            vm.run(f"{{ (nc -l -p {GUEST_PORT} </dev/null >/tmp/rx; echo done >/tmp/rx.end) >/dev/null 2>&1 & }}")
            listening = f"grep -qE ':{GUEST_PORT:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"
            vm.run(f"i=0; until {listening} || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; {listening}")
            conn = socket.create_connection(("192.168.77.2", GUEST_PORT), timeout=30)
            conn.sendall(half)
            vm.run(f"i=0; until [ $(wc -c < /tmp/rx) -ge {len(half)} ] || [ $i -ge 300 ]; do sleep 0.1; "
                   f"i=$((i+1)); done; [ $(wc -c < /tmp/rx) -ge {len(half)} ]", timeout=60)
            for c in (["pause"], ["snapshot", state, mem]):
                rc, _, err = ctl(ctx, sock, *c)
                expect(rc == 0, f"hvmm ctl {c[0]}: {rc} {err!r}")
            vm.p.terminate()
            vm.wait(30)
        # no VM now: the host's kernel takes the second half and retransmits
        conn.sendall(half)
        conn.shutdown(socket.SHUT_WR)
        with LinuxVM(argv + ["--restore", state], VM_TIMEOUT) as vm:
            vm.send("\n")
            vm.expect(PROMPT, 60, what="restored: the shell prompt")
            vm.run("i=0; while [ ! -e /tmp/rx.end ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done", timeout=90)
            got = vm.run("wc -c < /tmp/rx; sha256sum /tmp/rx | cut -d' ' -f1").split()
            want = [str(2 * len(half)), hashlib.sha256(half + half).hexdigest()]
            expect(got == want, f"restored: the guest received {got}, want {want}")
            end_with(vm, "restored", "poweroff")
        conn.close()
        print(f"      {2 * len(half) >> 10} KiB over one TCP connection across a snapshot, the source's end and "
              f"a restore in a new process, the second half sent while no VM existed", flush=True)
    finally:
        subprocess.run(["ip", "link", "del", tap], capture_output=True)


def echo_exchange(conn, data, who, chunk=16 << 10, timeout=90):
    """data through the guest's echo server in chunks, each echoed whole
    before the next is sent (so no buffer on the way has to hold more)."""
    conn.settimeout(timeout)
    for off in range(0, len(data), chunk):
        part = data[off:off + chunk]
        conn.sendall(part)
        got = b""
        while len(got) < len(part):
            try:
                b = conn.recv(len(part) - len(got))
            except socket.timeout:
                b = b""
            expect(b, f"{who}: the echo stopped after {off + len(got)} of {len(data)} bytes")
            got += b
        expect(got == part, f"{who}: bytes {off}..{off + len(part)} came back different")


def helper_pids(marker):
    """hvmm-net-slirp processes whose command line has marker (a port only this test uses)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"hvmm-net-slirp") and any(marker.encode() in a for a in argv):
            pids.append(int(p))
    return pids


KEEP_SECS = 40


@case("snapshot/hostfwd-tcp")
def t_snapshot_hostfwd_tcp(ctx):
    """ONE TCP connection from the host through --network user's hostfwd
    into the guest, open across a snapshot, the end of the hvmm that had it
    and a restore in a new hvmm process (keep=: the slirp helper outlives
    the first and the second attaches to it): the same connection carries
    data both ways before and after, byte for byte, including what the host
    sent while no VM existed. A restore while the source still runs is
    refused; the restored VM snapshotted again and left unclaimed past
    keep= is gone: its restore fails with one line naming the helper, and
    the helper has ended by itself."""
    images(ctx)
    sock = os.path.join(ctx.tmp, "h.sock")
    state, mem = os.path.join(ctx.tmp, "h.snap"), os.path.join(ctx.tmp, "h.mem")
    hport = free_port()
    net = f"user,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT},keep={KEEP_SECS}"
    argv = hvmm_argv(ctx, extra=("--api-sock", sock, "--network", net))
    a, b, c = os.urandom(64 << 10), os.urandom(48 << 10), os.urandom(64 << 10)
    conn = None
    try:
        with LinuxVM(argv, VM_TIMEOUT) as vm:
            boot_to_prompt(vm, "source")
            vm.run("udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1", timeout=90)
            vm.run(f"{{ (nc -l -p {GUEST_PORT} -e /bin/busybox tee /tmp/rx; echo done >/tmp/rx.end) "
                   f"</dev/null >/dev/null 2>&1 & }}")
            listening = f"grep -qE ':{GUEST_PORT:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"
            vm.run(f"i=0; until {listening} || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; {listening}")
            conn = socket.create_connection(("127.0.0.1", hport), timeout=30)
            echo_exchange(conn, a, "source")
            for cmd in (["pause"], ["snapshot", state, mem]):
                rc, _, err = ctl(ctx, sock, *cmd)
                expect(rc == 0, f"hvmm ctl {cmd[0]}: {rc} {err!r}" + vm.tail())
            # The source still runs: its helper is taken, the restore refused.
            other = [os.path.join(ctx.tmp, "h2.sock") if x == sock else x for x in argv]
            p = subprocess.run(other + ["--restore", state], capture_output=True, text=True, timeout=120,
                               stdin=subprocess.DEVNULL)
            expect(p.returncode == 6 and any("still runs" in l and l.startswith("hvmm: --network")
                                             for l in p.stderr.splitlines()),
                   f"a restore while the source runs: status {p.returncode}, {p.stderr[-600:]!r}")
            vm.p.terminate()
            st = vm.wait(30)
            expect(st == 128 + 15, f"the source hvmm ended with {st} on SIGTERM, want 143" + vm.tail())
        expect(helper_pids(f":{hport}-"), "the source's slirp helper did not outlive it after the snapshot")
        # no VM now: what the host sends waits in the kept helper and the kernel
        conn.sendall(b)
        with LinuxVM(argv + ["--restore", state], VM_TIMEOUT) as vm:
            vm.send("\n")
            vm.expect(PROMPT, 60, what="restored: the shell prompt")
            conn.settimeout(90)
            got = b""
            while len(got) < len(b):
                chunk = conn.recv(len(b) - len(got))
                expect(chunk, f"restored: the connection ended after {len(got)} of the {len(b)} bytes "
                       "sent while no VM existed" + vm.tail())
                got += chunk
            expect(got == b, "restored: what the host sent while no VM existed came back different")
            echo_exchange(conn, c, "restored")
            n = vm.run("wc -c < /tmp/rx; sha256sum /tmp/rx | cut -d' ' -f1").split()
            want = [str(len(a + b + c)), hashlib.sha256(a + b + c).hexdigest()]
            expect(n == want, f"restored: the guest's server received {n}, want {want}")
            # Again, from the restored VM; this time nobody comes back in time.
            for cmd in (["pause"], ["snapshot", state, mem]):
                rc, _, err = ctl(ctx, sock, *cmd)
                expect(rc == 0, f"restored: hvmm ctl {cmd[0]}: {rc} {err!r}" + vm.tail())
            vm.p.terminate()
            vm.wait(30)
        t_end = time.time()
        expect(helper_pids(f":{hport}-"), "the helper was not kept after the restored VM's snapshot")
        conn.close()
        conn = None
        end = time.time() + KEEP_SECS + 30
        while helper_pids(f":{hport}-") and time.time() < end:
            time.sleep(1)
        left = helper_pids(f":{hport}-")
        expect(not left, f"the unclaimed helper {left} did not end within keep={KEEP_SECS} s")
        expect(time.time() - t_end > KEEP_SECS - 5, f"the unclaimed helper ended after "
               f"{time.time() - t_end:.0f} s, before its keep={KEEP_SECS} s")
        p = subprocess.run(argv + ["--restore", state], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        expect(p.returncode == 6 and any("is gone" in l and "hvmm-net-slirp-" in l and l.startswith("hvmm: --network")
                                         for l in p.stderr.splitlines()),
               f"a restore after keep= ran out: status {p.returncode}, {p.stderr[-600:]!r}")
        print(f"      {len(a + b + c) >> 10} KiB echoed over one hostfwd TCP connection across a snapshot, the "
              f"source's end and a restore ({len(b) >> 10} KiB sent while no VM existed); a restore while the "
              f"source ran and one past keep={KEEP_SECS} s were refused", flush=True)
    finally:
        if conn:
            conn.close()
