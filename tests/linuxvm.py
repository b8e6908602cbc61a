"""A Linux guest driven the way a person at a terminal drives it: the VMM's
stdin and stdout are a pseudo-terminal (as under tmux or ssh), the test types
commands and reads the answers.

    with LinuxVM(argv, timeout=120) as vm:
        vm.expect(PROMPT)
        out = vm.run("uname -r")
        vm.send("poweroff\\n")
        status = vm.wait(60)

Every VM ends: wait() kills the process this object started (its own process
group, by PID) when the time is up, and so does leaving the `with` block.
"""
import os
import re
import select
import signal
import subprocess
import threading
import time

IMAGES_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "linux-images")


def random_disk(prefix, mib):
    """A fresh directory (tempfile, PREFIX) and in it disk.img, MIB MiB of
    random bytes (what a bench's guest reads): (directory, path)."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix=prefix)
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.write(os.urandom(mib << 20))
    return tmp, disk


def images(build, *names):
    """Paths of build/linux/NAME (scripts/linux-images: the Debian kernel
    and the guest's images), built on first use. In the nested KVM host,
    which has no network, tests/run.py has built them beforehand."""
    d = os.path.join(build, "linux")
    paths = {n: os.path.join(d, n) for n in names}
    if not all(os.path.exists(p) for p in paths.values()):
        try:
            p = subprocess.run([IMAGES_SCRIPT, build], capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise AssertionError("scripts/linux-images timed out: the Debian kernel and images were not built")
        missing = [n for n, x in paths.items() if not os.path.exists(x)]
        if p.returncode != 0 or missing:
            raise AssertionError(f"scripts/linux-images (status {p.returncode}) left {missing or 'nothing'} "
                                 "missing: " + p.stderr.strip()[-400:])
    return paths


# The prompt of scripts/linux-rootfs/profile, at the end of the output.
PROMPT = re.compile(r"root@hvmm-guest:[^\n]*# $")
# Terminal control sequences (busybox's shell asks for the cursor position
# after each prompt, ESC [ 6 n): not output, dropped.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PARTIAL_ESC = re.compile(r"\x1b(\[[0-9;?]*)?$")


class Timeout(AssertionError):
    pass


class LinuxVM:
    def __init__(self, argv, timeout, env=None, mirror=None):
        """mirror: a file that gets the guest's output as it comes (the demo)."""
        self.argv, self.deadline = argv, time.time() + timeout
        self.mirror = mirror
        self.t0 = time.time()
        self.buf = ""          # everything the guest printed, \r removed
        self.pos = 0           # where the next expect() starts looking
        self.cond = threading.Condition()
        master, slave = os.openpty()
        self.master = master
        self.p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                  start_new_session=True, env=env)
        os.close(slave)
        self.err = b""
        self.eof = False
        self.partial = ""
        threading.Thread(target=self._read_out, daemon=True).start()
        self.err_thread = threading.Thread(target=self._read_err, daemon=True)
        self.err_thread.start()

    def _read_out(self):
        while True:
            try:
                r, _, _ = select.select([self.master], [], [], 0.5)
                if not r:
                    if self.p.poll() is not None:
                        break
                    continue
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the VMM closed its side
                break
            if not data:
                break
            text = self.partial + data.decode(errors="replace")
            # An escape sequence split across reads is kept for the next one.
            cut = PARTIAL_ESC.search(text)
            self.partial = text[cut.start():] if cut else ""
            text = text[:cut.start()] if cut else text
            clean = ANSI.sub("", text.replace("\r", ""))
            if self.mirror:
                self.mirror.write(clean)
                self.mirror.flush()
            with self.cond:
                self.buf += clean
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _read_err(self):
        self.err = self.p.stderr.read()

    def elapsed(self):
        return time.time() - self.t0

    def expect(self, rx, timeout=None, what=None, final=True):
        """Wait for rx in the output after the last match; returns the match.
        Raises Timeout with the output's tail when it does not come; final:
        the VMM is ended first, for its last words (last_words). A check
        that something does NOT come passes final=False."""
        rx = re.compile(rx) if isinstance(rx, str) else rx
        end = min(self.deadline, time.time() + timeout) if timeout else self.deadline
        with self.cond:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = end - time.time()
                if left <= 0 or self.eof:
                    why = "the VMM ended" if self.eof else f"{timeout or 'overall'} s passed"
                    msg = f"never saw {what or rx.pattern!r} ({why}, {self.elapsed():.0f} s in)"
                    break
                self.cond.wait(min(left, 1.0))
        if final:
            self.last_words()
        raise Timeout(msg + self.tail())

    def send(self, text):
        data = text.encode()
        while data:
            n = os.write(self.master, data[:64])
            data = data[n:]
            time.sleep(0.01)  # a person's typing speed; a UART FIFO is 16 bytes

    def run(self, cmd, timeout=60):
        """Type cmd at the prompt; its output once the shell is back. The
        markers around it are computed by the shell ($((N+1))), so the
        terminal's echo of the typed line (wrapped at any column) never
        matches them. A non-zero exit status raises."""
        n = int(time.time() * 1000) % 1000000
        self.send(f"printf 'B%sB\\n' $(({n}+1)); {cmd}; printf 'E%s:%sE\\n' $(({n}+1)) $?\n")
        b = self.expect(f"B{n + 1}B\n", timeout, what=f"the start of `{cmd}`")
        e = self.expect(f"E{n + 1}:(\\d+)E", timeout, what=f"the end of `{cmd}`")
        out = self.buf[b.end():e.start()]
        self.expect(PROMPT, timeout, what="the prompt after " + cmd)
        if e.group(1) != "0":
            raise AssertionError(f"`{cmd}` exited {e.group(1)}:\n{out[-1500:]}")
        return out

    def wait(self, timeout):
        """The VMM's exit status; kills it (its process group) after timeout."""
        try:
            return self.p.wait(timeout=max(0.1, min(timeout, self.deadline - time.time())))
        except subprocess.TimeoutExpired:
            self.last_words()
            raise Timeout(f"the VMM did not end within {timeout} s" + self.tail())

    def last_words(self):
        """A VMM still running when a wait failed is ended with SIGTERM (not
        SIGKILL), so that what it says on the way out (hvmm's --stats: exit
        counts and where each vCPU was) is in the failure's message."""
        if self.p.poll() is None:
            try:
                self.p.terminate()
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)  # the group this object started
            except ProcessLookupError:
                pass
            self.p.wait()

    # Where a guest kernel's own crash report starts: with `quiet` it is
    # the first thing printed, and the tail alone would cut its first lines.
    OOPS = re.compile(r"^\[ *[\d.]+\] (BUG: |Oops|general protection|kernel BUG|Kernel panic|"
                      r"watchdog: |rcu: INFO|WARNING: CPU|traps: |NMI )", re.M)

    def tail(self, n=2000):
        if self.p.poll() is not None:
            self.err_thread.join(2)  # the VMM ended: its last words are coming
        err = self.err.decode(errors="replace")
        oops = self.OOPS.search(self.buf)
        if oops and len(self.buf) - oops.start() > n:
            n = min(len(self.buf) - oops.start(), 8000)
        return (f"\n      output (last {n} chars):\n{self.buf[-n:]}"
                + (f"\n      stderr:\n{err[-3000:]}" if err.strip() else ""))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        os.close(self.master)
