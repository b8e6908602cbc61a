/*
 * iommu: the VT-d unit's register file (spec chapter 10), global commands,
 * register-based and queued invalidation, fault recording and the two
 * event interrupts. DMA translation is in iommu_walk.c, interrupt
 * remapping in iommu_ir.c.
 *
 * What the unit offers (CAP/ECAP), as QEMU's intel-iommu does by default:
 * 16-bit domain ids, 39- and 48-bit guest address widths (3- and 4-level
 * tables), 2 MiB and 1 GiB pages, page-selective invalidation, queued
 * invalidation, pass-through, interrupt remapping (xAPIC mode, no EIM), four
 * fault recording registers. Not offered: caching mode, required write-
 * buffer flushing, protected memory regions, advanced fault logging,
 * device-TLBs (ATS), scalable mode/PASIDs, posted interrupts, nested
 * translation. The IOTLB (iommu_walk.c) is emptied by any context or IOTLB
 * invalidation, so every invalidation completes at once, reporting the
 * granularity asked for.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "iommu_priv.h"
#include "snapshot.h"
#include "util.h"
#include "bus.h"
#include "device.h"
#include "memory.h"
#include "vm_config.h"

#define IOMMU_VERSION 0x10 /* 1.0, as QEMU's */

/* CAP fields */
#define CAP_ND_16BIT 6ull                /* 2^16 domain ids */
#define CAP_SAGAW_SHIFT 8
#define CAP_MGAW_SHIFT 16
#define CAP_FRO_SHIFT 24
#define CAP_SLLPS_SHIFT 34
#define CAP_PSI (1ull << 39)
#define CAP_NFR_SHIFT 40
#define CAP_MAMV_SHIFT 48
#define CAP_MAMV 18ull
/* ECAP fields */
#define ECAP_C (1ull << 0)               /* table reads are coherent: hvmm reads RAM */
#define ECAP_QI (1ull << 1)
#define ECAP_IR (1ull << 3)
#define ECAP_PT (1ull << 6)
#define ECAP_IRO_SHIFT 8
#define ECAP_MHMV_SHIFT 20
#define ECAP_MHMV 0xfull

/* RTADDR: address and TTM (legacy 00 is all hvmm does; other values read back). */
#define RTADDR_MASK 0xfffffffffffffc00ull
/* CCMD / IOTLB: invalidate bit, requested and actual granularity. */
#define CCMD_ICC (1ull << 63)
#define CCMD_CIRG_SHIFT 61
#define CCMD_CAIG_SHIFT 59
#define CCMD_WRITABLE 0xe0000003ffffffffull
#define IOTLB_IVT (1ull << 63)
#define IOTLB_IIRG_SHIFT 60
#define IOTLB_IAIG_SHIFT 57
#define IOTLB_WRITABLE 0xb003ffff00000000ull
/* IQA: base, queue size (2^QS pages of 256 descriptors); IQH/IQT: index << 4. */
#define IQA_MASK 0xfffffffffffff007ull
#define IQ_INDEX_MASK 0x7fff0ull
#define IQ_DESC_PER_PAGE 256
/* IRTA: base and size (EIME is not offered). */
#define IRTA_MASK 0xfffffffffffff00full
#define FEADDR_MASK 0xfffffffcu

/* Invalidation descriptor types (low 4 bits of the first quadword). */
enum { INV_CC = 1, INV_IOTLB = 2, INV_DEVTLB = 3, INV_IEC = 4, INV_WAIT = 5 };
#define INV_WAIT_IF (1ull << 4)
#define INV_WAIT_SW (1ull << 5)

static void iommu_msi(struct iommu *u, uint32_t addr_lo, uint32_t addr_hi, uint32_t data)
{
	/* Event interrupts are not subject to remapping (spec 5.1.6). */
	if (u->msi.signal)
		u->msi.signal(u->msi.ctx, (uint64_t)addr_hi << 32 | addr_lo, data);
}

