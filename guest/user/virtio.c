/*
 * virtio: ring-3 virtio-pci transport and split virtqueues (see virtio.h).
 * Runs natively in ring 3: every MMIO access to the BARs is a real access the
 * VMM sees (or, for a queue notify, an ioeventfd absorbs), every ring access
 * is plain memory.
 */
#include "virtio.h"

#include <stdarg.h>
#include <stddef.h>

#include "../fmt.h"
#include "usys.h"

volatile uint64_t u_msi_count[16];

/* common configuration structure (virtio 1.2 §4.1.4.3) */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESCLO 0x20
#define CC_Q_DESCHI 0x24
#define CC_Q_AVAILLO 0x28
#define CC_Q_AVAILHI 0x2c
#define CC_Q_USEDLO 0x30
#define CC_Q_USEDHI 0x34
#define CC_SIZE 0x38

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64
#define ST_FAILED 128

#define NO_VECTOR 0xffff
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1

/* ---- small helpers ------------------------------------------------------- */

void u_copy(void *d, const void *s, uint64_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

void u_zero(void *d, uint64_t n)
{
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0) : "memory");
}

uint64_t vio_now_us(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (((uint64_t)hi << 32) | lo) * 1000 / u_tsc_khz;
}

struct fbuf {
	char *b;
	unsigned n, size;
};

static void fput(void *ctx, char c)
{
	struct fbuf *f = ctx;
	if (f->n + 1 < f->size)
		f->b[f->n] = c;
	f->n++;
}

static int u_vfmt(char *buf, unsigned size, const char *fmt, va_list ap)
{
	struct fbuf f = { buf, 0, size };
	fmt_vformat(fput, &f, fmt, ap);
	if (size)
		buf[f.n < size ? f.n : size - 1] = 0;
	return (int)f.n;
}

