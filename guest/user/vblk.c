/*
 * vblk: test=virtio-blk — the ring-3 block driver and its test, plus the
 * blkbench= benchmarks. Requests are header (device-readable), data (split
 * into segments as size_max/seg_max allow), status byte (device-writable),
 * with many in flight; a request's header and status live in a per-slot DMA
 * array, the slot number riding in the chain's token.
 *
 * The data pattern is a function of the byte offset on the disk, so the
 * harness can check the image file afterwards: the 64-bit little-endian word
 * at disk offset 8*i is  i * 0x9E3779B97F4A7C15 ^ (seed << 56),  seed 1 for
 * the polling run (first blkmib MiB) and 2 for the interrupt run (the next).
 */
#include "usys.h"
#include "virtio.h"
#include "vtest.h"

#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8

#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define BLK_S_NONE 0xff /* not written by the device */

#define BLK_SLOTS 64
#define BLK_MAX_SEGS 8
#define BLK_GOLDEN 0x9E3779B97F4A7C15ull

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_io {
	uint32_t type;
	uint64_t sector;
	uint64_t pa;
	uint32_t bytes, segs; /* segs: split the data into this many descriptors (at most) */
	uint8_t status;
	uint32_t len; /* used length the device reported */
};

static struct vdev blk_dev;
static struct vq blk_q;
static struct blk_hdr *blk_hdrs;
static volatile uint8_t *blk_status;
static uint64_t blk_hdrs_pa, blk_status_pa;
static uint64_t blk_capacity; /* sectors */
static uint32_t blk_size_max, blk_seg_max;
static uint16_t blk_free[BLK_SLOTS];
static unsigned blk_nfree;

/* Queues one request in slot s; 0 or -1 (ring full). */
static int blk_submit(unsigned s, const struct blk_io *io, uint64_t token)
{
	struct vq_sg sg[BLK_MAX_SEGS + 2];
	blk_hdrs[s].type = io->type;
	blk_hdrs[s].reserved = 0;
	blk_hdrs[s].sector = io->sector;
	blk_status[s] = BLK_S_NONE;
	unsigned n = 0;
	sg[n++] = (struct vq_sg){ blk_hdrs_pa + s * sizeof(struct blk_hdr), sizeof(struct blk_hdr) };
	unsigned want = io->segs ? io->segs : 1;
	if (want > BLK_MAX_SEGS)
		want = BLK_MAX_SEGS;
	if (blk_seg_max && want > blk_seg_max)
		want = blk_seg_max;
	uint32_t seg = want > 1 ? (io->bytes / want + 511) & ~511u : io->bytes;
	if (blk_size_max && seg > blk_size_max)
		seg = blk_size_max & ~511u;
	for (uint32_t off = 0; off < io->bytes && n < BLK_MAX_SEGS + 1; off += seg) {
		uint32_t k = io->bytes - off < seg ? io->bytes - off : seg;
		sg[n++] = (struct vq_sg){ io->pa + off, k };
	}
	unsigned data = n - 1;
	sg[n++] = (struct vq_sg){ blk_status_pa + s, 1 };
	bool out = io->type == BLK_T_OUT;
	return vq_add(&blk_q, sg, out ? 1 + data : 1, out ? 1 : data + 1, token);
}

