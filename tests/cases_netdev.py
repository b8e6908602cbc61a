"""Host-level tests of hvmm-net-slirp, the slirp helper behind --network user.

The test plays hvmm: it makes the SOCK_SEQPACKET control socketpair, the
ring memfd and the doorbell eventfds, starts the helper with them as fds 3-6,
and passes raw Ethernet frames through the rings (src/net/ring.h), acting as
the guest (DHCP, ARP, a TCP handshake through a hostfwd port). No VM and no
/dev/kvm: this checks the helper and the frame protocol on their own.
"""
import fcntl
import mmap
import os
import select
import socket
import struct
import subprocess
import time

from harness import case, expect, free_port

GUEST_MAC = bytes.fromhex("525400123456")
BCAST = b"\xff" * 6
GUEST_IP = socket.inet_aton("10.0.2.15")
HOST_IP = socket.inet_aton("10.0.2.2")
READY = b"hvmm-net-slirp ready"
ERROR = b"hvmm-net-slirp error: "


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def udp(src, dst, sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data  # checksum 0: none


def tcp(src, dst, sport, dport, seq, ack, flags, data=b"", window=65535):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
    c = csum(pseudo + hdr + data)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + data


def dhcp_discover(xid):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, GUEST_MAC, b"", b"")
    opts = b"\x63\x82\x53\x63" + b"\x35\x01\x01" + b"\x37\x03\x01\x03\x06" + b"\xff"
    pkt = udp(b"\0" * 4, b"\xff" * 4, 68, 67, bootp + opts)
    return eth(BCAST, GUEST_MAC, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, pkt))


def arp(op, sha, spa, tha, tpa, dst):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, spa, tha, tpa)
    return eth(dst, sha, 0x0806, body)


def parse(frame):
    """Ethernet/IPv4 → dict, enough to recognise the frames the tests wait for."""
    d = {"dst": frame[0:6], "src": frame[6:12], "type": struct.unpack("!H", frame[12:14])[0]}
    if d["type"] == 0x0806:
        op, sha, spa, tha, tpa = struct.unpack("!6xH6s4s6s4s", frame[14:42])
        d.update(op=op, sha=sha, spa=spa, tpa=tpa)
    elif d["type"] == 0x0800:
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        d.update(proto=ip[9], ipsrc=ip[12:16], ipdst=ip[16:20])
        l4 = ip[ihl:total]
        if ip[9] == 17:
            d.update(sport=struct.unpack("!H", l4[0:2])[0], dport=struct.unpack("!H", l4[2:4])[0],
                     data=l4[8:])
        elif ip[9] == 6:
            sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", l4[:14])
            d.update(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                     data=l4[(off >> 4) * 4:])
    return d


# The ring layout of src/net/ring.h (pinned there by _Static_asserts).
RING_MAGIC = 0x676e6972766d6868
RING_SLOTS, SLOT_SIZE = 512, 2048
CTL_OFF, CTL_SIZE, SLOT_OFF = 64, 192, 448
HEAD, TAIL, SLEEPING, WAITING = 0, 64, 128, 132
SHM_SIZE = SLOT_OFF + 2 * RING_SLOTS * SLOT_SIZE
F_ADD_SEALS, F_SEAL_SHRINK, F_SEAL_GROW = 1033, 0x2, 0x4  # <linux/fcntl.h>
TX, RX = 0, 1


