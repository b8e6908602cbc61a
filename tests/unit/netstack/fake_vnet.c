/* fake_vnet: vnet.h on libslirp for the host-side stack tests (see fake_vnet.h). */
#include "fake_vnet.h"

#include <arpa/inet.h>
#include <libslirp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../src/net/helper/slirp_poll.h"

#define FQ_FRAMES 1024
#define FAKE_TIMERS 4
#define MAX_POLLFDS 64

struct fq {
	unsigned head, count;
	uint16_t len[FQ_FRAMES];
	uint8_t data[FQ_FRAMES][VNET_MTU_FRAME];
};

struct fake_timer {
	bool used, armed;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;
};

struct vnet {
	Slirp *slirp;
	struct fq rxq, capq;
	bool capture;
	unsigned tx_every, rx_every;
	uint64_t tx_seen, rx_seen;
	struct fake_vnet_counts c;
	void (*hook)(struct vnet *n, const uint8_t *frame, unsigned len, void *ctx);
	void *hook_ctx;
	struct fake_timer timers[FAKE_TIMERS];
	struct pollfd pfd[MAX_POLLFDS];
	int npfd;
};

static const uint8_t fake_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool fq_push(struct fq *q, const void *f, size_t len)
{
	if (q->count == FQ_FRAMES || len > VNET_MTU_FRAME)
		return false;
	unsigned i = (q->head + q->count) % FQ_FRAMES;
	memcpy(q->data[i], f, len);
	q->len[i] = (uint16_t)len;
	q->count++;
	return true;
}

static int fq_pop(struct fq *q, void *buf, unsigned max)
{
	if (!q->count)
		return 0;
	unsigned len = q->len[q->head];
	if (len > max)
		len = max;
	memcpy(buf, q->data[q->head], len);
	q->head = (q->head + 1) % FQ_FRAMES;
	q->count--;
	return (int)len;
}

/* ---- slirp callbacks ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct vnet *n = opaque;
	n->rx_seen++;
	if (n->rx_every && n->rx_seen % n->rx_every == 0) {
		n->c.rx_dropped++;
		return (ssize_t)len;
	}
	if (!fq_push(&n->rxq, buf, len))
		n->c.rx_dropped++; /* like a NIC without rx buffers */
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "fake_vnet: slirp reports a guest error: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct vnet *n = opaque;
	for (int i = 0; i < FAKE_TIMERS; i++) {
		if (!n->timers[i].used) {
			n->timers[i] = (struct fake_timer){ .used = true, .id = id, .cb_opaque = cb_opaque };
			return &n->timers[i];
		}
	}
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct fake_timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer) {
		((struct fake_timer *)timer)->armed = true;
		((struct fake_timer *)timer)->expire_ms = expire_ms;
	}
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	(void)opaque;
}

static const SlirpCb fake_cb = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct vnet *n = opaque;
	if (n->npfd == MAX_POLLFDS)
		return -1;
	n->pfd[n->npfd] = (struct pollfd){ .fd = fd, .events = slirp_poll_to_events(events) };
	return n->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct vnet *n = opaque;
	if (idx < 0 || idx >= n->npfd)
		return 0;
	return slirp_poll_from_revents(n->pfd[idx].revents);
}

/* One round of slirp's event loop: sockets, then timers. */
static void fake_run(struct vnet *n, int timeout_ms)
{
	uint32_t t = timeout_ms < 0 ? 0 : (uint32_t)timeout_ms;
	n->npfd = 0;
	slirp_pollfds_fill(n->slirp, &t, cb_add_poll, n);
	int r = poll(n->pfd, (nfds_t)n->npfd, (int)t);
	slirp_pollfds_poll(n->slirp, r < 0, cb_get_revents, n);
	int64_t ms = now_ns() / 1000000;
	for (int i = 0; i < FAKE_TIMERS; i++) {
		struct fake_timer *ft = &n->timers[i];
		if (ft->used && ft->armed && ft->expire_ms <= ms) {
			ft->armed = false;
			slirp_handle_timer(n->slirp, ft->id, ft->cb_opaque);
		}
	}
}

struct vnet *fake_vnet_new(int host_port, int guest_port)
{
	struct vnet *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	SlirpConfig cfg = {
		.version = 4,
		.in_enabled = true,
		.in6_enabled = false,
		.disable_dns = true,
	};
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	n->slirp = slirp_new(&cfg, &fake_cb, n);
	if (!n->slirp) {
		free(n);
		return NULL;
	}
	if (host_port) {
		struct in_addr h, g;
		inet_pton(AF_INET, "127.0.0.1", &h);
		inet_pton(AF_INET, "10.0.2.15", &g);
		if (slirp_add_hostfwd(n->slirp, 0, h, host_port, g, guest_port) != 0) {
			fprintf(stderr, "fake_vnet: hostfwd 127.0.0.1:%d failed\n", host_port);
			slirp_cleanup(n->slirp);
			free(n);
			return NULL;
		}
	}
	return n;
}

void fake_vnet_free(struct vnet *n)
{
	if (!n)
		return;
	slirp_cleanup(n->slirp);
	free(n);
}

void fake_vnet_set_loss(struct vnet *n, unsigned tx_every, unsigned rx_every)
{
	n->tx_every = tx_every;
	n->rx_every = rx_every;
}

void fake_vnet_inject(struct vnet *n, const void *frame, unsigned len)
{
	fq_push(&n->rxq, frame, len);
}

void fake_vnet_capture(struct vnet *n, int on)
{
	n->capture = on != 0;
	n->capq.count = 0;
}

int fake_vnet_captured(struct vnet *n, void *buf, unsigned max)
{
	return fq_pop(&n->capq, buf, max);
}

void fake_vnet_set_tx_hook(struct vnet *n, void (*fn)(struct vnet *n, const uint8_t *frame, unsigned len, void *ctx),
			   void *ctx)
{
	n->hook = fn;
	n->hook_ctx = ctx;
}

void fake_vnet_counts(struct vnet *n, struct fake_vnet_counts *c)
{
	*c = n->c;
}

/* ---- vnet.h ---- */

struct vnet *vnet_open(bool irq)
{
	(void)irq;
	return NULL; /* tests use fake_vnet_new() */
}

void vnet_mac(struct vnet *n, uint8_t mac[6])
{
	(void)n;
	memcpy(mac, fake_mac, 6);
}

int vnet_send(struct vnet *n, const void *frame, unsigned len)
{
	if (len < 14 || len > VNET_MTU_FRAME)
		return -1;
	n->c.tx++;
	if (n->hook)
		n->hook(n, frame, len, n->hook_ctx);
	if (n->capture) {
		fq_push(&n->capq, frame, len);
		return 0;
	}
	n->tx_seen++;
	if (n->tx_every && n->tx_seen % n->tx_every == 0) {
		n->c.tx_dropped++;
		return 0;
	}
	slirp_input(n->slirp, frame, (int)len);
	return 0;
}

int vnet_recv(struct vnet *n, void *buf, unsigned max)
{
	if (!n->rxq.count)
		fake_run(n, 0);
	int len = fq_pop(&n->rxq, buf, max);
	if (len)
		n->c.rx++;
	return len;
}

void vnet_wait(struct vnet *n, uint64_t us)
{
	if (n->rxq.count)
		return;
	fake_run(n, (int)((us + 999) / 1000));
}

uint64_t vnet_now_us(void)
{
	return (uint64_t)now_ns() / 1000;
}
