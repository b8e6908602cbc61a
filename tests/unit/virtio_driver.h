/*
 * A fake virtio-pci driver for the transport and device-model unit tests:
 * the guest's side of configuration space, BAR 0 (common config, notify,
 * ISR, device config) and split rings laid out in the fake VM's RAM.
 * Include once per test program, after <cmocka.h> and fake_vm.h; the
 * program defines `static struct vm vm;` before including it.
 */
#ifndef HVMM_TEST_VIRTIO_DRIVER_H
#define HVMM_TEST_VIRTIO_DRIVER_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "pci.h"
#include "virtio/virtio.h"

/* common configuration offsets (§4.1.4.3) */
#define DFSELECT 0x00
#define DF 0x04
#define GFSELECT 0x08
#define GF 0x0c
#define MSIX_CONFIG 0x10
#define NUM_QUEUES 0x12
#define STATUS 0x14
#define CFG_GEN 0x15
#define Q_SELECT 0x16
#define Q_SIZE 0x18
#define Q_MSIX 0x1a
#define Q_ENABLE 0x1c
#define Q_NOFF 0x1e
#define Q_DESC 0x20
#define Q_DRIVER 0x28
#define Q_DEVICE 0x30

/* ring placement in fake guest RAM, per queue; buffers: 4 KiB per slot */
#define RING_GPA(q) (0x10000ull + 0x4000ull * (q))
#define DESC_GPA(q) RING_GPA(q)
#define AVAIL_GPA(q) (RING_GPA(q) + 0x1000)
#define USED_GPA(q) (RING_GPA(q) + 0x2000)
#define BUF_GPA(q, slot) (0x100000ull + 0x100000ull * (q) + 0x1000ull * (slot))

#define F_STD ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX))

#define DRV_UNUSED __attribute__((unused)) /* not every test needs every one */
static DRV_UNUSED unsigned devfn;
static DRV_UNUSED uint64_t bar0, bar2;
static DRV_UNUSED unsigned cap_common, cap_notify, cap_isr, cap_device, notify_mult, cap_msix;
static DRV_UNUSED uint16_t drv_avail[VIRTIO_MAX_QUEUES], drv_used[VIRTIO_MAX_QUEUES];

static inline uint32_t cfg_rd(unsigned off, unsigned size) { return pci_config_read(&vm, devfn, off, size); }
static inline void cfg_wr(unsigned off, unsigned size, uint32_t v) { pci_config_write(&vm, devfn, off, size, v); }

static inline uint64_t mmio_rd(uint64_t addr, unsigned size)
{
	const struct bus_range *r = bus_find(&vm.mmio, addr, size);
	assert_non_null(r);
	return r->ops->read(r->opaque, addr - r->base, size);
}

static inline void mmio_wr(uint64_t addr, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(&vm.mmio, addr, size);
	assert_non_null(r);
	r->ops->write(r->opaque, addr - r->base, size, v);
}

static inline uint64_t cc_rd(unsigned off, unsigned size) { return mmio_rd(bar0 + cap_common + off, size); }
static inline void cc_wr(unsigned off, unsigned size, uint64_t v) { mmio_wr(bar0 + cap_common + off, size, v); }
static inline uint8_t status(void) { return (uint8_t)cc_rd(STATUS, 1); }
static inline void notify(unsigned q) { mmio_wr(bar0 + cap_notify + q * notify_mult, 2, q); }
static inline uint8_t isr_read(void) { return (uint8_t)mmio_rd(bar0 + cap_isr, 1); }
static inline bool intx(void) { return cfg_rd(0x06, 2) & 0x08; }

