#!/usr/bin/env python3
"""kvm-unit-tests on hvmm and on QEMU+KVM, test by test, from x86/unittests.cfg.

The suite is built by scripts/kvm-unit-tests.sh into BUILD/kvm-unit-tests.
Each entry of x86/unittests.cfg runs on both VMMs with the cfg's smp,
test_args and qemu_params, as its own run_tests.sh runs it on QEMU:

  QEMU: qemu-system-x86_64 --no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard
        -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none
        -serial stdio -device pci-testdev -machine accel=kvm -enable-kvm -cpu host
        -kernel x86/T.flat -smp N [-append ARGS] QEMU_PARAMS
  hvmm: hvmm run --timeout T --cpus N --device pc-testdev --device pci-testdev [--mem M] [--cpuid-set/--cpuid-mask F]
        [--cmdline ARGS] x86/T.flat

(-cpu host first, so a cfg's own -cpu wins on QEMU; hvmm's CPU is always the
host's as KVM supports it, with the cfg's +feature/-feature applied where hvmm
knows the name.) A test ends through isa-debug-exit: status 1 is PASS, 77
(exit code 38, "all skipped") SKIP, anything else, a timeout included, FAIL.

Every run is a process group of its own with a hard timeout (the cfg's, or
run_tests.sh's default of 90 s) that kills that group and nothing else: some
tests have hung a whole nested KVM host under QEMU.

Used by tests/cases_kut.py, and by hand:
  tests/kut.py [--build build] [--hvmm build/hvmm] [-k REGEX] [--vmm both|hvmm|qemu]
"""
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time

DEFAULT_TIMEOUT = 90  # run_tests.sh's, when the cfg gives none
# hvmm's --cpuid-set/--cpuid-mask names for QEMU's -cpu flags (the rest is
# QEMU's '-' where hvmm, like /proc/cpuinfo, has '_').
QEMU_FLAG = {"tsc-deadline": "tsc_deadline"}


class Test:
    def __init__(self, name):
        self.name = name
        self.file = None
        self.smp = 1
        self.test_args = []
        self.qemu_params = ""
        self.arch = ""
        self.groups = []
        self.check = []
        self.accel = ""
        self.machine = ""
        self.timeout = DEFAULT_TIMEOUT

    def __repr__(self):
        return f"Test({self.name})"


def _expand(s):
    """The cfg's values go through bash's eval in run_tests.sh: expand
    backticks (kvmclock_test's `date +%s`) the same way."""
    return re.sub(r"`([^`]*)`",
                  lambda m: subprocess.run(["sh", "-c", m.group(1)], capture_output=True,
                                           text=True).stdout.strip(), s)


def _seconds(v):
    m = re.fullmatch(r"(\d+)([smh]?)", v.strip())
    if not m:
        raise ValueError(f"bad timeout {v!r}")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_cfg(path):
    """[Test] in file order. Keys as scripts/common.bash reads them;
    extra_params is the older name of qemu_params."""
    tests = []
    cur = None
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[(.*)\]", line)
        if m:
            cur = Test(m.group(1))
            tests.append(cur)
            continue
        m = re.fullmatch(r"(\w+)\s*=\s*(.*)", line)
        if not m or cur is None:
            continue
        key, val = m.group(1), m.group(2)
        if key in ("qemu_params", "extra_params") and val.startswith('"""'):
            # a multi-line value, up to the closing """
            val = val[3:]
            while '"""' not in val and i < len(lines):
                val += " " + lines[i].strip()
                i += 1
            val = val.split('"""')[0]
        if key == "file":
            cur.file = val
        elif key == "smp":
            cur.smp = int(_expand(val))
        elif key == "test_args":
            cur.test_args = shlex.split(_expand(val))
        elif key in ("qemu_params", "extra_params"):
            cur.qemu_params = _expand(val)
        elif key == "arch":
            cur.arch = val
        elif key == "groups":
            cur.groups = val.split()
        elif key == "check":
            cur.check = val.split()
        elif key == "accel":
            cur.accel = val
        elif key == "machine":
            cur.machine = val
        elif key == "timeout":
            cur.timeout = _seconds(val)
    return tests