class Helper:
    """hvmm-net-slirp started the way hvmm starts it: fd 3 its control
    socket, fd 4 the ring memfd, fd 5/6 the tx/rx doorbell eventfds, and
    "--ring SPEC" on its command line. Frames go through the rings."""

    def __init__(self, ctx, spec):
        self.path = ctx.path("hvmm-net-slirp")
        if not os.path.exists(self.path):
            raise AssertionError(f"{self.path} was not built")
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.memfd = os.memfd_create("test-net-rings", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(self.memfd, SHM_SIZE)
        # as hvmm does: its size sealed, so the helper cannot be made to fault on it
        fcntl.fcntl(self.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
        self.shm = mmap.mmap(self.memfd, SHM_SIZE)
        struct.pack_into("<QII", self.shm, 0, RING_MAGIC, 1, RING_SLOTS)
        self.txbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.rxbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.tx_head = self.rx_tail = 0
        # we stay "asleep" on rx, so the helper rings for every batch
        self._put(RX, SLEEPING, 1)
        # the child's fds 3-6, moved above 16 first so no dup2 clobbers a source
        src = [os.dup(fd) for fd in (child.fileno(), self.memfd, self.txbell, self.rxbell)]
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 20) for fd in src]
        for fd in src:
            os.close(fd)

        def to_fds():  # in the child, before exec (Python's fds are all close-on-exec)
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)
        self.proc = subprocess.Popen([self.path, "--ring", spec], close_fds=False,
                                     preexec_fn=to_fds, stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        for fd in high:
            os.close(fd)
        child.close()
        r, _, _ = select.select([self.sock], [], [], 5.0)
        self.first = self.sock.recv(65536) if r else None

    def _get(self, ring, field):
        return struct.unpack_from("<I", self.shm, CTL_OFF + ring * CTL_SIZE + field)[0]

    def _put(self, ring, field, v):
        struct.pack_into("<I", self.shm, CTL_OFF + ring * CTL_SIZE + field, v & 0xFFFFFFFF)

    def _slot(self, ring, pos):
        return SLOT_OFF + (ring * RING_SLOTS + pos % RING_SLOTS) * SLOT_SIZE

    def send(self, *frames):
        """Into the tx ring (it never fills here: the helper drains it), published
        together with one head update, then the doorbell: one batch for the helper."""
        tail = self._get(TX, TAIL)
        if (self.tx_head + len(frames) - tail) & 0xFFFFFFFF > RING_SLOTS:
            raise AssertionError("tx ring full")
        head = self.tx_head
        for frame in frames:
            off = self._slot(TX, head)
            self.shm[off + 4:off + 4 + len(frame)] = frame
            struct.pack_into("<I", self.shm, off, len(frame))
            head = (head + 1) & 0xFFFFFFFF
        self.tx_head = head
        self._put(TX, HEAD, self.tx_head)  # x86: stores are not reordered with stores
        os.eventfd_write(self.txbell, 1)

    def recv(self, timeout):
        """The next frame of the rx ring, waiting on the rx doorbell up to timeout."""
        end = time.time() + timeout
        while True:
            if self._get(RX, HEAD) != self.rx_tail:
                off = self._slot(RX, self.rx_tail)
                n = struct.unpack_from("<I", self.shm, off)[0]
                frame = bytes(self.shm[off + 4:off + 4 + n])
                self.rx_tail = (self.rx_tail + 1) & 0xFFFFFFFF
                self._put(RX, TAIL, self.rx_tail)
                if self._get(RX, WAITING):
                    self._put(RX, WAITING, 0)
                    os.eventfd_write(self.txbell, 1)
                return frame
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.rxbell], [], [], left)
            if r:
                os.eventfd_read(self.rxbell)

    def wait_for(self, pred, timeout=5.0, what="frame"):
        """Frames until pred(parsed) holds; ARP requests for the guest are answered."""
        end = time.time() + timeout
        while time.time() < end:
            f = self.recv(end - time.time())
            if f is None:
                break
            p = parse(f)
            if p["type"] == 0x0806 and p["op"] == 1 and p["tpa"] == GUEST_IP:
                self.send(arp(2, GUEST_MAC, GUEST_IP, p["sha"], p["spa"], p["sha"]))
                continue
            if pred(p):
                return p
        raise AssertionError(f"no {what} from the slirp helper within {timeout}s")

    def close(self):
        """EOF on its socket: the helper must exit 0 on its own."""
        self.sock.close()
        self.shm.close()
        for fd in (self.memfd, self.txbell, self.rxbell):
            os.close(fd)
        try:
            status = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # only the process this test started
            self.proc.wait()
            raise AssertionError(f"helper pid {self.proc.pid} did not exit on EOF")
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return status, err


