/*
 * virtio-net (virtio 1.2 §5.1): one receive and one transmit queue over a
 * back end that carries whole Ethernet frames: a tap fd (one read/write per
 * frame), or the slirp helper's shared-memory rings (src/net/ring.h), with
 * its control socket watched only for its death (src/net/net.h).
 *
 * Features: MAC (52:54:00:12:34:56, last byte + n for the n-th --network),
 * STATUS (link up; down if the back end goes away) and MTU (1500). No
 * MRG_RXBUF, no checksum or segmentation offloads, no control queue: every
 * frame is at most 1518 bytes, and goes in or out as one descriptor chain
 * that starts with the 12-byte virtio_net_hdr (VERSION_1 layout, with
 * num_buffers, which the device sets to 1). So the driver must post receive
 * chains of at least 12 + 1514 bytes (§5.1.6.3.1); a frame that does not
 * fit the chain it gets is dropped and counted, and the chain returned with
 * 0 bytes. Not offering MRG_RXBUF keeps the rx path free of the one hard case
 * (running out of buffers in the middle of a frame), and costs nothing when
 * no offloads make frames larger than a page.
 *
 * Threads: the back-end fd and the queue notifies are both handled on the
 * event-loop thread; driver_ok and reset can come from a vCPU thread. One
 * mutex covers the model's state. Interrupts and DEVICE_NEEDS_RESET are
 * raised after it is dropped, so the transport's locks are never taken
 * inside ours.
 *
 * Flow control, never a silent drop:
 *  - rx: a frame is read from the back end into a host buffer first, then
 *    copied into the next receive chain. If the guest has posted none, the
 *    frame waits, EPOLLIN is turned off (the back end buffers, and at its
 *    limit drops and counts: the kernel for tap, the helper for slirp) and
 *    the guest's next rx kick resumes reading. With the rings, "EPOLLIN off"
 *    is not telling the helper we sleep, so it does not ring.
 *  - tx: each chain is copied out, returned to the guest and sent as one
 *    message. On EAGAIN (a full tx ring) the frame waits, EPOLLOUT is turned
 *    on (the rings: we ask the helper to ring when it frees a slot) and the
 *    tx queue is not read again until the frame is gone.
 * With the rings every index and length read from shared memory is checked
 * (ring.h); an impossible one means the helper is broken: back end gone.
 *
 * Rate limits (tx-bw=, tx-pps=, rx-bw=, rx-pps= in the --network spec;
 * src/ratelimit.c's token buckets, a frame's Ethernet length in bytes and one
 * operation per frame), the same for every back end and, like virtio-blk's,
 * by waiting, never by dropping:
 *  - tx: chains are taken into a hold queue of NET_TX_HOLD frames (the
 *    ring's size) and returned to the guest at once; the queue drains into
 *    the back end as the bucket allows, and a timerfd on the event loop
 *    resumes it. While the queue is full the device takes no chain: frames
 *    stay in the guest's ring (its driver stops the queue when the ring is
 *    full), kicks stay off. Why a queue rather than leaving every chain in
 *    the ring: Linux's TCP keeps only about a millisecond of data in the
 *    driver (TCP small queues) and sends more when a chain comes back, so
 *    with chains held in the ring the throughput was bounded by the round
 *    trip of a completion, not by the limit (6 MiB at 1 MiB/s took 82 s in
 *    the nested KVM host, where that round trip costs milliseconds).
 *  - rx: while the bucket is empty the device reads nothing from the back
 *    end: tap keeps its frames in the kernel's queue (EPOLLIN off), the helper
 *    in its ring, and the helper stops reading its host sockets while the
 *    ring is nearly full (TCP's own flow control then slows the sender:
 *    nothing is dropped that would need a retransmission). The same timer
 *    resumes it. The helper's doorbell is not even watched then, so a
 *    helper that rings without pause costs one wake-up per refill, not a
 *    spinning loop; without a limit each wake-up is bounded by
 *    NET_RX_BUDGET frames, each of which needs a receive buffer the guest
 *    posted.
 */
#include "virtio.h"
#include "virtio_net.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../device.h"
#include "../evloop.h"
#include "../net/net.h"
#include "../net/ring.h"
#include "../ratelimit.h"
#include "../snapshot.h"
#include "../util.h"
#include "../device.h"
#include "../vm_config.h"

/* Frames per event-loop callback before yielding to other devices (the fd is
 * level-triggered, so the loop comes back). */
#define NET_RX_BUDGET 64
/* Tx chains per kick; past it, EPOLLOUT (almost always ready) brings us
 * back, so a guest streaming tx cannot hold the loop thread forever. */
#define NET_TX_BUDGET 256
#define NET_RX_BUF 65536
/* Frames a limited tx holds, taken from the guest and not yet sent: as
 * many as its ring, so a full queue costs the guest nothing it had not
 * already posted. Allocated only for a device with a tx limit. */
#define NET_TX_HOLD VIRTIO_NET_QUEUE_MAX
#define NET_RL_MIN_WAIT 5000000ull /* ns */

struct net_held {
	size_t len;
	uint8_t data[NET_MAX_FRAME];
};