static bool iommu_fault_pending(const struct iommu *u)
{
	for (unsigned i = 0; i < IOMMU_NFR; i++)
		if (u->frcd[i][1] & IOMMU_FRCD_F)
			return true;
	return false;
}

/* An event: sent now, or left pending (IP) while masked. lock held. */
static void iommu_event(struct iommu *u, uint32_t *ctl, uint32_t addr, uint32_t uaddr, uint32_t data)
{
	if (*ctl & IOMMU_CTL_IP)
		return; /* one is already waiting to be serviced */
	if (*ctl & IOMMU_CTL_IM) {
		*ctl |= IOMMU_CTL_IP;
		return;
	}
	u->events++;
	iommu_msi(u, addr, uaddr, data);
}

static void iommu_fault_event(struct iommu *u)
{
	iommu_event(u, &u->fectl, u->feaddr, u->feuaddr, u->fedata);
}

void iommu_record_fault(struct iommu *u, uint16_t sid, uint64_t fi, int reason, bool write)
{
	pthread_mutex_lock(&u->lock);
	u->faults++;
	bool pending = iommu_fault_pending(u) || (u->fsts & IOMMU_FSTS_PFO);
	unsigned i = u->fri;
	if (u->frcd[i][1] & IOMMU_FRCD_F) {
		/* every register full: the fault is lost, overflow says so */
		u->fsts |= IOMMU_FSTS_PFO;
	} else {
		u->frcd[i][0] = fi & ~0xfffull;
		u->frcd[i][1] = IOMMU_FRCD_F | (uint64_t)(reason & 0xff) << IOMMU_FRCD_FR_SHIFT | sid |
				(write ? 0 : IOMMU_FRCD_T_READ);
		u->fri = (i + 1) % IOMMU_NFR;
	}
	if (!pending)
		iommu_fault_event(u);
	pthread_mutex_unlock(&u->lock);
}

/* FSTS.FRI: where software starts reading records (spec 10.4.9: the
 * register the first pending fault went to). Records are written round-
 * robin, so the oldest one still pending is the first with F set from the
 * next register to be written on. Linux reads from here until it meets a
 * clear F, so pointing it at an empty register hides every fault. */
static unsigned iommu_fri(const struct iommu *u)
{
	for (unsigned k = 0; k < IOMMU_NFR; k++) {
		unsigned i = (u->fri + k) % IOMMU_NFR;
		if (u->frcd[i][1] & IOMMU_FRCD_F)
			return i;
	}
	return u->fri;
}

/* Software cleared status: with nothing left to service, IP goes too. */
static void iommu_fault_serviced(struct iommu *u)
{
	if (!iommu_fault_pending(u) && !(u->fsts & IOMMU_FSTS_W1C))
		u->fectl &= ~IOMMU_CTL_IP;
}

/* ---- queued invalidation ---- */

static uint32_t iommu_iq_entries(const struct iommu *u)
{
	return IQ_DESC_PER_PAGE << (u->iqa & 7);
}

/*
 * Process descriptors from IQH up to IQT. An invalid one stops the queue
 * with IQE set, IQH left on it (spec 6.5.2.10). Returns whether an
 * interrupt-entry-cache invalidation was seen (IOAPIC routes must be
 * recomputed). lock held.
 */
