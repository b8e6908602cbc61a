/*
 * vtd: test=iommu. The kernel drives a VT-d unit the way an OS's IOMMU
 * driver does, with nothing between it and the registers, so that each of
 * the lecture's IOMMU mechanisms shows on its own:
 *
 *  - translation: a root table (one entry per bus) points at a context table
 *    (one entry per device and function), whose entry for edu names a domain
 *    and its second-level page table; edu's DMA addresses are then IOVAs,
 *    which the unit walks to guest-physical pages. The data edu moves proves
 *    the walk went where the table says.
 *  - the IOTLB: the unit caches walks. Re-pointing a mapping without an
 *    invalidation may leave the device on the old page (the spec allows
 *    either page until software invalidates); after the invalidation only
 *    the new page is allowed.
 *  - faults: a DMA to an IOVA that is not mapped, or a write to a read-only
 *    one, does not happen; the unit records the requester, address and reason
 *    in a fault recording register and signals a fault-event interrupt.
 *  - interrupt remapping: edu's MSI, in remappable format, carries only a
 *    handle; the vector and destination come from the remapping table entry
 *    the kernel wrote. A handle whose entry is not present delivers nothing.
 *
 * And what a DMA costs (# iommu-cost:): translation off, on with the IOVA in
 * the IOTLB, and on right after an invalidation, so every DMA walks.
 */
#include "vtd.h"

#include <stdbool.h>
#include <stdint.h>

#include "apic.h"
#include "arch.h"
#include "clock.h"
#include "console.h"
#include "layout.h"
#include "median.h"
#include "mm.h"
#include "pci.h"

/* The unit's registers (VT-d spec 10.4), at QEMU q35's (and hvmm's) base. */
#define VTD_BASE 0xfed90000ull
#define VTD_VER 0x00
#define VTD_CAP 0x08
#define VTD_ECAP 0x10
#define VTD_GCMD 0x18
#define VTD_GSTS 0x1c
#define VTD_RTADDR 0x20
#define VTD_CCMD 0x28
#define VTD_FSTS 0x34
#define VTD_FECTL 0x38
#define VTD_FEDATA 0x3c
#define VTD_FEADDR 0x40
#define VTD_FEUADDR 0x44
#define VTD_IRTA 0xb8

#define G_TE (1u << 31)
#define G_SRTP (1u << 30)
#define G_QIE (1u << 26)
#define G_IRE (1u << 25)
#define G_SIRTP (1u << 24)
#define G_CFI (1u << 23)
#define G_KEEP (G_TE | G_QIE | G_IRE | G_CFI) /* the commands whose status persists */

#define FSTS_PFO (1u << 0)
#define FSTS_PPF (1u << 1)

/* Second-level page-table entry bits. */
#define SL_R 1ull
#define SL_W 2ull
/* The context entry: present, translation type 0 (second-level tables for
 * untranslated requests); the upper half's address width and domain id. */
#define CTX_P 1ull
#define CTX_AW_39 1ull
#define CTX_AW_48 2ull
#define CTX_DID 1ull
/* IRTE, lower half: present, vector 23:16, xAPIC destination 47:40. */
#define IRTE_P 1ull

/* edu (QEMU's educational device, 1234:11e8), BAR 0. */
#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_RUN 1u
#define EDU_CMD_TO_RAM 2u
#define EDU_BUF 0x40000ull
#define EDU_DMA_MASK ((1ull << 28) - 1)
/* Bytes per transfer: QEMU 7.2's edu aborts the whole VM ("hardware
 * error") on a transfer that ends exactly at its buffer's end, so half of
 * its 4 KiB buffer. */
#define XFER 2048u

/* IOVAs: four pages in one leaf table. */
#define IOVA_A ((uint64_t)0x100000)    /* page A, read-write */
#define IOVA_C ((uint64_t)0x101000)    /* page C (results), read-write */
#define IOVA_RO ((uint64_t)0x102000)   /* page B, read-only */
#define IOVA_NONE ((uint64_t)0x103000) /* not mapped */

