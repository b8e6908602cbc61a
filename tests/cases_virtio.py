"""The ring-3 virtio drivers of the test kernel (guest/user/virtio.c and friends)
on QEMU's virtio-*-pci devices (q35, disable-legacy=on) and on hvmm's.

Each test=virtio-* runs its driver in polling mode and then in interrupt mode
and prints TAP; it must pass on QEMU-KVM, on QEMU-TCG (cases virtio-tcg/*, which
stay on the outer machine where the KVM cases run in the nested KVM host), and
on hvmm, and the TAP lines of hvmm and QEMU-KVM must agree (words before the first
':' with numbers masked, ok/not ok, SKIP). The hvmm runs also check the seed's
claims through --stats-json: queue notifies absorbed by ioeventfds cost no
user-space MMIO exit (and with --no-ioeventfd they do), and with irqfds the
MSI-X vectors are in the live IRT ("irt" in the JSON).
"""
import json
import os
import queue
import re
import struct
import subprocess
import threading
import time

from harness import case, expect, Result, reference_retry, run_reference
from cases_guest import tap, plan

KERNEL = "hvmm-guest.elf"
MEM = "256M"
IMG_MIB = 32
GOLDEN = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1

QEMU_DEV = {
    "virtio-rng": ["-device", "virtio-rng-pci,disable-legacy=on"],
    "virtio-net": ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"],
}


def kernel(ctx):
    return ctx.path("guest", KERNEL)


def qemu_argv(ctx, append, extra, accel="kvm", serial="stdio"):
    argv = ["qemu-system-x86_64", "-M", "q35", "-m", MEM, "-nodefaults", "-no-reboot",
            "-display", "none", "-serial", serial,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel(ctx), "-append", append]
    if accel == "kvm":
        argv += ["-enable-kvm", "-cpu", "host,-arch-capabilities"]
    else:
        argv += ["-accel", "tcg", "-cpu", "max"]
    return argv + list(extra)


def qemu_run(ctx, append, extra, accel="kvm", timeout=90):
    return Result(*run_reference(qemu_argv(ctx, append, extra, accel), timeout))


def hvmm_run(ctx, append, args, vm_timeout=60):
    r = ctx.hvmm("-m", MEM, "--cmdline", append, *args, kernel(ctx),
                 timeout=vm_timeout + 30, vm_timeout=vm_timeout)
    return r


def check_pass(name, r):
    t = tap(r.out)
    expect(t and plan(r.out) == len(t), f"{name}: TAP plan 1..N matches the lines", r)
    expect(all(ok for _, ok, _, _ in t), f"{name}: a check failed:\n{r.out[-2500:]}", r)
    expect(r.status == 1, f"{name}: all passed → debug-exit 0 → status 1", r)
    return t


def same_tap(a_name, a, b_name, b):
    ta, tb = tap(a.out), tap(b.out)
    expect(ta == tb, f"{a_name} and {b_name} disagree:\n{a_name}: {ta}\n{b_name}: {tb}")


def pci_regions(out, device_id):
    """{cfg_type: (start, end)} of the virtio capabilities of the first PCI
    function with this device id, from the guest's '# pci' lines."""
    for line in out.replace("\r", "").splitlines():
        m = re.match(r"# pci \S+ 1af4:([0-9a-f]{4}) ", line)
        if not m or int(m.group(1), 16) != device_id:
            continue
        bars = {int(b): int(base, 16) for b, base in re.findall(r" bar(\d) mem\d\d (0x[0-9a-f]+)\+", line)}
        caps = {}
        for t, b, off, ln in re.findall(r" vcap(\d) bar(\d)\+0x([0-9a-f]+)/0x([0-9a-f]+)", line):
            start = bars[int(b)] + int(off, 16)
            caps[int(t)] = (start, start + int(ln, 16))
        return caps
    return None


