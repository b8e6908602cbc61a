/*
 * unet: the ring-3 half of test=virtio-net-tcp, on top of the virtio-net
 * driver (vnet.c) and the stack (net.c). Gets an address by DHCP from
 * slirp, listens on netport= (the host reaches it through hostfwd), answers
 * one request line with "echo <line> from <guest ip>", and with netbench=N
 * then sends N MiB of a pattern the host checks, timed until the last byte
 * is acknowledged. Before accepting it prints "# virtio-net-tcp (MODE):
 * listening on IP:PORT": the host test connects when it sees that line.
 */
#include <stdint.h>

#include "net.h"
#include "unet.h"
#include "usys.h"
#include "virtio.h"
#include "vnet.h"
#include "vtest.h"

unsigned u_net_port = 8080, u_net_mib;

static uint8_t u_net_chunk[8192];

#define IP4(a) (a) >> 24, ((a) >> 16) & 255, ((a) >> 8) & 255, (a) & 255

/* The bench pattern: byte i of the stream is (i + i / 251) mod 256, so a
 * lost, repeated or reordered segment shows on the host. Generated with a
 * running quotient and remainder: a division per byte would cost as much
 * as the transfer. */
struct u_net_pat {
	uint64_t i, q;
	unsigned r;
};

static void u_net_pattern(struct u_net_pat *p, uint8_t *d, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		d[k] = (uint8_t)(p->i + p->q);
		p->i++;
		if (++p->r == 251) {
			p->r = 0;
			p->q++;
		}
	}
}

static long u_net_fail(struct vdev *d, const char *m, const char *what)
{
	const struct net_stats *st = net_stats();
	u_tap(false, "virtio-net-tcp (%s): %s (frames %lu out, %lu in, %lu bad; %lu retransmits)", m, what,
	      st->tx_frames, st->rx_frames, st->rx_bad, st->tcp_retransmits);
	if (d)
		vio_reset(d);
	return 1;
}

long u_net(long mode)
{
	const char *m = vt_mode_name[mode];
	net_reset();
	vnet_open_flags = vt_opts.vio_flags;
	struct vnet *n = vnet_open(mode == VT_IRQ);
	if (!n)
		return u_net_fail(0, m, "vnet_open failed (reason above)");
	struct vdev *d = vnet_vdev(n);
	vt_report_open(d, m);
	uint64_t irq0 = vio_irq_count(d);

	struct net_cfg cfg;
	uint64_t t0 = vnet_now_us();
	if (net_dhcp(n, &cfg, 10000) != 0)
		return u_net_fail(d, m, "no DHCP lease in 10 s");
	u_tap(cfg.ip && cfg.mask && cfg.router,
	      "virtio-net-tcp (%s): DHCP lease %u.%u.%u.%u mask %u.%u.%u.%u router %u.%u.%u.%u dns %u.%u.%u.%u from %u.%u.%u.%u, %u s, in %lu us",
	      m, IP4(cfg.ip), IP4(cfg.mask), IP4(cfg.router), IP4(cfg.dns), IP4(cfg.server), cfg.lease_s,
	      vnet_now_us() - t0);

	u_note("virtio-net-tcp (%s): listening on %u.%u.%u.%u:%u", m, IP4(cfg.ip), u_net_port);
	if (net_tcp_accept(n, (uint16_t)u_net_port, 60000) != 0)
		return u_net_fail(d, m, "no connection in 60 s");
	uint32_t pip;
	uint16_t pport;
	net_tcp_peer(&pip, &pport);

	/* One request line: at most 120 bytes, up to '\n'. */
	char req[128];
	unsigned rn = 0;
	while (rn < 120 && (rn == 0 || req[rn - 1] != '\n')) {
		int k = net_tcp_recv(n, req + rn, 120 - rn, 10000);
		if (k <= 0)
			return u_net_fail(d, m, k ? "request: timeout or reset" : "request: closed early");
		rn += (unsigned)k;
	}
	while (rn && (req[rn - 1] == '\n' || req[rn - 1] == '\r'))
		rn--;
	req[rn] = 0;
	char rep[200];
	int rl = u_fmt(rep, sizeof(rep), "echo %s from %u.%u.%u.%u\n", req, IP4(cfg.ip));
	if (rl > (int)sizeof(rep) - 1)
		rl = sizeof(rep) - 1;
	if (net_tcp_send(n, rep, (unsigned)rl, 10000) != rl)
		return u_net_fail(d, m, "reply: send failed");
	u_tap(true, "virtio-net-tcp (%s): TCP connection to port %u from %u.%u.%u.%u:%u, request \"%s\" answered",
	      m, u_net_port, IP4(pip), pport, req);

	uint64_t total = (uint64_t)u_net_mib << 20, b0 = vnet_now_us();
	struct u_net_pat pat = { 0, 0, 0 };
	for (uint64_t sent = 0; sent < total;) {
		unsigned k = sizeof(u_net_chunk);
		if (total - sent < k)
			k = (unsigned)(total - sent);
		u_net_pattern(&pat, u_net_chunk, k);
		if (net_tcp_send(n, u_net_chunk, k, 20000) != (int)k)
			return u_net_fail(d, m, "bench: send failed");
		sent += k;
	}
	/* Returns when our FIN is acknowledged: every byte arrived. */
	if (net_tcp_close(n, 20000) != 0)
		return u_net_fail(d, m, "close: FIN not acknowledged");
	uint64_t us = vnet_now_us() - b0;
	const struct net_stats *st = net_stats();
	if (total) {
		uint64_t kib_s = us ? (total >> 10) * 1000000 / us : 0;
		u_tap(true, "virtio-net-tcp (%s): netbench sent %u MiB in %lu ms: %lu.%02lu MiB/s (%lu segments, %lu retransmitted)",
		      m, u_net_mib, us / 1000, kib_s / 1024, (kib_s % 1024) * 100 / 1024, st->tcp_segs_out,
		      st->tcp_retransmits);
	}
	u_tap(st->rx_bad == 0, "virtio-net-tcp (%s): connection closed; %lu frames out, %lu in, %lu malformed, ARP %lu requests %lu replies",
	      m, st->tx_frames, st->rx_frames, st->rx_bad, st->arp_requests_sent, st->arp_replies_sent);
	vt_report_irqs(d, m, irq0);
	vio_reset(d);
	return 0;
}
