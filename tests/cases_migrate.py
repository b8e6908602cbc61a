"""Live migration between two hvmm processes (PUT /hvmm/migrate, hvmm run
--incoming tcp:ADDR:PORT); docs/migration.md.

migrate/tiny-guest: a guest counting in RAM moves to a second hvmm on
127.0.0.1 and counts on there, nothing lost or repeated; every way a
migration can fail leaves the source running. migrate/linux: a busy Debian
guest (2 vCPUs, a disk, user networking) moves between two network
namespaces while it dirties memory and reads and writes its disk.
"""
import os
import re
import socket
import struct
import subprocess
import threading
import time

from harness import case, expect, free_port
from cases_api import ctl, wait_for
from cases_snapshot import counts, in_sequence, wait_counts


def ctl_long(ctx, sock, *args, timeout=600):
    p = subprocess.run([ctx.hvmm_bin, "ctl", sock, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def start(ctx, args, out, err_path, prefix=()):
    return subprocess.Popen([*prefix, ctx.hvmm_bin, "run", "--timeout", "120", "--stats", *args],
                            stdin=subprocess.DEVNULL, stdout=open(out, "wb"), stderr=open(err_path, "wb"))


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def wait_text(path, pat, what, secs=60, proc=None):
    end = time.time() + secs
    while not re.search(pat, read(path)):
        expect(proc is None or proc.poll() is None, f"{what}: ended with {proc and proc.returncode}: "
               f"{read(path)[-800:]}")
        expect(time.time() < end, f"{what}: no {pat!r} in {secs} s: {read(path)[-800:]}")
        time.sleep(0.05)


def still_counting(out, what):
    n = len(re.findall(r"count [0-9a-f]{8}\n", counts(out)))
    wait_counts(out, n + 3, 30)


class FakeDestination:
    """Accepts one connection, takes the hello and answers ACCEPT, reads
    a little of round 0 and then closes: a destination dying mid-stream."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(1)
        self.port = self.s.getsockname()[1]
        self.got = 0
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c, _ = self.s.accept()
        hdr = c.recv(16, socket.MSG_WAITALL)
        typ, _, ln = struct.unpack("<IIQ", hdr)
        c.recv(ln, socket.MSG_WAITALL)
        c.sendall(struct.pack("<II", 0x10, 0))
        self.got = len(c.recv(4096))
        c.close()
        self.s.close()


@case("migrate/tiny-guest")
def t_migrate_tiny(ctx):
    """count.elf moves to another hvmm: the destination's output goes on
    from the source's count, nothing lost or repeated, and the source ends
    with status 0 and "migrated to". Each failure leaves the source
    counting: connect refused, a destination of another --mem (refused in
    the hello, status 2 there), a destination dying mid-stream."""
    g = ctx.guest("count.elf")
    sock = os.path.join(ctx.tmp, "m.sock")
    src_out, src_err = os.path.join(ctx.tmp, "src.out"), os.path.join(ctx.tmp, "src.err")
    p = start(ctx, ["--api-sock", sock, g], src_out, src_err)
    dsts = []
    try:
        wait_for(sock)
        wait_counts(src_out, 3)
        # 1. nobody listens
        port = free_port()
        rc, _, err = ctl_long(ctx, sock, "migrate", f"tcp:127.0.0.1:{port}")
        expect(rc == 1 and "cannot connect" in err, f"a migration to a closed port: {rc} {err!r}")
        still_counting(src_out, "after a refused connect")
        # 2. a destination of another size refuses in the hello
        port = free_port()
        d_out, d_err = os.path.join(ctx.tmp, "d0.out"), os.path.join(ctx.tmp, "d0.err")
        d = start(ctx, ["--mem", "64M", "--incoming", f"tcp:127.0.0.1:{port}"], d_out, d_err)
        dsts.append(d)
        wait_text(d_err, "waiting for a migration", "the 64M destination", proc=d)
        rc, _, err = ctl_long(ctx, sock, "migrate", f"tcp:127.0.0.1:{port}")
        d.wait(30)
        lines = [l for l in read(d_err).splitlines() if "waiting for" not in l]
        expect(rc == 1 and "refused" in err and "--mem" in err, f"a destination with --mem 64M: {rc} {err!r}")
        expect(d.returncode == 2 and len(lines) == 1 and "--mem" in lines[0],
               f"the 64M destination: status {d.returncode}, {lines}")
        still_counting(src_out, "after a refusal")
        # 3. a destination that dies mid-stream
        fake = FakeDestination()
        rc, _, err = ctl_long(ctx, sock, "migrate", f"tcp:127.0.0.1:{fake.port}")
        expect(rc == 1 and ("closed" in err or "reset" in err.lower() or "broken" in err.lower()),
               f"a destination dying mid-stream: {rc} {err!r}")
        still_counting(src_out, "after a destination died")
        # 4. the real thing
        port = free_port()
        d_out, d_err = os.path.join(ctx.tmp, "d1.out"), os.path.join(ctx.tmp, "d1.err")
        d = start(ctx, ["--incoming", f"tcp:127.0.0.1:{port}"], d_out, d_err)
        dsts.append(d)
        wait_text(d_err, "waiting for a migration", "the destination", proc=d)
        t0 = time.time()
        rc, _, err = ctl_long(ctx, sock, "migrate", f"tcp:127.0.0.1:{port}", "100")
        took = time.time() - t0
        expect(rc == 0, f"hvmm ctl migrate: {rc} {err!r}: {read(src_err)[-800:]}")
        p.wait(30)
        expect(p.returncode == 0, f"the source ended with {p.returncode}, want 0: {read(src_err)[-800:]}")
        serr = read(src_err)
        m = re.search(r"migrated to 127\.0\.0\.1:\d+: ([\d.]+) ms, downtime ([\d.]+) ms, (\d+) bytes in (\d+) "
                      r"rounds", serr)
        expect(m, f"the source has no 'migrated to' line: {serr[-800:]}")
        wait_counts(d_out, 3)
        d.terminate()
        d.communicate(timeout=30)
        derr = read(d_err)
        expect(d.returncode == 128 + 15, f"the destination ended with {d.returncode}: {derr[-800:]}")
    finally:
        for q in [p, *dsts]:
            if q.poll() is None:
                q.kill()
                q.wait()
    src = counts(src_out)
    last = in_sequence(src, "the source")
    n = in_sequence(src + counts(d_out), "source then destination")
    expect(n > last + 1, f"the destination did not count on ({last} -> {n})")
    dm = re.search(r"migration in: (\d+) bytes, (\d+) pages in (\d+) rounds.*downtime ([\d.]+) ms", derr)
    expect(dm, f"the destination's --stats has no migration line: {derr[-800:]}")
    print(f"      source counted to {last}, destination on to {n}; {took * 1000:.0f} ms for the request; "
          f"source: {m.group(1)} ms in all, downtime {m.group(2)} ms, {m.group(3)} bytes, {m.group(4)} rounds; "
          f"destination: downtime {dm.group(4)} ms, {dm.group(2)} pages", flush=True)


# ---------------------------------------------------------------- a Linux guest

NS = ("hvmm-mig-a", "hvmm-mig-b")
NS_ADDR = ("10.77.0.1", "10.77.0.2")
MIG_PORT = 4444
GUEST_PORT = 5002


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def netns_up():
    """Two namespaces joined by a veth pair: the source in the first, the
    destination in the second, each with its own loopback (the port
    forward's address, taken by both hvmm processes at once)."""
    netns_down()
    for n in NS:
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
    sh("ip", "link", "add", "mig0", "netns", NS[0], "type", "veth", "peer", "name", "mig1", "netns", NS[1])
    for i, n in enumerate(NS):
        sh("ip", "-n", n, "addr", "add", f"{NS_ADDR[i]}/24", "dev", f"mig{i}")
        sh("ip", "-n", n, "link", "set", f"mig{i}", "up")


def netns_down():
    for n in NS:
        subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=30)


def listening(i, port):
    q = subprocess.run(in_ns(i, ["cat", "/proc/net/tcp"]), capture_output=True, text=True, timeout=30)
    return re.search(rf"^\s*\d+: [0-9A-F]+:{port:04X} 00000000:0000 0A", q.stdout, re.M) is not None


def in_ns(i, argv):
    return ["ip", "netns", "exec", NS[i], *argv]


CLIENT = r"""
import socket, sys, time
data = open(sys.argv[2], "rb").read()
end = time.time() + 60
while True:
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20) as c:
            c.sendall(data)
        break
    except OSError as e:
        if time.time() > end:
            sys.exit(f"never answered: {e}")
        time.sleep(0.3)
"""


def host_to_guest_ns(ctx, vm, ns, hport, who):
    """A new TCP connection through the port forward, from the namespace
    the hvmm runs in, into a listener in the guest."""
    import hashlib
    vm.run(f"{{ (nc -l -p {GUEST_PORT} </dev/null >/tmp/rx; echo done >/tmp/rx.end) >/dev/null 2>&1 & }}")
    listening = f"grep -qE ':{GUEST_PORT:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"
    vm.run(f"i=0; until {listening} || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; {listening}")
    data = os.urandom(64 << 10)
    path = os.path.join(ctx.tmp, "tcp.data")
    with open(path, "wb") as f:
        f.write(data)
    q = subprocess.run(in_ns(ns, ["python3", "-c", CLIENT, str(hport), path]), capture_output=True, text=True,
                       timeout=90)
    expect(q.returncode == 0, f"{who}: the connection through the port forward: {q.stderr[-400:]}")
    vm.run("i=0; while [ ! -e /tmp/rx.end ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done", timeout=60)
    got = vm.run("wc -c < /tmp/rx; sha256sum /tmp/rx | cut -d' ' -f1").split()
    expect(got == [str(len(data)), hashlib.sha256(data).hexdigest()],
           f"{who}: the guest received {got} over TCP, want {len(data)} bytes")


# The guest's three loops, each ending at a generation's end once /tmp/stop exists:
# RAM: /tmp/big (64 MiB) rewritten chunk by chunk, generation g putting chunk
#      (j+g)%64 of /tmp/a at j, so a page of any older generation shows;
# disk reads: the first 32 MiB (host-made random data) read with O_DIRECT in
#      one 32 MiB request — device DMA straight into the buffer, which KVM's
#      dirty log never sees — and checked against their checksum each time;
# disk writes: /tmp/a's first 16 MiB written at 32 MiB, O_DIRECT.
RAM_LOOP = ("g=0; while [ ! -e /tmp/stop ]; do g=$((g+1)); j=0; while [ $j -lt 64 ]; do "
            "dd if=/tmp/a of=/tmp/big bs=1M count=1 skip=$(( (j+g)%64 )) seek=$j conv=notrunc 2>/dev/null; "
            "j=$((j+1)); done; echo $g > /tmp/gen; done; echo x > /tmp/ram.end")
READ_LOOP = ("while [ ! -e /tmp/stop ]; do dd if=/dev/vda of=/tmp/rd bs=32M count=1 iflag=direct 2>/dev/null; "
             "s=$(sha256sum /tmp/rd | cut -c1-64); if [ \"$s\" = {sha} ]; then echo ok >> /tmp/rd.log; "
             "else echo BAD $s >> /tmp/rd.log; fi; done; echo x > /tmp/rd.end")
# disk reads into the page cache: the cache dropped, the first 32 MiB read
#      (buffered: the device writes the cache's pages, nobody else does),
#      then after a pause the same read again, now served from the cache and
#      checked — a switch-over in the pause leaves the destination with pages
#      only the device wrote since they were last sent.
CACHE_LOOP = ("while [ ! -e /tmp/stop ]; do echo 1 > /proc/sys/vm/drop_caches; "
              "dd if=/dev/vda of=/dev/null bs=1M count=32 2>/dev/null; sleep 4; "
              "s=$(dd if=/dev/vda bs=1M count=32 2>/dev/null | sha256sum | cut -c1-64); "
              "if [ \"$s\" = {sha} ]; then echo ok >> /tmp/pc.log; else echo BAD $s >> /tmp/pc.log; fi; done; "
              "echo x > /tmp/pc.end")
# disk reads held across the switch-over: one dd reads the first 32 MiB in
#      4 MiB blocks with O_DIRECT into the one buffer it keeps, and a reader
#      that sleeps after each block keeps the pipe full, so dd waits in its
#      write with a block in the buffer that only the device wrote — the
#      switch-over almost surely falls there, and each block is checked.
PIPE_LOOP = ("while [ ! -e /tmp/stop ]; do dd if=/dev/vda bs=4M count=8 iflag=direct 2>/dev/null | "
             "{{ for e in {shas}; do s=$(dd bs=4M count=1 iflag=fullblock 2>/dev/null | sha256sum | cut -c1-64); "
             "if [ \"$s\" = $e ]; then echo ok >> /tmp/pp.log; else echo BAD $s >> /tmp/pp.log; fi; sleep 1; "
             "done; }}; done; echo x > /tmp/pp.end")
WRITE_LOOP = ("n=0; while [ ! -e /tmp/stop ]; do dd if=/tmp/a of=/dev/vda bs=1M count=16 seek=32 oflag=direct "
              "2>/dev/null; n=$((n+1)); echo $n > /tmp/wr.n; done; echo x > /tmp/wr.end")


def bg(vm, loop):
    vm.run("{ (" + loop + ") </dev/null >/dev/null 2>&1 & }")


class HvmmSide:
    """hvmm on both ends: --incoming, PUT /hvmm/migrate, the numbers from
    the two processes' stderr (the source's "migrated to" line, the
    destination's --stats)."""
    name = "hvmm"

    def argv(self, ctx, disk, hport, api, incoming=None):
        from cases_linux_shell import hvmm_argv
        return hvmm_argv(ctx, cpus=2, extra=(
            "--api-sock", api, "--disk", disk,
            "--network", f"user,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}")) + (
            ["--incoming", incoming] if incoming else [])

    def migrate(self, ctx, api, src, dest):
        rc, _, err = ctl_long(ctx, api, "migrate", dest)
        expect(rc == 0, f"hvmm ctl migrate: {rc} {err!r}" + src.tail())
        st = src.wait(60)
        serr = src.err.decode(errors="replace")
        expect(st == 0, f"the source ended with {st}, want 0: {serr[-800:]}")
        m = re.search(r"migrated to [\d.]+:\d+: ([\d.]+) ms, downtime ([\d.]+) ms, (\d+) bytes in (\d+) "
                      r"rounds", serr)
        expect(m, f"no 'migrated to' line from the source: {serr[-800:]}")
        return {"total_ms": float(m.group(1)), "downtime_ms": float(m.group(2)), "bytes": int(m.group(3)),
                "rounds": int(m.group(4))}

    def finish(self, res, derr):
        dm = re.search(r"migration in: (\d+) bytes, (\d+) pages in (\d+) rounds, ([\d.]+) ms from accept to "
                       r"loaded; downtime ([\d.]+) ms", derr)
        expect(dm, f"the destination's --stats has no migration line: {derr[-800:]}")
        res["dst_downtime_ms"] = float(dm.group(5))


class QemuSide:
    """QEMU on both ends, for comparison (bench/migrate.py): -incoming on
    the destination, QMP's migrate on the source, its query-migrate's
    numbers (total-time, downtime, ram transferred, dirty-sync-count)."""
    name = "QEMU"

    def __init__(self, machine):
        self.machine = machine

    def argv(self, ctx, disk, hport, api, incoming=None):
        from cases_linux_shell import qemu_argv
        return qemu_argv(ctx, cpus=2, machine=self.machine, extra=(
            "-qmp", f"unix:{api},server=on,wait=off",
            "-drive", f"file={disk},format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}",
            "-device", "virtio-net-pci,netdev=n0")) + (["-incoming", incoming] if incoming else [])

    @staticmethod
    def qmp(api, cmds):
        import json
        c = socket.socket(socket.AF_UNIX)
        c.connect(api)
        f = c.makefile("rw")
        f.readline()
        out = []
        for cmd in [{"execute": "qmp_capabilities"}] + cmds:
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    out.append(r)
                    break
        c.close()
        return out[1:]

    def migrate(self, ctx, api, src, dest):
        self.qmp(api, [{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 300}},
                       {"execute": "migrate", "arguments": {"uri": dest}}])
        end = time.time() + 600
        while True:
            r = self.qmp(api, [{"execute": "query-migrate"}])[0].get("return", {})
            if r.get("status") in ("completed", "failed", "cancelled"):
                break
            expect(time.time() < end, f"QEMU's migration did not end: {r}")
            time.sleep(0.2)
        expect(r.get("status") == "completed", f"QEMU's migration: {r}")
        self.qmp(api, [{"execute": "quit"}])
        src.wait(60)
        ram = r.get("ram", {})
        return {"total_ms": float(r.get("total-time", 0)), "downtime_ms": float(r.get("downtime", 0)),
                "bytes": int(ram.get("transferred", 0)), "rounds": int(ram.get("dirty-sync-count", 0))}

    def finish(self, res, derr):
        res["dst_downtime_ms"] = None


def migrate_linux(ctx, side):
    """The busy guest of migrate/linux moved by side (HvmmSide, QemuSide),
    checked; its numbers: total_ms, downtime_ms, bytes, rounds (and for
    hvmm dst_downtime_ms)."""
    import hashlib
    from linuxvm import PROMPT, LinuxVM
    from cases_linux_shell import VM_TIMEOUT, boot_to_prompt, end_with, images
    images(ctx)
    expect(os.geteuid() == 0, "needs root for network namespaces")
    who = side.name
    disk = os.path.join(ctx.tmp, f"mig-{who}.img")
    head = os.urandom(32 << 20)
    with open(disk, "wb") as f:
        f.write(head)
        f.truncate(64 << 20)
    head_sha = hashlib.sha256(head).hexdigest()
    # the same options on both sides but for the API's socket, a path on
    # the one file system both namespaces share
    api = os.path.join(ctx.tmp, f"mig-{who}.sock")
    hport = 2222
    dest = f"tcp:{NS_ADDR[1]}:{MIG_PORT}"
    netns_up()
    try:
        with LinuxVM(in_ns(0, side.argv(ctx, disk, hport, api)), VM_TIMEOUT) as src:
            boot_to_prompt(src, f"{who} source")
            src.run("udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1", timeout=90)
            src.run("dd if=/dev/urandom of=/tmp/a bs=1M count=64 2>/dev/null && cp /tmp/a /tmp/big", timeout=120)
            a_chunks = src.run("j=0; while [ $j -lt 64 ]; do dd if=/tmp/a bs=1M count=1 skip=$j 2>/dev/null "
                               "| sha256sum | cut -c1-64; j=$((j+1)); done", timeout=120).split()
            a16 = src.run("dd if=/tmp/a bs=1M count=16 2>/dev/null | sha256sum | cut -c1-64").strip()
            bg(src, RAM_LOOP)
            bg(src, READ_LOOP.format(sha=head_sha))
            bg(src, CACHE_LOOP.format(sha=head_sha))
            bg(src, PIPE_LOOP.format(shas=" ".join(hashlib.sha256(head[i << 22:(i + 1) << 22]).hexdigest()
                                                   for i in range(8))))
            bg(src, WRITE_LOOP)
            time.sleep(3)
            rd0 = int(src.run("cat /tmp/rd.log 2>/dev/null | wc -l").strip())
            # the destination: the same options, in the other namespace
            dst = LinuxVM(in_ns(1, side.argv(ctx, disk, hport, api + ".dst", dest)), VM_TIMEOUT)
            with dst:
                # (its stderr is read at its end: look for the listener)
                end = time.time() + 60
                while not listening(1, MIG_PORT):
                    expect(dst.p.poll() is None, f"{who}: the destination ended" + dst.tail())
                    expect(time.time() < end, f"{who}: the destination never listened" + dst.tail())
                    time.sleep(0.1)
                t0 = time.time()
                res = side.migrate(ctx, api, src, dest)
                res["request_ms"] = (time.time() - t0) * 1000
                dst.send("\n")
                dst.expect(PROMPT, 60, what=f"{who}: the destination's shell prompt")
                time.sleep(3)  # the loops go on here for a while
                ends = ("[ -e /tmp/ram.end ] && [ -e /tmp/rd.end ] && [ -e /tmp/wr.end ] && [ -e /tmp/pc.end ] "
                        "&& [ -e /tmp/pp.end ]")
                dst.run(f"touch /tmp/stop; i=0; while [ $i -lt 600 ] && ! {{ {ends}; }}; do sleep 0.1; "
                        f"i=$((i+1)); done; {ends}", timeout=120)
                gen = int(dst.run("cat /tmp/gen").strip())
                big = dst.run("j=0; while [ $j -lt 64 ]; do dd if=/tmp/big bs=1M count=1 skip=$j 2>/dev/null "
                              "| sha256sum | cut -c1-64; j=$((j+1)); done", timeout=120).split()
                bad = [j for j in range(64) if big[j] != a_chunks[(j + gen) % 64]]
                expect(not bad, f"{who}: the RAM writer's file is not generation {gen} in chunks {bad[:8]}")
                reads = dst.run("grep -c ok /tmp/rd.log; grep -c BAD /tmp/rd.log || true").split()
                expect(reads[1] == "0", f"{who}: {reads[1]} disk reads gave wrong data (of {reads[0]} right)")
                expect(int(reads[0]) > rd0, f"{who}: no disk reads after the move ({rd0} -> {reads})")
                cached = dst.run("touch /tmp/pc.log; grep -c ok /tmp/pc.log || true; "
                                 "grep -c BAD /tmp/pc.log || true").split()
                expect(cached[1] == "0", f"{who}: {cached[1]} reads from the page cache gave wrong data "
                       f"(of {cached[0]} right): pages the device wrote did not move")
                held = dst.run("touch /tmp/pp.log; grep -c ok /tmp/pp.log || true; "
                               "grep -c BAD /tmp/pp.log || true").split()
                expect(held[1] == "0", f"{who}: {held[1]} blocks read across the switch-over were wrong "
                       f"(of {held[0]} right): pages the device wrote did not move")
                wr = dst.run("dd if=/dev/vda bs=1M count=16 skip=32 iflag=direct 2>/dev/null | sha256sum "
                             "| cut -c1-64").strip()
                expect(wr == a16, f"{who}: the disk does not hold what the guest wrote")
                host_to_guest_ns(ctx, dst, 1, hport, f"{who} destination")
                end_with(dst, f"{who} destination", "poweroff")
                side.finish(res, dst.err.decode(errors="replace"))
    finally:
        netns_down()
    with open(disk, "rb") as f:
        img = f.read()
    expect(hashlib.sha256(img[:32 << 20]).hexdigest() == head_sha, f"{who}: the image's first 32 MiB changed")
    expect(hashlib.sha256(img[32 << 20:48 << 20]).hexdigest() == a16,
           f"{who}: the image does not hold the guest's writes after the destination's poweroff")
    res.update(generation=gen, reads=int(reads[0]), cached=int(cached[0]), held=int(held[0]))
    return res


def summary(who, r):
    dst = f", {r['dst_downtime_ms']:.1f} ms at the destination" if r.get("dst_downtime_ms") is not None else ""
    return (f"{who}: total {r['total_ms']:.0f} ms, downtime {r['downtime_ms']:.1f} ms{dst}, "
            f"{r['bytes'] / 2**20:.0f} MiB sent, {r['rounds']} rounds (generation {r['generation']} whole, "
            f"{r['reads']} direct, {r['cached']} cached and {r['held']} held disk reads right)")


@case("migrate/linux")
def t_migrate_linux(ctx):
    """A Debian guest (2 vCPUs, a disk, user networking) busy rewriting 64
    MiB of RAM and reading and writing its disk moves from an hvmm in one
    network namespace to one in another: the shell answers there, the RAM
    writer's file is one whole generation, every disk read during and after
    the move gave the right data, the writes are on the disk, and a new TCP
    connection through the destination's port forward works. (QEMU side by
    side: bench/migrate.py.)"""
    import faulthandler
    import sys
    # Every step has its own timeout; should one still hang, say where
    # before the runner's silence limit ends the nested host without a word.
    faulthandler.dump_traceback_later(360, exit=False, file=sys.stdout)
    try:
        _linux_once(ctx)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _linux_once(ctx):
    print("      " + summary("hvmm, 512 MiB, 2 vCPUs", migrate_linux(ctx, HvmmSide())), flush=True)
