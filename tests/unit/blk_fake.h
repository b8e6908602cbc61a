/*
 * The virtio-blk unit tests' world: a fake transport and event loop standing
 * in for virtio_pci.c and evloop.c, 16 MiB of fake guest RAM (guest_ram.h)
 * with a 256-entry split ring in it, and a fake driver that builds request
 * chains there and kicks the model through the ops it registered. Include
 * once per test program, after <cmocka.h>.
 */
#ifndef HVMM_TEST_BLK_FAKE_H
#define HVMM_TEST_BLK_FAKE_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "guest_ram.h"
#include "evloop.h"
#include "vm.h"
#include "virtio/virtio.h"

#define BLK_UNUSED __attribute__((unused)) /* not every program needs every helper */

#define QSZ 256
#define DESC_GPA 0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA 0x12000ull
#define HDR_GPA 0x20000ull  /* request i's header at HDR_GPA + 16 i */
#define ST_GPA 0x30000ull   /* request i's status byte at ST_GPA + i */
#define SEG_GPA 0x40000ull  /* discard / write-zeroes segments */
#define ID_GPA 0x50000ull
#define TABLE_GPA 0x60000ull /* indirect tables, 64 bytes each */
#define DATA_GPA 0x100000ull /* up to 12 MiB of data buffers */
#define RBUF_GPA 0x800000ull
#define DISK_BYTES (4ull << 20)
#define DISK_SECTORS (DISK_BYTES / 512)

#define F_SEG_MAX (1ull << 2)
#define F_RO (1ull << 5)
#define F_BLK_SIZE (1ull << 6)
#define F_FLUSH (1ull << 9)
#define F_DISCARD (1ull << 13)
#define F_WZ (1ull << 14)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_GET_LIFETIME 10
#define T_DISCARD 11
#define T_WZ 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define NO_USED 0xee /* "no used entry came back" */

/* ---- fake transport and event loop ---- */

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *opaque;
};
static struct virtio_dev dev;
static struct virtqueue vq;
static bool queue_on;
static uint64_t features;
static int interrupts, needs_reset;
static int loop_fd = -1;
static evloop_fn loop_fn;
static void *loop_arg;

struct virtio_dev *virtio_pci_create(const struct dev_env *env, const struct virtio_dev_ops *ops, void *opaque)
{
	(void)env;
	dev.ops = ops;
	dev.opaque = opaque;
	return &dev;
}
/* The model is the test's (dev): nothing to record. */
int virtio_model_done(const struct dev_env *env, struct virtio_dev *d, struct virtio_dev **out)
{
	(void)env;
	if (out)
		*out = d;
	return 0;
}
void *virtio_dev_opaque(struct virtio_dev *d) { return d->opaque; }
uint64_t virtio_dev_features(struct virtio_dev *d) { (void)d; return features; }
struct virtqueue *virtio_queue(struct virtio_dev *d, unsigned q)
{
	(void)d;
	return q == 0 && queue_on ? &vq : NULL;
}
int virtio_queue_pop(struct virtio_dev *d, unsigned q, struct vq_elem *e)
{
	struct virtqueue *v = virtio_queue(d, q);
	int r = v ? vq_pop(v, e) : 0;
	if (r < 0)
		virtio_dev_needs_reset(d, vq_err_str(r));
	return r;
}
void virtio_queue_interrupt(struct virtio_dev *d, unsigned q)
{
	(void)d;
	assert_int_equal(q, 0);
	if (vq_need_interrupt(&vq))
		interrupts++;
}
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	(void)d, (void)why;
	needs_reset++;
}
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	(void)l;
	assert_int_equal(events, EPOLLIN);
	loop_fd = fd;
	loop_fn = fn;
	loop_arg = opaque;
	return 0;
}
int evloop_del(struct evloop *l, int fd)
{
	(void)l;
	assert_int_equal(fd, loop_fd);
	loop_fd = -1;
	return 0;
}