/* Vectors: MSI_VECTORS slots the kernel counts (u_msi_count). */
#define SLOT_FAULT 12 /* the unit's fault event */
#define SLOT_EDU 13   /* edu's MSI, remapped */
#define IRT_HANDLE 5  /* the IRTE edu's MSI names */
#define IRT_EMPTY 6   /* an IRTE left not present */

#define PCI_COMMAND 0x04
#define PCI_CAP_PTR 0x34
#define CAP_ID_MSI 0x05
#define SPIN_LIMIT 100000

static smp_tap_fn tap;
static uint64_t edu;       /* BAR 0 */
static unsigned iotlb_reg; /* ECAP.IRO * 16 + 8 */
static unsigned frcd_reg;  /* CAP.FRO * 16 */
static unsigned nfr;       /* CAP.NFR + 1 */
static uint64_t *leaf;     /* the leaf table holding the four IOVAs */

static uint32_t rd32(unsigned off) { return mmio_read32(VTD_BASE + off); }
static void wr32(unsigned off, uint32_t v) { mmio_write32(VTD_BASE + off, v); }
static uint64_t rd64(unsigned off) { return rd32(off) | (uint64_t)rd32(off + 4) << 32; }
/* Low half first: the commands (ICC, IVT) sit in the high halves. */
static void wr64(unsigned off, uint64_t v)
{
	wr32(off, (uint32_t)v);
	wr32(off + 4, (uint32_t)(v >> 32));
}

static uint64_t edu_rd(unsigned off) { return *(volatile uint64_t *)(edu + off); }
static void edu_wr(unsigned off, uint64_t v) { *(volatile uint64_t *)(edu + off) = v; }
static void edu_wr32(unsigned off, uint32_t v) { mmio_write32(edu + off, v); }

/* One global command: GCMD is write-only, so the persistent commands
 * already on are written again with it. Waits for the status. */
static bool vtd_gcmd(uint32_t bit, bool on)
{
	uint32_t keep = rd32(VTD_GSTS) & G_KEEP;
	wr32(VTD_GCMD, on ? keep | bit : keep & ~bit);
	for (unsigned i = 0; i < SPIN_LIMIT; i++)
		if (!(rd32(VTD_GSTS) & bit) == !on)
			return true;
	return false;
}

/* Register-based invalidation: the command goes to reg (the context
 * command or the IOTLB register), whose bit 63 stays set until it is done. */
static bool vtd_invalidate(unsigned reg, uint64_t cmd)
{
	wr64(reg, 1ull << 63 | cmd);
	for (unsigned i = 0; i < SPIN_LIMIT; i++)
		if (!(rd32(reg + 4) & (1u << 31)))
			return true;
	return false;
}

/* Global granularity (CIRG, IIRG = 01). */
static bool vtd_flush_context(void) { return vtd_invalidate(VTD_CCMD, 1ull << 61); }
static bool vtd_flush_iotlb(void) { return vtd_invalidate(iotlb_reg, 1ull << 60); }

/* Writes edu's DMA source, destination and count for len bytes between bus
 * address bus and its buffer. */
static void edu_dma_regs(uint64_t bus, uint64_t len, bool to_ram)
{
	edu_wr(EDU_DMA_SRC, to_ram ? EDU_BUF : bus);
	edu_wr(EDU_DMA_DST, to_ram ? bus : EDU_BUF);
	edu_wr(EDU_DMA_CNT, len);
}

/* Starts the transfer edu_dma_regs described and waits for the device's
 * "done" (QEMU's edu takes 100 ms, hvmm's none): TSC cycles from the command
 * to it, 0 if it never came within 2 s. */
static uint64_t edu_dma_go(bool to_ram)
{
	uint64_t t0 = rdtsc();
	edu_wr(EDU_DMA_CMD, EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0));
	uint64_t end = clock_ns() + 2000000000ull;
	while (edu_rd(EDU_DMA_CMD) & EDU_CMD_RUN)
		if (clock_ns() > end)
			return 0;
	return rdtsc() - t0;
}

