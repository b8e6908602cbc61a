/*
 * iommu_walk: VT-d DMA remapping in legacy mode (spec chapter 3): root
 * table → context entry → second-level page table, and the DMA helper
 * device models use. Every table address is checked against guest RAM and
 * every entry copied once before it is looked at, so a guest rewriting its
 * tables under a walk gets a consistent (if stale) answer, never a read
 * outside RAM.
 */
#include <errno.h>
#include <string.h>

#include "iommu_priv.h"
#include "memory.h"

#define IOMMU_PAGE_SHIFT 12
#define IOMMU_PAGE_SIZE (1ull << IOMMU_PAGE_SHIFT)
#define IOMMU_ADDR_MASK (((1ull << IOMMU_HAW) - 1) & ~(IOMMU_PAGE_SIZE - 1))
/* Address bits the host address width leaves reserved in entries (51:HAW). */
#define IOMMU_ADDR_RSVD (((1ull << 52) - 1) & ~((1ull << IOMMU_HAW) - 1))

/* Root entry (legacy): P, reserved 11:1, context-table pointer; upper quadword reserved. */
#define ROOT_P 1ull
#define ROOT_RSVD_LO (0xffeull | IOMMU_ADDR_RSVD)
/* Context entry: P, FPD, TT 3:2, reserved 11:4, SLPTPTR; upper: AW 2:0, DID 23:8. */
#define CTX_P 1ull
#define CTX_FPD 2ull
#define CTX_TT_SHIFT 2
#define CTX_TT_MASK 3ull
#define CTX_RSVD_LO (0xff0ull | IOMMU_ADDR_RSVD)
#define CTX_AW_MASK 7ull
#define CTX_RSVD_HI (0xffffffffff000000ull | 0x80ull)
enum { CTX_TT_SL = 0, CTX_TT_DEVTLB = 1, CTX_TT_PT = 2 };
/* Second-level paging entry: R, W, PS (bit 7, levels 2 and 3), address. */
#define PTE_R 1ull
#define PTE_W 2ull
#define PTE_PS (1ull << 7)
#define PTE_LEVEL_BITS 9

/* Copy n quadwords (one entry) from guest RAM; false if they are not all RAM. */
static bool iommu_entry(const struct guest_mem *m, uint64_t gpa, uint64_t *e, size_t n)
{
	const void *p = mem_ptr(m, gpa, n * sizeof(*e));
	if (!p)
		return false;
	memcpy(e, p, n * sizeof(*e));
	return true;
}

/* The second-level walk from table `pt` with `levels` levels. */
static int iommu_sl_walk(const struct guest_mem *m, uint64_t pt, unsigned levels, unsigned sllps,
			 uint64_t iova, bool write, struct iommu_xlate *out)
{
	unsigned width = IOMMU_PAGE_SHIFT + PTE_LEVEL_BITS * levels;
	if (iova >> width)
		return IOMMU_FR_ADDR_WIDTH;
	bool r_ok = true, w_ok = true;
	for (unsigned level = levels; level >= 1; level--) {
		unsigned shift = IOMMU_PAGE_SHIFT + PTE_LEVEL_BITS * (level - 1);
		uint64_t pte;
		if (!iommu_entry(m, pt + ((iova >> shift) & 0x1ff) * 8, &pte, 1))
			return IOMMU_FR_PTE_ACCESS;
		/* Rights are the AND over every level; R=W=0 is "not present". */
		r_ok = r_ok && (pte & PTE_R);
		w_ok = w_ok && (pte & PTE_W);
		if (!(pte & (PTE_R | PTE_W)) || (write ? !w_ok : !r_ok))
			return write ? IOMMU_FR_WRITE : IOMMU_FR_READ;
		if (pte & IOMMU_ADDR_RSVD)
			return IOMMU_FR_PTE_RSVD;
		bool leaf = level == 1;
		if (level > 1 && (pte & PTE_PS)) {
			/* 2 MiB pages at level 2, 1 GiB at level 3, as CAP.SLLPS allows */
			if (level > 3 || !(sllps & (1u << (level - 2))))
				return IOMMU_FR_PTE_RSVD;
			leaf = true;
		}
		if (leaf) {
			uint64_t size = 1ull << shift;
			out->gpa = ((pte & IOMMU_ADDR_MASK) & ~(size - 1)) | (iova & (size - 1));
			out->page_size = size;
			out->r = r_ok;
			out->w = w_ok;
			return IOMMU_OK;
		}
		pt = pte & IOMMU_ADDR_MASK;
	}
	return IOMMU_FR_PTE_RSVD; /* not reached: level 1 is always a leaf */
}

