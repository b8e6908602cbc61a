"""PCI tests: bus 0 through configuration mechanism #1 and ECAM, the
ACPI MCFG table, and the interrupt remapping table in the statistics.

The guests run on hvmm and on QEMU's q35 (the PCIe machine with ECAM; its host
bridge is the same 8086:29c0 MCH hvmm's imitates, but q35 also has the ICH9
LPC bridge at 00:1f.0, so the scans differ by that line).
"""

from harness import case, expect, io_count

HOST_BRIDGE = "00:00.0 8086:29c0 class 060000\n"
Q35_LPC = "00:1f.0 8086:2918 class 060100\n"


@case("pci/scan-bus0", qemu=True)
def t_scan(ctx):
    img = ctx.guest("pciscan.elf")
    hv = ctx.hvmm(img)
    q = ctx.qemu(img, machine="q35")
    expect(hv.status == 1 and hv.out == HOST_BRIDGE + "scan done\n",
           "hvmm: bus 0 holds the host bridge only", hv)
    expect(q.status == 1 and q.out == HOST_BRIDGE + Q35_LPC + "scan done\n",
           "QEMU q35: host bridge and ICH9 LPC", q)
    # One dword to CONFIG_ADDRESS per slot, plus one for the bridge's class:
    # KVM buffers all 33 (coalesced I/O) and hvmm applies them before the
    # CONFIG_DATA read that follows each, so a read costs one exit, not two.
    out_exits, buffered = io_count(hv.stats, "pio", "out", 0xcf8), hv.stats.get("coalesced_writes")
    expect(out_exits == 0 and buffered == 33,
           f"CONFIG_ADDRESS writes: {out_exits} exits, {buffered} buffered; expected 0 and 33", hv)
    expect(io_count(hv.stats, "pio", "in", 0xcfc) == 33, "CONFIG_DATA reads: expected 33")


@case("pci/scan-strict-io")
def t_scan_strict(ctx):
    # Every port the scan touches is claimed: --strict-io would stop the VM
    # on an unhandled access with status 8.
    hv = ctx.hvmm("--strict-io", ctx.guest("pciscan.elf"))
    expect(hv.status == 1 and hv.out.endswith("scan done\n"), "scan under --strict-io", hv)


@case("pci/ecam-matches-cf8", qemu=True)
def t_ecam(ctx):
    img = ctx.guest("ecam.elf")
    hv = ctx.hvmm(img)
    q = ctx.qemu(img, machine="q35")
    expect(hv.status == 1 and hv.out == "MCFG found\necam == cf8 on 1 functions\n",
           "hvmm: MCFG found, ECAM agrees with CF8 on the host bridge", hv)
    expect(q.status == 1 and q.out == "MCFG found\necam == cf8 on 2 functions\n",
           "QEMU q35: MCFG found, ECAM agrees with CF8", q)
    # every ECAM access is an MMIO exit to hvmm: 64 dword reads of 00:00.0,
    # one per absent slot, and the cache-line write and read-back
    n = hv.stats["exits_by_reason"].get("MMIO")
    expect(n == 64 + 31 + 2, f"MMIO exits: {n}, expected 97", hv)


@case("pci/mcfg-needs-acpi")
def t_mcfg_acpi_off(ctx):
    hv = ctx.hvmm("--acpi", "off", ctx.guest("ecam.elf"))
    expect(hv.status == 7 and "no ACPI MCFG table" in hv.out, "no ACPI, no MCFG: guest exits 3", hv)


@case("pci/stats-irt")
def t_stats_irt(ctx):
    # No virtio devices: the table is there and empty, in both forms.
    hv = ctx.hvmm("--stats", ctx.guest("hello.elf"))
    expect(hv.status == 1, "hello runs", hv)
    expect(isinstance(hv.stats.get("irt"), list) and hv.stats["irt"] == [],
           f"stats JSON 'irt': {hv.stats.get('irt')!r}", hv)
    expect("interrupt remapping table (MSI-X vector -> KVM GSI route): 0 entries" in hv.err,
           "--stats prints the table header", hv)