def mmio_writes_in(stats, lo, hi):
    n = 0
    for v in stats["vcpus"]:
        for e in v["io"]:
            if e["space"] == "mmio" and e["dir"] == "write" and lo <= e["addr"] < hi:
                n += e["count"]
    return n


def check_notify_exits(r, device_id, want_exits):
    """With ioeventfd no notify write exits to hvmm; without, they all do."""
    expect(r.stats is not None, "hvmm wrote --stats-json", r)
    expect(all(v.get("io_dropped", 0) == 0 for v in r.stats["vcpus"]),
           "the stats address table did not overflow", r)
    caps = pci_regions(r.out, device_id)
    expect(caps and 2 in caps, f"guest listed the notify capability of 1af4:{device_id:04x}", r)
    lo, hi = caps[2]
    n = mmio_writes_in(r.stats, lo, hi)
    kicks = sum(int(k) for k in re.findall(r": (\d+) kicks", r.out))
    if want_exits:
        expect(n > 0, f"--no-ioeventfd: notifies exit to hvmm (saw {n} MMIO writes in "
               f"[{lo:#x}, {hi:#x}), guest counted {kicks} kicks)", r)
    else:
        expect(n == 0, f"ioeventfd: {n} notify writes in [{lo:#x}, {hi:#x}) exited to hvmm "
               f"(guest counted {kicks} kicks)", r)
    return n


def check_irt(r, irqfd=True):
    """The live IRT lists the driver's MSI-X vectors (0x50..0x5f), each delivered
    through an irqfd (posted by KVM) unless --no-irqfd."""
    st = r.stats or {}
    irt = st.get("irt")
    expect(isinstance(irt, list), "stats JSON has an 'irt' list (the live GSI routes of MSI-X vectors)", r)
    ours = [e for e in irt if 0x50 <= int(e.get("guest_vector", -1)) <= 0x5f]
    expect(ours, f"irt lists the guest's vectors 0x50..0x5f: {irt}", r)
    expect(any(int(e.get("sent", 0)) > 0 for e in ours), f"irt: messages were sent: {ours}", r)
    want = "irqfd" if irqfd else "injected"
    expect(all(e.get("delivery") == want for e in ours), f"irt: every vector is delivered by {want}: {ours}", r)


# ---- virtio-rng --------------------------------------------------------------------

def rng_everywhere(ctx, extra_append=""):
    append = ("test=virtio-rng " + extra_append).strip()
    qk, _ = reference_retry(lambda: qemu_run(ctx, append, QEMU_DEV["virtio-rng"]),
                            lambda r: check_pass("QEMU-KVM", r))
    hv = hvmm_run(ctx, append, ["--rng"])
    check_pass("hvmm", hv)
    same_tap("hvmm", hv, "QEMU-KVM", qk)
    return hv


def tcg_case(device, append, extra):
    """QEMU-TCG, the reference without any KVM, on the same driver test."""
    @case(f"virtio-tcg/{device}", kvm=False, qemu=True)
    def fn(ctx):
        check_pass("QEMU-TCG", qemu_run(ctx, append, extra(ctx), accel="tcg"))
    return fn


PLAIN = "vq=noevent,noindirect"
for _plain in ("", PLAIN):
    _sfx = "-plain-rings" if _plain else ""
    tcg_case("rng" + _sfx, f"test=virtio-rng {_plain}".strip(), lambda ctx: QEMU_DEV["virtio-rng"])
    tcg_case("net" + _sfx, f"test=virtio-net {_plain}".strip(), lambda ctx: QEMU_DEV["virtio-net"])


@case("virtio/rng", qemu=True)
def t_rng(ctx):
    hv = rng_everywhere(ctx)
    check_notify_exits(hv, 0x1044, want_exits=False)
    check_irt(hv)


@case("virtio/rng-plain-rings", qemu=True)
def t_rng_plain(ctx):
    """The driver without EVENT_IDX and INDIRECT_DESC (flags-based suppression, direct chains)."""
    rng_everywhere(ctx, PLAIN)


