/*
 * uhostile: test=virtio-hostile — a ring-3 driver that breaks the virtio
 * rules on purpose. For each device (virtio-rng, virtio-blk,
 * virtio-console) and
 * each case it sets the device up with the driver library, then hands it a
 * malformed ring by writing descriptors and avail entries directly, and checks
 * what the device did: DEVICE_NEEDS_RESET (0x40) in device_status, or the
 * request failed. Then it resets the device (status 0), sets it up again and
 * proves it still serves a good request. The VMM must stay up throughout: the
 * run ends with the normal debug-exit, and hvmm's --stats-json counts the bad
 * chains, resets and early notifies (tests/cases_hostile.py).
 *
 * Polling mode only: no MSI-X vector is unmasked, so no interrupt can arrive
 * for a queue the device gave up on.
 */
#include "usys.h"
#include "virtio.h"
#include "vtest.h"

/* common configuration (virtio 1.2 §4.1.4.3); the library keeps its own copy private */
#define HC_STATUS 0x14
#define HC_Q_SELECT 0x16
#define HC_Q_SIZE 0x18
#define HC_Q_ENABLE 0x1c
#define HC_Q_DESC 0x20
#define HC_Q_AVAIL 0x28
#define HC_Q_USED 0x30

#define HS_NEEDS_RESET 0x40
#define HS_F_NEXT 1
#define HS_F_WRITE 2
#define HS_F_INDIRECT 4

#define HS_QSIZE 8          /* queue size the cases use (a chain of 9 cannot be legal) */
#define HS_WAIT_US 300000   /* how long a device may take to react */
#define HS_SCRATCH 0x10000  /* buffers and indirect tables for the cases */

struct hdev {
	uint16_t type;
	const char *name;
	unsigned qidx; /* the queue the cases use: one the device pops on a kick */
	struct vdev d;
	struct vq q;
	uint8_t *scratch;
	uint64_t scratch_pa;
};

#define HS_NDEV 3
static struct hdev hs_devs[HS_NDEV] = {
	{ .type = VIRTIO_ID_RNG, .name = "virtio-rng", .qidx = 0 },
	{ .type = VIRTIO_ID_BLOCK, .name = "virtio-blk", .qidx = 0 },
	/* transmitq0: the receive queue is only popped when input arrives */
	{ .type = VIRTIO_ID_CONSOLE, .name = "virtio-console", .qidx = 1 },
};

/* What a good console request prints: a whole TAP comment line, so it
 * cannot split a check line (the guest waits for it before printing more). */
static const char hs_cons_line[] = "# virtio-hostile: console transmit works\n";

static uint64_t hs_ram_top; /* first guest-physical address above RAM (below 4 GiB) */

/* ---- set-up and a good request ---------------------------------------------- */

/* Open the device and reach FEATURES_OK (no queue yet), DMA memory reused. */
static int hs_open(struct hdev *h)
{
	vio_dma_reset();
	if (vio_open(&h->d, h->type, 0, 0, 0) < 0)
		return -1;
	h->scratch = vio_dma_alloc(HS_SCRATCH, 4096, &h->scratch_pa);
	return h->scratch ? 0 : -1;
}

/* Open, queue 0, DRIVER_OK: the device is live. */
static int hs_setup(struct hdev *h)
{
	if (hs_open(h) < 0 || vio_queue(&h->d, &h->q, h->qidx, HS_QSIZE) < 0 || vio_driver_ok(&h->d) < 0)
		return -1;
	return 0;
}

static uint16_t hs_used_idx(struct vq *q)
{
	return ((volatile uint16_t *)q->used)[1];
}

