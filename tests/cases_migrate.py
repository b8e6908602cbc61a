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
