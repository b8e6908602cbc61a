/*
 * iommu_ir: VT-d interrupt remapping (spec chapter 5), xAPIC mode (no EIM).
 *
 * An MSI address 0xFEExxxxx with bit 4 set is in remappable format: bits
 * 19:5 are handle[14:0], bit 2 handle[15], bit 3 SHV (the data's low 16 bits
 * are then a subhandle added to the handle). The handle indexes the
 * interrupt remapping table, 16-byte IRTEs at IRTA; the IRTE gives vector,
 * destination, modes and which requesters may use it. hvmm turns the IRTE
 * back into a compatibility-format message, which is what KVM delivers.
 */
#include <string.h>

#include "iommu_priv.h"
#include "memory.h"

#define MSI_ADDR_BASE 0xfee00000ull
#define MSI_ADDR_HEAD_MASK 0xfff00000ull
#define MSI_ADDR_IR_FORMAT (1ull << 4)
#define MSI_ADDR_IR_SHV (1ull << 3)
#define MSI_ADDR_IR_HANDLE15 (1ull << 2)
#define MSI_ADDR_IR_HANDLE_SHIFT 5
#define MSI_ADDR_DEST_SHIFT 12
#define MSI_ADDR_RH (1ull << 3)
#define MSI_ADDR_DM (1ull << 2)
#define MSI_DATA_DLM_SHIFT 8
#define MSI_DATA_ASSERT (1u << 14)
#define MSI_DATA_LEVEL (1u << 15)

/* IRTE, lower quadword */
#define IRTE_P (1ull << 0)
#define IRTE_FPD (1ull << 1)
#define IRTE_DM (1ull << 2)
#define IRTE_RH (1ull << 3)
#define IRTE_TM (1ull << 4)
#define IRTE_DLM_SHIFT 5
#define IRTE_IM (1ull << 15) /* posted format: not offered (CAP.PI 0) */
#define IRTE_V_SHIFT 16
#define IRTE_DST_SHIFT 40    /* xAPIC destination: bits 47:40 */
/* reserved: 14:12, 31:24, and in xAPIC mode 39:32 and 63:48 */
#define IRTE_RSVD_LO (0x7000ull | 0xff000000ull | 0xff00000000ull | 0xffff000000000000ull)
/* upper quadword: SID 15:0, SQ 17:16, SVT 19:18, reserved above */
#define IRTE_RSVD_HI 0xfffffffffff00000ull
enum { IRTE_SVT_NONE = 0, IRTE_SVT_SID = 1, IRTE_SVT_BUS = 2 };

int iommu_irte_decode(const uint64_t irte[2], struct iommu_irte *out)
{
	uint64_t lo = irte[0], hi = irte[1];
	*out = (struct iommu_irte){ .present = lo & IRTE_P };
	if (!out->present)
		return IOMMU_OK;
	out->fpd = lo & IRTE_FPD;
	out->dest_logical = lo & IRTE_DM;
	out->redir_hint = lo & IRTE_RH;
	out->level = lo & IRTE_TM;
	out->delivery_mode = (uint8_t)((lo >> IRTE_DLM_SHIFT) & 7);
	out->vector = (uint8_t)(lo >> IRTE_V_SHIFT);
	out->dest = (uint8_t)(lo >> IRTE_DST_SHIFT);
	out->sid = (uint16_t)hi;
	out->sq = (uint8_t)((hi >> 16) & 3);
	out->svt = (uint8_t)((hi >> 18) & 3);
	if ((lo & IRTE_RSVD_LO) || (lo & IRTE_IM) || (hi & IRTE_RSVD_HI))
		return IOMMU_FR_IR_RSVD;
	return IOMMU_OK;
}

bool iommu_irte_sid_ok(const struct iommu_irte *e, uint16_t sid)
{
	switch (e->svt) {
	case IRTE_SVT_NONE:
		return true;
	case IRTE_SVT_SID: {
		/* SQ: ignore none, bit 2, bits 2:1 or bits 2:0 of the function */
		static const uint16_t mask[4] = { 0xffff, 0xfffb, 0xfff9, 0xfff8 };
		return (sid & mask[e->sq]) == (e->sid & mask[e->sq]);
	}
	case IRTE_SVT_BUS: /* the requester's bus in [SID 15:8, SID 7:0] */
		return (sid >> 8) >= (e->sid >> 8) && (sid >> 8) <= (e->sid & 0xff);
	default:
		return false; /* reserved */
	}
}

