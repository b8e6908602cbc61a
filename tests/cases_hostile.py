"""test=virtio-hostile: a ring-3 driver hands virtio-rng,
virtio-blk and virtio-console malformed rings (loops, buffers outside RAM or wrapping 2^64, bad
indirect tables, avail idx jumps, rings outside RAM, bad queue sizes, kicks
before DRIVER_OK). Each case must end in DEVICE_NEEDS_RESET or a failed
request, and the device must work again after a reset.

On hvmm every case must pass, hvmm must live to the guest's debug-exit, and
--stats-json's "virtio" section must have counted what happened. `make test-asan`
runs this case on the ASan+UBSan build, which must leave no sanitizer report. On QEMU (the reference) the cases need not pass — QEMU lets
a device DMA into MMIO and unassigned space, accepts any queue size, and
serves virtio-blk before DRIVER_OK — but QEMU must survive them too and every
device must come back after its reset, which checks the test's own driver.
"""
import os
import re

from harness import case, expect
from cases_guest import kernel, plan

RAM_MIB = 128
CHAIN_CASES = 20  # HS_CHAIN entries of hs_cases[] in guest/user/uhostile.c
CASES = CHAIN_CASES + 3
DEVICES = ("virtio-rng", "virtio-blk", "virtio-console")
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def disk(ctx):
    path = os.path.join(ctx.tmp, "hostile.img")
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return path


def check_tap(r, who):
    """[(ok, text)] of the TAP lines (whole text: the outcome follows the colons)."""
    t = [(m.group(1) == "ok", m.group(2)) for m in
         re.finditer(r"^(not ok|ok) \d+ - (.*)$", r.out.replace("\r", ""), re.M)]
    expect(t and plan(r.out) == len(t) == len(DEVICES) * CASES,
           f"{who}: the TAP plan covers {len(DEVICES)} x {CASES} cases", r)
    return t, [text for ok, text in t if not ok]


def run_hvmm(ctx, hvmm_bin=None, extra=()):
    args = tuple(extra) + ("--mem", f"{RAM_MIB}M", "--rng", "--disk", disk(ctx), "--console", "virtio",
            "--cmdline", f"test=virtio-hostile rammib={RAM_MIB}", kernel(ctx))
    if hvmm_bin is None:
        return ctx.hvmm(*args, timeout=200, vm_timeout=150)
    saved = ctx.hvmm_bin
    ctx.hvmm_bin = hvmm_bin
    try:
        return ctx.hvmm(*args, timeout=300, vm_timeout=240)
    finally:
        ctx.hvmm_bin = saved


def check_hvmm(r, who):
    _, bad = check_tap(r, who)
    expect(not bad, f"{who}: every hostile case ends in NEEDS_RESET or a failed request, "
           "and the device works after reset:\n      " + "\n      ".join(bad[:12]), r)
    expect(r.status == 1, f"{who}: hvmm lived to the guest's debug-exit (status 1)", r)
    for s in SANITIZER:
        at = r.err.find(s)
        expect(at < 0, f"{who}: sanitizer report on stderr:\n{r.err[at:at + 2000]}")
    expect(r.stats and "virtio" in r.stats, f"{who}: --stats-json has a virtio section", r)
    devs = {d["name"]: d for d in r.stats["virtio"]}
    for name in DEVICES:
        d = devs.get(name)
        expect(d is not None, f"{who}: {name} in the stats: {list(devs)}", r)
        # every chain case is a vq_pop error; rings outside RAM a vq_start error
        expect(d["bad_chains"] >= CHAIN_CASES + 1, f"{who}: {name} bad_chains {d['bad_chains']} "
               f">= {CHAIN_CASES + 1}", r)
        expect(d["needs_reset"] >= CHAIN_CASES + 1, f"{who}: {name} needs_reset {d['needs_reset']} "
               f">= {CHAIN_CASES + 1}", r)
        expect(d["early_notifies"] >= 1, f"{who}: {name} early_notifies {d['early_notifies']} >= 1", r)
        expect(d["resets"] >= CASES, f"{who}: {name} resets {d['resets']} >= {CASES}", r)
        if "refused" in d:
            expect(d["refused"] >= 4, f"{who}: {name} refused {d['refused']} >= 4 (bad queue sizes)", r)
    # hvmm words each driver error once per device until reset, never floods
    errs = [l for l in r.err.splitlines() if "guest driver error" in l]
    expect(len(errs) <= 2 * CASES * len(DEVICES) + 4, f"{who}: {len(errs)} error lines", r)


@case("hostile/virtio-hostile")
def t_hostile(ctx):
    r = run_hvmm(ctx)
    check_hvmm(r, "hvmm")
    print(f"    hvmm: {len(DEVICES) * CASES} hostile cases passed; stats " +
          "; ".join(f"{d['name']}: bad_chains {d['bad_chains']} needs_reset {d['needs_reset']} "
                    f"early_notifies {d['early_notifies']} resets {d['resets']}"
                    for d in r.stats["virtio"] if d["name"] in DEVICES))


@case("hostile/virtio-hostile-no-eventfds")
def t_hostile_noeventfd(ctx):
    """Kicks as MMIO exits to hvmm and interrupts injected by hvmm: the other
    notify path (the early-notify accounting runs there too)."""
    check_hvmm(run_hvmm(ctx, extra=("--no-ioeventfd", "--no-irqfd")), "hvmm --no-ioeventfd --no-irqfd")


@case("hostile/virtio-hostile-qemu", qemu=True)
def t_hostile_qemu(ctx):
    img = disk(ctx)
    r = ctx.qemu(kernel(ctx), append=f"test=virtio-hostile rammib={RAM_MIB}", machine="q35",
                 mem=f"{RAM_MIB}M", timeout=180,
                 extra=("-device", "virtio-rng-pci,disable-legacy=on",
                        "-drive", f"file={img},if=none,id=hd0,format=raw",
                        "-device", "virtio-blk-pci,drive=hd0,disable-legacy=on",
                        "-device", "virtio-serial-pci,disable-legacy=on",
                        "-chardev", "null,id=hc0", "-device", "virtconsole,chardev=hc0"))
    t, bad = check_tap(r, "QEMU")
    expect(r.status in (1, 3), f"QEMU ran the guest to its debug-exit (status {r.status})", r)
    lost = [text for _, text in t if not text.endswith("works after reset")]
    expect(not lost, "QEMU: every device works again after its reset:\n      " + "\n      ".join(lost), r)
    print(f"    QEMU survived all {len(t)} cases; {len(bad)} not handled as hvmm does:")
    for b in bad:
        print(f"      {b}")
