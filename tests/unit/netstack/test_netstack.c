/*
 * The guest's ring-3 network stack (guest/user/net.c), compiled for the host
 * and run against libslirp through fake_vnet: DHCP from slirp's server, TCP
 * through a real hostfwd from a client thread on 127.0.0.1 (echo, bulk with
 * the pattern checked byte by byte, bulk with frames dropped both ways), and
 * hand-made frames for ARP, ICMP and every malformed-header path.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../guest/user/net.h"
#include "fake_vnet.h"

#define GUEST_IP 0x0a00020fu  /* 10.0.2.15 */
#define GW_IP 0x0a000202u     /* 10.0.2.2 */
#define DNS_IP 0x0a000203u    /* 10.0.2.3 */
#define GUEST_PORT 8080

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 };

/* ---- the host client (a thread; slirp runs on the test's thread) ---- */

struct client {
	int port;
	volatile int go;       /* set once the stack listens */
	const char *request;
	size_t bulk;           /* bytes expected after the reply line */
	int half_close;        /* shutdown(SHUT_WR) after the request: the guest sees FIN first */
	size_t upload;         /* pattern bytes sent after the request (then half-close) */
	char reply[256];
	size_t reply_len;
	size_t bulk_got, bulk_bad_at;
	int bulk_ok;
	double bulk_s;
	int err;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i + i / 251); /* the same as guest/user/unet.c */
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	while (!c->go)
		usleep(1000);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		c->err = 1;
		close(fd);
		return NULL;
	}
	if (write(fd, c->request, strlen(c->request)) != (ssize_t)strlen(c->request))
		c->err = 2;
	static uint8_t up[65536];
	for (size_t off = 0; off < c->upload;) {
		size_t k = c->upload - off < sizeof(up) ? c->upload - off : sizeof(up);
		for (size_t i = 0; i < k; i++)
			up[i] = pattern(off + i);
		ssize_t w = write(fd, up, k);
		if (w <= 0) {
			c->err = 3;
			break;
		}
		off += (size_t)w;
	}
	if (c->half_close)
		shutdown(fd, SHUT_WR);
	/* The reply line, then the bulk stream, then EOF. */
	while (c->reply_len < sizeof(c->reply) - 1) {
		ssize_t k = read(fd, c->reply + c->reply_len, 1);
		if (k <= 0)
			break;
		c->reply_len++;
		if (c->reply[c->reply_len - 1] == '\n')
			break;
	}
	c->reply[c->reply_len] = 0;
	static uint8_t buf[65536];
	double t0 = mono_s();
	c->bulk_ok = 1;
	c->bulk_bad_at = (size_t)-1;
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++) {
			if (buf[i] != pattern(c->bulk_got + (size_t)i) && c->bulk_ok) {
				c->bulk_ok = 0;
				c->bulk_bad_at = c->bulk_got + (size_t)i;
			}
		}
		c->bulk_got += (size_t)k;
	}
	c->bulk_s = mono_s() - t0;
	close(fd);
	return NULL;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- DHCP ---- */

static void test_dhcp(void **state)
{
	(void)state;
	net_reset();
	struct vnet *n = fake_vnet_new(0, 0);
	assert_non_null(n);
	struct net_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(net_dhcp(n, &cfg, 5000), 0);
	assert_int_equal(cfg.ip, GUEST_IP);
	assert_int_equal(cfg.mask, 0xffffff00u);
	assert_int_equal(cfg.router, GW_IP);
	assert_int_equal(cfg.dns, DNS_IP);
	assert_int_equal(cfg.server, GW_IP);
	assert_true(cfg.lease_s > 0);
	assert_int_equal(net_stats()->rx_bad, 0);
	fake_vnet_free(n);
}

/* DHCP with every other frame to slirp lost: the client resends. */
static void test_dhcp_lossy(void **state)
{
	(void)state;
	net_reset();
	struct vnet *n = fake_vnet_new(0, 0);
	assert_non_null(n);
	fake_vnet_set_loss(n, 2, 0);
	struct net_cfg cfg;
	assert_int_equal(net_dhcp(n, &cfg, 10000), 0);
	assert_int_equal(cfg.ip, GUEST_IP);
	struct fake_vnet_counts fc;
	fake_vnet_counts(n, &fc);
	assert_true(fc.tx_dropped >= 1);
	fake_vnet_free(n);
}

/* ---- TCP through hostfwd ---- */

/* The guest side of unet.c's exchange: accept, read a line, answer, send
 * bulk bytes of the pattern, close. */