@case("virtio/rng-no-ioeventfd-no-irqfd")
def t_rng_fallbacks(ctx):
    hv = hvmm_run(ctx, "test=virtio-rng", ["--rng", "--no-ioeventfd", "--no-irqfd"])
    check_pass("hvmm --no-ioeventfd --no-irqfd", hv)
    check_notify_exits(hv, 0x1044, want_exits=True)
    check_irt(hv, irqfd=False)


# ---- virtio-net (raw driver level: DHCPDISCOVER → OFFER from slirp) -----------------

def net_everywhere(ctx, extra_append=""):
    append = ("test=virtio-net " + extra_append).strip()
    qk, _ = reference_retry(lambda: qemu_run(ctx, append, QEMU_DEV["virtio-net"]),
                            lambda r: check_pass("QEMU-KVM", r))
    hv = hvmm_run(ctx, append, ["--network", "user"])
    check_pass("hvmm", hv)
    same_tap("hvmm", hv, "QEMU-KVM", qk)
    return hv


@case("virtio/net", qemu=True)
def t_net(ctx):
    hv = net_everywhere(ctx)
    check_notify_exits(hv, 0x1041, want_exits=False)
    check_irt(hv)


@case("virtio/net-no-ioeventfd-no-irqfd")
def t_net_fallbacks(ctx):
    hv = hvmm_run(ctx, "test=virtio-net", ["--network", "user", "--no-ioeventfd", "--no-irqfd"])
    check_pass("hvmm --no-ioeventfd --no-irqfd", hv)
    check_notify_exits(hv, 0x1041, want_exits=True)
    check_irt(hv, irqfd=False)


@case("virtio/net-plain-rings", qemu=True)
def t_net_plain(ctx):
    net_everywhere(ctx, PLAIN)


# ---- virtio-blk -------------------------------------------------------------------------

def make_image(ctx, name):
    p = os.path.join(ctx.tmp, name)
    with open(p, "wb") as f:
        f.truncate(IMG_MIB << 20)
    return p


def check_image(path, mib=8):
    """The guest's pattern on the host file: seed 1 in the first `mib` MiB
    (polling run), seed 2 in the next (interrupt run), zeros after."""
    with open(path, "rb") as f:
        data = f.read()
    expect(len(data) == IMG_MIB << 20, f"image size unchanged ({len(data)} bytes)")
    n = (mib << 20) // 8
    for seed in (1, 2):
        off = (seed - 1) * (mib << 20)
        i0 = off // 8
        words = struct.unpack_from(f"<{n}Q", data, off)
        xor = seed << 56
        # every 97th word and the last of each sector: enough to catch any misplaced request
        for i in list(range(0, n, 97)) + list(range(63, n, 64)):
            want = ((i0 + i) * GOLDEN & M64) ^ xor
            expect(words[i] == want, f"image word at offset {off + 8 * i:#x}: {words[i]:#x}, want {want:#x}")
    rest = data[2 * (mib << 20):]
    expect(rest.count(0) == len(rest), "nothing written past the two test regions (beyond capacity read only)")


def qemu_blk(ctx, append, accel):
    name = f"QEMU-{accel.upper()}"
    img = make_image(ctx, f"{accel}.img")
    r = qemu_run(ctx, append, ["-drive", f"file={img},if=none,id=d0,format=raw",
                               "-device", "virtio-blk-pci,drive=d0,disable-legacy=on,serial=hvmm-test-disk"],
                 accel=accel)
    check_pass(name, r)
    check_image(img)
    expect('id "hvmm-test-disk"' in r.out, f"{name}: get-id returns the serial", r)
    return r


def blk_everywhere(ctx, extra_append="", extra_args=()):
    append = ("test=virtio-blk " + extra_append).strip()
    qk, _ = reference_retry(lambda: qemu_blk(ctx, append, "kvm"), lambda r: r)  # qemu_blk checks
    img = make_image(ctx, "hvmm.img")
    hv = hvmm_run(ctx, append, ["--disk", img, *extra_args])
    check_pass("hvmm", hv)
    check_image(img)
    same_tap("hvmm", hv, "QEMU-KVM", qk)
    return hv


