/*
 * Unit tests for virtio-blk: a fake driver lays out a 256-entry split ring in
 * 16 MiB of fake guest RAM, builds request chains there and kicks the model
 * through the ops it registered; a fake transport (blk_fake.h) stands in
 * for virtio_pci.c and the event loop. Every test runs twice: on io_uring and on
 * the synchronous fallback (HVMM_DISK_SYNC=1), against a temporary image on
 * the root file system and on tmpfs (which has no FALLOC_FL_ZERO_RANGE, so
 * write-zeroes takes its write-the-zeros path there).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blk_fake.h"

static int up_uring(void **s) { return fixture(s, "/tmp", false, false); }
static int up_sync(void **s) { return fixture(s, "/tmp", true, false); }
static int up_shm(void **s) { return fixture(s, "/dev/shm", false, false); }
static int up_shm_sync(void **s) { return fixture(s, "/dev/shm", true, false); }
static int up_ro(void **s) { int r = fixture(s, "/tmp", false, true); vm.stats_on = true; return r; }

/* ---- tests ---- */

static void test_config(void **state)
{
	(void)state;
	const struct virtio_dev_ops *o = dev.ops;
	assert_int_equal(o->nr_queues, 1);
	assert_true(o->queue_max >= 256);
	assert_int_equal(o->features & (F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WZ),
			 F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WZ);
	assert_false(o->features & F_RO);
	assert_true(o->config_size >= 60);
	uint64_t cap;
	uint32_t v;
	cfg(0, &cap, 8);
	assert_int_equal(cap, DISK_SECTORS);
	cfg(12, &v, 4); /* seg_max: the data descriptors of one chain */
	assert_true(v >= 1 && v <= VQ_MAX_SEGS - 2);
	cfg(20, &v, 4);
	assert_int_equal(v, 512);
	cfg(36, &v, 4); /* max_discard_sectors */
	assert_true(v >= 8);
	cfg(40, &v, 4); /* max_discard_seg */
	assert_true(v >= 1);
	cfg(44, &v, 4); /* discard_sector_alignment */
	assert_true(v >= 1);
	cfg(48, &v, 4); /* max_write_zeroes_sectors */
	assert_true(v >= 8);
	cfg(52, &v, 4);
	assert_true(v >= 1);
	uint8_t b = 0;
	cfg(56, &b, 1);
	assert_int_equal(b, 1);
	/* the image is locked while the device has it */
	assert_int_equal(virtio_blk_create(&vm.env, path, false, NULL), -EBUSY);
	assert_int_equal(virtio_blk_create(&vm.env, path, true, NULL), -EBUSY);
	/* byte-wise and past the end (zeros) */
	uint8_t c[4];
	cfg(1, c, 2);
	assert_int_equal(c[0] | c[1] << 8, DISK_SECTORS >> 8 & 0xffff);
	memset(c, 0xff, sizeof(c));
	cfg((unsigned)o->config_size, c, 4);
	assert_int_equal(c[0] | c[1] | c[2] | c[3], 0);
}