@case("netdev/slirp-dhcp", kvm=False)
def t_slirp_dhcp(ctx):
    h = Helper(ctx, "user")
    try:
        expect(h.first == READY, f"first message {h.first!r}, expected {READY!r}")
        h.send(dhcp_discover(0x1234abcd))
        p = h.wait_for(lambda p: p.get("proto") == 17 and p.get("sport") == 67 and p.get("dport") == 68,
                       what="DHCP reply")
        bootp = p["data"]
        op, xid, yiaddr = bootp[0], struct.unpack("!I", bootp[4:8])[0], bootp[16:20]
        expect(op == 2 and xid == 0x1234abcd, f"BOOTP reply op {op} xid {xid:#x}")
        expect(yiaddr == GUEST_IP, f"offered {socket.inet_ntoa(yiaddr)}, expected 10.0.2.15")
        expect(b"\x35\x01\x02" in bootp[240:], "DHCP message type is not OFFER")
        expect(p["ipsrc"] == HOST_IP, f"offer from {socket.inet_ntoa(p['ipsrc'])}")
        expect(p["dst"] in (GUEST_MAC, BCAST), "offer not addressed to the guest MAC")
    finally:
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")


def hostfwd_connection(h, port):
    """A host client connected through hostfwd port to the "guest" (the test) on
    8080: ARP, the host's connect, slirp's SYN, our SYN-ACK, its ACK.
    (client socket, SYN, seg(flags, seq, ack, data) making guest segments, our next seq)."""
    expect(h.first is not None and (h.first == READY or h.first.startswith(READY + b" ")),
           f"first message {h.first!r}")  # keep= adds " NAME"
    # The guest announces itself (ARP who-has 10.0.2.2), as a stack does
    # after DHCP; slirp learns the guest's MAC from it.
    h.send(arp(1, GUEST_MAC, GUEST_IP, b"\0" * 6, HOST_IP, BCAST))
    h.wait_for(lambda p: p["type"] == 0x0806 and p["op"] == 2 and p["spa"] == HOST_IP,
               what="ARP reply for 10.0.2.2")
    cli = socket.create_connection(("127.0.0.1", port), timeout=5)
    syn = h.wait_for(lambda p: p.get("proto") == 6 and p["flags"] & 0x02, what="SYN")
    expect(syn["dport"] == 8080 and syn["ipdst"] == GUEST_IP,
           f"SYN to {socket.inet_ntoa(syn['ipdst'])}:{syn['dport']}, expected 10.0.2.15:8080")
    gseq = 1000
    src, sport = syn["ipsrc"], syn["sport"]

    def seg(flags, seq, ack, data=b""):
        return eth(syn["src"], GUEST_MAC, 0x0800,
                   ipv4(GUEST_IP, src, 6, tcp(GUEST_IP, src, 8080, sport, seq, ack, flags, data)))
    h.send(seg(0x12, gseq, syn["seq"] + 1))  # SYN-ACK
    h.wait_for(lambda p: p.get("proto") == 6 and p["flags"] & 0x10 and p["ack"] == gseq + 1,
               what="ACK of the SYN-ACK")
    return cli, syn, seg, gseq + 1


@case("netdev/slirp-hostfwd-tcp", kvm=False)
def t_slirp_hostfwd(ctx):
    port = free_port()
    h = Helper(ctx, f"user,hostfwd=tcp:127.0.0.1:{port}-:8080")
    cli = None
    try:
        # Complete the handshake as the guest and pass data both ways.
        cli, syn, seg, gseq = hostfwd_connection(h, port)
        cli.sendall(b"ping from the host")
        d = h.wait_for(lambda p: p.get("proto") == 6 and p.get("data"), what="data segment")
        expect(d["data"] == b"ping from the host", f"guest got {d['data']!r}")
        h.send(seg(0x18, gseq, d["seq"] + len(d["data"]), b"pong from the guest"))
        cli.settimeout(5)
        got = cli.recv(100)
        expect(got == b"pong from the guest", f"host got {got!r}")
    finally:
        if cli:
            cli.close()
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")


