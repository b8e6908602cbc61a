/*
 * virtqueue: the device side of a split virtqueue (virtio 1.2 §2.7).
 *
 * The rings live in guest RAM and the guest may change any byte of them at
 * any time, from another CPU. So every guest-written field is read exactly
 * once into a local (vq_load16 / vq_read_desc), checked, and only the local
 * is used afterwards: a guest that rewrites a descriptor between our check
 * and our use cannot make us use an unchecked value.
 *
 * Ordering (§2.7.13, the device half of the driver's barriers):
 *   - load avail->idx, then an acquire fence, then the ring entries and
 *     descriptors (the driver wrote them before its release of idx);
 *   - write used->ring[] entries, a release fence, then used->idx;
 *   - a full fence between publishing used->idx and reading used_event /
 *     avail->flags (vq_need_interrupt), and between writing avail_event /
 *     used->flags and re-reading avail->idx (vq_enable_notify, vq_pop).
 */
#include "virtqueue.h"

#include <string.h>

/* Offsets into the rings (§2.7): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, ring[size] (8 bytes each), avail_event. */
#define VQ_DESC_BYTES(n) (16ull * (n))
#define VQ_AVAIL_BYTES(n) (6ull + 2ull * (n))
#define VQ_USED_BYTES(n) (6ull + 8ull * (n))

const char *vq_err_str(int err)
{
	switch (err) {
	case VQ_OK: return "ok";
	case VQ_ERR_RING: return "bad ring (placement, or avail idx ran more than the queue size ahead)";
	case VQ_ERR_DESC_INDEX: return "descriptor index out of range";
	case VQ_ERR_DESC_ADDR: return "buffer outside guest RAM";
	case VQ_ERR_LOOP: return "descriptor chain longer than its table (loop)";
	case VQ_ERR_INDIRECT: return "bad indirect descriptor";
	case VQ_ERR_ORDER: return "device-readable descriptor after a device-writable one";
	case VQ_ERR_SEGS: return "too many buffers in one chain";
	case VQ_ERR_DMA: return "DMA fault: the IOMMU refused an address (or a ring or indirect table "
				"is not contiguous after translation)";
	default: return "unknown virtqueue error";
	}
}

/* The ring indices are 2-byte aligned (vq_start checks), so these are single
 * atomic accesses the compiler can neither split nor repeat. */
static inline uint16_t vq_load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void vq_store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* One snapshot of a descriptor. Indirect tables need not be aligned, hence
 * memcpy; the signal fence stops the compiler from re-reading guest memory
 * in place of the local copy afterwards. */
