"""Guest and CLI tests of the hvmm core: loaders, devices, exits, stats.

Where QEMU can run the same image, the test runs it there too and asserts the
same serial output and exit status: QEMU is the reference VMM.
"""
import fcntl
import os
import signal
import subprocess
import termios
import time

from harness import Skip, case, expect, io_count


def same_as_qemu(ctx, guest, hv_args=(), append=None, initrd=None, smp=1, machine="microvm",
                 compare_out=True):
    """Run guest on hvmm and QEMU; assert equal status (and serial output)."""
    img = ctx.guest(guest)
    hv = ctx.hvmm(*hv_args, img)
    q = ctx.qemu(img, append=append, initrd=initrd, smp=smp, machine=machine)
    expect(hv.status == q.status, f"exit status hvmm {hv.status} != QEMU {q.status}", hv)
    if compare_out:
        expect(hv.out == q.out, f"serial differs:\n hvmm: {hv.out!r}\n QEMU: {q.out!r}")
    return hv, q


@case("core/hello", qemu=True)
def t_hello(ctx):
    hv, _ = same_as_qemu(ctx, "hello.elf")
    expect(hv.out == "Hello from an hvmm test guest!\n", "serial output", hv)
    expect(hv.status == 1, "debug-exit 0 must end hvmm with status 1", hv)


@case("core/debug-exit-status", qemu=True)
def t_exitcode(ctx):
    hv, _ = same_as_qemu(ctx, "exitcode.elf")
    expect(hv.status == (0x2a << 1) | 1, "status (v<<1)|1", hv)


@case("core/pio-exit-count", qemu=True)
def t_outs(ctx):
    hv, _ = same_as_qemu(ctx, "outs.elf")
    expect(hv.stats is not None, "no stats JSON", hv)
    n = io_count(hv.stats, "pio", "out", 0x402)
    expect(n == 1000, f"expected exactly 1000 OUT exits at port 0x402, counted {n}", hv)
    # the guest did 1000 OUTs + 1 debug-exit write: every one was an IO exit
    expect(hv.stats["exits_by_reason"].get("IO") == 1001,
           f"IO exits {hv.stats['exits_by_reason']}")
    expect(hv.stats["userspace_exits"] >= 1001, "userspace_exits total")
    entry = [e for v in hv.stats["vcpus"] for e in v["io"] if e["addr"] == 0x402][0]
    expect(entry["handled"] is False, "port 0x402 has no device: counted as unhandled")


@case("core/mmio-exit-count")
def t_mmio(ctx):
    # hvmm-only: QEMU reads unassigned MMIO as 0, hvmm as all-ones (like an
    # empty bus), so the guest's check differs by design.
    hv = ctx.hvmm(ctx.guest("mmio.elf"))
    expect(hv.status == 1 and "all-ones" in hv.out, "unhandled MMIO reads must see all-ones", hv)
    w = io_count(hv.stats, "mmio", "write", 0xd0000000)
    r = io_count(hv.stats, "mmio", "read", 0xd0000000)
    expect((w, r) == (300, 200), f"MMIO exits write/read {w}/{r}, expected 300/200", hv)
    expect(hv.stats["exits_by_reason"].get("MMIO") == 500, f"{hv.stats['exits_by_reason']}")


@case("core/multiboot-info", qemu=True)
def t_multiboot_info(ctx):
    hello, code = ctx.guest("hello.elf"), ctx.guest("exitcode.elf")
    hv, _ = same_as_qemu(ctx, "multiboot_info.elf",
                         hv_args=("--cmdline", "a b=c", "--module", f"{hello},x=1", "--module", code),
                         append="a b=c", initrd=f"{hello} x=1,{code}")
    expect("multiboot magic ok" in hv.out, "EAX magic", hv)
    expect(f"module: {hello} x=1\n" in hv.out and f"module: {code}\n" in hv.out, "modules", hv)


@case("core/smp-2-vcpus", qemu=True)
def t_smp(ctx):
    hv, _ = same_as_qemu(ctx, "smp.elf", hv_args=("--cpus", "2"), smp=2)
    expect(hv.status == 1 and "cpu1 is up" in hv.out, "AP started by INIT/SIPI", hv)
    expect(len(hv.stats["vcpus"]) == 2, "two vCPUs in stats")
    expect(io_count(hv.stats, "pio", "out", 0x403, vcpu=1) == 1, "vcpu1 ran its OUT", hv)