static void guest_serve(struct vnet *n, struct client *c, size_t bulk)
{
	pthread_t th;
	c->go = 0;
	assert_int_equal(pthread_create(&th, NULL, client_main, c), 0);
	c->go = 1;
	assert_int_equal(net_tcp_accept(n, GUEST_PORT, 10000), 0);
	uint32_t pip;
	uint16_t pport;
	net_tcp_peer(&pip, &pport);
	assert_int_equal(pip, GW_IP); /* slirp's hostfwd connects from the gateway */
	char req[128];
	unsigned rn = 0;
	while (rn < 120 && (rn == 0 || req[rn - 1] != '\n')) {
		int k = net_tcp_recv(n, req + rn, 120 - rn, 10000);
		assert_true(k > 0);
		rn += (unsigned)k;
	}
	req[rn - 1] = 0;
	char rep[200];
	int rl = snprintf(rep, sizeof(rep), "echo %s from 10.0.2.15\n", req);
	assert_int_equal(net_tcp_send(n, rep, (unsigned)rl, 10000), rl);
	static uint8_t chunk[10000]; /* not a divisor of the ring: exercises the wrap */
	for (size_t sent = 0; sent < bulk;) {
		size_t k = bulk - sent < sizeof(chunk) ? bulk - sent : sizeof(chunk);
		for (size_t i = 0; i < k; i++)
			chunk[i] = pattern(sent + i);
		assert_int_equal(net_tcp_send(n, chunk, (unsigned)k, 20000), (int)k);
		sent += k;
	}
	assert_int_equal(net_tcp_close(n, 20000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c->err, 0);
}

static struct vnet *setup_fwd(int *port)
{
	net_reset();
	*port = free_port();
	assert_true(*port > 0);
	struct vnet *n = fake_vnet_new(*port, GUEST_PORT);
	assert_non_null(n);
	struct net_cfg cfg;
	assert_int_equal(net_dhcp(n, &cfg, 5000), 0);
	return n;
}

static void test_tcp_echo(void **state)
{
	(void)state;
	struct client c = { .request = "hello hvmm\n" };
	struct vnet *n = setup_fwd(&c.port);
	guest_serve(n, &c, 0);
	assert_string_equal(c.reply, "echo hello hvmm from 10.0.2.15\n");
	assert_int_equal(c.bulk_got, 0);
	const struct net_stats *st = net_stats();
	assert_int_equal(st->tcp_retransmits, 0);
	assert_int_equal(st->rx_bad, 0);
	assert_int_equal(st->tcp_rst_sent, 0);
	/* ARP both ways: slirp asks for us or we ask for the gateway. */
	assert_true(st->arp_requests_sent + st->arp_replies_sent >= 1);
	fake_vnet_free(n);
}

/* A request arriving in pieces, with CR LF. */
static void test_tcp_echo_crlf(void **state)
{
	(void)state;
	struct client c = { .request = "x\r\n" };
	struct vnet *n = setup_fwd(&c.port);
	guest_serve(n, &c, 0);
	assert_string_equal(c.reply, "echo x\r from 10.0.2.15\n");
	fake_vnet_free(n);
}

/* The host closes its side right after the request: the guest gets the
 * data, then end-of-stream, still answers (CLOSE-WAIT), then closes
 * (LAST-ACK → CLOSED). */
static void test_tcp_peer_closes_first(void **state)
{
	(void)state;
	struct client c = { .request = "bye\n", .half_close = 1 };
	struct vnet *n = setup_fwd(&c.port);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, client_main, &c), 0);
	c.go = 1;
	assert_int_equal(net_tcp_accept(n, GUEST_PORT, 10000), 0);
	char req[64];
	unsigned rn = 0;
	int k;
	while ((k = net_tcp_recv(n, req + rn, sizeof(req) - 1 - rn, 10000)) > 0)
		rn += (unsigned)k;
	assert_int_equal(k, 0); /* end of stream, not an error */
	req[rn] = 0;
	assert_string_equal(req, "bye\n");
	assert_int_equal(net_tcp_send(n, "late reply\n", 11, 10000), 11);
	assert_int_equal(net_tcp_close(n, 10000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.err, 0);
	assert_string_equal(c.reply, "late reply\n");
	assert_int_equal(net_stats()->tcp_rst_sent, 0);
	fake_vnet_free(n);
}

/* Host → guest: far more than the guest's receive buffer, read in small
 * pieces with pauses, so the window closes and reopens by window updates. */
static void test_tcp_upload(void **state)
{
	(void)state;
	const size_t up = 1u << 20;
	struct client c = { .request = "up\n", .half_close = 1, .upload = up };
	struct vnet *n = setup_fwd(&c.port);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, client_main, &c), 0);
	c.go = 1;
	assert_int_equal(net_tcp_accept(n, GUEST_PORT, 10000), 0);
	char line[4];
	unsigned ln = 0;
	while (ln < 3) {
		int k = net_tcp_recv(n, line + ln, 3 - ln, 5000);
		assert_true(k > 0);
		ln += (unsigned)k;
	}
	assert_memory_equal(line, "up\n", 3);
	size_t got = 0, bad = 0;
	unsigned reads = 0;
	double t0 = mono_s();
	uint8_t b[700];
	int k;
	while ((k = net_tcp_recv(n, b, sizeof(b), 10000)) > 0) {
		for (int i = 0; i < k; i++)
			bad += b[i] != pattern(got + (size_t)i);
		got += (size_t)k;
		if (++reads % 64 == 0)
			usleep(2000); /* a slow reader: the buffer fills */
	}
	printf("# upload: %zu KiB in %.3f s through a %u-byte-read guest\n", got >> 10, mono_s() - t0,
	       (unsigned)sizeof(b));
	assert_int_equal(k, 0);
	assert_int_equal(got, up);
	assert_int_equal(bad, 0);
	assert_int_equal(net_tcp_send(n, "done\n", 5, 5000), 5);
	assert_int_equal(net_tcp_close(n, 5000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.err, 0);
	assert_string_equal(c.reply, "done\n");
	assert_true(net_stats()->tcp_bytes_in == up + 3);
	fake_vnet_free(n);
}

static void test_tcp_bulk(void **state)
{
	(void)state;
	const size_t bulk = 32u << 20;
	struct client c = { .request = "bench\n", .bulk = bulk };
	struct vnet *n = setup_fwd(&c.port);
	double t0 = mono_s();
	guest_serve(n, &c, bulk);
	double dt = mono_s() - t0;
	assert_string_equal(c.reply, "echo bench from 10.0.2.15\n");
	assert_int_equal(c.bulk_got, bulk);
	assert_int_equal(c.bulk_bad_at, (size_t)-1);
	assert_true(c.bulk_ok);
	const struct net_stats *st = net_stats();
	printf("# bulk: %zu MiB in %.3f s = %.1f MiB/s through libslirp (%lu segments out, %lu retransmitted, "
	       "%lu tx-ring-full)\n",
	       bulk >> 20, dt, (double)(bulk >> 20) / dt, (unsigned long)st->tcp_segs_out,
	       (unsigned long)st->tcp_retransmits, (unsigned long)st->tx_full);
	assert_int_equal(st->tcp_retransmits, 0);
	fake_vnet_free(n);
}