struct virtio_net {
	struct evloop *loop;
	struct dev_snapshot snap; /* is a save for files (keep=) */
	bool restore;             /* --restore: attached to the snapshot's helper */
	struct virtio_dev *dev;
	pthread_mutex_t lock;
	int fd;               /* the back end, non-blocking (rings: the helper's control socket) */
	bool is_socket;       /* slirp helper: send(MSG_NOSIGNAL), recv(MSG_TRUNC) */
	pid_t helper;         /* slirp helper's PID, 0 for tap */
	bool ring;            /* frames go through slirp's shared rings, not fd */
	struct net_slirp slirp;
	struct net_ring txr, rxr; /* we produce tx, consume rx */
	bool tx_kick;         /* tx frames published since the last doorbell check */
	bool watched;         /* fd (and with the rings the rx doorbell) is in the event loop */
	bool alive;           /* back end still there */
	bool running;         /* DRIVER_OK and not reset */
	uint32_t ev;          /* events the loop watches */
	uint8_t mac[6];
	uint16_t status;      /* VIRTIO_NET_S_* */

	bool rx_pending;      /* rx_frame holds a frame not yet delivered */
	bool rx_stalled;      /* no receive chain: EPOLLIN off until the guest kicks */
	size_t rx_len;
	bool tx_pending;      /* tx_frame holds a frame the back end has not taken */
	bool tx_more;         /* budget ran out with chains left */
	size_t tx_len;

	/* rate limits: a limited direction waits on rl_timer while its bucket is empty */
	struct ratelimit tx_rl, rx_rl;
	bool tx_limited, rx_limited;
	bool tx_throttled, rx_throttled;
	int rl_timer;         /* -1 without limits */
	struct net_held *held; /* tx_limited: NET_TX_HOLD frames waiting for tokens */
	unsigned held_head, held_n;
	uint64_t rl_deadline; /* when the armed timer fires (ns, util_now_ns), 0: disarmed */

	struct virtio_net_stats stats;
	struct vq_elem elem;
	uint8_t tx_frame[NET_MAX_FRAME];
	uint8_t rx_frame[NET_RX_BUF];
};

/* What to raise once the lock is dropped. */
struct net_after {
	bool irq[2];
	bool config;
	const char *broken;
};

static void net_backend_event(void *opaque, uint32_t events);

static void net_bell(int fd)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is saturated, the reader wakes anyway */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		util_err("virtio-net: doorbell: %s", strerror(errno));
}

static void net_update_events(struct virtio_net *n)
{
	uint32_t ev = 0;
	if (n->ring) {
		/* The rx doorbell means rx frames or tx space: always of interest.
		 * The control socket stays on EPOLLIN (EOF) from attach to gone. */
		ev = n->alive && n->running ? EPOLLIN : 0;
		/* Waiting for the rx bucket with no tx work: the timer, not the
		 * helper, brings us back, and a helper ringing without pause
		 * would only spin the loop. */
		if (n->rx_throttled && !n->tx_pending && !n->tx_more)
			ev = 0;
		if (n->watched && ev != n->ev && evloop_mod(n->loop, n->slirp.rxbell, ev) == 0)
			n->ev = ev;
		return;
	}
	if (n->alive && n->running) {
		if (!n->rx_stalled && !n->rx_throttled)
			ev |= EPOLLIN;
		if (n->tx_pending || n->tx_more)
			ev |= EPOLLOUT;
	}
	if (n->watched && ev != n->ev && evloop_mod(n->loop, n->fd, ev) == 0)
		n->ev = ev;
}

/* The back end closed (helper exited, tap interface deleted): stop watching
 * it, take the link down, and drop (counting) whatever the guest sends. */
static void net_backend_gone(struct virtio_net *n, struct net_after *a, const char *why)
{
	if (!n->alive)
		return;
	n->alive = false;
	n->stats.backend_gone++;
	if (n->watched) {
		evloop_del(n->loop, n->fd); /* on the loop thread: does not wait for us */
		if (n->ring)
			evloop_del(n->loop, n->slirp.rxbell);
		n->watched = false;
	}
	n->status &= (uint16_t)~VIRTIO_NET_S_LINK_UP;
	a->config = true;
	util_err("virtio-net: back end %s (%s): link down", n->is_socket ? "slirp helper" : "tap", why);
}

/* ---- rate limits ---- */

/* Come back in wait_ns (at least NET_RL_MIN_WAIT: what the bucket earns
 * meanwhile goes out together, as one batch, and a 1 MiB/s limit costs ~200
 * wake-ups a second rather than one per frame; the bucket holds a second's
 * worth, so nothing earned is lost), or sooner if the timer is already set
 * for sooner. */
static void net_rl_arm(struct virtio_net *n, uint64_t now, uint64_t wait_ns)
{
	if (wait_ns < NET_RL_MIN_WAIT)
		wait_ns = NET_RL_MIN_WAIT;
	uint64_t deadline = now + wait_ns;
	if (n->rl_deadline && n->rl_deadline <= deadline)
		return;
	struct itimerspec its = { .it_value = { (time_t)(wait_ns / 1000000000u),
						(long)(wait_ns % 1000000000u) } };
	if (timerfd_settime(n->rl_timer, 0, &its, NULL) == 0)
		n->rl_deadline = deadline;
}

/* May the next frame of this direction go? If not, *throttled is set and
 * the timer armed: the direction waits for it. */
static bool net_rl_ready(struct virtio_net *n, struct ratelimit *rl, bool *throttled)
{
	uint64_t now = util_now_ns(), wait;
	if (rl_ready(rl, now, &wait))
		return true;
	*throttled = true;
	net_rl_arm(n, now, wait);
	return false;
}

/* ---- transmit ---- */

