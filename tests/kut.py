#!/usr/bin/env python3
"""kvm-unit-tests on hvmm and on QEMU+KVM, test by test, from x86/unittests.cfg.

The suite is built by scripts/kvm-unit-tests.sh into BUILD/kvm-unit-tests.
Each entry of x86/unittests.cfg runs on both VMMs with the cfg's smp,
test_args and qemu_params, as its own run_tests.sh runs it on QEMU:

  QEMU: qemu-system-x86_64 --no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard
        -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none
        -serial stdio -device pci-testdev -machine accel=kvm -enable-kvm -cpu host
        -kernel x86/T.flat -smp N [-append ARGS] QEMU_PARAMS
  hvmm: hvmm run --timeout T --cpus N --device pc-testdev --device pci-testdev [--mem M] [--cpuid-mask F]
        [--hyperv] [--device hyperv-testdev] [--cmdline ARGS] x86/T.flat

(-cpu host first, so a cfg's own -cpu wins on QEMU; hvmm's CPU is always the
host's as KVM supports it, with the cfg's -feature masked where hvmm knows the
name; a +feature is already there when KVM supports it, and when KVM does not,
QEMU drops it too.) A test ends through isa-debug-exit: status 1 is PASS, 77
(exit code 38, "all skipped") SKIP, anything else, a timeout included, FAIL.

Every run is a process group of its own with a hard timeout (the cfg's, or
run_tests.sh's default of 90 s) that kills that group and nothing else: some
tests have hung a whole nested KVM host under QEMU.

Used by tests/cases_kut.py, and by hand:
  tests/kut.py [--build build] [--hvmm build/hvmm] [-k REGEX] [--json FILE]
"""
import argparse
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

DEFAULT_TIMEOUT = 90  # run_tests.sh's, when the cfg gives none
# QEMU's own start (SeaBIOS, option ROMs: ~2 s in the nested host) is not the
# test's time: its hard limit is the test's plus this.
QEMU_START_MARGIN = 8
# In the nested host a QEMU+KVM run now and then hangs before the guest says
# anything (seen at ~1 in 15 runs, different tests each time; the same run
# then passes in 2 s): a kvm-unit-test prints its first line within a second
# of starting, so a reference silent this long never started its guest. It is
# stopped then, not at the test's timeout, and gets its one more run like any
# failed reference. hvmm's runs have no such rule.
QEMU_FIRST_OUTPUT = 20

# In the nested KVM host (QEMU's TCG emulating AMD-V under Linux KVM) these
# tests cannot finish within the cfg's own timeout on either VMM — measured
# there: x2apic, xapic, access, svm and debug timed out on QEMU+KVM and on
# hvmm at
# the full cfg timeout, svm_unsupported_instruction_intercept_test on QEMU+KVM
# (hvmm fails it at once) —
# so there a shorter limit gives the same verdict in a fraction of the time
# (the case's budget is ~8 minutes for both VMMs). The cfg's timeout applies
# unchanged everywhere else (a machine with /dev/kvm).
NESTED_LIMIT = 10
NESTED_SLOW = {
    "x2apic": "test_sti_nmi never finishes in the nested host (cfg 30 s)",
    "xapic": "test_sti_nmi never finishes in the nested host (cfg 60 s)",
    "access": "the page-table walk combinations take far longer than 90 s under TCG",
    "svm": "nested SVM inside the nested host (a third level) under TCG",
    "svm_unsupported_instruction_intercept_test": "nested SVM inside the nested host under TCG",
    "svm_no_npt": "svm's test list without NPT: as svm",
    "debug": "the debug-exception tests never finish in the nested host (cfg 90 s)",
}


def limit(t):
    """The run's time limit: the cfg's timeout, or NESTED_LIMIT for the
    tests NESTED_SLOW names when this runs inside the nested KVM host."""
    if os.environ.get("HVMM_IN_KVM_HOST") == "1" and t.name in NESTED_SLOW:
        return min(t.timeout, NESTED_LIMIT)
    return t.timeout
# hvmm's --cpuid-mask names for QEMU's -cpu flags (the rest is
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
    """Why the cfg says a test is not for an x86_64 KVM host (the same rules
    as run_tests.sh), or None."""
    if t.arch and t.arch != "x86_64":
        return f"{t.arch} only"
    if t.accel and t.accel != "kvm":
        return f"{t.accel} only"
    return None