void iommu_irte_msi(const struct iommu_irte *e, uint64_t *addr, uint32_t *data)
{
	*addr = MSI_ADDR_BASE | (uint64_t)e->dest << MSI_ADDR_DEST_SHIFT |
		(e->redir_hint ? MSI_ADDR_RH : 0) | (e->dest_logical ? MSI_ADDR_DM : 0);
	*data = e->vector | (uint32_t)e->delivery_mode << MSI_DATA_DLM_SHIFT | MSI_DATA_ASSERT |
		(e->level ? MSI_DATA_LEVEL : 0);
}

int iommu_ir_lookup(const struct guest_mem *m, uint64_t irta, unsigned size_field, bool cfi,
		    uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data, unsigned *index,
		    bool *fpd)
{
	*index = 0;
	*fpd = false;
	if (!(*addr & MSI_ADDR_IR_FORMAT))
		return cfi ? IOMMU_OK : IOMMU_FR_IR_COMPAT;
	if (*addr >> 32)
		return IOMMU_FR_IR_REQ_RSVD; /* the upper address is reserved in this format */
	unsigned idx = (unsigned)((*addr >> MSI_ADDR_IR_HANDLE_SHIFT) & 0x7fff) |
		       ((*addr & MSI_ADDR_IR_HANDLE15) ? 0x8000u : 0);
	if (*addr & MSI_ADDR_IR_SHV)
		idx += *data & 0xffff; /* may pass 0xffff: the size check below catches it */
	*index = idx;
	if (idx >= 1u << ((size_field & 0xf) + 1))
		return IOMMU_FR_IR_INDEX;
	uint64_t raw[2];
	const void *p = mem_ptr(m, (irta & ~0xfffull) + (uint64_t)idx * 16, sizeof(raw));
	if (!p)
		return IOMMU_FR_IR_ACCESS;
	memcpy(raw, p, sizeof(raw));
	struct iommu_irte e;
	int r = iommu_irte_decode(raw, &e);
	*fpd = e.fpd;
	if (!e.present)
		return IOMMU_FR_IR_NP;
	if (r)
		return r;
	if (verify_sid && !iommu_irte_sid_ok(&e, sid))
		return IOMMU_FR_IR_SID;
	iommu_irte_msi(&e, addr, data);
	return IOMMU_OK;
}

int iommu_remap_msi(struct iommu *u, uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data)
{
	if (!u || !u->intremap)
		return IOMMU_OK;
	pthread_mutex_lock(&u->lock);
	uint32_t gsts = u->gsts;
	uint64_t irt = u->irt;
	pthread_mutex_unlock(&u->lock);
	if (!(gsts & IOMMU_G_IRE))
		return IOMMU_OK;
	unsigned index;
	bool fpd;
	int r = iommu_ir_lookup(u->mem, irt, (unsigned)(irt & 0xf), gsts & IOMMU_G_CFI, sid,
				verify_sid, addr, data, &index, &fpd);
	if (!r) {
		pthread_mutex_lock(&u->lock);
		u->remapped++;
		pthread_mutex_unlock(&u->lock);
	}
	if (r && fpd)
		r |= IOMMU_FAULT_QUIET;
	return r;
}

void iommu_ir_fault(struct iommu *u, uint16_t sid, uint64_t addr, int reason)
{
	if (!u || !reason)
		return;
	pthread_mutex_lock(&u->lock);
	u->blocked++;
	pthread_mutex_unlock(&u->lock);
	if (reason & IOMMU_FAULT_QUIET)
		return;
	/* FI bits 63:48 carry the interrupt index (the handle; a subhandle is
	 * not known here). */
	uint64_t idx = ((addr >> MSI_ADDR_IR_HANDLE_SHIFT) & 0x7fff) |
		       ((addr & MSI_ADDR_IR_HANDLE15) ? 0x8000u : 0);
	iommu_record_fault(u, sid, idx << 48, reason, true);
}
