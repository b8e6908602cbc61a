/* Unit tests for the split-virtqueue parser: a fake driver lays out rings in
 * 16 MiB of fake guest RAM and hands vq_pop() good and hostile chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_ram.h"
#include "virtio/virtqueue.h"

#define QSZ 8
#define DESC_GPA 0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA 0x12000ull
#define BUF_GPA 0x100000ull
#define TABLE_GPA 0x200000ull

static struct virtqueue vq;
static struct vq_elem *el;
static uint16_t drv_avail; /* driver's shadow of avail->idx */

/* ---- fake driver ---- */

static struct vq_desc *desc_at(uint64_t gpa, unsigned i)
{
	return (struct vq_desc *)at(gpa + 16ull * i, 16);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	*desc_at(DESC_GPA, i) = (struct vq_desc){ addr, len, flags, next };
}

static void set_table(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	struct vq_desc d = { addr, len, flags, next };
	memcpy(mem_ptr(&m, table + 16ull * i, 16), &d, 16);
}

static struct vq_avail *avail(void) { return (struct vq_avail *)at(AVAIL_GPA, 6 + 2 * QSZ); }
static struct vq_used *used(void) { return (struct vq_used *)at(USED_GPA, 6 + 8 * QSZ); }
static uint16_t *used_event(void) { return &avail()->ring[QSZ]; }
static uint16_t avail_event(void) { return u16(at(USED_GPA + 4 + 8 * QSZ, 2)); }

static void offer(uint16_t head)
{
	avail()->ring[drv_avail % QSZ] = head;
	avail()->idx = ++drv_avail;
}

static void start(bool event_idx, bool indirect)
{
	memset(mem_ptr(&m, DESC_GPA, 0x3000), 0, 0x3000);
	drv_avail = 0;
	memset(&vq, 0, sizeof(vq));
	assert_int_equal(vq_start(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx, indirect),
			 VQ_OK);
}

static int vq_setup(void **state)
{
	(void)state;
	el = calloc(1, sizeof(*el));
	if (!el)
		return -1;
	return setup(state);
}

static int vq_teardown(void **state)
{
	free(el);
	return teardown(state);
}

/* The chain at head 0 must fail with err, count it, and keep failing. */
static void expect_err(int err)
{
	uint64_t before = vq.errors;
	assert_int_equal(vq_pop(&vq, el), err);
	assert_int_equal(vq.errors, before + 1);
	assert_int_equal(vq_pop(&vq, el), err);
	assert_false(vq_has_work(&vq));
	assert_int_equal(vq.last_avail, 0);
}

/* ---- ring placement ---- */

static void test_start_checks(void **state)
{
	(void)state;
	struct virtqueue q = { 0 };
	uint64_t top = mem_top(&m);
	/* sizes: zero, not a power of two, too big */
	assert_int_equal(vq_start(&q, &m, 0, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, 3, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, 2048, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), VQ_ERR_RING);
	/* alignment: desc 16, avail 2, used 4 */
	assert_int_equal(vq_start(&q, &m, QSZ, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 0, 0), VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 0, 0), VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 0, 0), VQ_ERR_RING);
	/* outside RAM, or running past its end (the event fields count) */
	assert_int_equal(vq_start(&q, &m, QSZ, top, AVAIL_GPA, USED_GPA, 0, 0), VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, top - 16 * QSZ + 16, AVAIL_GPA, USED_GPA, 0, 0),
			 VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, DESC_GPA, top - 2 * QSZ - 4, USED_GPA, 0, 0),
			 VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, DESC_GPA, AVAIL_GPA, top - 8 * QSZ - 4, 0, 0),
			 VQ_ERR_RING);
	assert_int_equal(vq_start(&q, &m, QSZ, 0xfffffffffffffff0ull, AVAIL_GPA, USED_GPA, 0, 0),
			 VQ_ERR_RING);
	assert_null(q.desc);
	assert_int_equal(vq_pop(&q, el), VQ_ERR_RING);
	/* exactly at the end of RAM is fine */
	assert_int_equal(vq_start(&q, &m, QSZ, top - 16 * QSZ, top - 0x1000, top - 0x800, 0, 0), VQ_OK);
	assert_non_null(q.desc);
	assert_int_equal(vq_pop(&q, el), 0);
	/* the largest size */
	assert_int_equal(vq_start(&q, &m, VQ_MAX_SIZE, DESC_GPA, 0x20000, 0x30000, 1, 1), VQ_OK);
	vq_stop(&q);
	assert_null(q.avail);
	assert_int_equal(vq_pop(&q, el), 0);
	assert_false(vq_has_work(&q));
}