static bool iommu_iq_run(struct iommu *u)
{
	bool iec = false;
	uint32_t n = iommu_iq_entries(u);
	uint32_t head = (uint32_t)(u->iqh >> 4), tail = (uint32_t)(u->iqt >> 4);
	if (tail >= n) {
		u->fsts |= IOMMU_FSTS_IQE;
		iommu_fault_event(u);
		return false;
	}
	while (head != tail && !(u->fsts & IOMMU_FSTS_IQE)) {
		uint64_t d[2];
		const void *p = mem_ptr(u->mem, (u->iqa & ~0xfffull) + (uint64_t)head * 16, sizeof(d));
		bool ok = p != NULL;
		if (ok) {
			memcpy(d, p, sizeof(d));
			switch (d[0] & 0xf) {
			case INV_CC:
			case INV_IOTLB:
				/* any granularity empties the whole IOTLB: more than
				 * asked is always allowed */
				iommu_iotlb_flush(u);
				break;
			case INV_IEC:
				iec = true;
				break;
			case INV_WAIT:
				if (d[0] & INV_WAIT_SW) {
					uint32_t status = (uint32_t)(d[0] >> 32);
					ok = mem_write(u->mem, d[1] & ~3ull, &status, 4) == 0;
				}
				if (ok && (d[0] & INV_WAIT_IF) && !(u->ics & IOMMU_ICS_IWC)) {
					u->ics |= IOMMU_ICS_IWC;
					iommu_event(u, &u->iectl, u->ieaddr, u->ieuaddr, u->iedata);
				}
				break;
			default: /* device-TLB (no ATS here), PASID types, reserved */
				ok = false;
			}
		}
		if (!ok) {
			u->fsts |= IOMMU_FSTS_IQE;
			iommu_fault_event(u);
			break;
		}
		head = (head + 1) % n;
		u->descriptors++;
	}
	u->iqh = (uint64_t)head << 4;
	return iec;
}

/* ---- global command ---- */

/* A GCMD write: the level bits (TE, QIE, IRE, CFI) become the state, the
 * one-shot bits act when set. Returns whether interrupt routes must be
 * recomputed. lock held. */
static bool iommu_gcmd(struct iommu *u, uint32_t v)
{
	uint32_t old = u->gsts;
	u->gsts = (u->gsts & ~IOMMU_G_TE) | (v & IOMMU_G_TE);
	if (v & IOMMU_G_SRTP) {
		u->root = u->rtaddr & ~0xfffull;
		u->gsts |= IOMMU_G_SRTP;
	}
	/* A new root or translation switched: nothing cached still holds. */
	if ((v & IOMMU_G_SRTP) || ((old ^ u->gsts) & IOMMU_G_TE))
		iommu_iotlb_flush(u);
	if ((v & IOMMU_G_QIE) && !(old & IOMMU_G_QIE)) {
		u->iqh = 0; /* enabling the queue resets its head */
		u->gsts |= IOMMU_G_QIE;
	} else if (!(v & IOMMU_G_QIE)) {
		u->gsts &= ~IOMMU_G_QIE;
	}
	if (u->intremap) {
		uint32_t ir = IOMMU_G_IRE | IOMMU_G_CFI;
		u->gsts = (u->gsts & ~ir) | (v & ir);
		if (v & IOMMU_G_SIRTP) {
			u->irt = u->irta;
			u->gsts |= IOMMU_G_SIRTP;
		}
	}
	/* SFL/EAFL (no advanced fault log) and WBF (CAP.RWBF 0) do nothing. */
	return ((old ^ u->gsts) & (IOMMU_G_IRE | IOMMU_G_CFI)) || (v & IOMMU_G_SIRTP);
}

/* ---- registers ---- */

