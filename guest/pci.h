/*
 * pci: ring-0 discovery of the PCI functions on bus 0 for the ring-3 drivers.
 *
 * Ring 3 has no I/O privilege (IOPL 0, no I/O bitmap in the TSS), so
 * configuration space is ring 0's:
 * pci_scan() reads every function through mechanism #1 (0xCF8/0xCFC), sizes
 * its BARs, and walks its capability list for the virtio capabilities and
 * MSI-X. SYS_PCI_DEV hands a description (struct pci_udev) to ring 3 and, with
 * PCI_DEV_OPEN, turns on memory decoding, bus mastering and MSI-X and maps the
 * memory BARs into the user GiB. Everything else (virtqueues, features,
 * notifies, the MSI-X table) the driver does through those BAR mappings.
 *
 * This header is also the syscall ABI: ring-3 code includes it for struct
 * pci_udev (the functions below are ring 0's).
 */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_DEV_OPEN 1 /* SYS_PCI_DEV flags: enable the function and map its BARs */

enum pci_bar_kind { PCI_BAR_NONE = 0, PCI_BAR_MEM32 = 1, PCI_BAR_MEM64 = 2, PCI_BAR_IO = 3 };

/* virtio_pci_cap.cfg_type, 1-based; vcap[] is indexed by type - 1. */
#define PCI_VIRTIO_COMMON 1
#define PCI_VIRTIO_NOTIFY 2
#define PCI_VIRTIO_ISR 3
#define PCI_VIRTIO_DEVICE 4
#define PCI_VIRTIO_CAPS 4

struct pci_ubar {
	uint64_t phys;   /* 0: unassigned (the driver must not use it) */
	uint64_t size;
	uint64_t va;     /* user mapping after PCI_DEV_OPEN (uncached), else 0 */
	uint64_t mapped; /* bytes mapped at va (<= USER_PCI_BAR_MAX) */
	uint32_t kind;   /* enum pci_bar_kind; the upper half of a 64-bit BAR is NONE */
	uint32_t prefetch;
};

struct pci_uvcap {
	uint8_t present, bar;
	uint16_t reserved;
	uint32_t off, len;
};

struct pci_udev {
	uint8_t bus, dev, fn, header;
	uint16_t vendor, device, subsys_vendor, subsys;
	uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
	uint8_t revision, opened;
	uint16_t command;    /* as last read */
	struct pci_ubar bar[6];
	struct pci_uvcap vcap[PCI_VIRTIO_CAPS]; /* first of each virtio cfg_type */
	uint32_t notify_mult;                    /* notify_off_multiplier */
	/* MSI-X (msix_size 0: none). The table and PBA are in memory BARs. */
	uint16_t msix_size;
	uint8_t msix_table_bar, msix_pba_bar;
	uint32_t msix_table_off, msix_pba_off;
	uint16_t msix_cap;   /* config offset of the capability */
	uint16_t msix_ctrl;  /* message control as last read (bit 15: enabled) */
	/* Where an MSI goes: write msi_data_base + i (i < MSI_VECTORS) to msi_addr
	 * to raise vector VEC_MSI_BASE + i on the CPU running the task. */
	uint64_t msi_addr;
	uint32_t msi_data_base;
	uint32_t msi_count;
};

/* Ring 0. Scans bus 0 once (later calls return the count found); prints one
 * "# pci ..." comment line per function when verbose. */
unsigned pci_scan(bool verbose);
/* SYS_PCI_DEV: 0, -ENODEV past the last function, -EFAULT, -ENXIO (open of a
 * function with no assigned memory BAR). */
long pci_udev_get(unsigned i, struct pci_udev *out, unsigned flags);

/* Ring 3 (user/virtio.c): MSI interrupts per vector, counted by trap.c. */
extern volatile uint64_t u_msi_count[16];

/* Ring 0, for drivers that stay in the kernel (iommu.c): the scanned
 * function with this vendor and device id (NULL: none), and its
 * configuration space, 32 bits at a time (off is rounded down to 4). */
const struct pci_udev *pci_find(uint16_t vendor, uint16_t device);
uint32_t pci_cfg_read(const struct pci_udev *d, unsigned off);
void pci_cfg_write(const struct pci_udev *d, unsigned off, uint32_t v);
/* Ring 0: sleeps (HLT) until MSI vector VEC_MSI_BASE + i has fired more than
 * `seen` times in all, or timeout_ns passed; the count (-EINVAL for a bad i). */
long pci_msi_wait(long i, long seen, long timeout_ns);

#endif
