/*
 * Unit tests for the virtio-net model: a fake transport (this file defines
 * struct virtio_dev and the virtio_* calls the model makes), a fake event loop
 * that dispatches by poll()ing the back-end fd, 16 MiB of guest RAM with a
 * fake driver's rings, and a SOCK_SEQPACKET socketpair as the back end. Also
 * a tap device (root only) and the real slirp helper (DHCP through the whole
 * device), each skipped loudly when the host cannot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "evloop.h"
#include "net/net.h"
#include "net/ring.h"
#include "util.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "fake_vm.h"

#define QSZ 16
#define RAM MIB(16)
#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define HDR VIRTIO_NET_HDR_LEN

/* ---- fake transport ---- */

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *opaque;
	struct virtqueue vq[2];
	bool live[2];
	unsigned irqs[2];
	unsigned config_changes;
	unsigned needs_reset;
	char why[64];
};

static struct virtio_dev *dev;

struct virtio_dev *virtio_pci_create(const struct dev_env *env, const struct virtio_dev_ops *ops, void *opaque)
{
	(void)env;
	struct virtio_dev *d = calloc(1, sizeof(*d));
	d->ops = ops;
	d->opaque = opaque;
	dev = d;
	return d;
}
/* The model is the test's (dev, freed by the test): nothing to record. */
int virtio_model_done(const struct dev_env *env, struct virtio_dev *d, struct virtio_dev **out)
{
	(void)env;
	if (out)
		*out = d;
	return 0;
}
void *virtio_dev_opaque(struct virtio_dev *d) { return d->opaque; }
const char *virtio_dev_name(struct virtio_dev *d) { return d->ops->name; }
struct virtqueue *virtio_queue(struct virtio_dev *d, unsigned q)
{
	return q < 2 && d->live[q] ? &d->vq[q] : NULL;
}
void virtio_queue_interrupt(struct virtio_dev *d, unsigned q)
{
	assert_true(q < 2);
	if (vq_need_interrupt(&d->vq[q]))
		d->irqs[q]++;
}
void virtio_config_changed(struct virtio_dev *d) { d->config_changes++; }
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	d->needs_reset++;
	snprintf(d->why, sizeof(d->why), "%s", why);
}

/* ---- fake event loop: up to two watches (the fd back end uses one; the
 * slirp rings two: control socket, rx doorbell), dispatched from poll() ---- */

struct watch {
	int fd;
	uint32_t events;
	evloop_fn fn;
	void *opaque;
	int adds, dels;
};
static struct watch loop = { .fd = -1 }, loop2 = { .fd = -1 };

static struct watch *watch_of(int fd)
{
	if (fd == loop.fd)
		return &loop;
	assert_int_equal(fd, loop2.fd);
	return &loop2;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	(void)l;
	struct watch *w = loop.fd < 0 ? &loop : &loop2;
	assert_int_equal(w->fd, -1);
	w->fd = fd;
	w->events = events;
	w->fn = fn;
	w->opaque = opaque;
	w->adds++;
	return 0;
}
int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	(void)l;
	watch_of(fd)->events = events;
	return 0;
}
int evloop_del(struct evloop *l, int fd)
{
	(void)l;
	struct watch *w = watch_of(fd);
	w->fd = -1;
	w->dels++;
	return 0;
}

/* One level-triggered epoll_wait round (poll's bits equal epoll's on Linux);
 * true if a callback ran. HUP/ERR are reported whatever is watched. */
static bool loop_once(int timeout_ms)
{
	struct watch *w[2] = { &loop, &loop2 };
	struct pollfd p[2];
	for (int i = 0; i < 2; i++)
		p[i] = (struct pollfd){ .fd = w[i]->fd, .events = (short)(w[i]->events & (EPOLLIN | EPOLLOUT)) };
	if (poll(p, 2, timeout_ms) <= 0)
		return false;
	bool ran = false;
	for (int i = 0; i < 2; i++) {
		if (p[i].revents && w[i]->fd == p[i].fd && p[i].fd >= 0) {
			w[i]->fn(w[i]->opaque, (uint32_t)p[i].revents);
			ran = true;
		}
	}
	return ran;
}

static void loop_run(void)
{
	for (int i = 0; i < 100 && loop_once(0); i++)
		;
}

/* ---- fake driver ---- */

static struct vm vm;
static int peer = -1; /* the back end's far end */

#define RING_GPA(q) (0x10000ull + 0x4000ull * (q))
#define DESC(q) RING_GPA(q)
#define AVAIL(q) (RING_GPA(q) + 0x1000)
#define USED(q) (RING_GPA(q) + 0x2000)
#define RXBUF 0x100000ull /* rx buffers: 4 KiB apart */
#define TXBUF 0x200000ull

static uint16_t drv_avail[2], next_desc[2], seen_used[2];

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(&vm.mem, gpa, len);
	assert_non_null(p);
	return p;
}

static uint16_t add_desc(unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint16_t i = next_desc[q]++ % QSZ;
	struct vq_desc d = { addr, len, flags, (uint16_t)((i + 1) % QSZ) };
	memcpy(gp(DESC(q) + 16ull * i, 16), &d, 16);
	return i;
}

static void offer(unsigned q, uint16_t head)
{
	struct vq_avail *a = gp(AVAIL(q), 6 + 2 * QSZ);
	a->ring[drv_avail[q] % QSZ] = head;
	__atomic_store_n(&a->idx, ++drv_avail[q], __ATOMIC_RELEASE);
}

/* A receive chain of one or two writable buffers. */
static void rx_post(uint64_t gpa, uint32_t len)
{
	offer(RXQ, add_desc(RXQ, gpa, len, VQ_DESC_F_WRITE));
}

static void rx_post2(uint64_t gpa, uint32_t len1, uint32_t len2)
{
	uint16_t h = add_desc(RXQ, gpa, len1, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT);
	add_desc(RXQ, gpa + len1 + 64, len2, VQ_DESC_F_WRITE);
	offer(RXQ, h);
}

/* A transmit chain: the 12-byte header and the frame, cut into descriptors
 * at `cut` bytes (0: header and frame in one descriptor). */
