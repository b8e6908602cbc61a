/*
 * virtqueue: the device side of a virtio 1.2 split virtqueue, over guest RAM.
 *
 * Everything the guest hands over is hostile: the ring addresses, the indices,
 * every descriptor's address, length, flags and next. vq_pop() checks all of
 * it before the device sees a byte, and turns a chain into iovecs that lie
 * wholly inside guest RAM (mem_ptr), so a back end can read and write them
 * (or give them to io_uring / a socket) without further checks.
 *
 * A malformed ring is a driver bug the device cannot recover from: vq_pop()
 * returns VQ_ERR_* and the caller sets DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2)
 * and stops using the queue. Features: VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC.
 *
 * Behind an IOMMU (VIRTIO_F_ACCESS_PLATFORM negotiated) every address the
 * driver gives — rings, indirect tables, buffers — is an IOVA: vq_start_dma()
 * installs a translator, and each is translated with the access's direction
 * (rings and tables read, used ring and device-writable buffers written). A
 * buffer whose pages map to scattered guest-physical pages becomes several
 * iovecs; a ring or an indirect table must map to one contiguous range
 * (Linux allocates both contiguous) or the queue breaks with VQ_ERR_DMA.
 * Ring pointers are translations kept across calls, so every entry point
 * first compares the translator's generation with the one they were made
 * under and translates the rings again after any invalidation. Without a
 * translator an address is guest-physical and costs one pointer test.
 *
 * Not thread-safe: one queue is used by one thread (the event loop).
 */
#ifndef HVMM_VIRTQUEUE_H
#define HVMM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../memory.h"

#define VQ_MAX_SIZE 1024 /* largest queue size hvmm offers (power of two) */
#define VQ_MAX_SEGS 1024 /* iovecs in one chain (direct + indirect) */

enum vq_err {
	VQ_OK = 0,
	VQ_ERR_RING = -1,      /* ring not inside RAM, or avail idx moved > size */
	VQ_ERR_DESC_INDEX = -2, /* head or next >= size (or >= indirect table length) */
	VQ_ERR_DESC_ADDR = -3,  /* a buffer outside RAM, or running past its end */
	VQ_ERR_LOOP = -4,       /* chain longer than the queue / table: a loop */
	VQ_ERR_INDIRECT = -5,   /* bad indirect table (len, nested, with NEXT, feature off) */
	VQ_ERR_ORDER = -6,      /* a device-readable descriptor after a writable one */
	VQ_ERR_SEGS = -7,       /* more than VQ_MAX_SEGS iovecs */
	VQ_ERR_DMA = -8,        /* an IOVA the IOMMU refused (a DMA fault, recorded there), or
				 * a ring / indirect table not contiguous after translation */
};

/* IOVA → guest-physical translation of one device (its requester id is in
 * opaque). translate: 0, or a fault (already recorded by the IOMMU); *avail
 * bytes from *gpa on are mapped the same way. generation: changes whenever
 * earlier translations may no longer hold. */
struct vq_dma {
	int (*translate)(void *opaque, uint64_t iova, bool write, uint64_t *gpa, uint64_t *avail);
	uint64_t (*generation)(void *opaque);
	void *opaque;
};
const char *vq_err_str(int err);

struct virtqueue {
	const struct guest_mem *mem;
	const struct vq_dma *dma; /* NULL: addresses are guest-physical */
	uint64_t dma_gen;       /* generation the ring pointers were translated under */
	uint64_t dma_retranslations; /* ring re-translations after invalidations (statistics) */
	uint16_t size;          /* power of two, 1..VQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx, indirect; /* negotiated features */
	/* host pointers, set by vq_start() after the ring checks */
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
	uint16_t last_avail;    /* next avail entry to pop */
	uint16_t used_idx;      /* shadow of used->idx */
	uint16_t signalled_used; /* used idx at the last interrupt (EVENT_IDX) */
	bool signalled_valid;
	uint64_t errors;        /* malformed chains seen (statistics) */
	uint64_t walked;        /* descriptors read: what the chains cost (tests read it) */
	int broken;             /* first VQ_ERR_* seen; vq_pop keeps returning it */
	bool notify_off;        /* vq_enable_notify(false) in effect */
};

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VQ_CHAIN_MAX 65536u /* entries a 16-bit `next` can reach in one table */
#define VQ_DESC_F_NEXT 1
#define VQ_DESC_F_WRITE 2
#define VQ_DESC_F_INDIRECT 4
#define VQ_AVAIL_F_NO_INTERRUPT 1 /* avail->flags: driver needs no interrupt */
#define VQ_USED_F_NO_NOTIFY 1     /* used->flags: device needs no notify */

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
	/* uint16_t used_event after ring[size] */
};
struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[];
	/* uint16_t avail_event after ring[size] */
};