def check_reason(t):
    """The cfg's `check` lines (a host file must hold a value), evaluated on
    the machine KVM runs on: why the test cannot run there, or None."""
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
                name = QEMU_FLAG.get(flag[1:], flag[1:].replace("-", "_"))
                if flag in ("hv_passthrough", "hv-passthrough"):
                    opts.append("--hyperv")  # every Hyper-V enlightenment KVM has
                elif flag in ("+svm", "+vmx"):
                    opts.append("--nested")  # hvmm hides both without it
                elif flag[:1] == "-" and name in HVMM_FEATURES:
                    opts += ["--cpuid-mask", name]
                elif flag[:1] != "+" or name not in HVMM_FEATURES:
                    untranslated.append(f"-cpu ...,{flag}")
                # "+feature" needs nothing: hvmm's CPUID already has every
                # feature KVM supports here, and QEMU+KVM drops (with a
                # warning) one KVM does not, so neither VMM shows it then.
                # --cpuid-set would force it on, which QEMU never does.
            i += 2
        elif a in ("-machine", "-M"):
            # The machine type (q35, pc) does not matter to hvmm, which has one
            # platform with both what the tests need from q35 (ECAM, the
            # VT-d unit's address) and from pc; kernel-irqchip picks the mode.
            for prop in val.split(","):
                if prop in ("q35", "pc", "type=q35", "type=pc", "accel=kvm"):
                    continue
                if prop == "kernel-irqchip=split":
                    opts += ["--irqchip", "split"]
                elif prop in ("kernel-irqchip=on", "kernel-irqchip=true"):
                    opts += ["--irqchip", "kernel"]
                else:
                    untranslated.append(f"{a} ...,{prop}")
            i += 2
        elif a == "-device" and (val == "edu" or val.split(",")[0] == "intel-iommu"):
            opts += ["--device", val]  # the same name and properties as QEMU's
            i += 2
        elif a == "-device" and val == "hyperv-testdev":
            opts += ["--device", "hyperv-testdev"]  # with --hyperv from -cpu ...,hv_passthrough
            i += 2
        elif a in ("-device", "-overcommit", "-global"):
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