static void tx_post(const void *frame, uint32_t len, uint32_t cut)
{
	static uint64_t slot;
	uint64_t gpa = TXBUF + (slot++ % QSZ) * 0x1000;
	memset(gp(gpa, HDR), 0, HDR);
	memcpy(gp(gpa + HDR, len), frame, len);
	uint32_t total = HDR + len;
	if (cut == 0 || cut >= total) {
		offer(TXQ, add_desc(TXQ, gpa, total, 0));
	} else {
		uint16_t h = add_desc(TXQ, gpa, cut, VQ_DESC_F_NEXT);
		add_desc(TXQ, gpa + cut, total - cut, 0);
		offer(TXQ, h);
	}
}

static struct vq_used_elem used_elem(unsigned q, unsigned i)
{
	struct vq_used *u = gp(USED(q), 6 + 8 * QSZ);
	return u->ring[i % QSZ];
}

static uint16_t used_idx(unsigned q)
{
	struct vq_used *u = gp(USED(q), 6 + 8 * QSZ);
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
}

/* The transport's side of DRIVER_OK: queues live, then driver_ok and a
 * notify of every queue. */
static void driver_start(void)
{
	memset(gp(RING_GPA(0), 0x8000), 0, 0x8000);
	for (unsigned q = 0; q < 2; q++) {
		drv_avail[q] = next_desc[q] = seen_used[q] = 0;
		memset(&dev->vq[q], 0, sizeof(dev->vq[q]));
		assert_int_equal(vq_start(&dev->vq[q], &vm.mem, QSZ, DESC(q), AVAIL(q), USED(q), false, false),
				 VQ_OK);
		dev->live[q] = true;
	}
	dev->ops->driver_ok(dev);
	dev->ops->queue_notify(dev, RXQ);
	dev->ops->queue_notify(dev, TXQ);
}

static void driver_reset(void)
{
	dev->ops->reset(dev);
	dev->live[0] = dev->live[1] = false;
}

static struct virtio_net_stats stats(void)
{
	struct virtio_net_stats s;
	assert_int_equal(virtio_net_get_stats(dev, &s), 0);
	return s;
}

static void frame_fill(uint8_t *f, uint32_t len, uint8_t tag)
{
	memset(f, 0xff, 6);                                    /* broadcast */
	memcpy(f + 6, (uint8_t[6]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
	f[12] = 0x88, f[13] = 0xb5;                            /* local experimental ethertype */
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(tag + i);
}

/* ---- harness ---- */

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	if (mem_init(&vm.mem, RAM) < 0)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	peer = sv[1];
	char err[256];
	dev = NULL;
	memset(&loop, 0, sizeof(loop));
	memset(&loop2, 0, sizeof(loop2));
	loop.fd = loop2.fd = -1;
	if (virtio_net_attach_fd(&vm.env, sv[0], true, err, sizeof(err)) < 0 || !dev)
		return -1;
	return 0;
}

/* The same device with tx-pps=2,rx-pps=2: its timer is the first watch
 * (made before the back end's), the back end the second. */
static int setup_limited(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	if (mem_init(&vm.mem, RAM) < 0)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	peer = sv[1];
	char err[256];
	struct net_spec ns;
	if (net_parse_spec("user,tx-pps=2,rx-pps=2", &ns, err, sizeof(err)) < 0)
		return -1;
	dev = NULL;
	memset(&loop, 0, sizeof(loop));
	memset(&loop2, 0, sizeof(loop2));
	loop.fd = loop2.fd = -1;
	if (virtio_net_attach_fd_limited(&vm.env, sv[0], true, &ns, err, sizeof(err)) < 0 || !dev)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (dev) {
		dev->ops->reset(dev);
		dev->ops->destroy(dev);
		free(dev);
		dev = NULL;
	}
	if (peer >= 0)
		close(peer);
	peer = -1;
	mem_free(&vm.mem);
	bus_free(&vm.pio);
	bus_free(&vm.mmio);
	return 0;
}

/* ---- tests ---- */

static void test_config_and_features(void **state)
{
	(void)state;
	const struct virtio_dev_ops *o = dev->ops;
	assert_int_equal(o->device_type, VIRTIO_ID_NET);
	assert_int_equal(o->nr_queues, 2);
	assert_int_equal(o->config_size, 12);
	assert_true(o->features & (1ull << VIRTIO_NET_F_MAC));
	assert_true(o->features & (1ull << VIRTIO_NET_F_STATUS));
	assert_true(o->features & (1ull << VIRTIO_NET_F_MTU));
	assert_false(o->features & (1ull << VIRTIO_NET_F_MRG_RXBUF));
	assert_false(o->features & 0xfc7); /* CSUM, GUEST_CSUM, CTRL_GUEST_OFFLOADS, TSO/UFO: none */
	uint8_t c[12];
	o->config_read(dev, 0, c, sizeof(c));
	static const uint8_t want[12] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 1, 0, 0xdc, 0x05 };
	assert_memory_equal(c, want, 12);
	uint16_t st = 0xffff;
	o->config_read(dev, 6, &st, 2);
	assert_int_equal(st, VIRTIO_NET_S_LINK_UP);
	/* the watch exists from creation, with nothing watched before DRIVER_OK */
	assert_int_equal(loop.adds, 1);
	assert_int_equal(loop.events, 0);
}