def data_segs_in(sock):
    """tcpi_data_segs_in of a TCP socket: segments with data it has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("<I", info, 152)[0]  # offsetof(struct tcp_info, tcpi_data_segs_in)


@case("netdev/slirp-coalesces-a-batch", kvm=False)
def t_slirp_coalesce(ctx):
    """A batch of guest segments reaches the host socket as a few large
    segments, not one per guest segment: the helper corks slirp's TCP
    sockets while it feeds a batch to slirp (the throughput fix of
    docs/benchmarks.md). The client reads only after the whole batch is in,
    and counts the data segments its socket received."""
    port = free_port()
    h = Helper(ctx, f"user,hostfwd=tcp:127.0.0.1:{port}-:8080")
    cli = None
    n, size = 32, 1000
    try:
        cli, syn, seg, gseq = hostfwd_connection(h, port)
        payload = bytes(range(256)) * 125  # 32000 bytes
        before = data_segs_in(cli)
        h.send(*[seg(0x18, gseq + i * size, syn["seq"] + 1, payload[i * size:(i + 1) * size])
                 for i in range(n)])
        # slirp ACKs what it took; the last ACK means the whole batch went in
        h.wait_for(lambda p: p.get("proto") == 6 and p["flags"] & 0x10 and p["ack"] == gseq + n * size,
                   what="ACK of the whole batch")
        got = b""
        cli.settimeout(5)
        while len(got) < len(payload):
            chunk = cli.recv(65536)
            if not chunk:
                break
            got += chunk
        expect(got == payload, f"host got {len(got)} bytes, not the {len(payload)} sent in order")
        segs = data_segs_in(cli) - before
        expect(segs <= 4, f"the {n}-segment batch arrived as {segs} host segments (corked: a few)")
    finally:
        if cli:
            cli.close()
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")


def syn_to_host(h, port):
    """As the guest: ARP for 10.0.2.2, a SYN to 10.0.2.2:port; slirp's answer."""
    expect(h.first == READY, f"first message {h.first!r}")
    h.send(arp(1, GUEST_MAC, GUEST_IP, b"\0" * 6, HOST_IP, BCAST))
    rep = h.wait_for(lambda p: p["type"] == 0x0806 and p["op"] == 2 and p["spa"] == HOST_IP,
                     what="ARP reply for 10.0.2.2")
    h.send(eth(rep["sha"], GUEST_MAC, 0x0800,
               ipv4(GUEST_IP, HOST_IP, 6, tcp(GUEST_IP, HOST_IP, 40000, port, 1, 0, 0x02))))
    return h.wait_for(lambda p: (p.get("proto") == 6 and p.get("sport") == port and p["dport"] == 40000)
                      or p.get("proto") == 1, what=f"answer to a SYN for 10.0.2.2:{port}")


def loopback_case(ctx, spec, check):
    """A SYN from the guest to 10.0.2.2:port with a listener on the host's
    127.0.0.1:port; check(slirp's answer, the listener)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(2)
    port = srv.getsockname()[1]
    h = Helper(ctx, spec)
    try:
        check(syn_to_host(h, port), srv)
    finally:
        srv.close()
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")


@case("netdev/slirp-host-loopback-closed", kvm=False)
def t_slirp_loopback_closed(ctx):
    # By default 10.0.2.2 is not the host's 127.0.0.1: a service the host
    # keeps on its loopback is out of the guest's reach. slirp answers with
    # an ICMP "destination unreachable", at once.
    def check(ans, srv):
        expect(ans["proto"] == 1, f"a SYN to 10.0.2.2 gets ICMP unreachable, got {ans}")
        try:
            srv.accept()[0].close()
            expect(False, "the host's loopback listener got a connection from the guest")
        except socket.timeout:
            pass
    loopback_case(ctx, "user", check)


@case("netdev/slirp-host-loopback-on", kvm=False)
def t_slirp_loopback_on(ctx):
    # host-loopback=on: QEMU's behaviour, 10.0.2.2 is the host's 127.0.0.1.
    def check(ans, srv):
        expect(ans["proto"] == 6 and ans["flags"] & 0x12 == 0x12, f"SYN-ACK from 10.0.2.2, got {ans}")
        srv.accept()[0].close()
    loopback_case(ctx, "user,host-loopback=on", check)


def listening_addrs(port):
    """Local IPv4 addresses listening on TCP port (from /proc/net/tcp)."""
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            a, p = local.split(":")
            if int(p, 16) == port and state == "0A":
                out.append(socket.inet_ntoa(struct.pack("<I", int(a, 16))))
    return out


@case("netdev/slirp-hostfwd-binds-loopback", kvm=False)
def t_slirp_hostfwd_local(ctx):
    # An empty host address binds 127.0.0.1, not every address (QEMU's
    # default): a forward is local unless the user names an address.
    port, port2 = free_port(), free_port()
    h = Helper(ctx, f"user,hostfwd=tcp::{port}-:22,hostfwd=tcp:0.0.0.0:{port2}-:23")
    try:
        expect(h.first == READY, f"first message {h.first!r}")
        expect(listening_addrs(port) == ["127.0.0.1"], f"hostfwd ::{port} listens on {listening_addrs(port)}")
        expect(listening_addrs(port2) == ["0.0.0.0"], f"hostfwd 0.0.0.0:{port2} listens on {listening_addrs(port2)}")
    finally:
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")


@case("netdev/slirp-hostfwd-port-in-use", kvm=False)
def t_slirp_port_busy(ctx):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        h = Helper(ctx, f"user,hostfwd=tcp:127.0.0.1:{port}-:22")
        msg = h.first or b""
        status, _ = h.close()
    finally:
        s.close()
    expect(msg.startswith(ERROR) and f"{port}".encode() in msg,
           f"expected an error naming port {port}, got {msg!r}")
    expect(status == 1, f"helper exit status {status}")


@case("netdev/slirp-helper-by-hand", kvm=False)
def t_slirp_by_hand(ctx):
    path = ctx.path("hvmm-net-slirp")
    p = subprocess.run([path, "user"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    expect(p.returncode == 2 and b"not by hand" in p.stderr, f"status {p.returncode} {p.stderr!r}")
    # and a bad spec handed to it is refused through the socket
    h = Helper(ctx, "user,bogus=1")
    msg = h.first or b""
    status, _ = h.close()
    expect(msg.startswith(ERROR) and b"bogus" in msg and status == 1, f"{status} {msg!r}")



# ---- hvmm itself: the --network errors and the helper's lifetime ----

def _helpers_with(marker):
    """PIDs of live hvmm-net-slirp processes whose spec contains marker (read-only scan)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"hvmm-net-slirp") and any(marker.encode() in a for a in argv):
            pids.append(int(d))
    return pids