/* ---- fixture ---- */

static struct vm vm;
static char path[256];
static int disk; /* the test's own fd on the image */
static uint16_t drv_avail, next_desc, expect_used;

static BLK_UNUSED struct vq_avail *avail(void) { return (struct vq_avail *)at(AVAIL_GPA, 6 + 2 * QSZ); }
static BLK_UNUSED struct vq_used *used(void) { return (struct vq_used *)at(USED_GPA, 6 + 8 * QSZ); }
static BLK_UNUSED uint8_t *gp(uint64_t gpa, uint64_t len) { return (uint8_t *)at(gpa, len); }

/* Start the device as a driver would: features, queue, DRIVER_OK. */
static BLK_UNUSED void driver_start(uint64_t feat, bool event_idx)
{
	memset(gp(DESC_GPA, 0x3000), 0, 0x3000);
	drv_avail = next_desc = expect_used = 0;
	memset(&vq, 0, sizeof(vq));
	assert_int_equal(vq_start(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx, true), VQ_OK);
	features = feat;
	queue_on = true;
	dev.ops->driver_ok(&dev);
	interrupts = needs_reset = 0;
}

static BLK_UNUSED void open_disk(const char *dir, bool ro)
{
	snprintf(path, sizeof(path), "%s/hvmm-blk-XXXXXX", dir);
	disk = mkstemp(path);
	assert_true(disk >= 0);
	assert_int_equal(ftruncate(disk, DISK_BYTES), 0);
	assert_int_equal(virtio_blk_create(&vm.env, path, ro, NULL), 0);
	assert_non_null(dev.ops);
	assert_int_equal(dev.ops->device_type, VIRTIO_ID_BLOCK);
	uint64_t f = F_FLUSH | (ro ? F_RO : F_DISCARD | F_WZ);
	driver_start(f | (1ull << VIRTIO_F_VERSION_1), false);
}

static BLK_UNUSED int fixture(void **state, const char *dir, bool sync, bool ro)
{
	if (setup(state))
		return -1;
	memset(&vm, 0, sizeof(vm));
	/* the handles the model reads: the options (--stats); the transport
	 * and the loop are this file's fakes */
	vm.env = (struct dev_env){ .cfg = &vm.cfg, .mem = &vm.mem, .vm_fd = -1, .reg = &vm.devs };
	memset(&dev, 0, sizeof(dev));
	loop_fd = -1;
	setenv("HVMM_DISK_SYNC", sync ? "1" : "0", 1);
	open_disk(dir, ro);
	/* the io_uring path registers its completion eventfd; the fallback does not */
	if (sync)
		assert_int_equal(loop_fd, -1);
	else
		assert_true(loop_fd >= 0);
	return 0;
}

static BLK_UNUSED int down(void **state)
{
	dev.ops->reset(&dev);
	dev.ops->destroy(&dev);
	assert_int_equal(loop_fd, -1); /* the eventfd left the loop */
	close(disk);
	unlink(path);
	return teardown(state);
}

/* ---- fake driver ---- */

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

static BLK_UNUSED uint16_t add_chain(const struct buf *b, unsigned n)
{
	uint16_t head = next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = next_desc;
		next_desc = (uint16_t)((next_desc + 1) % QSZ);
		struct vq_desc *desc = (struct vq_desc *)gp(DESC_GPA + 16ull * d, 16);
		*desc = (struct vq_desc){ b[i].gpa, b[i].len,
					  (uint16_t)((b[i].write ? VQ_DESC_F_WRITE : 0) |
						     (i + 1 < n ? VQ_DESC_F_NEXT : 0)),
					  next_desc };
	}
	avail()->ring[drv_avail % QSZ] = head;
	__atomic_store_n(&avail()->idx, ++drv_avail, __ATOMIC_RELEASE);
	return head;
}