static bool edu_dma(uint64_t bus, uint64_t len, bool to_ram)
{
	edu_dma_regs(bus, len, to_ram);
	return edu_dma_go(to_ram) != 0;
}

static void fill(uint64_t pa, uint8_t v)
{
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		((volatile uint8_t *)pa)[i] = (uint8_t)(v + i);
}

static bool same(uint64_t pa, uint8_t v)
{
	for (unsigned i = 0; i < XFER; i++)
		if (((volatile uint8_t *)pa)[i] != (uint8_t)(v + i))
			return false;
	return true;
}

/* Copies page src to page dst through edu's buffer: what edu read at the
 * bus address src_bus is written at dst_bus. */
static bool edu_copy(uint64_t src_bus, uint64_t dst_bus)
{
	return edu_dma(src_bus, XFER, false) && edu_dma(dst_bus, XFER, true);
}

/* A second-level table of `levels` levels mapping nothing yet; the leaf
 * table for IOVAs below 2 MiB goes to `leaf`. Returns the root, 0 if out of
 * pages. */
static uint64_t vtd_build_tables(unsigned levels)
{
	uint64_t top = mm_alloc_page(), t = top;
	for (unsigned l = levels; t && l > 1; l--) {
		uint64_t next = mm_alloc_page();
		if (!next)
			return 0;
		((uint64_t *)t)[0] = next | SL_R | SL_W; /* index 0 at every level */
		t = next;
	}
	leaf = (uint64_t *)t;
	return top;
}

static void vtd_map(uint64_t iova, uint64_t pa, uint64_t perm)
{
	leaf[(iova >> 12) & 511] = pa | perm;
}

/* The fault recording register the unit wrote last (FSTS.FRI is the
 * first pending one): its upper and lower halves. */
struct vtd_fault {
	bool pending;
	uint8_t reason;
	bool read;
	uint16_t sid;
	uint64_t addr;
	unsigned index;
};

static struct vtd_fault vtd_fault_get(void)
{
	struct vtd_fault f = { 0 };
	uint32_t fsts = rd32(VTD_FSTS);
	if (!(fsts & FSTS_PPF))
		return f;
	f.index = (fsts >> 8) & 0xff;
	if (f.index >= nfr)
		return f;
	uint64_t hi = rd64(frcd_reg + 16 * f.index + 8);
	f.pending = hi >> 63;
	f.read = (hi >> 62) & 1;
	f.reason = (uint8_t)(hi >> 32);
	f.sid = (uint16_t)hi;
	f.addr = rd64(frcd_reg + 16 * f.index);
	return f;
}

/* Clears every fault record (F is write-1-to-clear) and the overflow. */
static void vtd_fault_clear(void)
{
	for (unsigned i = 0; i < nfr; i++)
		wr32(frcd_reg + 16 * i + 12, 1u << 31);
	wr32(VTD_FSTS, FSTS_PFO);
}

/* The offset of edu's MSI capability, 0 if none. */
static unsigned edu_msi_cap(const struct pci_udev *d)
{
	unsigned p = pci_cfg_read(d, PCI_CAP_PTR) & 0xfc;
	for (unsigned n = 0; p && n < 48; n++) {
		uint32_t h = pci_cfg_read(d, p);
		if ((h & 0xff) == CAP_ID_MSI)
			return p;
		p = (h >> 8) & 0xfc;
	}
	return 0;
}

/* edu's MSI in remappable format: address 0xFEE00000 | handle << 5 | 1 << 4,
 * data 0 (no subhandle); enabled. */
static void edu_msi_remappable(const struct pci_udev *d, unsigned cap, unsigned handle)
{
	uint32_t ctl = pci_cfg_read(d, cap);
	bool is64 = (ctl >> 16) & 0x80;
	pci_cfg_write(d, cap + 4, 0xfee00000u | handle << 5 | 1u << 4);
	if (is64)
		pci_cfg_write(d, cap + 8, 0);
	pci_cfg_write(d, cap + (is64 ? 12 : 8), 0);
	pci_cfg_write(d, cap, ctl | 1u << 16);
}

