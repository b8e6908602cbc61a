/*
 * vfio: PCI passthrough through Linux VFIO (--device vfio,host=DDDD:BB:DD.F).
 *
 * The host function must be bound to vfio-pci, and every function of its
 * IOMMU group too (or unbound). vfio.c does the host side: the container
 * (/dev/vfio/vfio) with the type-1 IOMMU, all guest RAM mapped for the
 * device's DMA at IOVA = guest-physical address (so the guest programs the
 * device with the addresses it knows), the device fd and what its regions
 * and interrupts are. vfio_pci.c makes the guest's PCI function out of it:
 *
 *   - configuration space is the device's (pread/pwrite on its config
 *     region), but hvmm owns the BARs (the guest places them; sizing reads
 *     hvmm's masks), the command register (forwarded too), the ROM BAR
 *     (hidden: reads 0), the interrupt pin and line (INTx below) and
 *     the MSI and MSI-X capabilities (so hvmm sees the guest enable vectors);
 *   - memory BARs whose region can be mmap'ed are mapped from the device fd
 *     and installed as KVM memory slots where the guest put them, while
 *     memory decoding is on: register accesses then go from the guest
 *     straight to the device, without an exit. The pages that hold the
 *     MSI-X table and PBA stay unmapped: hvmm emulates the table there
 *     (pci_msix.c) and forwards the rest of those pages with pread/pwrite.
 *     I/O BARs and unmappable memory BARs are forwarded the same way;
 *   - interrupts: each MSI-X vector's irqfd eventfd (pci_msix.c) and one for
 *     MSI are handed to VFIO_DEVICE_SET_IRQS when the guest enables them, so
 *     the device's interrupt signals KVM directly, on the GSI route that
 *     carries the guest's message. While the guest masks an MSI-X vector,
 *     its trigger is swapped for an eventfd hvmm's event loop reads: the
 *     interrupt then only sets the vector's pending bit (PBA), and goes out
 *     when the guest unmasks it, as for hvmm's own devices.
 *
 *   - INTx, with --irqchip kernel only: the device's trigger eventfd is a
 *     KVM irqfd on its IOAPIC pin with a resample eventfd, which KVM
 *     signals at the guest's EOI and VFIO takes as "unmask" — the level
 *     interrupt's whole cycle in the kernels. With the split irqchip the
 *     IOAPIC is hvmm's and KVM has no resampling: the pin reads 0 there.
 *     VFIO allows one kind at a time: INTx is off while MSI or MSI-X is on.
 *
 * Limits: one function per --device, up to VFIO_MAX_DEVICES; INTx only
 * with the kernel irqchip; no
 * guest IOMMU in front of it (refused with --device intel-iommu); no
 * per-vector masking for MSI (the capability shows none); BARs over 512 MiB
 * do not fit the PCI window.
 *
 * Threads: set-up (ioctls on the container, group and device, mmap) runs on
 * the main thread before the seccomp filters exist; at run time the vCPU
 * threads make pread/pwrite on the device fd, KVM_SET_USER_MEMORY_REGION
 * and VFIO_DEVICE_SET_IRQS (sandbox_allow_passthrough); the event loop reads
 * the masked vectors' eventfds.
 */
#ifndef HVMM_VFIO_H
#define HVMM_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vfio.h>

struct vm;
struct guest_mem;

#define VFIO_MAX_DEVICES 4
#define VFIO_BDF_LEN 13        /* "DDDD:BB:DD.F" and the NUL */
#define VFIO_MAX_AREAS 8       /* sparse mmap areas kept per region */
#define VFIO_BAR_SEGS 4        /* mapped pieces of one BAR (around the MSI-X pages) */
/* KVM memory slots for BAR mappings: RAM has 0 and 1 (memory.c). */
#define VFIO_SLOT_BASE 16
#define VFIO_SLOTS_PER_DEV (6 * VFIO_BAR_SEGS)

struct vfio_region {
	uint64_t offset, size;  /* in the device fd */
	uint32_t flags;         /* VFIO_REGION_INFO_FLAG_* */
	bool msix_mappable;     /* VFIO_REGION_INFO_CAP_MSIX_MAPPABLE */
	bool sparse;            /* only areas[] may be mmap'ed */
	unsigned nr_areas;
	struct {
		uint64_t offset, size;
	} areas[VFIO_MAX_AREAS];
};

