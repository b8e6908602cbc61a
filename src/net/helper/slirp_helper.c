/*
 * hvmm-net-slirp: libslirp user-mode networking for one hvmm virtio-net
 * interface, in its own process.
 *
 *   hvmm-net-slirp --ring SPEC   (started by hvmm: fd 3 its control socket,
 *                                fd 4 the ring memfd, fd 5/6 the doorbells)
 *
 * Why a separate program (see also src/net/net.h): hvmm is linked statically
 * and Debian has no static libslirp/GLib; and libslirp, which parses every
 * packet the guest sends, is better kept out of the process that holds guest
 * RAM and the KVM fds — the split QEMU makes with passt. This program is
 * linked dynamically against libslirp, and only it is.
 *
 * Control on fd 3 (AF_UNIX SOCK_SEQPACKET): this program sends
 * NET_SLIRP_READY once every hostfwd is bound, or NET_SLIRP_ERROR + reason
 * and exits 1. Nothing else is sent on it; hvmm sends only NET_SLIRP_KEEP
 * (keep=, at a snapshot) and NET_SLIRP_UNKEEP (at a migration). EOF means
 * hvmm is gone: clean up and exit 0, or with keep= after a snapshot wait for
 * a restored hvmm ("keep" below). Frames go through the shared-memory rings
 * of src/net/ring.h
 * (fd 4), with eventfd doorbells (fd 5: hvmm rings us, fd 6: we ring hvmm).
 *
 * The network is QEMU's user network: 10.0.2.0/24, gateway/host 10.0.2.2,
 * DNS 10.0.2.3 (forwarded to the host's resolver), DHCP from 10.0.2.15.
 * IPv4 only.
 *
 * Two limits keep a guest from turning this process against the host:
 *  - max-conns=N (default NET_MAX_CONNS_DEFAULT): libslirp opens one host
 *    socket per guest TCP connection, UDP flow and ICMP echo, and has no
 *    limit of its own. Once set up, this process lowers its RLIMIT_NOFILE to
 *    the files it holds plus N, so the kernel refuses the (N+1)-th socket,
 *    whatever kind; and a guest SYN that would need it is answered with a
 *    TCP reset here (connection refused, at once) instead of reaching
 *    libslirp, which would answer with ICMP host-unreachable. Listening
 *    hostfwd sockets are not polled while the process is at its limit, as
 *    an accept() that fails with EMFILE would leave them readable forever.
 *  - backpressure towards the host: while the rx ring and the backlog
 *    behind it are more than half full (the guest reads slowly, or hvmm's
 *    rx rate limit holds it back), libslirp's sockets are not polled for
 *    input, so the host's TCP senders wait rather than have frames dropped
 *    here and retransmitted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "../net.h"
#include "../ring.h"
#include "slirp_poll.h"
#include "../../sandbox.h"

#define HELPER_MAX_GUEST_ERRORS 10 /* then stay quiet: the guest controls these */
/* Frames for the guest held here while the rx ring is full, so a burst from
 * slirp is not dropped at once; past this they are dropped (and counted). */
#define HELPER_BACKLOG 256
/* TCP sockets corked around one batch of guest frames (helper_cork). A batch
 * corks every connected TCP socket of slirp's, two system calls each, so past
 * this many connections nothing is corked: an idle crowd would cost more
 * system calls than the coalescing saves. */
#define HELPER_CORK_MAX 16
/* Stop reading libslirp's host sockets while fewer than this many frames
 * fit in the rx ring and backlog together (of NET_RING_SLOTS +
 * HELPER_BACKLOG): room for what libslirp already holds (its per-socket
 * buffers, 128 KiB ~ 90 frames each) to reach the guest without a drop. */
#define HELPER_RX_HEADROOM ((NET_RING_SLOTS + HELPER_BACKLOG) / 2)
/* SYNs let through recently (4-tuples), so that a retransmitted SYN of a
 * connection libslirp already has is not refused at the cap. */
#define HELPER_SYN_MEMORY 64
/* Our own entries at the head of the poll set: hvmm's control socket, its
 * doorbell, the keep= listener (fd -1, ignored by poll, when absent). */
#define HELPER_OWN_FDS 3
/* How long a restored hvmm may take to send its rings once connected. */
#define HELPER_ATTACH_MS 2000

/* What an fd of slirp's poll set is, for corking; learnt once per fd. */
enum helper_fd_kind { FD_UNKNOWN, FD_TCP, FD_LISTEN, FD_OTHER };

struct helper_timer {
	struct helper_timer *next;
	SlirpTimerId id;      /* timer_new_opaque timers */
	SlirpTimerCb cb;      /* timer_new timers (older API) */
	void *cb_opaque;
	int64_t expire_ms;    /* -1: not armed */
};

struct helper {
	Slirp *slirp;
	int fd;
	struct pollfd *pfds;
	int npfds, cap;
	uint8_t *fd_kind;       /* per fd number: enum helper_fd_kind */
	int fd_cap;
	int corked[HELPER_CORK_MAX];
	int ncorked;
	struct helper_timer *timers;
	bool quit;
	unsigned guest_errors;
	struct net_ring tx, rx; /* we consume tx, produce rx */
	int txbell, rxbell;
	bool rx_kick;           /* published rx frames since the last doorbell check */
	unsigned bl_head, bl_n; /* backlog ring of frames for the guest */
	uint16_t bl_len[HELPER_BACKLOG];
	uint8_t bl[HELPER_BACKLOG][NET_MAX_FRAME];
	bool rx_paused;         /* rx ring + backlog nearly full: host sockets not read */
	bool at_cap;            /* every file this process may hold is open */
	bool have_listeners;    /* tcp hostfwd rules: listeners to pause at the cap */
	struct { uint32_t saddr, daddr, ports; } syn[HELPER_SYN_MEMORY];
	unsigned syn_next;
	/* counters, printed at exit with HVMM_NET_DEBUG set */
	uint64_t to_guest, to_guest_dropped, from_guest, rx_full, doorbells, corks, refused, paused;