static void test_tx(void **state)
{
	(void)state;
	driver_start();
	assert_true(loop.events & EPOLLIN);
	uint8_t f[1518], got[2048];
	frame_fill(f, 60, 1);
	tx_post(f, 60, 12);      /* header alone, then the frame */
	frame_fill(f, 1518, 2);
	tx_post(f, 1518, 8);     /* the header split across descriptors */
	frame_fill(f, 14, 3);
	tx_post(f, 14, 0);       /* all in one, minimum frame */
	dev->ops->queue_notify(dev, TXQ);

	assert_int_equal(recv(peer, got, sizeof(got), 0), 60);
	frame_fill(f, 60, 1);
	assert_memory_equal(got, f, 60);
	assert_int_equal(recv(peer, got, sizeof(got), 0), 1518);
	frame_fill(f, 1518, 2);
	assert_memory_equal(got, f, 1518);
	assert_int_equal(recv(peer, got, sizeof(got), 0), 14);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);

	assert_int_equal(used_idx(TXQ), 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(used_elem(TXQ, i).len, 0);
	assert_int_equal(dev->irqs[TXQ], 1); /* one interrupt for the batch */
	struct virtio_net_stats s = stats();
	assert_int_equal(s.tx_frames, 3);
	assert_int_equal(s.tx_bytes, 60 + 1518 + 14);
	assert_int_equal(s.tx_bad, 0);
}

static void test_tx_bad_sizes(void **state)
{
	(void)state;
	driver_start();
	uint8_t f[1600];
	frame_fill(f, sizeof(f), 0);
	tx_post(f, 13, 0);   /* shorter than an Ethernet header */
	tx_post(f, 1519, 0); /* longer than 1518: no offloads, so a driver bug */
	tx_post(f, 100, 0);
	offer(TXQ, add_desc(TXQ, TXBUF, 6, 0)); /* not even a header */
	dev->ops->queue_notify(dev, TXQ);
	uint8_t got[2048];
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), 100);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(used_idx(TXQ), 4); /* every chain returned */
	struct virtio_net_stats s = stats();
	assert_int_equal(s.tx_bad, 3);
	assert_int_equal(s.tx_frames, 1);
	assert_int_equal(dev->needs_reset, 0);
}

static void test_rx(void **state)
{
	(void)state;
	driver_start();
	rx_post(RXBUF, 1526);
	rx_post2(RXBUF + 0x1000, 20, 1506); /* header + 8 bytes, then the rest */
	rx_post(RXBUF + 0x2000, 1526);
	uint8_t f[1514];
	frame_fill(f, 100, 7);
	assert_int_equal(send(peer, f, 100, 0), 100);
	frame_fill(f, 1514, 8);
	assert_int_equal(send(peer, f, 1514, 0), 1514);
	loop_run();

	assert_int_equal(used_idx(RXQ), 2);
	struct vq_used_elem u0 = used_elem(RXQ, 0), u1 = used_elem(RXQ, 1);
	assert_int_equal(u0.len, HDR + 100);
	assert_int_equal(u1.len, HDR + 1514);
	static const uint8_t hdr[HDR] = { [10] = 1 }; /* num_buffers = 1, nothing else */
	assert_memory_equal(gp(RXBUF, HDR), hdr, HDR);
	frame_fill(f, 100, 7);
	assert_memory_equal(gp(RXBUF + HDR, 100), f, 100);
	/* the second frame straddles two descriptors */
	uint8_t back[1514];
	memcpy(back, gp(RXBUF + 0x1000 + HDR, 8), 8);
	memcpy(back + 8, gp(RXBUF + 0x1000 + 20 + 64, 1506), 1506);
	frame_fill(f, 1514, 8);
	assert_memory_equal(back, f, 1514);
	assert_memory_equal(gp(RXBUF + 0x1000, HDR), hdr, HDR);
	assert_int_equal(dev->irqs[RXQ], 1); /* both frames, one interrupt */
	struct virtio_net_stats s = stats();
	assert_int_equal(s.rx_frames, 2);
	assert_int_equal(s.rx_bytes, 1614);
	assert_int_equal(s.rx_stalls, 0);
	assert_true(loop.events & EPOLLIN);
}

/* tx-pps=2: the first two frames go at once (the bucket starts full), the
 * other chains come back to the guest at once too (the hold queue), and the
 * next frame goes when the timer says the bucket has a token: ~500 ms. */
static void test_tx_rate_limit(void **state)
{
	(void)state;
	driver_start();
	assert_true(loop.fd >= 0 && (loop.events & EPOLLIN)); /* the timer */
	uint8_t f[60], got[2048];
	for (uint8_t i = 0; i < 5; i++) {
		frame_fill(f, 60, i);
		tx_post(f, 60, 0);
	}
	uint64_t t0 = util_now_ns();
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(used_idx(TXQ), 5);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(stats().tx_throttled, 1);
	assert_int_equal(stats().tx_limit_pps, 2);
	assert_true(loop_once(2000)); /* the timer */
	uint64_t dt = util_now_ns() - t0;
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60);
	frame_fill(f, 60, 2);
	assert_memory_equal(got, f, 60); /* in order */
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);
	if (dt < 400 * 1000000ull || dt > 1500 * 1000000ull)
		fail_msg("the third frame went after %llu ms, want ~500", (unsigned long long)(dt / 1000000));
	/* a guest kick while it waits changes nothing */
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_true(loop_once(2000));
	assert_int_equal(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60);
	assert_int_equal(stats().tx_frames, 4);
	assert_int_equal(stats().tx_errors + stats().tx_bad, 0);
}

/* rx-pps=2: two frames delivered, the rest stay in the back end (EPOLLIN
 * off, nothing read) until the timer; nothing dropped. */
static void test_rx_rate_limit(void **state)
{
	(void)state;
	driver_start();
	for (unsigned i = 0; i < 4; i++)
		rx_post(RXBUF + 0x1000 * i, 1526);
	uint8_t f[100];
	for (uint8_t i = 0; i < 4; i++) {
		frame_fill(f, 100, i);
		assert_int_equal(send(peer, f, 100, 0), 100);
	}
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_false(loop2.events & EPOLLIN); /* not reading the back end */
	assert_int_equal(stats().rx_throttled, 1);
	assert_true(loop_once(2000)); /* the timer */
	loop_run();
	assert_int_equal(used_idx(RXQ), 3);
	frame_fill(f, 100, 2);
	assert_memory_equal(gp(RXBUF + 0x2000 + HDR, 100), f, 100);
	assert_true(loop_once(2000));
	loop_run();
	assert_int_equal(used_idx(RXQ), 4);
	assert_int_equal(stats().rx_frames, 4);
	assert_int_equal(stats().rx_stalls, 0);
	/* the bucket is empty again: the back end is read once it refills */
	assert_true(loop_once(2000));
	assert_true(loop2.events & EPOLLIN);
	assert_int_equal(used_idx(RXQ), 4);
}

