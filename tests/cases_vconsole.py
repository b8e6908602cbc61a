"""--console virtio on a terminal: hvmm's stdin and stdout are a pseudo-terminal,
the guest's ring-3 virtio-console driver echoes lines (test=virtio-console).
Typed keys reach the guest through virtio (not COM1), the terminal is raw while
the guest runs and restored on every way out (Ctrl-A x, timeout, SIGTERM).
"""
import os
import pty
import select
import signal as _signal
import subprocess as sp
import termios
import time

from harness import case, expect

PROMPT = b"send lines, END ends"


def vcons_pty(ctx, steps=(), sig=None, vm_timeout=20, extra=()):
    """hvmm --console virtio on a pty: (status, output, stderr, termios before, during, after).

    steps: (bytes to type, bytes to wait for in the output before the next step)."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    argv = [ctx.hvmm_bin, "run", "--timeout", str(vm_timeout), "--console", "virtio", *extra,
            "--cmdline", "test=virtio-console mode=poll", ctx.path("guest", "hvmm-guest.elf")]
    p = sp.Popen(argv, stdin=slave, stdout=slave, stderr=sp.PIPE)
    out = b""
    during = None
    deadline = time.time() + vm_timeout + 10

    def pump(until):
        nonlocal out
        while (until is None or until not in out) and time.time() < deadline and p.poll() is None:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    return

    try:
        pump(PROMPT)
        during = termios.tcgetattr(slave)
        for keys, wait in steps:
            os.write(master, keys)
            if wait:
                pump(wait)
        if sig:
            p.send_signal(sig)
        pump(None)
        if p.poll() is None:
            p.kill()  # the process this test started, by its Popen handle
            raise AssertionError(f"hvmm --console virtio on a pty did not end: {out[-400:]!r}")
        err = p.stderr.read().decode(errors="replace")
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    return p.returncode, out.decode(errors="replace"), err, before, during, after


def raw(attrs):
    return not (attrs[3] & termios.ICANON) and not (attrs[3] & termios.ECHO)


@case("vconsole/echo-ctrl-a-x-raw-terminal")
def t_vcons_ctrl_a_x(ctx):
    status, out, err, before, during, after = vcons_pty(
        ctx, steps=((b"ping-through-virtio\n", b"ping-through-virtio"), (b"\x01x", None)))
    expect(PROMPT.decode() in out, f"the guest's driver came up: {out[-600:]!r} {err!r}")
    # the echo can only come back through virtio-console: COM1 does not read stdin here
    expect("ping-through-virtio" in out, f"typed line echoed by the guest's virtio driver: {out[-600:]!r}")
    expect(status == 0, f"Ctrl-A x ends hvmm with status 0 (got {status}) {err!r}")
    expect(during is not None and raw(during), "terminal raw while the guest runs")
    expect(after == before, "terminal settings restored after Ctrl-A x")


@case("vconsole/terminal-restored-on-timeout")
def t_vcons_timeout(ctx):
    status, _, err, before, during, after = vcons_pty(ctx, vm_timeout=3)
    expect(status == 124, f"timeout status {status} {err!r}")
    expect(during is not None and raw(during) and after == before, "raw while running, restored after timeout")


@case("vconsole/terminal-restored-on-sigterm")
def t_vcons_sigterm(ctx):
    status, _, err, before, during, after = vcons_pty(ctx, sig=_signal.SIGTERM)
    expect(status == 128 + 15, f"SIGTERM status {status} {err!r}")
    expect(during is not None and raw(during) and after == before, "raw while running, restored after SIGTERM")


@case("vconsole/stalled-output-holds-back-only-the-console")
def t_stalled_output(ctx):
    """The reader of hvmm's stdout stops reading (a paused terminal, a stuck
    pipe): the guest's hvc0 output waits in its own ring, and the event loop
    goes on serving the other devices. The guest (test=virtio-console-stall)
    posts 8 KiB of console output into a 4 KiB pipe nobody reads, then asks
    virtio-rng for bytes; it reports on COM1, which goes to a file. Once the
    console's writes blocked the loop, and virtio-rng never answered."""
    import fcntl
    from cases_guest import plan, tap
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    serial = os.path.join(ctx.tmp, "stall-serial.txt")
    argv = [ctx.hvmm_bin, "run", "--timeout", "60", "--console", "virtio", "--rng", "--serial", serial,
            "--stats", "--cmdline", "test=virtio-console-stall mode=poll", ctx.path("guest", "hvmm-guest.elf")]
    p = sp.Popen(argv, stdin=sp.DEVNULL, stdout=w, stderr=sp.PIPE)
    os.close(w)
    try:
        try:
            _, err = p.communicate(timeout=90)
        except sp.TimeoutExpired:
            p.kill()  # the process this test started, by its Popen handle
            _, err = p.communicate()
        held = os.read(r, 65536)
    finally:
        os.close(r)
    err = err.decode(errors="replace")
    out = open(serial, errors="replace").read()
    t = tap(out)
    expect(t and plan(out) == len(t) and all(ok for _, ok, _, _ in t),
           f"the guest's checks: {out[-1500:]!r}; stderr {err[-500:]!r}")
    expect(p.returncode == 1, f"status {p.returncode}, want 1 (all passed); stderr {err[-500:]!r}")
    expect(0 < len(held) <= 4096 and held[:10] == b"abcdefghij",
           f"the pipe holds the start of the output, {len(held)} bytes: {held[:40]!r}")
    expect("virtio-console: stdout took no more output" in err, f"--stats counts the stall: {err[-500:]!r}")
    print(f"      {len(held)} bytes reached the stalled pipe; virtio-rng answered meanwhile")