/* Queue one well-formed request with the library (not kicked). */
static int hs_add_good(struct hdev *h)
{
	struct vq_sg sg[3];
	if (h->type == VIRTIO_ID_RNG) {
		sg[0] = (struct vq_sg){ h->scratch_pa + 0x8000, 64 };
		return vq_add(&h->q, sg, 0, 1, 1);
	}
	if (h->type == VIRTIO_ID_CONSOLE) {
		u_copy(h->scratch + 0x8000, hs_cons_line, sizeof(hs_cons_line) - 1);
		sg[0] = (struct vq_sg){ h->scratch_pa + 0x8000, sizeof(hs_cons_line) - 1 };
		return vq_add(&h->q, sg, 1, 0, 1);
	}
	/* virtio-blk: read sector 0 (header, 512 data bytes, status byte) */
	volatile uint32_t *hdr = (volatile uint32_t *)(h->scratch + 0x9000);
	hdr[0] = 0; /* VIRTIO_BLK_T_IN */
	hdr[1] = 0;
	hdr[2] = 0; /* sector, 64 bits */
	hdr[3] = 0;
	h->scratch[0x9100] = 0xff;
	sg[0] = (struct vq_sg){ h->scratch_pa + 0x9000, 16 };
	sg[1] = (struct vq_sg){ h->scratch_pa + 0x8000, 512 };
	sg[2] = (struct vq_sg){ h->scratch_pa + 0x9100, 1 };
	return vq_add(&h->q, sg, 1, 2, 1);
}

/* Wait for the request added by hs_add_good; true if it completed well. */
static bool hs_wait_good(struct hdev *h, char *why, unsigned whylen)
{
	if (!vq_wait(&h->q, 1000000)) {
		u_fmt(why, whylen, "no completion in 1 s (status 0x%x)", vio_status(&h->d));
		return false;
	}
	uint64_t tok = 0;
	uint32_t len = 0;
	int r = vq_get(&h->q, &tok, &len);
	if (r != 1) {
		u_fmt(why, whylen, "bad used entry (%d)", r);
		return false;
	}
	if (h->type == VIRTIO_ID_RNG && (len == 0 || len > 64)) {
		u_fmt(why, whylen, "rng returned %u bytes", len);
		return false;
	}
	if (h->type == VIRTIO_ID_BLOCK && (h->scratch[0x9100] != 0 || len < 1)) {
		u_fmt(why, whylen, "blk status %u, used len %u", h->scratch[0x9100], len);
		return false;
	}
	return true;
}

/* A fresh set-up and one good request: the device recovered. */
static bool hs_good(struct hdev *h, char *why, unsigned whylen)
{
	if (hs_setup(h) < 0) {
		u_fmt(why, whylen, "set-up failed: %s", h->d.err);
		return false;
	}
	if (hs_add_good(h) < 0) {
		u_fmt(why, whylen, "no room in a fresh queue");
		return false;
	}
	vq_kick(&h->q);
	bool ok = hs_wait_good(h, why, whylen);
	vio_reset(&h->d);
	return ok;
}

/* ---- malformed rings ---------------------------------------------------------- */

static void hs_desc(volatile struct vq_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

/* Publish head in the avail ring, move avail->idx by `bump`, and kick. */
static void hs_offer(struct vq *q, uint16_t head, uint16_t bump)
{
	volatile uint16_t *av = q->avail;
	av[2 + q->avail_idx % q->size] = head;
	vio_mb();
	q->avail_idx = (uint16_t)(q->avail_idx + bump);
	av[1] = q->avail_idx;
	vio_mb();
	mmio_w16(q->notify, q->index);
}

enum hs_kind { HS_CHAIN, HS_RING, HS_QSIZE_BAD, HS_EARLY };

struct hs_case {
	const char *what;
	enum hs_kind kind;
	/* HS_CHAIN: writes descriptors (and tables in scratch), returns the head
	 * to offer; *bump is how far avail->idx moves (1 normally). */
	uint16_t (*build)(struct hdev *h, uint16_t *bump);
};

#define W (HS_F_WRITE)
#define BUF(h, off) ((h)->scratch_pa + (off))

static uint16_t c_loop(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W | HS_F_NEXT, 1);
	hs_desc(h->q.desc, 1, BUF(h, 64), 64, W | HS_F_NEXT, 0);
	return 0;
}