/* tx_frame into the tx ring. false: it must wait (ring full; the helper
 * rings when it frees a slot). */
static bool net_send_ring(struct virtio_net *n, struct net_after *a)
{
	for (;;) {
		int sp = net_ring_space(&n->txr);
		if (sp < 0) {
			n->stats.tx_errors++;
			n->tx_pending = false;
			net_backend_gone(n, a, "corrupt tx ring");
			return true;
		}
		if (sp > 0)
			break;
		if (!n->tx_pending)
			n->stats.tx_blocked++;
		n->tx_pending = true;
		if (!net_ring_wait_space(&n->txr))
			return false;
	}
	net_ring_push(&n->txr, n->tx_frame, n->tx_len);
	n->tx_kick = true;
	n->stats.tx_frames++;
	n->stats.tx_bytes += n->tx_len;
	n->tx_pending = false;
	return true;
}

/* Hand tx_frame to the back end. false: it must wait (EAGAIN). */
static bool net_send(struct virtio_net *n, struct net_after *a)
{
	if (n->ring)
		return net_send_ring(n, a);
	for (;;) {
		ssize_t r = n->is_socket ? send(n->fd, n->tx_frame, n->tx_len, MSG_DONTWAIT | MSG_NOSIGNAL)
					 : write(n->fd, n->tx_frame, n->tx_len);
		if (r == (ssize_t)n->tx_len) {
			n->stats.tx_frames++;
			n->stats.tx_bytes += n->tx_len;
			n->tx_pending = false;
			return true;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			if (!n->tx_pending)
				n->stats.tx_blocked++;
			n->tx_pending = true;
			return false;
		}
		n->stats.tx_errors++;
		n->tx_pending = false;
		if (r < 0 && (errno == EPIPE || errno == ECONNRESET || errno == EBADFD))
			net_backend_gone(n, a, strerror(errno));
		return true; /* dropped, counted: the next frame may go through (tap down → EIO) */
	}
}

/* A limited tx: send held frames while the bucket allows. Stops when it is
 * empty (timer armed), or the back end is full (tx_pending). */
static void net_tx_drain(struct virtio_net *n, struct net_after *a)
{
	while (n->held_n && !n->tx_pending && !n->tx_throttled) {
		if (!net_rl_ready(n, &n->tx_rl, &n->tx_throttled))
			return;
		struct net_held *h = &n->held[n->held_head];
		n->tx_len = h->len;
		memcpy(n->tx_frame, h->data, h->len);
		n->held_head = (n->held_head + 1) % NET_TX_HOLD;
		n->held_n--;
		rl_take(&n->tx_rl, n->tx_len);
		if (!n->alive)
			n->stats.tx_errors++;
		else
			net_send(n, a);
	}
}

static void net_tx_chains(struct virtio_net *n, struct net_after *a)
{
	n->tx_more = false;
	if (n->tx_pending && !net_send(n, a))
		return;
	if (n->tx_limited)
		net_tx_drain(n, a);
	struct virtqueue *vq = virtio_queue(n->dev, VIRTIO_NET_TXQ);
	if (!vq)
		return;
	/* No kicks while we drain: each one is an MMIO exit the guest pays for
	 * (emulated by KVM), and we are reading the queue anyway. Back on when
	 * it is empty; left off while a frame waits for the back end (its
	 * doorbell or EPOLLOUT, not a kick, resumes us). */
	vq_enable_notify(vq, false);
	for (int budget = NET_TX_BUDGET; budget > 0; budget--) {
		/* Over the limit with the hold queue full (or the back end full):
		 * chains stay in the ring, kicks stay off, and the timer (or the
		 * back end) brings us back. */
		if (n->tx_limited && (n->tx_pending || n->held_n == NET_TX_HOLD))
			return;
		struct vq_elem *e = &n->elem;
		int r = vq_pop(vq, e);
		if (r == 0) {
			vq_enable_notify(vq, true);
			if (!vq_has_work(vq))
				return;
			vq_enable_notify(vq, false); /* a chain came before notifies were back */
			budget++;
			continue;
		}
		if (r < 0) {
			a->broken = vq_err_str(r);
			return;
		}
		/* Device-writable descriptors in a tx chain are ignored (nothing to
		 * write back); the header's contents too: no offload was offered. */
		uint64_t len = e->out_len;
		bool ok = len >= VIRTIO_NET_HDR_LEN + NET_MIN_FRAME &&
			  len <= VIRTIO_NET_HDR_LEN + NET_MAX_FRAME;
		if (ok && n->tx_limited) {
			struct net_held *h = &n->held[(n->held_head + n->held_n) % NET_TX_HOLD];
			h->len = (size_t)(len - VIRTIO_NET_HDR_LEN);
			vq_iov_to_buf(e->out, e->n_out, VIRTIO_NET_HDR_LEN, h->data, h->len);
			n->held_n++;
		} else if (ok) {
			n->tx_len = (size_t)(len - VIRTIO_NET_HDR_LEN);
			vq_iov_to_buf(e->out, e->n_out, VIRTIO_NET_HDR_LEN, n->tx_frame, n->tx_len);
		} else {
			n->stats.tx_bad++;
		}
		/* The frame is copied: the chain goes back now, whatever the back end does. */
		vq_push_elem(vq, e, 0);
		a->irq[VIRTIO_NET_TXQ] = true;
		if (!ok)
			continue;
		if (n->tx_limited) {
			net_tx_drain(n, a);
			continue;
		}
		if (!n->alive) {
			n->stats.tx_errors++;
			continue;
		}
		if (!net_send(n, a))
			return; /* EPOLLOUT brings us back */
	}
	n->tx_more = vq_has_work(vq);
}

