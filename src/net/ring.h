/*
 * net ring: the shared-memory frame rings between hvmm and hvmm-net-slirp.
 *
 * Why: one unix-socket message per frame each way (skb alloc, copy, wake-up,
 * plus a poll/epoll round per frame on both sides) was most of the cost of
 * --network user. Frames now go through two single-producer/single-consumer
 * rings in a memfd both processes map; the socketpair stays only for control
 * (the READY/error handshake, and EOF = the peer died). Doorbells are two
 * eventfds, written only when the other side said it is going to sleep, so a
 * busy stream costs no syscall per frame (the vhost-user/passt idea).
 *
 *   ring NET_RING_TX: hvmm → helper (frames the guest sent)
 *   ring NET_RING_RX: helper → hvmm (frames for the guest)
 *
 * Each side trusts nothing it reads from the other: an index more than
 * NET_RING_SLOTS away from its own private copy, or a slot length out of
 * [NET_MIN_FRAME, NET_MAX_FRAME], marks the ring corrupt (hvmm: back end gone,
 * link down), and every slot offset is computed from the reader's own index,
 * never from shared memory. Producers and consumers keep their own index
 * privately and only publish it, so the peer cannot move it.
 *
 * The wake-up protocol (both directions alike):
 *  - consumer, before blocking: sleeping = 1 (seq_cst), then re-check the
 *    ring; if it is not empty, sleeping = 0 and carry on. On wake: sleeping = 0.
 *  - producer, after publishing a batch: seq_cst fence, then if sleeping,
 *    write the consumer's doorbell.
 *  - producer finding the ring full: waiting = 1 (seq_cst), re-check; the
 *    consumer, after freeing slots, clears waiting and writes the producer's
 *    doorbell if it was set. (So each eventfd means "look at both rings".)
 * Spurious doorbells are harmless; a missed one is impossible because each
 * side either sees the other's flag or the other sees its index.
 *
 * Both programs include this header (C11 atomics, lock-free on x86-64).
 */
#ifndef HVMM_NET_RING_H
#define HVMM_NET_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net.h"

#define NET_RING_MAGIC 0x676e6972766d6868ull /* "hhmvring" */
#define NET_RING_VERSION 1
#define NET_RING_SLOTS 512u              /* power of two */
#define NET_RING_SLOT_SIZE 2048u
#define NET_RING_TX 0
#define NET_RING_RX 1

/* The helper's inherited fds besides NET_SLIRP_FD (its control socket). */
#define NET_RING_SHM_FD 4
#define NET_RING_TXBELL_FD 5 /* hvmm → helper: tx frames, or rx space */
#define NET_RING_RXBELL_FD 6 /* helper → hvmm: rx frames, or tx space */
#define NET_RING_ARG "--ring" /* helper argv: hvmm-net-slirp --ring SPEC */

struct net_ring_ctl {
	alignas(64) _Atomic uint32_t head; /* producer: frames published (free-running) */
	alignas(64) _Atomic uint32_t tail; /* consumer: frames consumed (free-running) */
	alignas(64) _Atomic uint32_t sleeping; /* consumer is about to block */
	_Atomic uint32_t waiting;              /* producer found the ring full */
};

struct net_ring_slot {
	_Atomic uint32_t len;
	uint8_t data[NET_RING_SLOT_SIZE - sizeof(uint32_t)];
};

struct net_shm {
	uint64_t magic;
	uint32_t version, slots;
	struct net_ring_ctl ctl[2];
	struct net_ring_slot slot[2][NET_RING_SLOTS];
};

#define NET_SHM_SIZE sizeof(struct net_shm)

_Static_assert(NET_MAX_FRAME <= NET_RING_SLOT_SIZE - sizeof(uint32_t), "frame fits a slot");
_Static_assert((NET_RING_SLOTS & (NET_RING_SLOTS - 1)) == 0, "slots: power of two");
/* The layout is an ABI between two programs (and tests/cases_netdev.py, which
 * plays hvmm in Python): pin it. */
_Static_assert(offsetof(struct net_shm, ctl) == 64 && sizeof(struct net_ring_ctl) == 192, "ctl");
_Static_assert(offsetof(struct net_ring_ctl, tail) == 64 && offsetof(struct net_ring_ctl, sleeping) == 128 &&
	       offsetof(struct net_ring_ctl, waiting) == 132, "ctl fields");
_Static_assert(offsetof(struct net_shm, slot) == 448, "slots");