	/* keep= (see "keep" below) */
	struct net_shm *shm;    /* the rings now mapped (NULL while orphaned) */
	unsigned keep_secs;
	int listen_fd;          /* where a restored hvmm attaches; -1 without keep= */
	uid_t owner;            /* the user that started us (before a root drop) */
	char name[NET_SLIRP_NAME_LEN];
	bool keep_armed;        /* hvmm took a snapshot: stay if it ends now */
	uint32_t keep_tx_head, keep_rx_tail; /* the rings as they were at the snapshot */
	bool orphan;            /* hvmm gone: waiting for another */
	int64_t orphan_since_ns, orphan_until_ns; /* real clock */
	int64_t clock_off_ns;   /* slirp's clock is the real one less the time spent orphaned */
	int64_t listen_rest_until_ns; /* accept failed for lack of files: a pause */
	uint64_t attaches;
};

static int64_t helper_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- libslirp callbacks ---- */

static void helper_bell(struct helper *h, int fd)
{
	uint64_t one = 1;
	h->doorbells++;
	/* EAGAIN: the counter is at its maximum, hvmm is woken anyway */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		h->quit = true;
}

/* Move backlogged frames into the rx ring, oldest first. */
static void helper_flush_rx(struct helper *h)
{
	while (h->bl_n > 0 && !h->quit && !h->orphan) {
		int sp = net_ring_space(&h->rx);
		if (sp < 0) {
			fprintf(stderr, "%s: rx ring corrupt\n", NET_SLIRP_PROG);
			h->quit = true;
			return;
		}
		if (sp == 0) {
			h->rx_full++;
			if (!net_ring_wait_space(&h->rx)) /* hvmm rings fd 5 when it frees slots */
				return;
			continue;
		}
		net_ring_push(&h->rx, h->bl[h->bl_head], h->bl_len[h->bl_head]);
		h->rx_kick = true;
		h->to_guest++;
		h->bl_head = (h->bl_head + 1) % HELPER_BACKLOG;
		h->bl_n--;
	}
}

/* A frame for the guest: into the rx ring, or the backlog behind it. If both
 * are full the frame is dropped (and counted): libslirp's contract allows it,
 * and TCP retransmits. Blocking here would stall every connection behind one
 * slow reader. */
static ssize_t helper_send_packet(const void *buf, size_t len, void *opaque)
{
	struct helper *h = opaque;
	/* No hvmm: lost, as on a wire with nobody at the other end. */
	if (len < NET_MIN_FRAME || len > NET_MAX_FRAME || h->orphan) {
		h->to_guest_dropped++;
		return (ssize_t)len;
	}
	if (h->bl_n == 0 && net_ring_space(&h->rx) > 0) {
		net_ring_push(&h->rx, buf, len);
		h->rx_kick = true;
		h->to_guest++;
		return (ssize_t)len;
	}
	if (h->bl_n == HELPER_BACKLOG) {
		h->to_guest_dropped++;
		return (ssize_t)len;
	}
	unsigned i = (h->bl_head + h->bl_n) % HELPER_BACKLOG;
	memcpy(h->bl[i], buf, len);
	h->bl_len[i] = (uint16_t)len;
	h->bl_n++;
	helper_flush_rx(h);
	return (ssize_t)len;
}

static void helper_guest_error(const char *msg, void *opaque)
{
	struct helper *h = opaque;
	if (h->guest_errors++ < HELPER_MAX_GUEST_ERRORS)
		fprintf(stderr, "%s: guest error: %s\n", NET_SLIRP_PROG, msg);
}

/* libslirp's clock (its TCP timers, and every timer it arms here) stands
 * still while no hvmm is attached: the guest's clock stood still too, so
 * neither end of its connections sees time pass, and no retransmission
 * gives up on a connection in the meantime. */
static int64_t helper_clock_ns(const struct helper *h)
{
	return (h->orphan ? h->orphan_since_ns : helper_now_ns()) - h->clock_off_ns;
}

static int64_t helper_clock_get_ns(void *opaque)
{
	return helper_clock_ns(opaque);
}

static struct helper_timer *helper_timer_alloc(struct helper *h)
{
	struct helper_timer *t = calloc(1, sizeof(*t));
	if (!t) {
		fprintf(stderr, "%s: out of memory\n", NET_SLIRP_PROG);
		exit(1);
	}
	t->expire_ms = -1;
	t->next = h->timers;
	h->timers = t;
	return t;
}

static void *helper_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct helper_timer *t = helper_timer_alloc(opaque);
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	return t;
}

static void *helper_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct helper_timer *t = helper_timer_alloc(opaque);
	t->id = id;
	t->cb_opaque = cb_opaque;
	return t;
}