static void net_tx(struct virtio_net *n, struct net_after *a)
{
	net_tx_chains(n, a);
	if (!n->ring)
		return;
	/* One doorbell per batch, and only if the helper is going to sleep. */
	if (n->alive && n->tx_kick && net_ring_need_kick(&n->txr))
		net_bell(n->slirp.txbell);
	n->tx_kick = false;
	if (n->alive && n->running && n->tx_more)
		net_bell(n->slirp.rxbell); /* budget spent: our own doorbell brings us back */
}

/* ---- receive ---- */

/* The next frame of the rx ring into rx_frame: 1, or 0 when the ring is
 * empty (we told the helper we sleep) or corrupt (back end gone). */
static int net_read_ring(struct virtio_net *n, struct net_after *a)
{
	int av;
	while ((av = net_ring_avail(&n->rxr)) == 0)
		if (net_ring_prepare_sleep(&n->rxr))
			return 0;
	size_t len = 0;
	const uint8_t *f = av > 0 ? net_ring_peek(&n->rxr, &len) : NULL;
	if (!f) {
		net_backend_gone(n, a, "corrupt rx ring");
		return 0;
	}
	memcpy(n->rx_frame, f, len);
	net_ring_consume(&n->rxr);
	n->rx_len = len;
	n->rx_pending = true;
	return 1;
}

/* Read one frame from the back end into rx_frame. 1: got one; 0: nothing
 * (or the back end closed). */
static int net_read(struct virtio_net *n, struct net_after *a)
{
	if (n->ring)
		return net_read_ring(n, a);
	for (;;) {
		ssize_t r = n->is_socket ? recv(n->fd, n->rx_frame, sizeof(n->rx_frame), MSG_DONTWAIT | MSG_TRUNC)
					 : read(n->fd, n->rx_frame, sizeof(n->rx_frame));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				net_backend_gone(n, a, strerror(errno));
			return 0;
		}
		if (r == 0) {
			/* seqpacket EOF: the helper exited (tap reads never return 0) */
			net_backend_gone(n, a, "closed");
			return 0;
		}
		/* Longer than the MTU we advertise (a tap with a bigger MTU, a
		 * broken helper): §5.1.6.3.2 forbids passing it on, and nothing
		 * was negotiated that would make it legitimate. r past the buffer
		 * is a truncated frame (MSG_TRUNC), longer still. */
		if (r < NET_MIN_FRAME || r > NET_MAX_FRAME) {
			n->stats.rx_bad++;
			continue;
		}
		n->rx_len = (size_t)r;
		n->rx_pending = true;
		return 1;
	}
}

static void net_rx_chains(struct virtio_net *n, struct net_after *a)
{
	struct virtqueue *vq = virtio_queue(n->dev, VIRTIO_NET_RXQ);
	/* The guest's rx kicks (one per reposted buffer) are only needed when we
	 * run out of buffers: off until then (QEMU's virtio-net does the same). */
	if (vq && !vq->notify_off)
		vq_enable_notify(vq, false);
	for (int budget = NET_RX_BUDGET; budget > 0; budget--) {
		/* Over the limit: the frames stay in the back end (an empty
		 * helper ring takes the normal path, so the helper is told we
		 * sleep), and the timer brings us back. */
		if (n->rx_limited && n->alive && (n->rx_pending || !n->ring || net_ring_avail(&n->rxr) != 0) &&
		    !net_rl_ready(n, &n->rx_rl, &n->rx_throttled))
			return;
		if (!n->rx_pending && (!n->alive || !net_read(n, a)))
			return;
		struct vq_elem *e = &n->elem;
		int r = vq ? vq_pop(vq, e) : 0;
		if (r == 0 && vq) {
			vq_enable_notify(vq, true); /* a kick for the next buffer, then re-check */
			r = vq_pop(vq, e);
			if (r != 0)
				vq_enable_notify(vq, false);
		}
		if (r < 0) {
			a->broken = vq_err_str(r);
			n->rx_stalled = true; /* until the reset */
			return;
		}
		if (r == 0) {
			/* No receive buffer: keep the frame, stop reading the back end
			 * until the guest posts more (its kick calls net_rx again). */
			n->rx_stalled = true;
			n->stats.rx_stalls++;
			return;
		}
		n->rx_pending = false;
		a->irq[VIRTIO_NET_RXQ] = true;
		if (n->rx_limited)
			rl_take(&n->rx_rl, n->rx_len);
		if (e->in_len < VIRTIO_NET_HDR_LEN + n->rx_len) {
			n->stats.rx_too_big++;
			vq_push_elem(vq, e, 0);
			continue;
		}
		/* virtio_net_hdr: no flags, no GSO, num_buffers = 1 (le16) */
		uint8_t hdr[VIRTIO_NET_HDR_LEN] = { [10] = 1 };
		vq_buf_to_iov(e->in, e->n_in, 0, hdr, sizeof(hdr));
		vq_buf_to_iov(e->in, e->n_in, VIRTIO_NET_HDR_LEN, n->rx_frame, n->rx_len);
		vq_push_elem(vq, e, (uint32_t)(VIRTIO_NET_HDR_LEN + n->rx_len));
		n->stats.rx_frames++;
		n->stats.rx_bytes += n->rx_len;
	}
	/* Budget spent with frames maybe left: our own doorbell brings us back. */
	if (n->ring && n->alive)
		net_bell(n->slirp.rxbell);
}