static void test_read_write(void **state)
{
	(void)state;
	/* a write split over three data buffers, read back in two */
	fill(DATA_GPA, 64 << 10, 1);
	struct buf w[3] = { { DATA_GPA, 4096, false },
			    { DATA_GPA + 4096, 512, false },
			    { DATA_GPA + 4608, (64 << 10) - 4608, false } };
	assert_int_equal(req(T_OUT, 40, w, 3), S_OK);
	static uint8_t f[64 << 10];
	file_read(40 * 512, f, sizeof(f));
	assert_memory_equal(f, gp(DATA_GPA, sizeof(f)), sizeof(f));

	memset(gp(RBUF_GPA, 64 << 10), 0, 64 << 10);
	struct buf r[2] = { { RBUF_GPA, 1536, true }, { RBUF_GPA + 1536, (64 << 10) - 1536, true } };
	assert_int_equal(req(T_IN, 40, r, 2), S_OK);
	assert_memory_equal(gp(RBUF_GPA, 64 << 10), gp(DATA_GPA, 64 << 10), 64 << 10);

	/* the last sector, and a large 8 MiB write + read of the whole disk... in halves */
	fill(DATA_GPA, DISK_BYTES, 2);
	assert_int_equal(rw(T_OUT, 0, DATA_GPA, DISK_BYTES / 2), S_OK);
	assert_int_equal(rw(T_OUT, DISK_SECTORS / 2, DATA_GPA + DISK_BYTES / 2, DISK_BYTES / 2), S_OK);
	assert_int_equal(rw(T_IN, 0, RBUF_GPA, DISK_BYTES), S_OK);
	assert_memory_equal(gp(RBUF_GPA, DISK_BYTES), gp(DATA_GPA, DISK_BYTES), DISK_BYTES);
	assert_int_equal(rw(T_IN, DISK_SECTORS - 1, RBUF_GPA, 512), S_OK);
	assert_memory_equal(gp(RBUF_GPA, 512), gp(DATA_GPA + DISK_BYTES - 512, 512), 512);
	/* a zero-length read is a no-op that succeeds */
	assert_int_equal(req(T_IN, 0, NULL, 0), S_OK);
}

/* VERSION_1 implies any layout: header split, header + data in one buffer,
 * data + status in one buffer. */
static void test_any_layout(void **state)
{
	(void)state;
	uint8_t *h = gp(DATA_GPA, 16 + 1024);
	uint32_t t = T_OUT;
	uint64_t sec = 100;
	memcpy(h, &t, 4);
	memset(h + 4, 0, 4);
	memcpy(h + 8, &sec, 8);
	fill(DATA_GPA + 16, 1024, 3);
	struct buf b[] = { { DATA_GPA, 8, false }, { DATA_GPA + 8, 8 + 1024, false }, { ST_GPA, 1, true } };
	*gp(ST_GPA, 1) = NO_USED;
	add_chain(b, 3);
	kick();
	wait_used(++expect_used);
	assert_int_equal(*gp(ST_GPA, 1), S_OK);
	static uint8_t f[1024];
	file_read(100 * 512, f, 1024);
	assert_memory_equal(f, gp(DATA_GPA + 16, 1024), 1024);

	/* read: data and status in one 1025-byte buffer */
	put_hdr(0, T_IN, 100);
	memset(gp(RBUF_GPA, 1025), 0x5a, 1025);
	struct buf r[] = { { HDR_GPA, 16, false }, { RBUF_GPA, 1025, true } };
	add_chain(r, 2);
	kick();
	wait_used(++expect_used);
	assert_int_equal(used()->ring[(expect_used - 1) % QSZ].len, 1025);
	assert_int_equal(*gp(RBUF_GPA + 1024, 1), S_OK);
	assert_memory_equal(gp(RBUF_GPA, 1024), f, 1024);
}

