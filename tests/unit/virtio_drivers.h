/*
 * Fake virtio-pci drivers for the unit tests that drive several devices of
 * a fake VM at once (test_snapshot_pci, test_pause_devices): one struct drv
 * per device, each with its rings and buffers in its own 1 MiB of guest
 * RAM, MSI-X programmed, split rings with EVENT_IDX as Linux uses them. A
 * driver names its VM, so it can move to a restored one. (virtio_driver.h
 * is the one-device driver of the transport's own tests.) Include after
 * <cmocka.h> and fake_vm.h.
 */
#ifndef HVMM_TEST_VIRTIO_DRIVERS_H
#define HVMM_TEST_VIRTIO_DRIVERS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "pci.h"
#include "virtio/virtio.h"
#include "vm.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_EVIDX (1ull << VIRTIO_F_EVENT_IDX)
#define F_ACCESS_PLATFORM (1ull << 33) /* offered behind an IOMMU */

struct drv {
	struct vm *vm;
	unsigned devfn;
	uint64_t bar0, bar2;
	unsigned cc, notify, isr, mult, msix;
	uint64_t base;   /* this device's 1 MiB of RAM: rings, then buffers */
	uint16_t qsz;
	uint16_t avail[2], used[2], next_desc[2];
};

#define RING(d, q) ((d)->base + 0x4000ull * (q))
#define BUF(d, q, slot) ((d)->base + 0x20000ull + 0x40000ull * (q) + 0x1000ull * ((slot) % 64))

static inline uint32_t d_cfg_rd(struct drv *d, unsigned off, unsigned size)
{
	return pci_config_read(d->vm, d->devfn, off, size);
}

static inline void d_cfg_wr(struct drv *d, unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(d->vm, d->devfn, off, size, v);
}

static inline uint64_t mm_rd(struct vm *vm, uint64_t addr, unsigned size)
{
	const struct bus_range *r = bus_find(&vm->mmio, addr, size);
	assert_non_null(r);
	return r->ops->read(r->opaque, addr - r->base, size);
}

static inline void mm_wr(struct vm *vm, uint64_t addr, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(&vm->mmio, addr, size);
	assert_non_null(r);
	r->ops->write(r->opaque, addr - r->base, size, v);
}

static inline uint64_t cc_rd(struct drv *d, unsigned off, unsigned size) { return mm_rd(d->vm, d->bar0 + d->cc + off, size); }
static inline void cc_wr(struct drv *d, unsigned off, unsigned size, uint64_t v) { mm_wr(d->vm, d->bar0 + d->cc + off, size, v); }
static inline void *gp(struct drv *d, uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(&d->vm->mem, gpa, len);
	assert_non_null(p);
	return p;
}

static inline void attach(struct drv *d, struct vm *vm, struct virtio_dev *vd, uint64_t base, uint16_t qsz)
{
	memset(d, 0, sizeof(*d));
	d->vm = vm;
	d->devfn = virtio_dev_devfn(vd);
	d->base = base;
	d->qsz = qsz;
	d->bar0 = (d_cfg_rd(d, 0x10, 4) & ~0xfull) | (uint64_t)d_cfg_rd(d, 0x14, 4) << 32;
	d->bar2 = (d_cfg_rd(d, 0x18, 4) & ~0xfull) | (uint64_t)d_cfg_rd(d, 0x1c, 4) << 32;
	d_cfg_wr(d, 0x04, 2, 0x06); /* memory decoding, bus master */
	for (unsigned p = d_cfg_rd(d, 0x34, 1) & ~3u; p; p = d_cfg_rd(d, p + 1, 1) & ~3u) {
		unsigned id = d_cfg_rd(d, p, 1), off = d_cfg_rd(d, p + 8, 4);
		if (id == 0x11)
			d->msix = p;
		if (id != 0x09)
			continue;
		switch (d_cfg_rd(d, p + 3, 1)) {
		case 1: d->cc = off; break;
		case 2: d->notify = off; d->mult = d_cfg_rd(d, p + 16, 4); break;
		case 3: d->isr = off; break;
		}
	}
	assert_true(d->msix && d->notify >= 0x1000);
}

/* MSI-X on, every vector unmasked with its own message; config vector 0,
 * queue q on vector q + 1. */
static inline void msix_on(struct drv *d, unsigned nq, uint32_t data_base)
{
	for (unsigned i = 0; i <= nq; i++) {
		mm_wr(d->vm, d->bar2 + 16 * i, 4, 0xfee00000u);
		mm_wr(d->vm, d->bar2 + 16 * i + 4, 4, 0);
		mm_wr(d->vm, d->bar2 + 16 * i + 8, 4, data_base + i);
		mm_wr(d->vm, d->bar2 + 16 * i + 12, 4, 0);
	}
	d_cfg_wr(d, d->msix + 2, 2, 0x8000);
	cc_wr(d, 0x10, 2, 0); /* msix_config */
}