@case("core/smp-kernel-irqchip")
def t_smp_kernel(ctx):
    hv = ctx.hvmm("--cpus", "2", "--irqchip", "kernel", ctx.guest("smp.elf"))
    expect(hv.status == 1 and "cpu1 is up" in hv.out, "AP up with the in-kernel irqchip", hv)
    expect(hv.stats["irqchip"] == "kernel", "irqchip reported")


@case("core/entry-flat-real-mode")
def t_flat(ctx):
    hv = ctx.hvmm(ctx.guest("flat16.bin"))
    expect(hv.status == (0x10 << 1) | 1 and hv.out == "real mode at 1000:0000\n",
           "flat binary entered in real mode at 1000:0000", hv)


@case("core/entry-elf32-protected-mode")
def t_elf32(ctx):
    hv = ctx.hvmm(ctx.guest("elf32.elf"))
    expect(hv.status == (0x20 << 1) | 1 and "protected mode, paging off" in hv.out, "ELF32 entry", hv)


@case("core/entry-elf64-long-mode")
def t_elf64(ctx):
    hv = ctx.hvmm(ctx.guest("elf64.elf"))
    expect(hv.status == (0x30 << 1) | 1 and "long mode, 64-bit" in hv.out, "ELF64 entry", hv)


@case("core/boot-format-forced")
def t_boot_forced(ctx):
    # a multiboot ELF forced through the plain ELF loader gets no magic in EAX
    hv = ctx.hvmm("--boot", "elf", ctx.guest("multiboot_info.elf"))
    expect(hv.status == 3 and "bad multiboot magic" in hv.out, "--boot elf skips multiboot", hv)


@case("core/reset-i8042", qemu=True)
def t_reset_i8042(ctx):
    # microvm has no i8042: QEMU's reference is the pc machine (-no-reboot: exit 0)
    hv, _ = same_as_qemu(ctx, "reset_i8042.elf", machine="pc", compare_out=False)
    expect(hv.status == 0 and "i8042" in hv.err, "clean exit 0 with a message", hv)


@case("core/reset-cf9", qemu=True)
def t_reset_cf9(ctx):
    hv, _ = same_as_qemu(ctx, "reset_cf9.elf", machine="pc", compare_out=False)
    expect(hv.status == 0 and "0xcf9" in hv.err, "clean exit 0 with a message", hv)


@case("core/triple-fault")
def t_triple(ctx):
    hv = ctx.hvmm(ctx.guest("triple.elf"))
    expect(hv.status == 8, "triple fault is a guest crash (status 8)", hv)
    expect("triple fault" in hv.err and "RIP=" in hv.err, "message and register dump", hv)


@case("core/ring0-int3", qemu=True)
def t_int3(ctx):
    # ring 0's int3 goes through the guest's IDT in non-root mode, as on QEMU
    hv, _ = same_as_qemu(ctx, "int3.elf")
    expect(hv.status == 7 and "int3 handled" in hv.out, "the guest's handler ran (status 7)", hv)


@case("core/emulation-failure")
def t_emulfail(ctx):
    hv = ctx.hvmm(ctx.guest("emulfail.elf"), timeout=30, vm_timeout=20)
    expect(hv.status == 8, "KVM cannot emulate AESENC on MMIO: status 8, not a hang/timeout", hv)
    expect("internal error" in hv.err and "RIP=" in hv.err and "code at RIP" in hv.err,
           "dump with registers and instruction bytes", hv)
    expect(" 66 0f 38 dc " in hv.err.split("code at RIP", 1)[1].split("\n", 1)[0] + " ",
           "the dumped bytes start at the AESENC (66 0f 38 dc)", hv)


@case("core/timeout-spin")
def t_timeout(ctx):
    hv = ctx.hvmm(ctx.guest("spin.elf"), vm_timeout=1)
    expect(hv.status == 124 and "timeout" in hv.err, "--timeout ends a spinning guest", hv)