static inline void vq_read_desc(const void *src, struct vq_desc *d)
{
	memcpy(d, src, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline uint16_t *vq_used_event(struct virtqueue *vq)
{
	return &vq->avail->ring[vq->size];
}

static inline uint16_t *vq_avail_event(struct virtqueue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/*
 * Host pointer of [addr, addr + len) (len > 0) of the device's address
 * space. Without a translator addr is guest-physical; with one, the range
 * must translate (with the access's direction) to one contiguous
 * guest-physical range. 0, VQ_ERR_DMA, or not_ram when the result is not
 * inside RAM.
 */
static int vq_map(const struct virtqueue *vq, uint64_t addr, uint64_t len, bool write, int not_ram,
		  void **out)
{
	uint64_t gpa = addr;
	if (vq->dma) {
		if (len - 1 > UINT64_MAX - addr)
			return not_ram; /* wraps: no translation can help */
		uint64_t avail, done;
		if (vq->dma->translate(vq->dma->opaque, addr, write, &gpa, &avail))
			return VQ_ERR_DMA;
		for (done = avail; done < len; done += avail) {
			uint64_t next;
			if (vq->dma->translate(vq->dma->opaque, addr + done, write, &next, &avail))
				return VQ_ERR_DMA;
			if (next != gpa + done)
				return VQ_ERR_DMA; /* scattered: a ring must be one piece */
		}
	}
	*out = mem_ptr(vq->mem, gpa, len);
	return *out ? 0 : not_ram;
}

/* Translate the three rings; gen is the translator's generation read before. */
static int vq_map_rings(struct virtqueue *vq, uint64_t gen)
{
	/* The event fields are counted even when EVENT_IDX is off: the spec's
	 * sizes include them and a driver lays the rings out that way. */
	void *d, *a, *u;
	int err;
	if ((err = vq_map(vq, vq->desc_gpa, VQ_DESC_BYTES(vq->size), false, VQ_ERR_RING, &d)) ||
	    (err = vq_map(vq, vq->avail_gpa, VQ_AVAIL_BYTES(vq->size), false, VQ_ERR_RING, &a)) ||
	    (err = vq_map(vq, vq->used_gpa, VQ_USED_BYTES(vq->size), true, VQ_ERR_RING, &u)))
		return err;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->dma_gen = gen;
	return VQ_OK;
}

static int vq_fail(struct virtqueue *vq, int err)
{
	/* atomic: statistics read it from another thread */
	__atomic_fetch_add(&vq->errors, 1, __ATOMIC_RELAXED);
	vq->broken = err;
	return err;
}

/*
 * Ring pointers are translations held across calls: after an invalidation
 * (a new generation) they are made again before use. false: the queue is
 * broken (it was, or the rings no longer translate: VQ_ERR_DMA).
 */
static bool vq_rings_live(struct virtqueue *vq)
{
	if (vq->broken)
		return false;
	if (!vq->dma || !vq->avail)
		return true;
	uint64_t gen = vq->dma->generation(vq->dma->opaque);
	if (gen == vq->dma_gen)
		return true;
	vq->dma_retranslations++;
	int err = vq_map_rings(vq, gen);
	if (err) {
		vq_fail(vq, err);
		return false;
	}
	return true;
}

/*
 * A migration resends what hvmm wrote into guest RAM, which KVM's dirty log
 * does not see (memory.h): the used ring (entries, index, avail_event) and
 * the buffers a completed chain gave the device to write. Marked after the
 * write, so a round that takes the mark sends the data.
 */
static void vq_used_dirty(const struct virtqueue *vq)
{
	if (vq->mem && vq->used)
		mem_mark_dirty(vq->mem, vq->used, VQ_USED_BYTES(vq->size));
}

int vq_start_dma(struct virtqueue *vq, const struct guest_mem *mem, const struct vq_dma *dma,
		 uint16_t size, uint64_t desc, uint64_t avail, uint64_t used, bool event_idx,
		 bool indirect)
{
	vq_stop(vq);
	vq->mem = mem;
	vq->dma = dma;
	int err = VQ_ERR_RING;
	/* §2.7: size a power of two; alignment desc 16, avail 2, used 4. */
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)))
		goto bad;
	if ((desc & 15) || (avail & 1) || (used & 3))
		goto bad;
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	if ((err = vq_map_rings(vq, dma ? dma->generation(dma->opaque) : 0))) {
		vq->size = 0;
		goto bad;
	}
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* A fresh queue starts at index 0 on both sides (§2.7.6, §2.7.8). */
	vq_store16(&vq->used->flags, 0);
	vq_store16(&vq->used->idx, 0);
	if (event_idx)
		vq_store16(vq_avail_event(vq), 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return VQ_OK;
bad:
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	return vq_fail(vq, err);
}

int vq_start(struct virtqueue *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	     uint64_t avail, uint64_t used, bool event_idx, bool indirect)
{
	return vq_start_dma(vq, mem, NULL, size, desc, avail, used, event_idx, indirect);
}

void vq_stop(struct virtqueue *vq)
{
	uint64_t errors = vq->errors, retrans = vq->dma_retranslations;
	memset(vq, 0, sizeof(*vq));
	vq->errors = errors; /* statistics survive a reset */
	vq->dma_retranslations = retrans;
}

void vq_save(const struct virtqueue *vq, struct vq_state *s)
{
	memset(s, 0, sizeof(*s));
	s->desc = vq->desc_gpa;
	s->avail = vq->avail_gpa;
	s->used = vq->used_gpa;
	s->size = vq->size;
	s->last_avail = vq->last_avail;
	s->used_idx = vq->used_idx;
	s->signalled_used = vq->signalled_used;
	s->started = vq->avail != NULL;
	s->signalled_valid = vq->signalled_valid;
	s->event_idx = vq->event_idx;
	s->indirect = vq->indirect;
	s->notify_off = vq->notify_off;
	s->broken = vq->broken;
}

int vq_restore(struct virtqueue *vq, const struct guest_mem *mem, const struct vq_dma *dma,
	       const struct vq_state *s)
{
	vq_stop(vq);
	/* the padding too: vq_save zeroes it, a byte there is not a saved queue */
	bool flags_ok = s->started <= 1 && s->signalled_valid <= 1 && s->event_idx <= 1 &&
			s->indirect <= 1 && s->notify_off <= 1 && !s->pad[0] && !s->pad[1] && !s->pad[2] &&
			!s->pad2;
	bool size_ok = s->size <= VQ_MAX_SIZE && !(s->size & (s->size - 1));
	if (!flags_ok || !size_ok || s->broken > 0 || s->broken < VQ_ERR_DMA)
		return VQ_ERR_RING;
	vq->mem = mem;
	vq->dma = dma;
	vq->size = s->size;
	vq->desc_gpa = s->desc;
	vq->avail_gpa = s->avail;
	vq->used_gpa = s->used;
	vq->event_idx = s->event_idx;
	vq->indirect = s->indirect;
	vq->notify_off = s->notify_off;
	vq->last_avail = s->last_avail;
	vq->used_idx = s->used_idx;
	vq->signalled_used = s->signalled_used;
	vq->signalled_valid = s->signalled_valid;
	vq->broken = s->broken;
	if (!s->started)
		return VQ_OK; /* never mapped (or its start failed): addresses only */
	/* The same checks as vq_start_dma, and the device can have at most
	 * `size` chains popped and not yet used. The indices are not compared
	 * with the rings in RAM: the driver may write anything there at any
	 * time (a hostile guest would only make its own snapshot unloadable),
	 * and the device never reads used->idx back; avail->idx is checked by
	 * vq_pop as it always is. */
	int err = VQ_ERR_RING;
	if (s->size == 0 || (s->desc & 15) || (s->avail & 1) || (s->used & 3) ||
	    (uint16_t)(s->last_avail - s->used_idx) > s->size ||
	    (err = vq_map_rings(vq, dma ? dma->generation(dma->opaque) : 0))) {
		vq_stop(vq);
		return err;
	}
	return VQ_OK;
}

/* One descriptor's buffer into e's iovecs: one iovec when addresses are
 * guest-physical; with a translator one per run of pages that are
 * contiguous in guest-physical memory (dma_map_sg merges scattered pages
 * into one IOVA range, so a descriptor may cover many). */
static int vq_add_buf(struct virtqueue *vq, struct vq_elem *e, uint64_t addr, uint32_t len,
		      bool writable)
{
	struct iovec *iov = writable ? e->in : e->out;
	unsigned *n = writable ? &e->n_in : &e->n_out;
	if (!vq->dma) {
		void *p = mem_ptr(vq->mem, addr, len);
		if (!p)
			return VQ_ERR_DESC_ADDR;
		if (e->n_out + e->n_in >= VQ_MAX_SEGS)
			return VQ_ERR_SEGS;
		iov[(*n)++] = (struct iovec){ p, len };
	} else {
		if (len - 1 > UINT64_MAX - addr)
			return VQ_ERR_DESC_ADDR;
		unsigned first = *n;
		for (uint64_t done = 0; done < len;) {
			uint64_t gpa, avail;
			if (vq->dma->translate(vq->dma->opaque, addr + done, writable, &gpa, &avail))
				return VQ_ERR_DMA;
			uint64_t chunk = len - done < avail ? len - done : avail;
			uint8_t *p = mem_ptr(vq->mem, gpa, chunk);
			if (!p)
				return VQ_ERR_DESC_ADDR;
			struct iovec *last = *n > first ? &iov[*n - 1] : NULL;
			if (last && (uint8_t *)last->iov_base + last->iov_len == p) {
				last->iov_len += chunk; /* the next page follows in RAM too */
			} else {
				if (e->n_out + e->n_in >= VQ_MAX_SEGS)
					return VQ_ERR_SEGS;
				iov[(*n)++] = (struct iovec){ p, chunk };
			}
			done += chunk;
		}
	}
	if (writable)
		e->in_len += len;
	else
		e->out_len += len;
	return VQ_OK;
}

/* Walk the chain at `head` into *e. Every address, length, index and flag is
 * checked; nothing of e is meaningful unless VQ_OK is returned. */
static int vq_walk(struct virtqueue *vq, uint16_t head, struct vq_elem *e)
{
	const uint8_t *table = (const uint8_t *)vq->desc;
	uint32_t table_size = vq->size; /* entries of the table being walked */
	uint32_t idx = head, seen = 0;
	bool in_indirect = false;

	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		if (idx >= table_size)
			return VQ_ERR_DESC_INDEX;
		/* Each descriptor of a table at most once: more means a loop.
		 * `next` is 16 bits, so a chain reaches at most 65,536 entries
		 * of a table however long the table is (an indirect one may be
		 * megabytes: bounding by its length let a loop cost ~100x). */
		if (++seen > table_size || seen > VQ_CHAIN_MAX)
			return VQ_ERR_LOOP;
		vq->walked++;
		struct vq_desc d;
		vq_read_desc(table + 16ull * idx, &d);

		if (d.flags & VQ_DESC_F_INDIRECT) {
			/* §2.7.5.3: only if negotiated, never nested, never with
			 * NEXT, a whole number of descriptors, inside RAM. */
			if (!vq->indirect || in_indirect || (d.flags & VQ_DESC_F_NEXT))
				return VQ_ERR_INDIRECT;
			if (d.len == 0 || d.len % 16)
				return VQ_ERR_INDIRECT;
			void *t;
			int err = vq_map(vq, d.addr, d.len, false, VQ_ERR_DESC_ADDR, &t);
			if (err)
				return err;
			table = t;
			table_size = d.len / 16;
			idx = 0;
			seen = 0;
			in_indirect = true;
			continue;
		}

		bool writable = d.flags & VQ_DESC_F_WRITE;
		/* §2.7.4.2: readable buffers come before writable ones. */
		if (!writable && e->n_in)
			return VQ_ERR_ORDER;
		if (d.len) {
			int err = vq_add_buf(vq, e, d.addr, d.len, writable);
			if (err)
				return err;
		}
		if (!(d.flags & VQ_DESC_F_NEXT))
			return VQ_OK;
		idx = d.next;
	}
}