/* One opened host device. Tests fill it by hand: fd a memfd, regions
 * anywhere in it. */
struct vfio_dev {
	char bdf[VFIO_BDF_LEN];
	int container, group, fd; /* -1: not open */
	struct vfio_region region[VFIO_PCI_NUM_REGIONS];
	uint32_t irq_count[VFIO_PCI_NUM_IRQS];
	bool can_reset;
	/* The last VFIO_DEVICE_SET_IRQS asked for, and how many: for tests
	 * (a fake device has no kernel to ask). */
	struct {
		unsigned index, start, count;
		int fd0;
		uint64_t calls;
	} last_irqs;
	uint64_t resets; /* VFIO_DEVICE_RESETs asked for (tests count them too) */
};

/* "host=DDDD:BB:DD.F" (or BB:DD.F, domain 0000), the properties after
 * "vfio,": the canonical address into bdf. 0, or -EINVAL with a reason in
 * err. */
int vfio_parse(const char *props, char bdf[VFIO_BDF_LEN], char *err, size_t errlen);

/*
 * Open the host function bdf and map mem for its DMA. 0, or an hvmm exit
 * status (HVMM_EXIT_USAGE: the host is not set up for it — no such device,
 * not bound to vfio-pci, group not viable; HVMM_EXIT_HOST: VFIO refused)
 * with one line in err. v is closed again on failure.
 */
int vfio_open(struct vfio_dev *v, const char *bdf, const struct guest_mem *mem, char *err,
	      size_t errlen);
void vfio_close(struct vfio_dev *v);

/* VFIO_DEVICE_SET_IRQS: trigger eventfds fds[0..count) for vectors
 * start.. of irq index (start 0, count 0: that kind of interrupt off; a
 * single vector's eventfd can be swapped while the others stay). 0 or
 * -errno. */
int vfio_set_irqs(struct vfio_dev *v, unsigned index, unsigned start, unsigned count, const int *fds);
/* VFIO_DEVICE_RESET (the kernel picks FLR, a PM or a bus reset). 0,
 * -ENOTSUP when the device has none (VFIO_DEVICE_FLAGS_RESET unset), or
 * -errno. */
int vfio_reset(struct vfio_dev *v);
/* VFIO_IRQ_SET_ACTION_UNMASK by eventfd: a signal on fd unmasks vector 0 of
 * index (INTx: KVM's resample eventfd, written when the guest EOIs). */
int vfio_set_irq_unmask_fd(struct vfio_dev *v, unsigned index, int fd);

/*
 * The guest's PCI function for an opened device (which vfio_pci owns from
 * then on, and closes), the index-th passed through (its KVM memory slots),
 * created from the handles in env: the PCI host, KVM's VM fd (BAR slots,
 * irqfds), the event loop (masked MSI-X vectors), the MSI GSIs (env->msi's
 * gsi_alloc and gsi_route), the registry (marked: no snapshots). 0 and
 * *out, or -errno with a reason in err.
 */
struct dev_env;
struct dev_registry;
struct vfio_pci;
int vfio_pci_create(const struct dev_env *env, unsigned index, struct vfio_dev *v, struct vfio_pci **out,
		    char *err, size_t errlen);
/* Undo it (the registry type's destroy); its PCI function stays on bus 0
 * with dead BARs until the host is freed. */
void vfio_pci_destroy(struct vfio_pci *p);
/* --device vfio,host=BDF as a registry type (device.h): one per option,
 * opened and added in the registry's order, destroyed by it. */
struct dev_ops;
extern const struct dev_ops vfio_dev_ops;

/* Accesses hvmm forwarded to a device's BARs (a mapped BAR has none) and
 * BAR mappings installed, for statistics and tests. */
struct vfio_pci_stats {
	uint64_t bar_reads, bar_writes, cfg_reads, cfg_writes, maps, unmaps;
	uint64_t mapped_bytes;
};
bool vfio_pci_stats(const struct dev_registry *r, unsigned i, struct vfio_pci_stats *out, const char **bdf);
/* Device i's host side (NULL if none), for tests: its last SET_IRQS. */
const struct vfio_dev *vfio_pci_dev(const struct dev_registry *r, unsigned i);

#endif
