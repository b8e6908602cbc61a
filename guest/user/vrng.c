/*
 * vrng: test=virtio-rng — the ring-3 entropy driver. Reads the same amount
 * twice through 4 KiB device-writable buffers, all in flight at once, and
 * checks that what came back looks random.
 */
#include "usys.h"
#include "virtio.h"
#include "vtest.h"

#define RNG_BYTES (64u * 1024)
#define RNG_SEG 4096u
#define RNG_SEGS (RNG_BYTES / RNG_SEG)

static struct vdev rng_dev;
static struct vq rng_q;

/* Fills buf (physical pa) completely; a short answer is asked again for the
 * rest of its segment. Returns the bytes received, *reqs the requests made. */
static uint64_t rng_fill(uint8_t *buf, uint64_t pa, unsigned *reqs, bool *bad)
{
	static uint32_t filled[RNG_SEGS];
	unsigned pending = 0, done = 0;
	uint64_t total = 0;
	for (unsigned s = 0; s < RNG_SEGS; s++)
		filled[s] = 0;
	unsigned next = 0;
	uint64_t t0 = vio_now_us();
	while (done < RNG_SEGS && vio_now_us() - t0 < 10000000) {
		while (next < RNG_SEGS) { /* as many segments in flight as the ring holds */
			struct vq_sg sg = { pa + (uint64_t)next * RNG_SEG, RNG_SEG };
			if (vq_add(&rng_q, &sg, 0, 1, next) < 0)
				break;
			next++, pending++, (*reqs)++;
		}
		vq_kick(&rng_q);
		if (!vq_wait(&rng_q, 1000000))
			continue;
		uint64_t s;
		uint32_t len;
		int r;
		while ((r = vq_get(&rng_q, &s, &len)) > 0) {
			pending--;
			if (len > RNG_SEG - filled[s]) {
				*bad = true;
				len = RNG_SEG - filled[s];
			}
			filled[s] += len;
			total += len;
			if (filled[s] == RNG_SEG) {
				done++;
				continue;
			}
			struct vq_sg sg = { pa + s * RNG_SEG + filled[s], RNG_SEG - filled[s] };
			vq_add(&rng_q, &sg, 0, 1, s); /* room: this chain was just freed */
			pending++, (*reqs)++;
		}
		if (r < 0) {
			*bad = true;
			break;
		}
	}
	(void)buf;
	return total;
}

long u_vrng_test(long mode)
{
	const char *m = vt_mode_name[mode];
	struct vdev *d = &rng_dev;
	vio_dma_reset();
	if (vio_open(d, VIRTIO_ID_RNG, 0, 0, vt_opts.vio_flags | (mode == VT_IRQ ? VIO_IRQ : 0)) < 0 ||
	    vio_queue(d, &rng_q, 0, 64) < 0 || vio_driver_ok(d) < 0) {
		u_tap(false, "virtio-rng (%s): open: %s", m, d->err);
		if (d->pci_index >= 0)
			vio_reset(d);
		return 1;
	}
	vt_report_open(d, m);
	uint64_t irq0 = vio_irq_count(d);
	uint64_t pa[2];
	uint8_t *buf[2];
	buf[0] = vio_dma_alloc(RNG_BYTES, 4096, &pa[0]);
	buf[1] = vio_dma_alloc(RNG_BYTES, 4096, &pa[1]);
	if (!buf[0] || !buf[1]) {
		u_tap(false, "virtio-rng (%s): out of DMA memory", m);
		vio_reset(d);
		return 1;
	}
	unsigned reqs = 0;
	bool bad = false;
	uint64_t t0 = vio_now_us();
	uint64_t got0 = rng_fill(buf[0], pa[0], &reqs, &bad);
	uint64_t got1 = rng_fill(buf[1], pa[1], &reqs, &bad);
	uint64_t dt = vio_now_us() - t0;
	u_tap(got0 == RNG_BYTES && got1 == RNG_BYTES && !bad,
	      "virtio-rng (%s): two reads of %u bytes complete: %lu + %lu bytes in %u requests, %lu us, queue size %u",
	      m, RNG_BYTES, got0, got1, reqs, dt, rng_q.size);

	/* Each byte value should appear 256 +- 16 times in 64 KiB; [128, 400]
	 * fails only for broken data (or with odds far below 1e-12). */
	static uint32_t hist[256];
	for (unsigned i = 0; i < 256; i++)
		hist[i] = 0;
	uint64_t zero = 0;
	for (unsigned i = 0; i < RNG_BYTES; i++) {
		hist[buf[0][i]]++;
		zero += buf[0][i] == 0;
	}
	uint32_t lo = ~0u, hi = 0;
	for (unsigned i = 0; i < 256; i++) {
		lo = hist[i] < lo ? hist[i] : lo;
		hi = hist[i] > hi ? hist[i] : hi;
	}
	u_tap(lo >= 128 && hi <= 400 && zero < RNG_BYTES,
	      "virtio-rng (%s): bytes look random: each value %u..%u times in %u bytes", m, lo, hi, RNG_BYTES);
	unsigned same = 0;
	for (unsigned i = 0; i < RNG_BYTES; i++)
		same += buf[0][i] == buf[1][i];
	u_tap(same < RNG_BYTES / 64, "virtio-rng (%s): the two reads differ: %u equal bytes at the same offset", m,
	      same);
	u_note("virtio-rng %s: %lu kicks, %lu suppressed", m, rng_q.kicks, rng_q.kicks_suppressed);
	vt_report_irqs(d, m, irq0);
	vio_reset(d);
	return 0;
}