int vq_rewalk(struct virtqueue *vq, uint16_t head, struct vq_elem *e)
{
	if (!vq_rings_live(vq))
		return vq->broken;
	if (!vq->avail || head >= vq->size)
		return VQ_ERR_DESC_INDEX;
	return vq_walk(vq, head, e);
}

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	if (!vq_rings_live(vq))
		return vq->broken;
	if (!vq->avail)
		return 0; /* not started */

	uint16_t avail_idx = vq_load16(&vq->avail->idx);
	if (avail_idx == vq->last_avail && vq->event_idx && !vq->notify_off) {
		/* Empty: make sure the driver kicks for the next buffer. It may
		 * have added one after our load but before it saw avail_event. */
		vq_store16(vq_avail_event(vq), vq->last_avail);
		vq_used_dirty(vq);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = vq_load16(&vq->avail->idx);
	}
	uint16_t pending = avail_idx - vq->last_avail;
	if (pending == 0)
		return 0;
	/* The driver can only have `size` buffers outstanding. */
	if (pending > vq->size)
		return vq_fail(vq, VQ_ERR_RING);
	/* Ring entries and descriptors were written before avail->idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	uint16_t head = vq_load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	int err = vq_walk(vq, head, e);
	if (err)
		return vq_fail(vq, err);
	vq->last_avail++;
	if (vq->event_idx && !vq->notify_off) {
		vq_store16(vq_avail_event(vq), vq->last_avail);
		vq_used_dirty(vq);
	}
	return 1;
}

void vq_push_elem(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	if (vq->mem && atomic_load_explicit(&vq->mem->dma_track, memory_order_relaxed))
		for (unsigned i = 0; i < e->n_in; i++)
			mem_mark_dirty(vq->mem, e->in[i].iov_base, e->in[i].iov_len);
	vq_push(vq, e->head, written);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	if (!vq->used || !vq_rings_live(vq))
		return;
	struct vq_used_elem *u = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	__atomic_store_n(&u->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, written, __ATOMIC_RELAXED);
	vq->used_idx++;
	/* The entry must be visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vq_store16(&vq->used->idx, vq->used_idx);
	vq_used_dirty(vq);
}

bool vq_need_interrupt(struct virtqueue *vq)
{
	if (!vq->avail || !vq_rings_live(vq))
		return false;
	/* used->idx must be visible before we read the driver's wish; else the
	 * driver could decide to sleep on a stale idx and we not interrupt. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(vq_load16(&vq->avail->flags) & VQ_AVAIL_F_NO_INTERRUPT);

	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true; /* first interrupt since start: nothing to compare with */
	return vq_need_event(vq_load16(vq_used_event(vq)), new_idx, old);
}