@case("core/timeout-halted")
def t_timeout_hlt(ctx):
    hv = ctx.hvmm(ctx.guest("halt.elf"), vm_timeout=0.5)
    expect(hv.status == 124, "--timeout ends a halted guest", hv)


@case("core/strict-io")
def t_strict(ctx):
    hv = ctx.hvmm("--strict-io", ctx.guest("outs.elf"))
    expect(hv.status == 8 and "0x402" in hv.err, "stop on the first unhandled access", hv)
    expect(io_count(hv.stats, "pio", "out", 0x402) == 1, "exactly one access happened", hv)


@case("core/serial-file")
def t_serial_file(ctx):
    out = os.path.join(ctx.tmp, "serial.txt")
    hv = ctx.hvmm("--serial", out, ctx.guest("hello.elf"))
    expect(hv.status == 1 and hv.out == "", "nothing on stdout", hv)
    with open(out) as f:
        expect(f.read() == "Hello from an hvmm test guest!\n", "serial file content")


@case("core/stats-table")
def t_stats_table(ctx):
    hv = ctx.hvmm("--stats", ctx.guest("outs.elf"), stats=False)
    expect("exit reason" in hv.err and "IO" in hv.err and "0x402" in hv.err, "--stats table", hv)
    expect("inside KVM" in hv.err and "exits=" in hv.err, "KVM binary stats shown", hv)


@case("core/trace-exits")
def t_trace(ctx):
    hv = ctx.hvmm("--trace-exits", ctx.guest("exitcode.elf"), stats=False)
    expect("IO out port 0xf4" in hv.err, "one line per exit", hv)


@case("core/kvm-stats-json")
def t_kvm_stats(ctx):
    hv = ctx.hvmm(ctx.guest("outs.elf"))
    # KVM's own count of exits includes every exit that reached hvmm
    kvm = hv.stats["vcpus"][0]["kvm"]
    expect("exits" in kvm, "KVM binary stats present", hv)
    expect(kvm["exits"] >= hv.stats["userspace_exits"] >= 1001,
           f"KVM exits {kvm['exits']} >= user-space exits {hv.stats['userspace_exits']}", hv)


@case("cli/usage-errors", kvm=False)
def t_usage(ctx):
    img = ctx.guest("hello.elf")
    for args in (["run"], ["run", "--mem", "12Q", img], ["run", "--mem", "0", img],
                 ["run", "--cpus", "0", img], ["run", "--cpus", "65", img],
                 ["run", "--boot", "pe", img], ["run", "--irqchip", "x", img],
                 ["run", "--timeout", "-1", img], ["run", "--bogus", img], ["fly", img],
                 ["run", img, "extra"], ["run", "--mem"], ["run", "-x", img], ["run", "--halt-poll", "x", img], ["run", "--acpi", "yes", img], [],
                 ["run", "--device", "hyperv-testdev", img],
                 ["run", "--device", "edux", img], ["run", "--device", "intel-iommu,foo=1", img],
                 ["run", "--device", "intel-iommu,eim=on", img],
                 ["run", "--device", "intel-iommu,intremap=on", "--irqchip", "kernel", img],
                 ["run", "--device", "vfio", img], ["run", "--device", "vfio,host=zz", img],
                 ["run", "--device", "vfio,host=0000:00:05.0,x=1", img],
                 ["run", "--device", "vfio,host=0000:00:05.0", "--device", "vfio,host=00:05.0", img],
                 ["run", "--device", "vfio,host=00:05.0", "--device", "intel-iommu", img],
                 ["run", "--device", "vfio,host=00:05.0", "--no-irqfd", img],
                 ["run"] + [a for i in range(5) for a in ("--device", f"vfio,host=00:0{i}.0")] + [img]):
        r = ctx.hvmm_raw(*args)
        expect(r.status == 2, f"hvmm {' '.join(args)} must exit 2", r)
        lines = [x for x in r.err.splitlines() if x.strip()]
        expect(len(lines) >= 1 and lines[-1].startswith("hvmm: "), "one-line error", r)