/* Frames lost both ways: retransmission (timeouts, fast retransmit, the
 * peer's) must still deliver every byte in order. */
static void test_tcp_bulk_lossy(void **state)
{
	(void)state;
	const size_t bulk = 2u << 20;
	struct client c = { .request = "lossy\n", .bulk = bulk };
	struct vnet *n = setup_fwd(&c.port);
	fake_vnet_set_loss(n, 13, 17);
	guest_serve(n, &c, bulk);
	assert_string_equal(c.reply, "echo lossy from 10.0.2.15\n");
	assert_int_equal(c.bulk_got, bulk);
	assert_true(c.bulk_ok);
	struct fake_vnet_counts fc;
	fake_vnet_counts(n, &fc);
	const struct net_stats *st = net_stats();
	printf("# lossy bulk: %lu frames dropped out, %lu in; %lu retransmitted segments (%lu fast)\n",
	       (unsigned long)fc.tx_dropped, (unsigned long)fc.rx_dropped, (unsigned long)st->tcp_retransmits,
	       (unsigned long)st->tcp_fast_retransmits);
	assert_true(fc.tx_dropped > 0 && fc.rx_dropped > 0);
	assert_true(st->tcp_retransmits > 0);
	fake_vnet_free(n);
}

/* Heavy loss (every 3rd frame out, every 4th in): SYN-ACK, data and FIN
 * all get lost at some point; timeouts must recover them. */
static void test_tcp_heavy_loss(void **state)
{
	(void)state;
	const size_t bulk = 256u << 10;
	struct client c = { .request = "heavy\n", .bulk = bulk };
	struct vnet *n = setup_fwd(&c.port);
	fake_vnet_set_loss(n, 3, 4);
	guest_serve(n, &c, bulk);
	assert_string_equal(c.reply, "echo heavy from 10.0.2.15\n");
	assert_int_equal(c.bulk_got, bulk);
	assert_true(c.bulk_ok);
	const struct net_stats *st = net_stats();
	printf("# heavy loss: %lu retransmitted segments (%lu fast)\n", (unsigned long)st->tcp_retransmits,
	       (unsigned long)st->tcp_fast_retransmits);
	assert_true(st->tcp_retransmits > st->tcp_fast_retransmits);
	fake_vnet_free(n);
}

/* Nobody connects: accept times out. */
static void test_tcp_accept_timeout(void **state)
{
	(void)state;
	int port;
	struct vnet *n = setup_fwd(&port);
	assert_int_equal(net_tcp_accept(n, GUEST_PORT, 100), -1);
	char b[4];
	assert_int_equal(net_tcp_recv(n, b, sizeof(b), 10), -1);
	assert_int_equal(net_tcp_send(n, b, sizeof(b), 10), -1);
	fake_vnet_free(n);
}

/* ---- hand-made frames ---- */

static uint16_t cks(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static unsigned mk_eth(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return 14;
}

static unsigned mk_arp(uint8_t *f, uint16_t op, const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	mk_eth(f, op == 1 ? bc : guest_mac, sha, 0x0806);
	uint8_t *a = f + 14;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, sha, 6);
	put32(a + 14, spa);
	memset(a + 18, 0, 6);
	if (op == 2)
		memcpy(a + 18, guest_mac, 6);
	put32(a + 24, tpa);
	return 42;
}

/* IPv4 header (20 bytes) + payload already at f + 34; returns frame length. */
static unsigned mk_ip(uint8_t *f, const uint8_t *src_mac, uint32_t src, uint32_t dst, uint8_t proto, unsigned plen)
{
	mk_eth(f, guest_mac, src_mac, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + plen));
	put16(ip + 4, 1);
	put16(ip + 6, 0);
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, cks(ip, 20, 0));
	return 34 + plen;
}

static unsigned mk_echo(uint8_t *f, const uint8_t *src_mac, uint32_t src, uint16_t id, uint16_t seqno, unsigned dlen)
{
	uint8_t *m = f + 34;
	m[0] = 8;
	m[1] = 0;
	put16(m + 2, 0);
	put16(m + 4, id);
	put16(m + 6, seqno);
	for (unsigned i = 0; i < dlen; i++)
		m[8 + i] = (uint8_t)(i * 3);
	put16(m + 2, cks(m, 8 + dlen, 0));
	return mk_ip(f, src_mac, src, GUEST_IP, 1, 8 + dlen);
}