static void test_rx_waits_for_buffers(void **state)
{
	(void)state;
	driver_start();
	uint8_t f[200];
	for (int i = 0; i < 3; i++) {
		frame_fill(f, 60 + i, (uint8_t)i);
		assert_int_equal(send(peer, f, 60 + (size_t)i, 0), 60 + i);
	}
	loop_run();
	/* no buffer: the device stops reading the back end, drops nothing */
	assert_int_equal(used_idx(RXQ), 0);
	assert_false(loop.events & EPOLLIN);
	assert_int_equal(stats().rx_stalls, 1);
	assert_false(loop_once(0)); /* and the loop is quiet, not spinning */

	rx_post(RXBUF, 1526);
	rx_post(RXBUF + 0x1000, 1526);
	dev->ops->queue_notify(dev, RXQ); /* the driver's kick */
	assert_int_equal(used_idx(RXQ), 2);
	assert_int_equal(stats().rx_stalls, 2); /* the third frame waits again */
	rx_post(RXBUF + 0x2000, 1526);
	dev->ops->queue_notify(dev, RXQ);
	assert_int_equal(used_idx(RXQ), 3);
	assert_true(loop.events & EPOLLIN);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(used_elem(RXQ, i).len, HDR + 60 + i);
		frame_fill(f, 60 + i, (uint8_t)i);
		assert_memory_equal(gp(RXBUF + 0x1000ull * i + HDR, 60 + i), f, 60 + i);
	}
	assert_int_equal(stats().rx_frames, 3);
}

static void test_rx_buffer_too_small(void **state)
{
	(void)state;
	driver_start();
	rx_post(RXBUF, 100);            /* too small for the first frame */
	rx_post(RXBUF + 0x1000, 1526);
	uint8_t f[300];
	frame_fill(f, 200, 1);
	send(peer, f, 200, 0);
	frame_fill(f, 50, 2);
	send(peer, f, 50, 0);
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_int_equal(used_elem(RXQ, 0).len, 0);       /* returned empty */
	assert_int_equal(used_elem(RXQ, 1).len, HDR + 50); /* the next frame fits */
	assert_memory_equal(gp(RXBUF + 0x1000 + HDR, 50), f, 50);
	struct virtio_net_stats s = stats();
	assert_int_equal(s.rx_too_big, 1);
	assert_int_equal(s.rx_frames, 1);
	/* a runt from the back end is counted, not delivered */
	rx_post(RXBUF + 0x2000, 1526);
	send(peer, f, 10, 0);
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_int_equal(stats().rx_bad, 1);
}

/* A back end with a bigger MTU (a tap set to 9000, a broken helper): frames
 * longer than the 1500-byte MTU the device advertises must not reach the
 * driver (virtio 1.2 §5.1.6.3.2), however large its buffers. Found by
 * fuzz_virtio_net. */
static void test_rx_longer_than_mtu(void **state)
{
	(void)state;
	driver_start();
	rx_post(RXBUF, 0x1000);
	rx_post(RXBUF + 0x1000, 0x1000);
	static uint8_t f[4000];
	frame_fill(f, 1519, 3);
	assert_int_equal(send(peer, f, 1519, 0), 1519);
	frame_fill(f, 4000, 4);
	assert_int_equal(send(peer, f, 4000, 0), 4000);
	frame_fill(f, 1518, 5);
	assert_int_equal(send(peer, f, 1518, 0), 1518);
	loop_run();
	assert_int_equal(used_idx(RXQ), 1);
	assert_int_equal(used_elem(RXQ, 0).len, HDR + 1518); /* the largest that may pass */
	assert_memory_equal(gp(RXBUF + HDR, 1518), f, 1518);
	struct virtio_net_stats s = stats();
	assert_int_equal(s.rx_bad, 2);
	assert_int_equal(s.rx_frames, 1);
}