static void helper_timer_free(void *timer, void *opaque)
{
	struct helper *h = opaque;
	for (struct helper_timer **p = &h->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void helper_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	((struct helper_timer *)timer)->expire_ms = expire_ms;
}

/* The poll set is rebuilt from slirp_pollfds_fill every iteration; libslirp
 * calls these two as it creates and closes a socket, which is when an fd
 * number's kind (for corking) must be learnt again. */
static void helper_forget_fd(int fd, void *opaque)
{
	struct helper *h = opaque;
	if (fd >= 0 && fd < h->fd_cap)
		h->fd_kind[fd] = FD_UNKNOWN;
}

static void helper_notify(void *opaque)
{
	(void)opaque;
}

static enum helper_fd_kind helper_fd_kind(int fd);

/* Room in fd_kind for fd. */
static void helper_fd_track(struct helper *h, int fd)
{
	if (fd < h->fd_cap)
		return;
	int cap = fd + 64;
	uint8_t *k = realloc(h->fd_kind, (size_t)cap);
	if (!k) {
		fprintf(stderr, "%s: out of memory\n", NET_SLIRP_PROG);
		exit(1);
	}
	memset(k + h->fd_cap, FD_UNKNOWN, (size_t)(cap - h->fd_cap));
	h->fd_kind = k;
	h->fd_cap = cap;
}

static int helper_add_poll(int fd, int events, void *opaque)
{
	struct helper *h = opaque;
	if (h->npfds == h->cap) {
		int cap = h->cap ? h->cap * 2 : 64;
		struct pollfd *p = realloc(h->pfds, (size_t)cap * sizeof(*p));
		if (!p) {
			fprintf(stderr, "%s: out of memory\n", NET_SLIRP_PROG);
			exit(1);
		}
		h->pfds = p;
		h->cap = cap;
	}
	if (fd >= 0)
		helper_fd_track(h, fd);
	if (h->npfds >= HELPER_OWN_FDS && fd >= 0) { /* libslirp's sockets, not our own */
		if (h->rx_paused)
			events &= ~(SLIRP_POLL_IN | SLIRP_POLL_PRI);
		if (h->at_cap && h->have_listeners) {
			if (h->fd_kind[fd] == FD_UNKNOWN)
				h->fd_kind[fd] = (uint8_t)helper_fd_kind(fd);
			if (h->fd_kind[fd] == FD_LISTEN)
				events &= ~SLIRP_POLL_IN;
		}
	}
	h->pfds[h->npfds] = (struct pollfd){ .fd = fd, .events = slirp_poll_to_events(events) };
	return h->npfds++;
}

static int helper_get_revents(int idx, void *opaque)
{
	struct helper *h = opaque;
	if (idx < 0 || idx >= h->npfds)
		return 0;
	return slirp_poll_from_revents(h->pfds[idx].revents);
}

static const SlirpCb helper_cb = {
	.send_packet = helper_send_packet,
	.guest_error = helper_guest_error,
	.clock_get_ns = helper_clock_get_ns,
	.timer_new = helper_timer_new,
	.timer_free = helper_timer_free,
	.timer_mod = helper_timer_mod,
	.register_poll_fd = helper_forget_fd,
	.unregister_poll_fd = helper_forget_fd,
	.notify = helper_notify,
	.timer_new_opaque = helper_timer_new_opaque,
};

/* ---- start-up ---- */

/* Tell hvmm why we cannot start (it prints the line), then exit. */
static void helper_fail(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void helper_fail(int fd, const char *fmt, ...)
{
	char msg[256];
	size_t pre = strlen(NET_SLIRP_ERROR);
	memcpy(msg, NET_SLIRP_ERROR, pre);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + pre, sizeof(msg) - pre, fmt, ap);
	va_end(ap);
	if (fd < 0 || send(fd, msg, strlen(msg), MSG_NOSIGNAL) < 0)
		fprintf(stderr, "%s: %s\n", NET_SLIRP_PROG, msg + pre);
	exit(1);
}

static Slirp *helper_slirp_new(struct helper *h, bool host_loopback)
{
	SlirpConfig cfg = {
		.version = 4,
		.restricted = 0,
		.in_enabled = true,
		.in6_enabled = false,
		/* Closed by default: otherwise 10.0.2.2 is the host's 127.0.0.1, and
		 * every service the host keeps to itself on loopback (databases,
		 * admin ports, other VMs' forwards) is open to the guest. */
		.disable_host_loopback = !host_loopback,
	};
	inet_pton(AF_INET, NET_SLIRP_NET, &cfg.vnetwork);
	inet_pton(AF_INET, NET_SLIRP_MASK, &cfg.vnetmask);
	inet_pton(AF_INET, NET_SLIRP_HOST, &cfg.vhost);
	inet_pton(AF_INET, NET_SLIRP_GUEST, &cfg.vdhcp_start);
	inet_pton(AF_INET, NET_SLIRP_DNS, &cfg.vnameserver);
	return slirp_new(&cfg, &helper_cb, h);
}

/* ---- main loop ---- */

/*
 * Coalescing. libslirp writes the payload of each TCP segment the guest sends
 * to its host socket at once, one send() per 1460 bytes. On a fast path (the
 * loopback to a local client) each send then goes out as its own segment and
 * wakes the reader, which on a two-core host preempts us: measured ~600
 * loopback segments per MiB, and this helper's core saturated at ~200 MiB/s.
 * So while a batch of guest frames goes into slirp, slirp's connected TCP
 * sockets are corked (TCP_CORK), and uncorked at the end of the batch: the
 * kernel sends what the batch wrote as a few large segments (~55 per MiB).
 * Nothing waits longer than the batch: the uncork pushes it out at once.
 */
static enum helper_fd_kind helper_fd_kind(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l) < 0 || v != IPPROTO_TCP)
		return FD_OTHER;
	l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0)
		return FD_OTHER;
	return v ? FD_LISTEN : FD_TCP; /* a hostfwd listener, or a connection */
}