/* Many requests with one kick: all in flight together, completed in batches. */
static void test_many_in_flight(void **state)
{
	(void)state;
	driver_start(F_FLUSH | F_DISCARD | F_WZ, true); /* EVENT_IDX: batched interrupts */
	enum { N = 200, LEN = 8192 };
	fill(DATA_GPA, (uint64_t)N * LEN, 4);
	for (unsigned i = 0; i < N; i++) {
		put_hdr(i, T_OUT, (uint64_t)i * (LEN / 512));
		struct buf b[] = { { HDR_GPA + 16 * i, 16, false },
				   { DATA_GPA + (uint64_t)i * LEN, LEN, false },
				   { ST_GPA + i, 1, true } };
		add_indirect(b, 3, TABLE_GPA + 64ull * i);
	}
	kick();
	wait_used(N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(*gp(ST_GPA + i, 1), S_OK);
	/* far fewer interrupts than requests */
	assert_true(interrupts >= 1 && interrupts < N / 2);
	static uint8_t f[N * LEN];
	file_read(0, f, sizeof(f));
	assert_memory_equal(f, gp(DATA_GPA, sizeof(f)), sizeof(f));
	/* and the same back, scattered into 4 KiB reads; the driver has seen
	 * every used entry and wants an interrupt for the next one */
	interrupts = 0;
	avail()->ring[QSZ] = used()->idx; /* used_event */
	for (unsigned i = 0; i < N; i++) {
		put_hdr(i, T_IN, (uint64_t)i * (LEN / 512));
		struct buf b[] = { { HDR_GPA + 16 * i, 16, false },
				   { RBUF_GPA + (uint64_t)i * LEN + 4096, 4096, true },
				   { RBUF_GPA + (uint64_t)i * LEN, 4096, true },
				   { ST_GPA + i, 1, true } };
		add_indirect(b, 4, TABLE_GPA + 64ull * i);
	}
	kick();
	wait_used(2 * N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(*gp(ST_GPA + i, 1), S_OK);
		assert_memory_equal(gp(RBUF_GPA + (uint64_t)i * LEN + 4096, 4096), f + i * LEN, 4096);
		assert_memory_equal(gp(RBUF_GPA + (uint64_t)i * LEN, 4096), f + i * LEN + 4096, 4096);
	}
	assert_true(interrupts >= 1 && interrupts < N / 2);
}

/* Reads that miss the page cache complete later, from the kernel's task
 * work or a worker: the completion eventfd must fire for those too. */
static void test_uncached_reads(void **state)
{
	(void)state;
	enum { N = 32, LEN = 64 << 10 };
	fill(DATA_GPA, (uint64_t)N * LEN, 13);
	assert_int_equal(pwrite(disk, gp(DATA_GPA, (uint64_t)N * LEN), (size_t)N * LEN, 0),
			 (ssize_t)N * LEN);
	assert_int_equal(fdatasync(disk), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(posix_fadvise(disk, 0, 0, POSIX_FADV_DONTNEED), 0);
		memset(gp(RBUF_GPA, (uint64_t)N * LEN), 0, (size_t)N * LEN);
		uint16_t base = used()->idx;
		for (unsigned i = 0; i < N; i++) {
			put_hdr(i, T_IN, (uint64_t)i * (LEN / 512));
			struct buf b[] = { { HDR_GPA + 16 * i, 16, false },
					   { RBUF_GPA + (uint64_t)i * LEN, LEN, true },
					   { ST_GPA + i, 1, true } };
			add_indirect(b, 3, TABLE_GPA + 64ull * i);
		}
		kick();
		wait_used((uint16_t)(base + N));
		for (unsigned i = 0; i < N; i++)
			assert_int_equal(*gp(ST_GPA + i, 1), S_OK);
		assert_memory_equal(gp(RBUF_GPA, (uint64_t)N * LEN), gp(DATA_GPA, (uint64_t)N * LEN),
				    (size_t)N * LEN);
	}
}

static void test_bad_ranges(void **state)
{
	(void)state;
	fill(DATA_GPA, 4096, 5);
	assert_int_equal(rw(T_IN, DISK_SECTORS, RBUF_GPA, 512), S_IOERR);
	assert_int_equal(rw(T_IN, DISK_SECTORS - 1, RBUF_GPA, 1024), S_IOERR);
	assert_int_equal(rw(T_OUT, DISK_SECTORS - 1, DATA_GPA, 1024), S_IOERR);
	/* sector * 512 and sector + count overflow 64 bits */
	assert_int_equal(rw(T_IN, UINT64_MAX, RBUF_GPA, 512), S_IOERR);
	assert_int_equal(rw(T_OUT, UINT64_MAX / 512 + 1, DATA_GPA, 512), S_IOERR);
	assert_int_equal(rw(T_OUT, (1ull << 63) / 256, DATA_GPA, 512), S_IOERR);
	/* not whole sectors */
	assert_int_equal(rw(T_IN, 0, RBUF_GPA, 511), S_IOERR);
	assert_int_equal(rw(T_OUT, 0, DATA_GPA, 1000), S_IOERR);
	/* device-readable data on a read, device-writable data on a write */
	struct buf rd[] = { { DATA_GPA, 512, false }, { RBUF_GPA, 512, true } };
	assert_int_equal(req(T_IN, 0, rd, 2), S_IOERR);
	struct buf wr[] = { { DATA_GPA, 512, false }, { RBUF_GPA, 512, true } };
	assert_int_equal(req(T_OUT, 0, wr, 2), S_IOERR);
	/* nothing reached the file */
	assert_true(file_is_zero(0, 4096));
	assert_true(file_is_zero(DISK_BYTES - 4096, 4096));
	/* unknown and unsupported types */
	assert_int_equal(req(T_GET_LIFETIME, 0, NULL, 0), S_UNSUPP);
	assert_int_equal(req(0x1234, 0, NULL, 0), S_UNSUPP);
	assert_int_equal(needs_reset, 0);
}

/* Chains that cannot carry a status are a broken driver: DEVICE_NEEDS_RESET,
 * nothing pushed, nothing more processed until reset. */
static void test_bad_chains(void **state)
{
	(void)state;
	put_hdr(0, T_IN, 0);
	struct buf short_hdr[] = { { HDR_GPA, 8, false }, { RBUF_GPA, 512, true }, { ST_GPA, 1, true } };
	add_chain(short_hdr, 3);
	kick();
	assert_int_equal(needs_reset, 1);
	assert_int_equal(used()->idx, 0);
	/* later chains wait for the reset */
	struct buf ok[] = { { HDR_GPA, 16, false }, { RBUF_GPA, 512, true }, { ST_GPA, 1, true } };
	add_chain(ok, 3);
	kick();
	assert_int_equal(used()->idx, 0);
	assert_int_equal(*gp(ST_GPA, 1), NO_USED);

	dev.ops->reset(&dev);
	queue_on = false;
	kick(); /* no queue: nothing happens */
	driver_start(F_FLUSH, false);
	struct buf no_status[] = { { HDR_GPA, 16, false }, { DATA_GPA, 512, false } };
	add_chain(no_status, 2);
	kick();
	assert_int_equal(needs_reset, 1);
	assert_int_equal(used()->idx, 0);

	/* a broken ring (buffer outside RAM) too */
	dev.ops->reset(&dev);
	driver_start(F_FLUSH, false);
	struct buf outside[] = { { HDR_GPA, 16, false }, { mem_top(&m) - 256, 512, true }, { ST_GPA, 1, true } };
	add_chain(outside, 3);
	kick();
	assert_int_equal(needs_reset, 1);
	assert_int_equal(used()->idx, 0);

	/* and after a reset the device works again */
	dev.ops->reset(&dev);
	driver_start(F_FLUSH, false);
	assert_int_equal(rw(T_IN, 0, RBUF_GPA, 512), S_OK);
}

static void test_get_id_flush(void **state)
{
	(void)state;
	memset(gp(ID_GPA, 32), 0xcc, 32);
	struct buf id = { ID_GPA, 20, true };
	assert_int_equal(req(T_GET_ID, 0, &id, 1), S_OK);
	const char *s = (const char *)gp(ID_GPA, 20);
	assert_memory_equal(s, "hvmm", 4);
	for (int i = 4; i < 20; i++)
		assert_non_null(strchr("0123456789abcdef", s[i]));
	assert_int_equal(*gp(ID_GPA + 20, 1), 0xcc);
	char first[20];
	memcpy(first, s, 20);
	/* a shorter buffer gets the start */
	memset(gp(ID_GPA, 32), 0xcc, 32);
	id.len = 8;
	assert_int_equal(req(T_GET_ID, 0, &id, 1), S_OK);
	assert_memory_equal(gp(ID_GPA, 8), first, 8);
	assert_int_equal(*gp(ID_GPA + 8, 1), 0xcc);

	fill(DATA_GPA, 4096, 6);
	assert_int_equal(rw(T_OUT, 8, DATA_GPA, 4096), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	/* flush with data buffers is malformed */
	struct buf junk = { DATA_GPA, 512, false };
	assert_int_equal(req(T_FLUSH, 0, &junk, 1), S_IOERR);
	/* without VIRTIO_BLK_F_FLUSH negotiated: unsupported (writes are write-through) */
	dev.ops->reset(&dev);
	driver_start(0, false);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_UNSUPP);
	fill(DATA_GPA, 4096, 7);
	assert_int_equal(rw(T_OUT, 8, DATA_GPA, 4096), S_OK);
	static uint8_t f[4096];
	file_read(8 * 512, f, sizeof(f));
	assert_memory_equal(f, gp(DATA_GPA, 4096), 4096);
}

static uint8_t seg_req(uint32_t type, unsigned nseg)
{
	struct buf b = { SEG_GPA, 16 * nseg, false };
	return req(type, 0, &b, 1);
}

static void test_discard(void **state)
{
	(void)state;
	fill(DATA_GPA, DISK_BYTES, 8);
	assert_int_equal(rw(T_OUT, 0, DATA_GPA, DISK_BYTES), S_OK);
	/* two 64 KiB ranges, 4 KiB aligned (the file system punches whole blocks) */
	put_seg(0, 128, 128, 0);
	put_seg(1, 1024, 128, 0);
	assert_int_equal(seg_req(T_DISCARD, 2), S_OK);
	assert_true(file_is_zero(128 * 512, 64 << 10));
	assert_true(file_is_zero(1024 * 512, 64 << 10));
	assert_false(file_is_zero(256 * 512, 4096)); /* around them: untouched */
	assert_false(file_is_zero(124 * 512, 2048));
	struct stat st;
	assert_int_equal(fstat(disk, &st), 0);
	assert_int_equal(st.st_size, DISK_BYTES); /* KEEP_SIZE */

	/* malformed: UNMAP on a discard, unknown flags, out of range, too many
	 * segments, ragged length, a status buffer with room for data */
	put_seg(0, 0, 8, 1);
	assert_int_equal(seg_req(T_DISCARD, 1), S_UNSUPP);
	put_seg(0, 0, 8, 0x80);
	assert_int_equal(seg_req(T_DISCARD, 1), S_UNSUPP);
	put_seg(0, DISK_SECTORS - 4, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_IOERR);
	put_seg(0, UINT64_MAX - 2, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_IOERR);
	uint32_t max_seg;
	cfg(40, &max_seg, 4);
	for (unsigned i = 0; i <= max_seg; i++)
		put_seg(i, 8ull * i, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, max_seg + 1), S_IOERR);
	assert_int_equal(seg_req(T_DISCARD, 0), S_IOERR);
	struct buf ragged = { SEG_GPA, 20, false };
	assert_int_equal(req(T_DISCARD, 0, &ragged, 1), S_IOERR);
	assert_false(file_is_zero(0, 4096));
	/* the largest number of segments is fine */
	assert_int_equal(seg_req(T_DISCARD, max_seg), S_OK);
	assert_true(file_is_zero(0, 4096));
	/* not negotiated */
	dev.ops->reset(&dev);
	driver_start(F_FLUSH, false);
	put_seg(0, 2048, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_UNSUPP);
	assert_int_equal(seg_req(T_WZ, 1), S_UNSUPP);
	assert_false(file_is_zero(2048 * 512, 4096));
}

