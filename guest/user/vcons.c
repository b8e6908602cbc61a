/*
 * vcons: test=virtio-console — the ring-3 console driver, an echo. Port 0 of a
 * virtio console without MULTIPORT: receiveq 0, transmitq 1. Every line read
 * from the host is sent back; the line "END" ends a phase. In mode both, the
 * first phase polls and the second, on the same device with no reset (so no
 * byte already taken from the host is lost), sleeps on MSI-X interrupts.
 */
#include "usys.h"
#include "virtio.h"
#include "vtest.h"

#define CONS_RXBUF 64
#define CONS_TXBUF 256
#define CONS_Q 32
#define CONS_TIMEOUT_US 30000000ull

static struct vdev cons_dev;
static struct vq cons_rx, cons_tx;
static uint8_t *cons_rxmem, *cons_txmem;
static uint64_t cons_rxpa, cons_txpa;
static char cons_line[CONS_TXBUF];
static unsigned cons_len;

static void cons_post(uint16_t slot)
{
	struct vq_sg sg = { cons_rxpa + (uint64_t)slot * CONS_RXBUF, CONS_RXBUF };
	vq_add(&cons_rx, &sg, 0, 1, slot);
}

/* Sends s; waits (in the current mode) for a free tx slot. 0 or -1. */
static int cons_write(const char *s, unsigned n)
{
	uint64_t t0 = vio_now_us();
	while (n) {
		while (vq_get(&cons_tx, 0, 0) > 0)
			;
		if (cons_tx.num_free == 0) {
			if (vio_now_us() - t0 > 5000000)
				return -1;
			vq_wait(&cons_tx, 100000);
			continue;
		}
		unsigned k = n < CONS_TXBUF ? n : CONS_TXBUF;
		uint16_t slot = cons_tx.free_head; /* one-descriptor chains */
		u_copy(cons_txmem + (uint64_t)slot * CONS_TXBUF, s, k);
		struct vq_sg sg = { cons_txpa + (uint64_t)slot * CONS_TXBUF, k };
		vq_add(&cons_tx, &sg, 1, 0, slot);
		vq_kick(&cons_tx);
		s += k, n -= k;
	}
	return 0;
}

static bool cons_drain_tx(void)
{
	uint64_t t0 = vio_now_us();
	while (cons_tx.num_free < cons_tx.size && vio_now_us() - t0 < 5000000) {
		while (vq_get(&cons_tx, 0, 0) > 0)
			;
		if (cons_tx.num_free < cons_tx.size)
			vq_wait(&cons_tx, 100000);
	}
	return cons_tx.num_free == cons_tx.size;
}

static bool line_is(const char *l, unsigned n, const char *w)
{
	unsigned i = 0;
	for (; i < n && w[i]; i++)
		if (l[i] != w[i])
			return false;
	return i == n && !w[i];
}

/* One phase: echo lines until "END". Returns lines echoed, -1 on timeout. */
static int cons_phase(const char *m, unsigned *bytes)
{
	int lines = 0;
	uint64_t t0 = vio_now_us();
	for (;;) {
		uint64_t slot;
		uint32_t len;
		int r;
		bool any = false;
		while ((r = vq_get(&cons_rx, &slot, &len)) > 0) {
			any = true;
			const uint8_t *p = cons_rxmem + slot * CONS_RXBUF;
			if (len > CONS_RXBUF)
				len = CONS_RXBUF;
			for (uint32_t i = 0; i < len; i++) {
				char c = (char)p[i];
				*bytes += 1;
				if (c == '\r')
					continue;
				if (c != '\n') {
					if (cons_len < sizeof(cons_line) - 1)
						cons_line[cons_len++] = c;
					continue;
				}
				/* Bytes after END in this buffer belong to the next phase: keep them. */
				if (line_is(cons_line, cons_len, "END")) {
					cons_len = 0;
					unsigned rest = len - i - 1;
					if (rest) {
						u_copy(cons_line, p + i + 1, rest < CONS_RXBUF ? rest : CONS_RXBUF);
						cons_len = rest;
						/* a complete line in the rest is handled by the next phase's scan */
					}
					cons_post((uint16_t)slot);
					vq_kick(&cons_rx);
					return lines;
				}
				cons_line[cons_len++] = '\n';
				if (cons_write(cons_line, cons_len) < 0)
					return -1;
				lines++;
				cons_len = 0;
			}
			cons_post((uint16_t)slot);
		}
		if (r < 0)
			return -1;
		if (any)
			vq_kick(&cons_rx);
		if (vio_now_us() - t0 > CONS_TIMEOUT_US) {
			u_note("virtio-console %s: timeout, partial line \"%s\" (%u bytes)", m, cons_len ? "..." : "",
			       cons_len);
			return -1;
		}
		vq_wait(&cons_rx, 200000);
	}
}

