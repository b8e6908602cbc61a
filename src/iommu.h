/*
 * iommu: an Intel VT-d remapping unit (`--device intel-iommu`), the one q35
 * machines of QEMU have, at the address QEMU puts it (0xfed90000) and
 * described to the guest by an ACPI DMAR table with one DRHD that covers
 * every PCI device (INCLUDE_PCI_ALL) and names the IOAPIC.
 *
 * DMA remapping, legacy mode only (no scalable mode, no PASIDs): a device's
 * requester id (bus << 8 | devfn) picks a root entry (bus) and a context
 * entry (devfn); the context entry says pass-through or a 3- or 4-level
 * second-level page table (39- or 48-bit input addresses). Successful walks
 * are kept in an IOTLB (per requester and 4 KiB page) until the guest
 * invalidates anything; iommu_generation() lets a device that keeps a
 * translation longer (a virtqueue's rings) notice that it must walk again.
 * A failed walk is recorded in a fault recording register (unless the
 * context entry's FPD bit says not to) and signalled with the fault-event MSI.
 *
 * Interrupt remapping (intremap=on): an MSI in remappable format names an
 * entry of the guest's interrupt remapping table (IRTA); hvmm reads that
 * IRTE and delivers the interrupt it describes. Compatibility-format MSIs
 * are blocked while IR is on unless the guest sets CFI, as the spec says.
 *
 * Threads: translations come from vCPU threads (edu runs its DMA there)
 * and from the event loop (virtqueues); one mutex covers the registers and
 * the IOTLB, guest tables are read without it (each entry is copied once,
 * then checked; a walk that an invalidation overtook is used but not cached). The unit never calls back into a device with its lock held.
 */
#ifndef HVMM_IOMMU_H
#define HVMM_IOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct iommu;

#define IOMMU_BASE 0xfed90000ull /* q35's DMAR unit in QEMU, where kvm-unit-tests look */
#define IOMMU_MMIO_LEN 0x1000ull
/* The IOAPIC's requester id in the DMAR device scope: QEMU's pseudo bus 0xff. */
#define IOMMU_IOAPIC_BUS 0xff
#define IOMMU_IOAPIC_SID (IOMMU_IOAPIC_BUS << 8)
/* Host address width the DMAR table reports; entry address bits above it are reserved. */
#define IOMMU_HAW 48

/* VT-d fault reasons (spec chapter 7, "Unrecoverable Fault Conditions"). */
enum iommu_fault {
	IOMMU_OK = 0,
	IOMMU_FR_ROOT_NP = 0x1,      /* root entry not present */
	IOMMU_FR_CTX_NP = 0x2,       /* context entry not present */
	IOMMU_FR_CTX_INVAL = 0x3,    /* context entry: AW or TT not supported */
	IOMMU_FR_ADDR_WIDTH = 0x4,   /* input address beyond the AGAW */
	IOMMU_FR_WRITE = 0x5,        /* write to a page without W */
	IOMMU_FR_READ = 0x6,         /* read of a page without R */
	IOMMU_FR_PTE_ACCESS = 0x7,   /* a paging entry outside RAM */
	IOMMU_FR_ROOT_ACCESS = 0x8,  /* the root table outside RAM */
	IOMMU_FR_CTX_ACCESS = 0x9,   /* a context table outside RAM */
	IOMMU_FR_ROOT_RSVD = 0xa,    /* reserved bit set in a present root entry */
	IOMMU_FR_CTX_RSVD = 0xb,     /* ... context entry */
	IOMMU_FR_PTE_RSVD = 0xc,     /* ... paging entry (large page where none is allowed too) */
	IOMMU_FR_IR_REQ_RSVD = 0x20, /* remappable MSI with reserved bits set */
	IOMMU_FR_IR_INDEX = 0x21,    /* index beyond the table's size */
	IOMMU_FR_IR_NP = 0x22,       /* IRTE not present */
	IOMMU_FR_IR_ACCESS = 0x23,   /* IRTE outside RAM */
	IOMMU_FR_IR_RSVD = 0x24,     /* reserved bit set in a present IRTE */
	IOMMU_FR_IR_COMPAT = 0x25,   /* compatibility-format interrupt blocked */
	IOMMU_FR_IR_SID = 0x26,      /* source-id verification failed */
};

/* The unit is the registry type iommu_dev_ops ("intel-iommu", one with
 * --device intel-iommu): created from the handles (its register window on
 * the MMIO bus at IOMMU_BASE, guest memory, KVM's VM fd for its event
 * interrupts) before the devices behind it and the IOAPIC, which it gives
 * itself to (dev_env's iommu, through the type's provide). IR is offered in
 * ECAP with intremap (needs the split irqchip: hvmm's IOAPIC must see it).
 * Every function below takes the unit or NULL (no unit: identity, nothing
 * to remap, no counters). */
struct dev_ops;
extern const struct dev_ops iommu_dev_ops;

/*
 * DMA translation for requester `sid`: the guest-physical address of `iova`
 * and in *avail how many bytes from there on are mapped the same way (to the
 * end of the page, which may be a large page). Without a unit, or with
 * translation off, iova is the address (*avail unbounded). Returns 0 or an
 * enum iommu_fault, which is already recorded (unless the context entry
 * disables fault reporting).
 */
int iommu_translate(struct iommu *u, uint16_t sid, uint64_t iova, bool write, uint64_t *gpa,
		    uint64_t *avail);
