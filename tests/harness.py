"""Test harness for hvmm: runs hvmm and QEMU on guest images, with timeouts.

Every VM a test starts ends on its own: hvmm gets --timeout, QEMU runs under a
subprocess timeout, and on expiry the harness kills exactly the process it
started (by PID), never anything else.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile

CASES = []


class Skip(Exception):
    pass


def case(name, kvm=True, qemu=False):
    """Register a test. kvm: needs /dev/kvm. qemu: needs qemu-system-x86_64."""
    def deco(fn):
        CASES.append((name, fn, kvm, qemu))
        return fn
    return deco


class Result:
    def __init__(self, status, out, err, stats=None):
        self.status, self.out, self.err, self.stats = status, out, err, stats

    def __repr__(self):
        return f"status={self.status} out={self.out[-300:]!r} err={self.err[-600:]!r}"


class Hung(AssertionError):
    pass


def _run(argv, timeout, stdin=subprocess.DEVNULL, stdin_data=None):
    if stdin_data is not None:
        stdin = subprocess.PIPE
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(input=stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()  # only the process this harness started
        out, err = p.communicate()
        raise Hung(f"{argv[0]} did not finish within {timeout}s (killed pid {p.pid}); its last output:\n"
                   f"      stdout {out.decode(errors='replace')[-600:]!r}\n"
                   f"      stderr {err.decode(errors='replace')[-600:]!r}")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def run_reference(argv, timeout, stdin_data=None):
    """_run for QEMU, the reference VMM: a run that hangs is tried once more.

    Seen once in some 200 QEMU-KVM runs in the nested KVM host (a virtio-rng guest
    that never finished, the same run passing 8 of 8 times afterwards): the
    reference's hang is the environment's, not a verdict on hvmm, whose own
    runs are never retried. A second hang fails the case."""
    try:
        return _run(argv, timeout, stdin_data=stdin_data)
    except Hung as e:
        print(f"      note: the reference run hung, trying once more: {str(e).splitlines()[0]}")
        return _run(argv, timeout, stdin_data=stdin_data)


def reference_retry(run, check):
    """Runs QEMU, the reference, and checks it: (result, what check returned).

    A failed check gets one more run. In the nested KVM host a QEMU-KVM guest
    once lost an IPI (smp: "answered 42 of 100 IPIs"; 0 of 80 repeats failed)
    and once never finished: the environment's doing, not a verdict on hvmm,
    whose runs are never retried. A second failure fails the case."""
    try:
        r = run()
        return r, check(r)
    except Hung:
        raise  # run_reference has tried twice already
    except AssertionError as e:
        why = [l.strip() for l in str(e).splitlines() if l.startswith("not ok")] or str(e).splitlines()[:1]
        print(f"      note: the QEMU reference failed, trying once more: {'; '.join(why)}")
        r = run()
        return r, check(r)


def nested_guest_args():
    """hvmm options every Linux guest of a case gets inside the nested KVM
    host, and only there: PV EOI off (KVM_FEATURE_PV_EOI, CPUID 0x40000001
    EAX bit 6) and no TSC-deadline timer (CPUID 1 ECX bit 24).

    PV EOI: QEMU 7.2's TCG, which emulates the nested host's SVM, delivers
    an interrupt that KVM injects at VMRUN without resetting its pending
    exception number, and delivers that vector a second time, wherever the
    guest is and whatever its IF, at the next exit request that is no
    interrupt, unless the guest exits or faults first. Caught twice in 120
    two-vCPU boots of Debian's kernel on hvmm with a disk and a network
    (hvmm's snapshot of the stalled guest: the APIC timer's vector taken
    inside __schedule with IF clear and the runqueue lock held, both vCPUs
    then waiting for that lock). With PV EOI a guest's interrupt handler
    makes no exit, and Linux's early periodic tick none either, so the
    window lasts until the guest's next exit; without it the handler's EOI
    exits at once and the window ends there: 0 stalls in 150 boots.

    TSC-deadline: a nested guest's deadline timer fires late or never here
    (Debian's 6.1.0-57 kernel in the host and the guests, 2026-12-07): with
    it, Linux on KVM's APIC logged RCU stalls ("timer wakeup didn't happen")
    on hvmm and on QEMU alike, and --irqchip user's 2-vCPU guest (hvmm's
    APIC offers the mode) stopped running commands after its prompt in 2
    of 2 runs; without it, in 0 of 3. hvmm offers it only with its own APIC
    (KVM leaves the bit to the VMM), so this masks it for that mode.

    On hardware hvmm keeps both."""
    if os.environ.get("HVMM_IN_KVM_HOST") == "1":
        return ["--cpuid-mask", "0x40000001:eax:6", "--cpuid-mask", "tsc_deadline"]
    return []


def nested_qemu_cpu():
    """QEMU's -cpu for the Linux references: the host's CPU, and inside the
    nested KVM host without PV EOI and the TSC-deadline timer, for the
    reasons nested_guest_args gives: QEMU's guests are exposed to both as
    hvmm's are (its hvc0 reference echoed the first command typed and never
    ran it, on both tries, in 2 of 2 runs with the deadline timer; in 0 of 3
    without)."""
    if os.environ.get("HVMM_IN_KVM_HOST") == "1":
        return "host,-arch-capabilities,kvm-pv-eoi=off,-tsc-deadline"
    return "host,-arch-capabilities"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Ctx:
    def __init__(self, hvmm, build):
        self.hvmm_bin = os.path.abspath(hvmm)
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="hvmm-test-")

    def guest(self, name):
        path = os.path.join(self.build, "tests", "guests", name)
        if not os.path.exists(path):
            raise AssertionError(f"guest image {path} was not built")
        return path

    def path(self, *parts):
        return os.path.join(self.build, *parts)

    def hvmm(self, *args, timeout=20, vm_timeout=10, stats=True, stdin=subprocess.DEVNULL,
             stdin_data=None):
        """Run `hvmm run [args]`; returns Result with .stats from --stats-json."""
        js = os.path.join(self.tmp, "stats.json")
        if os.path.exists(js):
            os.unlink(js)
        argv = [self.hvmm_bin, "run", "--timeout", str(vm_timeout)]
        if stats:
            argv += ["--stats-json", js]
        argv += [str(a) for a in args]
        status, out, err = _run(argv, timeout, stdin, stdin_data)
        st = None
        if stats and os.path.exists(js):
            with open(js) as f:
                st = json.load(f)
        return Result(status, out, err, st)

    def hvmm_raw(self, *args, timeout=20):
        """Run the hvmm binary with exactly these arguments."""
        return Result(*_run([self.hvmm_bin] + [str(a) for a in args], timeout))

    def qemu(self, kernel, append=None, initrd=None, smp=1, machine="microvm",
             accel="kvm", mem="128M", timeout=60, extra=(), stdin_data=None):
        m = "microvm,x-option-roms=off" if machine == "microvm" else machine
        argv = ["qemu-system-x86_64", "-M", m, "-m", mem, "-smp", str(smp),
                "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel]
        if accel == "kvm":
            argv += ["-enable-kvm", "-cpu", "host,-arch-capabilities"]
        else:
            argv += ["-accel", "tcg", "-cpu", "max"]
        if append is not None:
            argv += ["-append", append]
        if initrd:
            argv += ["-initrd", initrd]
        argv += list(extra)
        return Result(*run_reference(argv, timeout, stdin_data=stdin_data))

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def expect(cond, msg, res=None):
    if not cond:
        raise AssertionError(msg + (f"\n      {res!r}" if res is not None else ""))


def io_count(stats, space, direction, addr, vcpu=None):
    """Exits counted by hvmm at one port/MMIO address, over all vCPUs or one."""
    n = 0
    for v in stats["vcpus"]:
        if vcpu is not None and v["id"] != vcpu:
            continue
        for e in v["io"]:
            if e["space"] == space and e["dir"] == direction and e["addr"] == addr:
                n += e["count"]
    return n