@case("cli/input-errors-first", kvm=False)
def t_input_errors_first(ctx):
    # The user's mistakes are reported before any KVM set-up, with their own
    # line and status: on a host without /dev/kvm (this case runs outside
    # the nested host on such machines) they are not "cannot open /dev/kvm".
    img = ctx.guest("hello.elf")
    missing = os.path.join(ctx.tmp, "missing")
    big = os.path.join(ctx.tmp, "big.img")
    with open(big, "wb") as f:
        f.truncate(32 << 20)
    for args, status, words in (
            ([missing], 4, f"cannot read image {missing}: No such file or directory"),
            ([ctx.tmp], 4, f"cannot read image {ctx.tmp}: Is a directory"),
            (["--mem", "16M", big], 4, f"image {big} is larger than guest RAM (16 MiB)"),
            (["--initrd", missing, img], 4, f"cannot read initrd {missing}"),
            (["--module", missing, img], 4, f"cannot read module {missing}"),
            (["--disk", missing, img], 2, f"--disk {missing}: No such file or directory"),
            (["--network", "user,hostfwd=tcp::99999-:22", img], 2, "bad host port '99999'"),
            (["--network", "user,tx-bw=fast", img], 2, "bad value in 'tx-bw=fast'"),
            (["--network", "tap:t0,rx-pps-burst=3", img], 2, "an rx burst needs its rate"),
            (["--network", "user,max-conns=0", img], 2, "max-conns: '0' is not a count"),
            (["--stats-json", os.path.join(missing, "s.json"), img], 2, "--stats-json"),
            (["--serial", os.path.join(missing, "log"), img], 2, "--serial")):
        r = ctx.hvmm_raw("run", *args)
        expect(r.status == status and words in r.err and r.err.count("\n") == 1
               and "/dev/kvm" not in r.err, f"hvmm run {' '.join(args)}: status {status}, one line with {words!r}", r)


@case("cli/help-version", kvm=False)
def t_help(ctx):
    r = ctx.hvmm_raw("--help")
    expect(r.status == 0 and "--irqchip" in r.out and "Exit status" in r.out, "help", r)
    r = ctx.hvmm_raw("--version")
    expect(r.status == 0 and r.out.startswith("hvmm "), "version", r)