static uint32_t pseudo(uint32_t s, uint32_t d, uint8_t proto, unsigned len)
{
	return (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + proto + len;
}

static unsigned mk_tcp(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		       const void *data, unsigned dlen)
{
	uint8_t *t = f + 34;
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	put16(t + 16, 0);
	put16(t + 18, 0);
	memcpy(t + 20, data, dlen);
	put16(t + 16, cks(t, 20 + dlen, pseudo(GW_IP, GUEST_IP, 6, 20 + dlen)));
	return mk_ip(f, peer_mac, GW_IP, GUEST_IP, 6, 20 + dlen);
}

/* Lets the stack process what was injected: a short accept that times out. */
static void pump(struct vnet *n, uint32_t ms)
{
	net_tcp_accept(n, 9, ms);
}

static struct vnet *setup_static(void)
{
	net_reset();
	struct vnet *n = fake_vnet_new(0, 0);
	assert_non_null(n);
	struct net_cfg cfg = { .ip = GUEST_IP, .mask = 0xffffff00u, .router = GW_IP };
	net_config(n, &cfg);
	fake_vnet_capture(n, 1);
	return n;
}

static void test_arp_and_icmp(void **state)
{
	(void)state;
	struct vnet *n = setup_static();
	uint8_t f[1600], r[1600];
	/* who-has 10.0.2.15 tell 10.0.2.2 → a reply with our MAC */
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP));
	pump(n, 5);
	int len = fake_vnet_captured(n, r, sizeof(r));
	assert_true(len >= 42);
	assert_memory_equal(r, peer_mac, 6);
	assert_int_equal(get16(r + 12), 0x0806);
	assert_int_equal(get16(r + 20), 2);
	assert_memory_equal(r + 22, guest_mac, 6);
	assert_int_equal(get32(r + 28), GUEST_IP);
	assert_memory_equal(r + 32, peer_mac, 6);
	assert_int_equal(get32(r + 38), GW_IP);
	/* an ARP request for someone else: no reply */
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, 0x0a000209));
	pump(n, 5);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 0);

	/* echo from the (now cached) gateway → echo reply */
	fake_vnet_inject(n, f, mk_echo(f, peer_mac, GW_IP, 0x1234, 7, 56));
	pump(n, 5);
	len = fake_vnet_captured(n, r, sizeof(r));
	assert_int_equal(len, 34 + 8 + 56);
	assert_memory_equal(r, peer_mac, 6);
	assert_int_equal(cks(r + 14, 20, 0), 0);
	assert_int_equal(get32(r + 26), GUEST_IP);
	assert_int_equal(get32(r + 30), GW_IP);
	assert_int_equal(r[34], 0);
	assert_int_equal(get16(r + 38), 0x1234);
	assert_int_equal(get16(r + 40), 7);
	assert_int_equal(cks(r + 34, 8 + 56, 0), 0);
	for (unsigned i = 0; i < 56; i++)
		assert_int_equal(r[42 + i], (uint8_t)(i * 3));

	/* echo from an unknown on-link host: we ARP for it, park the reply,
	 * and send it when the ARP reply comes. */
	static const uint8_t dns_mac[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x03 };
	fake_vnet_inject(n, f, mk_echo(f, dns_mac, DNS_IP, 1, 1, 8));
	pump(n, 5);
	len = fake_vnet_captured(n, r, sizeof(r));
	assert_true(len >= 42);
	assert_int_equal(get16(r + 12), 0x0806);
	assert_int_equal(get16(r + 20), 1);
	assert_int_equal(get32(r + 38), DNS_IP);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 0);
	fake_vnet_inject(n, f, mk_arp(f, 2, dns_mac, DNS_IP, GUEST_IP));
	pump(n, 5);
	len = fake_vnet_captured(n, r, sizeof(r));
	assert_int_equal(len, 60); /* padded to the Ethernet minimum */
	assert_int_equal(get16(r + 16), 20 + 16);
	assert_memory_equal(r, dns_mac, 6);
	assert_int_equal(r[34], 0);
	/* off-link destinations go through the router (cached above) */
	fake_vnet_inject(n, f, mk_echo(f, peer_mac, 0x08080808, 2, 2, 8));
	pump(n, 5);
	len = fake_vnet_captured(n, r, sizeof(r));
	assert_int_equal(len, 60);
	assert_memory_equal(r, peer_mac, 6);
	assert_int_equal(get32(r + 30), 0x08080808);
	/* the parked reply is not counted: it left from the ARP path */
	assert_int_equal(net_stats()->icmp_echo_replies, 2);
	assert_int_equal(net_stats()->rx_bad, 0);
	fake_vnet_free(n);
}

/* Every malformed header is dropped and counted; none is read past its end
 * (the ASan build checks that); the stack still answers afterwards. */