/* ---- good chains ---- */

static void test_simple_chain(void **state)
{
	(void)state;
	start(false, false);
	assert_int_equal(vq_pop(&vq, el), 0);
	assert_false(vq_has_work(&vq));
	set_desc(3, BUF_GPA, 100, VQ_DESC_F_NEXT, 5);
	set_desc(5, BUF_GPA + 0x1000, 20, VQ_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA + 0x2000, 300, VQ_DESC_F_WRITE, 7); /* next ignored: no NEXT */
	offer(3);
	assert_true(vq_has_work(&vq));
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->head, 3);
	assert_int_equal(el->n_out, 2);
	assert_int_equal(el->n_in, 1);
	assert_int_equal(el->out_len, 120);
	assert_int_equal(el->in_len, 300);
	assert_ptr_equal(el->out[0].iov_base, at(BUF_GPA, 100));
	assert_int_equal(el->out[1].iov_len, 20);
	assert_ptr_equal(el->in[0].iov_base, at(BUF_GPA + 0x2000, 300));
	assert_int_equal(vq_pop(&vq, el), 0);

	vq_push(&vq, 3, 42);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].id, 3);
	assert_int_equal(used()->ring[0].len, 42);
	/* no EVENT_IDX: interrupt unless the driver set NO_INTERRUPT */
	assert_true(vq_need_interrupt(&vq));
	avail()->flags = VQ_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_need_interrupt(&vq));
	/* notify suppression without EVENT_IDX goes through used->flags */
	vq_enable_notify(&vq, false);
	assert_int_equal(used()->flags, VQ_USED_F_NO_NOTIFY);
	vq_enable_notify(&vq, true);
	assert_int_equal(used()->flags, 0);
}

static bool dma_bit(uint64_t gpa)
{
	uint64_t pg = gpa / 4096; /* one region from 0: offset = gpa */
	return (atomic_load(&m.dma_dirty[pg / 64]) >> (pg % 64)) & 1;
}

/* A migration resends what the device wrote (memory.h): while tracking, a
 * completed chain marks its device-writable buffers and the used ring, not
 * the buffers it only read; without tracking nothing is marked. */
static void test_push_marks_written_pages(void **state)
{
	(void)state;
	start(false, false);
	set_desc(0, BUF_GPA, 100, VQ_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA + 0x3000, 0x1800, VQ_DESC_F_WRITE, 0); /* two pages */
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(mem_dma_track_start(&m), 0);
	vq_push_elem(&vq, el, 0x1800);
	assert_true(dma_bit(BUF_GPA + 0x3000) && dma_bit(BUF_GPA + 0x4000));
	assert_false(dma_bit(BUF_GPA) || dma_bit(BUF_GPA + 0x5000));
	assert_true(dma_bit(USED_GPA));
	uint64_t words[64] = { 0 };
	mem_dma_take(&m, words, 64);
	assert_true((words[(BUF_GPA + 0x3000) / 4096 / 64] >> ((BUF_GPA + 0x3000) / 4096 % 64)) & 1);
	assert_false(dma_bit(BUF_GPA + 0x3000)); /* taken: cleared */
	mem_dma_track_stop(&m);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push_elem(&vq, el, 0x1800);
	assert_false(dma_bit(BUF_GPA + 0x3000) || dma_bit(USED_GPA));
}