static void helper_cork(struct helper *h)
{
	h->ncorked = 0;
	int tcp[HELPER_CORK_MAX], n = 0;
	for (int i = HELPER_OWN_FDS; i < h->npfds; i++) {
		int fd = h->pfds[i].fd;
		if (fd < 0 || fd >= h->fd_cap)
			continue;
		if (h->fd_kind[fd] == FD_UNKNOWN)
			h->fd_kind[fd] = (uint8_t)helper_fd_kind(fd);
		if (h->fd_kind[fd] != FD_TCP)
			continue;
		if (n == HELPER_CORK_MAX)
			return; /* too many connections: see HELPER_CORK_MAX */
		tcp[n++] = fd;
	}
	int on = 1;
	for (int i = 0; i < n; i++) {
		if (setsockopt(tcp[i], IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0)
			h->corked[h->ncorked++] = tcp[i];
		else
			h->fd_kind[tcp[i]] = FD_OTHER; /* not what it was: leave it be */
	}
	h->corks += (uint64_t)(h->ncorked > 0);
}

/* Uncork: the kernel sends what the batch queued. A socket slirp closed in
 * the batch fails with EBADF, or (number reused) is uncorked harmlessly. */
static void helper_uncork(struct helper *h)
{
	int off = 0;
	for (int i = 0; i < h->ncorked; i++)
		setsockopt(h->corked[i], IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	h->ncorked = 0;
}

/* ---- max-conns ---- */

/* Is every file this process may open open? (The kernel hands out the
 * lowest free number, so a dup fails with EMFILE exactly then.) */
static bool helper_full(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return errno == EMFILE;
	close(fd);
	return false;
}

static uint16_t helper_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Answer the guest's SYN (frame f, IPv4 header at ip, TCP header at tcp,
 * payload plen bytes) with RST+ACK from its destination: "connection
 * refused", as a host with nothing listening answers. */
static void helper_send_rst(struct helper *h, const uint8_t *f, const uint8_t *ip, const uint8_t *tcp,
			    size_t plen)
{
	uint8_t r[14 + 20 + 20] = { 0 };
	memcpy(r, f + 6, 6);     /* to the guest's MAC */
	memcpy(r + 6, f, 6);     /* from the MAC it sent to (slirp's) */
	r[12] = 0x08;            /* IPv4 */
	uint8_t *rip = r + 14, *rt = r + 34;
	rip[0] = 0x45;
	rip[3] = 40;             /* total length */
	rip[6] = 0x40;           /* DF */
	rip[8] = 64;             /* TTL */
	rip[9] = IPPROTO_TCP;
	memcpy(rip + 12, ip + 16, 4); /* from the SYN's destination */
	memcpy(rip + 16, ip + 12, 4); /* to its source */
	uint16_t c = helper_csum(rip, 20, 0);
	rip[10] = (uint8_t)(c >> 8);
	rip[11] = (uint8_t)c;
	memcpy(rt, tcp + 2, 2);  /* ports swapped */
	memcpy(rt + 2, tcp, 2);
	uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	uint32_t ack = seq + 1 + (uint32_t)plen; /* the SYN and any data with it */
	for (int i = 0; i < 4; i++)
		rt[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
	rt[12] = 5 << 4;
	rt[13] = 0x14;           /* RST | ACK */
	/* pseudo-header: addresses, protocol, TCP length */
	uint32_t sum = IPPROTO_TCP + 20;
	for (int i = 0; i < 8; i += 2)
		sum += (uint32_t)rip[12 + i] << 8 | rip[13 + i];
	c = helper_csum(rt, 20, sum);
	rt[16] = (uint8_t)(c >> 8);
	rt[17] = (uint8_t)c;
	helper_send_packet(r, sizeof(r), h);
}

/* A guest frame that opens a TCP connection (SYN without ACK) while every
 * file this process may hold is open: refused here (true, answered with a
 * reset). A SYN let through lately is let through again: it is a
 * retransmission, and libslirp knows its connection. */
static bool helper_syn_refused(struct helper *h, const uint8_t *f, size_t len)
{
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return false;
	const uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	size_t tot = (size_t)ip[2] << 8 | ip[3];
	if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IPPROTO_TCP || tot > len - 14 || tot < ihl + 20 ||
	    ((ip[6] & 0x1f) | ip[7]) != 0) /* a fragment: libslirp reassembles those */
		return false;
	const uint8_t *tcp = ip + ihl;
	size_t doff = (size_t)(tcp[12] >> 4) * 4;
	if ((tcp[13] & 0x12) != 0x02 || doff < 20 || ihl + doff > tot)
		return false;
	uint32_t saddr, daddr, ports;
	memcpy(&saddr, ip + 12, 4);
	memcpy(&daddr, ip + 16, 4);
	memcpy(&ports, tcp, 4);
	for (unsigned i = 0; i < HELPER_SYN_MEMORY; i++)
		if (h->syn[i].saddr == saddr && h->syn[i].daddr == daddr && h->syn[i].ports == ports)
			return false;
	if (!helper_full()) {
		h->syn[h->syn_next].saddr = saddr;
		h->syn[h->syn_next].daddr = daddr;
		h->syn[h->syn_next].ports = ports;
		h->syn_next = (h->syn_next + 1) % HELPER_SYN_MEMORY;
		return false;
	}
	h->refused++;
	helper_send_rst(h, f, ip, tcp, tot - ihl - doff);
	return true;
}

static int helper_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The RLIMIT_NOFILE that leaves exactly n free file numbers: one past the
 * n-th number not open now (the kernel hands out the lowest free one, and
 * files open at higher numbers stay usable but take no slot below it).
 * Without /proc (hvmm-jailer's jail has none) the numbers are probed one
 * by one with fcntl instead. 0 if neither works. */
static rlim_t helper_files_limit(unsigned n)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		unsigned left = n;
		for (int fd = 0; fd < INT_MAX; fd++) {
			if (fcntl(fd, F_GETFD) >= 0)
				continue;
			if (errno != EBADF)
				return 0;
			if (--left == 0)
				return (rlim_t)fd + 1;
		}
		return 0;
	}
	int self = dirfd(d), *fds = NULL;
	size_t nfds = 0, cap = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == self)
			continue;
		if (nfds == cap) {
			cap = cap ? cap * 2 : 64;
			int *p = realloc(fds, cap * sizeof(*fds));
			if (!p) {
				closedir(d);
				free(fds);
				return 0;
			}
			fds = p;
		}
		fds[nfds++] = fd;
	}
	closedir(d);
	qsort(fds, nfds, sizeof(*fds), helper_cmp_int);
	rlim_t next = 0; /* candidate number */
	for (size_t i = 0; i < nfds && (rlim_t)fds[i] < next + n; i++)
		if ((rlim_t)fds[i] >= next)
			n -= (unsigned)((rlim_t)fds[i] - next), next = (rlim_t)fds[i] + 1;
	free(fds);
	return next + n;
}