static void test_malformed(void **state)
{
	(void)state;
	struct vnet *n = setup_static();
	uint8_t f[1600], r[1600];
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP));
	pump(n, 5);
	while (fake_vnet_captured(n, r, sizeof(r)))
		;
	uint64_t bad0 = net_stats()->rx_bad;
	unsigned want_bad = 0, len;

	fake_vnet_inject(n, f, 10); /* shorter than an Ethernet header */
	want_bad++;
	len = mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP);
	fake_vnet_inject(n, f, 14 + 20); /* ARP cut short */
	want_bad++;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	fake_vnet_inject(n, f, 14 + 19); /* IP header cut short */
	want_bad++;
	f[14] = 0x4f; /* IHL 60 bytes, frame has fewer */
	fake_vnet_inject(n, f, len);
	want_bad++;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	put16(f + 16, 1400); /* total length past the frame */
	put16(f + 24, 0);
	put16(f + 24, cks(f + 14, 20, 0));
	fake_vnet_inject(n, f, len);
	want_bad++;
	put16(f + 16, 10); /* total length below the header */
	put16(f + 24, 0);
	put16(f + 24, cks(f + 14, 20, 0));
	fake_vnet_inject(n, f, len);
	want_bad++;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	f[24] ^= 1; /* header checksum */
	fake_vnet_inject(n, f, len);
	want_bad++;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	f[14] = 0x65; /* IPv6 version in an IPv4 frame */
	fake_vnet_inject(n, f, len);
	want_bad++;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	f[45] ^= 1; /* ICMP checksum */
	fake_vnet_inject(n, f, len);
	want_bad++;
	/* ICMP shorter than its header */
	len = mk_ip(f, peer_mac, GW_IP, GUEST_IP, 1, 4);
	fake_vnet_inject(n, f, len);
	want_bad++;
	/* UDP length beyond the IP payload; UDP shorter than its header */
	memset(f + 34, 0, 8);
	put16(f + 34, 67);
	put16(f + 36, 68);
	put16(f + 38, 200);
	fake_vnet_inject(n, f, mk_ip(f, peer_mac, GW_IP, GUEST_IP, 17, 8));
	want_bad++;
	fake_vnet_inject(n, f, mk_ip(f, peer_mac, GW_IP, GUEST_IP, 17, 5));
	want_bad++;
	/* TCP: data offset 60 in a 20-byte segment; offset below 20; short; bad checksum */
	len = mk_tcp(f, 40000, 9, 1, 0, 0x02, "", 0);
	f[46] = 0xf0;
	fake_vnet_inject(n, f, len);
	want_bad++;
	f[46] = 0x40;
	fake_vnet_inject(n, f, len);
	want_bad++;
	fake_vnet_inject(n, f, mk_ip(f, peer_mac, GW_IP, GUEST_IP, 6, 12));
	want_bad++;
	len = mk_tcp(f, 40000, 9, 1, 0, 0x02, "abc", 3);
	f[len - 1] ^= 0x55;
	fake_vnet_inject(n, f, len);
	want_bad++;
	pump(n, 20);
	assert_int_equal(net_stats()->rx_bad - bad0, want_bad);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 0); /* nothing answered */

	/* A fragment is dropped (counted apart). */
	uint64_t fr0 = net_stats()->rx_frags;
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	put16(f + 20, 0x2000); /* MF */
	put16(f + 24, 0);
	put16(f + 24, cks(f + 14, 20, 0));
	fake_vnet_inject(n, f, len);
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	put16(f + 20, 0x0010); /* offset 128 */
	put16(f + 24, 0);
	put16(f + 24, cks(f + 14, 20, 0));
	fake_vnet_inject(n, f, len);
	pump(n, 5);
	assert_int_equal(net_stats()->rx_frags - fr0, 2);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 0);

	/* Ethernet padding after the IP datagram is not payload. */
	len = mk_echo(f, peer_mac, GW_IP, 9, 9, 4);
	memset(f + len, 0xee, 60 - len);
	fake_vnet_inject(n, f, 60);
	pump(n, 5);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 34 + 12 < 60 ? 60 : 34 + 12);
	assert_int_equal(get16(r + 16), 20 + 12);
	assert_int_equal(cks(r + 34, 12, 0), 0);

	/* Frames for another MAC are ignored. */
	len = mk_echo(f, peer_mac, GW_IP, 1, 1, 8);
	f[0] ^= 2;
	fake_vnet_inject(n, f, len);
	pump(n, 5);
	assert_int_equal(fake_vnet_captured(n, r, sizeof(r)), 0);
	fake_vnet_free(n);
}

/* The DISCOVER on the wire: BOOTP fields, broadcast flag, options, checksum. */
static void test_dhcp_discover(void **state)
{
	(void)state;
	net_reset();
	struct vnet *n = fake_vnet_new(0, 0);
	assert_non_null(n);
	fake_vnet_capture(n, 1);
	struct net_cfg cfg;
	assert_int_equal(net_dhcp(n, &cfg, 50), -1); /* nobody answers a captured DISCOVER */
	uint8_t d[1600];
	int len = fake_vnet_captured(n, d, sizeof(d));
	assert_true(len >= 34 + 8 + 240);
	assert_int_equal(get16(d + 12), 0x0800);
	assert_int_equal(d[14 + 9], 17);
	assert_int_equal(get32(d + 14 + 16), 0xffffffffu);
	assert_int_equal(get16(d + 34 + 2), 67);
	const uint8_t *b = d + 42;
	assert_int_equal(b[0], 1);
	assert_int_equal(get16(b + 10), 0x8000); /* broadcast flag */
	assert_memory_equal(b + 28, guest_mac, 6);
	assert_int_equal(get32(b + 236), 0x63825363u);
	assert_int_equal(b[240], 53);
	assert_int_equal(b[242], 1); /* DISCOVER */
	/* The UDP checksum is right. */
	unsigned ulen = get16(d + 34 + 4);
	assert_int_equal(cks(d + 34, ulen, pseudo(0, 0xffffffffu, 17, ulen)), 0);
	fake_vnet_free(n);
}

/* Answers a DISCOVER with hostile OFFERs (right xid) before slirp answers. */
static unsigned mk_dhcp_reply(uint8_t *f, uint32_t xid, const uint8_t *chaddr, const uint8_t *opts, unsigned olen)
{
	uint8_t *b = f + 42;
	memset(b, 0, 240);
	b[0] = 2;
	b[1] = 1;
	b[2] = 6;
	put32(b + 4, xid);
	put32(b + 16, 0x0a000263); /* yiaddr 10.0.2.99: must never be taken */
	memcpy(b + 28, chaddr, 6);
	put32(b + 236, 0x63825363u);
	memcpy(b + 240, opts, olen);
	unsigned ulen = 8 + 240 + olen;
	put16(f + 34, 67);
	put16(f + 36, 68);
	put16(f + 38, (uint16_t)ulen);
	put16(f + 40, 0);
	put16(f + 40, cks(f + 34, ulen, pseudo(GW_IP, 0xffffffffu, 17, ulen)));
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	unsigned len = mk_ip(f, peer_mac, GW_IP, 0xffffffffu, 17, ulen);
	memcpy(f, bc, 6);
	return len;
}

