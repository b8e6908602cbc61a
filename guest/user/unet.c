/*
 * unet: the ring-3 half of test=virtio-net-tcp. Opens the virtio-net device
 * (vnet.c), gets an address by DHCP from slirp, listens on a TCP port (the
 * host reaches it through hostfwd), answers one request line with
 * "echo <line> from <guest ip>", and in bench mode then sends N MiB of a
 * pattern the host checks, timing it. Progress goes to the serial console
 * as TAP comments ("# net: ..."); the host test waits for the "listening"
 * line before it connects. Results go back in u_net_res for the kernel's TAP
 * lines.
 */
#include <stdint.h>

#include "net.h"
#include "unet.h"
#include "usys.h"
#include "vnet.h"

volatile struct u_net_result u_net_res;

static uint8_t u_net_chunk[16384];

/* A line buffer with just the formatting this file needs. */
struct line {
	char b[200];
	unsigned n;
};

static void l_str(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = *s++;
}

static void l_u64(struct line *l, uint64_t v)
{
	char d[24];
	unsigned k = 0;
	do {
		d[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (k && l->n < sizeof(l->b) - 1)
		l->b[l->n++] = d[--k];
}

static void l_ip(struct line *l, uint32_t ip)
{
	for (int i = 3; i >= 0; i--) {
		l_u64(l, (ip >> (i * 8)) & 0xff);
		if (i)
			l_str(l, ".");
	}
}

static void l_out(struct line *l)
{
	l_str(l, "\n");
	u_write(l->b, l->n);
	l->n = 0;
}

/* The bench pattern: byte i of the stream is (i + i / 251) mod 256, so a
 * dropped, repeated or reordered segment shows on the host. */
static inline uint8_t u_net_pattern(uint64_t i)
{
	return (uint8_t)(i + i / 251);
}

long u_net(long arg)
{
	uint16_t port = (uint16_t)(arg & 0xffff);
	uint64_t mib = ((uint64_t)arg >> 16) & 0xffffff;
	bool irq = ((uint64_t)arg >> 40) & 1;
	struct line l = { .n = 0 };

	struct vnet *n = vnet_open(irq);
	if (!n)
		return U_NET_NO_DEVICE;
	uint8_t mac[6];
	vnet_mac(n, mac);
	l_str(&l, "# net: virtio-net open, ");
	l_str(&l, irq ? "interrupt" : "polling");
	l_str(&l, " mode, mac");
	for (int i = 0; i < 6; i++) {
		static const char hx[] = "0123456789abcdef";
		char h[4] = { i ? ':' : ' ', hx[mac[i] >> 4], hx[mac[i] & 15], 0 };
		l_str(&l, h);
	}
	l_out(&l);

	struct net_cfg cfg;
	uint64_t t0 = vnet_now_us();
	if (net_dhcp(n, &cfg, 10000) != 0)
		return U_NET_DHCP;
	u_net_res.dhcp_us = vnet_now_us() - t0;
	u_net_res.ip = cfg.ip;
	u_net_res.mask = cfg.mask;
	u_net_res.router = cfg.router;
	u_net_res.dns = cfg.dns;
	u_net_res.lease_s = cfg.lease_s;
	l_str(&l, "# net: DHCP lease ");
	l_ip(&l, cfg.ip);
	l_str(&l, " mask ");
	l_ip(&l, cfg.mask);
	l_str(&l, " router ");
	l_ip(&l, cfg.router);
	l_str(&l, " dns ");
	l_ip(&l, cfg.dns);
	l_str(&l, " server ");
	l_ip(&l, cfg.server);
	l_str(&l, " lease ");
	l_u64(&l, cfg.lease_s);
	l_str(&l, " s");
	l_out(&l);

	l_str(&l, "# net: listening on ");
	l_ip(&l, cfg.ip);
	l_str(&l, ":");
	l_u64(&l, port);
	l_out(&l);
	if (net_tcp_accept(n, port, 60000) != 0)
		return U_NET_ACCEPT;
	uint32_t pip;
	uint16_t pport;
	net_tcp_peer(&pip, &pport);
	l_str(&l, "# net: connection from ");
	l_ip(&l, pip);
	l_str(&l, ":");
	l_u64(&l, pport);
	l_out(&l);

	/* One request line (at most 120 bytes, up to '\n'). */
	char req[128];
	unsigned rn = 0;
	while (rn < 120 && (rn == 0 || req[rn - 1] != '\n')) {
		int k = net_tcp_recv(n, req + rn, 120 - rn, 10000);
		if (k <= 0)
			return U_NET_RECV;
		rn += (unsigned)k;
	}
	while (rn && (req[rn - 1] == '\n' || req[rn - 1] == '\r'))
		rn--;
	req[rn] = 0;
	for (unsigned i = 0; i <= rn; i++)
		u_net_res.request[i] = req[i];

	l_str(&l, "echo ");
	l_str(&l, req);
	l_str(&l, " from ");
	l_ip(&l, cfg.ip);
	l_str(&l, "\n");
	if (net_tcp_send(n, l.b, l.n, 10000) != (int)l.n)
		return U_NET_SEND;
	l.n = 0;

	if (mib) {
		uint64_t total = mib << 20, sent = 0;
		uint64_t b0 = vnet_now_us();
		while (sent < total) {
			unsigned k = sizeof(u_net_chunk);
			if (total - sent < k)
				k = (unsigned)(total - sent);
			for (unsigned i = 0; i < k; i++)
				u_net_chunk[i] = u_net_pattern(sent + i);
			if (net_tcp_send(n, u_net_chunk, k, 20000) != (int)k)
				return U_NET_SEND;
			sent += k;
		}
		/* Timed until the last byte is acknowledged (the FIN's ACK). */
		if (net_tcp_close(n, 20000) != 0)
			return U_NET_CLOSE;
		u_net_res.bench_us = vnet_now_us() - b0;
		u_net_res.bench_bytes = total;
	} else if (net_tcp_close(n, 10000) != 0) {
		return U_NET_CLOSE;
	}
	const struct net_stats *st = net_stats();
	u_net_res.retransmits = st->tcp_retransmits;
	u_net_res.arp_requests = st->arp_requests_sent;
	u_net_res.arp_replies = st->arp_replies_sent;
	u_net_res.rx_frames = st->rx_frames;
	u_net_res.tx_frames = st->tx_frames;
	l_str(&l, "# net: done: ");
	l_u64(&l, st->tx_frames);
	l_str(&l, " frames out, ");
	l_u64(&l, st->rx_frames);
	l_str(&l, " in, ");
	l_u64(&l, st->tcp_retransmits);
	l_str(&l, " retransmitted segments, ");
	l_u64(&l, st->rx_bad);
	l_str(&l, " bad frames");
	l_out(&l);
	return U_NET_OK;
}