def skip_reason(t):
    """Why a test cannot run here on either VMM (the same rules as
    run_tests.sh on an x86_64 KVM host), or None."""
    if t.arch and t.arch != "x86_64":
        return f"{t.arch} only"
    if t.accel and t.accel != "kvm":
        return f"{t.accel} only"
    for c in t.check:
        path, _, want = c.partition("=")
        try:
            with open(path) as f:
                have = f.read().strip()
        except OSError:
            have = None
        if have != want:
            return f"check {path}={want}: {'absent' if have is None else have}"
    return None


def qemu_argv(t, kut):
    argv = ["qemu-system-x86_64", "--no-reboot", "-nodefaults",
            "-global", "kvm-pit.lost_tick_policy=discard",
            "-device", "pc-testdev", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
            "-display", "none", "-serial", "stdio", "-device", "pci-testdev",
            "-machine", "accel=kvm", "-enable-kvm", "-cpu", "host",
            "-kernel", os.path.join(kut, "x86", t.file), "-smp", str(t.smp)]
    if t.test_args:
        argv += ["-append", " ".join(t.test_args)]
    return argv + shlex.split(t.qemu_params)


def hvmm_options(t):
    """(hvmm options, [QEMU parameters hvmm has no equivalent for])."""
    opts, untranslated = [], []
    p = shlex.split(t.qemu_params)
    i = 0
    while i < len(p):
        a = p[i]
        val = p[i + 1] if i + 1 < len(p) else ""
        if a == "-m":
            m = re.fullmatch(r"(\d+)([kKmMgG]?)", val)
            opts += ["--mem", (m.group(1) + (m.group(2) or "M").upper()) if m else val]
            i += 2
        elif a == "-cpu":
            for flag in val.split(",")[1:]:
                if flag[:1] in "+-" and len(flag) > 1:
                    name = QEMU_FLAG.get(flag[1:], flag[1:].replace("-", "_"))
                    if name in HVMM_FEATURES:
                        opts += ["--cpuid-set" if flag[0] == "+" else "--cpuid-mask", name]
                        continue
                untranslated.append(f"-cpu ...,{flag}")
            i += 2
        elif a in ("-machine", "-M", "-device", "-overcommit", "-global"):
            untranslated.append(f"{a} {val}")
            i += 2
        else:
            if a != "-enable-kvm":
                untranslated.append(a)
            i += 1
    return opts, untranslated


# hvmm's CPUID feature names (src/cpuid.c), for translating QEMU's -cpu flags.
HVMM_FEATURES = set()


def load_hvmm_features(src_root):
    try:
        with open(os.path.join(src_root, "src", "cpuid.c")) as f:
            HVMM_FEATURES.update(re.findall(r'\bF\("([a-z0-9_]+)"', f.read()))
    except OSError:
        pass


def hvmm_argv(t, kut, hvmm, timeout):
    opts, _ = hvmm_options(t)
    argv = [hvmm, "run", "--timeout", str(timeout), "--cpus", str(t.smp),
            "--device", "pc-testdev", "--device", "pci-testdev"] + opts
    if t.test_args:
        argv += ["--cmdline", " ".join(t.test_args)]
    return argv + [os.path.join(kut, "x86", t.file)]


class Run:
    def __init__(self, verdict, status, out, err, secs, why=""):
        self.verdict, self.status, self.out, self.err, self.secs, self.why = \
            verdict, status, out, err, secs, why

    def summary(self):
        m = re.findall(r"^SUMMARY: (.*?)\r?$", self.out, re.M)
        return m[-1] if m else ""

    def failures(self):
        return [l.rstrip("\r") for l in self.out.splitlines() if l.startswith("FAIL")]

    def cell(self):
        s = self.verdict
        if self.why:
            s += f" ({self.why})"
        return s