static void dhcp_hostile_hook(struct vnet *n, const uint8_t *fr, unsigned len, void *ctx)
{
	unsigned *sent = ctx;
	if (len < 42 + 243 || get16(fr + 12) != 0x0800 || fr[23] != 17 || get16(fr + 36) != 67 || fr[42 + 242] != 1)
		return; /* DISCOVERs only */
	uint32_t xid = get32(fr + 42 + 4);
	uint8_t f[1600];
	static const uint8_t past_end[] = { 53, 1, 2, 1, 200, 255, 255 };   /* option 1 runs past the end */
	static const uint8_t no_len[] = { 53, 1, 2, 0, 0, 54 };             /* code without a length byte */
	static const uint8_t no_type[] = { 1, 4, 255, 255, 255, 0, 255 };   /* no option 53 */
	static const uint8_t good[] = { 53, 1, 2, 54, 4, 10, 0, 2, 2, 255 };
	static const uint8_t other_mac[6] = { 2, 0, 0, 0, 0, 1 };
	fake_vnet_inject(n, f, mk_dhcp_reply(f, xid, guest_mac, past_end, sizeof(past_end)));
	fake_vnet_inject(n, f, mk_dhcp_reply(f, xid, guest_mac, no_len, sizeof(no_len)));
	fake_vnet_inject(n, f, mk_dhcp_reply(f, xid, guest_mac, no_type, sizeof(no_type)));
	fake_vnet_inject(n, f, mk_dhcp_reply(f, xid + 1, guest_mac, good, sizeof(good)));   /* wrong xid */
	fake_vnet_inject(n, f, mk_dhcp_reply(f, xid, other_mac, good, sizeof(good)));       /* wrong chaddr */
	unsigned l = mk_dhcp_reply(f, xid, guest_mac, good, sizeof(good));
	fake_vnet_inject(n, f, l - 100); /* UDP length past the datagram */
	*sent += 6;
}

static void test_dhcp_hostile_offers(void **state)
{
	(void)state;
	net_reset();
	struct vnet *n = fake_vnet_new(0, 0);
	assert_non_null(n);
	unsigned sent = 0;
	fake_vnet_set_tx_hook(n, dhcp_hostile_hook, &sent);
	struct net_cfg cfg;
	assert_int_equal(net_dhcp(n, &cfg, 5000), 0);
	assert_true(sent >= 6);
	assert_int_equal(cfg.ip, GUEST_IP); /* slirp's offer, not 10.0.2.99 */
	assert_int_equal(cfg.router, GW_IP);
	/* past_end, no_len, no_type and the short datagram are malformed */
	assert_true(net_stats()->rx_bad >= 4);
	fake_vnet_free(n);
}

/* ---- a scripted TCP peer (frames captured, answers injected) ---- */

struct peer {
	uint32_t iss, snd_nxt;     /* the peer's sequence space */
	uint32_t giss, rcv_nxt;    /* the guest's */
	uint16_t wnd;              /* window the peer advertises */
	bool drop_synacks;         /* ignore the first SYN-ACK */
	bool zero_window;          /* ACK the first data with window 0, open on the 2nd probe */
	bool simultaneous_close;   /* answer the guest's FIN with a FIN that does not ack it, then ack it */
	uint32_t last_ack_seen;    /* ack field of the guest's last segment */
	unsigned synacks, acks_in, data_segs, probes, rsts, fins, max_seg, mss_opt;
	uint8_t got[65536];
	size_t got_len;
};

static const uint16_t PEER_PORT = 40001;

static unsigned peer_frame(uint8_t *f, struct peer *p, uint8_t flags, const void *data, unsigned dlen)
{
	unsigned len = mk_tcp(f, PEER_PORT, GUEST_PORT, p->snd_nxt, p->rcv_nxt, flags, data, dlen);
	put16(f + 34 + 14, p->wnd);
	put16(f + 34 + 16, 0);
	put16(f + 34 + 16, cks(f + 34, 20 + dlen, pseudo(GW_IP, GUEST_IP, 6, 20 + dlen)));
	return len;
}

static void peer_hook(struct vnet *n, const uint8_t *fr, unsigned len, void *ctx)
{
	struct peer *p = ctx;
	uint8_t f[1600];
	if (len < 54 || get16(fr + 12) != 0x0800 || fr[23] != 6)
		return;
	const uint8_t *t = fr + 34;
	unsigned tot = get16(fr + 16), hl = (t[12] >> 4) * 4u, dlen = tot - 20 - hl;
	uint8_t fl = t[13];
	uint32_t seq = get32(t + 4);
	p->last_ack_seen = get32(t + 8);
	assert_int_equal(cks(t, tot - 20, pseudo(GUEST_IP, GW_IP, 6, tot - 20)), 0);
	if (fl & 0x04) {
		p->rsts++;
		return;
	}
	if ((fl & 0x12) == 0x12) { /* SYN-ACK */
		p->synacks++;
		p->giss = seq;
		p->rcv_nxt = seq + 1;
		assert_int_equal(get32(t + 8), p->iss + 1);
		if (hl >= 24 && t[20] == 2 && t[21] == 4)
			p->mss_opt = get16(t + 22);
		if (p->drop_synacks && p->synacks == 1)
			return;
		fake_vnet_inject(n, f, peer_frame(f, p, 0x10, "", 0));
		return;
	}
	if (dlen) {
		p->data_segs++;
		if (dlen > p->max_seg)
			p->max_seg = dlen;
		if (p->wnd == 0) {
			p->probes++;
			if (p->probes >= 2)
				p->wnd = 65535; /* open up; this probe is not taken */
			fake_vnet_inject(n, f, peer_frame(f, p, 0x10, "", 0));
			return;
		}
		if (seq == p->rcv_nxt && p->got_len + dlen <= sizeof(p->got)) {
			memcpy(p->got + p->got_len, t + hl, dlen);
			p->got_len += dlen;
			p->rcv_nxt += dlen;
		}
		if (p->zero_window) {
			p->zero_window = false;
			p->wnd = 0;
		}
	}
	if ((fl & 0x01) && p->simultaneous_close && !p->fins) {
		p->fins++;
		/* our FIN crosses theirs: it acks only up to their FIN's seq */
		fake_vnet_inject(n, f, peer_frame(f, p, 0x11, "", 0));
		p->snd_nxt++;
		p->rcv_nxt++;
		fake_vnet_inject(n, f, peer_frame(f, p, 0x10, "", 0));
		return;
	}
	if (fl & 0x01) {
		p->fins++;
		if (seq + dlen == p->rcv_nxt)
			p->rcv_nxt++;
	}
	if (dlen || (fl & 0x01))
		fake_vnet_inject(n, f, peer_frame(f, p, 0x10, "", 0));
}