static uint16_t c_longer(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	/* every descriptor of the queue in one chain, the last pointing back to
	 * the first: HS_QSIZE + 1 descriptors can only be a loop */
	for (unsigned i = 0; i < HS_QSIZE; i++)
		hs_desc(h->q.desc, i, BUF(h, 64 * i), 64, W | HS_F_NEXT, (uint16_t)((i + 1) % HS_QSIZE));
	return 3;
}

static uint16_t c_next_range(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W | HS_F_NEXT, HS_QSIZE + 5);
	return 0;
}

static uint16_t c_head_range(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W, 0);
	return 0x7fff; /* head index beyond the queue */
}

static uint16_t c_pci_hole(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	/* the device's own registers: DMA into MMIO is not RAM */
	uint64_t bar = h->d.pci.bar[h->d.pci.vcap[PCI_VIRTIO_COMMON - 1].bar].phys;
	hs_desc(h->q.desc, 0, bar ? bar : 0xc0000000ull, 64, W, 0);
	return 0;
}

static uint16_t c_hole_start(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, 0xc0000000ull, 4096, W, 0);
	return 0;
}

static uint16_t c_above_ram(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, 1ull << 40, 64, W, 0);
	return 0;
}

static uint16_t c_at_top(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, hs_ram_top, 16, W, 0);
	return 0;
}

static uint16_t c_past_top(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, hs_ram_top - 16, 4096, W, 0);
	return 0;
}

static uint16_t c_huge_len(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	/* virtio-rng on QEMU spends ~20 s mapping a 4 GiB buffer before it gives
	 * up, so rng gets 256 MiB (still twice this guest's RAM) */
	hs_desc(h->q.desc, 0, BUF(h, 0), h->type == VIRTIO_ID_RNG ? 0x10000000u : 0xffffffffu, W, 0);
	return 0;
}

static uint16_t c_wrap(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	/* addr + len wraps past 2^64 to a small (RAM) address */
	hs_desc(h->q.desc, 0, 0xfffffffffffff000ull, 0x2000, W, 0);
	return 0;
}

static uint16_t c_wrap_chain(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W | HS_F_NEXT, 1);
	hs_desc(h->q.desc, 1, ~0ull, 2, W, 0);
	return 0;
}

static uint16_t c_order(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	/* a device-readable buffer after a device-writable one */
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W | HS_F_NEXT, 1);
	hs_desc(h->q.desc, 1, BUF(h, 64), 64, 0, 0);
	return 0;
}

static uint16_t c_ind_len(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	volatile struct vq_desc *t = (volatile struct vq_desc *)(h->scratch + 0x1000);
	hs_desc(t, 0, BUF(h, 0), 64, W, 0);
	hs_desc(h->q.desc, 0, BUF(h, 0x1000), 17, HS_F_INDIRECT, 0); /* not a multiple of 16 */
	return 0;
}

static uint16_t c_ind_zero(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, BUF(h, 0x1000), 0, HS_F_INDIRECT, 0);
	return 0;
}

static uint16_t c_ind_nested(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	volatile struct vq_desc *t = (volatile struct vq_desc *)(h->scratch + 0x1000);
	volatile struct vq_desc *t2 = (volatile struct vq_desc *)(h->scratch + 0x2000);
	hs_desc(t2, 0, BUF(h, 0), 64, W, 0);
	hs_desc(t, 0, BUF(h, 0x2000), 16, HS_F_INDIRECT, 0);
	hs_desc(h->q.desc, 0, BUF(h, 0x1000), 16, HS_F_INDIRECT, 0);
	return 0;
}

