"""hvmm's own test kernel (guest/) on hvmm, QEMU with KVM and QEMU with TCG.

Each `test=NAME` runs on all three, and every TAP line must be `ok` with no
SKIP on each:
  - hvmm and QEMU-KVM run on the same KVM, so their lines must also match
    (ok / not ok and the test's words; measured numbers may differ);
  - QEMU-TCG emulates the whole CPU without KVM: passing there proves the guest
    code right independently of any KVM. It is a case of its own
    (guest-tcg/NAME), because where the KVM cases run in the nested KVM host
    the TCG runs stay on the outer machine.
"""
import re

from harness import case, expect, reference_retry

KERNEL = "hvmm-guest.elf"
NUM = re.compile(r"\d+(\.\d+)?")


def kernel(ctx):
    return ctx.path("guest", KERNEL)


def tap(out):
    """[(number, ok, skip, words)] from the TAP lines; words with numbers masked."""
    res = []
    for line in out.replace("\r", "").splitlines():
        m = re.match(r"(not ok|ok) (\d+) - (.*)", line)
        if not m:
            continue
        text = m.group(3)
        skip = "# SKIP" in text
        words = NUM.sub("N", text.split(" # SKIP")[0].split(":")[0])
        res.append((int(m.group(2)), m.group(1) == "ok", skip, words))
    return res


def plan(out):
    m = re.search(r"^1\.\.(\d+)$", out.replace("\r", ""), re.M)
    return int(m.group(1)) if m else None


def check_all_ok(name, r):
    """Every TAP line ok, none skipped, the plan complete, status 1."""
    t = tap(r.out)
    expect(t and plan(r.out) == len(t), f"{name}: TAP plan 1..N matches the lines", r)
    expect(all(ok for _, ok, _, _ in t), f"{name}: a test failed:\n{r.out[-1500:]}", r)
    skipped = [w for _, _, s, w in t if s]
    expect(not skipped, f"{name}: with hardware virtualization nothing may skip: {skipped}", r)
    expect(r.status == 1, f"{name}: all passed → debug-exit 0 → status 1", r)
    return t


def run_everywhere(ctx, test, cpus=1, vm_timeout=120):
    """hvmm and QEMU-KVM on the same image: both pass every line, alike."""
    hv = ctx.hvmm("--cpus", cpus, "--cmdline", f"test={test}", kernel(ctx),
                  timeout=vm_timeout + 30, vm_timeout=vm_timeout)
    qk, tk = reference_retry(
        lambda: ctx.qemu(kernel(ctx), append=f"test={test}", smp=cpus, timeout=vm_timeout + 30),
        lambda r: check_all_ok("QEMU-KVM", r))
    th = check_all_ok("hvmm", hv)
    expect(th == tk, f"hvmm and QEMU-KVM disagree:\n{th}\n{tk}")
    return hv, qk


def run_tcg(ctx, test, cpus=1, vm_timeout=120):
    qt = ctx.qemu(kernel(ctx), append=f"test={test}", smp=cpus, accel="tcg", timeout=vm_timeout + 30)
    check_all_ok("QEMU-TCG", qt)
    return qt


def guest_case(test, cpus=1):
    @case(f"guest/{test}", qemu=True)
    def fn(ctx):
        run_everywhere(ctx, test, cpus)

    @case(f"guest-tcg/{test}", kvm=False, qemu=True)
    def fn_tcg(ctx):
        run_tcg(ctx, test, cpus)
    return fn


for _t in ("boot", "hello", "exceptions", "paging", "timer", "halt"):
    guest_case(_t)
guest_case("smp", cpus=2)


@case("guest/syscall-no-vmm-exits", qemu=True)
def t_syscall(ctx):
    """The seed's claim: INT/IRET move between non-root user and system mode
    without the VMM. 1,000,000 round trips must cost no user-space exits."""
    hv, qk = run_everywhere(ctx, "syscall")
    # all three entries reach guest ring 0 without hvmm: a million round trips each
    for entry in ("int 0x80", "SYSCALL/SYSRET", "int3"):
        expect(any(entry in l and "1000000 round trips" in l for l in hv.out.splitlines()
                   if l.startswith("ok")), f"entry {entry}: a million round trips", hv)
    expect(qk.out.count("1000000 round trips") == 3, "QEMU-KVM delivers all three entries", qk)
    # Every user-space exit of the run is serial output or boot-time device
    # set-up (PIC, boot marks, debug-exit), exactly as many as test=hello
    # makes: the million syscalls add none.
    base = ctx.hvmm("--cmdline", "test=hello", kernel(ctx))
    ex = hv.stats["exits_by_reason"]
    expect(set(ex) <= {"IO", "MMIO"}, f"only I/O exits: {ex}", hv)
    expect(non_serial(hv.stats) == non_serial(base.stats),
           f"non-serial exits: syscall {non_serial(hv.stats)} vs hello {non_serial(base.stats)}", hv)
    expect(hv.stats["userspace_exits"] < 5000, f"{hv.stats['userspace_exits']} exits", hv)