void vq_enable_notify(struct virtqueue *vq, bool enable)
{
	vq->notify_off = !enable;
	if (!vq->used || !vq_rings_live(vq))
		return;
	if (vq->event_idx) {
		/* Disabling is implicit: avail_event stays where it is, so the
		 * driver kicks at most once more. */
		if (enable)
			vq_store16(vq_avail_event(vq), vq->last_avail);
	} else {
		vq_store16(&vq->used->flags, enable ? 0 : VQ_USED_F_NO_NOTIFY);
	}
	vq_used_dirty(vq);
	if (enable)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool vq_has_work(struct virtqueue *vq)
{
	if (!vq->avail || !vq_rings_live(vq))
		return false;
	return vq_load16(&vq->avail->idx) != vq->last_avail;
}

/* Copy len bytes between buf and the chain's bytes from offset off, in the
 * direction to_iov says; the one walk behind both exported copies. */
static uint64_t vq_iov_copy(const struct iovec *iov, unsigned n, uint64_t off, uint8_t *buf,
			    uint64_t len, bool to_iov)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *guest = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(guest, buf + done, chunk);
		else
			memcpy(buf + done, guest, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

uint64_t vq_iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len)
{
	return vq_iov_copy(iov, n, off, buf, len, false);
}

uint64_t vq_buf_to_iov(const struct iovec *iov, unsigned n, uint64_t off, const void *buf, uint64_t len)
{
	/* buf is only read in this direction */
	return vq_iov_copy(iov, n, off, (uint8_t *)(uintptr_t)buf, len, true);
}