static uint32_t iommu_read32(struct iommu *u, uint64_t off)
{
	if (off >= IOMMU_FRCD && off < IOMMU_FRCD + IOMMU_NFR * 16) {
		uint64_t rel = off - IOMMU_FRCD;
		uint64_t q = u->frcd[rel / 16][(rel / 8) & 1];
		return (uint32_t)(q >> (8 * (rel & 4)));
	}
	uint64_t q;
	switch (off & ~7ull) {
	case IOMMU_VER: q = IOMMU_VERSION; break;
	case IOMMU_CAP: q = u->cap; break;
	case IOMMU_ECAP: q = u->ecap; break;
	case IOMMU_GCMD: q = (uint64_t)u->gsts << 32; break; /* GCMD reads 0 */
	case IOMMU_RTADDR: q = u->rtaddr; break;
	case IOMMU_CCMD: q = u->ccmd; break;
	case 0x30: {
		uint32_t fsts = u->fsts | (iommu_fault_pending(u) ? IOMMU_FSTS_PPF : 0) |
				iommu_fri(u) << IOMMU_FSTS_FRI_SHIFT;
		q = (uint64_t)fsts << 32;
		break;
	}
	case IOMMU_FECTL: q = u->fectl | (uint64_t)u->fedata << 32; break;
	case IOMMU_FEADDR: q = u->feaddr | (uint64_t)u->feuaddr << 32; break;
	case IOMMU_IQH: q = u->iqh; break;
	case IOMMU_IQT: q = u->iqt; break;
	case IOMMU_IQA: q = u->iqa; break;
	case 0x98: q = (uint64_t)u->ics << 32; break;
	case IOMMU_IECTL: q = u->iectl | (uint64_t)u->iedata << 32; break;
	case IOMMU_IEADDR: q = u->ieaddr | (uint64_t)u->ieuaddr << 32; break;
	case IOMMU_IRTA: q = u->irta; break;
	case IOMMU_IVA: q = u->iva; break;
	case IOMMU_IOTLB: q = u->iotlb; break;
	default: q = 0; break; /* AFLOG, PMEN, PMR, MTRRs, ...: not offered, read 0 */
	}
	return (uint32_t)(q >> (8 * (off & 4)));
}

/* Replace dword `off & 4` of *q with v through mask. */
static void iommu_set_half(uint64_t *q, uint64_t off, uint32_t v, uint64_t mask)
{
	unsigned sh = 8 * (unsigned)(off & 4);
	uint64_t m = (0xffffffffull << sh) & mask;
	*q = (*q & ~m) | (((uint64_t)v << sh) & m);
}