static void test_zero_len_and_indirect_write_flag(void **state)
{
	(void)state;
	start(false, true);
	/* a zero-length descriptor yields no iovec; its address is not used */
	set_desc(0, 0xdead00000000ull, 0, VQ_DESC_F_NEXT, 1);
	/* the WRITE flag of an indirect descriptor itself is ignored (§2.7.5.3.2) */
	set_desc(1, TABLE_GPA, 32, VQ_DESC_F_INDIRECT | VQ_DESC_F_WRITE, 0);
	set_table(TABLE_GPA, 0, BUF_GPA, 8, VQ_DESC_F_NEXT, 1);
	set_table(TABLE_GPA, 1, BUF_GPA + 8, 8, VQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->n_out, 1);
	assert_int_equal(el->n_in, 1);
}

static void test_chain_as_long_as_queue(void **state)
{
	(void)state;
	start(false, false);
	for (unsigned i = 0; i < QSZ; i++)
		set_desc(i, BUF_GPA + i * 16, 16, i + 1 < QSZ ? VQ_DESC_F_NEXT : 0, (i + 1) % QSZ);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->n_out, QSZ);
	assert_int_equal(el->out_len, 16 * QSZ);
}

static void test_indirect_chain(void **state)
{
	(void)state;
	start(true, true);
	uint64_t t = TABLE_GPA + 8; /* unaligned tables are allowed */
	set_table(t, 0, BUF_GPA, 10, VQ_DESC_F_NEXT, 2);
	set_table(t, 2, BUF_GPA + 100, 20, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 1);
	set_table(t, 1, BUF_GPA + 200, 30, VQ_DESC_F_WRITE, 0);
	set_desc(6, t, 48, VQ_DESC_F_INDIRECT, 0);
	offer(6);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->head, 6);
	assert_int_equal(el->n_out, 1);
	assert_int_equal(el->n_in, 2);
	assert_int_equal(el->in_len, 50);
	assert_ptr_equal(el->in[1].iov_base, at(BUF_GPA + 200, 30));
	/* a direct descriptor may lead to the indirect one */
	set_desc(2, BUF_GPA, 4, VQ_DESC_F_NEXT, 6);
	offer(2);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->n_out, 2);
	assert_int_equal(el->n_in, 2);
}

/* ---- hostile chains: each error ---- */

static void test_avail_idx_too_far(void **state)
{
	(void)state;
	start(false, false);
	set_desc(0, BUF_GPA, 16, 0, 0);
	avail()->idx = QSZ + 1;
	expect_err(VQ_ERR_RING);
	/* exactly `size` ahead is legal */
	start(false, false);
	set_desc(0, BUF_GPA, 16, 0, 0);
	avail()->idx = QSZ;
	for (unsigned i = 0; i < QSZ; i++)
		assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(vq_pop(&vq, el), 0);
	/* "behind" is the same as far ahead in 16-bit arithmetic */
	avail()->idx = QSZ - 1;
	assert_int_equal(vq_pop(&vq, el), VQ_ERR_RING);
}

static void test_head_out_of_range(void **state)
{
	(void)state;
	start(false, false);
	offer(QSZ);
	expect_err(VQ_ERR_DESC_INDEX);
	start(false, false);
	offer(0xffff);
	expect_err(VQ_ERR_DESC_INDEX);
}

static void test_next_out_of_range(void **state)
{
	(void)state;
	start(false, false);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT, QSZ);
	offer(0);
	expect_err(VQ_ERR_DESC_INDEX);
}

static void test_loops(void **state)
{
	(void)state;
	start(false, false);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT, 0); /* self */
	offer(0);
	expect_err(VQ_ERR_LOOP);
	start(false, false);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA, 16, VQ_DESC_F_NEXT, 2);
	set_desc(2, BUF_GPA, 16, VQ_DESC_F_NEXT, 1);
	offer(0);
	expect_err(VQ_ERR_LOOP);
	/* a loop of zero-length descriptors too (no iovecs to run out of) */
	start(false, false);
	set_desc(0, 0, 0, VQ_DESC_F_NEXT, 1);
	set_desc(1, 0, 0, VQ_DESC_F_NEXT, 0);
	offer(0);
	expect_err(VQ_ERR_LOOP);
}