static void edu_msi_off(const struct pci_udev *d, unsigned cap)
{
	pci_cfg_write(d, cap, pci_cfg_read(d, cap) & ~(1u << 16));
}

/* Raises edu's interrupt once; true if vector slot SLOT_EDU counted it
 * within timeout_ns. */
static bool edu_irq(uint64_t timeout_ns)
{
	uint64_t before = u_msi_count[SLOT_EDU];
	edu_wr32(EDU_IRQ_RAISE, 1);
	long n = pci_msi_wait(SLOT_EDU, (long)before, (long)timeout_ns);
	edu_wr32(EDU_IRQ_ACK, 1);
	return (uint64_t)n > before;
}

static uint64_t median_ns(uint64_t *v, unsigned n)
{
	return clock_tsc_to_ns(median_u64(v, n));
}

/* What a DMA from page A costs: translation off (bus address = page
 * A's physical address), on with the IOVA cached, on after a global IOTLB
 * invalidation (untimed) before each. Only the command and the polls for
 * "done" are timed: the address registers are written before. */
static bool vtd_costs(uint64_t a_pa, unsigned iters)
{
	static uint64_t t[3][256];
	unsigned n = iters > 256 ? 256 : iters;
	bool good = vtd_gcmd(G_TE, false);
	for (unsigned k = 0; k < 3 && good; k++) {
		if (k == 1)
			good = vtd_gcmd(G_TE, true);
		for (unsigned i = 0; i < n && good; i++) {
			if (k == 2)
				good = vtd_flush_iotlb();
			edu_dma_regs(k ? IOVA_A : a_pa, XFER, false);
			t[k][i] = edu_dma_go(false);
			good = good && t[k][i];
		}
	}
	tap(good, "iommu cost: %u DMAs of %u bytes each with translation off, with an IOTLB hit, and after an invalidation", n, XFER);
	if (good)
		kprintf("# iommu-cost: off %lu ns, hit %lu ns, miss %lu ns, %u DMAs of %u bytes each\n",
			median_ns(t[0], n), median_ns(t[1], n), median_ns(t[2], n), n, XFER);
	return good;
}

