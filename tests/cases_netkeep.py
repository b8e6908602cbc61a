"""keep= on --network user: the slirp helper's hand-over, without a VM.

The test plays two hvmm processes in turn, as tests/cases_netdev.py plays
one: the first starts hvmm-net-slirp with keep=, opens a TCP connection
through a hostfwd port (the test is the guest), says NET_SLIRP_KEEP (what a
snapshot does) and closes its end (hvmm ends). The second connects to the
helper's abstract name, hands it fresh rings and doorbells, and the SAME
host connection carries data both ways again, byte for byte, including what
the host sent while no hvmm was attached. Plus: an attach while the first
still runs is refused; a helper nobody claims ends by itself after keep=
seconds; one whose guest ran on after the snapshot ends at once, as without
keep=; and a helper started without keep= has no name to attach to.
"""
import fcntl
import mmap
import os
import select
import socket
import struct
import time

from harness import case, expect, free_port
from cases_netdev import ERROR, F_ADD_SEALS, F_SEAL_GROW, F_SEAL_SHRINK, READY, RING_MAGIC, RING_SLOTS, RX, \
    SHM_SIZE, SLEEPING, Helper, hostfwd_connection

KEEP = b"hvmm-net-slirp keep"
ATTACH = b"hvmm-net-slirp attach"


def helper_name(h):
    """The name in a keep= helper's ready message."""
    expect(h.first is not None and h.first.startswith(READY + b" "), f"ready message {h.first!r}")
    name = h.first[len(READY) + 1:]
    expect(len(name) == 15 + 32 and name.startswith(b"hvmm-net-slirp-"), f"helper name {name!r}")
    return name


def detach(h):
    """The first hvmm ends: its end of everything closes; the helper is not waited for."""
    h.sock.close()
    h.shm.close()
    for fd in (h.memfd, h.txbell, h.rxbell):
        os.close(fd)


class Attached(Helper):
    """A restored hvmm's end: new rings handed to the helper named `name`."""

    def __init__(self, name, proc):  # pylint: disable=super-init-not-called
        self.proc = proc  # the helper the first Helper started (our child still)
        self.memfd = os.memfd_create("test-net-rings", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(self.memfd, SHM_SIZE)
        # hvmm seals the size: the helper refuses a memfd that could shrink under it
        fcntl.fcntl(self.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
        self.shm = mmap.mmap(self.memfd, SHM_SIZE)
        struct.pack_into("<QII", self.shm, 0, RING_MAGIC, 1, RING_SLOTS)
        self.txbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.rxbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.tx_head = self.rx_tail = 0
        self._put(RX, SLEEPING, 1)
        self.sock, self.first = attach(name, [self.memfd, self.txbell, self.rxbell])


def attach(name, fds, msg=ATTACH):
    """Connect to the helper's abstract name, send msg with fds: (socket, answer)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(b"\0" + name)
    try:
        socket.send_fds(s, [msg], fds)
    except BrokenPipeError:
        pass  # refused at once: its answer is still there to read
    r, _, _ = select.select([s], [], [], 10.0)
    return s, (s.recv(65536) if r else None)


def recv_exact(sock, n, timeout=20):
    sock.settimeout(timeout)
    got = b""
    while len(got) < n:
        b = sock.recv(n - len(got))
        if not b:
            break
        got += b
    return got


def wait_exit(proc, secs):
    try:
        return proc.wait(timeout=secs)
    except Exception:  # subprocess.TimeoutExpired
        return None


def end_helper(proc):
    """Only the helper this test started, if it is still there."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@case("netdev/slirp-keep-handover", kvm=False)
def t_keep_handover(ctx):
    port = free_port()
    h = Helper(ctx, f"user,hostfwd=tcp:127.0.0.1:{port}-:8080,keep=30")
    proc, cli, h2 = h.proc, None, None
    try:
        name = helper_name(h)
        cli, syn, seg, gseq = hostfwd_connection(h, port)
        # data both ways on the connection, all acknowledged
        cli.sendall(b"before the snapshot")
        d = h.wait_for(lambda p: p.get("proto") == 6 and p.get("data"), what="data segment")
        expect(d["data"] == b"before the snapshot", f"guest got {d['data']!r}")
        hseq = d["seq"] + len(d["data"])  # the next byte the host side sends
        h.send(seg(0x18, gseq, hseq, b"guest says hi"))
        gseq += len(b"guest says hi")
        expect(recv_exact(cli, 13) == b"guest says hi", "host did not get the guest's first data")
        h.wait_for(lambda p: p.get("proto") == 6 and p["ack"] == gseq, what="ACK of the guest's data")

        # while this "hvmm" runs, nobody else may attach
        s, ans = attach(name, [])
        s.close()
        expect(ans is not None and ans.startswith(ERROR) and b"still runs" in ans,
               f"an attach while the first hvmm runs got {ans!r}")

        # the snapshot, then the first hvmm ends
        h.sock.send(KEEP)
        time.sleep(0.2)
        detach(h)
        time.sleep(0.5)
        expect(proc.poll() is None, f"the kept helper exited ({proc.returncode}) when its hvmm ended")
        # the host keeps sending while no hvmm exists
        cli.sendall(b"while no VM ran")

        h2 = Attached(name, proc)
        expect(h2.first == READY + b" " + name, f"attach answer {h2.first!r}")
        # slirp's retransmission brings what the host sent meanwhile
        want = b"while no VM ran"
        d = h2.wait_for(lambda p: p.get("proto") == 6 and p.get("data") and p["seq"] == hseq, timeout=20,
                        what="the host's data, retransmitted to the restored guest")
        expect(d["data"] == want, f"restored guest got {d['data']!r}, want {want!r}")
        hseq += len(want)
        h2.send(seg(0x18, gseq, hseq, b"after the restore"))
        got = recv_exact(cli, len(b"after the restore"))
        expect(got == b"after the restore", f"host got {got!r} from the restored guest")
        cli.sendall(b"and back again")
        d = h2.wait_for(lambda p: p.get("proto") == 6 and p.get("data") and p["seq"] == hseq, timeout=20,
                        what="new host data after the restore")
        expect(d["data"] == b"and back again", f"restored guest got {d['data']!r}")

        # the restored hvmm ends without a snapshot: the helper ends as always
        detach(h2)
        st = wait_exit(proc, 5)
        expect(st == 0, f"helper exit status {st} after the restored hvmm ended")
        print(f"      one TCP connection through hostfwd: data both ways before the hand-over, "
              f"{len(want)} bytes sent while no hvmm was attached arrived after it, and more both ways",
              flush=True)
    finally:
        if cli:
            cli.close()
        end_helper(proc)
        if proc.stderr:
            proc.stderr.close()


@case("netdev/slirp-keep-timeout", kvm=False)
def t_keep_timeout(ctx):
    port = free_port()
    h = Helper(ctx, f"user,hostfwd=tcp:127.0.0.1:{port}-:8080,keep=2")
    proc = h.proc
    try:
        name = helper_name(h)
        h.sock.send(KEEP)
        time.sleep(0.2)
        t0 = time.time()
        detach(h)
        time.sleep(0.5)
        expect(proc.poll() is None, "the kept helper did not wait for a restore")
        # still holding its port
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port))
            expect(False, f"port {port} was free while the helper was kept")
        except OSError:
            pass
        finally:
            probe.close()
        st = wait_exit(proc, 10)
        took = time.time() - t0
        expect(st == 0 and 1.5 < took < 6, f"an unclaimed helper: status {st} after {took:.1f} s (keep=2)")
        # and its name is gone
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(b"\0" + name)
            expect(False, "the name of a helper that ended still answers")
        except ConnectionRefusedError:
            pass
        finally:
            s.close()
    finally:
        end_helper(proc)
        if proc.stderr:
            proc.stderr.close()