static void net_rx(struct virtio_net *n, struct net_after *a)
{
	if (!n->ring) {
		net_rx_chains(n, a);
		return;
	}
	/* Awake while we drain: the helper need not ring for what it adds. An
	 * empty ring sets the flag again (net_read_ring); a stall leaves it
	 * clear, since the guest's rx kick, not the helper, resumes us. */
	net_ring_awake(&n->rxr);
	uint32_t before = n->rxr.pos;
	net_rx_chains(n, a);
	if (n->alive && n->rxr.pos != before && net_ring_need_space_kick(&n->rxr))
		net_bell(n->slirp.txbell); /* the helper waits for rx space */
}

/* ---- after the lock ---- */

static void net_finish(struct virtio_net *n, const struct net_after *a)
{
	for (unsigned q = 0; q < 2; q++)
		if (a->irq[q])
			virtio_queue_interrupt(n->dev, q);
	if (a->config)
		virtio_config_changed(n->dev);
	if (a->broken)
		virtio_dev_needs_reset(n->dev, a->broken);
}

/* ---- event loop ---- */

static void net_backend_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct net_after a = { 0 };
	pthread_mutex_lock(&n->lock);
	if (n->alive && n->running) {
		if (events & EPOLLOUT)
			net_tx(n, &a);
		if ((events & EPOLLIN) && !n->rx_stalled && !n->rx_throttled)
			net_rx(n, &a);
	}
	/* HUP/ERR are reported even when we watch nothing: with no EPOLLIN to
	 * find the EOF, they are how a dead back end shows up. */
	if (n->alive && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
		net_backend_gone(n, &a, events & EPOLLERR ? "error" : "hang-up");
	net_update_events(n);
	pthread_mutex_unlock(&n->lock);
	net_finish(n, &a);
}

/* The rx doorbell: rx frames, tx space, or our own "come back". */
static void net_bell_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct net_after a = { 0 };
	(void)events;
	uint64_t v;
	pthread_mutex_lock(&n->lock);
	if (n->alive && read(n->slirp.rxbell, &v, sizeof(v)) < 0 && errno != EAGAIN)
		net_backend_gone(n, &a, strerror(errno));
	if (n->alive && n->running) {
		if (n->tx_pending || n->tx_more)
			net_tx(n, &a);
		if (!n->rx_stalled && !n->rx_throttled)
			net_rx(n, &a);
	}
	net_update_events(n);
	pthread_mutex_unlock(&n->lock);
	net_finish(n, &a);
}

/* The rate-limit timer: a bucket that was empty allows a frame again. */
static void net_rl_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct net_after a = { 0 };
	uint64_t v;
	(void)events;
	pthread_mutex_lock(&n->lock);
	if (read(n->rl_timer, &v, sizeof(v)) == (ssize_t)sizeof(v)) { /* else disarmed by a reset meanwhile */
		n->rl_deadline = 0;
		bool tx = n->tx_throttled, rx = n->rx_throttled;
		n->tx_throttled = n->rx_throttled = false;
		if (n->alive && n->running) {
			if (tx)
				net_tx(n, &a);
			if (rx && !n->rx_stalled)
				net_rx(n, &a);
		}
		net_update_events(n);
	}
	pthread_mutex_unlock(&n->lock);
	net_finish(n, &a);
}

/* The helper's control socket: nothing comes after READY but its EOF. */
static void net_ctl_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct net_after a = { 0 };
	char buf[256];
	pthread_mutex_lock(&n->lock);
	if (n->alive) {
		ssize_t r = recv(n->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			net_backend_gone(n, &a, r == 0 ? "closed" : strerror(errno));
		else if (r < 0 && (events & (EPOLLHUP | EPOLLERR)))
			net_backend_gone(n, &a, events & EPOLLERR ? "error" : "hang-up");
	}
	pthread_mutex_unlock(&n->lock);
	net_finish(n, &a);
}

/* ---- virtio_dev_ops ---- */

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_net *n = virtio_dev_opaque(d);
	struct net_after a = { 0 };
	pthread_mutex_lock(&n->lock);
	if (n->running) {
		if (q == VIRTIO_NET_RXQ) {
			n->rx_stalled = false;
			if (!n->rx_throttled)
				net_rx(n, &a);
		} else if (q == VIRTIO_NET_TXQ && !n->tx_pending) {
			/* also while the bucket is empty: the kick's chains go into
			 * the hold queue, and the guest has them back at once */
			net_tx(n, &a);
		}
		net_update_events(n);
	}
	pthread_mutex_unlock(&n->lock);
	net_finish(n, &a);
}

static void net_driver_ok(struct virtio_dev *d)
{
	struct virtio_net *n = virtio_dev_opaque(d);
	pthread_mutex_lock(&n->lock);
	n->running = true;
	n->rx_stalled = false;
	uint64_t now = util_now_ns();
	if (n->tx_limited)
		rl_start(&n->tx_rl, now);
	if (n->rx_limited)
		rl_start(&n->rx_rl, now);
	net_update_events(n); /* EPOLLIN on: the loop delivers what is waiting */
	if (n->ring && n->alive)
		net_bell(n->slirp.rxbell); /* the rings say nothing by themselves */
	pthread_mutex_unlock(&n->lock);
}