@case("virtio-tcg/blk", kvm=False, qemu=True)
def t_blk_tcg(ctx):
    qemu_blk(ctx, "test=virtio-blk", "tcg")


@case("virtio-tcg/blk-plain-rings", kvm=False, qemu=True)
def t_blk_plain_tcg(ctx):
    qemu_blk(ctx, f"test=virtio-blk {PLAIN}", "tcg")


@case("virtio/blk", qemu=True)
def t_blk(ctx):
    hv = blk_everywhere(ctx, extra_args=["--stats"])
    # The disk is served by io_uring, locked down to the operations it needs
    # (a ring that failed its lock-down falls back to synchronous I/O).
    expect("io_uring, queue depth" in hv.err, "virtio-blk ran on io_uring (--stats)", hv)
    check_notify_exits(hv, 0x1042, want_exits=False)
    check_irt(hv)


@case("virtio/blk-plain-rings", qemu=True)
def t_blk_plain(ctx):
    blk_everywhere(ctx, PLAIN)


@case("virtio/blk-no-ioeventfd-no-irqfd")
def t_blk_fallbacks(ctx):
    img = make_image(ctx, "fallback.img")
    hv = hvmm_run(ctx, "test=virtio-blk", ["--disk", img, "--no-ioeventfd", "--no-irqfd"])
    check_pass("hvmm --no-ioeventfd --no-irqfd", hv)
    check_image(img)
    check_notify_exits(hv, 0x1042, want_exits=True)
    check_irt(hv, irqfd=False)


BENCH = re.compile(r"^# bench virtio-blk (seq-write|seq-read|rand-write|rand-read) MiB/s=(\d+\.\d\d) "
                   r"IOPS=(\d+) qd=(\d+) bs=(\d+) reqs=(\d+) errors=(\d+) ms=(\d+)", re.M)


@case("virtio/blk-bench-output", qemu=True)
def t_blk_bench(ctx):
    """blkbench=all prints one machine-readable line per run, with no failed request."""
    append = "test=virtio-blk mode=poll blkbench=all benchms=200"
    img = make_image(ctx, "bench-q.img")
    qk = qemu_run(ctx, append, ["-drive", f"file={img},if=none,id=d0,format=raw",
                                "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"])
    runs = [("QEMU-KVM", qk)]
    img = make_image(ctx, "bench-h.img")
    runs.append(("hvmm", hvmm_run(ctx, append, ["--disk", img])))
    for name, r in runs:
        check_pass(name, r)
        b = BENCH.findall(r.out.replace("\r", ""))
        expect([x[0] for x in b] == ["seq-write", "seq-read", "rand-write", "rand-read"],
               f"{name}: four bench lines", r)
        expect(all(int(x[6]) == 0 and int(x[5]) > 0 for x in b), f"{name}: requests completed, none failed", r)


@case("virtio/blk-readonly")
def t_blk_ro(ctx):
    """A read-only disk: the guest sees VIRTIO_BLK_F_RO and refuses to write (a not ok
    that names it), and the image is untouched."""
    img = make_image(ctx, "ro.img")
    hv = hvmm_run(ctx, "test=virtio-blk mode=poll", ["--disk", img + ",ro"])
    expect(hv.status == 3 and "read-only" in hv.out, "read-only disk reported by the guest", hv)
    with open(img, "rb") as f:
        d = f.read()
    expect(d.count(0) == len(d), "read-only image unchanged")


# ---- virtio-console (interactive echo) ---------------------------------------------

LINES = ("hello virtio-console, polling", "and now with interrupts")