@case("netdev/slirp-keep-not-armed", kvm=False)
def t_keep_not_armed(ctx):
    """keep= alone keeps nothing: an hvmm that ends without a snapshot, or
    whose guest sent a frame after it, ends its helper at once."""
    for how in ("no snapshot", "a frame after the snapshot", "a migration after the snapshot"):
        h = Helper(ctx, "user,keep=30")
        proc = h.proc
        try:
            helper_name(h)
            if how != "no snapshot":
                h.sock.send(KEEP)
                time.sleep(0.2)
            if how == "a frame after the snapshot":
                h.send(bytes(GUEST_ARP))  # the VM ran on: the snapshot is stale
                time.sleep(0.2)
            if how == "a migration after the snapshot":
                h.sock.send(b"hvmm-net-slirp unkeep")  # the VM leaves this host
                time.sleep(0.2)
            detach(h)
            st = wait_exit(proc, 5)
            expect(st == 0, f"{how}: the helper {'is still running' if st is None else f'exited {st}'}, "
                   "want exit 0 at once")
        finally:
            end_helper(proc)
            if proc.stderr:
                proc.stderr.close()
    # without keep= the ready message names nothing
    h = Helper(ctx, "user")
    first = h.first
    status, _ = h.close()
    expect(first == READY and status == 0, f"without keep=: {first!r}, exit {status}")


@case("netdev/slirp-keep-bad-attach", kvm=False)
def t_keep_bad_attach(ctx):
    """A malformed attach (wrong fds, a memfd that is not sealed) is refused
    and the kept helper goes on waiting for a proper one."""
    h = Helper(ctx, "user,keep=30")
    proc = h.proc
    try:
        name = helper_name(h)
        h.sock.send(KEEP)
        time.sleep(0.2)
        detach(h)
        time.sleep(0.3)
        s, ans = attach(name, [])
        s.close()
        expect(ans is not None and ans.startswith(ERROR) and b"malformed" in ans, f"no fds: {ans!r}")
        fd = os.memfd_create("unsealed")
        os.ftruncate(fd, SHM_SIZE)
        e1, e2 = os.eventfd(0), os.eventfd(0)
        s, ans = attach(name, [fd, e1, e2])
        s.close()
        for x in (fd, e1, e2):
            os.close(x)
        expect(ans is not None and ans.startswith(ERROR) and b"ring memory" in ans, f"unsealed: {ans!r}")
        h2 = Attached(name, proc)
        expect(h2.first == READY + b" " + name, f"a proper attach after two bad ones: {h2.first!r}")
        detach(h2)
        st = wait_exit(proc, 5)
        expect(st == 0, f"helper exit status {st}")
    finally:
        end_helper(proc)
        if proc.stderr:
            proc.stderr.close()


GUEST_ARP = bytes.fromhex("ffffffffffff525400123456") + b"\x08\x06" + \
    bytes.fromhex("0001080006040001525400123456") + socket.inet_aton("10.0.2.15") + b"\0" * 6 + \
    socket.inet_aton("10.0.2.2")