static inline void bring_up(struct drv *d, uint64_t features, unsigned nq)
{
	/* Behind an IOMMU every device offers ACCESS_PLATFORM and refuses a
	 * driver that does not accept it, as Linux does. */
	cc_wr(d, 0x00, 4, 1);
	if (cc_rd(d, 0x04, 4) & (uint32_t)(F_ACCESS_PLATFORM >> 32))
		features |= F_ACCESS_PLATFORM;
	cc_wr(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	cc_wr(d, 0x08, 4, 0);
	cc_wr(d, 0x0c, 4, (uint32_t)features);
	cc_wr(d, 0x08, 4, 1);
	cc_wr(d, 0x0c, 4, (uint32_t)(features >> 32));
	cc_wr(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_true(cc_rd(d, 0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < nq; q++) {
		memset(gp(d, RING(d, q), 0x3000), 0, 0x3000);
		cc_wr(d, 0x16, 2, q);
		cc_wr(d, 0x18, 2, d->qsz);
		cc_wr(d, 0x1a, 2, q + 1);
		cc_wr(d, 0x20, 8, RING(d, q));
		cc_wr(d, 0x28, 8, RING(d, q) + 0x1000);
		cc_wr(d, 0x30, 8, RING(d, q) + 0x2000);
		cc_wr(d, 0x1c, 2, 1);
	}
	cc_wr(d, 0x14, 1, cc_rd(d, 0x14, 1) | VIRTIO_STATUS_DRIVER_OK);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* One chain on queue q, made available (not kicked). */
static inline void post(struct drv *d, unsigned q, const struct seg *s, unsigned n)
{
	uint16_t head = d->next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % d->qsz);
		struct vq_desc *desc = gp(d, RING(d, q) + 16ull * idx, 16);
		*desc = (struct vq_desc){ s[i].gpa, s[i].len,
					  (uint16_t)((s[i].write ? VQ_DESC_F_WRITE : 0) |
						     (i + 1 < n ? VQ_DESC_F_NEXT : 0)),
					  (uint16_t)((idx + 1) % d->qsz) };
	}
	d->next_desc[q] = (uint16_t)((head + n) % d->qsz);
	struct vq_avail *a = gp(d, RING(d, q) + 0x1000, 6 + 2ull * d->qsz);
	a->ring[d->avail[q] % d->qsz] = head;
	__atomic_store_n(&a->idx, ++d->avail[q], __ATOMIC_RELEASE);
}

static inline void kick(struct drv *d, unsigned q)
{
	mm_wr(d->vm, d->bar0 + d->notify + q * d->mult, 2, q);
}

static inline uint16_t used_idx(struct drv *d, unsigned q)
{
	struct vq_used *u = gp(d, RING(d, q) + 0x2000, 4);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

/* The next used element of q (2 s at most); with EVENT_IDX the driver
 * asks for an interrupt at the next one, as Linux does. */
static inline struct vq_used_elem take(struct drv *d, unsigned q)
{
	for (int i = 0; i < 2000 && used_idx(d, q) == d->used[q]; i++)
		usleep(1000);
	assert_int_not_equal(used_idx(d, q), d->used[q]);
	struct vq_used *u = gp(d, RING(d, q) + 0x2000, 6 + 8ull * d->qsz);
	struct vq_used_elem e = u->ring[d->used[q]++ % d->qsz];
	struct vq_avail *a = gp(d, RING(d, q) + 0x1000, 6 + 2ull * d->qsz + 2);
	a->ring[d->qsz] = d->used[q]; /* used_event */
	return e;
}


static inline struct virtio_dev *vdev(struct vm *vm, const char *name)
{
	struct virtio_dev *all[8];
	unsigned n = virtio_devices(&vm->devs, all, 8);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(virtio_dev_name(all[i]), name))
			return all[i];
	fail_msg("no %s", name);
	return NULL;
}

static inline unsigned find_fn(struct vm *vm, uint16_t vendor, uint16_t device)
{
	for (unsigned s = 1; s < 32; s++)
		if (pci_config_read(vm, s << 3, 0, 4) == ((uint32_t)device << 16 | vendor))
			return s << 3;
	fail_msg("no %04x:%04x", vendor, device);
	return 0;
}

/* A vector's eventfd (KVM's irqfd; here nobody else reads it). */
static inline int msix_fd(struct vm *vm, struct drv *d, unsigned vec)
{
	return pci_msix_vector_fd(pci_dev_at(vm, d->devfn), vec);
}

/* Messages on an eventfd since the last read (non-blocking). */
static inline uint64_t efd_count(int fd)
{
	uint64_t v = 0;
	if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

#endif