/* Lower RLIMIT_NOFILE so that max_conns more files fit: each guest
 * connection or flow is one host socket, and the kernel refuses the one
 * past the cap. */
static void helper_cap_files(int fd, unsigned max_conns)
{
	rlim_t want = helper_files_limit(max_conns);
	struct rlimit rl;
	if (!want || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		helper_fail(fd, "max-conns: cannot count this process's open files: %s", strerror(errno));
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		helper_fail(fd, "max-conns=%u needs %llu open files, above the hard limit %llu (ulimit -Hn)",
			    max_conns, (unsigned long long)want, (unsigned long long)rl.rlim_max);
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		helper_fail(fd, "max-conns: setrlimit: %s", strerror(errno));
}

/* Frames from hvmm (the guest's tx) into slirp: the whole tx ring, at most
 * one ring's worth per iteration so slirp's own sockets are served too.
 * false: the ring is corrupt. */
static bool helper_from_hvmm(struct helper *h)
{
	static uint8_t buf[NET_MAX_FRAME];
	bool freed = false;
	/* A lone frame has nothing to coalesce with: no cork, no system calls. */
	if (net_ring_avail(&h->tx) > 1)
		helper_cork(h);
	for (unsigned i = 0; i < NET_RING_SLOTS && !h->quit; i++) {
		int n = net_ring_avail(&h->tx);
		if (n < 0)
			return false;
		if (n == 0)
			break;
		size_t len;
		const uint8_t *f = net_ring_peek(&h->tx, &len);
		if (!f)
			return false;
		/* A private copy: slirp parses it, and hvmm could rewrite the slot. */
		memcpy(buf, f, len);
		net_ring_consume(&h->tx);
		freed = true;
		h->from_guest++;
		if (helper_syn_refused(h, buf, len))
			continue;
		slirp_input(h->slirp, buf, (int)len);
	}
	helper_uncork(h);
	if (freed && net_ring_need_space_kick(&h->tx))
		helper_bell(h, h->rxbell);
	return true;
}

static void helper_run_timers(struct helper *h)
{
	int64_t now = helper_clock_ns(h) / 1000000;
	/* A callback may free or re-arm timers: restart the walk after each. */
	for (bool again = true; again;) {
		again = false;
		for (struct helper_timer *t = h->timers; t; t = t->next) {
			if (t->expire_ms < 0 || t->expire_ms > now)
				continue;
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				slirp_handle_timer(h->slirp, t->id, t->cb_opaque);
			again = true;
			break;
		}
	}
}

static int helper_poll_timeout(struct helper *h, uint32_t slirp_ms)
{
	int64_t timeout = slirp_ms == UINT32_MAX ? -1 : (int64_t)slirp_ms;
	int64_t now = helper_clock_ns(h) / 1000000;
	for (struct helper_timer *t = h->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		int64_t d = t->expire_ms > now ? t->expire_ms - now : 0;
		if (timeout < 0 || d < timeout)
			timeout = d;
	}
	return timeout > 60000 ? 60000 : (int)timeout;
}

/* Map the ring memfd hvmm made (and initialised): fd NET_RING_SHM_FD at
 * the start, one passed by a restored hvmm at an attach. hvmm seals its
 * memfd's size, so it cannot shrink under us (a SIGBUS here). */
static struct net_shm *helper_map_rings(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < NET_SHM_SIZE)
		return NULL;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return NULL;
	void *p = mmap(NULL, NET_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct net_shm *s = p;
	if (s->magic != NET_RING_MAGIC || s->version != NET_RING_VERSION || s->slots != NET_RING_SLOTS) {
		munmap(p, NET_SHM_SIZE);
		return NULL;
	}
	return s;
}


/* ---- keep= ----
 *
 * A helper started with keep=SECONDS listens on an abstract AF_UNIX name
 * (net.h) from the start. hvmm says NET_SLIRP_KEEP on the control socket
 * when it takes a snapshot; the state of both rings is noted then. If the
 * control socket then reports EOF (hvmm ended) while neither ring has moved
 * since, the guest's TCP state in the snapshot is exactly what slirp's
 * connections expect: the helper becomes an orphan instead of exiting. It
 * drops its own end of the rings, keeps libslirp and every socket, stops
 * libslirp's clock, drops the frames it would send, and waits up to
 * keep_secs for a restored hvmm to connect and hand it new rings. When the
 * time runs out it exits like on any EOF. One hvmm at a time: an attach
 * while an hvmm is attached is refused, as is any process of another user.
 */

static int helper_listen(struct helper *h)
{
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -errno;
	int n = snprintf(h->name, sizeof(h->name), "%s", NET_SLIRP_NAME_PREFIX);
	for (int i = 0; i < 16; i++)
		n += snprintf(h->name + n, sizeof(h->name) - (size_t)n, "%02x", rnd[i]);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path + 1, h->name, strlen(h->name)); /* sun_path[0] = 0: abstract */
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(h->name));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, alen) < 0 || listen(fd, 4) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	h->listen_fd = fd;
	return 0;
}