static uint16_t c_ind_next(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	volatile struct vq_desc *t = (volatile struct vq_desc *)(h->scratch + 0x1000);
	hs_desc(t, 0, BUF(h, 0), 64, W, 0);
	hs_desc(h->q.desc, 0, BUF(h, 0x1000), 16, HS_F_INDIRECT | HS_F_NEXT, 1);
	hs_desc(h->q.desc, 1, BUF(h, 64), 64, W, 0);
	return 0;
}

static uint16_t c_ind_loop(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	volatile struct vq_desc *t = (volatile struct vq_desc *)(h->scratch + 0x1000);
	for (unsigned i = 0; i < 4; i++)
		hs_desc(t, i, BUF(h, 64 * i), 64, W | HS_F_NEXT, (uint16_t)((i + 1) % 4));
	hs_desc(h->q.desc, 0, BUF(h, 0x1000), 64, HS_F_INDIRECT, 0);
	return 0;
}

static uint16_t c_ind_outside(struct hdev *h, uint16_t *bump)
{
	(void)bump;
	hs_desc(h->q.desc, 0, hs_ram_top - 16, 64, HS_F_INDIRECT, 0); /* table runs past RAM */
	return 0;
}

static uint16_t c_idx_jump(struct hdev *h, uint16_t *bump)
{
	hs_desc(h->q.desc, 0, BUF(h, 0), 64, W, 0);
	*bump = 1000; /* avail->idx far more than the queue size ahead */
	return 0;
}

static const struct hs_case hs_cases[] = {
	{ "looping descriptor chain", HS_CHAIN, c_loop },
	{ "chain longer than the queue", HS_CHAIN, c_longer },
	{ "next index beyond the queue", HS_CHAIN, c_next_range },
	{ "avail head beyond the queue", HS_CHAIN, c_head_range },
	{ "buffer in the PCI hole (the device's own BAR)", HS_CHAIN, c_pci_hole },
	{ "buffer at the PCI hole start", HS_CHAIN, c_hole_start },
	{ "buffer above RAM (1 TiB)", HS_CHAIN, c_above_ram },
	{ "buffer at the top of RAM", HS_CHAIN, c_at_top },
	{ "buffer running past the top of RAM", HS_CHAIN, c_past_top },
	{ "buffer of 4 GiB - 1 (rng: 256 MiB) from RAM", HS_CHAIN, c_huge_len },
	{ "buffer wrapping 2^64", HS_CHAIN, c_wrap },
	{ "2-byte buffer at 2^64 - 1", HS_CHAIN, c_wrap_chain },
	{ "readable buffer after a writable one", HS_CHAIN, c_order },
	{ "indirect table of 17 bytes", HS_CHAIN, c_ind_len },
	{ "indirect table of 0 bytes", HS_CHAIN, c_ind_zero },
	{ "nested indirect table", HS_CHAIN, c_ind_nested },
	{ "indirect descriptor with NEXT", HS_CHAIN, c_ind_next },
	{ "loop inside an indirect table", HS_CHAIN, c_ind_loop },
	{ "indirect table past the top of RAM", HS_CHAIN, c_ind_outside },
	{ "avail idx 1000 ahead", HS_CHAIN, c_idx_jump },
	{ "rings outside RAM", HS_RING, 0 },
	{ "queue size not a power of two / above the maximum", HS_QSIZE_BAD, 0 },
	{ "notify before DRIVER_OK", HS_EARLY, 0 },
};

/* Wait until the device sets NEEDS_RESET or returns a used entry. */
static uint8_t hs_react(struct hdev *h, uint16_t used0, bool *used)
{
	uint64_t t0 = vio_now_us();
	uint8_t s;
	*used = false;
	do {
		s = vio_status(&h->d);
		if (s & HS_NEEDS_RESET)
			return s;
		if (hs_used_idx(&h->q) != used0) {
			*used = true;
			return s;
		}
	} while (vio_now_us() - t0 < HS_WAIT_US);
	return s;
}

