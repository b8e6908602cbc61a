/* Shared by pci.c and pci_msix.c — and vfio_pci.c, which builds a function
 * from a real device's registers — only: the state behind struct pci_dev. */
#ifndef HVMM_PCI_PRIV_H
#define HVMM_PCI_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "pci.h"

/* Configuration header offsets and bits (PCI Local Bus 3.0, chapter 6). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CACHE_LINE 0x0c
#define PCI_LATENCY 0x0d
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d
#define PCI_HEADER_END 0x40

#define PCI_CMD_IO 0x0001
#define PCI_CMD_MEM 0x0002
#define PCI_CMD_MASTER 0x0004
#define PCI_CMD_PARITY 0x0040
#define PCI_CMD_SERR 0x0100
#define PCI_CMD_INTX_DISABLE 0x0400
#define PCI_CMD_WRITABLE (PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_PARITY | PCI_CMD_SERR | \
			  PCI_CMD_INTX_DISABLE)
#define PCI_STATUS_INTX 0x0008
#define PCI_STATUS_CAP_LIST 0x0010
/* Error bits a device sets and software clears by writing 1 (RW1C). */
#define PCI_STATUS_RW1C 0xf900

#define PCI_BAR_MEM64 0x4
#define PCI_BAR_SPACE_IO 0x1
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_MSI 0x05
#define PCI_MSI_CTRL_ENABLE 0x0001
#define PCI_MSI_CTRL_MME 0x0070   /* multiple message enable: writable, one vector used */
#define PCI_MSI_CTRL_64BIT 0x0080
#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_FMASK 0x4000
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_MASKED 0x1

#define PCI_INTX_FIRST_PIN 16 /* IOAPIC pins 16..19 carry INTA..INTD after the swizzle */

struct pci_bar {
	uint64_t size;            /* 0: unused (or the upper half of a 64-bit BAR) */
	bool upper;               /* this slot holds bits 63:32 of bar - 1 */
	enum pci_bar_type type;
	const struct bus_ops *ops;
	void *opaque;
	/* The base while the BAR decodes, 0 when it does not; read without the
	 * device lock by the window's dispatch, written under it. */
	_Atomic uint64_t decode;
	uint64_t hook_addr;       /* last state given to the BAR hook */
	bool hook_on;
};

struct pci_msix_vec {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the table entry as the guest wrote it */
	int gsi;                  /* this vector's KVM GSI (IRQ_MSI_GSI_BASE and up) */
	int efd;                  /* irqfd eventfd, -1 with --no-irqfd */
	bool pending;             /* PBA bit */
	uint64_t msg_addr;        /* the message after interrupt remapping: the route */
	uint32_t msg_data;
	int ir_fault;             /* the IOMMU blocks the message (enum iommu_fault) */
	uint64_t blocked;         /* notifies dropped for that */
	uint64_t sent, pending_sent;
	bool hook_masked;         /* the state the mask hook was last told */
};

struct pci_msix {
	pthread_mutex_t lock;     /* inner to the device lock */
	unsigned nvec, bar, cap;
	uint32_t table_off, pba_off;
	bool enabled, fmask;      /* message control, mirrored from configuration space */
	void (*mask_hook)(void *opaque, unsigned vec, bool masked);
	void *mask_opaque;
	struct pci_msix_vec v[PCI_MSIX_MAX_VECTORS];
};

struct pci_dev {
	struct vm *vm;
	pthread_mutex_t lock;
	unsigned devfn;
	struct pci_dev_info info;
	char name[32];
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* guest-writable bits */
	uint8_t w1c[PCI_CFG_SIZE];   /* write-1-to-clear bits */
	unsigned cap_end;            /* next free byte for pci_cap_add */
	unsigned cap_last;           /* offset of the last capability, 0: none */
	struct pci_bar bar[PCI_NUM_BARS];
	struct pci_msix *msix;
	unsigned msi_cap;            /* offset of the MSI capability, 0: none */
	_Atomic bool msi_enabled;    /* its enable bit, mirrored for pci_intx_update's threads */
	uint64_t msi_sent, msi_blocked;  /* messages delivered / refused by the IOMMU */
	uint64_t msi_last_addr;      /* the last message delivered, after remapping */
	uint32_t msi_last_data;
	unsigned intx_ioapic_pin;
	_Atomic bool intx_level;     /* the device's INTx output (status bit 3) */
	_Atomic bool intx_disabled;  /* command bit 10, mirrored for pci_intx_set's threads */
	void (*config_hook)(void *opaque, unsigned off, unsigned size, uint32_t val);
	void *config_hook_opaque;
	void (*bar_hook)(void *opaque, unsigned bar, uint64_t addr, bool decoding);
	void *bar_hook_opaque;
	/* A passed-through function (pci_dev_set_config_passthrough): who
	 * owns each byte of configuration space (enum pci_cfg_owner). */
	const struct pci_cfg_ops *cfg_ops;
	void *cfg_opaque;
	uint8_t cfg_owner[PCI_CFG_SIZE];
	/* pci_dev_reset_mark's save: what a function-level reset loads */
	struct snap_buf *reset_state;
};

struct pci_host {
	struct vm *vm;
	pthread_mutex_t lock;        /* config_address */
	uint32_t config_address;
	uint32_t config_low;         /* bits 1:0 as written (see pci_cf8_write) */
	uint64_t next_mmio;          /* memory BAR placement cursor */
	uint64_t next_io;            /* I/O BAR placement cursor */
	struct pci_dev *slot[PCI_MAX_SLOTS];
};

#define PCI_ROM_BAR 0x30

/* pci_msix.c, called by pci.c with the device lock held. */
bool pci_msix_bar_access(struct pci_dev *d, unsigned bar, uint64_t off, unsigned size, bool write,
			 uint64_t *val);
void pci_msix_config_written(struct pci_dev *d);
void pci_msix_free(struct pci_dev *d);
/* pci_snap.c: free the function's reset state (pci_destroy). */
void pci_dev_reset_forget(struct pci_dev *d);
void pci_intx_update(struct pci_dev *d);
/* pci.c: re-evaluate where each BAR decodes after the command register or a
 * BAR changed (device lock held); the BAR hook hears of every change. */
void pci_update_bars(struct pci_dev *d);
/* pci_snap.c: the host bridge's snapshot ops, registered by pci_init. */
int pci_host_snap_register(struct vm *vm);
/* pci_msi.c: the MSI capability's message control was written. */
void pci_msi_config_written(struct pci_dev *d);

static inline uint16_t pci_cfg16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static inline uint32_t pci_cfg32(const struct pci_dev *d, unsigned off)
{
	return (uint32_t)d->cfg[off] | (uint32_t)d->cfg[off + 1] << 8 |
	       (uint32_t)d->cfg[off + 2] << 16 | (uint32_t)d->cfg[off + 3] << 24;
}

static inline uint16_t pci_cfg16_mask(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->wmask[off] | d->wmask[off + 1] << 8);
}

static inline void pci_set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void pci_set32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