/* Find the device's BARs and capabilities and turn memory decoding on. */
static inline void drv_attach(struct virtio_dev *d)
{
	devfn = virtio_dev_devfn(d);
	memset(drv_avail, 0, sizeof(drv_avail));
	memset(drv_used, 0, sizeof(drv_used));
	bar0 = (cfg_rd(0x10, 4) & ~0xfull) | (uint64_t)cfg_rd(0x14, 4) << 32;
	bar2 = (cfg_rd(0x18, 4) & ~0xfull) | (uint64_t)cfg_rd(0x1c, 4) << 32;
	cfg_wr(0x04, 2, 0x06); /* memory decoding + bus master */
	cap_common = cap_notify = cap_isr = cap_device = notify_mult = cap_msix = 0;
	unsigned seen = 0;
	for (unsigned p = cfg_rd(0x34, 1) & ~3u; p; p = cfg_rd(p + 1, 1) & ~3u) {
		assert_true(++seen < 48);
		unsigned id = cfg_rd(p, 1);
		if (id == 0x11)
			cap_msix = p;
		if (id != 0x09)
			continue;
		unsigned off = cfg_rd(p + 8, 4);
		switch (cfg_rd(p + 3, 1)) {
		case 1: cap_common = off; break;
		case 2: cap_notify = off; notify_mult = cfg_rd(p + 16, 4); break;
		case 3: cap_isr = off; break;
		case 4: cap_device = off; break;
		}
	}
}

static inline void wait_status(uint8_t want)
{
	for (int i = 0; i < 2000 && status() != want; i++)
		usleep(1000);
	assert_int_equal(status(), want);
}

static inline void negotiate(uint64_t features)
{
	cc_wr(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	cc_wr(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	cc_wr(GFSELECT, 4, 0);
	cc_wr(GF, 4, (uint32_t)features);
	cc_wr(GFSELECT, 4, 1);
	cc_wr(GF, 4, (uint32_t)(features >> 32));
	cc_wr(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

/* Lay out queue q's rings in RAM (zeroed) and program them. */
static inline void setup_queue(unsigned q, uint16_t size)
{
	memset(mem_ptr(&vm.mem, RING_GPA(q), 0x3000), 0, 0x3000);
	drv_avail[q] = drv_used[q] = 0;
	cc_wr(Q_SELECT, 2, q);
	cc_wr(Q_SIZE, 2, size);
	/* 64-bit fields as two 32-bit halves, as Linux does */
	cc_wr(Q_DESC, 4, (uint32_t)DESC_GPA(q));
	cc_wr(Q_DESC + 4, 4, 0);
	cc_wr(Q_DRIVER, 8, AVAIL_GPA(q));
	cc_wr(Q_DEVICE, 8, USED_GPA(q));
	cc_wr(Q_ENABLE, 2, 1);
}

static inline void driver_ok(void)
{
	cc_wr(STATUS, 1, status() | VIRTIO_STATUS_DRIVER_OK);
}

/* Post one buffer of len bytes (device-writable, or readable with `data`)
 * on queue q with ring size `size`; returns its slot. */
static inline uint16_t post_buffer(unsigned q, uint16_t size, uint32_t len, const void *data)
{
	uint16_t slot = drv_avail[q] % size;
	struct vq_desc *d = mem_ptr(&vm.mem, DESC_GPA(q) + 16ull * slot, 16);
	*d = (struct vq_desc){ BUF_GPA(q, slot), len, data ? 0 : VQ_DESC_F_WRITE, 0 };
	if (data)
		memcpy(mem_ptr(&vm.mem, BUF_GPA(q, slot), len), data, len);
	struct vq_avail *a = mem_ptr(&vm.mem, AVAIL_GPA(q), 6 + 2ull * size);
	a->ring[slot] = slot;
	__atomic_store_n(&a->idx, ++drv_avail[q], __ATOMIC_RELEASE);
	return slot;
}

static inline uint16_t used_idx(unsigned q)
{
	struct vq_used *u = mem_ptr(&vm.mem, USED_GPA(q), 4);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

/* Wait (up to 2 s) for the device to return a buffer on q; its used element. */
static inline struct vq_used_elem take_used(unsigned q, uint16_t size)
{
	for (int i = 0; i < 2000 && used_idx(q) == drv_used[q]; i++)
		usleep(1000);
	assert_int_not_equal(used_idx(q), drv_used[q]);
	struct vq_used *u = mem_ptr(&vm.mem, USED_GPA(q), 6 + 8ull * size);
	struct vq_used_elem *e = &u->ring[drv_used[q]++ % size];
	return (struct vq_used_elem){ __atomic_load_n(&e->id, __ATOMIC_RELAXED),
				      __atomic_load_n(&e->len, __ATOMIC_RELAXED) };
}

#endif