/* A bad chain: NEEDS_RESET, or a failed request (used entry with nothing written). */
static bool hs_run_chain(struct hdev *h, const struct hs_case *c, char *what, unsigned len)
{
	if (hs_setup(h) < 0) {
		u_fmt(what, len, "set-up failed: %s", h->d.err);
		return false;
	}
	uint16_t bump = 1;
	uint16_t head = c->build(h, &bump);
	uint16_t used0 = hs_used_idx(&h->q);
	hs_offer(&h->q, head, bump);
	bool used;
	uint8_t s = hs_react(h, used0, &used);
	if (s & HS_NEEDS_RESET) {
		u_fmt(what, len, "DEVICE_NEEDS_RESET (status 0x%x)", s);
		return true;
	}
	if (used) {
		uint32_t ulen = ((volatile uint32_t *)h->q.used)[2 + 2 * (used0 % h->q.size)];
		/* rng: nothing written; blk: an error status; a console transmit
		 * has no way to fail a request */
		bool failed = h->type == VIRTIO_ID_RNG     ? ulen == 0 :
			      h->type == VIRTIO_ID_BLOCK ? h->scratch[0x9100] != 0 : false;
		u_fmt(what, len, "request completed, used len %u (%s)", ulen, failed ? "failed" : "NOT failed");
		return failed;
	}
	u_fmt(what, len, "no reaction in %u ms (status 0x%x)", HS_WAIT_US / 1000, s);
	return false;
}

/* Rings outside RAM: enabling the queue must not succeed quietly. */
static bool hs_run_ring(struct hdev *h, char *what, unsigned len)
{
	if (hs_open(h) < 0) {
		u_fmt(what, len, "open failed: %s", h->d.err);
		return false;
	}
	volatile uint8_t *cc = h->d.common;
	mmio_w16(cc + HC_Q_SELECT, 0);
	uint16_t size = mmio_r16(cc + HC_Q_SIZE);
	mmio_w32(cc + HC_Q_DESC, (uint32_t)(hs_ram_top - 64));  /* desc table runs past RAM */
	mmio_w32(cc + HC_Q_DESC + 4, 0);
	mmio_w32(cc + HC_Q_AVAIL, 0xc0000000u);                 /* avail ring in the PCI hole */
	mmio_w32(cc + HC_Q_AVAIL + 4, 0);
	mmio_w32(cc + HC_Q_USED, 0);                            /* used ring above RAM */
	mmio_w32(cc + HC_Q_USED + 4, 0x100);
	mmio_w16(cc + HC_Q_ENABLE, 1);
	uint8_t s = vio_status(&h->d);
	if (!(s & HS_NEEDS_RESET)) {
		/* a device may also notice only at DRIVER_OK or on the first kick */
		mmio_w8(cc + HC_STATUS, (uint8_t)(s | 4));
		mmio_w16(h->d.notify_base, 0);
		uint64_t t0 = vio_now_us();
		while (!((s = vio_status(&h->d)) & HS_NEEDS_RESET) && vio_now_us() - t0 < HS_WAIT_US)
			;
	}
	u_fmt(what, len, "size %u, status 0x%x after enable%s", size, s,
	      s & HS_NEEDS_RESET ? ": DEVICE_NEEDS_RESET" : "");
	return (s & HS_NEEDS_RESET) != 0;
}