/*
 * A device's DMA of len bytes between buf and its address space at iova
 * (write: buf → guest). Every page is translated, every resulting range
 * checked against guest RAM. 0, or -EFAULT when a translation faulted or an
 * address is not RAM (nothing of the failing page is copied; earlier pages
 * are, as on hardware).
 */
/* Bumped by every IOTLB flush (any invalidation); 0 without a unit. A
 * translation made under generation g may be used while it still reads g. */
uint64_t iommu_generation(struct iommu *u);
int iommu_dma_rw(struct iommu *u, struct guest_mem *mem, uint16_t sid, uint64_t iova, void *buf, uint64_t len, bool write);

/*
 * Interrupt remapping of an MSI (addr, data) from requester `sid`: rewritten
 * in place to the message the IRTE describes (IR on and remappable format),
 * left alone (no unit, IR off, or compatibility format with CFI set).
 * verify_sid false skips the IRTE's source-id check (the IOAPIC: QEMU does
 * not check its interrupts either, and kvm-unit-tests put the PCI device's id
 * in IRTEs the IOAPIC uses). Returns 0 or an enum iommu_fault — NOT recorded:
 * the caller records it with iommu_ir_fault() when the interrupt is actually
 * raised (an IOAPIC route is computed long before).
 */
int iommu_remap_msi(struct iommu *u, uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data);
/* Or'ed into iommu_remap_msi's fault when the IRTE's FPD bit says the fault
 * is not to be recorded (the interrupt is still blocked). */
#define IOMMU_FAULT_QUIET 0x100
void iommu_ir_fault(struct iommu *u, uint16_t sid, uint64_t addr, int reason);

/*
 * Called (no unit lock held, any vCPU thread) when interrupt routes computed
 * through the unit may be stale: IR or CFI switched, a new table pointer, an
 * interrupt-entry-cache invalidation. vm.c recomputes the IOAPIC's and MSI-X
 * routes there; a hook rather than a call keeps this module free of them.
 */
void iommu_set_routes_hook(struct iommu *u, void (*hook)(void *ctx), void *ctx);

/* Faults recorded (and those dropped on overflow) since creation, for tests. */
uint64_t iommu_faults(struct iommu *u);

/* Counters for --stats; false without a unit. */
struct iommu_stats {
	uint32_t gsts;            /* the global status now */
	uint64_t translations;    /* DMA translations with translation on */
	uint64_t iotlb_hits;      /* ... answered by the IOTLB */
	uint64_t iotlb_misses;    /* ... that walked the tables */
	uint64_t iotlb_flushes;   /* invalidations that emptied the IOTLB */
	uint64_t remapped;        /* messages remapped through an IRTE: IOAPIC and MSI-X routes
				   * when computed, each MSI when sent */
	uint64_t blocked;         /* interrupts refused when raised (fault recorded or FPD) */
	uint64_t faults;          /* recorded, or lost to overflow */
	uint64_t descriptors;     /* invalidation descriptors processed */
	uint64_t events;          /* fault and invalidation-completion event messages sent */
};
bool iommu_get_stats(struct iommu *u, struct iommu_stats *out);

/* ---- the pure logic, exposed for unit tests ---- */

/* One DMA walk: root table at rtaddr (4 KiB aligned), requester sid. */
struct iommu_xlate {
	uint64_t gpa;
	uint64_t page_size; /* 4 KiB, 2 MiB or 1 GiB; iova's whole space with pass-through */
	bool fpd;           /* the context entry disables fault recording */
	bool r, w;          /* rights of the whole walk (the AND over its levels) */
};
/* sagaw: CAP.SAGAW bits the unit offers (bit 1: 39-bit, bit 2: 48-bit);
 * sllps: large pages allowed (bit 0: 2 MiB, bit 1: 1 GiB). */
int iommu_walk(const struct guest_mem *m, uint64_t rtaddr, unsigned sagaw, unsigned sllps,
	       uint16_t sid, uint64_t iova, bool write, struct iommu_xlate *out);

/* An interrupt remapping table entry, decoded (xAPIC mode: EIM is not offered). */
struct iommu_irte {
	bool present, fpd, dest_logical, redir_hint, level;
	uint8_t delivery_mode, vector;
	uint8_t dest;      /* xAPIC destination (IRTE bits 47:40) */
	uint16_t sid;
	uint8_t sq, svt;   /* source-id qualifier and validation type */
};
/* 0 or IOMMU_FR_IR_RSVD (reserved bits, posted mode); present false: not decoded further. */
int iommu_irte_decode(const uint64_t irte[2], struct iommu_irte *out);
/* Does requester sid pass the IRTE's source validation? */
bool iommu_irte_sid_ok(const struct iommu_irte *e, uint16_t sid);
/* The compatibility-format MSI an IRTE stands for. */
void iommu_irte_msi(const struct iommu_irte *e, uint64_t *addr, uint32_t *data);
/*
 * Remap (addr, data) through the table at irta (entries: 2^(size_log2 + 1),
 * the IRTA.S field); cfi: compatibility format allowed. *index gets the
 * entry used (for the fault record). 0 or an enum iommu_fault.
 */
int iommu_ir_lookup(const struct guest_mem *m, uint64_t irta, unsigned size_field, bool cfi,
		    uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data, unsigned *index,
		    bool *fpd);

#endif
