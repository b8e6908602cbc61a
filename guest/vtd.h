/* vtd: the test kernel programs a VT-d IOMMU itself and makes QEMU's edu device DMA through it. */
#ifndef GUEST_VTD_H
#define GUEST_VTD_H

#include "smp.h"

/* test=iommu (needs the VT-d unit and edu: hvmm --device intel-iommu,intremap=on
 * --device edu, or QEMU -M q35,kernel-irqchip=split -device intel-iommu,intremap=on
 * -device edu). TAP lines for translation, the IOTLB's invalidation
 * semantics, the two kinds of DMA fault with their records and fault-event
 * interrupt, and an MSI through the interrupt remapping table; "# iommu-cost:"
 * for what a DMA costs with translation off, on with an IOTLB hit, and on
 * after an invalidation (a walk), median of iters DMAs each. */
void vtd_test(smp_tap_fn tap, smp_skip_fn skip, unsigned iters);

#endif