static void test_buffer_outside_ram(void **state)
{
	(void)state;
	uint64_t top = mem_top(&m);
	const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ top, 1 },                        /* just past the end */
		{ top - 8, 16 },                   /* runs past the end */
		{ 0xfffffffffffffff8ull, 16 },     /* wraps around */
		{ 0xfee00000ull, 4 },              /* the LAPIC, not RAM */
		{ 0, 0xffffffffu },                /* longer than RAM */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start(false, false);
		set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT, 1);
		set_desc(1, bad[i].addr, bad[i].len, VQ_DESC_F_WRITE, 0);
		offer(0);
		expect_err(VQ_ERR_DESC_ADDR);
	}
	/* the last byte of RAM is fine */
	start(false, false);
	set_desc(0, top - 1, 1, VQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
}

static void test_buffer_across_hole(void **state)
{
	(void)state;
	/* 3.5 GiB: RAM below the hole and 512 MiB above 4 GiB (MAP_NORESERVE) */
	struct guest_mem big;
	assert_int_equal(mem_init(&big, 3584ull << 20), 0);
	assert_int_equal(big.nr_regions, 2);
	struct virtqueue q = { 0 };
	assert_int_equal(vq_start(&q, &big, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, false), VQ_OK);
	struct vq_desc *d = mem_ptr(&big, DESC_GPA, 16 * QSZ);
	struct vq_avail *a = mem_ptr(&big, AVAIL_GPA, 6 + 2 * QSZ);
	d[0] = (struct vq_desc){ MEM_HOLE_START - 8, 16, 0, 0 }; /* into the hole */
	d[1] = (struct vq_desc){ MEM_HOLE_END - 8, 16, 0, 0 };   /* out of the hole */
	d[2] = (struct vq_desc){ MEM_HOLE_END, 4096, 0, 0 };     /* above the hole: RAM */
	a->ring[0] = 2;
	a->ring[1] = 0;
	a->idx = 2;
	assert_int_equal(vq_pop(&q, el), 1);
	assert_ptr_equal(el->out[0].iov_base, mem_ptr(&big, MEM_HOLE_END, 1));
	assert_int_equal(vq_pop(&q, el), VQ_ERR_DESC_ADDR);
	a->ring[1] = 1;
	assert_int_equal(vq_start(&q, &big, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, false), VQ_OK);
	a->idx = 2;
	assert_int_equal(vq_pop(&q, el), 1);
	assert_int_equal(vq_pop(&q, el), VQ_ERR_DESC_ADDR);
	/* rings may not straddle the hole either */
	assert_int_equal(vq_start(&q, &big, QSZ, MEM_HOLE_START - 64, AVAIL_GPA, USED_GPA, 0, 0),
			 VQ_ERR_RING);
	mem_free(&big);
}

static void test_readable_after_writable(void **state)
{
	(void)state;
	start(false, false);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 1);
	set_desc(1, BUF_GPA + 16, 16, 0, 0);
	offer(0);
	expect_err(VQ_ERR_ORDER);
	/* also across the direct/indirect boundary */
	start(false, true);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 1);
	set_desc(1, TABLE_GPA, 16, VQ_DESC_F_INDIRECT, 0);
	set_table(TABLE_GPA, 0, BUF_GPA, 16, 0, 0);
	offer(0);
	expect_err(VQ_ERR_ORDER);
}