/* A dword write. Returns whether interrupt routes must be recomputed. lock held. */
static bool iommu_write32(struct iommu *u, uint64_t off, uint32_t v)
{
	if (off >= IOMMU_FRCD && off < IOMMU_FRCD + IOMMU_NFR * 16) {
		uint64_t rel = off - IOMMU_FRCD;
		/* only F (bit 127) is writable: 1 clears it */
		if ((rel & 15) == 12 && (v & 0x80000000u)) {
			u->frcd[rel / 16][1] &= ~IOMMU_FRCD_F;
			iommu_fault_serviced(u);
		}
		return false;
	}
	switch (off) {
	case IOMMU_GCMD:
		return iommu_gcmd(u, v);
	case IOMMU_RTADDR:
	case IOMMU_RTADDR + 4:
		iommu_set_half(&u->rtaddr, off, v, RTADDR_MASK);
		break;
	case IOMMU_CCMD:
	case IOMMU_CCMD + 4:
		iommu_set_half(&u->ccmd, off, v, CCMD_WRITABLE);
		if (off == IOMMU_CCMD + 4 && (u->ccmd & CCMD_ICC)) {
			uint64_t g = (u->ccmd >> CCMD_CIRG_SHIFT) & 3;
			u->ccmd = (u->ccmd & ~(CCMD_ICC | 3ull << CCMD_CAIG_SHIFT)) | g << CCMD_CAIG_SHIFT;
			iommu_iotlb_flush(u);
		}
		break;
	case IOMMU_FSTS:
		u->fsts &= ~(v & IOMMU_FSTS_W1C);
		iommu_fault_serviced(u);
		break;
	case IOMMU_FECTL:
		u->fectl = (u->fectl & ~IOMMU_CTL_IM) | (v & IOMMU_CTL_IM);
		if (!(u->fectl & IOMMU_CTL_IM) && (u->fectl & IOMMU_CTL_IP)) {
			u->fectl &= ~IOMMU_CTL_IP;
			u->events++;
			iommu_msi(u, u->feaddr, u->feuaddr, u->fedata);
		}
		break;
	case IOMMU_FEDATA: u->fedata = v; break;
	case IOMMU_FEADDR: u->feaddr = v & FEADDR_MASK; break;
	case IOMMU_FEUADDR: u->feuaddr = v; break;
	case IOMMU_IQT:
	case IOMMU_IQT + 4:
		iommu_set_half(&u->iqt, off, v, IQ_INDEX_MASK);
		if (off == IOMMU_IQT && (u->gsts & IOMMU_G_QIE))
			return iommu_iq_run(u);
		break;
	case IOMMU_IQA:
	case IOMMU_IQA + 4:
		iommu_set_half(&u->iqa, off, v, IQA_MASK);
		break;
	case IOMMU_ICS:
		if (v & IOMMU_ICS_IWC) {
			u->ics &= ~IOMMU_ICS_IWC;
			u->iectl &= ~IOMMU_CTL_IP;
		}
		break;
	case IOMMU_IECTL:
		u->iectl = (u->iectl & ~IOMMU_CTL_IM) | (v & IOMMU_CTL_IM);
		if (!(u->iectl & IOMMU_CTL_IM) && (u->iectl & IOMMU_CTL_IP)) {
			u->iectl &= ~IOMMU_CTL_IP;
			u->events++;
			iommu_msi(u, u->ieaddr, u->ieuaddr, u->iedata);
		}
		break;
	case IOMMU_IEDATA: u->iedata = v; break;
	case IOMMU_IEADDR: u->ieaddr = v & FEADDR_MASK; break;
	case IOMMU_IEUADDR: u->ieuaddr = v; break;
	case IOMMU_IRTA:
	case IOMMU_IRTA + 4:
		if (u->intremap)
			iommu_set_half(&u->irta, off, v, IRTA_MASK);
		break;
	case IOMMU_IVA:
	case IOMMU_IVA + 4:
		iommu_set_half(&u->iva, off, v, ~0xf80ull);
		break;
	case IOMMU_IOTLB:
	case IOMMU_IOTLB + 4:
		iommu_set_half(&u->iotlb, off, v, IOTLB_WRITABLE);
		if (off == IOMMU_IOTLB + 4 && (u->iotlb & IOTLB_IVT)) {
			uint64_t g = (u->iotlb >> IOTLB_IIRG_SHIFT) & 3;
			u->iotlb = (u->iotlb & ~(IOTLB_IVT | 3ull << IOTLB_IAIG_SHIFT)) | g << IOTLB_IAIG_SHIFT;
			iommu_iotlb_flush(u);
		}
		break;
	default:
		break; /* read-only or not offered */
	}
	return false;
}

static uint64_t iommu_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct iommu *u = opaque;
	/* 32- and 64-bit aligned accesses only, as the spec allows */
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	pthread_mutex_lock(&u->lock);
	uint64_t v = iommu_read32(u, off);
	if (size == 8)
		v |= (uint64_t)iommu_read32(u, off + 4) << 32;
	pthread_mutex_unlock(&u->lock);
	return v;
}

static void iommu_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct iommu *u = opaque;
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return;
	pthread_mutex_lock(&u->lock);
	/* low dword first: a 64-bit CCMD/IOTLB write acts on its high half */
	bool reroute = iommu_write32(u, off, (uint32_t)val);
	if (size == 8)
		reroute |= iommu_write32(u, off + 4, (uint32_t)(val >> 32));
	pthread_mutex_unlock(&u->lock);
	/* Interrupt routes computed through the old table or state are stale;
	 * whoever recomputes them takes other locks, so ours is released first. */
	if (reroute && u->routes_changed)
		u->routes_changed(u->routes_ctx);
}

static const struct bus_ops iommu_ops = {
	.read = iommu_mmio_read,
	.write = iommu_mmio_write,
};