def run(argv, timeout):
    """Run one VMM in its own process group; kill that group (only it) after
    timeout seconds. Returns (status or None on timeout, out, err, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        status = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the group this run started
        except ProcessLookupError:
            pass
        # a grandchild may still hold the pipes: do not wait on them forever
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        p.wait()
        status = None
    return status, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - t0


def verdict(status, out):
    """kvm-unit-tests' status convention (scripts/arch-run.bash)."""
    if status is None:
        return "FAIL", "timeout"
    if status == 1:
        return "PASS", ""
    if status == 77:
        return "SKIP", ""
    if status == 3:
        return "FAIL", ""
    if status < 0:
        return "FAIL", f"signal {-status}"
    return "FAIL", f"status {status}"


def run_qemu(t, kut):
    # The cfg's timeout plus a margin: QEMU's own start (SeaBIOS) is not the test's time.
    st, out, err, secs = run(qemu_argv(t, kut), t.timeout + 15)
    v, why = verdict(st, out)
    if v == "PASS" and err.strip() and any("warning" not in l.lower() for l in err.strip().splitlines()):
        # run_tests.sh: status 1 with errors on stderr is QEMU failing, not the test passing
        v, why = "FAIL", "QEMU error: " + err.strip().splitlines()[-1][:80]
    return Run(v, st, out, err, secs, why)


def run_hvmm(t, kut, hvmm):
    st, out, err, secs = run(hvmm_argv(t, kut, hvmm, t.timeout), t.timeout + 15)
    v, why = verdict(st, out)
    if st == 124:
        v, why = "FAIL", "timeout"
    return Run(v, st, out, err, secs, why)


def cell(r):
    if r is None:
        return "-"
    return f"{r.cell()} {r.secs:.1f}s"


def table(rows):
    """rows: [(name, skip or None, qemu Run, hvmm Run)] → lines."""
    w = max([len(n) for n, *_ in rows] + [4])
    lines = [f"{'test':<{w}}  {'QEMU+KVM':<34}  hvmm"]
    for name, skip, q, h in rows:
        if skip:
            lines.append(f"{name:<{w}}  {'SKIP (' + skip + ')':<34}  SKIP (same)")
        else:
            lines.append(f"{name:<{w}}  {cell(q):<34}  {cell(h)}")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--hvmm", default=None)
    ap.add_argument("-k", dest="pattern")
    ap.add_argument("--vmm", choices=("both", "hvmm", "qemu"), default="both")
    ap.add_argument("-v", action="store_true", help="print each failing run's output")
    a = ap.parse_args()
    kut = os.path.join(a.build, "kvm-unit-tests")
    hvmm = os.path.abspath(a.hvmm or os.path.join(a.build, "hvmm"))
    load_hvmm_features(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    tests = parse_cfg(os.path.join(kut, "x86", "unittests.cfg"))
    rows = []
    t0 = time.monotonic()
    for t in tests:
        if a.pattern and not re.search(a.pattern, t.name):
            continue
        skip = skip_reason(t)
        q = h = None
        if not skip:
            if a.vmm in ("both", "qemu"):
                q = run_qemu(t, kut)
            if a.vmm in ("both", "hvmm"):
                h = run_hvmm(t, kut, hvmm)
        rows.append((t.name, skip, q, h))
        print(f"kut {t.name}: QEMU {cell(q) if not skip else 'SKIP ' + skip}; hvmm {cell(h) if not skip else '-'}",
              flush=True)
        if a.v:
            for who, r in (("QEMU", q), ("hvmm", h)):
                if r and r.verdict == "FAIL":
                    print(f"--- {who} {t.name} status {r.status}\n{r.out[-3000:]}\n{r.err[-1500:]}", flush=True)
    print("\n".join(table(rows)))
    print(f"# {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    main()