static void test_write_zeroes(void **state)
{
	(void)state;
	fill(DATA_GPA, DISK_BYTES, 9);
	assert_int_equal(rw(T_OUT, 0, DATA_GPA, DISK_BYTES), S_OK);
	/* not block aligned, with and without UNMAP, and a big one */
	put_seg(0, 3, 5, 0);
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	assert_true(file_is_zero(3 * 512, 5 * 512));
	assert_false(file_is_zero(2 * 512, 512));
	assert_false(file_is_zero(8 * 512, 512));
	put_seg(0, 101, 300, 1);
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	assert_true(file_is_zero(101 * 512, 300 * 512));
	assert_false(file_is_zero(100 * 512, 512));
	assert_false(file_is_zero(401 * 512, 512));
	put_seg(0, 4096, 3000, 0); /* 1.5 MiB: more than one zero-writing pass */
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	assert_true(file_is_zero(4096 * 512, 1 << 20));
	assert_true(file_is_zero((4096 + 2048) * 512, 952 * 512));
	assert_false(file_is_zero((4096 + 3000) * 512, 512));
	struct stat st;
	assert_int_equal(fstat(disk, &st), 0);
	assert_int_equal(st.st_size, DISK_BYTES);
	/* malformed */
	put_seg(0, 0, 8, 2);
	assert_int_equal(seg_req(T_WZ, 1), S_UNSUPP);
	put_seg(0, DISK_SECTORS, 1, 0);
	assert_int_equal(seg_req(T_WZ, 1), S_IOERR);
	put_seg(0, 0, 8, 0);
	put_seg(1, 16, 8, 0);
	uint32_t max_seg;
	cfg(52, &max_seg, 4);
	if (max_seg == 1)
		assert_int_equal(seg_req(T_WZ, 2), S_IOERR);
	assert_false(file_is_zero(0, 512));
}