def run(argv, timeout, first_output=None):
    """Run one VMM in its own process group; kill that group (only it) after
    timeout seconds, or after first_output seconds if it has written nothing
    to stdout by then. Returns (status, or None when killed; out, err,
    seconds, whether it was killed for silence)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    chunks = {"out": [], "err": []}
    spoke = threading.Event()

    def pump(stream, key):
        while True:
            b = stream.read1(4096)
            if not b:
                break
            chunks[key].append(b)
            if key == "out":
                spoke.set()
    threads = [threading.Thread(target=pump, args=(p.stdout, "out"), daemon=True),
               threading.Thread(target=pump, args=(p.stderr, "err"), daemon=True)]
    for th in threads:
        th.start()
    silent = False
    if first_output is not None:
        deadline = t0 + min(first_output, timeout)
        while not spoke.is_set() and p.poll() is None and time.monotonic() < deadline:
            spoke.wait(0.05)
        silent = not spoke.is_set() and p.poll() is None
    status = None
    if not silent:
        try:
            status = p.wait(timeout=max(0.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            status = None
    # The group this run started, and only it: what is left of it after the
    # VMM exited (nothing, normally) or the VMM itself when it overran.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if status is None:
        p.wait()
    for th in threads:
        th.join(timeout=5)
    out = b"".join(chunks["out"]).decode(errors="replace")
    err = b"".join(chunks["err"]).decode(errors="replace")
    return status, out, err, time.monotonic() - t0, silent


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
    st, out, err, secs, silent = run(qemu_argv(t, kut), limit(t) + QEMU_START_MARGIN,
                                     first_output=QEMU_FIRST_OUTPUT)
    v, why = verdict(st, out)
    if silent:
        why = f"no output in {QEMU_FIRST_OUTPUT} s: QEMU never started the guest"
    if why == "timeout" and limit(t) != t.timeout:
        why = f"timeout, {limit(t)} s in the nested host"
    if v == "PASS" and err.strip() and any("warning" not in l.lower() for l in err.strip().splitlines()):
        # run_tests.sh: status 1 with errors on stderr is QEMU failing, not the test passing
        v, why = "FAIL", "QEMU error: " + err.strip().splitlines()[-1][:80]
    return Run(v, st, out, err, secs, why)


def run_hvmm(t, kut, hvmm):
    st, out, err, secs, _ = run(hvmm_argv(t, kut, hvmm, limit(t)), limit(t) + 15)
    v, why = verdict(st, out)
    if st == 124:
        v, why = "FAIL", "timeout"
    if why == "timeout" and limit(t) != t.timeout:
        why = f"timeout, {limit(t)} s in the nested host"
    # A sanitizer build (make test-asan) exits 1 after a report by default,
    # which is kvm-unit-tests' PASS: the report itself decides.
    if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", err):
        v, why = "FAIL", "sanitizer report"
    return Run(v, st, out, err, secs, why)


def cell(r):
    if r is None:
        return "-"
    return f"{r.cell()} {r.secs:.1f}s"


# ---- one run of a list of jobs, as the nested host's command (--inner) ----

def emit(kind, obj):
    print(f"KUT-{kind} {json.dumps(obj)}", flush=True)


def run_jobs(jobs, kut, hvmm):
    """jobs: "NAME/q1" (QEMU, one more run allowed), "NAME/q0" (QEMU, none
    left), "NAME/h" (hvmm). Prints a KUT-START line before and a KUT-RESULT
    line after each run, so whoever reads can tell which run a lost nested
    host took with it.

    The reference's one more run (harness.reference_retry's rule) comes after
    hvmm's run of the same test, when it can change what the case says: QEMU
    failed quickly (a timeout costs the whole timeout again), or hvmm passed
    where QEMU failed (is that real?)."""
    tests = {t.name: t for t in parse_cfg(os.path.join(kut, "x86", "unittests.cfg"))}
    last = {}  # test -> {vmm: (Run, kind)}

    def one(t, vmm, retried=False, before=0.0):
        emit("START", {"test": t.name, "vmm": vmm, "retried": retried})
        r = run_hvmm(t, kut, hvmm) if vmm == "hvmm" else run_qemu(t, kut)
        out = (r.out + r.err).replace("\r", "")
        emit("RESULT", {"test": t.name, "vmm": vmm, "verdict": r.verdict, "why": r.why,
                        "secs": round(r.secs, 1), "summary": r.summary(), "fails": r.failures()[:6],
                        "tail": out[-1500:], "retried": retried, "before": round(before, 1)})
        return r

    for job in jobs:
        name, _, kind = job.rpartition("/")
        t = tests[name]
        vmm = "hvmm" if kind == "h" else "qemu"
        why = check_reason(t)
        if why:
            emit("RESULT", {"test": name, "vmm": vmm, "verdict": "SKIP", "why": why, "secs": 0,
                            "summary": "", "fails": [], "tail": "", "retried": False})
            continue
        r = one(t, vmm)
        last.setdefault(name, {})[vmm] = (r, kind)
        q, h = last[name].get("qemu"), last[name].get("hvmm")
        said = (r.out + r.err).replace("\r", "").strip().splitlines()
        said = f" (its last line: {said[-1][:100]!r})" if said else " (it printed nothing)"
        if vmm == "qemu" and q[1] == "q1" and r.verdict == "FAIL" and not r.why.startswith("timeout"):
            emit("NOTE", {"test": name, "text": f"QEMU {r.cell()}{said}: one more run"})
            one(t, "qemu", retried=True, before=r.secs)
        elif (vmm == "hvmm" and q and q[1] == "q1" and q[0].verdict == "FAIL" and
              q[0].why.startswith("timeout") and r.verdict == "PASS"):
            qs = (q[0].out + q[0].err).replace("\r", "").strip().splitlines()
            qs = f" (its last line: {qs[-1][:100]!r})" if qs else " (it printed nothing)"
            emit("NOTE", {"test": name, "text": f"QEMU timed out where hvmm passed{qs}: one more run"})
            one(t, "qemu", retried=True, before=q[0].secs)


# ---- the supervisor: runs jobs where KVM is, survives a lost nested host ----

class Outcome:
    """What one VMM did with one test."""

    def __init__(self, verdict, why="", secs=0.0, summary="", fails=(), tail="", retried=False,
                 before=0.0):
        self.verdict, self.why, self.secs, self.summary = verdict, why, secs, summary
        self.fails, self.tail, self.retried = list(fails), tail, retried
        self.before = before  # seconds of the run this one repeated

    def total(self):
        return self.secs + self.before

    def cell(self):
        s = self.verdict
        if self.why:
            s += f" ({self.why})"
        if self.retried:
            s += f" [2nd run; 1st {self.before:.0f}s]"
        return f"{s} {self.secs:.0f}s" if self.verdict != "-" else "-"


HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "..", "scripts", "kvm-host")
# Nested hosts one call may boot: the first, and one per host lost on the way.
MAX_HOSTS = 6


def supervise(tests, build, hvmm, nested, say=print):
    """Runs every test on QEMU and on hvmm (QEMU first). nested: in nested
    KVM hosts (scripts/kvm-host), else on this machine's /dev/kvm. Returns
    {name: (qemu Outcome, hvmm Outcome)}. A nested host that dies or goes
    silent takes the run it was doing with it: the reference's counts as
    failed ("nested host lost"), hvmm's runs once more, and a fresh host goes
    on with the rest, that test's runs last."""
    kut = os.path.join(build, "kvm-unit-tests")
    res = {t.name: [None, None] for t in tests}
    by_name = {t.name: t for t in tests}
    qemu_left = {t.name: 1 for t in tests}  # retries left for the reference
    hvmm_lost = set()  # tests whose hvmm run lost a host once: they get one more
    # Tests whose run took a nested host down: what is left of them goes
    # last, so that if they take the next host down too no other test's run
    # waits for a host to boot again (kvm-unit-tests' emulator aborts the
    # outer QEMU's TCG on either VMM, every time).
    killers = []

    def jobs():
        j = []
        for t in sorted(tests, key=lambda t: t.name in killers):
            q, h = res[t.name]
            if q is None:
                j.append(f"{t.name}/q{qemu_left[t.name]}")
            if h is None:
                j.append(f"{t.name}/h")
        return j

    def silence(name):
        # the run's own limit inside the host (kut.limit there), and a
        # minute for the host: a test cut to 10 s there that has said
        # nothing for its whole cfg timeout took the host with it long ago
        t = by_name[name]
        lim = min(t.timeout, NESTED_LIMIT) if nested and t.name in NESTED_SLOW else t.timeout
        return lim + 60

    hosts = 0
    while jobs() and hosts < MAX_HOSTS:
        hosts += 1
        todo = jobs()
        budget = sum(by_name[j.rpartition("/")[0]].timeout + 30 for j in todo)
        inner = [sys.executable, os.path.abspath(__file__), "--inner", "--build", os.path.abspath(build),
                 "--hvmm", os.path.abspath(hvmm), "--jobs", ",".join(todo)]
        argv = ([sys.executable, LAUNCHER, "--mem", "6G", "--timeout", str(budget), "--"] + inner
                if nested else inner)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True, text=True,
                             errors="replace", bufsize=1)
        lines = queue.Queue()

        def pump(stream=p.stdout, q=lines):
            for line in stream:
                q.put(line)
            q.put(None)
        threading.Thread(target=pump, daemon=True).start()
        running = None  # (test, vmm) started and not finished
        lost_why = None
        other = []
        while True:
            # silent longer than the running test may take: the host is lost
            limit = silence(running[0]) if running else 120
            try:
                line = lines.get(timeout=limit)
            except queue.Empty:
                lost_why = f"nested host silent for {limit} s"
                break
            if line is None:
                break
            m = re.match(r"KUT-(START|RESULT|NOTE) (.*)", line)
            if not m:
                other.append(line.rstrip())
                continue
            d = json.loads(m.group(2))
            if m.group(1) == "START":
                running = (d["test"], d["vmm"])
                if d.get("retried"):
                    qemu_left[d["test"]] = 0  # this is its one more run
            elif m.group(1) == "NOTE":
                say(f"      note: {d['test']}: {d['text']}")
            else:
                running = None
                o = Outcome(d["verdict"], d["why"], d["secs"], d["summary"], d["fails"], d["tail"],
                            d["retried"], d.get("before", 0.0))
                res[d["test"]][0 if d["vmm"] == "qemu" else 1] = o
                q, h = res[d["test"]]
                if q is not None and h is not None:
                    say(f"      kut {d['test']}: QEMU {q.cell()}; hvmm {h.cell()}"
                        + (f"  [{h.summary}]" if h.summary else ""))
        if lost_why:
            # SIGTERM first: the launcher ends its QEMU, which runs in a
            # session of its own (a SIGKILL to the launcher's group alone
            # left the nested host's QEMU spinning for the rest of the run)
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # the launcher's group
                except ProcessLookupError:
                    pass
        status = p.wait()
        if running:
            name, vmm = running
            why = lost_why or f"nested host lost (kvm-host status {status})"
            tail = "\n".join(other[-5:])
            say(f"      note: {why} while {vmm} ran {name}: {tail[-300:]}")
            if name not in killers:
                killers.append(name)
            if vmm == "hvmm" and name not in hvmm_lost:
                # The nested host also freezes on its own now and then
                # (QEMU 7.2's SVM emulation; README, "the nested KVM host"):
                # hvmm's run gets one more, last, on a fresh host, and a
                # second loss is its verdict.
                hvmm_lost.add(name)
                say(f"      note: {name} runs once more on hvmm, on a fresh host")
            else:
                # No second run of the reference after a lost host: it can
                # only matter where hvmm fails too (QEMU's FAIL fails nothing).
                res[name][0 if vmm == "qemu" else 1] = Outcome("FAIL", why, 0, tail=tail)
        elif jobs() and status != 0:
            say(f"      note: the runner ended with status {status} before finishing: "
                + " | ".join(other[-5:])[-400:])
    for name, (q, h) in res.items():
        if q is None:
            res[name][0] = Outcome("FAIL", "not run: no nested host left")
        if h is None:
            res[name][1] = Outcome("FAIL", "not run: no nested host left")
    return {n: tuple(v) for n, v in res.items()}