/* One popped chain: out[] the device reads, in[] the device writes. */
struct vq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len; /* total bytes */
	struct iovec out[VQ_MAX_SEGS];
	struct iovec in[VQ_MAX_SEGS];
};

/* Checks size and that the three rings lie inside RAM (alignment per spec);
 * VQ_OK or VQ_ERR_RING. Resets the indices. */
int vq_start(struct virtqueue *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	     uint64_t avail, uint64_t used, bool event_idx, bool indirect);
/* The same with ring addresses (and later every descriptor's) being IOVAs
 * translated by dma (NULL: as vq_start). VQ_ERR_RING or VQ_ERR_DMA. */
int vq_start_dma(struct virtqueue *vq, const struct guest_mem *mem, const struct vq_dma *dma,
		 uint16_t size, uint64_t desc, uint64_t avail, uint64_t used, bool event_idx,
		 bool indirect);
/* Forget the rings (queue disabled or device reset); the struct can be vq_start()ed again. */
void vq_stop(struct virtqueue *vq);
/*
 * 1: a chain was popped into *e; 0: ring empty; < 0: VQ_ERR_* (queue is broken,
 * and stays so: later calls return the same error until vq_start()).
 * With EVENT_IDX (and notifies not disabled) it keeps avail_event at the next
 * entry to pop, and when it finds the ring empty it has already re-checked
 * after publishing avail_event: a 0 means the driver will kick for the next
 * buffer. Pure: touches only *vq, *e and guest RAM (libFuzzer-friendly).
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *e);
/* Return a chain with `written` bytes written into its in[] buffers. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written);
/* The same for a chain the device wrote into: its in[] buffers are marked
 * written for a migration in progress (memory.h's mem_mark_dirty). */
void vq_push_elem(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);
/* After pushes: does the driver want an interrupt now? (EVENT_IDX or NO_INTERRUPT flag.) */
bool vq_need_interrupt(struct virtqueue *vq);
/* Ask the driver for (or to suppress) notifies: avail_event or used->flags.
 * Enabling ends with a full fence: call vq_has_work() after it to close the
 * race with a driver that added buffers while notifies were off. */
void vq_enable_notify(struct virtqueue *vq, bool enable);
/* Are there chains the device has not popped yet? */
bool vq_has_work(struct virtqueue *vq);

/*
 * Snapshots: a queue's device-side state as plain data, so that a restored
 * queue goes on MID-FLIGHT where the saved one was. The rings themselves are
 * guest RAM, which the snapshot carries separately.
 */
struct vq_state {
	uint64_t desc, avail, used;   /* ring addresses (IOVAs behind an IOMMU) */
	uint16_t size, last_avail, used_idx, signalled_used;
	uint8_t started;              /* the rings were mapped (vq_start succeeded) */
	uint8_t signalled_valid, event_idx, indirect, notify_off;
	uint8_t pad[3];
	int32_t broken;               /* VQ_ERR_* the queue is stuck at, 0: none */
	uint32_t pad2;
};
_Static_assert(sizeof(struct vq_state) == 48, "vq_state is a file layout: no hidden padding");
/* Fill *s (every byte, padding zeroed: a save is deterministic). */
void vq_save(const struct virtqueue *vq, struct vq_state *s);
/*
 * Rebuild a queue from *s over mem (dma as for vq_start_dma). Unlike
 * vq_start nothing is written to guest RAM and the indices are the saved
 * ones. Everything in *s is checked as guest input is: VQ_OK, or VQ_ERR_RING
 * (bad size, alignment, indices, flags, or rings not in RAM) / VQ_ERR_DMA,
 * with *vq then stopped.
 */
int vq_restore(struct virtqueue *vq, const struct guest_mem *mem, const struct vq_dma *dma,
	       const struct vq_state *s);
/* Walk the chain at `head` into *e again, without touching the avail ring
 * or the indices (a restored device re-reading a chain it had popped before
 * the snapshot). VQ_OK or VQ_ERR_*; the queue is not marked broken. */
int vq_rewalk(struct virtqueue *vq, uint16_t head, struct vq_elem *e);

/* Copy helpers over an iovec array; return bytes copied. */
uint64_t vq_iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len);
uint64_t vq_buf_to_iov(const struct iovec *iov, unsigned n, uint64_t off, const void *buf, uint64_t len);

/* virtio 1.2 §2.7.10: should an event be sent when the index moved old → new_idx? */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