/* The write-through syncs the device did, from its --stats line: the
 * device is destroyed to print it (stderr to a file), then a fresh one
 * is opened for the teardown. */
static unsigned long long syncs_then_reopen(const char *dir)
{
	char log[] = "/tmp/hvmm-blk-stats-XXXXXX";
	int lfd = mkstemp(log);
	assert_true(lfd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(lfd, STDERR_FILENO);
	dev.ops->reset(&dev);
	dev.ops->destroy(&dev);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char line[512] = "";
	ssize_t n = pread(lfd, line, sizeof(line) - 1, 0);
	close(lfd);
	unlink(log);
	assert_true(n > 0);
	const char *p = strstr(line, "in flight, ");
	assert_non_null(p);
	close(disk);
	unlink(path);
	memset(&dev, 0, sizeof(dev));
	open_disk(dir, false);
	return strtoull(p + strlen("in flight, "), NULL, 10);
}

/* Without FLUSH the disk is write-through (writes carry RWF_DSYNC): a
 * discard and a write-zeroes done by fallocate are synced before they
 * complete, one fdatasync each; with FLUSH the driver flushes itself. */
/* A device made with --stats (read when it is created), for its line. */
static void reopen_with_stats(const char *dir)
{
	vm.cfg.stats = true;
	dev.ops->reset(&dev);
	dev.ops->destroy(&dev);
	close(disk);
	unlink(path);
	memset(&dev, 0, sizeof(dev));
	open_disk(dir, false);
	vm.cfg.stats = false;
}

static void test_write_through_syncs(void **state)
{
	(void)state;
	reopen_with_stats("/tmp");
	dev.ops->reset(&dev);
	driver_start(F_DISCARD | F_WZ | (1ull << VIRTIO_F_VERSION_1), false);
	put_seg(0, 128, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_OK);
	put_seg(0, 256, 8, 1); /* UNMAP: punch */
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	put_seg(0, 512, 8, 0); /* zero range */
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	vm.cfg.stats = true; /* the next device prints its line too */
	assert_int_equal(syncs_then_reopen("/tmp"), 3);
	vm.cfg.stats = false;
	/* open_disk negotiated FLUSH: no sync of our own */
	put_seg(0, 128, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_OK);
	put_seg(0, 256, 8, 0);
	assert_int_equal(seg_req(T_WZ, 1), S_OK);
	assert_int_equal(syncs_then_reopen("/tmp"), 0);
}

static void test_read_only(void **state)
{
	(void)state;
	assert_true(dev.ops->features & F_RO);
	assert_false(dev.ops->features & (F_DISCARD | F_WZ));
	uint8_t pattern[4096];
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(pwrite(disk, pattern, sizeof(pattern), 4096), (ssize_t)sizeof(pattern));
	assert_int_equal(rw(T_IN, 8, RBUF_GPA, 4096), S_OK);
	assert_memory_equal(gp(RBUF_GPA, 4096), pattern, 4096);
	fill(DATA_GPA, 4096, 10);
	assert_int_equal(rw(T_OUT, 8, DATA_GPA, 4096), S_IOERR);
	/* even with the features forced on, nothing changes the image */
	dev.ops->reset(&dev);
	driver_start(F_FLUSH | F_RO | F_DISCARD | F_WZ, false);
	put_seg(0, 8, 8, 0);
	assert_int_equal(seg_req(T_DISCARD, 1), S_IOERR);
	assert_int_equal(seg_req(T_WZ, 1), S_IOERR);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	static uint8_t f[4096];
	file_read(4096, f, sizeof(f));
	assert_memory_equal(f, pattern, sizeof(pattern));
}

/* Reset with requests in flight: it returns only when they are finished, and
 * after it nothing touches the old rings or buffers. */
static void test_reset_in_flight(void **state)
{
	(void)state;
	enum { N = 64 };
	fill(DATA_GPA, (uint64_t)N * 32768, 12);
	for (unsigned i = 0; i < N; i++) {
		put_hdr(i, i % 2 ? T_FLUSH : T_OUT, (uint64_t)i * 64);
		struct buf w[] = { { HDR_GPA + 16 * i, 16, false },
				   { DATA_GPA + (uint64_t)i * 32768, 32768, false },
				   { ST_GPA + i, 1, true } };
		struct buf f[] = { { HDR_GPA + 16 * i, 16, false }, { ST_GPA + i, 1, true } };
		if (i % 2)
			add_chain(f, 2);
		else
			add_chain(w, 3);
	}
	kick();
	dev.ops->reset(&dev);
	uint16_t idx = used()->idx;
	uint8_t st[N];
	memcpy(st, gp(ST_GPA, N), N);
	/* whatever completes later is dropped */
	for (int i = 0; i < 20; i++) {
		if (loop_fd >= 0) {
			struct pollfd p = { loop_fd, POLLIN, 0 };
			if (poll(&p, 1, 5) > 0)
				loop_fn(loop_arg, EPOLLIN);
		}
	}
	assert_int_equal(used()->idx, idx);
	assert_memory_equal(gp(ST_GPA, N), st, N);
	/* a status byte is written exactly when its used entry is */
	unsigned done = 0;
	for (unsigned i = 0; i < N; i++) {
		if (st[i] != NO_USED) {
			assert_int_equal(st[i], S_OK);
			done++;
		}
	}
	assert_int_equal(done, idx);
	/* every request is free again: a full ring of work goes through */
	driver_start(F_FLUSH, false);
	for (unsigned i = 0; i < QSZ / 2; i++) {
		put_hdr(i, T_IN, i);
		struct buf r[] = { { HDR_GPA + 16 * i, 16, false },
				   { RBUF_GPA + 512ull * i, 512, true },
				   { ST_GPA + i, 1, true } };
		add_indirect(r, 3, TABLE_GPA + 64ull * i);
	}
	kick();
	wait_used(QSZ / 2);
	for (unsigned i = 0; i < QSZ / 2; i++)
		assert_int_equal(*gp(ST_GPA + i, 1), S_OK);
}

static void test_create_errors(void **state)
{
	(void)state;
	assert_int_equal(virtio_blk_create(&vm.env, "/nonexistent/disk.img", false, NULL), -ENOENT);
	assert_int_equal(virtio_blk_create(&vm.env, "/tmp", true, NULL), -EISDIR);
	assert_int_equal(virtio_blk_create(&vm.env, "/dev/null", true, NULL), -ENOTBLK);
}

/* QEMU on the same image, paused before its guest starts (-S, TCG: no
 * KVM needed). Returns its pid; *err gets its stderr. */
static pid_t qemu_on(const char *img, bool ro, int *err)
{
	char drive[512];
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=virtio%s", img, ro ? ",readonly=on" : "");
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* dies with the test, even one that failed before killing it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDERR_FILENO);
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-S", "-display", "none", "-nodefaults",
		       "-no-user-config", "-drive", drive, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*err = p[0];
	return pid;
}

