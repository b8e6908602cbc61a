/*
 * virtio_pci's own state, shared with virtio_snap.c (its snapshots) only:
 * device models see struct virtio_dev through virtio.h's functions.
 */
#ifndef HVMM_VIRTIO_PCI_PRIV_H
#define HVMM_VIRTIO_PCI_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../pci.h"
#include "../device.h"
#include "../snapshot.h"
#include "virtio.h"

/* control requests from vCPU threads to the loop */
#define VIRTIO_CTL_RESET 1u
#define VIRTIO_CTL_DRIVER_OK 2u

struct virtio_queue_state {
	struct virtio_dev *dev;
	unsigned index;
	/* set-up registers (device lock) */
	uint16_t size;
	_Atomic uint16_t msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	/* the ring itself: event-loop thread once DRIVER_OK is set */
	struct virtqueue vq;
	int efd; /* notify eventfd: ioeventfd, or written by the MMIO handler */
};

struct virtio_dev {
	/* The handles it was created with (struct dev_env's): nothing else of
	 * the VM is reachable from here. */
	struct guest_mem *mem;
	struct evloop *loop; /* NULL: inline_mode */
	int vm_fd;           /* for ioeventfds; -1: none */
	struct iommu *iommu; /* DMA translation (VIRTIO_F_ACCESS_PLATFORM); NULL: none */
	struct dev_registry *reg; /* marked unsupported for a model without snapshots */
	const struct virtio_dev_ops *ops; /* = &ops_copy */
	/* Our own copy: a model may keep its ops in its state (virtio-blk does)
	 * and free them in destroy, before virtio_dev_free reads nr_queues. */
	struct virtio_dev_ops ops_copy;
	void *opaque;
	struct pci_dev *pci;
	unsigned nvec;
	uint64_t host_features;

	/* device lock (the PCI function's) */
	uint32_t dfselect, gfselect;
	uint64_t guest_features;
	uint64_t features; /* accepted at FEATURES_OK */
	_Atomic uint16_t msix_config;
	uint16_t queue_select;
	bool reset_pending;
	/* reset hand-over between the loop and a waiting vCPU (virtio_reset_request) */
	pthread_mutex_t reset_lock;
	pthread_cond_t reset_cond;
	bool reset_waiter, reset_model_done;
	atomic_bool logged; /* DEVICE_NEEDS_RESET reason printed */
	/* ioeventfds: where they are registered now (0: not registered) */
	uint64_t ioeventfd_base;
	unsigned ioeventfd_len; /* 0: any length (KVM_CAP_IOEVENTFD_ANY_LENGTH) */
	bool ioeventfd_off;     /* --no-ioeventfd, no KVM, no event loop */
	bool ioeventfd_warned;  /* a KVM_IOEVENTFD failure was reported */

	_Atomic uint8_t status;
	_Atomic uint8_t config_generation;
	_Atomic uint8_t isr;
	_Atomic unsigned ctl_req;
	atomic_bool running; /* driver_ok done on the loop, queues live */
	/* No event loop (unit tests, the fuzzers): act on the calling thread.
	 * Kept although a test could pass a loop of its own: most transport
	 * and model tests drive a device step by step from one thread and
	 * assert right after each register write, which a loop thread would
	 * turn into polling with timeouts; the fuzzers need the same
	 * determinism to reproduce an input. */
	bool inline_mode;
	int ctl_efd;

	struct {
		_Atomic uint64_t notifies, interrupts, suppressed, needs_reset, early_notifies, resets,
			refused, dma_translations, dma_faults;
	} st;
	/* IOVA translation through the IOMMU, for queues started after
	 * VIRTIO_F_ACCESS_PLATFORM was accepted */
	struct vq_dma dma;

	struct virtio_queue_state q[VIRTIO_MAX_QUEUES];
};

/* virtio_pci.c */
void virtio_efd_kick(int fd);
/* Run the control requests posted for the loop (reset, DRIVER_OK) now, on
 * this thread: the loop's own callback, or a snapshot with the loop parked. */
void virtio_ctl_run(struct virtio_dev *d);

/* virtio_snap.c: a model without a snapshot makes the VM unsaveable (its
 * registry's unsupported). 0. */
int virtio_snap_register(struct virtio_dev *d);
/* Every virtio type's snapshot ops (virtio_devs.c): the transport's state
 * and the model's, of the struct virtio_dev the registry holds. */
int virtio_snap_save(void *opaque, struct snap_buf *b, char *err, size_t n);
int virtio_snap_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n);

#endif