/* Runs n requests with up to qd in flight. 0, or -1 on a timeout / bad chain. */
static int blk_run(struct blk_io *io, unsigned n, unsigned qd)
{
	unsigned next = 0, inflight = 0, done = 0;
	if (qd > BLK_SLOTS)
		qd = BLK_SLOTS;
	while (done < n) {
		while (next < n && inflight < qd && blk_nfree) {
			unsigned s = blk_free[blk_nfree - 1];
			if (blk_submit(s, &io[next], (uint64_t)s << 32 | next) < 0)
				break;
			blk_nfree--;
			next++, inflight++;
		}
		vq_kick(&blk_q);
		if (!vq_wait(&blk_q, 10000000))
			return -1;
		uint64_t tok;
		uint32_t len;
		int r;
		while ((r = vq_get(&blk_q, &tok, &len)) > 0) {
			unsigned s = (unsigned)(tok >> 32), i = (unsigned)tok;
			io[i].status = blk_status[s];
			io[i].len = len;
			blk_free[blk_nfree++] = (uint16_t)s;
			inflight--, done++;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

static int blk_one(uint32_t type, uint64_t sector, uint64_t pa, uint32_t bytes)
{
	struct blk_io io = { .type = type, .sector = sector, .pa = pa, .bytes = bytes, .segs = 1 };
	if (blk_run(&io, 1, 1) < 0)
		return -1;
	return io.status;
}

static void blk_pattern(uint64_t *w, uint64_t disk_off, uint64_t bytes, uint64_t seed)
{
	uint64_t i0 = disk_off / 8;
	for (uint64_t i = 0; i < bytes / 8; i++)
		w[i] = (i0 + i) * BLK_GOLDEN ^ (seed << 56);
}

/* FNV-1a over 64-bit words: a checksum per MiB that ring 3 computes fast. */
static uint64_t blk_sum(const uint64_t *w, uint64_t bytes)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint64_t i = 0; i < bytes / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static struct blk_io blk_ios[1024];

/* ---- blkbench= -------------------------------------------------------------- */

static uint64_t bench_rng = 0x2545F4914F6CDD1Dull;
static uint64_t bench_next(void)
{
	bench_rng ^= bench_rng << 13;
	bench_rng ^= bench_rng >> 7;
	bench_rng ^= bench_rng << 17;
	return bench_rng;
}

/* Keeps qd requests of bs bytes in flight for ms milliseconds; sequential or
 * random offsets in the first `span` bytes of the disk. */
static void blk_bench_one(const char *name, uint32_t type, bool rnd, uint32_t bs, unsigned qd, uint64_t span,
			  unsigned ms, uint64_t bufpa)
{
	static struct blk_io io[BLK_SLOTS];
	uint64_t blocks = span / bs, pos = 0, reqs = 0, errors = 0;
	unsigned inflight = 0;
	if (qd > BLK_SLOTS)
		qd = BLK_SLOTS;
	uint64_t t0 = vio_now_us(), end = t0 + (uint64_t)ms * 1000;
	bool stop = false;
	while (!stop || inflight) {
		if (vio_now_us() >= end)
			stop = true;
		if (stop && !inflight)
			break;
		while (!stop && inflight < qd && blk_nfree) {
			unsigned s = blk_free[blk_nfree - 1];
			uint64_t b = rnd ? bench_next() % blocks : pos++ % blocks;
			/* buffers shared modulo qd: the data is never looked at */
			io[s] = (struct blk_io){ .type = type, .sector = b * (bs / 512), .pa = bufpa + (uint64_t)(s % qd) * bs,
						 .bytes = bs, .segs = 1 };
			if (blk_submit(s, &io[s], (uint64_t)s << 32 | s) < 0)
				break;
			blk_nfree--;
			inflight++;
		}
		vq_kick(&blk_q);
		if (!vq_wait(&blk_q, 10000000)) {
			u_note("bench virtio-blk %s: timeout with %u in flight (%u slots free, %u descriptors free, %lu requests done)", name,
			       inflight, blk_nfree, blk_q.num_free, reqs);
			return;
		}
		uint64_t tok;
		while (vq_get(&blk_q, &tok, 0) > 0) {
			unsigned s = (unsigned)(tok >> 32);
			errors += blk_status[s] != BLK_S_OK;
			blk_free[blk_nfree++] = (uint16_t)s;
			inflight--, reqs++;
		}
	}
	uint64_t us = vio_now_us() - t0;
	if (!us)
		us = 1;
	uint64_t mibs_x100 = reqs * bs * 100 / us * 1000000 / (1 << 20);
	u_note("bench virtio-blk %s MiB/s=%lu.%02lu IOPS=%lu qd=%u bs=%u reqs=%lu errors=%lu ms=%lu", name,
	       mibs_x100 / 100, mibs_x100 % 100, reqs * 1000000 / us, qd, bs, reqs, errors, us / 1000);
}

static void blk_bench(void)
{
	unsigned qd = vt_opts.qd ? vt_opts.qd : 16;
	if (qd > BLK_SLOTS)
		qd = BLK_SLOTS;
	uint64_t span = blk_capacity * 512;
	if (span > (1ull << 30))
		span = 1ull << 30;
	uint64_t pa;
	if (!vio_dma_alloc((uint64_t)qd << 20, 4096, &pa)) {
		u_note("bench virtio-blk: no DMA memory for %u x 1 MiB", qd);
		return;
	}
	if ((vt_opts.bench & VT_BENCH_SEQ) && span >= (1u << 20)) {
		blk_bench_one("seq-write", BLK_T_OUT, false, 1 << 20, qd, span, vt_opts.bench_ms, pa);
		blk_bench_one("seq-read", BLK_T_IN, false, 1 << 20, qd, span, vt_opts.bench_ms, pa);
	}
	if (vt_opts.bench & VT_BENCH_RAND) {
		blk_bench_one("rand-write", BLK_T_OUT, true, 4096, qd, span, vt_opts.bench_ms, pa);
		blk_bench_one("rand-read", BLK_T_IN, true, 4096, qd, span, vt_opts.bench_ms, pa);
	}
}

/* ---- the test ----------------------------------------------------------------- */

static int blk_open(const char *m, long mode)
{
	struct vdev *d = &blk_dev;
	uint64_t want = 1ull << BLK_F_SIZE_MAX | 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_RO | 1ull << BLK_F_BLK_SIZE |
			1ull << BLK_F_FLUSH;
	if (vio_open(d, VIRTIO_ID_BLOCK, 0, want, vt_opts.vio_flags | (mode == VT_IRQ ? VIO_IRQ : 0)) < 0 ||
	    vio_queue(d, &blk_q, 0, 128) < 0) {
		u_tap(false, "virtio-blk (%s): open: %s", m, d->err);
		if (d->pci_index >= 0)
			vio_reset(d);
		return -1;
	}
	blk_hdrs = vio_dma_alloc(BLK_SLOTS * sizeof(struct blk_hdr), 4096, &blk_hdrs_pa);
	blk_status = vio_dma_alloc(BLK_SLOTS, 64, &blk_status_pa);
	if (!blk_hdrs || !blk_status || vio_driver_ok(d) < 0) {
		u_tap(false, "virtio-blk (%s): set-up: %s", m, blk_hdrs && blk_status ? d->err : "out of DMA memory");
		vio_reset(d);
		return -1;
	}
	blk_nfree = 0;
	for (unsigned s = 0; s < BLK_SLOTS; s++)
		blk_free[blk_nfree++] = (uint16_t)(BLK_SLOTS - 1 - s);
	vio_cfg_read(d, 0, &blk_capacity, 8);
	blk_size_max = blk_seg_max = 0;
	if (d->features & (1ull << BLK_F_SIZE_MAX))
		vio_cfg_read(d, 8, &blk_size_max, 4);
	if (d->features & (1ull << BLK_F_SEG_MAX))
		vio_cfg_read(d, 12, &blk_seg_max, 4);
	return 0;
}

long u_vblk_test(long mode)
{
	struct vdev *d = &blk_dev;
	const char *m = vt_mode_name[mode];
	vio_dma_reset();
	if (blk_open(m, mode) < 0)
		return 1;
	vt_report_open(d, m);
	uint32_t bsize = 0;
	if (d->features & (1ull << BLK_F_BLK_SIZE))
		vio_cfg_read(d, 20, &bsize, 4);
	u_note("virtio-blk %s: capacity %lu sectors (%lu MiB), size_max %u, seg_max %u, blk_size %u, queue %u", m,
	       blk_capacity, blk_capacity >> 11, blk_size_max, blk_seg_max, bsize, blk_q.size);
	uint64_t irq0 = vio_irq_count(d);
	long fails = 0;

	uint64_t bytes = (uint64_t)(vt_opts.blk_mib ? vt_opts.blk_mib : 8) << 20;
	const uint32_t wreq = 256 << 10, rreq = 128 << 10;
	if (bytes / rreq > sizeof(blk_ios) / sizeof(blk_ios[0]))
		bytes = sizeof(blk_ios) / sizeof(blk_ios[0]) * (uint64_t)rreq;
	uint64_t off = (uint64_t)mode * bytes, seed = (uint64_t)mode + 1;
	bool ro = (d->features >> BLK_F_RO) & 1;
	if (ro || blk_capacity * 512 < 2 * bytes + 512) {
		u_tap(false, "virtio-blk (%s): disk unusable for the test: %lu sectors%s (need %lu MiB, writable)", m,
		      blk_capacity, ro ? ", read-only" : "", (2 * bytes + (1 << 20)) >> 20);
		vio_reset(d);
		return 1;
	}
	uint64_t wpa, rpa;
	uint64_t *wbuf = vio_dma_alloc(bytes, 4096, &wpa), *rbuf = vio_dma_alloc(bytes, 4096, &rpa);
	if (!wbuf || !rbuf) {
		u_tap(false, "virtio-blk (%s): out of DMA memory for 2 x %lu MiB", m, bytes >> 20);
		vio_reset(d);
		return 1;
	}
	blk_pattern(wbuf, off, bytes, seed);

	/* write: 256 KiB requests in 4 segments, 16 in flight */
	unsigned n = (unsigned)(bytes / wreq), bad = 0;
	for (unsigned i = 0; i < n; i++)
		blk_ios[i] = (struct blk_io){ .type = BLK_T_OUT, .sector = (off + (uint64_t)i * wreq) / 512,
					      .pa = wpa + (uint64_t)i * wreq, .bytes = wreq, .segs = 4 };
	uint64_t t0 = vio_now_us();
	int r = blk_run(blk_ios, n, 16);
	uint64_t dt = vio_now_us() - t0 + 1;
	for (unsigned i = 0; i < n; i++)
		bad += blk_ios[i].status != BLK_S_OK;
	u_tap(r == 0 && bad == 0, "virtio-blk (%s): wrote %lu MiB at sector %lu: %u requests of %u KiB, %u failed, %lu ms, %lu MiB/s",
	      m, bytes >> 20, off / 512, n, wreq >> 10, bad, dt / 1000, (bytes >> 20) * 1000000 / dt);
	fails += r != 0 || bad;

	if (d->features & (1ull << BLK_F_FLUSH)) {
		int st = blk_one(BLK_T_FLUSH, 0, 0, 0);
		u_tap(st == BLK_S_OK, "virtio-blk (%s): flush: status %d", m, st);
		fails += st != BLK_S_OK;
	} else {
		u_tap(true, "virtio-blk (%s): flush # SKIP the device does not offer VIRTIO_BLK_F_FLUSH", m);
	}

	/* read back: 128 KiB requests in 2 segments, 32 in flight */
	n = (unsigned)(bytes / rreq);
	bad = 0;
	unsigned badlen = 0;
	for (unsigned i = 0; i < n; i++)
		blk_ios[i] = (struct blk_io){ .type = BLK_T_IN, .sector = (off + (uint64_t)i * rreq) / 512,
					      .pa = rpa + (uint64_t)i * rreq, .bytes = rreq, .segs = 2 };
	t0 = vio_now_us();
	r = blk_run(blk_ios, n, 32);
	dt = vio_now_us() - t0 + 1;
	for (unsigned i = 0; i < n; i++) {
		bad += blk_ios[i].status != BLK_S_OK;
		badlen += blk_ios[i].len != rreq + 1; /* data + status byte written */
	}
	u_tap(r == 0 && bad == 0 && badlen == 0,
	      "virtio-blk (%s): read %lu MiB back: %u requests of %u KiB, %u failed, %u wrong used len, %lu ms, %lu MiB/s",
	      m, bytes >> 20, n, rreq >> 10, bad, badlen, dt / 1000, (bytes >> 20) * 1000000 / dt);
	fails += r != 0 || bad || badlen;
	unsigned mib = (unsigned)(bytes >> 20), match = 0;
	int first = -1;
	for (unsigned i = 0; i < mib; i++) {
		bool ok = blk_sum(wbuf + (uint64_t)i * 131072, 1 << 20) == blk_sum(rbuf + (uint64_t)i * 131072, 1 << 20);
		match += ok;
		if (!ok && first < 0)
			first = (int)i;
	}
	u_tap(match == mib, "virtio-blk (%s): data verified: %u of %u MiB checksums match, first bad MiB %d", m, match,
	      mib, first);
	fails += match != mib;
	u_note("virtio-blk %s: region offset %lu bytes %lu fnv1a64 0x%lx", m, off, bytes, blk_sum(rbuf, bytes));

	/* get-id: 20 bytes, NUL-padded */
	uint64_t idpa;
	char *id = vio_dma_alloc(64, 64, &idpa);
	int st = id ? blk_one(BLK_T_GET_ID, 0, idpa, 20) : -1;
	bool printable = true;
	for (int i = 0; id && i < 20 && id[i]; i++)
		printable = printable && id[i] >= 32 && id[i] < 127;
	if (id)
		id[20] = 0;
	u_tap(st == BLK_S_OK && printable, "virtio-blk (%s): get-id: status %d, id \"%s\"", m, st, id ? id : "");
	fails += !(st == BLK_S_OK && printable);

	/* one sector at the capacity: past the end */
	st = blk_one(BLK_T_IN, blk_capacity, rpa, 512);
	u_tap(st == BLK_S_IOERR, "virtio-blk (%s): read beyond the capacity fails with IOERR: status %d at sector %lu",
	      m, st, blk_capacity);
	fails += st != BLK_S_IOERR;

	vt_report_irqs(d, m, irq0);
	u_note("virtio-blk %s: %lu kicks, %lu suppressed, %lu chains", m, blk_q.kicks, blk_q.kicks_suppressed,
	       blk_q.added);
	if (vt_opts.bench && mode == VT_POLL)
		blk_bench();
	vio_reset(d);
	return fails ? 1 : 0;
}