/* Frames already taken from the back end (rx_pending) or from the guest
 * (tx_pending, the hold queue) stay: they belong to no queue, and go out once the driver is
 * back. Everything tied to the old queues is forgotten. */
static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = virtio_dev_opaque(d);
	pthread_mutex_lock(&n->lock);
	n->running = false;
	n->rx_stalled = false;
	n->tx_more = false;
	n->tx_throttled = n->rx_throttled = false;
	if (n->rl_timer >= 0) {
		struct itimerspec off = { 0 };
		timerfd_settime(n->rl_timer, 0, &off, NULL);
		n->rl_deadline = 0;
	}
	net_update_events(n);
	pthread_mutex_unlock(&n->lock);
}

static void net_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
	struct virtio_net *n = virtio_dev_opaque(d);
	uint8_t cfg[VIRTIO_NET_CONFIG_LEN];
	pthread_mutex_lock(&n->lock);
	memcpy(cfg, n->mac, 6);
	uint16_t v[3] = { n->status, 1 /* max_virtqueue_pairs */, VIRTIO_NET_MTU };
	pthread_mutex_unlock(&n->lock);
	for (int i = 0; i < 3; i++) { /* little-endian, as virtio 1.x wants */
		cfg[6 + 2 * i] = (uint8_t)v[i];
		cfg[7 + 2 * i] = (uint8_t)(v[i] >> 8);
	}
	memset(buf, 0, len);
	if (off < sizeof(cfg))
		memcpy(buf, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = virtio_dev_opaque(d);
	if (!n)
		return;
	/* Not under n->lock: evloop_del waits for a running callback, which takes it. */
	if (n->watched) {
		evloop_del(n->loop, n->fd);
		if (n->ring)
			evloop_del(n->loop, n->slirp.rxbell);
	}
	if (n->rl_timer >= 0) {
		evloop_del(n->loop, n->rl_timer);
		close(n->rl_timer);
	}
	if (n->ring)
		net_slirp_stop(&n->slirp); /* EOF → the helper exits; reaped by PID */
	else
		close(n->fd);
	pthread_mutex_destroy(&n->lock);
	free(n->held);
	free(n);
}

/* ---- snapshots ---- */

/*
 * What a snapshot holds of the model: the config space the guest reads (MAC,
 * link status); the queues are the transport's. Frames held by the device
 * are not saved, in either direction, and the restored device starts
 * without them: a frame read from the back end and not yet delivered
 * (rx_pending), a frame the back end refused for now (tx_pending) and the
 * rate limiter's hold queue. Why: their chains are settled already (a tx
 * chain is returned to the guest when its frame is copied; an rx frame has
 * no chain yet), so the rings in the snapshot are consistent without them;
 * and the back end starts fresh on restore (a new tap fd, a new slirp
 * helper whose NAT knows none of the old connections, or with keep= the old
 * helper with new rings, which drops what it held for the old ones), so
 * these frames belong to a network that is gone. To the guest it is a lost frame, which
 * Ethernet allows and TCP retransmits. The running VM keeps them.
 */
struct net_snap {
	uint8_t mac[6];
	uint16_t status;
};
_Static_assert(sizeof(struct net_snap) == 8, "file layout: no hidden padding");

static int net_snap_save(struct virtio_dev *d, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct virtio_net *vn = virtio_dev_opaque(d);
	struct net_snap s;
	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&vn->lock);
	memcpy(s.mac, vn->mac, sizeof(s.mac));
	s.status = vn->status;
	pthread_mutex_unlock(&vn->lock);
	snap_put(b, &s, sizeof(s));
	return 0;
}

static int net_snap_load(struct virtio_dev *d, struct snap_cur *c, char *err, size_t n)
{
	struct virtio_net *vn = virtio_dev_opaque(d);
	struct net_snap s;
	snap_get(c, &s, sizeof(s));
	if (c->bad) {
		snprintf(err, n, "virtio-net: truncated");
		return -1;
	}
	if (memcmp(s.mac, vn->mac, sizeof(s.mac)) != 0) {
		snprintf(err, n, "virtio-net: mac %02x:%02x:%02x:%02x:%02x:%02x, this device has %02x:...:%02x",
			 s.mac[0], s.mac[1], s.mac[2], s.mac[3], s.mac[4], s.mac[5], vn->mac[0], vn->mac[5]);
		return -1;
	}
	if (s.status & ~VIRTIO_NET_S_LINK_UP) {
		snprintf(err, n, "virtio-net: status %#x", s.status);
		return -1;
	}
	/* The link as the guest last saw it: a link that was down (its back end
	 * had gone) stays down, as it would have in the saved VM. */
	pthread_mutex_lock(&vn->lock);
	vn->status = s.status;
	pthread_mutex_unlock(&vn->lock);
	return 0;
}

/*
 * keep= (net.h): a section of its own, "net-user", only for a user network
 * with keep=, so files of every other configuration are as before. It holds
 * the kept helper's name. Saving it for PUT /snapshot/create also tells the
 * helper to outlive this process (a migration's save does not: the helper
 * cannot follow the VM to another host, and the destination starts its own).
 * A restore attaches to that helper while the device is created, before this
 * load (virtio_net_create_msg), so the load only checks the section.
 */
