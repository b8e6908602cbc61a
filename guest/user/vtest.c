/*
 * vtest: shared pieces of the ring-3 virtio tests, and test=virtio-net at the
 * raw driver level (open, MAC, a DHCPDISCOVER broadcast, the OFFER back from
 * slirp). The DHCP+TCP test on top of vnet belongs to net.c's test.
 */
#include "vtest.h"

#include "usys.h"
#include "virtio.h"
#include "vnet.h"

struct vt_opts vt_opts = { .blk_mib = 8, .bench_ms = 2000, .qd = 16 };
const char *const vt_mode_name[3] = { "poll", "irq", "both" };

void vt_report_open(struct vdev *d, const char *mode)
{
	u_tap(true, "%s (%s): opened %02x:%02x.%u: features 0x%lx of 0x%lx, event_idx %d, indirect %d, %u queues",
	      vio_type_name(d->type), mode, d->pci.bus, d->pci.dev, d->pci.fn, d->features, d->offered,
	      d->event_idx, d->indirect, d->nq);
}

void vt_report_irqs(struct vdev *d, const char *mode, uint64_t before)
{
	uint64_t n = vio_irq_count(d) - before;
	uint64_t waits = 0;
	for (unsigned i = 0; i < d->nq; i++)
		waits += d->q[i]->irq_waits;
	if (d->irq)
		u_tap(n > 0, "%s (%s): completions signalled by MSI-X: %lu interrupts, %lu sleeps in SYS_IRQ_WAIT",
		      vio_type_name(d->type), mode, n, waits);
	else
		u_tap(n == 0, "%s (%s): no interrupts while polling: %lu interrupts", vio_type_name(d->type), mode, n);
}

/* ---- test=virtio-net ---------------------------------------------------------- */

static uint16_t be16(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }

static uint16_t ip_csum(const uint8_t *p, unsigned n)
{
	uint32_t s = 0;
	for (unsigned i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A DHCPDISCOVER (broadcast, BOOTP broadcast flag), 342 bytes like a PC's. */
static unsigned dhcp_discover(uint8_t *f, const uint8_t mac[6], uint32_t xid)
{
	u_zero(f, 342);
	for (int i = 0; i < 6; i++)
		f[i] = 0xff;
	u_copy(f + 6, mac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = ip + 20, *bootp = udp + 8;
	unsigned blen = 300, ulen = 8 + blen, iplen = 20 + ulen;
	ip[0] = 0x45;
	*(uint16_t *)(ip + 2) = be16((uint16_t)iplen);
	ip[8] = 64;
	ip[9] = 17;
	for (int i = 16; i < 20; i++)
		ip[i] = 0xff;
	*(uint16_t *)(ip + 10) = be16(ip_csum(ip, 20));
	*(uint16_t *)(udp + 0) = be16(68);
	*(uint16_t *)(udp + 2) = be16(67);
	*(uint16_t *)(udp + 4) = be16((uint16_t)ulen); /* checksum 0: none (IPv4 allows it) */
	bootp[0] = 1; /* BOOTREQUEST */
	bootp[1] = 1;
	bootp[2] = 6;
	bootp[4] = (uint8_t)(xid >> 24), bootp[5] = (uint8_t)(xid >> 16);
	bootp[6] = (uint8_t)(xid >> 8), bootp[7] = (uint8_t)xid;
	bootp[10] = 0x80; /* broadcast reply */
	u_copy(bootp + 28, mac, 6);
	uint8_t *o = bootp + 236;
	o[0] = 0x63, o[1] = 0x82, o[2] = 0x53, o[3] = 0x63;
	o += 4;
	*o++ = 53, *o++ = 1, *o++ = 1;             /* DHCPDISCOVER */
	*o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 6; /* mask, router, DNS */
	*o++ = 255;
	return 14 + iplen;
}

/* The DHCP message type of a reply to xid, or 0 if the frame is not one. */
static int dhcp_reply_type(const uint8_t *f, unsigned len, uint32_t xid, uint32_t *yiaddr)
{
	if (len < 14 + 20 + 8 + 240 || f[12] != 0x08 || f[13] != 0x00)
		return 0;
	const uint8_t *ip = f + 14;
	unsigned ihl = (ip[0] & 15) * 4u;
	if ((ip[0] >> 4) != 4 || ip[9] != 17 || ihl < 20 || len < 14 + ihl + 8 + 240)
		return 0;
	const uint8_t *udp = ip + ihl, *b = udp + 8;
	if (be16(*(const uint16_t *)udp) != 67 || be16(*(const uint16_t *)(udp + 2)) != 68 || b[0] != 2)
		return 0;
	uint32_t x = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
	if (x != xid || b[236] != 0x63 || b[237] != 0x82 || b[238] != 0x53 || b[239] != 0x63)
		return 0;
	*yiaddr = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
	const uint8_t *o = b + 240, *end = f + len;
	while (o < end && *o != 255) {
		if (*o == 0) {
			o++;
			continue;
		}
		if (o + 2 > end || o + 2 + o[1] > end)
			break;
		if (o[0] == 53 && o[1] == 1)
			return o[2];
		o += 2 + o[1];
	}
	return -1; /* BOOTP reply without a message type */
}

static uint8_t vnet_frame[2048];

long u_vnet_test(long mode)
{
	const char *m = vt_mode_name[mode];
	vnet_open_flags = vt_opts.vio_flags;
	struct vnet *n = vnet_open(mode == VT_IRQ);
	if (!n) {
		u_tap(false, "virtio-net (%s): vnet_open failed (reason above)", m);
		return 1;
	}
	struct vdev *d = vnet_vdev(n);
	vt_report_open(d, m);
	uint64_t irq0 = vio_irq_count(d);
	uint8_t mac[6];
	vnet_mac(n, mac);
	bool mac_ok = (mac[0] & 1) == 0 && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0;
	u_tap(mac_ok, "virtio-net (%s): MAC address is unicast and not zero: %02x:%02x:%02x:%02x:%02x:%02x", m,
	      mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

	uint32_t xid = 0x68766d00u | (uint32_t)mode;
	uint8_t disc[342];
	unsigned dlen = dhcp_discover(disc, mac, xid);
	uint64_t t0 = vnet_now_us(), last_tx = 0;
	unsigned sent = 0, frames = 0, send_err = 0;
	int type = 0;
	uint32_t yiaddr = 0;
	while (vnet_now_us() - t0 < 5000000 && type <= 0) {
		if (vnet_now_us() - last_tx >= 1000000) { /* once a second */
			if (vnet_send(n, disc, dlen) == 0)
				sent++;
			else
				send_err++;
			last_tx = vnet_now_us();
		}
		vnet_wait(n, 100000);
		int len;
		while (type <= 0 && (len = vnet_recv(n, vnet_frame, sizeof(vnet_frame))) > 0) {
			frames++;
			type = dhcp_reply_type(vnet_frame, (unsigned)len, xid, &yiaddr);
		}
	}
	uint64_t dt = vnet_now_us() - t0;
	u_tap(sent > 0 && send_err == 0, "virtio-net (%s): DHCPDISCOVER broadcast sent: %u frames of %u bytes", m,
	      sent, dlen);
	u_tap(type == 2, "virtio-net (%s): DHCPOFFER received: %u frames in %lu ms, offered %u.%u.%u.%u", m,
	      frames, dt / 1000, yiaddr >> 24, (yiaddr >> 16) & 255, (yiaddr >> 8) & 255, yiaddr & 255);
	vt_report_irqs(d, m, irq0);
	vio_reset(d);
	return 0;
}