def non_serial(stats):
    """{(space, dir, addr): count} of every access except COM1's ports."""
    return {(e["space"], e["dir"], e["addr"]): e["count"] for v in stats["vcpus"] for e in v["io"]
            if not (e["space"] == "pio" and 0x3f8 <= e["addr"] <= 0x3ff)}


@case("guest-tcg/syscall", kvm=False, qemu=True)
def t_syscall_tcg(ctx):
    qt = run_tcg(ctx, "syscall")
    expect(qt.out.count("1000000 round trips") == 3, "TCG delivers all three entries", qt)


@case("guest/boot-marks")
def t_marks(ctx):
    hv = ctx.hvmm("--cmdline", "test=hello", kernel(ctx))
    marks = hv.stats["boot_marks"]
    expect(len(marks) >= 2, f"kernel and first-ring-3 marks recorded: {marks}", hv)
    expect(marks[0]["via"] == "pio" and any(m["via"] == "mmio" for m in marks),
           "ring 0 marks through the port, ring 3 through MMIO", hv)
    expect(all(marks[i]["ns"] <= marks[i + 1]["ns"] for i in range(len(marks) - 1)),
           "marks in time order", hv)


guest_case("serial")  # the UART's IRQ 4 through the IOAPIC (a device test, not in `all`)


@case("guest/all", qemu=True)
def t_all(ctx):
    # every device-free test in one boot; TCG keeps this cheap, hvmm and
    # QEMU-KVM each spend ~10 s in the million syscalls
    run_everywhere(ctx, "all", cpus=2, vm_timeout=150)


@case("guest-tcg/all", kvm=False, qemu=True)
def t_all_tcg(ctx):
    run_tcg(ctx, "all", cpus=2, vm_timeout=150)


@case("guest/panic-status", qemu=True)
def t_panic(ctx):
    # a ring-0 fault is a kernel panic: a report on serial and debug-exit 2 →
    # status 5, distinct from pass (1) and fail (3); #DF goes through the IST stack
    for test in ("panic", "doublefault"):
        hv = ctx.hvmm("--cmdline", f"test={test}", kernel(ctx))
        q = ctx.qemu(kernel(ctx), append=f"test={test}")
        for name, r in (("hvmm", hv), ("QEMU-KVM", q)):
            expect(r.status == 5 and "PANIC: unexpected" in r.out and "Bail out!" in r.out,
                   f"{name} test={test}: panic report and status 5", r)
    expect("#DF double fault" in hv.out, "double fault reported", hv)


@case("guest/ram-above-4g", qemu=True)
def t_ram_high(ctx):
    # 5 GiB: 3 GiB below the 32-bit PCI hole, 2 GiB from 4 GiB up; the guest
    # prints what its multiboot memory map says, and QEMU must say the same
    line = lambda r: [l for l in r.out.replace("\r", "").splitlines() if "memory map" in l]  # noqa: E731
    hv = ctx.hvmm("--mem", "5G", "--cmdline", "test=hello", kernel(ctx))
    q = ctx.qemu(kernel(ctx), append="test=hello", mem="5G")
    expect(hv.status == q.status == 1, "both pass", hv)
    expect(line(hv) and "(2048 MiB above 4 GiB)" in line(hv)[0], f"RAM above the hole: {line(hv)}", hv)
    expect(line(hv) == line(q), f"memory map differs: hvmm {line(hv)} QEMU {line(q)}")


@case("firmware/acpi-madt")
def t_acpi(ctx):
    # the guest kernel looks for an RSDP in 0xe0000-0xfffff and counts the
    # CPUs in the MADT; with --acpi off it finds only the MP table
    for acpi, want in (("on", "ACPI MADT: yes"), ("off", "ACPI MADT: no")):
        hv = ctx.hvmm("--acpi", acpi, "--cpus", "3", "--cmdline", "test=smp", kernel(ctx))
        expect(hv.status == 1 and "3 CPUs found" in hv.out and want in hv.out,
               f"--acpi {acpi}: {want}, 3 CPUs, every smp check passes", hv)
