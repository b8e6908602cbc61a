"""virtio-net end to end: the guest's ring-3 stack (guest/user/net.c) on the
ring-3 virtio-net driver gets an address by DHCP from slirp, listens on a
TCP port, and this test connects to it from the host through hostfwd.

For each mode (polling, then interrupts) the guest prints
"# virtio-net-tcp (MODE): listening on IP:PORT"; the test then connects to
127.0.0.1:HOSTPORT, sends a request line, and checks the reply
"echo <line> from 10.0.2.15"; with netbench=N it also reads N MiB and checks
every byte against the guest's pattern. Both sides are checked: the host's
view here, the guest's in its TAP lines.

Runs on QEMU (q35, virtio-net-pci modern-only, -netdev user) and on hvmm
(--network user,hostfwd=...).

Run by hand (prints the netbench numbers):
    tests/cases_net.py --qemu|--hvmm build/hvmm [--mib N] [--mode poll|irq]
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, expect, free_port, reference_retry  # noqa: E402

KERNEL = ("guest", "hvmm-guest.elf")
GUEST_PORT = 8080
LISTEN = re.compile(r"^# virtio-net-tcp \((\w+)\): listening on ([\d.]+):(\d+)")


def pattern_block(start, n):
    """Bytes start..start+n-1 of the guest's bench stream: (i + i // 251) mod 256."""
    return bytes((i + i // 251) & 255 for i in range(start, start + n))


class Client:
    """One TCP exchange with the guest: request line, reply line, bulk bytes."""

    def __init__(self, port, request, mib):
        self.port, self.request, self.mib = port, request, mib
        self.reply, self.bulk, self.bad_at, self.secs, self.err = b"", 0, None, 0.0, None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.settimeout(30)
            s.sendall(self.request)
            f = s.makefile("rb", buffering=0)
            buf = b""
            while not buf.endswith(b"\n") and len(buf) < 256:
                c = s.recv(1)
                if not c:
                    break
                buf += c
            self.reply = buf
            t0 = time.monotonic()
            want = self.mib << 20
            expect_blk = pattern_block(0, 251 * 256)  # the pattern repeats every 251*256 bytes
            period = len(expect_blk)
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                if self.bad_at is None:
                    off = self.bulk % period
                    i = 0
                    while i < len(d):
                        k = min(len(d) - i, period - off)
                        if d[i:i + k] != expect_blk[off:off + k]:
                            self.bad_at = self.bulk + i
                            break
                        i += k
                        off = 0
                self.bulk += len(d)
            self.secs = time.monotonic() - t0
            if self.bulk != want:
                self.err = f"got {self.bulk} bulk bytes, want {want}"
            del f
            s.close()
        except OSError as e:
            self.err = f"{type(e).__name__}: {e}"


def run_vm(argv, host_port, mib, timeout, request=b"hello hvmm\n"):
    """Starts the VM, answers every "listening" line with one exchange.
    Returns (status, serial output, stderr, [(mode, Client)])."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err, clients = [], [], []

    def drain_err():
        err.append(p.stderr.read().decode(errors="replace"))

    te = threading.Thread(target=drain_err, daemon=True)
    te.start()
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, p.kill)  # only the process this test started
    timer.start()
    try:
        for raw in iter(p.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            out.append(line)
            m = LISTEN.match(line)
            if m:
                c = Client(host_port, request, mib)
                t = threading.Thread(target=c.run, daemon=True)
                t.start()
                clients.append((m.group(1), c, t))
        p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        timer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    for _, _, t in clients:
        t.join(timeout=5)
    te.join(timeout=5)
    return p.returncode, "\n".join(out), "".join(err), [(mo, c) for mo, c, _ in clients]


def qemu_argv(kernel, append, host_port, accel="kvm"):
    argv = ["qemu-system-x86_64", "-M", "q35", "-m", "256M", "-smp", "1", "-nodefaults", "-no-reboot",
            "-display", "none", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-kernel", kernel, "-append", append,
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{host_port}-:{GUEST_PORT}",
            "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"]
    if accel == "kvm":
        argv += ["-enable-kvm", "-cpu", "host,-arch-capabilities"]
    else:
        argv += ["-accel", "tcg", "-cpu", "max"]
    return argv


def hvmm_argv(hvmm, kernel, append, host_port, vm_timeout, extra=()):
    return [hvmm, "run", "--timeout", str(vm_timeout), "--mem", "256M", "--cmdline", append,
            "--network", f"user,hostfwd=tcp:127.0.0.1:{host_port}-:{GUEST_PORT}", *extra, kernel]


def tap_lines(out):
    return [l for l in out.splitlines() if re.match(r"(not ok|ok) \d+ - ", l)]


def check(name, res, mib, modes):
    status, out, err, clients = res
    taps = tap_lines(out)
    bad = [l for l in taps if l.startswith("not ok")]
    expect(not bad, f"{name}: guest TAP failures: {bad}\n{out[-2000:]}\n{err[-800:]}")
    expect(status == 1, f"{name}: debug-exit 0 -> status 1, got {status}\n{out[-2000:]}\n{err[-800:]}")
    expect([m for m, _ in clients] == modes, f"{name}: listening lines for {modes}, got {[m for m, _ in clients]}\n{out[-1500:]}")
    for mode, c in clients:
        expect(c.err is None, f"{name} ({mode}): host client: {c.err}\n{out[-1500:]}")
        expect(c.reply == b"echo hello hvmm from 10.0.2.15\n", f"{name} ({mode}): reply {c.reply!r}")
        expect(c.bad_at is None, f"{name} ({mode}): bench byte {c.bad_at} differs from the pattern")
        expect(c.bulk == mib << 20, f"{name} ({mode}): {c.bulk} bench bytes, want {mib << 20}")
    for mode in modes:
        whats = ["DHCP lease 10.0.2.15 mask 255.255.255.0 router 10.0.2.2",
                 "request \"hello hvmm\" answered", "connection closed"]
        if mib:
            whats.append(f"netbench sent {mib} MiB")
        for what in whats:
            expect(any(f"virtio-net-tcp ({mode}): " in l and what in l for l in taps),
                   f"{name} ({mode}): no TAP line with {what!r}\n{out[-1500:]}")
    return [(mode, c.bulk / c.secs / (1 << 20) if c.secs else 0.0) for mode, c in clients]


MIB = 8


@case("net/virtio-net-tcp-qemu", kvm=True, qemu=True)
def t_qemu(ctx):
    append = f"test=virtio-net-tcp netport={GUEST_PORT} netbench={MIB}"

    def once():
        port = free_port()
        return run_vm(qemu_argv(ctx.path(*KERNEL), append, port), port, MIB, timeout=120)
    # the reference: one more run if it fails (a QEMU run once stopped
    # printing after its timer calibration in the nested host)
    reference_retry(once, lambda res: check("QEMU", res, MIB, ["poll", "irq"]))


@case("net/virtio-net-tcp-hvmm", kvm=True)
def t_hvmm(ctx):
    port = free_port()
    append = f"test=virtio-net-tcp netport={GUEST_PORT} netbench={MIB}"
    res = run_vm(hvmm_argv(ctx.hvmm_bin, ctx.path(*KERNEL), append, port, 100), port, MIB, timeout=120)
    check("hvmm", res, MIB, ["poll", "irq"])


@case("net/virtio-net-tcp-hvmm-no-ioeventfd-no-irqfd", kvm=True)
def t_hvmm_exits(ctx):
    """The same exchange with notifies as user-space exits and interrupts
    injected by hvmm: the fallback paths under a few thousand frames."""
    port = free_port()
    append = f"test=virtio-net-tcp netport={GUEST_PORT} netbench=2"
    argv = hvmm_argv(ctx.hvmm_bin, ctx.path(*KERNEL), append, port, 100, ["--no-ioeventfd", "--no-irqfd"])
    res = run_vm(argv, port, 2, timeout=120)
    check("hvmm --no-ioeventfd --no-irqfd", res, 2, ["poll", "irq"])


def main():
    import argparse
    ap = argparse.ArgumentParser(description="virtio-net TCP exchange and netbench, by hand")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--qemu", action="store_true")
    g.add_argument("--qemu-tcg", action="store_true")
    g.add_argument("--hvmm", metavar="HVMM")
    ap.add_argument("--build", default="build")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--mode", choices=["poll", "irq"])
    ap.add_argument("--repeat", type=int, default=1, help="runs (the median is reported)")
    ap.add_argument("--extra", default="", help="more guest command-line words")
    ap.add_argument("--hvmm-opt", action="append", default=[], help="more hvmm options (--no-ioeventfd, ...)")
    a = ap.parse_args()
    kernel = os.path.join(a.build, *KERNEL)
    modes = [a.mode] if a.mode else ["poll", "irq"]
    rates = {m: [] for m in modes}
    rc = 0
    for rep in range(a.repeat):
        port = free_port()
        append = f"test=virtio-net-tcp netport={GUEST_PORT} netbench={a.mib}"
        if a.mode:
            append += f" mode={a.mode}"
        if a.extra:
            append += " " + a.extra
        if a.hvmm:
            argv = hvmm_argv(a.hvmm, kernel, append, port, 300, a.hvmm_opt)
        else:
            argv = qemu_argv(kernel, append, port, "tcg" if a.qemu_tcg else "kvm")
        res = run_vm(argv, port, a.mib, timeout=320)
        if a.repeat == 1:
            print(res[1])
            if res[2].strip():
                print(res[2].strip(), file=sys.stderr)
        for mode, c in res[3]:
            rate = c.bulk / c.secs / (1 << 20) if c.secs else 0
            guest = re.search(rf"\({mode}\): netbench sent \d+ MiB in \d+ ms: ([\d.]+) MiB/s", res[1])
            print(f"run {rep + 1} ({mode}): host read {c.bulk} bytes in {c.secs:.3f} s = {rate:.1f} MiB/s;"
                  f" guest {guest.group(1) if guest else '?'} MiB/s; pattern {'ok' if c.bad_at is None else f'BAD at {c.bad_at}'}"
                  f"{'' if c.err is None else ', error ' + c.err}")
            if guest:
                rates[mode].append(float(guest.group(1)))
        try:
            check("run", res, a.mib, modes)
        except AssertionError as e:
            print(f"FAIL: {e}")
            rc = 1
    for m, r in rates.items():
        if r:
            r.sort()
            print(f"{m}: guest-timed MiB/s over {len(r)} runs: median {r[len(r) // 2]:.1f}, min {r[0]:.1f}, max {r[-1]:.1f}")
    print("PASS" if rc == 0 else "FAIL")
    return rc


if __name__ == "__main__":
    sys.exit(main())