/* A line carried over from the previous phase (after its END) is echoed
 * first, as if it had just arrived. Returns lines handled, -1 on error. */
static int cons_carry(bool *ended)
{
	int lines = 0;
	*ended = false;
	for (;;) {
		unsigned i = 0;
		while (i < cons_len && cons_line[i] != '\n')
			i++;
		if (i == cons_len)
			return lines;
		unsigned n = i && cons_line[i - 1] == '\r' ? i - 1 : i;
		unsigned rest = cons_len - i - 1;
		if (line_is(cons_line, n, "END")) {
			u_copy(cons_line, cons_line + i + 1, rest);
			cons_len = rest;
			*ended = true;
			return lines;
		}
		if (cons_write(cons_line, i + 1) < 0)
			return -1;
		lines++;
		u_copy(cons_line, cons_line + i + 1, rest);
		cons_len = rest;
	}
}

long u_vcons_test(long mode)
{
	struct vdev *d = &cons_dev;
	const char *m = vt_mode_name[mode];
	vio_dma_reset();
	cons_len = 0;
	if (vio_open(d, VIRTIO_ID_CONSOLE, 0, 0, vt_opts.vio_flags | (mode == VT_IRQ ? VIO_IRQ : 0)) < 0 ||
	    vio_queue(d, &cons_rx, 0, CONS_Q) < 0 || vio_queue(d, &cons_tx, 1, CONS_Q) < 0) {
		u_tap(false, "virtio-console (%s): open: %s", m, d->err);
		if (d->pci_index >= 0)
			vio_reset(d);
		return 1;
	}
	cons_rxmem = vio_dma_alloc((uint64_t)cons_rx.size * CONS_RXBUF, 4096, &cons_rxpa);
	cons_txmem = vio_dma_alloc((uint64_t)cons_tx.size * CONS_TXBUF, 4096, &cons_txpa);
	if (!cons_rxmem || !cons_txmem) {
		u_tap(false, "virtio-console (%s): out of DMA memory", m);
		vio_reset(d);
		return 1;
	}
	for (uint16_t i = 0; i < cons_rx.size; i++)
		cons_post(i);
	if (vio_driver_ok(d) < 0) {
		u_tap(false, "virtio-console (%s): %s", m, d->err);
		vio_reset(d);
		return 1;
	}
	vq_kick(&cons_rx);
	vt_report_open(d, m);
	long fails = 0;
	unsigned phases = mode == VT_BOTH ? 2 : 1;
	for (unsigned p = 0; p < phases; p++) {
		long pm = mode == VT_BOTH ? (p ? VT_IRQ : VT_POLL) : mode;
		const char *pn = vt_mode_name[pm];
		if (pm == VT_IRQ && !d->msix_table) {
			u_tap(false, "virtio-console (%s): no MSI-X table for interrupt mode", pn);
			fails++;
			break;
		}
		vio_set_irq(d, pm == VT_IRQ);
		uint64_t irq0 = vio_irq_count(d);
		char hello[64];
		int hn = u_fmt(hello, sizeof(hello), "virtio-console echo (%s): send lines, END ends\n", pn);
		cons_write(hello, (unsigned)hn);
		bool ended;
		unsigned bytes = 0;
		int lines = cons_carry(&ended);
		if (lines >= 0 && !ended) {
			int more = cons_phase(pn, &bytes);
			lines = more < 0 ? -1 : lines + more;
		}
		bool drained = cons_drain_tx();
		u_tap(lines > 0 && drained, "virtio-console (%s): echoed lines until END: %d lines, %u bytes received",
		      pn, lines, bytes);
		fails += !(lines > 0 && drained);
		/* the interrupt check: by this phase's own mode */
		bool was = d->irq;
		d->irq = pm == VT_IRQ;
		vt_report_irqs(d, pn, irq0);
		d->irq = was;
	}
	u_note("virtio-console: rx %lu kicks (%lu suppressed), tx %lu kicks (%lu suppressed)", cons_rx.kicks,
	       cons_rx.kicks_suppressed, cons_tx.kicks, cons_tx.kicks_suppressed);
	vio_reset(d);
	return fails ? 1 : 0;
}