/* ---- snapshots ---- */

/*
 * The register file as the guest programmed it, the latched root and
 * interrupt remapping table, the invalidation queue's head and tail, the
 * fault records and both event interrupts' control (a pending IP stays
 * pending, nothing is sent). The tables themselves are guest RAM. The IOTLB
 * is a cache: the load empties it (and bumps the generation, so devices
 * translate their rings again). Registered before the devices behind the
 * unit and the IOAPIC, so their loads compute DMA translations and
 * interrupt routes through the restored state.
 */
struct iommu_snap {
	uint64_t cap, ecap;
	uint64_t rtaddr, root, irta, irt, ccmd, iotlb, iva, iqh, iqt, iqa;
	uint64_t frcd[IOMMU_NFR][2];
	uint32_t gsts, fsts, fectl, fedata, feaddr, feuaddr, ics, iectl, iedata, ieaddr, ieuaddr, fri;
};
_Static_assert(sizeof(struct iommu_snap) == 8 * 12 + 16 * IOMMU_NFR + 4 * 12, "file layout");

static int iommu_snap_save(void *opaque, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct iommu *u = opaque;
	struct iommu_snap s;
	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&u->lock);
	s.cap = u->cap;
	s.ecap = u->ecap;
	s.rtaddr = u->rtaddr;
	s.root = u->root;
	s.irta = u->irta;
	s.irt = u->irt;
	s.ccmd = u->ccmd;
	s.iotlb = u->iotlb;
	s.iva = u->iva;
	s.iqh = u->iqh;
	s.iqt = u->iqt;
	s.iqa = u->iqa;
	memcpy(s.frcd, u->frcd, sizeof(s.frcd));
	s.gsts = u->gsts;
	s.fsts = u->fsts;
	s.fectl = u->fectl;
	s.fedata = u->fedata;
	s.feaddr = u->feaddr;
	s.feuaddr = u->feuaddr;
	s.ics = u->ics;
	s.iectl = u->iectl;
	s.iedata = u->iedata;
	s.ieaddr = u->ieaddr;
	s.ieuaddr = u->ieuaddr;
	s.fri = u->fri;
	pthread_mutex_unlock(&u->lock);
	snap_put(b, &s, sizeof(s));
	return 0;
}

/* Values a guest's register writes can produce on this unit; the field's
 * name when one is not. */
static const char *iommu_snap_bad(const struct iommu *u, const struct iommu_snap *s)
{
	uint32_t gsts_ok = IOMMU_G_TE | IOMMU_G_SRTP | IOMMU_G_QIE |
			   (u->intremap ? IOMMU_G_IRE | IOMMU_G_SIRTP | IOMMU_G_CFI : 0);
	uint64_t irta_ok = u->intremap ? IRTA_MASK : 0;
	if (s->cap != u->cap || s->ecap != u->ecap)
		return "capabilities (intremap= differs)";
	if (s->gsts & ~gsts_ok)
		return "gsts";
	if ((s->rtaddr & ~RTADDR_MASK) || (s->root & 0xfff))
		return "root table address";
	if ((s->irta & ~irta_ok) || (s->irt & ~irta_ok))
		return "interrupt remapping table address";
	if ((s->ccmd & ~(CCMD_WRITABLE | 3ull << CCMD_CAIG_SHIFT)) || (s->ccmd & CCMD_ICC))
		return "ccmd";
	if ((s->iotlb & ~(IOTLB_WRITABLE | 3ull << IOTLB_IAIG_SHIFT)) || (s->iotlb & IOTLB_IVT))
		return "iotlb";
	if (s->iva & 0xf80)
		return "iva";
	if ((s->iqh & ~IQ_INDEX_MASK) || (s->iqt & ~IQ_INDEX_MASK) || (s->iqa & ~IQA_MASK))
		return "invalidation queue";
	if ((s->fsts & ~IOMMU_FSTS_W1C) || s->fri >= IOMMU_NFR)
		return "fault status";
	if ((s->fectl | s->iectl) & ~(IOMMU_CTL_IM | IOMMU_CTL_IP))
		return "event control";
	if ((s->feaddr | s->ieaddr) & ~FEADDR_MASK)
		return "event address";
	if (s->ics & ~IOMMU_ICS_IWC)
		return "ics";
	for (unsigned i = 0; i < IOMMU_NFR; i++)
		if (s->frcd[i][0] & 0xfff)
			return "fault record";
	return NULL;
}