void vtd_test(smp_tap_fn tap_fn, smp_skip_fn skip, unsigned iters)
{
	(void)skip;
	tap = tap_fn;
	if (!apic_timer_hz)
		apic_timer_calibrate(); /* the waits for an interrupt that must not come end on it */
	const struct pci_udev *d = pci_find(EDU_VENDOR, EDU_DEVICE);
	uint32_t ver = rd32(VTD_VER);
	if (!d || !d->bar[0].phys || ver == 0 || ver == 0xffffffffu) {
		tap(false, "iommu: needs edu (%s) and a VT-d unit at 0x%lx (%s)", d ? "found" : "not found",
		    VTD_BASE, ver == 0 || ver == 0xffffffffu ? "not found" : "found");
		return;
	}
	edu = d->bar[0].phys;
	uint64_t cap = rd64(VTD_CAP), ecap = rd64(VTD_ECAP);
	unsigned sagaw = (cap >> 8) & 0x1f;
	unsigned levels = (sagaw & 4) ? 4 : 3;
	iotlb_reg = (unsigned)((ecap >> 8) & 0x3ff) * 16 + 8;
	frcd_reg = (unsigned)((cap >> 24) & 0x3ff) * 16;
	nfr = (unsigned)((cap >> 40) & 0xff) + 1;
	uint16_t sid = (uint16_t)(d->bus << 8 | d->dev << 3 | d->fn);
	kprintf("# iommu: VT-d %u.%u, cap 0x%lx ecap 0x%lx, %u-level tables, %u fault records; edu at %02x:%02x.%u BAR0 0x%lx\n",
		ver >> 4 & 0xf, ver & 0xf, cap, ecap, levels, nfr, d->bus, d->dev, d->fn, edu);
	if (!(sagaw & 6) || !(ecap & (1ull << 3))) {
		tap(false, "iommu: the unit offers neither 39- nor 48-bit tables (SAGAW 0x%x) or no interrupt remapping (ECAP.IR)", sagaw);
		return;
	}
	/* Memory decoding and bus mastering on, INTx off (edu then uses MSI). */
	pci_cfg_write(d, PCI_COMMAND, (pci_cfg_read(d, PCI_COMMAND) & 0xffff) | 0x6 | 0x400);

	uint64_t root = mm_alloc_page(), ctx = mm_alloc_page(), a = mm_alloc_page(), b = mm_alloc_page(),
		 c = mm_alloc_page(), irt = mm_alloc_page(), slpt = vtd_build_tables(levels);
	if (!root || !ctx || !a || !b || !c || !irt || !slpt || a > EDU_DMA_MASK) {
		tap(false, "iommu: no pages for the tables (or page A at 0x%lx is beyond edu's 28-bit reach)", a);
		return;
	}
	bool ok = true;
	fill(a, 0xa1);
	fill(b, 0xb2);

	/* Without translation, bus addresses are guest-physical. */
	fill(c, 0);
	bool moved = edu_copy(a, c) && same(c, 0xa1);
	tap(moved, "iommu off: edu copied page A (bus address = its physical address 0x%lx) to page C", a);

	/* The tables: bus 0's root entry, edu's context entry, the four IOVAs. */
	((uint64_t *)root)[2 * d->bus] = ctx | CTX_P;
	((uint64_t *)ctx)[2 * (d->dev << 3 | d->fn)] = slpt | CTX_P;
	((uint64_t *)ctx)[2 * (d->dev << 3 | d->fn) + 1] = (levels == 4 ? CTX_AW_48 : CTX_AW_39) | CTX_DID << 8;
	vtd_map(IOVA_A, a, SL_R | SL_W);
	vtd_map(IOVA_C, c, SL_R | SL_W);
	vtd_map(IOVA_RO, b, SL_R);
	wr64(VTD_RTADDR, root);
	bool on = vtd_gcmd(G_SRTP, true) && vtd_flush_context() && vtd_flush_iotlb() && vtd_gcmd(G_TE, true);
	tap(on, "iommu on: root table at 0x%lx, edu's context entry -> domain 1, %u-level table at 0x%lx; translation enabled (GSTS 0x%x)",
	    root, levels, slpt, rd32(VTD_GSTS));
	if (!on)
		return;

	fill(c, 0);
	moved = edu_copy(IOVA_A, IOVA_C) && same(c, 0xa1);
	tap(moved, "translated DMA: edu read IOVA 0x%lx (page A) and wrote IOVA 0x%lx (page C)", IOVA_A, IOVA_C);

	/* The IOTLB: IOVA_A is cached now. Point it at page B, no invalidation. */
	vtd_map(IOVA_A, b, SL_R | SL_W);
	fill(c, 0);
	bool stale_ok = edu_copy(IOVA_A, IOVA_C);
	bool stale = same(c, 0xa1), fresh = same(c, 0xb2);
	tap(stale_ok && (stale || fresh), "remapped IOVA 0x%lx to page B without an invalidation: edu read page %s",
	    IOVA_A, stale ? "A (the IOTLB's old translation)" : fresh ? "B (walked again)" : "neither");
	kprintf("# iommu-stale: %s\n", stale ? "old" : fresh ? "new" : "neither");
	fill(c, 0);
	moved = vtd_flush_iotlb() && edu_copy(IOVA_A, IOVA_C) && same(c, 0xb2);
	tap(moved, "after a global IOTLB invalidation edu reads page B");
	vtd_map(IOVA_A, a, SL_R | SL_W);
	ok = vtd_flush_iotlb() && ok;

	/* Faults: recorded, and signalled by the fault event (an MSI the unit
	 * sends itself, never remapped). */
	vtd_fault_clear();
	wr32(VTD_FEDATA, VEC_MSI_BASE + SLOT_FAULT);
	wr32(VTD_FEADDR, 0xfee00000u | (apic_id() & 0xff) << 12);
	wr32(VTD_FEUADDR, 0);
	wr32(VTD_FECTL, 0); /* unmasked */
	uint64_t events = u_msi_count[SLOT_FAULT];
	fill(c, 0);
	edu_dma(IOVA_NONE, XFER, false);
	struct vtd_fault f = vtd_fault_get();
	long got = pci_msi_wait(SLOT_FAULT, (long)events, 500000000);
	tap(f.pending && f.read && f.reason == 6 && f.sid == sid && f.addr == IOVA_NONE,
	    "DMA read of unmapped IOVA 0x%lx refused: fault record %u: %s, reason %u, requester %04x, address 0x%lx",
	    IOVA_NONE, f.index, f.read ? "read" : "write", f.reason, f.sid, f.addr);
	tap((uint64_t)got > events, "fault event interrupt taken (vector 0x%x)", VEC_MSI_BASE + SLOT_FAULT);
	vtd_fault_clear();
	events = u_msi_count[SLOT_FAULT];
	edu_dma(IOVA_C, XFER, false); /* something in edu's buffer to write */
	edu_dma(IOVA_RO, XFER, true);
	f = vtd_fault_get();
	got = pci_msi_wait(SLOT_FAULT, (long)events, 500000000);
	tap(f.pending && !f.read && f.reason == 5 && f.sid == sid && f.addr == IOVA_RO && same(b, 0xb2),
	    "DMA write to read-only IOVA 0x%lx refused, page B intact: fault record %u: %s, reason %u, address 0x%lx",
	    IOVA_RO, f.index, f.read ? "read" : "write", f.reason, f.addr);
	tap((uint64_t)got > events, "a second fault event once the first record was cleared");
	vtd_fault_clear();

	/* Interrupt remapping: IRTE IRT_HANDLE gives vector and destination;
	 * IRT_EMPTY stays not present. */
	unsigned msi = edu_msi_cap(d);
	((uint64_t *)irt)[2 * IRT_HANDLE] = IRTE_P | (uint64_t)(VEC_MSI_BASE + SLOT_EDU) << 16 |
					     (uint64_t)(apic_id() & 0xff) << 40;
	wr64(VTD_IRTA, irt | 3); /* 16 entries, xAPIC format */
	bool ir = msi && vtd_gcmd(G_SIRTP, true) && vtd_gcmd(G_IRE, true);
	tap(ir, "interrupt remapping on: table at 0x%lx, edu's MSI capability at 0x%x", irt, msi);
	if (ir) {
		edu_msi_remappable(d, msi, IRT_HANDLE);
		tap(edu_irq(500000000), "edu's MSI with handle %u arrived as vector 0x%x, the vector in the IRTE", IRT_HANDLE,
		    VEC_MSI_BASE + SLOT_EDU);
		events = u_msi_count[SLOT_FAULT];
		edu_msi_remappable(d, msi, IRT_EMPTY);
		bool delivered = edu_irq(200000000);
		f = vtd_fault_get();
		tap(!delivered, "edu's MSI with handle %u (IRTE not present) was not delivered", IRT_EMPTY);
		kprintf("# iommu-ir-blocked: fault record %s, reason 0x%x\n", f.pending ? "written" : "none", f.reason);
		edu_msi_off(d, msi);
		vtd_fault_clear();
		ir = vtd_gcmd(G_IRE, false);
	}
	ok = ok && ir;
	ok = vtd_costs(a, iters ? iters : 50) && ok;
	wr32(VTD_FECTL, 1u << 31);
	tap(vtd_gcmd(G_TE, false) && ok, "translation and remapping off again");
}