@case("pci/irqchip-kernel")
def t_irqchip_kernel(ctx):
    # With KVM's own irqchip the PCI ports behave the same.
    hv = ctx.hvmm("--irqchip", "kernel", ctx.guest("pciscan.elf"))
    expect(hv.status == 1 and hv.out == HOST_BRIDGE + "scan done\n", "scan with --irqchip kernel", hv)


@case("pci/reset-through-0xcf9")
def t_reset(ctx):
    # 0xcf9 lies inside PCI's 0xcf8-0xcff range: a byte there still resets.
    hv = ctx.hvmm(ctx.guest("reset_cf9.elf"))
    expect(hv.status == 0 and "0xcf9" in hv.err, "clean exit 0 with the reset message", hv)
    # The byte lies in the zone KVM buffers for 0xcf8: it reaches hvmm from
    # the ring, applied before the debug-exit write that follows it.
    expect(hv.stats.get("coalesced_writes", 0) + io_count(hv.stats, "pio", "out", 0xcf9) >= 1,
           "the write reached hvmm at 0xcf9", hv)


@case("pci/reset-through-0xcf9-then-halt")
def t_reset_halt(ctx):
    # After a buffered reset write this guest halts with interrupts off and
    # never exits again: the event loop's drain of the ring must apply it.
    hv = ctx.hvmm("--timeout", "20", ctx.guest("reset_cf9_halt.elf"))
    expect(hv.status == 0 and "0xcf9" in hv.err, "clean exit 0 with the reset message, not a timeout", hv)


def rng_guest(ctx, *args):
    """The test kernel's virtio-rng test (guest/, polling then MSI-X) on hvmm."""
    r = ctx.hvmm("-m", "256M", "--rng", "--cmdline", "test=virtio-rng", *args,
                 ctx.path("guest", "hvmm-guest.elf"), timeout=90, vm_timeout=60)
    oks = [ln for ln in r.out.splitlines() if ln.startswith("ok ")]
    expect(r.status == 1 and "not ok" not in r.out and len(oks) >= 10,
           f"virtio-rng test passes ({' '.join(args)})", r)
    irt = r.stats["irt"]
    expect(len(irt) >= 1 and all(e["gsi"] >= 24 for e in irt), f"IRT: MSI GSIs above the IOAPIC pins: {irt}", r)
    expect(any(e["sent"] > 0 and not e["masked"] for e in irt), f"IRT: a live, unmasked vector sent: {irt}", r)
    return irt


@case("pci/msix-irqchip-kernel")
def t_msix_kernel(ctx):
    # KVM's own PIC/IOAPIC: the MSI routes go into a table that must keep
    # KVM's default GSI 0-23 routes (tests/unit/test_irq.c checks those).
    irt = rng_guest(ctx, "--irqchip", "kernel")
    expect(all(e["irqfd"] and e["delivery"] == "irqfd" for e in irt), f"irqfd delivery: {irt}")
    irt = rng_guest(ctx, "--irqchip", "kernel", "--no-irqfd")
    expect(not any(e["irqfd"] for e in irt) and all(e["delivery"] == "injected" for e in irt),
           f"--no-irqfd: KVM_SIGNAL_MSI delivery: {irt}")


@case("pci/msix-stats-text")
def t_msix_stats_text(ctx):
    r = ctx.hvmm("-m", "256M", "--rng", "--stats", "--cmdline", "test=virtio-rng",
                 ctx.path("guest", "hvmm-guest.elf"), timeout=90, vm_timeout=60)
    expect(r.status == 1, "virtio-rng test passes", r)
    lines = [ln for ln in r.err.splitlines() if ln.strip().startswith("virtio-rng ") and "irqfd" in ln]
    expect("interrupt remapping table (MSI-X vector -> KVM GSI route): " in r.err and lines,
           f"--stats lists the virtio-rng vector: {r.err[-1500:]}", r)
    # device, devfn, vector, gsi, apic id, vector number, masked, delivery, sent, on unmask
    f = lines[0].split()
    expect(f[1] == "01.0" and int(f[3]) >= 24 and f[6] == "no" and f[7] == "irqfd" and int(f[8]) > 0,
           f"IRT line: {lines[0]!r}")