int iommu_walk(const struct guest_mem *m, uint64_t rtaddr, unsigned sagaw, unsigned sllps,
	       uint16_t sid, uint64_t iova, bool write, struct iommu_xlate *out)
{
	*out = (struct iommu_xlate){ 0 };
	uint64_t re[2], ce[2];
	if (!iommu_entry(m, (rtaddr & IOMMU_ADDR_MASK) + (uint64_t)(sid >> 8) * 16, re, 2))
		return IOMMU_FR_ROOT_ACCESS;
	if (!(re[0] & ROOT_P))
		return IOMMU_FR_ROOT_NP;
	if ((re[0] & ROOT_RSVD_LO) || re[1])
		return IOMMU_FR_ROOT_RSVD;
	if (!iommu_entry(m, (re[0] & IOMMU_ADDR_MASK) + (uint64_t)(sid & 0xff) * 16, ce, 2))
		return IOMMU_FR_CTX_ACCESS;
	if (!(ce[0] & CTX_P))
		return IOMMU_FR_CTX_NP;
	/* From here on the entry is present and its FPD counts. */
	out->fpd = ce[0] & CTX_FPD;
	if ((ce[0] & CTX_RSVD_LO) || (ce[1] & CTX_RSVD_HI))
		return IOMMU_FR_CTX_RSVD;
	switch ((ce[0] >> CTX_TT_SHIFT) & CTX_TT_MASK) {
	case CTX_TT_PT:
		out->gpa = iova;
		out->page_size = 0; /* the whole space, untranslated */
		out->r = out->w = true;
		return IOMMU_OK;
	case CTX_TT_SL: {
		unsigned aw = (unsigned)(ce[1] & CTX_AW_MASK);
		/* AW 1: 39-bit, 3 levels; AW 2: 48-bit, 4 levels (SAGAW bit aw) */
		if ((aw != 1 && aw != 2) || !(sagaw & (1u << aw)))
			return IOMMU_FR_CTX_INVAL;
		return iommu_sl_walk(m, ce[0] & IOMMU_ADDR_MASK, aw + 2, sllps, iova, write, out);
	}
	default: /* device-TLB (ECAP.DT is 0) and the reserved value */
		return IOMMU_FR_CTX_INVAL;
	}
}

/* Bytes from iova to the end of the 64-bit space (all of it from 0). */
static uint64_t iommu_rest(uint64_t iova)
{
	return iova ? ~iova + 1 : ~0ull;
}

void iommu_iotlb_flush(struct iommu *u)
{
	memset(u->iotlb_cache, 0, sizeof(u->iotlb_cache));
	u->iotlb_flushes++;
	/* release: whoever sees the new generation sees an empty cache */
	__atomic_add_fetch(&u->gen, 1, __ATOMIC_RELEASE);
}

static unsigned iommu_iotlb_slot(uint16_t sid, uint64_t page)
{
	/* devfn in the low bits: the devices of one VM sit on bus 0 */
	return (unsigned)((page ^ ((uint64_t)sid << 5) ^ (page >> 10)) % IOMMU_IOTLB_SLOTS);
}

/* in the tag: a page number is at most 52 bits, so bit 63 is free */
#define IOTLB_VALID (1ull << 63)

int iommu_translate(struct iommu *u, uint16_t sid, uint64_t iova, bool write, uint64_t *gpa,
		    uint64_t *avail)
{
	if (!u)
		goto identity;
	uint64_t page = iova >> IOMMU_PAGE_SHIFT, off = iova & (IOMMU_PAGE_SIZE - 1);
	struct iommu_iotlb_entry *e = &u->iotlb_cache[iommu_iotlb_slot(sid, page)];
	pthread_mutex_lock(&u->lock);
	uint32_t gsts = u->gsts;
	uint64_t root = u->root, gen = u->gen;
	if (!(gsts & IOMMU_G_TE)) {
		pthread_mutex_unlock(&u->lock);
		goto identity;
	}
	u->translations++;
	/* A hit must grant the access: a write through a read-only entry
	 * walks again, which finds (and records) the fault. */
	if (e->tag == (page | IOTLB_VALID) && e->sid == sid &&
	    (write ? e->w : e->r)) {
		u->iotlb_hits++;
		*gpa = e->gpa + off;
		*avail = e->avail - off;
		pthread_mutex_unlock(&u->lock);
		return IOMMU_OK;
	}
	u->iotlb_misses++;
	pthread_mutex_unlock(&u->lock);

	/* The walk reads guest tables without the lock (a vCPU may be
	 * rewriting them: each entry is copied once, then checked). */
	struct iommu_xlate x;
	int r = iommu_walk(u->mem, root, IOMMU_SAGAW, IOMMU_SLLPS, sid, iova, write, &x);
	if (r) {
		if (!x.fpd)
			iommu_record_fault(u, sid, iova, r, write);
		return r;
	}
	*gpa = x.gpa;
	*avail = x.page_size ? x.page_size - (iova & (x.page_size - 1)) : iommu_rest(iova);
	if (x.page_size) {
		pthread_mutex_lock(&u->lock);
		/* An invalidation that came during the walk may be about this
		 * very entry: its result is used once, never cached. */
		if (u->gen == gen && (u->gsts & IOMMU_G_TE) && u->root == root) {
			*e = (struct iommu_iotlb_entry){ .tag = page | IOTLB_VALID, .gpa = *gpa - off,
							 .avail = *avail + off, .sid = sid, .r = x.r,
							 .w = x.w, .fpd = x.fpd };
		}
		pthread_mutex_unlock(&u->lock);
	}
	return IOMMU_OK;
identity:
	*gpa = iova;
	*avail = iommu_rest(iova);
	return IOMMU_OK;
}

uint64_t iommu_generation(struct iommu *u)
{
	return u ? __atomic_load_n(&u->gen, __ATOMIC_ACQUIRE) : 0;
}

int iommu_dma_rw(struct iommu *u, struct guest_mem *mem, uint16_t sid, uint64_t iova, void *buf, uint64_t len, bool write)
{
	uint8_t *b = buf;
	while (len) {
		uint64_t gpa, avail;
		if (iommu_translate(u, sid, iova, write, &gpa, &avail))
			return -EFAULT;
		uint64_t n = len < avail ? len : avail;
		uint8_t *p = mem_ptr(mem, gpa, n);
		if (!p)
			return -EFAULT;
		if (write) {
			memcpy(p, b, n);
			mem_mark_dirty(mem, p, n); /* a migration resends it */
		} else
			memcpy(b, p, n);
		b += n;
		iova += n;
		len -= n;
	}
	return 0;
}