/* Up to 20 s for pid to end: its status, or -1 if it is still running. */
static int wait_end(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	return -1;
}

static bool image_locked_by_other(const char *img)
{
	int fd = open(img, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	/* 201 ("nobody else writes"): QEMU takes it when its drive is set up,
	 * after it has read-locked byte 100 to probe the image */
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 201, .l_len = 1 };
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	close(fd);
	return fl.l_type != F_UNLCK;
}

/* One writer or many readers, among hvmm and QEMU: this fixture's device
 * holds `path` for writing. */
static void test_image_lock(void **state)
{
	(void)state;
	/* another hvmm, writing or reading */
	assert_int_equal(virtio_blk_create(&vm.env, path, false, NULL), -EBUSY);
	assert_int_equal(virtio_blk_create(&vm.env, path, true, NULL), -EBUSY);
	/* QEMU refuses the image hvmm writes (its "Failed to get ... lock") */
	int err;
	pid_t q = qemu_on(path, false, &err);
	int st = wait_end(q, 20000);
	if (st < 0)
		kill(q, SIGKILL), waitpid(q, NULL, 0);
	char msg[2048] = "";
	ssize_t n = read(err, msg, sizeof(msg) - 1);
	close(err);
	assert_true(n > 0);
	msg[n] = 0;
	assert_int_not_equal(st, 0);
	assert_non_null(strstr(msg, "lock"));

	/* and hvmm refuses an image QEMU writes, or reads: another image */
	char img[] = "/tmp/hvmm-lock-XXXXXX";
	int fd = mkstemp(img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	for (int ro = 0; ro < 2; ro++) {
		q = qemu_on(img, ro, &err);
		for (int i = 0; i < 2000 && !image_locked_by_other(img); i++)
			usleep(10000); /* QEMU takes its locks while it starts */
		assert_true(image_locked_by_other(img));
		assert_int_equal(virtio_blk_create(&vm.env, img, false, NULL), -EBUSY);
		if (ro) { /* readers share: a second device, synchronous (no loop fd) */
			struct virtio_dev first = dev;
			setenv("HVMM_DISK_SYNC", "1", 1);
			assert_int_equal(virtio_blk_create(&vm.env, img, true, NULL), 0);
			setenv("HVMM_DISK_SYNC", "0", 1);
			dev.ops->reset(&dev);
			dev.ops->destroy(&dev);
			dev = first;
		} else
			assert_int_equal(virtio_blk_create(&vm.env, img, true, NULL), -EBUSY);
		kill(q, SIGKILL);
		waitpid(q, NULL, 0);
		close(err);
	}
	unlink(img);
}

#define T(fn, up) cmocka_unit_test_setup_teardown(fn, up, down)
#define ALL(up)                                                                   \
	T(test_config, up), T(test_read_write, up), T(test_any_layout, up),         \
	T(test_many_in_flight, up), T(test_uncached_reads, up), T(test_bad_ranges, up), T(test_bad_chains, up), \
	T(test_get_id_flush, up), T(test_discard, up), T(test_write_zeroes, up),    \
	T(test_reset_in_flight, up), T(test_write_through_syncs, up)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ALL(up_uring),
		ALL(up_sync),
		T(test_discard, up_shm),
		T(test_write_zeroes, up_shm),
		T(test_write_zeroes, up_shm_sync),
		T(test_read_only, up_ro),
		T(test_image_lock, up_uring),
		cmocka_unit_test(test_create_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