@case("netdev/hvmm-network-errors")
def t_hvmm_network_errors(ctx):
    img = ctx.guest("hello.elf")
    r = ctx.hvmm("--network", "user,hostfwd=tcp::0-:22", img, stats=False)
    expect(r.status == 2 and r.err.startswith("hvmm: --network") and "bad host port" in r.err
           and r.err.count("\n") == 1, "bad spec: one line, status 2", r)
    r = ctx.hvmm("--network", "tap:hvmm-no-such9", img, stats=False)
    expect(r.status == 6 and "no network interface hvmm-no-such9" in r.err
           and r.err.count("\n") == 1, "missing tap: one line, status 6", r)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = ctx.hvmm("--network", f"user,hostfwd=tcp:127.0.0.1:{port}-:22", img, stats=False)
    finally:
        s.close()
    expect(r.status == 6 and f"hostfwd tcp 127.0.0.1:{port}" in r.err and r.err.count("\n") == 1,
           "host port in use: one line naming it, status 6", r)


@case("netdev/hvmm-helper-lifetime")
def t_hvmm_helper_lifetime(ctx):
    port = free_port()
    marker = f"hostfwd=tcp:127.0.0.1:{port}-"
    r = ctx.hvmm("--network", f"user,{marker}:22", ctx.guest("hello.elf"))
    expect(r.status == 1 and "Hello" in r.out, "hello.elf with a user network", r)
    expect(r.err == "", "nothing on stderr", r)
    left = _helpers_with(marker)
    expect(not left, f"slirp helper still running after hvmm exited: pids {left}")
    # while hvmm ran, the hostfwd port was bound; now it is free again
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.close()


@case("netdev/slirp-corrupt-ring", kvm=False)
def t_slirp_corrupt_ring(ctx):
    """hvmm's side of the rings is checked too: an impossible head or frame
    length makes the helper exit 1 (and never read outside its mapping)."""
    for what in ("head", "length"):
        h = Helper(ctx, "user")
        expect(h.first == READY, f"first message {h.first!r}")
        if what == "head":
            h._put(TX, HEAD, RING_SLOTS + 7)
        else:
            struct.pack_into("<I", h.shm, h._slot(TX, 0), SLOT_SIZE + 100)
            h._put(TX, HEAD, 1)
        os.eventfd_write(h.txbell, 1)
        try:
            status = h.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        _, err = h.close()
        expect(status == 1 and "corrupt" in err, f"{what}: helper status {status}, stderr {err!r}")