/* Static config, the gateway's MAC known, SYN (with an MSS option) injected,
 * accept run: the connection from the scripted peer. */
static struct vnet *peer_connect(struct peer *p, uint32_t iss, uint16_t mss, uint16_t wnd)
{
	struct vnet *n = setup_static();
	uint8_t f[1600];
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP));
	p->iss = iss;
	p->snd_nxt = iss;
	p->wnd = wnd;
	fake_vnet_set_tx_hook(n, peer_hook, p);
	unsigned len = mk_tcp(f, PEER_PORT, GUEST_PORT, iss, 0, 0x02, "", 0);
	/* a 4-byte MSS option: rebuild the header with data offset 6 */
	uint8_t opt[4] = { 2, 4, (uint8_t)(mss >> 8), (uint8_t)mss };
	len = mk_tcp(f, PEER_PORT, GUEST_PORT, iss, 0, 0x02, opt, 4);
	f[46] = 6 << 4;
	put16(f + 48, wnd);
	put16(f + 50, 0);
	put16(f + 50, cks(f + 34, 24, pseudo(GW_IP, GUEST_IP, 6, 24)));
	fake_vnet_inject(n, f, len);
	p->snd_nxt = iss + 1;
	assert_int_equal(net_tcp_accept(n, GUEST_PORT, 5000), 0);
	return n;
}

/* A lost SYN-ACK is sent again; the peer's MSS bounds every segment. */
static void test_tcp_synack_retransmit_and_mss(void **state)
{
	(void)state;
	static struct peer p = { .drop_synacks = true };
	struct vnet *n = peer_connect(&p, 1000, 1000, 65535);
	assert_int_equal(p.synacks, 2);
	assert_int_equal(p.mss_opt, 1460);
	static uint8_t d[20000];
	for (unsigned i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)(i * 7);
	assert_int_equal(net_tcp_send(n, d, sizeof(d), 5000), (int)sizeof(d));
	assert_int_equal(net_tcp_close(n, 5000), 0);
	assert_int_equal(p.got_len, sizeof(d));
	assert_memory_equal(p.got, d, sizeof(d));
	assert_int_equal(p.max_seg, 1000);
	assert_true(p.data_segs >= 20);
	assert_int_equal(p.fins, 1);
	fake_vnet_free(n);
}

/* A closed window: the sender stops, probes, and goes on when it opens. */
static void test_tcp_zero_window(void **state)
{
	(void)state;
	static struct peer p = { .zero_window = true };
	struct vnet *n = peer_connect(&p, 5, 1460, 3000);
	static uint8_t d[12000];
	for (unsigned i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(net_tcp_send(n, d, sizeof(d), 10000), (int)sizeof(d));
	assert_int_equal(net_tcp_close(n, 10000), 0);
	assert_true(p.probes >= 2);
	assert_int_equal(p.got_len, sizeof(d));
	assert_memory_equal(p.got, d, sizeof(d));
	fake_vnet_free(n);
}

/* Both ends close at once: FIN-WAIT-1 → CLOSING → TIME-WAIT, and the
 * peer's FIN is acknowledged. */
static void test_tcp_simultaneous_close(void **state)
{
	(void)state;
	static struct peer p = { .simultaneous_close = true };
	struct vnet *n = peer_connect(&p, 77, 1460, 65535);
	assert_int_equal(net_tcp_send(n, "bye", 3, 1000), 3);
	assert_int_equal(net_tcp_close(n, 2000), 0);
	assert_int_equal(p.got_len, 3);
	assert_int_equal(p.fins, 1);
	assert_int_equal(p.last_ack_seen, p.snd_nxt); /* the peer's FIN was acked */
	char b[4];
	assert_int_equal(net_tcp_recv(n, b, sizeof(b), 10), 0); /* end of stream */
	fake_vnet_free(n);
}

/* Peer sequence numbers across 2^32, out-of-order data held back (duplicate
 * ACK), in-order data delivered, then an in-window RST ends it while an
 * out-of-window one does not. */
static void test_tcp_wrap_ooo_rst(void **state)
{
	(void)state;
	static struct peer p;
	struct vnet *n = peer_connect(&p, 0xfffffff0u, 1460, 65535);
	uint8_t f[1600];
	char buf[64];
	/* 20 bytes from 0xfffffff1: crosses the wrap */
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x18, "0123456789abcdefghij", 20));
	p.snd_nxt += 20;
	assert_int_equal(net_tcp_recv(n, buf, sizeof(buf), 1000), 20);
	assert_memory_equal(buf, "0123456789abcdefghij", 20);
	/* a segment 5 bytes ahead: not delivered */
	uint32_t keep = p.snd_nxt;
	p.snd_nxt += 5;
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x18, "LATER", 5));
	p.snd_nxt = keep;
	uint64_t ooo = net_stats()->tcp_out_of_order;
	assert_int_equal(net_tcp_recv(n, buf, sizeof(buf), 50), -1); /* timeout: nothing in order */
	assert_int_equal(net_stats()->tcp_out_of_order, ooo + 1);
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x18, "NOW", 3));
	p.snd_nxt += 3;
	assert_int_equal(net_tcp_recv(n, buf, sizeof(buf), 1000), 3);
	assert_memory_equal(buf, "NOW", 3);
	/* RST far outside the window: ignored */
	keep = p.snd_nxt;
	p.snd_nxt += 0x40000000u;
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x04, "", 0));
	p.snd_nxt = keep;
	assert_int_equal(net_tcp_send(n, "x", 1, 1000), 1);
	assert_int_equal(net_tcp_recv(n, buf, sizeof(buf), 50), -1);
	/* RST at rcv_nxt: the connection is gone */
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x04, "", 0));
	assert_int_equal(net_tcp_recv(n, buf, sizeof(buf), 1000), -1);
	assert_int_equal(net_tcp_send(n, "y", 1, 100), -1);
	/* a segment for the dead connection gets a RST */
	unsigned rsts = p.rsts;
	fake_vnet_inject(n, f, peer_frame(f, &p, 0x18, "ping", 4));
	pump(n, 10);
	assert_int_equal(p.rsts, rsts + 1);
	fake_vnet_free(n);
}

