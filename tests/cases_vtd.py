"""The VT-d unit driven by the test kernel itself (test=iommu, guest/vtd.c).

What a user relies on: a guest OS that programs hvmm's IOMMU the way the
spec says gets what the spec promises — DMA goes where its tables point,
a stale translation is never used once the guest invalidated it, a DMA the
tables do not allow never lands and is recorded with requester, address and
reason and signalled by the fault event, and an MSI in remappable format
gets its vector from the guest's interrupt remapping table — with hvmm's own
APICs too, where the remapped message then takes hvmm's posted-interrupt
path. QEMU's q35 with
its own VT-d unit and edu, the reference, passes the same lines.
"""
import re

from cases_guest import check_all_ok, kernel
from harness import case, expect, reference_retry

IOMMU_DEVS = ("--device", "intel-iommu,intremap=on", "--device", "edu")
COST_RX = re.compile(r"^# iommu-cost: off (\d+) ns, hit (\d+) ns, miss (\d+) ns, (\d+) DMAs of (\d+) bytes", re.M)


@case("iommu/guest-vtd")
def t_guest_vtd(ctx):
    hv = ctx.hvmm(*IOMMU_DEVS, "--cmdline", "test=iommu iters=20", kernel(ctx), timeout=120, vm_timeout=90)
    th = check_all_ok("hvmm", hv)
    io = hv.stats["iommu"]
    # Two refused DMAs and one blocked MSI: three records, three fault
    # events; one remapped MSI. Hits: the DMAs with the IOVA cached.
    expect(io["faults"] == 3 and io["events"] == 3 and io["remapped"] == 1 and io["blocked"] == 1,
           f"hvmm's unit counted 3 faults, 3 events, 1 remapped and 1 blocked MSI: {io}", hv)
    expect(io["iotlb_hits"] >= 20 and io["iotlb_misses"] >= 20,
           f"20 DMAs hit the IOTLB and 20 walked after an invalidation: {io}", hv)
    # hvmm's IOTLB keeps a walk until the guest invalidates it (the spec
    # allows either page before the invalidation; after it, only the new)
    expect("# iommu-stale: old" in hv.out, "hvmm's IOTLB served the old translation until invalidated", hv)
    m = re.search(r"^# iommu-ir-blocked: fault record written, reason 0x22\b", hv.out, re.M)
    expect(m, "the MSI through a not-present IRTE was recorded with reason 0x22", hv)
    cost = COST_RX.search(hv.out)
    expect(cost, "the cost line", hv)
    # QEMU's edu runs each DMA from a 100 ms timer: few DMAs there
    _, tq = reference_retry(
        lambda: ctx.qemu(kernel(ctx), append="test=iommu iters=2", machine="q35,kernel-irqchip=split", timeout=90,
                         extra=("-device", "intel-iommu,intremap=on", "-device", "edu")),
        lambda r: check_all_ok("QEMU-KVM q35 + intel-iommu + edu", r))
    expect(th == tq, f"hvmm and QEMU disagree:\n{th}\n{tq}")
    # hvmm's own APICs: the guest's IRTE turns edu's remappable MSI into a
    # plain message, which hvmm's interrupt engine then posts through its
    # IRT's MSI entry to vCPU 0's posted-interrupt descriptor, as it does
    # the unit's fault events
    hu = ctx.hvmm("--irqchip", "user", *IOMMU_DEVS, "--cmdline", "test=iommu iters=5", kernel(ctx),
                  timeout=120, vm_timeout=90)
    tu = check_all_ok("hvmm --irqchip user", hu)
    expect(tu == th, f"hvmm --irqchip user and split disagree:\n{tu}\n{th}")
    msi = hu.stats["vcpus"][0]["lapic"]["irt"]["msi"]
    expect(hu.stats["iommu"]["remapped"] == 1 and msi["posted"] >= 4,
           f"--irqchip user: 1 MSI remapped by the guest's IRTE, then 4 messages (it and 3 fault events) posted "
           f"by hvmm's engine: {hu.stats['iommu']}, IRT msi {msi}", hu)
    off, hit, miss = (int(cost.group(i)) for i in (1, 2, 3))
    print(f"      hvmm: {io['translations']} translations, IOTLB {io['iotlb_hits']} hits / {io['iotlb_misses']} "
          f"misses, {io['faults']} faults; a {cost.group(5)}-byte DMA: off {off / 1000:.1f} us, hit {hit / 1000:.1f} us, "
          f"miss {miss / 1000:.1f} us (medians of {cost.group(4)})")
