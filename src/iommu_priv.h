/* Shared by iommu.c, iommu_walk.c and iommu_ir.c only: the unit's state. */
#ifndef HVMM_IOMMU_PRIV_H
#define HVMM_IOMMU_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "device.h"
#include "iommu.h"

/* Register offsets (VT-d spec 10.4). */
#define IOMMU_VER 0x00
#define IOMMU_CAP 0x08
#define IOMMU_ECAP 0x10
#define IOMMU_GCMD 0x18
#define IOMMU_GSTS 0x1c
#define IOMMU_RTADDR 0x20
#define IOMMU_CCMD 0x28
#define IOMMU_FSTS 0x34
#define IOMMU_FECTL 0x38
#define IOMMU_FEDATA 0x3c
#define IOMMU_FEADDR 0x40
#define IOMMU_FEUADDR 0x44
#define IOMMU_AFLOG 0x58
#define IOMMU_PMEN 0x64
#define IOMMU_IQH 0x80
#define IOMMU_IQT 0x88
#define IOMMU_IQA 0x90
#define IOMMU_ICS 0x9c
#define IOMMU_IECTL 0xa0
#define IOMMU_IEDATA 0xa4
#define IOMMU_IEADDR 0xa8
#define IOMMU_IEUADDR 0xac
#define IOMMU_IRTA 0xb8
#define IOMMU_IVA 0xf0    /* ECAP.IRO = 0xf: IOTLB registers at 16 * 0xf */
#define IOMMU_IOTLB 0xf8
#define IOMMU_FRCD 0x220  /* CAP.FRO = 0x22: fault recording registers at 16 * 0x22 */
#define IOMMU_NFR 4       /* fault recording registers */

/* GCMD / GSTS bits: command and its status share the position. */
#define IOMMU_G_TE (1u << 31)
#define IOMMU_G_SRTP (1u << 30)  /* status: RTPS */
#define IOMMU_G_SFL (1u << 29)
#define IOMMU_G_EAFL (1u << 28)
#define IOMMU_G_WBF (1u << 27)
#define IOMMU_G_QIE (1u << 26)
#define IOMMU_G_IRE (1u << 25)
#define IOMMU_G_SIRTP (1u << 24) /* status: IRTPS */
#define IOMMU_G_CFI (1u << 23)

/* FSTS */
#define IOMMU_FSTS_PFO (1u << 0)
#define IOMMU_FSTS_PPF (1u << 1)
#define IOMMU_FSTS_IQE (1u << 4)
#define IOMMU_FSTS_ICE (1u << 5)
#define IOMMU_FSTS_ITE (1u << 6)
#define IOMMU_FSTS_FRI_SHIFT 8
#define IOMMU_FSTS_W1C (IOMMU_FSTS_PFO | IOMMU_FSTS_IQE | IOMMU_FSTS_ICE | IOMMU_FSTS_ITE)
/* FECTL / IECTL */
#define IOMMU_CTL_IM (1u << 31)
#define IOMMU_CTL_IP (1u << 30)
/* ICS */
#define IOMMU_ICS_IWC 1u
/* Fault recording register, upper quadword */
#define IOMMU_FRCD_F (1ull << 63)
#define IOMMU_FRCD_T_READ (1ull << 62)
#define IOMMU_FRCD_FR_SHIFT 32

/* Address widths: 39-bit (3-level) and 48-bit (4-level) tables. */
#define IOMMU_SAGAW_39 (1u << 1)
#define IOMMU_SAGAW_48 (1u << 2)
#define IOMMU_SAGAW (IOMMU_SAGAW_39 | IOMMU_SAGAW_48)
#define IOMMU_SLLPS 0x3u /* 2 MiB and 1 GiB pages */
#define IOMMU_MGAW 48

/*
 * The IOTLB: second-level translations that walked to a present leaf,
 * direct-mapped on (requester, 4 KiB page of the IOVA). A large page fills
 * one slot per 4 KiB page used. Only successful walks are cached (CAP.CM is
 * 0: software need not invalidate after making an entry present), and every
 * invalidation the guest asks for — context-cache, IOTLB (register or
 * queued), a new root table, translation switched — empties it and bumps
 * `gen`, which tells holders of longer-lived translations (a virtqueue's
 * ring pointers) to translate again.
 */
#define IOMMU_IOTLB_SLOTS 1024
struct iommu_iotlb_entry {
	uint64_t tag;        /* iova >> 12 | valid bit 63 */
	uint64_t gpa;        /* of the 4 KiB page */
	uint64_t avail;      /* bytes mapped the same way from the page's start */
	uint16_t sid;
	bool r, w, fpd;
};

struct iommu {
	/* The handles it was created with (struct dev_env's). */
	struct guest_mem *mem;
	struct dev_msi msi; /* event interrupts: its signal (KVM_SIGNAL_MSI or hvmm's APICs) */
	bool intremap;
	uint64_t cap, ecap;
	pthread_mutex_t lock;
	uint32_t gsts;
	uint64_t rtaddr;       /* as written */
	uint64_t root;         /* latched by SRTP */
	uint64_t irta;         /* as written */
	uint64_t irt;          /* latched by SIRTP */
	uint64_t ccmd, iotlb, iva;
	uint32_t fsts, fectl, fedata, feaddr, feuaddr;
	uint64_t frcd[IOMMU_NFR][2];
	unsigned fri;          /* the next fault recording register */
	uint64_t iqh, iqt, iqa;
	uint32_t ics, iectl, iedata, ieaddr, ieuaddr;
	uint64_t faults;       /* recorded or lost to overflow */
	uint64_t translations, remapped, blocked, descriptors; /* for --stats */
	uint64_t iotlb_hits, iotlb_misses, iotlb_flushes;
	struct iommu_iotlb_entry iotlb_cache[IOMMU_IOTLB_SLOTS];
	uint64_t gen;          /* bumped by every flush; read atomically without the lock */
	uint64_t events;       /* fault and invalidation event messages sent */
	void (*routes_changed)(void *ctx);
	void *routes_ctx;
};

/* iommu.c: record a fault (lock NOT held). addr: the page (DMA) or the
 * interrupt index << 48 (IR), as the FI field wants it. */
void iommu_record_fault(struct iommu *u, uint16_t sid, uint64_t fi, int reason, bool write);

/* iommu_walk.c: drop every cached translation (lock held). */
void iommu_iotlb_flush(struct iommu *u);

#endif