#define NET_KEEP_VERSION 1
struct net_keep_snap {
	char name[NET_SLIRP_NAME_LEN];
};
_Static_assert(sizeof(struct net_keep_snap) == 48, "file layout: no hidden padding");

static int net_keep_save(void *dev, struct snap_buf *b, char *err, size_t len)
{
	struct virtio_net *n = dev;
	struct net_keep_snap k;
	memset(&k, 0, sizeof(k));
	pthread_mutex_lock(&n->lock);
	memcpy(k.name, n->slirp.name, sizeof(k.name));
	int r = 0;
	if (n->alive)
		r = (n->snap.to_files && n->snap.to_files(n->snap.ctx)) ? net_slirp_keep(&n->slirp) : net_slirp_unkeep(&n->slirp);
	pthread_mutex_unlock(&n->lock);
	if (r < 0) {
		snprintf(err, len, "cannot tell the slirp helper to keep its connections: %s", strerror(-r));
		return -1;
	}
	snap_put(b, &k, sizeof(k));
	return 0;
}

/* The section as the file has it: a well-formed name, or -1 with err. */
static int net_keep_parse(struct snap_cur *c, uint32_t version, char name[NET_SLIRP_NAME_LEN], char *err,
			  size_t len)
{
	struct net_keep_snap k;
	snap_get(c, &k, sizeof(k));
	if (version != NET_KEEP_VERSION || c->bad || c->left) {
		snprintf(err, len, "net-user: version %u of %s length", version, c->bad || c->left ? "the wrong" : "a");
		return -1;
	}
	if (!memchr(k.name, 0, sizeof(k.name)) || !net_slirp_name_ok(k.name)) {
		snprintf(err, len, "net-user: malformed slirp helper name");
		return -1;
	}
	memcpy(name, k.name, NET_SLIRP_NAME_LEN);
	return 0;
}

static int net_keep_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t len)
{
	struct virtio_net *n = dev;
	char name[NET_SLIRP_NAME_LEN];
	if (net_keep_parse(c, version, name, err, len) < 0)
		return -1;
	/* --restore attached to that helper already; --incoming has its own. */
	if (n->restore && strcmp(name, n->slirp.name) != 0) {
		snprintf(err, len, "net-user: the snapshot's slirp helper is not the one attached");
		return -1;
	}
	return 0;
}

/* Not a device of its own: a section recorded beside virtio-net's, only for
 * a NIC with keep= (created by virtio-net, never by the registry). */
static const struct dev_ops net_keep_dev = {
	.name = "net-user",
	.desc = "the kept slirp helper's name",
	.snap = {
		.name = "net-user",
		.version = NET_KEEP_VERSION,
		.save = net_keep_save,
		.load = net_keep_load,
	},
};

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.device_type = VIRTIO_ID_NET,
	.features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MTU),
	.nr_queues = 2,
	.queue_max = VIRTIO_NET_QUEUE_MAX,
	.config_size = VIRTIO_NET_CONFIG_LEN,
	.config_read = net_config_read,
	.config_write = NULL, /* MAC is read-only under VERSION_1 */
	.queue_notify = net_queue_notify,
	.driver_ok = net_driver_ok,
	.reset = net_reset,
	.destroy = net_destroy,
	.snap_save = net_snap_save,
	.snap_load = net_snap_load,
};

int virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *out)
{
	if (!d || strcmp(virtio_dev_name(d), net_ops.name) != 0)
		return -EINVAL;
	struct virtio_net *n = virtio_dev_opaque(d);
	pthread_mutex_lock(&n->lock);
	*out = n->stats;
	out->tx_throttled = n->tx_rl.throttled;
	out->rx_throttled = n->rx_rl.throttled;
	out->tx_limit_bps = n->tx_rl.bytes.size;
	out->tx_limit_pps = n->tx_rl.ops.size;
	out->rx_limit_bps = n->rx_rl.bytes.size;
	out->rx_limit_pps = n->rx_rl.ops.size;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/* The device over an open back end (fd, or the slirp rings when slirp is
 * non-NULL); takes it in every case. */
static int net_attach(const struct dev_env *env, int fd, bool is_socket, struct net_slirp *slirp, int index,
		      const struct net_spec *ns, struct virtio_dev **out, char *err, size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		if (slirp)
			net_slirp_stop(slirp);
		else
			close(fd);
		return -ENOMEM;
	}
	n->loop = env->loop;
	n->snap = env->snap;
	n->restore = env->cfg && env->cfg->restore;
	n->fd = fd;
	n->is_socket = is_socket;
	n->rl_timer = -1;
	if (slirp) {
		n->ring = true;
		n->slirp = *slirp;
		n->fd = slirp->ctl;
		n->helper = slirp->pid;
		net_ring_init(&n->txr, slirp->shm, NET_RING_TX);
		net_ring_init(&n->rxr, slirp->shm, NET_RING_RX);
	}
	pthread_mutex_init(&n->lock, NULL);
	int r;
	if (ns && (rl_active(&ns->tx_rl) || rl_active(&ns->rx_rl))) {
		n->tx_rl = ns->tx_rl;
		n->rx_rl = ns->rx_rl;
		n->tx_limited = rl_active(&n->tx_rl);
		n->rx_limited = rl_active(&n->rx_rl);
		if (n->tx_limited && !(n->held = calloc(NET_TX_HOLD, sizeof(*n->held)))) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
		int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		int tr = t < 0 ? -errno : evloop_add(n->loop, t, EPOLLIN, net_rl_event, n);
		if (tr < 0) {
			snprintf(err, errlen, "rate-limit timer: %s", strerror(-tr));
			if (t >= 0)
				close(t);
			r = tr;
			goto fail;
		}
		n->rl_timer = t;
	}
	n->status = VIRTIO_NET_S_LINK_UP;
	n->alive = true;
	if (ns && ns->has_mac) {
		memcpy(n->mac, ns->mac, 6);
	} else {
		memcpy(n->mac, (uint8_t[6])NET_MAC_INIT, 6);
		n->mac[5] = (uint8_t)(n->mac[5] + index);
	}

	/* Watched from the start, with no events until DRIVER_OK, so that a
	 * back end dying early still shows up (HUP is always reported; the
	 * control socket is watched for its EOF throughout). */
	r = n->ring ? evloop_add(n->loop, n->fd, EPOLLIN, net_ctl_event, n)
		    : evloop_add(n->loop, n->fd, 0, net_backend_event, n);
	if (r == 0 && n->ring) {
		r = evloop_add(n->loop, n->slirp.rxbell, 0, net_bell_event, n);
		if (r < 0)
			evloop_del(n->loop, n->fd);
	}
	if (r < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(-r));
		goto fail;
	}
	n->watched = true;
	n->dev = virtio_pci_create(env, &net_ops, n);
	if (!n->dev) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "creating the PCI function: %s", strerror(-r));
		evloop_del(n->loop, n->fd);
		if (n->ring)
			evloop_del(n->loop, n->slirp.rxbell);
		goto fail;
	}
	/* Recorded while the model is created, so before the registry records
	 * the device itself: the same order at every save and restore. On
	 * failure hvmm ends (the device is in the VM already). */
	if (n->ring && ns && ns->keep_secs && env->reg && dev_registry_add(env->reg, &net_keep_dev, n) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((r = virtio_model_done(env, n->dev, out)) < 0)
		snprintf(err, errlen, "out of memory");
	return r;
fail:
	if (n->rl_timer >= 0) {
		evloop_del(n->loop, n->rl_timer);
		close(n->rl_timer);
	}
	if (n->ring)
		net_slirp_stop(&n->slirp);
	else
		close(n->fd);
	pthread_mutex_destroy(&n->lock);
	free(n->held);
	free(n);
	return r;
}

int virtio_net_attach_fd(const struct dev_env *env, int fd, bool is_socket, char *err, size_t errlen)
{
	int r = net_attach(env, fd, is_socket, NULL, 0, NULL, NULL, err, errlen);
	return r == -EINVAL ? -EIO : r;
}

int virtio_net_attach_fd_limited(const struct dev_env *env, int fd, bool is_socket, const struct net_spec *ns,
				 char *err, size_t errlen)
{
	int r = net_attach(env, fd, is_socket, NULL, 0, ns, NULL, err, errlen);
	return r == -EINVAL ? -EIO : r;
}

int virtio_net_attach_slirp(const struct dev_env *env, struct net_slirp *s, char *err, size_t errlen)
{
	int r = net_attach(env, -1, true, s, 0, NULL, NULL, err, errlen);
	return r == -EINVAL ? -EIO : r;
}

int virtio_net_create_msg(const struct dev_env *env, const char *spec, int index, struct virtio_dev **out,
			 char *err, size_t errlen)
{
	struct net_spec ns;
	int r = net_parse_spec(spec, &ns, err, errlen);
	if (r < 0)
		return r;
	/* The n-th --network gets the n-th MAC, as QEMU numbers its NICs. */

	int fd = -1;
	struct net_slirp slirp;
	if (ns.kind == NET_TAP) {
		fd = r = net_tap_open(ns.ifname);
		if (r == -ENODEV)
			snprintf(err, errlen, "no network interface %s (create the tap first: "
				 "ip tuntap add dev %s mode tap)", ns.ifname, ns.ifname);
		else if (r == -EINVAL)
			snprintf(err, errlen, "%s is not a single-queue tap interface", ns.ifname);
		else if (r < 0)
			snprintf(err, errlen, "cannot attach to tap %s: %s", ns.ifname, strerror(-r));
	} else {
		struct snap_cur c;
		uint32_t ver;
		char name[NET_SLIRP_NAME_LEN];
		if (ns.keep_secs && env->cfg && env->cfg->restore && env->snap.restore_peek &&
		    env->snap.restore_peek(env->snap.ctx, net_keep_dev.name, &c, &ver) == 0)
			/* The snapshot names the helper its source kept: take it over
			 * (it still holds the hostfwd ports: a new one could not bind them). */
			r = net_keep_parse(&c, ver, name, err, errlen) < 0 ? -EIO
									: net_slirp_attach(name, &slirp, err, errlen);
		else /* a file without the section is refused by its load: other options */
			r = net_slirp_start(spec, &slirp, err, errlen);
	}
	if (r >= 0)
		r = net_attach(env, fd, ns.kind == NET_USER, ns.kind == NET_USER ? &slirp : NULL, index, &ns,
			       out, err, errlen);
	/* -EINVAL means a bad spec (a usage error) and nothing else */
	return r == -EINVAL ? -EIO : r < 0 ? r : 0;
}

int virtio_net_create(const struct dev_env *env, const char *spec, int index, struct virtio_dev **out)
{
	char err[256];
	return virtio_net_create_msg(env, spec, index, out, err, sizeof(err));
}