def console_session(argv, tap_file, timeout=90):
    """Runs the VM with stdin/stdout on the virtio console: waits for the guest's
    prompt of each phase, sends one line and END, expects the line echoed back.
    Returns (status, console output, TAP text). Kills only the process it started."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    q = queue.Queue()
    out = []

    def reader():
        for raw in iter(p.stdout.readline, b""):
            q.put(raw.decode(errors="replace"))
        q.put(None)

    threading.Thread(target=reader, daemon=True).start()
    err_lines = []
    threading.Thread(target=lambda: err_lines.extend(p.stderr), daemon=True).start()
    deadline = time.monotonic() + timeout

    def wait_for(text):
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            out.append(line)
            if text in line:
                return True
        return False

    try:
        for phase, line in zip(("poll", "irq"), LINES):
            if not wait_for(f"virtio-console echo ({phase})"):
                break
            p.stdin.write((line + "\nEND\n").encode())
            p.stdin.flush()
            if not wait_for(line):
                break
        try:
            status = p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()  # only the process this test started
            status = p.wait()
            out.append(f"\n[killed pid {p.pid} after {timeout}s]\n")
        while True:
            try:
                line = q.get(timeout=0.5)
            except queue.Empty:
                break
            if line is None:
                break
            out.append(line)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
    tap_text = open(tap_file, errors="replace").read() if os.path.exists(tap_file) else ""
    return status, "".join(out), tap_text + "".join(x.decode(errors="replace") for x in err_lines)


def check_console(name, status, cons, taptext):
    r = Result(status, taptext, cons)
    for line in LINES:
        expect(line in cons, f"{name}: the line {line!r} came back on the console", r)
    check_pass(name, r)
    return r


def qemu_console(ctx, accel):
    tf = os.path.join(ctx.tmp, f"qemu-{accel}.tap")
    argv = qemu_argv(ctx, "test=virtio-console", ["-chardev", "stdio,id=c0", "-device",
                     "virtio-serial-pci,disable-legacy=on", "-device", "virtconsole,chardev=c0"],
                     accel=accel, serial=f"file:{tf}")
    return check_console(f"QEMU-{accel.upper()}", *console_session(argv, tf))


@case("virtio-tcg/console", kvm=False, qemu=True)
def t_console_tcg(ctx):
    qemu_console(ctx, "tcg")


@case("virtio/console", qemu=True)
def t_console(ctx):
    results = {"kvm": qemu_console(ctx, "kvm")}
    tf = os.path.join(ctx.tmp, "hvmm.tap")
    js = os.path.join(ctx.tmp, "console-stats.json")
    argv = [ctx.hvmm_bin, "run", "--timeout", "60", "-m", MEM, "--console", "virtio", "--serial", tf,
            "--stats-json", js, "--cmdline", "test=virtio-console", kernel(ctx)]
    status, cons, taptext = console_session(argv, tf)
    hv = check_console("hvmm", status, cons, taptext)
    same_tap("hvmm", hv, "QEMU-KVM", results["kvm"])
    with open(js) as f:
        hv.stats = json.load(f)
    check_notify_exits(hv, 0x1043, want_exits=False)
    check_irt(hv)


@case("virtio/console-no-ioeventfd-no-irqfd")
def t_console_fallbacks(ctx):
    tf = os.path.join(ctx.tmp, "hvmm-nofd.tap")
    js = os.path.join(ctx.tmp, "console-nofd.json")
    argv = [ctx.hvmm_bin, "run", "--timeout", "60", "-m", MEM, "--console", "virtio", "--serial", tf,
            "--no-ioeventfd", "--no-irqfd", "--stats-json", js, "--cmdline", "test=virtio-console", kernel(ctx)]
    status, cons, taptext = console_session(argv, tf)
    hv = check_console("hvmm --no-ioeventfd --no-irqfd", status, cons, taptext)
    with open(js) as f:
        hv.stats = json.load(f)
    check_notify_exits(hv, 0x1043, want_exits=True)
    check_irt(hv, irqfd=False)