/* Queue sizes a split ring cannot have: refused (reads back a valid size) or NEEDS_RESET. */
static bool hs_run_qsize(struct hdev *h, char *what, unsigned len)
{
	if (hs_open(h) < 0) {
		u_fmt(what, len, "open failed: %s", h->d.err);
		return false;
	}
	volatile uint8_t *cc = h->d.common;
	mmio_w16(cc + HC_Q_SELECT, 0);
	uint16_t max = mmio_r16(cc + HC_Q_SIZE);
	static const uint16_t bad[] = { 6, 3, 0xffff };
	uint16_t got[4];
	bool ok = max && !(max & (max - 1));
	for (unsigned i = 0; i < 4; i++) {
		uint16_t v = i < 3 ? bad[i] : (uint16_t)(max * 2);
		mmio_w16(cc + HC_Q_SIZE, v);
		got[i] = mmio_r16(cc + HC_Q_SIZE);
		ok = ok && (got[i] == max || (vio_status(&h->d) & HS_NEEDS_RESET));
	}
	u_fmt(what, len, "max %u; wrote 6, 3, 65535, %u: read back %u, %u, %u, %u (status 0x%x)", max,
	      (uint16_t)(max * 2), got[0], got[1], got[2], got[3], vio_status(&h->d));
	return ok;
}

/* Kick before DRIVER_OK: no buffer used until DRIVER_OK, then it is served. */
static bool hs_run_early(struct hdev *h, char *what, unsigned len)
{
	if (hs_open(h) < 0 || vio_queue(&h->d, &h->q, h->qidx, HS_QSIZE) < 0 || hs_add_good(h) < 0) {
		u_fmt(what, len, "set-up failed: %s", h->d.err);
		return false;
	}
	volatile uint16_t *av = h->q.avail;
	vio_mb();
	av[1] = h->q.avail_idx; /* publish without the library's kick logic */
	vio_mb();
	for (unsigned i = 0; i < 3; i++)
		mmio_w16(h->q.notify, h->q.index);
	uint64_t t0 = vio_now_us();
	while (vio_now_us() - t0 < 50000)
		__asm__ volatile("pause");
	uint16_t used_early = hs_used_idx(&h->q);
	uint8_t s_early = vio_status(&h->d);
	if (vio_driver_ok(&h->d) < 0) {
		u_fmt(what, len, "DRIVER_OK refused after early notifies: %s", h->d.err);
		return false;
	}
	mmio_w16(h->q.notify, h->q.index); /* the kick a correct driver makes now */
	char why[80];
	bool served = hs_wait_good(h, why, sizeof(why));
	u_fmt(what, len, "used idx %u and status 0x%x before DRIVER_OK; then %s", used_early, s_early,
	      served ? "served" : why);
	return used_early == 0 && !(s_early & HS_NEEDS_RESET) && served;
}

long u_vhostile_test(long ram_top)
{
	hs_ram_top = (uint64_t)ram_top;
	u_note("virtio-hostile: RAM top 0x%lx, queue size %u, %u cases per device", hs_ram_top, HS_QSIZE,
	       (unsigned)(sizeof(hs_cases) / sizeof(hs_cases[0])));
	unsigned failed = 0;
	for (unsigned di = 0; di < HS_NDEV; di++) {
		struct hdev *h = &hs_devs[di];
		char why[96];
		if (!hs_good(h, why, sizeof(why))) {
			u_tap(false, "virtio-hostile: %s works before the cases: %s", h->name, why);
			failed++;
			continue;
		}
		for (unsigned ci = 0; ci < sizeof(hs_cases) / sizeof(hs_cases[0]); ci++) {
			const struct hs_case *c = &hs_cases[ci];
			char what[128];
			bool ok;
			switch (c->kind) {
			case HS_CHAIN: ok = hs_run_chain(h, c, what, sizeof(what)); break;
			case HS_RING: ok = hs_run_ring(h, what, sizeof(what)); break;
			case HS_QSIZE_BAD: ok = hs_run_qsize(h, what, sizeof(what)); break;
			default: ok = hs_run_early(h, what, sizeof(what)); break;
			}
			vio_reset(&h->d);
			bool reset_ok = vio_status(&h->d) == 0;
			bool works = reset_ok && hs_good(h, why, sizeof(why));
			u_tap(ok && works, "virtio-hostile: %s: %s: %s; %s", h->name, c->what, what,
			      works ? "works after reset" : reset_ok ? why : "did not reset");
			failed += !(ok && works);
		}
	}
	return failed;
}