int u_fmt(char *buf, unsigned size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = u_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void u_tap(bool ok, const char *fmt, ...)
{
	char line[200];
	va_list ap;
	va_start(ap, fmt);
	int n = u_vfmt(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	u_sys(SYS_TAP, ok, (long)line, n);
}

void u_note(const char *fmt, ...)
{
	char line[240];
	line[0] = '#';
	line[1] = ' ';
	va_list ap;
	va_start(ap, fmt);
	int n = u_vfmt(line + 2, sizeof(line) - 3, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 4)
		n = sizeof(line) - 4;
	line[2 + n] = '\n';
	u_write(line, (unsigned long)n + 3);
}

static void vio_fail(struct vdev *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	u_vfmt(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

/* ---- DMA memory -------------------------------------------------------------- */

#define DMA_CHUNKS 8
#define DMA_CHUNK_MIN (4ull << 20)

static struct {
	uint64_t va, pa, size, used;
} dma_chunk[DMA_CHUNKS];
static unsigned dma_nchunks;

void *vio_dma_alloc(uint64_t bytes, uint64_t align, uint64_t *pa)
{
	if (!align)
		align = 8;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < dma_nchunks; i++) {
			uint64_t p = (dma_chunk[i].pa + dma_chunk[i].used + align - 1) & ~(align - 1);
			uint64_t off = p - dma_chunk[i].pa;
			if (off + bytes <= dma_chunk[i].size) {
				dma_chunk[i].used = off + bytes;
				void *va = (void *)(dma_chunk[i].va + off);
				u_zero(va, bytes);
				*pa = p;
				return va;
			}
		}
		if (pass || dma_nchunks == DMA_CHUNKS)
			break;
		uint64_t want = bytes + align > DMA_CHUNK_MIN ? bytes + align : DMA_CHUNK_MIN;
		uint64_t cpa = 0;
		long va = u_sys(SYS_DMA, (long)want, (long)&cpa, 0);
		if (va < 0)
			break;
		dma_chunk[dma_nchunks].va = (uint64_t)va;
		dma_chunk[dma_nchunks].pa = cpa;
		dma_chunk[dma_nchunks].size = want;
		dma_chunk[dma_nchunks].used = 0;
		dma_nchunks++;
	}
	return NULL;
}

void vio_dma_reset(void)
{
	for (unsigned i = 0; i < dma_nchunks; i++)
		dma_chunk[i].used = 0;
}

uint64_t vio_dma_pa(const void *va)
{
	uint64_t v = (uint64_t)va;
	for (unsigned i = 0; i < dma_nchunks; i++)
		if (v >= dma_chunk[i].va && v < dma_chunk[i].va + dma_chunk[i].size)
			return dma_chunk[i].pa + (v - dma_chunk[i].va);
	return 0;
}

/* ---- transport ------------------------------------------------------------------ */

static void vio_set_irq_q(struct vq *q, bool irq);
static unsigned vio_next_vec; /* MSI vectors handed out round-robin, 4 per device */

const char *vio_type_name(uint16_t type)
{
	switch (type) {
	case VIRTIO_ID_NET:
		return "virtio-net";
	case VIRTIO_ID_BLOCK:
		return "virtio-blk";
	case VIRTIO_ID_CONSOLE:
		return "virtio-console";
	case VIRTIO_ID_RNG:
		return "virtio-rng";
	}
	return "virtio-?";
}

/* A capability's region as a user pointer, if it lies inside the mapping. */
static volatile uint8_t *vio_cap(struct vdev *d, unsigned type, uint32_t *len)
{
	const struct pci_uvcap *c = &d->pci.vcap[type - 1];
	if (!c->present || c->bar >= 6)
		return NULL;
	const struct pci_ubar *b = &d->pci.bar[c->bar];
	if (!b->va || (uint64_t)c->off + c->len > b->mapped || c->len == 0)
		return NULL;
	if (len)
		*len = c->len;
	return (volatile uint8_t *)(b->va + c->off);
}

uint8_t vio_status(struct vdev *d)
{
	return mmio_r8(d->common + CC_STATUS);
}

static void vio_set_status(struct vdev *d, uint8_t s)
{
	mmio_w8(d->common + CC_STATUS, s);
}

void vio_reset(struct vdev *d)
{
	vio_set_status(d, 0);
	/* The reset is done when status reads 0 again (§4.1.4.3.2). */
	uint64_t t0 = vio_now_us();
	while (vio_status(d) != 0 && vio_now_us() - t0 < 1000000)
		__asm__ volatile("pause");
}

static bool vio_match(const struct pci_udev *p, uint16_t type)
{
	if (p->vendor != 0x1af4)
		return false;
	if (p->device == 0x1040 + type)
		return true;
	/* transitional device: the type is the subsystem id */
	return p->device >= 0x1000 && p->device <= 0x103f && p->subsys == type;
}

int vio_open(struct vdev *d, uint16_t type, unsigned nth, uint64_t want, unsigned flags)
{
	u_zero(d, sizeof(*d));
	d->type = type;
	d->pci_index = -1;
	for (int i = 0;; i++) {
		long r = u_sys(SYS_PCI_DEV, i, (long)&d->pci, 0);
		if (r < 0)
			break;
		if (vio_match(&d->pci, type) && nth-- == 0) {
			d->pci_index = i;
			break;
		}
	}
	if (d->pci_index < 0) {
		vio_fail(d, "no %s PCI function (vendor 1af4 device %x)", vio_type_name(type), 0x1040 + type);
		return -1;
	}
	long r = u_sys(SYS_PCI_DEV, d->pci_index, (long)&d->pci, PCI_DEV_OPEN);
	if (r < 0) {
		vio_fail(d, "SYS_PCI_DEV open of %02x:%02x.%u failed (%ld): BARs unassigned?", d->pci.bus,
			 d->pci.dev, d->pci.fn, r);
		return -1;
	}
	uint32_t clen = 0;
	d->common = vio_cap(d, PCI_VIRTIO_COMMON, &clen);
	d->notify_base = vio_cap(d, PCI_VIRTIO_NOTIFY, &d->notify_len);
	d->isr = vio_cap(d, PCI_VIRTIO_ISR, NULL);
	d->devcfg = vio_cap(d, PCI_VIRTIO_DEVICE, &d->devcfg_len);
	d->notify_mult = d->pci.notify_mult;
	if (!d->common || clen < CC_SIZE || !d->notify_base || !d->isr) {
		vio_fail(d, "virtio capabilities missing or outside their BAR (common %d notify %d isr %d)",
			 d->common != NULL, d->notify_base != NULL, d->isr != NULL);
		return -1;
	}
	if (d->pci.msix_size) {
		const struct pci_ubar *b = &d->pci.bar[d->pci.msix_table_bar];
		if (d->pci.msix_table_bar < 6 && b->va &&
		    d->pci.msix_table_off + 16ull * d->pci.msix_size <= b->mapped)
			d->msix_table = (volatile uint32_t *)(b->va + d->pci.msix_table_off);
	}
	if ((flags & VIO_IRQ) && !d->msix_table) {
		vio_fail(d, "interrupt mode needs MSI-X (table size %u)", d->pci.msix_size);
		return -1;
	}
	d->irq = (flags & VIO_IRQ) != 0;
	d->vec_base = vio_next_vec;
	vio_next_vec = (vio_next_vec + 4) % 16;

	vio_reset(d);
	if (vio_status(d) != 0) {
		vio_fail(d, "device did not reset (status 0x%x)", vio_status(d));
		return -1;
	}
	vio_set_status(d, ST_ACK);
	vio_set_status(d, ST_ACK | ST_DRIVER);
	mmio_w32(d->common + CC_DFSELECT, 0);
	uint64_t f = mmio_r32(d->common + CC_DF);
	mmio_w32(d->common + CC_DFSELECT, 1);
	f |= (uint64_t)mmio_r32(d->common + CC_DF) << 32;
	d->offered = f;
	if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
		vio_set_status(d, ST_FAILED);
		vio_fail(d, "device lacks VERSION_1 (features 0x%lx)", f);
		return -1;
	}
	uint64_t g = (1ull << VIRTIO_F_VERSION_1) | (f & want);
	if (!(flags & VIO_NO_EVENT_IDX))
		g |= f & (1ull << VIRTIO_F_EVENT_IDX);
	if (!(flags & VIO_NO_INDIRECT))
		g |= f & (1ull << VIRTIO_F_INDIRECT_DESC);
	mmio_w32(d->common + CC_GFSELECT, 0);
	mmio_w32(d->common + CC_GF, (uint32_t)g);
	mmio_w32(d->common + CC_GFSELECT, 1);
	mmio_w32(d->common + CC_GF, (uint32_t)(g >> 32));
	vio_set_status(d, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(vio_status(d) & ST_FEATURES_OK)) {
		vio_set_status(d, ST_FAILED);
		vio_fail(d, "device refused features 0x%lx", g);
		return -1;
	}
	d->features = g;
	d->event_idx = (g >> VIRTIO_F_EVENT_IDX) & 1;
	d->indirect = (g >> VIRTIO_F_INDIRECT_DESC) & 1;
	/* No configuration-change interrupt: the drivers never wait for one. */
	mmio_w16(d->common + CC_MSIX, NO_VECTOR);
	return 0;
}

static volatile uint32_t *msix_entry(struct vdev *d, unsigned e)
{
	return d->msix_table + 4 * e;
}

int vio_queue(struct vdev *d, struct vq *q, unsigned index, unsigned max)
{
	u_zero(q, sizeof(*q));
	q->dev = d;
	q->index = (uint16_t)index;
	q->msix = -1;
	q->vec = -1;
	if (index >= mmio_r16(d->common + CC_NUMQ) || d->nq >= VIO_MAX_QUEUES) {
		vio_fail(d, "queue %u: device has %u queues", index, mmio_r16(d->common + CC_NUMQ));
		return -1;
	}
	mmio_w16(d->common + CC_Q_SELECT, (uint16_t)index);
	unsigned size = mmio_r16(d->common + CC_Q_SIZE);
	if (size == 0 || mmio_r16(d->common + CC_Q_ENABLE)) {
		vio_fail(d, "queue %u: size %u / already enabled", index, size);
		return -1;
	}
	unsigned n = size < max ? size : max;
	if (n > VQ_MAX)
		n = VQ_MAX;
	while (n & (n - 1)) /* split rings: a power of two */
		n &= n - 1;
	q->size = (uint16_t)n;
	q->desc = vio_dma_alloc(16ull * n, 4096, &q->desc_pa);
	q->avail = vio_dma_alloc(6 + 2ull * n, 4096, &q->avail_pa);
	q->used = vio_dma_alloc(6 + 8ull * n, 4096, &q->used_pa);
	if (d->indirect)
		q->ind = vio_dma_alloc(16ull * VQ_IND_MAX * n, 4096, &q->ind_pa);
	if (!q->desc || !q->avail || !q->used || (d->indirect && !q->ind)) {
		vio_fail(d, "queue %u: out of DMA memory", index);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		q->next[i] = (uint16_t)(i + 1);
	q->num_free = (uint16_t)n;
	mmio_w16(d->common + CC_Q_SIZE, (uint16_t)n);
	mmio_w32(d->common + CC_Q_DESCLO, (uint32_t)q->desc_pa);
	mmio_w32(d->common + CC_Q_DESCHI, (uint32_t)(q->desc_pa >> 32));
	mmio_w32(d->common + CC_Q_AVAILLO, (uint32_t)q->avail_pa);
	mmio_w32(d->common + CC_Q_AVAILHI, (uint32_t)(q->avail_pa >> 32));
	mmio_w32(d->common + CC_Q_USEDLO, (uint32_t)q->used_pa);
	mmio_w32(d->common + CC_Q_USEDHI, (uint32_t)(q->used_pa >> 32));
	if (d->msix_table) {
		unsigned e = index % d->pci.msix_size;
		unsigned v = (d->vec_base + e) % 16;
		volatile uint32_t *m = msix_entry(d, e);
		mmio_w32(m + 3, 1); /* masked while it is written */
		mmio_w32(m + 0, (uint32_t)d->pci.msi_addr);
		mmio_w32(m + 1, (uint32_t)(d->pci.msi_addr >> 32));
		mmio_w32(m + 2, d->pci.msi_data_base + v);
		mmio_w32(m + 3, d->irq ? 0 : 1);
		mmio_w16(d->common + CC_Q_MSIX, (uint16_t)e);
		if (mmio_r16(d->common + CC_Q_MSIX) != e) {
			vio_fail(d, "queue %u: device did not take MSI-X entry %u", index, e);
			return -1;
		}
		q->msix = (int16_t)e;
		q->vec = (int16_t)v;
	} else {
		mmio_w16(d->common + CC_Q_MSIX, NO_VECTOR);
	}
	uint64_t noff = (uint64_t)mmio_r16(d->common + CC_Q_NOFF) * d->notify_mult;
	if (noff + 2 > d->notify_len) {
		vio_fail(d, "queue %u: notify offset 0x%lx outside the notify region (0x%x)", index, noff,
			 d->notify_len);
		return -1;
	}
	q->notify = (volatile uint16_t *)(d->notify_base + noff);
	vio_set_irq_q(q, d->irq);
	mmio_w16(d->common + CC_Q_ENABLE, 1);
	d->q[d->nq++] = q;
	return 0;
}

uint64_t vio_irq_count(struct vdev *d)
{
	uint64_t n = 0;
	unsigned seen = 0; /* bit per vector: queues may share one */
	for (unsigned i = 0; i < d->nq; i++) {
		int v = d->q[i]->vec;
		if (v >= 0 && !(seen & (1u << v))) {
			seen |= 1u << v;
			n += u_msi_count[v];
		}
	}
	return n;
}

int vio_driver_ok(struct vdev *d)
{
	vio_set_status(d, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	uint8_t s = vio_status(d);
	if ((s & (ST_NEEDS_RESET | ST_FAILED)) || !(s & ST_DRIVER_OK)) {
		vio_fail(d, "DRIVER_OK refused (status 0x%x)", s);
		return -1;
	}
	return 0;
}

void vio_cfg_read(struct vdev *d, unsigned off, void *buf, unsigned len)
{
	uint8_t *b = buf;
	if (!d->devcfg || off + len > d->devcfg_len) {
		u_zero(buf, len);
		return;
	}
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = mmio_r8(d->common + CC_CFGGEN);
		unsigned i = 0;
		/* widest aligned accesses, as the spec asks for multi-byte fields */
		while (i < len) {
			if (!((off + i) & 3) && len - i >= 4) {
				uint32_t v = mmio_r32(d->devcfg + off + i);
				u_copy(b + i, &v, 4);
				i += 4;
			} else if (!((off + i) & 1) && len - i >= 2) {
				uint16_t v = mmio_r16(d->devcfg + off + i);
				u_copy(b + i, &v, 2);
				i += 2;
			} else {
				b[i] = mmio_r8(d->devcfg + off + i);
				i++;
			}
		}
		if (mmio_r8(d->common + CC_CFGGEN) == gen)
			return;
	}
}

/* ---- split virtqueues ----------------------------------------------------------- */

#define AVAIL_FLAGS(q) ((q)->avail[0])
#define AVAIL_IDX(q) ((q)->avail[1])
#define AVAIL_RING(q, i) ((q)->avail[2 + (i)])
#define USED_EVENT(q) ((q)->avail[2 + (q)->size])

static inline uint16_t used_flags(struct vq *q) { return ((volatile uint16_t *)q->used)[0]; }
static inline uint16_t used_idx(struct vq *q) { return ((volatile uint16_t *)q->used)[1]; }
static inline uint16_t avail_event(struct vq *q) { return ((volatile uint16_t *)q->used)[2 + 4 * q->size]; }

static void vio_set_irq_q(struct vq *q, bool irq)
{
	struct vdev *d = q->dev;
	if (d->event_idx) {
		AVAIL_FLAGS(q) = 0;
		/* Far behind: no interrupt until the device runs 32768 ahead. */
		USED_EVENT(q) = irq ? q->last_used : (uint16_t)(q->last_used - 0x8000);
	} else {
		AVAIL_FLAGS(q) = irq ? 0 : AVAIL_F_NO_INTERRUPT;
	}
	if (q->msix >= 0)
		mmio_w32(msix_entry(d, (unsigned)q->msix) + 3, irq ? 0 : 1);
}

void vio_set_irq(struct vdev *d, bool irq)
{
	d->irq = irq;
	for (unsigned i = 0; i < d->nq; i++)
		vio_set_irq_q(d->q[i], irq);
	vio_mb();
}

int vq_add(struct vq *q, const struct vq_sg *sg, unsigned n_out, unsigned n_in, uint64_t token)
{
	unsigned n = n_out + n_in;
	if (n == 0)
		return -1;
	uint16_t head = q->free_head;
	if (q->dev->indirect && n > 1 && n <= VQ_IND_MAX) {
		if (q->num_free < 1)
			return -1;
		struct vq_desc *t = q->ind + (uint64_t)head * VQ_IND_MAX;
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = sg[i].pa;
			t[i].len = sg[i].len;
			t[i].flags = (uint16_t)((i + 1 < n ? DESC_F_NEXT : 0) | (i >= n_out ? DESC_F_WRITE : 0));
			t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		}
		q->desc[head].addr = q->ind_pa + (uint64_t)head * VQ_IND_MAX * 16;
		q->desc[head].len = n * 16;
		q->desc[head].flags = DESC_F_INDIRECT;
		q->desc[head].next = 0;
		q->free_head = q->next[head];
		q->num_free--;
		q->chain[head] = 1;
	} else {
		if (q->num_free < n)
			return -1;
		uint16_t i = head, last = head;
		for (unsigned k = 0; k < n; k++) {
			q->desc[i].addr = sg[k].pa;
			q->desc[i].len = sg[k].len;
			q->desc[i].flags = (uint16_t)((k + 1 < n ? DESC_F_NEXT : 0) | (k >= n_out ? DESC_F_WRITE : 0));
			q->desc[i].next = k + 1 < n ? q->next[i] : 0;
			last = i;
			i = q->next[i];
		}
		q->free_head = q->next[last];
		q->num_free = (uint16_t)(q->num_free - n);
		q->chain[head] = (uint16_t)n;
	}
	q->token[head] = token;
	AVAIL_RING(q, q->avail_idx & (q->size - 1)) = head;
	q->avail_idx++;
	q->added++;
	return 0;
}

void vq_kick(struct vq *q)
{
	uint16_t old = q->kicked_idx, now = q->avail_idx;
	if (old == now)
		return;
	vio_barrier(); /* ring entries before the index (x86 keeps stores in order) */
	AVAIL_IDX(q) = now;
	vio_mb();      /* the index store before reading the device's suppression */
	q->kicked_idx = now;
	bool need;
	if (q->dev->event_idx)
		need = (uint16_t)(now - avail_event(q) - 1) < (uint16_t)(now - old);
	else
		need = !(used_flags(q) & USED_F_NO_NOTIFY);
	if (need) {
		mmio_w16(q->notify, q->index);
		q->kicks++;
	} else {
		q->kicks_suppressed++;
	}
}

bool vq_has_used(struct vq *q)
{
	return used_idx(q) != q->last_used;
}

int vq_get(struct vq *q, uint64_t *token, uint32_t *len)
{
	if (used_idx(q) == q->last_used)
		return 0;
	vio_barrier(); /* the element after the index (x86 keeps loads in order) */
	volatile uint32_t *e = q->used + 1 + 2 * (q->last_used & (q->size - 1));
	uint32_t id = e[0], l = e[1];
	if (id >= q->size || !q->chain[id])
		return -1;
	unsigned n = q->chain[id];
	uint16_t last = (uint16_t)id;
	for (unsigned k = 1; k < n; k++)
		last = q->next[last];
	q->next[last] = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + n);
	q->chain[id] = 0;
	q->last_used++;
	q->completed++;
	if (q->dev->event_idx && !q->dev->irq)
		USED_EVENT(q) = (uint16_t)(q->last_used - 0x8000);
	if (token)
		*token = q->token[id];
	if (len)
		*len = l;
	return 1;
}

bool vq_wait(struct vq *q, uint64_t us)
{
	uint64_t deadline = vio_now_us() + us;
	for (;;) {
		if (vq_has_used(q))
			return true;
		uint64_t now = vio_now_us();
		if (now >= deadline)
			return false;
		if (!q->dev->irq || q->vec < 0) {
			__asm__ volatile("pause");
			continue;
		}
		uint64_t seen = u_msi_count[q->vec];
		/* Ask for an interrupt on the next completion, then look again: a
		 * completion between the first look and this request sent none. */
		if (q->dev->event_idx)
			USED_EVENT(q) = q->last_used;
		vio_mb();
		if (vq_has_used(q))
			return true;
		q->irq_waits++;
		u_sys(SYS_IRQ_WAIT, q->vec, (long)seen, (long)((deadline - now) * 1000));
	}
}