static void test_indirect_errors(void **state)
{
	(void)state;
	uint64_t top = mem_top(&m);
	/* not negotiated */
	start(true, false);
	set_table(TABLE_GPA, 0, BUF_GPA, 16, 0, 0);
	set_desc(0, TABLE_GPA, 16, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_INDIRECT);
	/* length not a multiple of 16, or zero */
	start(true, true);
	set_desc(0, TABLE_GPA, 24, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_INDIRECT);
	start(true, true);
	set_desc(0, TABLE_GPA, 0, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_INDIRECT);
	/* with NEXT */
	start(true, true);
	set_desc(0, TABLE_GPA, 16, VQ_DESC_F_INDIRECT | VQ_DESC_F_NEXT, 1);
	set_desc(1, BUF_GPA, 16, 0, 0);
	offer(0);
	expect_err(VQ_ERR_INDIRECT);
	/* nested */
	start(true, true);
	set_table(TABLE_GPA, 0, TABLE_GPA + 0x1000, 16, VQ_DESC_F_INDIRECT, 0);
	set_table(TABLE_GPA + 0x1000, 0, BUF_GPA, 16, 0, 0);
	set_desc(0, TABLE_GPA, 16, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_INDIRECT);
	/* table outside RAM, or running past its end */
	start(true, true);
	set_desc(0, top - 16, 32, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_DESC_ADDR);
	/* next beyond the table (the table has 2 entries, the queue 8) */
	start(true, true);
	set_table(TABLE_GPA, 0, BUF_GPA, 16, VQ_DESC_F_NEXT, 2);
	set_desc(0, TABLE_GPA, 32, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_DESC_INDEX);
	/* a loop inside the table */
	start(true, true);
	set_table(TABLE_GPA, 0, BUF_GPA, 16, VQ_DESC_F_NEXT, 1);
	set_table(TABLE_GPA, 1, BUF_GPA, 16, VQ_DESC_F_NEXT, 0);
	set_desc(0, TABLE_GPA, 32, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_LOOP);
	/* a loop in a huge table (8 MiB, 524,288 entries) is found within the
	 * 65,536 entries a 16-bit `next` can reach, not the table's length */
	start(true, true);
	set_table(TABLE_GPA, 0, BUF_GPA, 0, VQ_DESC_F_NEXT, 1);
	set_table(TABLE_GPA, 1, BUF_GPA, 0, VQ_DESC_F_NEXT, 0);
	set_desc(0, TABLE_GPA, 8u << 20, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_LOOP);
	assert_true(vq.walked <= 1 + VQ_CHAIN_MAX + 1); /* the ring's entry, the table, one more */
	/* a buffer in the table outside RAM */
	start(true, true);
	set_table(TABLE_GPA, 0, top - 4, 8, VQ_DESC_F_WRITE, 0);
	set_desc(0, TABLE_GPA, 16, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_DESC_ADDR);
}