/* The same chain through an indirect table at `table`: one ring descriptor. */
static BLK_UNUSED uint16_t add_indirect(const struct buf *b, unsigned n, uint64_t table)
{
	for (unsigned i = 0; i < n; i++)
		*(struct vq_desc *)gp(table + 16ull * i, 16) = (struct vq_desc){
			b[i].gpa, b[i].len,
			(uint16_t)((b[i].write ? VQ_DESC_F_WRITE : 0) | (i + 1 < n ? VQ_DESC_F_NEXT : 0)),
			(uint16_t)(i + 1) };
	struct buf t = { table, 16 * n, false };
	uint16_t head = add_chain(&t, 1);
	struct vq_desc *d = (struct vq_desc *)gp(DESC_GPA + 16ull * head, 16);
	d->flags = VQ_DESC_F_INDIRECT;
	return head;
}

static BLK_UNUSED void kick(void)
{
	dev.ops->queue_notify(&dev, 0);
}

/* Let the "event loop" run until `count` used entries are there (or a timeout). */
static BLK_UNUSED void wait_used(uint16_t count)
{
	for (int i = 0; i < 500 && used()->idx != count; i++) {
		if (loop_fd < 0)
			break;
		struct pollfd p = { loop_fd, POLLIN, 0 };
		if (poll(&p, 1, 10) > 0)
			loop_fn(loop_arg, EPOLLIN);
	}
	assert_int_equal(used()->idx, count);
}

static BLK_UNUSED void put_hdr(unsigned slot, uint32_t type, uint64_t sector)
{
	uint8_t *h = gp(HDR_GPA + 16ull * slot, 16);
	memcpy(h, &type, 4);
	memset(h + 4, 0, 4);
	memcpy(h + 8, &sector, 8);
	*gp(ST_GPA + slot, 1) = NO_USED;
}

/* One request: header, `n` data buffers, status; returns the status byte. */
static BLK_UNUSED uint8_t req(uint32_t type, uint64_t sector, const struct buf *data, unsigned n)
{
	struct buf b[8];
	assert_true(n <= 6);
	put_hdr(0, type, sector);
	b[0] = (struct buf){ HDR_GPA, 16, false };
	if (n)
		memcpy(b + 1, data, n * sizeof(*data));
	b[n + 1] = (struct buf){ ST_GPA, 1, true };
	uint16_t head = add_chain(b, n + 2);
	kick();
	wait_used(++expect_used);
	struct vq_used_elem *u = &used()->ring[(expect_used - 1) % QSZ];
	assert_int_equal(u->id, head);
	uint32_t in = 1;
	for (unsigned i = 0; i < n; i++)
		in += data[i].write ? data[i].len : 0;
	assert_int_equal(u->len, in);
	return *gp(ST_GPA, 1);
}

static BLK_UNUSED uint8_t rw(uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len)
{
	struct buf d = { gpa, len, type == T_IN };
	return req(type, sector, &d, 1);
}

static BLK_UNUSED void fill(uint64_t gpa, uint64_t len, uint32_t seed)
{
	uint8_t *p = gp(gpa, len);
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) ^ seed);
}

static BLK_UNUSED void file_read(uint64_t off, void *buf, size_t len)
{
	assert_int_equal(pread(disk, buf, len, (off_t)off), (ssize_t)len);
}

static BLK_UNUSED bool file_is_zero(uint64_t off, size_t len)
{
	static uint8_t buf[1 << 20];
	assert_true(len <= sizeof(buf));
	file_read(off, buf, len);
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static BLK_UNUSED void cfg(unsigned off, void *out, unsigned len)
{
	dev.ops->config_read(&dev, off, out, len);
}


/* Discard / write-zeroes segment i at SEG_GPA. */
static BLK_UNUSED void put_seg(unsigned i, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint8_t *s = gp(SEG_GPA + 16ull * i, 16);
	memcpy(s, &sector, 8);
	memcpy(s + 8, &n, 4);
	memcpy(s + 12, &flags, 4);
}

#endif