/* Let go of hvmm's side: its control socket, doorbells and rings. */
static void helper_detach(struct helper *h)
{
	if (h->shm)
		munmap(h->shm, NET_SHM_SIZE);
	h->shm = NULL;
	int *fds[] = { &h->fd, &h->txbell, &h->rxbell };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	h->bl_n = 0; /* frames for the old guest: lost, TCP sends them again */
	h->rx_kick = false;
	h->rx_paused = false;
	h->keep_armed = false;
}

/* hvmm's control socket is readable: NET_SLIRP_KEEP, or its end. */
static void helper_ctl(struct helper *h)
{
	char msg[64];
	ssize_t r = recv(h->fd, msg, sizeof(msg), MSG_DONTWAIT);
	if (r > 0) {
		if (h->keep_secs && (size_t)r == strlen(NET_SLIRP_KEEP) && memcmp(msg, NET_SLIRP_KEEP, (size_t)r) == 0) {
			h->keep_armed = true;
			h->keep_tx_head = atomic_load(&h->tx.ctl->head);
			h->keep_rx_tail = atomic_load(&h->rx.ctl->tail);
		} else if ((size_t)r == strlen(NET_SLIRP_UNKEEP) && memcmp(msg, NET_SLIRP_UNKEEP, (size_t)r) == 0) {
			h->keep_armed = false; /* a migration: the VM goes elsewhere */
		}
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* hvmm is gone. Kept only if the guest saw nothing after the snapshot:
	 * else the snapshot's TCP state is older than slirp's. */
	bool keep = h->keep_armed && atomic_load(&h->tx.ctl->head) == h->keep_tx_head &&
		    atomic_load(&h->rx.ctl->tail) == h->keep_rx_tail;
	if (!keep) {
		h->quit = true;
		return;
	}
	helper_detach(h);
	h->orphan = true;
	h->orphan_since_ns = helper_now_ns();
	h->orphan_until_ns = h->orphan_since_ns + (int64_t)h->keep_secs * 1000000000;
	if (getenv("HVMM_NET_DEBUG"))
		fprintf(stderr, "%s: hvmm ended after a snapshot: kept for %u s as %s\n", NET_SLIRP_PROG,
			h->keep_secs, h->name);
}

/* Read and drop what conn has queued (closing any fds it passed), after
 * waiting up to wait_ms for a first message. Why: a unix socket closed with
 * unread data resets its peer, whose recv then fails with ECONNRESET instead
 * of returning the reason we sent. */
static void helper_drain(int conn, int wait_ms)
{
	struct pollfd p = { .fd = conn, .events = POLLIN };
	if (wait_ms > 0 && poll(&p, 1, wait_ms) <= 0)
		return;
	for (int i = 0; i < 16; i++) {
		char msg[64];
		union { char buf[CMSG_SPACE(8 * sizeof(int))]; struct cmsghdr align; } cb;
		struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
				    .msg_controllen = sizeof(cb.buf) };
		if (recvmsg(conn, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
}

/* Tell a connecting process why not, and hang up. wait_ms: how long to wait
 * for its request first (see helper_drain), 0 for a stranger. */
static void helper_refuse(int fd, const char *why, int wait_ms)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "%s%s", NET_SLIRP_ERROR, why);
	send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	helper_drain(fd, wait_ms);
	close(fd);
}

/* The attach message on conn: NET_SLIRP_ATTACH with exactly three fds. */
static bool helper_recv_attach(int conn, int fds[3])
{
	struct pollfd p = { .fd = conn, .events = POLLIN };
	if (poll(&p, 1, HELPER_ATTACH_MS) <= 0)
		return false;
	char msg[64];
	union { char buf[CMSG_SPACE(8 * sizeof(int))]; struct cmsghdr align; } cb;
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			    .msg_controllen = sizeof(cb.buf) };
	ssize_t r = recvmsg(conn, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r < 0)
		return false;
	int got[8], n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && n < 8; i++)
			memcpy(&got[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	bool ok = n == 3 && !(m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) && (size_t)r == strlen(NET_SLIRP_ATTACH) &&
		  memcmp(msg, NET_SLIRP_ATTACH, (size_t)r) == 0;
	for (int i = 0; i < n; i++) {
		if (ok)
			fds[i] = got[i];
		else
			close(got[i]);
	}
	return ok;
}

/* A process connected to our name. */
static void helper_accept(struct helper *h)
{
	int conn = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
		if (errno == EMFILE || errno == ENFILE) /* at max-conns: look again in a second */
			h->listen_rest_until_ns = helper_now_ns() + 1000000000;
		return;
	}
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != h->owner) {
		helper_refuse(conn, "not started by this user", 0);
		return;
	}
	if (!h->orphan) {
		helper_refuse(conn, "the hvmm it serves still runs (end the snapshot's source first)",
			      HELPER_ATTACH_MS);
		return;
	}
	int fds[3];
	if (!helper_recv_attach(conn, fds)) {
		helper_refuse(conn, "malformed attach request", 0);
		return;
	}
	struct net_shm *shm = helper_map_rings(fds[0]);
	close(fds[0]);
	if (!shm) {
		close(fds[1]);
		close(fds[2]);
		helper_refuse(conn, "the fd passed is not hvmm's ring memory", 0);
		return;
	}
	char ready[sizeof(NET_SLIRP_READY) + NET_SLIRP_NAME_LEN + 1];
	snprintf(ready, sizeof(ready), "%s %s", NET_SLIRP_READY, h->name);
	h->shm = shm;
	h->fd = conn;
	h->txbell = fds[1];
	h->rxbell = fds[2];
	net_ring_init(&h->tx, shm, NET_RING_TX);
	net_ring_init(&h->rx, shm, NET_RING_RX);
	if (send(conn, ready, strlen(ready), MSG_NOSIGNAL) < 0) {
		helper_detach(h); /* that one is gone already: wait on for another */
		return;
	}
	/* slirp's clock goes on from where it stopped */
	h->clock_off_ns += helper_now_ns() - h->orphan_since_ns;
	h->orphan = false;
	h->attaches++;
}