static int iommu_snap_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct iommu *u = opaque;
	if (version != 1) {
		snprintf(err, n, "intel-iommu: version %u unknown", version);
		return -1;
	}
	struct iommu_snap s;
	snap_get(c, &s, sizeof(s));
	if (c->bad) {
		snprintf(err, n, "intel-iommu: truncated");
		return -1;
	}
	const char *bad = iommu_snap_bad(u, &s);
	if (bad) {
		snprintf(err, n, "intel-iommu: %s", bad);
		return -1;
	}
	pthread_mutex_lock(&u->lock);
	u->rtaddr = s.rtaddr;
	u->root = s.root;
	u->irta = s.irta;
	u->irt = s.irt;
	u->ccmd = s.ccmd;
	u->iotlb = s.iotlb;
	u->iva = s.iva;
	u->iqh = s.iqh;
	u->iqt = s.iqt;
	u->iqa = s.iqa;
	memcpy(u->frcd, s.frcd, sizeof(u->frcd));
	u->gsts = s.gsts;
	u->fsts = s.fsts;
	u->fectl = s.fectl;
	u->fedata = s.fedata;
	u->feaddr = s.feaddr;
	u->feuaddr = s.feuaddr;
	u->ics = s.ics;
	u->iectl = s.iectl;
	u->iedata = s.iedata;
	u->ieaddr = s.ieaddr;
	u->ieuaddr = s.ieuaddr;
	u->fri = s.fri;
	iommu_iotlb_flush(u);
	pthread_mutex_unlock(&u->lock);
	/* Routes: the IOAPIC and every MSI-X vector compute theirs in their
	 * own loads, which come after this one. */
	return 0;
}

static int iommu_count(const struct vm_config *cfg)
{
	return cfg->intel_iommu;
}

/* intremap: 1 on, 0 off, -1 auto (on with hvmm's own IOAPIC, which IR
 * needs: the split irqchip, as QEMU's kernel-irqchip=split, or hvmm's own
 * APICs, where a remapped message then goes to their posted-interrupt
 * engine). */
static int iommu_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	const struct vm_config *cfg = env->cfg;
	bool own_ioapic = cfg->irqchip != IRQCHIP_KERNEL;
	bool intremap = cfg->intremap < 0 ? own_ioapic : cfg->intremap > 0;
	if (intremap && !own_ioapic) { /* main checks it too */
		snprintf(err, n, "--device intel-iommu,intremap=on needs --irqchip split or user");
		return DEV_ERR_USAGE;
	}
	if (!env->mmio || !env->mem)
		return -ENODEV;
	struct iommu *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->mem = env->mem;
	u->msi = env->msi;
	u->intremap = intremap;
	pthread_mutex_init(&u->lock, NULL);
	u->cap = CAP_ND_16BIT | (uint64_t)IOMMU_SAGAW << CAP_SAGAW_SHIFT |
		 (uint64_t)(IOMMU_MGAW - 1) << CAP_MGAW_SHIFT |
		 (uint64_t)(IOMMU_FRCD / 16) << CAP_FRO_SHIFT |
		 (uint64_t)IOMMU_SLLPS << CAP_SLLPS_SHIFT | CAP_PSI |
		 (uint64_t)(IOMMU_NFR - 1) << CAP_NFR_SHIFT | CAP_MAMV << CAP_MAMV_SHIFT;
	u->ecap = ECAP_C | ECAP_QI | ECAP_PT | (uint64_t)(IOMMU_IVA / 16) << ECAP_IRO_SHIFT |
		  (intremap ? ECAP_IR | ECAP_MHMV << ECAP_MHMV_SHIFT : 0);
	u->fectl = IOMMU_CTL_IM; /* both event interrupts masked at reset */
	u->iectl = IOMMU_CTL_IM;
	int r = bus_register(env->mmio, IOMMU_BASE, IOMMU_MMIO_LEN, &iommu_ops, u, "intel-iommu");
	if (r < 0) {
		pthread_mutex_destroy(&u->lock);
		free(u);
		return r;
	}
	*dev = u;
	return 0;
}