static void test_tx_backpressure(void **state)
{
	(void)state;
	/* a small socket buffer on hvmm's end, so sends hit EAGAIN */
	int small = 4096;
	assert_int_equal(setsockopt(loop.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	driver_start();
	enum { N = 40 };
	uint8_t f[1000], got[2048];
	int received = 0, posted = 0;
	while (posted < QSZ) {
		frame_fill(f, 1000, (uint8_t)posted);
		f[14] = (uint8_t)posted++;
		tx_post(f, 1000, 0);
	}
	dev->ops->queue_notify(dev, TXQ);
	struct virtio_net_stats s = stats();
	assert_true(s.tx_blocked >= 1);
	assert_true(loop.events & EPOLLOUT); /* waiting for the back end */
	assert_true(s.tx_frames < QSZ);
	/* the back end drains; the device resumes on EPOLLOUT, in order, and the
	 * driver refills as chains come back */
	for (int round = 0; round < 1000 && received < N; round++) {
		ssize_t n;
		while ((n = recv(peer, got, sizeof(got), MSG_DONTWAIT)) > 0) {
			assert_int_equal(n, 1000);
			assert_int_equal(got[14], received);
			received++;
		}
		while (posted < N && (uint16_t)(drv_avail[TXQ] - used_idx(TXQ)) < QSZ) {
			frame_fill(f, 1000, (uint8_t)posted);
			f[14] = (uint8_t)posted++;
			tx_post(f, 1000, 0);
			dev->ops->queue_notify(dev, TXQ);
		}
		loop_run();
	}
	assert_int_equal(received, N);
	s = stats();
	assert_int_equal(s.tx_frames, N);
	assert_int_equal(s.tx_errors, 0);
	assert_false(loop.events & EPOLLOUT);
}

static void test_backend_gone(void **state)
{
	(void)state;
	driver_start();
	close(peer);
	peer = -1;
	loop_run();
	struct virtio_net_stats s = stats();
	assert_int_equal(s.backend_gone, 1);
	assert_int_equal(loop.dels, 1);
	assert_int_equal(dev->config_changes, 1);
	uint16_t st = 0xffff;
	dev->ops->config_read(dev, 6, &st, 2);
	assert_int_equal(st, 0); /* link down */
	/* the guest's frames are still taken back, and counted as dropped */
	uint8_t f[64];
	frame_fill(f, 64, 0);
	tx_post(f, 64, 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(used_idx(TXQ), 1);
	assert_int_equal(stats().tx_errors, 1);
}

static void test_reset(void **state)
{
	(void)state;
	driver_start();
	assert_true(loop.events & EPOLLIN);
	uint8_t f[64];
	frame_fill(f, 64, 9);
	send(peer, f, 64, 0); /* no rx buffer: the frame waits in the device */
	loop_run();
	driver_reset();
	assert_int_equal(loop.events, 0);
	send(peer, f, 64, 0);
	assert_false(loop_once(0)); /* nothing read while reset */
	/* a new driver: the waiting frame and the next one arrive */
	driver_start();
	rx_post(RXBUF, 1526);
	rx_post(RXBUF + 0x1000, 1526);
	dev->ops->queue_notify(dev, RXQ);
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_memory_equal(gp(RXBUF + HDR, 64), f, 64);
	assert_int_equal(dev->needs_reset, 0);
}

static void test_hostile_chains(void **state)
{
	(void)state;
	driver_start();
	/* rx buffer outside RAM */
	offer(RXQ, add_desc(RXQ, RAM - 100, 1526, VQ_DESC_F_WRITE));
	uint8_t f[64];
	frame_fill(f, 64, 0);
	send(peer, f, 64, 0);
	loop_run();
	assert_int_equal(dev->needs_reset, 1);
	assert_int_equal(used_idx(RXQ), 0);
	assert_false(loop.events & EPOLLIN); /* rx stops until the reset */
	/* tx chain that loops */
	struct vq_desc d = { TXBUF, 100, VQ_DESC_F_NEXT, 0 };
	memcpy(gp(DESC(TXQ), 16), &d, 16);
	offer(TXQ, 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(dev->needs_reset, 2);
	assert_int_equal(used_idx(TXQ), 0);
	/* a reset and a sane driver bring the device back */
	driver_reset();
	driver_start();
	rx_post(RXBUF, 1526);
	dev->ops->queue_notify(dev, RXQ);
	assert_int_equal(used_idx(RXQ), 1);
	assert_int_equal(used_elem(RXQ, 0).len, HDR + 64);
}


/* ---- the slirp rings (src/net/ring.h), with this test as the helper ---- */

/* The helper's side: its own mapping of the memfd, its ends of the doorbells
 * and of the control socket (peer). */
static struct {
	struct net_shm *shm;
	struct net_ring tx, rx; /* the helper consumes tx, produces rx */
	int txbell, rxbell;
} hl;

static int setup_ring(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	if (mem_init(&vm.mem, RAM) < 0)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	peer = sv[1];
	int memfd = memfd_create("test-rings", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, NET_SHM_SIZE) < 0)
		return -1;
	struct net_slirp sl = { .ctl = sv[0], .pid = 0 };
	sl.shm = mmap(NULL, NET_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	hl.shm = mmap(NULL, NET_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (sl.shm == MAP_FAILED || hl.shm == MAP_FAILED)
		return -1;
	atomic_store(&hl.shm->ctl[NET_RING_RX].sleeping, 1); /* as net_slirp_start leaves it */
	sl.txbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sl.rxbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	hl.txbell = dup(sl.txbell);
	hl.rxbell = dup(sl.rxbell);
	net_ring_init(&hl.tx, hl.shm, NET_RING_TX);
	net_ring_init(&hl.rx, hl.shm, NET_RING_RX);
	char err[256];
	dev = NULL;
	memset(&loop, 0, sizeof(loop));
	memset(&loop2, 0, sizeof(loop2));
	loop.fd = loop2.fd = -1;
	if (virtio_net_attach_slirp(&vm.env, &sl, err, sizeof(err)) < 0 || !dev)
		return -1;
	return 0;
}

static int teardown_ring(void **state)
{
	teardown(state);
	munmap(hl.shm, NET_SHM_SIZE);
	close(hl.txbell);
	close(hl.rxbell);
	return 0;
}

/* Doorbell writes since the last call (0 if none). */
static uint64_t bell_count(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) < 0)
		return 0;
	return v;
}

static void helper_push(const uint8_t *f, size_t len)
{
	assert_int_equal(net_ring_push(&hl.rx, f, len), 1);
	if (net_ring_need_kick(&hl.rx)) {
		uint64_t one = 1;
		assert_int_equal(write(hl.rxbell, &one, 8), 8);
	}
}

static size_t helper_pop(uint8_t *buf)
{
	if (net_ring_avail(&hl.tx) <= 0)
		return 0;
	size_t len = 0;
	const uint8_t *f = net_ring_peek(&hl.tx, &len);
	assert_non_null(f);
	memcpy(buf, f, len);
	net_ring_consume(&hl.tx);
	return len;
}

static void test_ring_tx(void **state)
{
	(void)state;
	/* two watches from creation: the control socket (EOF) and the rx doorbell */
	assert_int_equal(loop.adds + loop2.adds, 2);
	assert_int_equal(loop.events, EPOLLIN);
	assert_int_equal(loop2.events, 0);
	driver_start();
	assert_int_equal(loop2.events, EPOLLIN);
	bell_count(hl.txbell);
	uint8_t f[1518], got[2048];
	/* the helper is awake: frames go in without a doorbell */
	frame_fill(f, 60, 1);
	tx_post(f, 60, 12);
	frame_fill(f, 1518, 2);
	tx_post(f, 1518, 8);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(bell_count(hl.txbell), 0);
	assert_int_equal(helper_pop(got), 60);
	frame_fill(f, 60, 1);
	assert_memory_equal(got, f, 60);
	assert_int_equal(helper_pop(got), 1518);
	frame_fill(f, 1518, 2);
	assert_memory_equal(got, f, 1518);
	assert_int_equal(helper_pop(got), 0);
	/* the helper goes to sleep: the next batch rings it once */
	assert_true(net_ring_prepare_sleep(&hl.tx));
	frame_fill(f, 14, 3);
	tx_post(f, 14, 0);
	tx_post(f, 14, 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(bell_count(hl.txbell), 1);
	assert_int_equal(helper_pop(got), 14);
	assert_int_equal(helper_pop(got), 14);
	assert_int_equal(used_idx(TXQ), 4);
	struct virtio_net_stats st = stats();
	assert_int_equal(st.tx_frames, 4);
	assert_int_equal(st.tx_bytes, 60 + 1518 + 28);
	assert_int_equal(st.tx_blocked, 0);
}

static void test_ring_tx_full(void **state)
{
	(void)state;
	driver_start();
	/* the helper has taken nothing of a full ring: tail = head - SLOTS */
	atomic_store(&hl.shm->ctl[NET_RING_TX].tail, 0u - NET_RING_SLOTS);
	uint8_t f[64], got[2048];
	frame_fill(f, 64, 5);
	tx_post(f, 64, 0);
	tx_post(f, 64, 0);
	dev->ops->queue_notify(dev, TXQ);
	/* the first frame waits in the device (its chain is back), the second in the queue */
	assert_int_equal(used_idx(TXQ), 1);
	assert_int_equal(stats().tx_blocked, 1);
	assert_int_equal(stats().tx_frames, 0);
	assert_true(atomic_load(&hl.shm->ctl[NET_RING_TX].waiting));
	dev->ops->queue_notify(dev, TXQ); /* a kick changes nothing while it waits */
	assert_int_equal(used_idx(TXQ), 1);
	/* the helper frees the ring and, seeing "waiting", rings hvmm */
	atomic_store(&hl.shm->ctl[NET_RING_TX].tail, 0u);
	assert_true(net_ring_need_space_kick(&hl.tx));
	uint64_t one = 1;
	assert_int_equal(write(hl.rxbell, &one, 8), 8);
	loop_run();
	assert_int_equal(used_idx(TXQ), 2);
	assert_int_equal(stats().tx_frames, 2);
	assert_int_equal(helper_pop(got), 64);
	assert_memory_equal(got, f, 64);
	assert_int_equal(helper_pop(got), 64);
	assert_int_equal(dev->needs_reset, 0);
}

static void test_ring_rx(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	rx_post(RXBUF, 1526);
	rx_post2(RXBUF + 0x1000, 20, 1506);
	uint8_t f[1514];
	frame_fill(f, 100, 7);
	helper_push(f, 100); /* hvmm was asleep: this rings */
	frame_fill(f, 1514, 8);
	helper_push(f, 1514);
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_int_equal(used_elem(RXQ, 0).len, HDR + 100);
	assert_int_equal(used_elem(RXQ, 1).len, HDR + 1514);
	frame_fill(f, 100, 7);
	assert_memory_equal(gp(RXBUF + HDR, 100), f, 100);
	uint8_t back[1514];
	memcpy(back, gp(RXBUF + 0x1000 + HDR, 8), 8);
	memcpy(back + 8, gp(RXBUF + 0x1000 + 20 + 64, 1506), 1506);
	frame_fill(f, 1514, 8);
	assert_memory_equal(back, f, 1514);
	/* drained: hvmm sleeps again, so the helper's next frame rings */
	assert_true(atomic_load(&hl.shm->ctl[NET_RING_RX].sleeping));

	/* no guest buffer: the frame waits, hvmm is not "asleep" (no doorbells
	 * while stalled), and the rx kick resumes */
	frame_fill(f, 60, 1);
	helper_push(f, 60);
	helper_push(f, 60);
	loop_run();
	assert_int_equal(stats().rx_stalls, 1);
	assert_false(atomic_load(&hl.shm->ctl[NET_RING_RX].sleeping));
	assert_false(loop_once(0)); /* quiet, not spinning */
	rx_post(RXBUF + 0x2000, 1526);
	rx_post(RXBUF + 0x3000, 1526);
	dev->ops->queue_notify(dev, RXQ);
	assert_int_equal(used_idx(RXQ), 4);
	assert_int_equal(stats().rx_frames, 4);
	assert_true(atomic_load(&hl.shm->ctl[NET_RING_RX].sleeping));
}

static void test_ring_rx_space_doorbell(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	uint8_t f[60];
	frame_fill(f, 60, 1);
	/* the helper fills the ring and waits for space */
	for (unsigned i = 0; i < NET_RING_SLOTS; i++)
		assert_int_equal(net_ring_push(&hl.rx, f, 60), 1);
	assert_int_equal(net_ring_push(&hl.rx, f, 60), 0);
	assert_false(net_ring_wait_space(&hl.rx));
	bell_count(hl.txbell);
	for (int i = 0; i < QSZ; i++)
		rx_post(RXBUF + 0x1000ull * (unsigned)i, 1526);
	dev->ops->queue_notify(dev, RXQ);
	assert_int_equal(used_idx(RXQ), QSZ);
	/* hvmm freed slots: one doorbell for the helper, and the flag is consumed */
	assert_int_equal(bell_count(hl.txbell), 1);
	assert_false(atomic_load(&hl.shm->ctl[NET_RING_RX].waiting));
	/* QSZ delivered, one more taken and waiting in the device for a buffer */
	assert_int_equal(net_ring_space(&hl.rx), QSZ + 1);
	assert_int_equal(stats().rx_stalls, 1);
}

static void test_ring_corrupt(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	rx_post(RXBUF, 1526);
	uint8_t f[64];
	frame_fill(f, 64, 1);
	helper_push(f, 64);
	loop_run();
	assert_int_equal(used_idx(RXQ), 1);
	/* an impossible length in the next slot: back end gone, nothing copied */
	struct net_ring_slot *sl = &hl.shm->slot[NET_RING_RX][1];
	atomic_store(&sl->len, NET_RING_SLOT_SIZE * 4);
	atomic_store(&hl.shm->ctl[NET_RING_RX].head, 2u);
	uint64_t one = 1;
	assert_int_equal(write(hl.rxbell, &one, 8), 8);
	rx_post(RXBUF + 0x1000, 1526);
	loop_run();
	struct virtio_net_stats st = stats();
	assert_int_equal(st.backend_gone, 1);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(used_idx(RXQ), 1);
	assert_int_equal(loop.dels + loop2.dels, 2);
	uint16_t status = 0xffff;
	dev->ops->config_read(dev, 6, &status, 2);
	assert_int_equal(status, 0);
	assert_int_equal(dev->config_changes, 1);
	/* the guest's frames are still taken back and counted as dropped */
	tx_post(f, 64, 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(used_idx(TXQ), 1);
	assert_int_equal(stats().tx_errors, 1);
	assert_int_equal(dev->needs_reset, 0);
}

static void test_ring_corrupt_indices(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	/* a tx tail ahead of hvmm's head */
	atomic_store(&hl.shm->ctl[NET_RING_TX].tail, 5u);
	uint8_t f[64];
	frame_fill(f, 64, 1);
	tx_post(f, 64, 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(stats().backend_gone, 1);
	assert_int_equal(stats().tx_errors, 1);
	assert_int_equal(stats().tx_frames, 0);
	/* and an rx head far away is not read either (the device is already down) */
	atomic_store(&hl.shm->ctl[NET_RING_RX].head, 100000u);
	rx_post(RXBUF, 1526);
	dev->ops->queue_notify(dev, RXQ);
	assert_int_equal(used_idx(RXQ), 0);
	assert_int_equal(stats().backend_gone, 1);
}

static void test_ring_rx_head_corrupt(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	rx_post(RXBUF, 1526);
	atomic_store(&hl.shm->ctl[NET_RING_RX].head, NET_RING_SLOTS + 1);
	uint64_t one = 1;
	assert_int_equal(write(hl.rxbell, &one, 8), 8);
	loop_run();
	assert_int_equal(stats().backend_gone, 1);
	assert_int_equal(used_idx(RXQ), 0);
}

static void test_ring_helper_exit(void **state)
{
	(void)state;
	driver_start();
	close(peer); /* the helper died: its control socket reports EOF */
	peer = -1;
	loop_run();
	assert_int_equal(stats().backend_gone, 1);
	assert_int_equal(loop.dels + loop2.dels, 2);
	uint16_t status = 0xffff;
	dev->ops->config_read(dev, 6, &status, 2);
	assert_int_equal(status, 0);
}

static void test_ring_reset(void **state)
{
	(void)state;
	driver_start();
	loop_run();
	uint8_t f[64];
	frame_fill(f, 64, 9);
	helper_push(f, 64); /* no rx buffer: it waits in the device */
	loop_run();
	driver_reset();
	assert_int_equal(loop2.events, 0);
	helper_push(f, 64);
	assert_false(loop_once(0)); /* nothing read while reset */
	driver_start();
	rx_post(RXBUF, 1526);
	rx_post(RXBUF + 0x1000, 1526);
	dev->ops->queue_notify(dev, RXQ);
	loop_run();
	assert_int_equal(used_idx(RXQ), 2);
	assert_memory_equal(gp(RXBUF + HDR, 64), f, 64);
	assert_memory_equal(gp(RXBUF + 0x1000 + HDR, 64), f, 64);
	assert_int_equal(dev->needs_reset, 0);
}

/* ---- the slirp helper through the whole device (no KVM needed) ---- */

static uint16_t csum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A DHCPDISCOVER from 52:54:00:12:34:56, as a guest's first frame. */
static size_t dhcp_discover(uint8_t *f)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	memset(f, 0, 342);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = ip + 20, *bootp = udp + 8;
	size_t blen = 240 + 4, ulen = 8 + blen, iplen = 20 + ulen;
	ip[0] = 0x45, ip[2] = (uint8_t)(iplen >> 8), ip[3] = (uint8_t)iplen, ip[8] = 64, ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	uint16_t c = csum16(ip, 20);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	udp[1] = 68, udp[3] = 67, udp[4] = (uint8_t)(ulen >> 8), udp[5] = (uint8_t)ulen;
	bootp[0] = 1, bootp[1] = 1, bootp[2] = 6;
	memcpy(bootp + 4, "\x12\x34\x56\x78", 4);
	memcpy(bootp + 28, mac, 6);
	memcpy(bootp + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8);
	return 14 + iplen;
}

static bool helper_path(char *path, size_t len)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return false;
	self[n] = 0;
	*strrchr(self, '/') = 0; /* build/tests/unit */
	snprintf(path, len, "%s/../../hvmm-net-slirp", self);
	return access(path, X_OK) == 0;
}

static void test_slirp_dhcp_through_device(void **state)
{
	(void)state;
	char path[600], err[256];
	if (!helper_path(path, sizeof(path))) {
		fprintf(stderr, "SKIP: hvmm-net-slirp not built next to the unit tests\n");
		skip();
	}
	/* replace the socketpair device with one on the real helper */
	dev->ops->destroy(dev);
	free(dev);
	dev = NULL;
	setenv("HVMM_NET_SLIRP", path, 1);
	int r = virtio_net_create_msg(&vm.env, "user", 0, NULL, err, sizeof(err));
	if (r < 0)
		fail_msg("create: %s", err);
	assert_non_null(dev);
	driver_start();
	for (int i = 0; i < 4; i++)
		rx_post(RXBUF + 0x1000ull * i, 1526);
	uint8_t f[400];
	tx_post(f, (uint32_t)dhcp_discover(f), 0);
	dev->ops->queue_notify(dev, TXQ);
	assert_int_equal(stats().tx_frames, 1);
	for (int i = 0; i < 50 && used_idx(RXQ) == 0; i++)
		loop_once(100);
	assert_true(used_idx(RXQ) >= 1);
	uint32_t len = used_elem(RXQ, 0).len;
	assert_true(len > HDR + 14 + 20 + 8 + 240);
	const uint8_t *fr = gp(RXBUF + HDR, len - HDR);
	const uint8_t *bootp = fr + 14 + 20 + 8;
	assert_int_equal(fr[12], 0x08);
	assert_int_equal(bootp[0], 2); /* BOOTREPLY */
	assert_memory_equal(bootp + 4, "\x12\x34\x56\x78", 4);
	assert_memory_equal(bootp + 16, "\x0a\x00\x02\x0f", 4); /* yiaddr 10.0.2.15 */
	/* teardown destroys it: EOF to the helper, which exits and is reaped */
	unsetenv("HVMM_NET_SLIRP");
}

static void test_slirp_helper_missing(void **state)
{
	(void)state;
	char err[256];
	setenv("HVMM_NET_SLIRP", "/nonexistent/hvmm-net-slirp", 1);
	struct virtio_dev *before = dev;
	assert_int_equal(virtio_net_create_msg(&vm.env, "user", 0, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/hvmm-net-slirp"));
	assert_ptr_equal(dev, before);
	/* a helper that dies before its handshake is reaped and reported */
	setenv("HVMM_NET_SLIRP", "/bin/false", 1);
	assert_int_equal(virtio_net_create_msg(&vm.env, "user", 0, NULL, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "ended before it was ready (exit status 1)"));
	assert_ptr_equal(dev, before);
	unsetenv("HVMM_NET_SLIRP");
	/* and a bad spec is -EINVAL, the one usage error */
	assert_int_equal(virtio_net_create_msg(&vm.env, "user,x", 0, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(virtio_net_create_msg(&vm.env, "tap:", 0, NULL, err, sizeof(err)), -EINVAL);
}

/* ---- tap (root only) ---- */

static void test_tap(void **state)
{
	(void)state;
	char name[IFNAMSIZ], cmd[128], err[256];
	snprintf(name, sizeof(name), "hvmmt%d", (int)getpid() % 1000000);
	assert_int_equal(net_tap_open("hvmm-no-such0"), -ENODEV);
	snprintf(cmd, sizeof(cmd), "ip tuntap add dev %s mode tap 2>/dev/null", name);
	if (geteuid() != 0 || system(cmd) != 0) {
		fprintf(stderr, "SKIP: cannot create a tap device here (need root and ip tuntap)\n");
		skip();
	}
	/* no IPv6 chatter from the host on the test link */
	snprintf(cmd, sizeof(cmd), "sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 2>/dev/null", name);
	if (system(cmd) != 0)
		fprintf(stderr, "(could not disable IPv6 on %s)\n", name);
	snprintf(cmd, sizeof(cmd), "ip link set dev %s up", name);
	int up = system(cmd);
	assert_int_equal(net_tap_open("lo"), -EINVAL); /* exists, but is not a tap */
	assert_int_equal(virtio_net_create_msg(&vm.env, "tap:hvmm-no-such0", 0, NULL, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "ip tuntap add dev hvmm-no-such0 mode tap"));

	/* the whole device on the tap */
	dev->ops->destroy(dev);
	free(dev);
	dev = NULL;
	int r = virtio_net_create_msg(&vm.env, (snprintf(cmd, sizeof(cmd), "tap:%s", name), cmd), 0, NULL, err,
				      sizeof(err));
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x88b5));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
				   .sll_ifindex = (int)if_nametoindex(name) };
	bool ok = r == 0 && up == 0 && ps >= 0 && bind(ps, (struct sockaddr *)&sll, sizeof(sll)) == 0;
	if (ok) {
		driver_start();
		/* guest → tap → host packet socket */
		uint8_t f[200], got[300];
		frame_fill(f, 120, 4);
		tx_post(f, 120, 12);
		dev->ops->queue_notify(dev, TXQ);
		ssize_t n = -1;
		for (int i = 0; i < 50 && n < 0; i++) {
			struct pollfd p = { .fd = ps, .events = POLLIN };
			poll(&p, 1, 100);
			n = recv(ps, got, sizeof(got), 0);
		}
		ok = n == 120 && memcmp(got, f, 120) == 0;
		if (!ok)
			fprintf(stderr, "tap tx: got %zd bytes\n", n);
		/* host packet socket → tap → guest; the host may send frames of its
		 * own on the new link (IPv6 router solicitations...), so post
		 * several buffers and look for ours among what arrives */
		for (unsigned i = 0; i < 8; i++)
			rx_post(RXBUF + 0x1000ull * i, 1526);
		frame_fill(f, 90, 5);
		memcpy(f, (uint8_t[6]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
		memcpy(f + 6, (uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 6);
		if (ok && sendto(ps, f, 90, 0, (struct sockaddr *)&sll, sizeof(sll)) != 90)
			ok = false;
		bool found = false;
		for (int i = 0; ok && !found && i < 50; i++) {
			loop_once(100);
			for (unsigned u = 0; u < used_idx(RXQ) && u < 8; u++)
				found |= used_elem(RXQ, u).len == HDR + 90 &&
					 memcmp(gp(RXBUF + 0x1000ull * used_elem(RXQ, u).id + HDR, 90), f, 90) == 0;
		}
		if (ok && !found)
			fprintf(stderr, "tap rx: frame not delivered (%u used)\n", used_idx(RXQ));
		ok = ok && found;
	} else {
		fprintf(stderr, "tap set-up: create %d (%s), up %d, packet socket %d: %s\n", r, err, up, ps,
			strerror(errno));
	}
	if (ps >= 0)
		close(ps);
	snprintf(cmd, sizeof(cmd), "ip link del dev %s", name);
	if (dev) {
		dev->ops->reset(dev);
		dev->ops->destroy(dev);
		free(dev);
		dev = NULL;
	}
	assert_int_equal(system(cmd), 0);
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_bad_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_rate_limit, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_rx_rate_limit, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_buffer_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_longer_than_mtu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_tx, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_tx_full, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_rx, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_rx_space_doorbell, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_corrupt, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_corrupt_indices, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_rx_head_corrupt, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_helper_exit, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_ring_reset, setup_ring, teardown_ring),
		cmocka_unit_test_setup_teardown(test_slirp_dhcp_through_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slirp_helper_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