@case("cli/image-errors")
def t_image_errors(ctx):
    empty = os.path.join(ctx.tmp, "empty.img")
    open(empty, "wb").close()
    trunc = os.path.join(ctx.tmp, "trunc.elf")
    with open(ctx.guest("elf64.elf"), "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:40])
    big = os.path.join(ctx.tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(b"\x90" * (700 * 1024))
    for path, why in ((os.path.join(ctx.tmp, "missing.img"), "missing"), (empty, "empty"),
                      (trunc, "truncated ELF"), (big, "flat image too large"), (ctx.tmp, "directory")):
        r = ctx.hvmm(path, stats=False)
        expect(r.status == 4, f"{why}: exit 4", r)
        expect(r.err.count("\n") == 1 and r.err.startswith("hvmm: "), f"{why}: one line", r)
    r = ctx.hvmm("--module", os.path.join(ctx.tmp, "nope"), ctx.guest("hello.elf"), stats=False)
    expect(r.status == 4 and "nope" in r.err, "missing module: exit 4", r)
    r = ctx.hvmm("--mem", "1M", ctx.guest("hello.elf"), stats=False)
    expect(r.status == 4, "image at 1 MiB does not fit in 1 MiB of RAM: exit 4", r)
    # Files larger than guest RAM are refused before hvmm reads them into its
    # heap: sparse, so 64 GiB costs no disk.
    huge = os.path.join(ctx.tmp, "huge.img")
    with open(huge, "wb") as f:
        f.truncate(64 << 30)
    for args, what in ((["--mem", "16M", huge], "image"),
                       (["--mem", "16M", "--module", huge, ctx.guest("hello.elf")], "module")):
        r = ctx.hvmm(*args, stats=False, timeout=20)
        expect(r.status == 4 and f"{what} {huge} is larger than guest RAM (16 MiB)" in r.err
               and r.err.count("\n") == 1, f"{what} of 64 GiB with 16 MiB of RAM: exit 4, one line", r)


@case("core/serial-log-limit")
def t_serial_limit(ctx):
    # A guest that never stops printing cannot fill the host's disk through
    # --serial FILE: the log stops at --serial-limit with one notice, and
    # the drop is counted.
    log = os.path.join(ctx.tmp, "serial.log")
    r = ctx.hvmm("--timeout", "5", "--serial", log, "--serial-limit", "2K", ctx.guest("flood.elf"), timeout=30)
    size = os.path.getsize(log)
    with open(log, "rb") as f:
        tail = f.read()[-200:]
    expect(r.status == 124, "the flood runs until --timeout", r)
    expect(2048 < size < 2048 + 200 and tail.endswith(
        b"[hvmm: serial output limit of 2048 bytes reached; the rest is dropped]\n"),
           f"log of {size} bytes ending {tail[-90:]!r}", r)
    expect(r.stats.get("serial_dropped", 0) > 0, f"serial_dropped {r.stats.get('serial_dropped')}", r)


def ioapic_case(ctx, guest, irqchip):
    hv = ctx.hvmm("--irqchip", irqchip, ctx.guest(guest))
    expect(hv.status == 1 and hv.out.endswith("two IOAPIC interrupts delivered\n"),
           f"UART IRQ 4 through the IOAPIC ({irqchip} irqchip)", hv)
    if irqchip == "split":
        # One programmed pin, one route: KVM's whole table is replaced once
        # (hvmm's IOAPIC skips masked pins and unchanged messages).
        expect(hv.stats.get("irt_rewrites") == 1, f"routing table rewrites: {hv.stats.get('irt_rewrites')}", hv)
    return hv


@case("irq/ioapic-edge", qemu=True)
def t_ioapic_edge(ctx):
    same_as_qemu(ctx, "ioapic.elf")
    for chip in ("split", "kernel"):
        ioapic_case(ctx, "ioapic.elf", chip)


@case("irq/ioapic-level-eoi", qemu=True)
def t_ioapic_level(ctx):
    same_as_qemu(ctx, "ioapic_level.elf")
    hv = ioapic_case(ctx, "ioapic_level.elf", "split")
    # the second interrupt needs Remote IRR cleared: KVM reports each EOI of
    # a level-triggered vector to hvmm's IOAPIC
    expect(hv.stats["exits_by_reason"].get("IOAPIC_EOI") == 2,
           f"two EOI exits expected: {hv.stats['exits_by_reason']}", hv)
    ioapic_case(ctx, "ioapic_level.elf", "kernel")


@case("serial/stdin-input", qemu=True)
def t_serial_input(ctx):
    import subprocess as sp
    img = ctx.guest("echo.elf")
    hv = ctx.hvmm(img, stdin_data=b"abc xyz.")
    q = ctx.qemu(img, stdin_data=b"abc xyz.")
    expect(hv.status == q.status == 1, f"status hvmm {hv.status} QEMU {q.status}", hv)
    expect(hv.out == q.out == "ready\nabc xyz\nbye\n", f"echo: hvmm {hv.out!r} QEMU {q.out!r}")


def pty_run(ctx, guest, steps=(), signal=None, vm_timeout=10):
    """hvmm on a pseudo-terminal: returns (status, output, termios before, during, after).

    steps: (bytes to type, text to wait for in the output before the next step)."""
    import os as _os
    import pty
    import select
    import subprocess as sp
    import termios
    import time
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = sp.Popen([ctx.hvmm_bin, "run", "--timeout", str(vm_timeout), ctx.guest(guest)],
                 stdin=slave, stdout=slave, stderr=sp.PIPE)
    out = b""
    during = None
    deadline = time.time() + vm_timeout + 10
    try:
        while b"ready" not in out and time.time() < deadline and p.poll() is None:
            if select.select([master], [], [], 0.2)[0]:
                out += _os.read(master, 4096)
        during = termios.tcgetattr(slave)
        for keys, wait in steps:
            _os.write(master, keys)
            while wait and wait not in out and time.time() < deadline and p.poll() is None:
                if select.select([master], [], [], 0.2)[0]:
                    out += _os.read(master, 4096)
        if signal:
            p.send_signal(signal)
        while p.poll() is None and time.time() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                out += _os.read(master, 4096)
        if p.poll() is None:
            p.kill()  # the process this test started, by its Popen handle
            raise AssertionError("hvmm on a pty did not end")
        err = p.stderr.read().decode(errors="replace")
        after = termios.tcgetattr(slave)
    finally:
        _os.close(master)
        _os.close(slave)
    return p.returncode, out.decode(errors="replace"), err, before, during, after


@case("serial/ctrl-a-x-and-raw-terminal")
def t_ctrl_a_x(ctx):
    import termios
    status, out, err, before, during, after = pty_run(ctx, "echo.elf", steps=((b"hi", b"hi"), (b"\x01x", None)))
    expect(status == 0, f"Ctrl-A x ends hvmm with status 0 (got {status}) {err!r}")
    expect("hi" in out, f"typed bytes reached the guest and came back: {out!r}")
    expect(not (during[3] & termios.ICANON) and not (during[3] & termios.ECHO),
           "terminal in raw mode (no ICANON, no ECHO) while the guest runs")
    expect(after == before, "terminal settings restored after Ctrl-A x")


@case("serial/terminal-restored-on-timeout")
def t_restore_timeout(ctx):
    status, _, _, before, during, after = pty_run(ctx, "echo.elf", vm_timeout=1)
    expect(status == 124, f"timeout status {status}")
    expect(during != before and after == before, "raw while running, restored after timeout")


@case("serial/terminal-restored-on-sigterm")
def t_restore_sigterm(ctx):
    import signal
    status, _, _, before, during, after = pty_run(ctx, "echo.elf", signal=signal.SIGTERM)
    expect(status == 128 + 15, f"SIGTERM status {status}")
    expect(during != before and after == before, "raw while running, restored after SIGTERM")


@case("core/cpuid-hypervisor-leaves", qemu=True)
def t_cpuid(ctx):
    hv, _ = same_as_qemu(ctx, "cpuid.elf")
    expect(hv.out == "hypervisor bit set\nsignature: KVMKVMKVM\n", "KVM's CPUID leaves", hv)


@case("core/cpuid-mask-reaches-guest")
def t_cpuid_mask(ctx):
    # the policy is applied before KVM_SET_CPUID2: the guest sees the bit gone
    img = ctx.guest("cpuid.elf")
    for args in (("--cpuid-mask", "hypervisor"), ("--cpuid-mask", "0x1:ecx:31"),
                 ("--cpuid-set", "hypervisor", "--cpuid-mask", "avx,hypervisor")):
        hv = ctx.hvmm(*args, img)
        expect(hv.status == 3 and hv.out == "no hypervisor bit\n", f"{args}: mask reaches the guest", hv)
    # later options win: a set after the mask puts the bit back
    hv = ctx.hvmm("--cpuid-mask", "hypervisor", "--cpuid-set", "1:ecx:31", img)
    expect(hv.status == 1 and hv.out.startswith("hypervisor bit set"), "set after mask", hv)
    for t in ("none", "minimal", "no-xsave"):
        hv = ctx.hvmm("--cpu-template", t, img)
        expect(hv.status == 1 and "KVMKVMKVM" in hv.out, f"--cpu-template {t} runs the guest", hv)


@case("core/cpuid-bad-spec")
def t_cpuid_bad(ctx):
    img = ctx.guest("cpuid.elf")
    for args, needle in ((("--cpuid-mask", "bogus"), "unknown CPU feature 'bogus'"),
                         (("--cpuid-set", "1:ecx:40"), "not a feature name"),
                         (("--cpuid-mask", "0x7fffffff:eax:0"), "does not report that leaf"),
                         (("--cpu-template", "t9"), "unknown template 't9'")):
        hv = ctx.hvmm(*args, img)
        expect(hv.status == 2, f"{args}: usage error, status 2", hv)
        lines = hv.err.strip().splitlines()
        expect(len(lines) == 1 and needle in lines[0], f"{args}: one error line with {needle!r}", hv)


@case("serial/closed-stdout")
def t_closed_stdout(ctx):
    # `hvmm ... | head -c1`: the reader goes away; hvmm must still finish the
    # guest and return its status instead of dying of SIGPIPE
    import subprocess as sp
    p = sp.Popen([ctx.hvmm_bin, "run", "--timeout", "10", ctx.guest("hello.elf")],
                 stdin=sp.DEVNULL, stdout=sp.PIPE, stderr=sp.PIPE)
    p.stdout.close()
    try:
        status = p.wait(timeout=20)
    except sp.TimeoutExpired:
        p.kill()
        raise AssertionError("hvmm hung with a closed stdout")
    expect(status == 1, f"guest status 1 despite the closed pipe, got {status}")


@case("firmware/fw-cfg", qemu=True)
def t_fw_cfg(ctx):
    img = ctx.guest("fwcfg.elf")
    hv = ctx.hvmm("--cpus", "3", img)
    q = ctx.qemu(img, smp=3)
    expect(hv.status == q.status == 1, f"status hvmm {hv.status} QEMU {q.status}", hv)
    head = "fw_cfg signature: QEMU, cpus: 3, etc/e820 entries: "
    expect(hv.out.startswith(head) and q.out.startswith(head), f"hvmm {hv.out!r} QEMU {q.out!r}")
    # etc/e820 lists hvmm's memory slots: one below the hole, a second above
    # 4 GiB, and the reserved PCI ECAM window between them (QEMU's reserved
    # entries are its own, so the counts differ there)
    expect(hv.out == head + "2\n", f"128M: RAM + ECAM entries: {hv.out!r}", hv)
    hv5 = ctx.hvmm("--mem", "5G", img)
    expect(hv5.out.endswith("etc/e820 entries: 3\n"), f"5G: two RAM + ECAM entries: {hv5.out!r}", hv5)


def stalled_stdout_run(ctx, extra, stop):
    """hvmm with a guest that floods COM1 into a pipe nobody reads (a paused
    terminal, a stuck log reader); stop(p) ends it. Returns (status, seconds
    from stop to exit, stderr)."""
    r, w = os.pipe()
    size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)  # one page: full sooner
    err = open(os.path.join(ctx.tmp, "stalled.err"), "w+")
    p = subprocess.Popen([ctx.hvmm_bin, "run", *extra, ctx.guest("flood.elf")], stdin=subprocess.DEVNULL,
                         stdout=w, stderr=err, start_new_session=True)
    os.close(w)
    try:
        # The pipe holds what it can and hvmm's writer waits: no more bytes
        # for a second (each byte is an exit, slow in the nested KVM host).
        held, since = -1, time.monotonic()
        for _ in range(300):
            now = int.from_bytes(fcntl.ioctl(r, termios.FIONREAD, b"\0" * 4), "little")
            if now != held:
                held, since = now, time.monotonic()
            elif held > 0 and time.monotonic() - since > 1:
                break
            if p.poll() is not None:
                break
            time.sleep(0.1)
        expect(held > 0 and time.monotonic() - since > 1, f"the guest's output stalled ({held} bytes in the "
               f"{size}-byte pipe)")
        expect(p.poll() is None, "hvmm still runs with its stdout stalled")
        t0 = time.monotonic()
        stop(p)
        try:
            st = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the group this case started
            p.wait()
            st = None
        err.seek(0)
        return st, time.monotonic() - t0, err.read()
    finally:
        os.close(r)
        err.close()


@case("core/stop-with-stalled-stdout")
def t_stalled_stdout(ctx):
    """A reader that stops reading the serial output stalls the guest's
    output, never hvmm's stop: SIGTERM and --timeout each end it within a
    second (they once did nothing; only SIGKILL ended hvmm)."""
    st, dt, err = stalled_stdout_run(ctx, ["--timeout", "60"], lambda p: p.send_signal(signal.SIGTERM))
    expect(st == 128 + signal.SIGTERM, f"SIGTERM ended hvmm with status {st} after {dt:.1f} s, "
           f"want {128 + signal.SIGTERM} at once; stderr: {err[-300:]!r}")
    expect(dt < 2, f"SIGTERM took {dt:.1f} s to end hvmm")
    st, dt, err = stalled_stdout_run(ctx, ["--timeout", "12"], lambda p: None)
    expect(st == 124, f"--timeout 12 ended hvmm with status {st} ({dt:.1f} s after the stall began), "
           f"want 124; stderr: {err[-300:]!r}")
    print(f"      SIGTERM and --timeout both end hvmm with its stdout stalled")