@case("netdev/slirp-max-conns", kvm=False)
def t_slirp_max_conns(ctx):
    """max-conns=3: of five guest SYNs to the host, three get slirp's SYN-ACK
    and two a reset from the helper (RST+ACK from 10.0.2.2:port, acking the
    SYN, checksums right), at once; a retransmitted SYN of an admitted
    connection is not refused; a new UDP flow at the cap is dropped, the
    helper stays up; once the guest resets one connection a new SYN is
    admitted again."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    h = Helper(ctx, "user,host-loopback=on,max-conns=3")
    try:
        expect(h.first == READY, f"first message {h.first!r}")
        h.send(arp(1, GUEST_MAC, GUEST_IP, b"\0" * 6, HOST_IP, BCAST))
        rep = h.wait_for(lambda p: p["type"] == 0x0806 and p["op"] == 2 and p["spa"] == HOST_IP,
                         what="ARP reply for 10.0.2.2")

        def syn(sport, flags=0x02, seq=1, ack=0):
            return eth(rep["sha"], GUEST_MAC, 0x0800,
                       ipv4(GUEST_IP, HOST_IP, 6, tcp(GUEST_IP, HOST_IP, sport, port, seq, ack, flags)))

        def answer(sport):
            return h.wait_for(lambda p: p.get("proto") == 6 and p["sport"] == port and p["dport"] == sport,
                              what=f"answer to the SYN from port {sport}")
        got = {}
        for sport in range(40000, 40005):
            h.send(syn(sport))
            got[sport] = answer(sport)
        flags = [got[s]["flags"] & 0x16 for s in sorted(got)]
        expect(flags == [0x12, 0x12, 0x12, 0x14, 0x14],
               f"SYN answers {[hex(f) for f in flags]}: want three SYN-ACKs, then two RST+ACKs")
        for s in (40003, 40004):
            expect(got[s]["ack"] == 2 and got[s]["ipsrc"] == HOST_IP and got[s]["dst"] == GUEST_MAC,
                   f"the reset for port {s}: {got[s]}")
        # the reset as the guest's stack checks it
        h.send(syn(40004))
        raw = None
        end = time.time() + 5
        while time.time() < end and raw is None:
            f = h.recv(end - time.time())
            if f and parse(f).get("dport") == 40004:
                raw = f
        expect(raw is not None, "no reset for a second SYN from port 40004")
        ip = raw[14:34]
        expect(csum(ip) == 0, "the reset's IPv4 checksum is wrong")
        seg = raw[34:54]
        expect(csum(ip[12:20] + struct.pack("!BBH", 0, 6, 20) + seg) == 0, "the reset's TCP checksum is wrong")
        # a retransmitted SYN of an admitted connection at the cap: slirp's, not a reset
        # (slirp drops it silently in SYN_RECEIVED): watched for a second
        h.send(syn(40002))
        end = time.time() + 1
        while time.time() < end:
            f = h.recv(end - time.time())
            p = parse(f) if f else {}
            expect(not (p.get("dport") == 40002 and p["flags"] & 0x04),
                   f"a retransmitted SYN at the cap was reset: {p}")
        # a new UDP flow at the cap: dropped (the kernel refuses its socket); the helper lives on
        h.send(eth(rep["sha"], GUEST_MAC, 0x0800, ipv4(GUEST_IP, HOST_IP, 17, udp(GUEST_IP, HOST_IP, 5000, 9,
                                                                               b"x"))))
        # the guest resets its first connection: slirp closes that host socket
        h.send(syn(40000, flags=0x04, seq=2))
        time.sleep(0.5)
        h.send(syn(40005))
        p = answer(40005)
        expect(p["flags"] & 0x12 == 0x12, f"after one connection closed, a new SYN got {p}")
        h.send(syn(40006))
        p = answer(40006)
        expect(p["flags"] & 0x14 == 0x14, f"at the cap again, a new SYN got {p}")
    finally:
        srv.close()
        status, err = h.close()
    expect(status == 0, f"helper exit status {status} after EOF: {err}")