/* test=virtio-console-stall: the host's stdout takes no more of the
 * console's output (the test makes it a small pipe nobody reads). The
 * console's transmit ring is filled past what stdout takes, then another
 * device on hvmm's event loop — virtio-rng — is asked for bytes: it must
 * answer although the console's output waits. Then both are reset, the
 * console with chains still unanswered. */
#define STALL_RNG_BYTES 64u
#define STALL_RNG_TIMEOUT_US 10000000ull

long u_vcons_stall_test(long mode)
{
	const char *m = vt_mode_name[mode];
	struct vdev *d = &cons_dev;
	static struct vdev rng;
	static struct vq rng_q;
	vio_dma_reset();
	if (vio_open(d, VIRTIO_ID_CONSOLE, 0, 0, vt_opts.vio_flags) < 0 || vio_queue(d, &cons_rx, 0, CONS_Q) < 0 ||
	    vio_queue(d, &cons_tx, 1, CONS_Q) < 0 || vio_driver_ok(d) < 0) {
		u_tap(false, "virtio-console-stall (%s): console: %s", m, d->err);
		return 1;
	}
	cons_txmem = vio_dma_alloc((uint64_t)cons_tx.size * CONS_TXBUF, 4096, &cons_txpa);
	uint64_t rng_pa;
	uint8_t *rng_buf = vio_dma_alloc(STALL_RNG_BYTES, 64, &rng_pa);
	if (!cons_txmem || !rng_buf) {
		u_tap(false, "virtio-console-stall (%s): out of DMA memory", m);
		vio_reset(d);
		return 1;
	}
	unsigned chains = cons_tx.size;
	for (uint16_t i = 0; i < chains; i++) {
		char *b = (char *)cons_txmem + (uint64_t)i * CONS_TXBUF;
		for (unsigned k = 0; k < CONS_TXBUF - 1; k++)
			b[k] = (char)('a' + (i + k) % 26);
		b[CONS_TXBUF - 1] = '\n';
		struct vq_sg sg = { cons_txpa + (uint64_t)i * CONS_TXBUF, CONS_TXBUF };
		vq_add(&cons_tx, &sg, 1, 0, i);
	}
	vq_kick(&cons_tx);
	u_note("virtio-console-stall: %u bytes of output posted in %u chains", chains * CONS_TXBUF, chains);

	if (vio_open(&rng, VIRTIO_ID_RNG, 0, 0, vt_opts.vio_flags) < 0 || vio_queue(&rng, &rng_q, 0, 8) < 0 ||
	    vio_driver_ok(&rng) < 0) {
		u_tap(false, "virtio-console-stall (%s): virtio-rng: %s", m, rng.err);
		vio_reset(d);
		return 1;
	}
	struct vq_sg sg = { rng_pa, STALL_RNG_BYTES };
	vq_add(&rng_q, &sg, 0, 1, 0);
	uint64_t t0 = vio_now_us();
	vq_kick(&rng_q);
	uint32_t len = 0;
	int got = 0;
	while (got == 0 && vio_now_us() - t0 < STALL_RNG_TIMEOUT_US) {
		got = vq_get(&rng_q, 0, &len);
		if (got == 0)
			vq_wait(&rng_q, 100000);
	}
	uint64_t dt = vio_now_us() - t0;
	unsigned answered = 0;
	while (vq_get(&cons_tx, 0, 0) > 0)
		answered++;
	u_tap(got > 0 && len > 0 && len <= STALL_RNG_BYTES,
	      "virtio-console-stall (%s): virtio-rng answered (%u bytes in %lu us) while the console's output waited",
	      m, got > 0 ? len : 0, dt);
	u_tap(answered < chains, "virtio-console-stall (%s): the console held its output back: %u of %u chains answered",
	      m, answered, chains);
	vio_reset(&rng);
	vio_reset(d);
	return 0;
}