static void test_too_many_segments(void **state)
{
	(void)state;
	start(false, true);
	unsigned n = VQ_MAX_SEGS + 1;
	for (unsigned i = 0; i < n; i++)
		set_table(TABLE_GPA, i, BUF_GPA + i, 1, i + 1 < n ? VQ_DESC_F_NEXT : 0, i + 1);
	set_desc(0, TABLE_GPA, 16 * n, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_err(VQ_ERR_SEGS);
	/* VQ_MAX_SEGS exactly is fine */
	start(false, true);
	n = VQ_MAX_SEGS;
	for (unsigned i = 0; i < n; i++)
		set_table(TABLE_GPA, i, BUF_GPA + i, 1, i + 1 < n ? VQ_DESC_F_NEXT : 0, i + 1);
	set_desc(0, TABLE_GPA, 16 * n, VQ_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(el->n_out, VQ_MAX_SEGS);
}

/* A guest that rewrites the ring after the device started must not get
 * the device to use a value it did not check: the error sticks. */
static void test_broken_until_restart(void **state)
{
	(void)state;
	start(false, false);
	offer(QSZ + 3);
	assert_int_equal(vq_pop(&vq, el), VQ_ERR_DESC_INDEX);
	avail()->ring[0] = 0;
	set_desc(0, BUF_GPA, 16, 0, 0);
	assert_int_equal(vq_pop(&vq, el), VQ_ERR_DESC_INDEX);
	assert_int_equal(vq.errors, 1); /* one broken chain, counted once */
	/* vq_start again clears it (the error count stays for statistics) */
	assert_int_equal(vq_start(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), VQ_OK);
	assert_int_equal(vq.errors, 1);
	drv_avail = 0;
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
}

/* ---- indices ---- */

static void test_wraparound(void **state)
{
	(void)state;
	start(true, false);
	for (unsigned i = 0; i < QSZ; i++)
		set_desc(i, BUF_GPA + 64 * i, 64, VQ_DESC_F_WRITE, 0);
	/* 70000 round trips, two in flight: both 16-bit indices wrap */
	for (unsigned i = 0; i < 70000; i += 2) {
		offer(i % QSZ);
		offer((i + 1) % QSZ);
		assert_int_equal(vq_pop(&vq, el), 1);
		assert_int_equal(el->head, i % QSZ);
		assert_int_equal(avail_event(), (uint16_t)(i + 1));
		assert_int_equal(vq_pop(&vq, el), 1);
		assert_int_equal(el->head, (i + 1) % QSZ);
		vq_push(&vq, el->head, 1);
		vq_push(&vq, (uint16_t)(el->head - 1) % QSZ, 2);
		assert_int_equal(vq_pop(&vq, el), 0);
	}
	assert_int_equal(vq.last_avail, (uint16_t)70000);
	assert_int_equal(used()->idx, (uint16_t)70000);
	assert_int_equal(used()->ring[(70000 - 1) % QSZ].len, 2);

	/* and a pop straddling 0xffff → 0 with avail idx set directly */
	start(false, false);
	set_desc(0, BUF_GPA, 16, 0, 0);
	vq.last_avail = 0xfffe;
	avail()->ring[0xfffe % QSZ] = 0;
	avail()->ring[0xffff % QSZ] = 0;
	avail()->ring[0] = 0;
	avail()->idx = 1;
	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(vq_pop(&vq, el), 0);
	assert_int_equal(vq.last_avail, 1);
}

static void test_need_event_math(void **state)
{
	(void)state;
	/* event inside (old, new]: notify */
	assert_true(vq_need_event(5, 6, 5));
	assert_true(vq_need_event(5, 10, 3));
	assert_false(vq_need_event(5, 5, 3)); /* event not yet passed */
	assert_false(vq_need_event(10, 6, 3));
	assert_false(vq_need_event(2, 6, 3)); /* already passed before old */
	assert_false(vq_need_event(5, 5, 5)); /* nothing new */
	/* across the 16-bit wrap */
	assert_true(vq_need_event(0xffff, 1, 0xfffe));
	assert_true(vq_need_event(0, 2, 0xfffe));
	assert_false(vq_need_event(3, 2, 0xfffe));
	assert_false(vq_need_event(0xfffd, 2, 0xfffe));
}

static void test_event_idx_interrupts(void **state)
{
	(void)state;
	start(true, false);
	set_desc(0, BUF_GPA, 16, VQ_DESC_F_WRITE, 0);
	for (int i = 0; i < 6; i++)
		offer(0);
	/* NO_INTERRUPT is ignored with EVENT_IDX; the first interrupt always goes */
	avail()->flags = VQ_AVAIL_F_NO_INTERRUPT;
	*used_event() = 0;
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push(&vq, 0, 1);
	assert_true(vq_need_interrupt(&vq));
	/* the driver wants one when used idx passes 3 */
	*used_event() = 3;
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push(&vq, 0, 1); /* used 2 */
	assert_false(vq_need_interrupt(&vq));
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push(&vq, 0, 1); /* used 3 */
	assert_false(vq_need_interrupt(&vq));
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push(&vq, 0, 1); /* used 4: crosses 3 */
	assert_true(vq_need_interrupt(&vq));
	assert_false(vq_need_interrupt(&vq)); /* nothing new since */
	/* two pushes batched across the event */
	*used_event() = 4;
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(vq_pop(&vq, el), 1);
	vq_push(&vq, 0, 1);
	vq_push(&vq, 0, 1);
	assert_true(vq_need_interrupt(&vq));
}

static void test_event_idx_notifies(void **state)
{
	(void)state;
	start(true, false);
	set_desc(0, BUF_GPA, 16, 0, 0);
	assert_int_equal(avail_event(), 0);
	offer(0);
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(avail_event(), 1);
	/* disabled: avail_event stays behind */
	vq_enable_notify(&vq, false);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(avail_event(), 1);
	assert_int_equal(vq_pop(&vq, el), 0);
	assert_int_equal(avail_event(), 1);
	/* enabled again: at the next entry to pop */
	vq_enable_notify(&vq, true);
	assert_int_equal(avail_event(), 2);
	assert_false(vq_has_work(&vq));
	/* an empty pop publishes avail_event */
	offer(0);
	assert_int_equal(vq_pop(&vq, el), 1);
	assert_int_equal(avail_event(), 3);
	/* used->flags untouched with EVENT_IDX */
	assert_int_equal(used()->flags, 0);
}

static void test_iov_copy(void **state)
{
	(void)state;
	char a[5] = { 0 }, b[3] = { 0 }, c[4] = { 0 };
	struct iovec iov[3] = { { a, 5 }, { b, 3 }, { c, 4 } };
	const char *src = "0123456789AB";
	assert_int_equal(vq_buf_to_iov(iov, 3, 0, src, 12), 12);
	assert_memory_equal(a, "01234", 5);
	assert_memory_equal(b, "567", 3);
	assert_memory_equal(c, "89AB", 4);
	char out[16] = { 0 };
	assert_int_equal(vq_iov_to_buf(iov, 3, 4, out, 5), 5);
	assert_memory_equal(out, "45678", 5);
	assert_int_equal(vq_iov_to_buf(iov, 3, 10, out, 16), 2);
	assert_memory_equal(out, "AB", 2);
	assert_int_equal(vq_iov_to_buf(iov, 3, 12, out, 16), 0);
	assert_int_equal(vq_buf_to_iov(iov, 3, 6, "xyz", 3), 3);
	assert_memory_equal(b, "5xy", 3);
	assert_memory_equal(c, "z9AB", 4);
	assert_int_equal(vq_buf_to_iov(iov, 0, 0, "x", 1), 0);
}

static void test_err_str(void **state)
{
	(void)state;
	for (int e = VQ_ERR_SEGS; e <= VQ_OK; e++)
		assert_string_not_equal(vq_err_str(e), "unknown virtqueue error");
	assert_string_equal(vq_err_str(-100), "unknown virtqueue error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_checks),
		cmocka_unit_test(test_simple_chain),
		cmocka_unit_test(test_push_marks_written_pages),
		cmocka_unit_test(test_zero_len_and_indirect_write_flag),
		cmocka_unit_test(test_chain_as_long_as_queue),
		cmocka_unit_test(test_indirect_chain),
		cmocka_unit_test(test_avail_idx_too_far),
		cmocka_unit_test(test_head_out_of_range),
		cmocka_unit_test(test_next_out_of_range),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_buffer_outside_ram),
		cmocka_unit_test(test_buffer_across_hole),
		cmocka_unit_test(test_readable_after_writable),
		cmocka_unit_test(test_indirect_errors),
		cmocka_unit_test(test_too_many_segments),
		cmocka_unit_test(test_broken_until_restart),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_need_event_math),
		cmocka_unit_test(test_event_idx_interrupts),
		cmocka_unit_test(test_event_idx_notifies),
		cmocka_unit_test(test_iov_copy),
		cmocka_unit_test(test_err_str),
	};
	return cmocka_run_group_tests(tests, vq_setup, vq_teardown);
}