/* The devices created after it (the IOAPIC, the PCI functions) translate
 * and remap through it. */
static void iommu_provide(void *dev, struct dev_env *env)
{
	env->iommu = dev;
}

/* Its register window stays on the MMIO bus, which is freed after the
 * devices and never dispatched to once they are destroyed. */
static void iommu_dev_destroy(void *dev)
{
	struct iommu *u = dev;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* Every register as at power-on (translation and remapping off, both
 * event interrupts masked, no fault recorded), the IOTLB empty. The
 * capabilities are the unit's, kept. Interrupt routes that went through
 * the remapping table are recomputed, as when the guest turns IR off. */
static void iommu_reset(void *dev)
{
	struct iommu *u = dev;
	pthread_mutex_lock(&u->lock);
	bool reroute = u->gsts != 0 || u->irt != 0;
	u->gsts = 0;
	u->rtaddr = u->root = u->irta = u->irt = 0;
	u->ccmd = u->iotlb = u->iva = 0;
	u->fsts = u->fedata = u->feaddr = u->feuaddr = 0;
	u->fectl = IOMMU_CTL_IM;
	memset(u->frcd, 0, sizeof(u->frcd));
	u->fri = 0;
	u->iqh = u->iqt = u->iqa = 0;
	u->ics = u->iedata = u->ieaddr = u->ieuaddr = 0;
	u->iectl = IOMMU_CTL_IM;
	iommu_iotlb_flush(u);
	pthread_mutex_unlock(&u->lock);
	if (reroute && u->routes_changed)
		u->routes_changed(u->routes_ctx);
}

const struct dev_ops iommu_dev_ops = {
	.name = "intel-iommu",
	.desc = "intel-iommu",
	.count = iommu_count,
	.create = iommu_dev_create,
	.provide = iommu_provide,
	.reset = iommu_reset,
	.snap = { .name = "intel-iommu", .version = 1, .save = iommu_snap_save, .load = iommu_snap_load },
	.destroy = iommu_dev_destroy,
};

void iommu_set_routes_hook(struct iommu *u, void (*hook)(void *ctx), void *ctx)
{
	if (u) {
		u->routes_changed = hook;
		u->routes_ctx = ctx;
	}
}

bool iommu_get_stats(struct iommu *u, struct iommu_stats *out)
{
	if (!u)
		return false;
	pthread_mutex_lock(&u->lock);
	*out = (struct iommu_stats){ .gsts = u->gsts, .translations = u->translations,
				     .remapped = u->remapped, .blocked = u->blocked,
				     .faults = u->faults, .descriptors = u->descriptors,
				     .events = u->events, .iotlb_hits = u->iotlb_hits,
				     .iotlb_misses = u->iotlb_misses,
				     .iotlb_flushes = u->iotlb_flushes };
	pthread_mutex_unlock(&u->lock);
	return true;
}

uint64_t iommu_faults(struct iommu *u)
{
	if (!u)
		return 0;
	pthread_mutex_lock(&u->lock);
	uint64_t n = u->faults;
	pthread_mutex_unlock(&u->lock);
	return n;
}