int main(int argc, char **argv)
{
	static struct helper h = { .fd = NET_SLIRP_FD, .txbell = NET_RING_TXBELL_FD,
				   .rxbell = NET_RING_RXBELL_FD, .listen_fd = -1 };
	struct stat st;
	if (argc != 3 || strcmp(argv[1], NET_RING_ARG) != 0 || fstat(h.fd, &st) < 0 ||
	    !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "%s: started by hvmm for --network user (fd %d = its socket, "
			"%d-%d its rings), not by hand\n", NET_SLIRP_PROG, NET_SLIRP_FD,
			NET_RING_SHM_FD, NET_RING_RXBELL_FD);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* hvmm says whether to confine (--seccomp); the names the SIGSYS
	 * handler prints are resolved now, while we may still allocate. */
	const char *sc = getenv("HVMM_NET_SLIRP_SECCOMP");
#if defined(__SANITIZE_ADDRESS__)
	bool confine = sc && strcmp(sc, "on") == 0; /* as hvmm's default there (main.c) */
#else
	bool confine = !sc || strcmp(sc, "off") != 0;
#endif
	if (sandbox_init(confine, NET_SLIRP_PROG, SANDBOX_HELPER_EXIT, NULL) < 0)
		helper_fail(h.fd, "seccomp: cannot install the SIGSYS handler");

	struct net_shm *shm = helper_map_rings(NET_RING_SHM_FD);
	if (!shm)
		helper_fail(h.fd, "fd %d is not hvmm's ring memory", NET_RING_SHM_FD);
	close(NET_RING_SHM_FD); /* the mapping stays */
	h.shm = shm;
	net_ring_init(&h.tx, shm, NET_RING_TX);
	net_ring_init(&h.rx, shm, NET_RING_RX);

	struct net_spec spec;
	char err[200];
	if (net_parse_spec(argv[2], &spec, err, sizeof(err)) < 0)
		helper_fail(h.fd, "%s", err);
	if (spec.kind != NET_USER)
		helper_fail(h.fd, "'%s' is not a user network", argv[2]);

	h.slirp = helper_slirp_new(&h, spec.host_loopback);
	if (!h.slirp)
		helper_fail(h.fd, "libslirp %s: slirp_new failed", slirp_version_string());
	for (int i = 0; i < spec.nr_fwd; i++) {
		const struct net_hostfwd *f = &spec.fwd[i];
		errno = 0;
		if (slirp_add_hostfwd(h.slirp, f->udp, f->haddr, f->hport, f->gaddr, f->gport) < 0) {
			char ha[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &f->haddr, ha, sizeof(ha));
			helper_fail(h.fd, "hostfwd %s %s:%u: %s", f->udp ? "udp" : "tcp", ha, f->hport,
				    errno ? strerror(errno) : "cannot bind the host port");
		}
	}
	for (int i = 0; i < spec.nr_fwd; i++)
		h.have_listeners |= !spec.fwd[i].udp;
	h.keep_secs = spec.keep_secs;
	if (h.keep_secs) {
		h.owner = getuid(); /* before sandbox_enter drops root */
		/* Our own session: a signal meant for hvmm's process group (a
		 * terminal's ^C, a supervisor ending the group) must not end the
		 * helper that is to outlive it. */
		setsid();
		int lr = helper_listen(&h);
		if (lr < 0)
			helper_fail(h.fd, "keep=: cannot listen for a restored hvmm: %s", strerror(-lr));
	}
	helper_cap_files(h.fd, spec.max_conns);
	char ready[sizeof(NET_SLIRP_READY) + NET_SLIRP_NAME_LEN + 1];
	snprintf(ready, sizeof(ready), "%s%s%s", NET_SLIRP_READY, h.keep_secs ? " " : "", h.name);
	if (send(h.fd, ready, strlen(ready), MSG_NOSIGNAL) < 0)
		return 0; /* hvmm already gone */
	/* Set up (rings mapped, ports bound, hvmm told): from here on the
	 * helper only moves frames between the rings and libslirp's sockets.
	 * A failure here ends the helper, which hvmm sees as its back end gone. */
	int sr = sandbox_enter(SANDBOX_NET_HELPER, NULL);
	if (sr < 0) {
		fprintf(stderr, "%s: seccomp: %s\n", NET_SLIRP_PROG, strerror(-sr));
		return 1;
	}

	bool corrupt = false;
	while (!h.quit) {
		int64_t now = helper_now_ns();
		if (h.orphan && now >= h.orphan_until_ns)
			break; /* nobody came: end like on any EOF */
		uint32_t slirp_ms = UINT32_MAX;
		/* What may be read this round: see the two limits at the top. */
		bool pause = false;
		if (!h.orphan) {
			helper_flush_rx(&h);
			int rx_room = net_ring_space(&h.rx);
			pause = rx_room >= 0 && (unsigned)rx_room + (HELPER_BACKLOG - h.bl_n) < HELPER_RX_HEADROOM;
			if (pause)
				net_ring_wait_space(&h.rx); /* hvmm rings fd 5 when it frees rx slots */
		}
		h.paused += pause && !h.rx_paused;
		h.rx_paused = pause;
		h.at_cap = h.have_listeners && helper_full();
		h.npfds = 0;
		helper_add_poll(h.fd, SLIRP_POLL_IN, &h);     /* index 0: hvmm's control socket */
		helper_add_poll(h.txbell, SLIRP_POLL_IN, &h); /* index 1: hvmm's doorbell */
		helper_add_poll(now >= h.listen_rest_until_ns ? h.listen_fd : -1, SLIRP_POLL_IN, &h); /* 2 */
		slirp_pollfds_fill(h.slirp, &slirp_ms, helper_add_poll, &h);
		int timeout;
		if (!h.orphan) {
			/* Frames published this round: ring hvmm if it is going to sleep. */
			helper_flush_rx(&h);
			if (h.rx_kick && net_ring_need_kick(&h.rx))
				helper_bell(&h, h.rxbell);
			h.rx_kick = false;
			timeout = helper_poll_timeout(&h, slirp_ms);
			if (!net_ring_prepare_sleep(&h.tx))
				timeout = 0; /* tx frames are waiting: just look at the sockets */
		} else {
			/* slirp's clock stands still: only sockets, the listener and the end matter */
			int64_t until = h.orphan_until_ns;
			if (h.listen_rest_until_ns > now && h.listen_rest_until_ns < until)
				until = h.listen_rest_until_ns;
			timeout = (int)((until - now) / 1000000 + 1);
		}
		int n = poll(h.pfds, (nfds_t)h.npfds, timeout);
		if (!h.orphan)
			net_ring_awake(&h.tx);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: poll: %s\n", NET_SLIRP_PROG, strerror(errno));
			break;
		}
		bool was_orphan = h.orphan;
		if (n > 0 && !was_orphan && h.pfds[0].revents)
			helper_ctl(&h);
		if (h.quit)
			break;
		if (n > 0 && !h.orphan && h.pfds[1].revents) {
			uint64_t v;
			if (read(h.txbell, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
				break;
		}
		if (n > 0 && h.pfds[2].revents)
			helper_accept(&h);
		if (!h.orphan && (!helper_from_hvmm(&h) || h.tx.corrupt || h.rx.corrupt)) {
			corrupt = true;
			break;
		}
		/* The poll set's revents belong to this round's sockets: an
		 * orphan that just became one, or was just attached to, still
		 * serves them the same way. */
		slirp_pollfds_poll(h.slirp, n < 0, helper_get_revents, &h);
		helper_run_timers(&h);
	}
	if (corrupt)
		fprintf(stderr, "%s: hvmm's ring is corrupt, exiting\n", NET_SLIRP_PROG);
	if (getenv("HVMM_NET_DEBUG"))
		fprintf(stderr, "%s: to guest %llu (dropped %llu, ring full %llu), from guest %llu "
			"doorbells %llu, corked batches %llu, connections refused at max-conns %llu, "
			"host reads paused %llu times, attached to %llu restored hvmm\n", NET_SLIRP_PROG,
			(unsigned long long)h.to_guest,
			(unsigned long long)h.to_guest_dropped, (unsigned long long)h.rx_full,
			(unsigned long long)h.from_guest,
			(unsigned long long)h.doorbells, (unsigned long long)h.corks,
			(unsigned long long)h.refused, (unsigned long long)h.paused,
			(unsigned long long)h.attaches);
	slirp_cleanup(h.slirp);
	helper_detach(&h);
	if (h.listen_fd >= 0)
		close(h.listen_fd);
	while (h.timers)
		helper_timer_free(h.timers, &h);
	free(h.pfds);
	free(h.fd_kind);
	return corrupt ? 1 : 0;
}