/* One side's private view of one ring. */
struct net_ring {
	struct net_ring_ctl *ctl;
	struct net_ring_slot *slot;
	uint32_t pos; /* producer: next head; consumer: next tail (never read back from shm) */
	bool corrupt;
};

static inline void net_ring_init(struct net_ring *r, struct net_shm *s, int which)
{
	r->ctl = &s->ctl[which];
	r->slot = s->slot[which];
	r->pos = 0;
	r->corrupt = false;
}

/* ---- producer ---- */

/* Free slots, or -1 if the consumer's tail is impossible. */
static inline int net_ring_space(struct net_ring *r)
{
	uint32_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
	uint32_t used = r->pos - tail;
	if (used > NET_RING_SLOTS) {
		r->corrupt = true;
		return -1;
	}
	return (int)(NET_RING_SLOTS - used);
}

/* The next slot's buffer, for a producer that checked net_ring_space() > 0. */
static inline uint8_t *net_ring_slot_buf(struct net_ring *r)
{
	return r->slot[r->pos & (NET_RING_SLOTS - 1)].data;
}

/* Publish the slot filled through net_ring_slot_buf (len ≤ NET_MAX_FRAME). */
static inline void net_ring_publish(struct net_ring *r, uint32_t len)
{
	atomic_store_explicit(&r->slot[r->pos & (NET_RING_SLOTS - 1)].len, len, memory_order_relaxed);
	r->pos++;
	atomic_store_explicit(&r->ctl->head, r->pos, memory_order_release);
}

/* 1 pushed, 0 full, -1 corrupt. */
static inline int net_ring_push(struct net_ring *r, const void *buf, size_t len)
{
	int sp = net_ring_space(r);
	if (sp <= 0)
		return sp;
	memcpy(net_ring_slot_buf(r), buf, len);
	net_ring_publish(r, (uint32_t)len);
	return 1;
}

/* After a batch: must the consumer's doorbell be written? */
static inline bool net_ring_need_kick(struct net_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&r->ctl->sleeping, memory_order_relaxed) != 0;
}

/* The ring was full: ask for a doorbell when space appears. true: space
 * appeared meanwhile (or corrupt: check r->corrupt), go on without waiting. */
static inline bool net_ring_wait_space(struct net_ring *r)
{
	atomic_store_explicit(&r->ctl->waiting, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	return net_ring_space(r) != 0;
}

/* ---- consumer ---- */

/* Frames waiting, or -1 if the producer's head is impossible. */
static inline int net_ring_avail(struct net_ring *r)
{
	uint32_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	uint32_t n = head - r->pos;
	if (n > NET_RING_SLOTS) {
		r->corrupt = true;
		return -1;
	}
	return (int)n;
}

/* The next frame (the caller checked net_ring_avail() > 0): its data, and
 * its length read once and checked; NULL (corrupt) on an impossible length. */
static inline const uint8_t *net_ring_peek(struct net_ring *r, size_t *len)
{
	struct net_ring_slot *s = &r->slot[r->pos & (NET_RING_SLOTS - 1)];
	uint32_t l = atomic_load_explicit(&s->len, memory_order_relaxed);
	if (l < NET_MIN_FRAME || l > NET_MAX_FRAME) {
		r->corrupt = true;
		return NULL;
	}
	*len = l;
	return s->data;
}

/* Done with the peeked frame. */
static inline void net_ring_consume(struct net_ring *r)
{
	r->pos++;
	atomic_store_explicit(&r->ctl->tail, r->pos, memory_order_release);
}

/* After freeing slots: must the producer's doorbell be written? */
static inline bool net_ring_need_space_kick(struct net_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&r->ctl->waiting, memory_order_relaxed))
		return false;
	atomic_store_explicit(&r->ctl->waiting, 0, memory_order_relaxed);
	return true;
}

/* About to block: true if it may (the ring is still empty); false if a frame
 * arrived meanwhile (or the ring is corrupt), and sleeping is cleared again. */
static inline bool net_ring_prepare_sleep(struct net_ring *r)
{
	atomic_store_explicit(&r->ctl->sleeping, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	if (net_ring_avail(r) == 0)
		return true;
	atomic_store_explicit(&r->ctl->sleeping, 0, memory_order_relaxed);
	return false;
}

static inline void net_ring_awake(struct net_ring *r)
{
	atomic_store_explicit(&r->ctl->sleeping, 0, memory_order_relaxed);
}

#endif