/* Random corruption of valid frames of every kind: must never read out of
 * bounds (ASan) or crash, and the stack must answer a good echo afterwards. */
static void test_fuzz(void **state)
{
	(void)state;
	struct vnet *n = setup_static();
	uint8_t f[1600], g[1600], r[1600];
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP));
	pump(n, 5);
	uint64_t x = 88172645463325252ull;
	for (unsigned iter = 0; iter < 20000; iter++) {
		unsigned len;
		switch (iter % 5) {
		case 0:
			len = mk_arp(f, 1 + (iter / 5) % 2, peer_mac, GW_IP, GUEST_IP);
			break;
		case 1:
			len = mk_echo(f, peer_mac, GW_IP, 1, 1, (iter / 5) % 64);
			break;
		case 2:
			len = mk_tcp(f, 40000, 9, iter, 0, 0x02, "hello", 5);
			break;
		case 3:
			memset(f + 34, 0, 300);
			put16(f + 34, 67);
			put16(f + 36, 68);
			put16(f + 38, 8 + 260);
			f[42] = 2;
			f[43] = 1;
			f[44] = 6;
			memcpy(f + 42 + 28, guest_mac, 6);
			put32(f + 42 + 236, 0x63825363u);
			for (unsigned i = 240; i < 260; i++)
				f[42 + i] = (uint8_t)(i * 7);
			len = mk_ip(f, peer_mac, GW_IP, 0xffffffffu, 17, 8 + 260);
			break;
		default:
			len = mk_tcp(f, 40000, 9, iter, 5, 0x10, "data", 4);
			break;
		}
		memcpy(g, f, len);
		unsigned flips = 1 + iter % 4;
		for (unsigned k = 0; k < flips; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			g[x % len] ^= (uint8_t)(x >> 32);
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned glen = (iter & 8) ? (unsigned)(x % (len + 1)) : len;
		fake_vnet_inject(n, g, glen);
		if (iter % 64 == 63) {
			pump(n, 1);
			while (fake_vnet_captured(n, r, sizeof(r)) > 0)
				;
		}
	}
	pump(n, 5);
	while (fake_vnet_captured(n, r, sizeof(r)) > 0)
		;
	printf("# fuzz: %lu bad, %lu ignored, %lu fragments, %lu RSTs\n", (unsigned long)net_stats()->rx_bad,
	       (unsigned long)net_stats()->rx_ignored, (unsigned long)net_stats()->rx_frags,
	       (unsigned long)net_stats()->tcp_rst_sent);
	assert_true(net_stats()->rx_bad > 1000);
	fake_vnet_inject(n, f, mk_arp(f, 1, peer_mac, GW_IP, GUEST_IP));
	fake_vnet_inject(n, f, mk_echo(f, peer_mac, GW_IP, 0x77, 1, 8));
	pump(n, 5);
	int len;
	do {
		len = fake_vnet_captured(n, r, sizeof(r));
	} while (len > 0 && get16(r + 12) != 0x0800);
	assert_true(len > 0);
	assert_int_equal(get16(r + 38), 0x77);
	fake_vnet_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dhcp),
		cmocka_unit_test(test_dhcp_lossy),
		cmocka_unit_test(test_dhcp_discover),
		cmocka_unit_test(test_dhcp_hostile_offers),
		cmocka_unit_test(test_tcp_echo),
		cmocka_unit_test(test_tcp_echo_crlf),
		cmocka_unit_test(test_tcp_peer_closes_first),
		cmocka_unit_test(test_tcp_upload),
		cmocka_unit_test(test_tcp_bulk),
		cmocka_unit_test(test_tcp_bulk_lossy),
		cmocka_unit_test(test_tcp_heavy_loss),
		cmocka_unit_test(test_tcp_accept_timeout),
		cmocka_unit_test(test_tcp_synack_retransmit_and_mss),
		cmocka_unit_test(test_tcp_zero_window),
		cmocka_unit_test(test_tcp_wrap_ooo_rst),
		cmocka_unit_test(test_tcp_simultaneous_close),
		cmocka_unit_test(test_arp_and_icmp),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