def table(rows):
    """rows: [(name, skip reason or None, qemu Outcome, hvmm Outcome)] → lines."""
    w = max([len(n) for n, *_ in rows] + [4])
    qw = min(40, max([len(q.cell()) for _, s, q, _ in rows if not s] + [len("QEMU+KVM")]))
    lines = [f"{'test':<{w}}  {'QEMU+KVM':<{qw}}  hvmm"]
    for name, skip, q, h in rows:
        if skip:
            lines.append(f"{name:<{w}}  {'SKIP':<{qw}}  SKIP  ({skip})")
        elif q.verdict == h.verdict == "SKIP" and q.why and q.why == h.why:
            lines.append(f"{name:<{w}}  {'SKIP':<{qw}}  SKIP  ({q.why})")
        else:
            note = "  <- hvmm passes, QEMU fails" if h.verdict == "PASS" and q.verdict == "FAIL" else ""
            lines.append(f"{name:<{w}}  {q.cell():<{qw}}  {h.cell()}{note}")
    return lines


def select(build, pattern=None):
    """(runnable tests, [(name, reason)] skipped) of x86/unittests.cfg."""
    tests = parse_cfg(os.path.join(build, "kvm-unit-tests", "x86", "unittests.cfg"))
    run, skipped = [], []
    for t in tests:
        if pattern and not re.search(pattern, t.name):
            continue
        why = skip_reason(t)
        (skipped.append((t.name, why)) if why else run.append(t))
    return run, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--hvmm", default=None)
    ap.add_argument("-k", dest="pattern", help="only tests whose name matches this regex")
    ap.add_argument("--json", help="also write every run's outcome (with its output's tail) here")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", help=argparse.SUPPRESS)
    a = ap.parse_args()
    kut = os.path.join(a.build, "kvm-unit-tests")
    hvmm = os.path.abspath(a.hvmm or os.path.join(a.build, "hvmm"))
    load_hvmm_features(os.path.join(HERE, ".."))
    if a.inner:
        run_jobs([j for j in a.jobs.split(",") if j], kut, hvmm)
        return 0
    sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
    from kvm_mode import kvm_mode
    t0 = time.monotonic()
    run, skipped = select(a.build, a.pattern)
    res = supervise(run, a.build, hvmm, kvm_mode() == "nested")
    rows = [(t.name, None, *res[t.name]) for t in run] + [(n, why, None, None) for n, why in skipped]
    print("\n".join(table(rows)))
    print(f"# {time.monotonic() - t0:.1f}s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({n: {"qemu": vars(q), "hvmm": vars(h)} for n, (q, h) in res.items()}, f, indent=1)
    bad = [t.name for t in run if res[t.name][0].verdict == "PASS" and res[t.name][1].verdict != "PASS"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
