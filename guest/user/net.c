/*
 * net: the ring-3 IPv4 stack (see net.h for what it does and does not do).
 *
 * Every received frame is hostile: each header length is checked against
 * the bytes actually received before a field is read, and the IPv4 total
 * length (not the frame length, which may carry Ethernet padding) bounds the
 * payload. Multi-byte fields are read and written byte by byte in network
 * order, so nothing depends on alignment or host byte order.
 *
 * The stack is driven by polling: every blocking call loops over net_poll(),
 * which feeds each waiting frame through eth_input(), runs the TCP timers,
 * sends what is due, and otherwise waits in vnet_wait() for a frame.
 */
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "vnet.h"

/* ulib.c in the guest, libc on the host. */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IP_HLEN 20
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define IP_MTU (VNET_MTU_FRAME - ETH_HLEN) /* 1500 */
#define IP_BCAST 0xffffffffu
#define UDP_HLEN 8
#define TCP_HLEN 20
#define TCP_MSS (IP_MTU - IP_HLEN - TCP_HLEN) /* 1460 */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* The send buffer holds everything from snd_una on (unacknowledged and not
 * yet sent); at least the peer's largest window (64 KiB without window
 * scaling) so the sender keeps the window full. Powers of two: a sequence
 * number masked gives the ring index. */
#define TCP_SBUF 65536u
#define TCP_RBUF 16384u
/* A virtual link to one peer needs no congestion control until it loses a
 * frame: the congestion window starts at the largest unscaled window. */
#define TCP_CWND_MAX 65535u
#define TCP_RTO_MIN_US 200000u
#define TCP_RTO_MAX_US 3000000u
#define TCP_MAX_RETRIES 12
#define ARP_CACHE 8
#define ARP_RETRY_US 200000u

enum tcp_state {
	TCP_CLOSED,
	TCP_LISTEN,
	TCP_SYN_RCVD,
	TCP_ESTABLISHED,
	TCP_CLOSE_WAIT,
	TCP_LAST_ACK,
	TCP_FIN_WAIT_1,
	TCP_FIN_WAIT_2,
	TCP_CLOSING,
	TCP_TIME_WAIT,
};

struct tcb {
	enum tcp_state state;
	bool reset;            /* ended by RST or by giving up retransmitting */
	uint16_t lport, rport; /* local, remote */
	uint32_t rip;
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t max_wnd;     /* largest window the peer offered */
	uint32_t cwnd;        /* one MSS after a timeout, growing per ACK (slow start) */
	uint16_t snd_mss;
	uint32_t irs, rcv_nxt;
	uint32_t sb_len;      /* bytes in sbuf from snd_una (FIN not counted) */
	bool fin_queued;      /* the application closed: FIN after the data */
	bool fin_sent;        /* snd_nxt is past the FIN (cleared by go-back-N) */
	bool fin_acked;
	bool fin_rcvd;        /* peer's FIN consumed: recv returns 0 when drained */
	uint32_t rb_head, rb_len;
	uint32_t rcv_adv;     /* right edge of the window we last advertised */
	bool ack_now;         /* an ACK (or window update) is owed */
	unsigned dup_acks;
	uint64_t rto_at;      /* 0: timer off */
	uint32_t rto_us;
	unsigned retries;
	uint8_t sbuf[TCP_SBUF];
	uint8_t rbuf[TCP_RBUF];
};

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	uint64_t used;
};

struct dhcp_reply {
	bool valid;
	uint8_t type;
	uint32_t yiaddr, server, mask, router, dns, lease;
};

static struct {
	struct vnet *dev;
	uint8_t mac[6];
	uint32_t ip, mask, router;
	uint16_t ip_id;
	struct arp_entry arp[ARP_CACHE];
	/* One frame waits for ARP resolution of its next hop (newer replaces
	 * older; TCP retransmits what is dropped). */
	uint8_t arp_wait_frame[VNET_MTU_FRAME];
	unsigned arp_wait_len;
	uint32_t arp_wait_ip;
	uint64_t arp_wait_sent;
	/* DHCP: the client matches replies on xid and chaddr. */
	uint32_t dhcp_xid;
	bool dhcp_active;
	struct dhcp_reply dhcp;
	struct tcb tcb;
	struct net_stats st;
	uint8_t rx[2048];
	uint8_t tx[VNET_MTU_FRAME];
} ns;

static const uint8_t mac_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- helpers --------------------------------------------------------------- */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Sequence arithmetic mod 2^32 (RFC 793 3.3). */
static inline bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}
static inline bool seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

/* rep movsb: fast on every x86-64 here (ERMS), in ring 3 and on the host. */
static inline void net_copy(void *d, const void *src, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
}

static inline uint32_t umin(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Internet checksum (RFC 1071). The ones-complement sum does not depend on
 * byte order, so the data is summed as little-endian 32-bit words (8 bytes
 * per step into a 64-bit accumulator), folded, and swapped once into network
 * order; the callers' other terms (pseudo-header) are in network order. */
typedef uint32_t __attribute__((may_alias, aligned(1))) net_u32u;

static uint64_t csum_add(uint64_t sum, const uint8_t *p, unsigned len)
{
	uint64_t le = 0;
	while (len >= 8) {
		le += (uint64_t)*(const net_u32u *)p + *(const net_u32u *)(p + 4);
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		le += *(const net_u32u *)p;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		le += (uint32_t)(p[0] | p[1] << 8);
		p += 2;
		len -= 2;
	}
	if (len)
		le += p[0]; /* the high byte of a network-order word: low in LE */
	while (le >> 16)
		le = (le & 0xffff) + (le >> 16);
	return sum + (uint16_t)(le << 8 | le >> 8);
}
static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}
static uint64_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, unsigned len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

static uint64_t now_us(void)
{
	return vnet_now_us();
}

static void bind_dev(struct vnet *n)
{
	if (ns.dev != n) {
		ns.dev = n;
		vnet_mac(n, ns.mac);
	}
}

/* ---- Ethernet and ARP ------------------------------------------------------ */

static int eth_xmit(uint8_t *frame, unsigned len)
{
	/* Short frames are padded to the 60-byte Ethernet minimum, as a NIC would. */
	while (len < 60)
		frame[len++] = 0;
	if (vnet_send(ns.dev, frame, len) != 0) {
		ns.st.tx_full++;
		return -1;
	}
	ns.st.tx_frames++;
	return 0;
}

static struct arp_entry *arp_find(uint32_t ip)
{
	for (unsigned i = 0; i < ARP_CACHE; i++)
		if (ns.arp[i].ip == ip && ip)
			return &ns.arp[i];
	return 0;
}

static void arp_learn(uint32_t ip, const uint8_t *mac, bool create)
{
	if (!ip || ip == IP_BCAST || (mac[0] & 1))
		return; /* no broadcast/multicast bindings */
	struct arp_entry *e = arp_find(ip);
	if (!e && !create)
		return;
	if (!e) { /* the least recently used entry goes */
		e = &ns.arp[0];
		for (unsigned i = 1; i < ARP_CACHE; i++)
			if (ns.arp[i].used < e->used)
				e = &ns.arp[i];
		e->ip = ip;
	}
	memcpy(e->mac, mac, 6);
	e->used = now_us();
}

static void arp_send(uint16_t op, const uint8_t *tha, uint32_t tpa)
{
	uint8_t f[60];
	memcpy(f, op == 1 ? mac_bcast : tha, 6);
	memcpy(f + 6, ns.mac, 6);
	wr16(f + 12, ETH_P_ARP);
	uint8_t *a = f + ETH_HLEN;
	wr16(a, 1);           /* Ethernet */
	wr16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, op);
	memcpy(a + 8, ns.mac, 6);
	wr32(a + 14, ns.ip);
	if (op == 1)
		memset(a + 18, 0, 6);
	else
		memcpy(a + 18, tha, 6);
	wr32(a + 24, tpa);
	if (eth_xmit(f, ETH_HLEN + 28) == 0) {
		if (op == 1)
			ns.st.arp_requests_sent++;
		else
			ns.st.arp_replies_sent++;
	}
}

static void arp_input(const uint8_t *a, unsigned len)
{
	if (len < 28 || rd16(a) != 1 || rd16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
		ns.st.rx_bad++;
		return;
	}
	uint16_t op = rd16(a + 6);
	uint32_t spa = rd32(a + 14), tpa = rd32(a + 24);
	bool for_us = ns.ip && tpa == ns.ip;
	/* RFC 826: update an existing binding from any ARP; add one only when
	 * the packet is for us. */
	arp_learn(spa, a + 8, for_us);
	if (op == 1 && for_us) {
		arp_send(2, a + 8, spa);
	} else if (op == 2 && for_us) {
		ns.st.arp_replies_rcvd++;
	} else {
		ns.st.rx_ignored++;
		return;
	}
	/* A frame waiting for this binding goes out now. */
	struct arp_entry *e = arp_find(ns.arp_wait_ip);
	if (ns.arp_wait_len && e) {
		memcpy(ns.arp_wait_frame, e->mac, 6);
		eth_xmit(ns.arp_wait_frame, ns.arp_wait_len);
		ns.arp_wait_len = 0;
	}
}

/* Re-asks for the waiting frame's next hop (from net_poll). */
static void arp_timer(void)
{
	if (ns.arp_wait_len && now_us() - ns.arp_wait_sent >= ARP_RETRY_US) {
		ns.arp_wait_sent = now_us();
		arp_send(1, 0, ns.arp_wait_ip);
	}
}

/* ---- IPv4 ------------------------------------------------------------------- */

/* Sends the IP payload of plen bytes already at ns.tx + 34. Next hop: the
 * destination when on-link, else the router; an unresolved next hop parks the
 * frame and sends an ARP request. -1 if the frame did not go out now. */
static int ip_send(uint32_t dst, uint8_t proto, unsigned plen, uint32_t src)
{
	uint8_t *f = ns.tx, *ip = f + ETH_HLEN;
	if (plen > IP_MTU - IP_HLEN)
		return -1;
	ip[0] = 0x45;
	ip[1] = 0;
	wr16(ip + 2, (uint16_t)(IP_HLEN + plen));
	wr16(ip + 4, ns.ip_id++);
	wr16(ip + 6, 0x4000); /* DF: we never fragment */
	ip[8] = 64;
	ip[9] = proto;
	wr16(ip + 10, 0);
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	wr16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
	memcpy(f + 6, ns.mac, 6);
	wr16(f + 12, ETH_P_IP);
	unsigned len = ETH_HLEN + IP_HLEN + plen;
	if (dst == IP_BCAST || (ns.mask && (dst | ns.mask) == IP_BCAST && (dst & ns.mask) == (ns.ip & ns.mask))) {
		memcpy(f, mac_bcast, 6);
		return eth_xmit(f, len);
	}
	uint32_t hop = (ns.mask && (dst & ns.mask) != (ns.ip & ns.mask) && ns.router) ? ns.router : dst;
	struct arp_entry *e = arp_find(hop);
	if (e) {
		e->used = now_us();
		memcpy(f, e->mac, 6);
		return eth_xmit(f, len);
	}
	memcpy(ns.arp_wait_frame, f, len);
	ns.arp_wait_len = len;
	ns.arp_wait_ip = hop;
	ns.arp_wait_sent = now_us();
	arp_send(1, 0, hop);
	return -1;
}

static void icmp_input(const uint8_t *ip, const uint8_t *p, unsigned len)
{
	if (len < 8 || csum_fold(csum_add(0, p, len)) != 0) {
		ns.st.rx_bad++;
		return;
	}
	if (p[0] != 8 || p[1] != 0 || rd32(ip + 16) != ns.ip) { /* echo request to us only */
		ns.st.rx_ignored++;
		return;
	}
	uint8_t *r = ns.tx + ETH_HLEN + IP_HLEN;
	memcpy(r, p, len); /* len <= IP_MTU - IP_HLEN: checked by ip_input */
	r[0] = 0;
	wr16(r + 2, 0);
	wr16(r + 2, csum_fold(csum_add(0, r, len)));
	if (ip_send(rd32(ip + 12), IP_PROTO_ICMP, len, ns.ip) == 0)
		ns.st.icmp_echo_replies++;
}

static void udp_input(const uint8_t *ip, const uint8_t *p, unsigned len);
static void tcp_input(const uint8_t *ip, const uint8_t *p, unsigned len);

static void ip_input(const uint8_t *ip, unsigned len)
{
	if (len < IP_HLEN || (ip[0] >> 4) != 4) {
		ns.st.rx_bad++;
		return;
	}
	unsigned hl = (ip[0] & 15u) * 4, tot = rd16(ip + 2);
	if (hl < IP_HLEN || tot < hl || tot > len || tot > IP_MTU || csum_fold(csum_add(0, ip, hl)) != 0) {
		ns.st.rx_bad++;
		return;
	}
	if (rd16(ip + 6) & 0x3fff) { /* MF set or a non-zero offset */
		ns.st.rx_frags++;
		return;
	}
	uint32_t dst = rd32(ip + 16), src = rd32(ip + 12);
	bool bcast = dst == IP_BCAST || (ns.mask && (dst | ns.mask) == IP_BCAST);
	/* Until DHCP has given us an address, unicast to any address is taken
	 * (some servers send the OFFER to yiaddr). */
	if (!(dst == ns.ip || bcast || (!ns.ip && ip[9] == IP_PROTO_UDP)) || src == IP_BCAST ||
	    ip[8] == 0) {
		ns.st.rx_ignored++;
		return;
	}
	const uint8_t *p = ip + hl;
	unsigned plen = tot - hl;
	switch (ip[9]) {
	case IP_PROTO_ICMP:
		icmp_input(ip, p, plen);
		break;
	case IP_PROTO_UDP:
		udp_input(ip, p, plen);
		break;
	case IP_PROTO_TCP:
		if (bcast)
			ns.st.rx_ignored++;
		else
			tcp_input(ip, p, plen);
		break;
	default:
		ns.st.rx_ignored++;
	}
}

static void eth_input(const uint8_t *f, unsigned len)
{
	if (len < ETH_HLEN) {
		ns.st.rx_bad++;
		return;
	}
	if (memcmp(f, ns.mac, 6) != 0 && memcmp(f, mac_bcast, 6) != 0) {
		ns.st.rx_ignored++;
		return;
	}
	switch (rd16(f + 12)) {
	case ETH_P_ARP:
		arp_input(f + ETH_HLEN, len - ETH_HLEN);
		break;
	case ETH_P_IP:
		ip_input(f + ETH_HLEN, len - ETH_HLEN);
		break;
	default:
		ns.st.rx_ignored++;
	}
}

/* ---- UDP and DHCP ------------------------------------------------------------ */

#define DHCP_CLIENT_PORT 68
#define DHCP_SERVER_PORT 67
#define DHCP_FIXED 236   /* BOOTP header up to the options */
#define DHCP_MAGIC 0x63825363u
#define DHCP_DISCOVER 1
#define DHCP_OFFER 2
#define DHCP_REQUEST 3
#define DHCP_ACK 5
#define DHCP_NAK 6

static void dhcp_input(const uint8_t *ip, const uint8_t *p, unsigned len)
{
	if (len < DHCP_FIXED + 4 || p[0] != 2 || p[1] != 1 || p[2] != 6 || rd32(p + 4) != ns.dhcp_xid ||
	    memcmp(p + 28, ns.mac, 6) != 0 || rd32(p + DHCP_FIXED) != DHCP_MAGIC) {
		ns.st.rx_ignored++;
		return;
	}
	struct dhcp_reply r = { 0 };
	r.yiaddr = rd32(p + 16);
	r.server = rd32(ip + 12); /* until option 54 says otherwise */
	/* Options: code, length, value; 0 is padding, 255 the end. Every
	 * length is checked against what is left before the value is read. */
	unsigned i = DHCP_FIXED + 4;
	while (i < len && p[i] != 255) {
		uint8_t code = p[i];
		if (code == 0) {
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + p[i + 1] > len) {
			ns.st.rx_bad++;
			return;
		}
		unsigned ol = p[i + 1];
		const uint8_t *v = p + i + 2;
		switch (code) {
		case 53:
			if (ol >= 1)
				r.type = v[0];
			break;
		case 54:
			if (ol >= 4)
				r.server = rd32(v);
			break;
		case 1:
			if (ol >= 4)
				r.mask = rd32(v);
			break;
		case 3:
			if (ol >= 4)
				r.router = rd32(v);
			break;
		case 6:
			if (ol >= 4)
				r.dns = rd32(v);
			break;
		case 51:
			if (ol >= 4)
				r.lease = rd32(v);
			break;
		}
		i += 2 + ol;
	}
	if (!r.type) {
		ns.st.rx_bad++;
		return;
	}
	r.valid = true;
	ns.dhcp = r;
}

static void udp_input(const uint8_t *ip, const uint8_t *p, unsigned len)
{
	if (len < UDP_HLEN) {
		ns.st.rx_bad++;
		return;
	}
	unsigned ulen = rd16(p + 4);
	if (ulen < UDP_HLEN || ulen > len) {
		ns.st.rx_bad++;
		return;
	}
	if (rd16(p + 6) != 0 && /* 0: sender did not checksum */
	    csum_fold(csum_add(csum_pseudo(rd32(ip + 12), rd32(ip + 16), IP_PROTO_UDP, ulen), p, ulen)) != 0) {
		ns.st.rx_bad++;
		return;
	}
	if (rd16(p + 2) == DHCP_CLIENT_PORT && rd16(p) == DHCP_SERVER_PORT && ns.dhcp_active)
		dhcp_input(ip, p + UDP_HLEN, ulen - UDP_HLEN);
	else
		ns.st.rx_ignored++;
}

static int udp_send(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, unsigned dlen)
{
	uint8_t *u = ns.tx + ETH_HLEN + IP_HLEN;
	unsigned ulen = UDP_HLEN + dlen;
	wr16(u, sport);
	wr16(u + 2, dport);
	wr16(u + 4, (uint16_t)ulen);
	wr16(u + 6, 0);
	uint16_t c = csum_fold(csum_add(csum_pseudo(src, dst, IP_PROTO_UDP, ulen), u, ulen));
	wr16(u + 6, c ? c : 0xffff);
	return ip_send(dst, IP_PROTO_UDP, ulen, src);
}

static void dhcp_send(uint8_t type, uint32_t req_ip, uint32_t server, uint16_t secs)
{
	uint8_t *d = ns.tx + ETH_HLEN + IP_HLEN + UDP_HLEN;
	memset(d, 0, 300);
	d[0] = 1; /* BOOTREQUEST */
	d[1] = 1;
	d[2] = 6;
	wr32(d + 4, ns.dhcp_xid);
	wr16(d + 8, secs);
	wr16(d + 10, 0x8000); /* broadcast flag: we cannot take unicast before we have an address */
	memcpy(d + 28, ns.mac, 6);
	wr32(d + DHCP_FIXED, DHCP_MAGIC);
	unsigned o = DHCP_FIXED + 4;
	d[o++] = 53;
	d[o++] = 1;
	d[o++] = type;
	d[o++] = 61; /* client identifier: hardware type + MAC */
	d[o++] = 7;
	d[o++] = 1;
	memcpy(d + o, ns.mac, 6);
	o += 6;
	if (type == DHCP_REQUEST) {
		d[o++] = 50;
		d[o++] = 4;
		wr32(d + o, req_ip);
		o += 4;
		d[o++] = 54;
		d[o++] = 4;
		wr32(d + o, server);
		o += 4;
	}
	d[o++] = 55; /* parameter request list */
	d[o++] = 4;
	d[o++] = 1;
	d[o++] = 3;
	d[o++] = 6;
	d[o++] = 51;
	d[o++] = 255;
	/* 300 bytes: the BOOTP minimum that some servers insist on. */
	udp_send(0, DHCP_CLIENT_PORT, IP_BCAST, DHCP_SERVER_PORT, o < 300 ? 300 : o);
}

/* ---- TCP ----------------------------------------------------------------------- */

static uint32_t tcp_rcv_wnd(void)
{
	return umin(TCP_RBUF - ns.tcb.rb_len, 65535);
}

/* One segment to (rip, rport) from lport. Data, if any, comes from the send
 * buffer at seq. */
static int tcp_xmit(uint32_t rip, uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags,
		    unsigned dlen, bool mss)
{
	struct tcb *t = &ns.tcb;
	uint8_t *s = ns.tx + ETH_HLEN + IP_HLEN;
	unsigned hl = TCP_HLEN + (mss ? 4 : 0);
	uint32_t wnd = (flags & TCP_RST) ? 0 : tcp_rcv_wnd();
	wr16(s, lport);
	wr16(s + 2, rport);
	wr32(s + 4, seq);
	wr32(s + 8, (flags & TCP_ACK) ? ack : 0);
	s[12] = (uint8_t)((hl / 4) << 4);
	s[13] = flags;
	wr16(s + 14, (uint16_t)wnd);
	wr16(s + 16, 0);
	wr16(s + 18, 0);
	if (mss) {
		s[20] = 2;
		s[21] = 4;
		wr16(s + 22, TCP_MSS);
	}
	if (dlen) { /* the ring may wrap inside the segment */
		uint32_t at = seq & (TCP_SBUF - 1), first = umin(dlen, TCP_SBUF - at);
		net_copy(s + hl, t->sbuf + at, first);
		net_copy(s + hl + first, t->sbuf, dlen - first);
	}
	unsigned len = hl + dlen;
	wr16(s + 16, csum_fold(csum_add(csum_pseudo(ns.ip, rip, IP_PROTO_TCP, len), s, len)));
	if (ip_send(rip, IP_PROTO_TCP, len, ns.ip) != 0)
		return -1;
	ns.st.tcp_segs_out++;
	if (!(flags & TCP_RST)) {
		t->rcv_adv = t->rcv_nxt + wnd;
		if (flags & TCP_ACK)
			t->ack_now = false;
	}
	return 0;
}

static void tcp_timer_arm(struct tcb *t)
{
	if (!t->rto_at)
		t->rto_at = now_us() + t->rto_us;
}

static int tcp_send_synack(struct tcb *t)
{
	tcp_timer_arm(t);
	return tcp_xmit(t->rip, t->lport, t->rport, t->iss, t->rcv_nxt, TCP_SYN | TCP_ACK, 0, true);
}

static void tcp_send_ack(struct tcb *t)
{
	tcp_xmit(t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt, TCP_ACK, 0, false);
}

/* Sends new data (and then the FIN) as far as the peer's window allows,
 * MSS-sized, several segments in flight; then any ACK still owed. */
static void tcp_output(void)
{
	struct tcb *t = &ns.tcb;
	if (t->state == TCP_SYN_RCVD || t->state == TCP_CLOSED || t->state == TCP_LISTEN)
		return;
	uint32_t data_end = t->snd_una + t->sb_len, wnd_end = t->snd_una + umin(t->snd_wnd, t->cwnd);
	while (!t->fin_sent && seq_lt(t->snd_nxt, data_end) && seq_lt(t->snd_nxt, wnd_end)) {
		uint32_t n = umin(umin(data_end - t->snd_nxt, t->snd_mss), wnd_end - t->snd_nxt);
		/* Less than a full segment while data is in flight: Nagle's rule
		 * for the tail of what is queued (the application is likely to
		 * add more: 4 KiB writes would each end in a runt), and sender
		 * silly-window avoidance (RFC 1122 4.2.3.4) for a window sliver.
		 * The next ACK sends it; with nothing in flight it goes now. */
		if (n < t->snd_mss && t->snd_nxt != t->snd_una && !t->fin_queued &&
		    (n == data_end - t->snd_nxt || n < t->max_wnd / 2))
			break;
		uint8_t fl = TCP_ACK | (t->snd_nxt + n == data_end ? TCP_PSH : 0);
		if (tcp_xmit(t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt, fl, n, false) != 0)
			break; /* tx ring full or ARP pending: later */
		if (seq_lt(t->snd_nxt, t->snd_max))
			ns.st.tcp_retransmits++;
		t->snd_nxt += n;
		ns.st.tcp_bytes_out += n;
		if (seq_lt(t->snd_max, t->snd_nxt))
			t->snd_max = t->snd_nxt;
		tcp_timer_arm(t);
	}
	if (t->fin_queued && !t->fin_sent && !t->fin_acked && t->snd_nxt == data_end &&
	    (t->state == TCP_ESTABLISHED || t->state == TCP_CLOSE_WAIT || t->state == TCP_FIN_WAIT_1 ||
	     t->state == TCP_LAST_ACK || t->state == TCP_CLOSING)) {
		if (tcp_xmit(t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt, TCP_FIN | TCP_ACK, 0, false) == 0) {
			t->fin_sent = true;
			t->snd_nxt++;
			if (seq_lt(t->snd_max, t->snd_nxt))
				t->snd_max = t->snd_nxt;
			if (t->state == TCP_ESTABLISHED)
				t->state = TCP_FIN_WAIT_1;
			else if (t->state == TCP_CLOSE_WAIT)
				t->state = TCP_LAST_ACK;
			tcp_timer_arm(t);
		}
	}
	/* Zero window with data waiting: the timer probes it. */
	if (t->snd_wnd == 0 && seq_lt(t->snd_nxt, data_end))
		tcp_timer_arm(t);
	if (t->ack_now)
		tcp_send_ack(t);
}

static void tcp_drop(struct tcb *t)
{
	t->state = TCP_CLOSED;
	t->reset = true;
	t->rto_at = 0;
}

/* Retransmission timeout: go back to snd_una and send again (go-back-N),
 * with the timeout doubled; a zero window gets a one-byte probe. */
static void tcp_timer(void)
{
	struct tcb *t = &ns.tcb;
	if (!t->rto_at || now_us() < t->rto_at)
		return;
	t->rto_at = 0;
	if (++t->retries > TCP_MAX_RETRIES) {
		if (t->lport && t->state != TCP_CLOSED && t->state != TCP_LISTEN)
			tcp_xmit(t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt, TCP_RST | TCP_ACK, 0, false);
		tcp_drop(t);
		return;
	}
	t->rto_us = umin(t->rto_us * 2, TCP_RTO_MAX_US);
	if (t->state == TCP_SYN_RCVD) {
		ns.st.tcp_retransmits++;
		tcp_send_synack(t);
		return;
	}
	if (t->state == TCP_TIME_WAIT || t->state == TCP_CLOSED || t->state == TCP_LISTEN)
		return;
	uint32_t data_end = t->snd_una + t->sb_len;
	if (t->snd_una == t->snd_nxt && t->snd_wnd == 0 && seq_lt(t->snd_nxt, data_end)) {
		/* Window probe: one byte past a zero window. */
		if (tcp_xmit(t->rip, t->lport, t->rport, t->snd_nxt, t->rcv_nxt, TCP_ACK, 1, false) == 0) {
			t->snd_nxt++;
			if (seq_lt(t->snd_max, t->snd_nxt))
				t->snd_max = t->snd_nxt;
		}
		t->retries--; /* persisting against a zero window is not a failure */
		tcp_timer_arm(t);
		return;
	}
	if (t->snd_una != t->snd_nxt) {
		/* Resend from snd_una, one segment first: the window reopens as
		 * ACKs come (slow start), so a burst that keeps losing the same
		 * frame is not repeated whole. */
		t->snd_nxt = t->snd_una;
		t->cwnd = t->snd_mss;
		t->fin_sent = false; /* tcp_output sends it again after the data */
		tcp_output();
		tcp_timer_arm(t);
	}
}

static void tcp_send_rst_for(const uint8_t *ip, const uint8_t *s, unsigned dlen)
{
	uint8_t fl = s[13];
	if (fl & TCP_RST)
		return;
	uint32_t seq = rd32(s + 4), ack = rd32(s + 8);
	uint32_t seg_len = dlen + ((fl & TCP_SYN) ? 1 : 0) + ((fl & TCP_FIN) ? 1 : 0);
	if (fl & TCP_ACK)
		tcp_xmit(rd32(ip + 12), rd16(s + 2), rd16(s), ack, 0, TCP_RST, 0, false);
	else
		tcp_xmit(rd32(ip + 12), rd16(s + 2), rd16(s), 0, seq + seg_len, TCP_RST | TCP_ACK, 0, false);
	ns.st.tcp_rst_sent++;
}

/* The MSS option of a SYN (RFC 9293 3.7.1); 536 when absent. */
static uint16_t tcp_parse_mss(const uint8_t *s, unsigned hl)
{
	unsigned i = TCP_HLEN;
	while (i < hl) {
		uint8_t k = s[i];
		if (k == 0)
			break;
		if (k == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hl || s[i + 1] < 2 || i + s[i + 1] > hl)
			break; /* malformed: stop at what was valid */
		if (k == 2 && s[i + 1] == 4)
			return rd16(s + i + 2);
		i += s[i + 1];
	}
	return 536;
}

static uint32_t tcp_iss(void)
{
	uint64_t x = now_us() * 2654435761u;
	for (unsigned i = 0; i < 6; i++)
		x = x * 31 + ns.mac[i];
	return (uint32_t)(x ^ (x >> 32));
}

static void tcp_fin_acked(struct tcb *t)
{
	switch (t->state) {
	case TCP_FIN_WAIT_1:
		t->state = TCP_FIN_WAIT_2;
		break;
	case TCP_CLOSING:
		t->state = TCP_TIME_WAIT;
		break;
	case TCP_LAST_ACK:
		t->state = TCP_CLOSED;
		break;
	default:
		break;
	}
}

static void tcp_input(const uint8_t *ip, const uint8_t *s, unsigned len)
{
	struct tcb *t = &ns.tcb;
	if (len < TCP_HLEN) {
		ns.st.rx_bad++;
		return;
	}
	unsigned hl = (s[12] >> 4) * 4u;
	uint32_t src = rd32(ip + 12);
	if (hl < TCP_HLEN || hl > len ||
	    csum_fold(csum_add(csum_pseudo(src, rd32(ip + 16), IP_PROTO_TCP, len), s, len)) != 0) {
		ns.st.rx_bad++;
		return;
	}
	ns.st.tcp_segs_in++;
	uint16_t sport = rd16(s), dport = rd16(s + 2);
	uint32_t seq = rd32(s + 4), ack = rd32(s + 8), wnd = rd16(s + 14);
	uint8_t fl = s[13];
	const uint8_t *data = s + hl;
	unsigned dlen = len - hl;

	bool ours = t->state != TCP_CLOSED && dport == t->lport &&
		    (t->state == TCP_LISTEN || (sport == t->rport && src == t->rip));
	if (!ours) {
		tcp_send_rst_for(ip, s, dlen);
		return;
	}

	if (t->state == TCP_LISTEN) {
		if (fl & TCP_RST)
			return;
		if (fl & TCP_ACK) {
			tcp_send_rst_for(ip, s, dlen);
			return;
		}
		if (!(fl & TCP_SYN) || (fl & TCP_FIN))
			return;
		t->rip = src;
		t->rport = sport;
		t->irs = seq;
		t->rcv_nxt = seq + 1;
		uint16_t mss = tcp_parse_mss(s, hl);
		t->snd_mss = mss < 64 ? 64 : mss > TCP_MSS ? TCP_MSS : mss;
		t->snd_wnd = t->max_wnd = wnd; /* a SYN's window is never scaled */
		t->snd_wl1 = seq;
		t->snd_wl2 = 0;
		t->iss = tcp_iss();
		t->snd_una = t->iss;
		t->snd_nxt = t->snd_max = t->iss + 1;
		t->state = TCP_SYN_RCVD;
		t->rto_us = TCP_RTO_MIN_US;
		t->retries = 0;
		t->rto_at = 0;
		tcp_send_synack(t);
		/* data on a SYN is not taken: the peer sends it again */
		return;
	}

	/* 1. Is the segment in the receive window? (RFC 9293 3.10.7.4) */
	uint32_t seg_len = dlen + ((fl & TCP_SYN) ? 1 : 0) + ((fl & TCP_FIN) ? 1 : 0);
	uint32_t rwnd = tcp_rcv_wnd();
	bool acceptable;
	if (seg_len == 0)
		acceptable = rwnd == 0 ? seq == t->rcv_nxt
				       : seq_le(t->rcv_nxt, seq) && seq_lt(seq, t->rcv_nxt + rwnd);
	else
		acceptable = rwnd != 0 && ((seq_le(t->rcv_nxt, seq) && seq_lt(seq, t->rcv_nxt + rwnd)) ||
					   (seq_le(t->rcv_nxt, seq + seg_len - 1) &&
					    seq_lt(seq + seg_len - 1, t->rcv_nxt + rwnd)));
	/* A zero window still takes ACKs and FINs at rcv_nxt. */
	if (!acceptable && rwnd == 0 && seq == t->rcv_nxt)
		acceptable = true;
	if (!acceptable) {
		if (t->state == TCP_SYN_RCVD && (fl & TCP_SYN) && seq == t->irs && !(fl & TCP_ACK)) {
			tcp_send_synack(t); /* our SYN-ACK was lost: the peer repeats its SYN */
			return;
		}
		if (!(fl & TCP_RST))
			t->ack_now = true;
		return;
	}
	/* 2. RST: in window ends the connection (a half-open one goes back to LISTEN). */
	if (fl & TCP_RST) {
		if (t->state == TCP_SYN_RCVD) {
			t->state = TCP_LISTEN;
			t->rto_at = 0;
		} else {
			tcp_drop(t);
		}
		return;
	}
	/* 3. A SYN in the window: challenge ACK (RFC 5961), drop. */
	if (fl & TCP_SYN) {
		t->ack_now = true;
		return;
	}
	/* 4. ACK. */
	if (!(fl & TCP_ACK))
		return;
	if (t->state == TCP_SYN_RCVD) {
		if (!(seq_lt(t->snd_una, ack) && seq_le(ack, t->snd_max))) {
			tcp_send_rst_for(ip, s, dlen);
			return;
		}
		t->state = TCP_ESTABLISHED;
		t->snd_una = t->snd_nxt = ack;
		t->cwnd = TCP_CWND_MAX;
		t->snd_wnd = wnd;
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
		t->rto_at = 0;
		t->rto_us = TCP_RTO_MIN_US;
		t->retries = 0;
	} else if (seq_lt(t->snd_max, ack)) {
		t->ack_now = true; /* acks what we never sent */
		return;
	} else if (seq_lt(t->snd_una, ack)) {
		uint32_t acked = ack - t->snd_una;
		uint32_t data_acked = umin(acked, t->sb_len);
		t->sb_len -= data_acked;
		t->snd_una = ack;
		if (seq_lt(t->snd_nxt, ack))
			t->snd_nxt = ack; /* after a go-back-N, the peer had more than we re-sent */
		/* Once the FIN is queued no data is added, so an ACK past the
		 * data (ack <= snd_max was checked) can only be the FIN's,
		 * also when go-back-N had rewound snd_nxt before it. */
		if (t->fin_queued && !t->fin_acked && acked > data_acked) {
			t->fin_acked = true;
			t->fin_sent = true;
			tcp_fin_acked(t);
		}
		t->dup_acks = 0;
		t->cwnd = umin(t->cwnd + acked, TCP_CWND_MAX);
		t->retries = 0;
		t->rto_us = TCP_RTO_MIN_US;
		t->rto_at = 0;
		if (t->snd_una != t->snd_max)
			tcp_timer_arm(t);
	} else if (ack == t->snd_una && dlen == 0 && !(fl & TCP_FIN) && wnd == t->snd_wnd &&
		   t->snd_una != t->snd_max) {
		/* Three duplicate ACKs: the segment at snd_una was lost. */
		ns.st.tcp_dup_acks++;
		if (++t->dup_acks == 3) {
			ns.st.tcp_fast_retransmits++;
			ns.st.tcp_retransmits++;
			uint32_t n = umin(umin(t->sb_len, t->snd_mss), t->snd_wnd ? t->snd_wnd : 1);
			if (n)
				tcp_xmit(t->rip, t->lport, t->rport, t->snd_una, t->rcv_nxt, TCP_ACK, n, false);
		}
	}
	/* Window update from a newer segment (RFC 9293 SND.WL1/WL2). */
	if (seq_lt(t->snd_wl1, seq) || (t->snd_wl1 == seq && seq_le(t->snd_wl2, ack))) {
		t->snd_wnd = wnd;
		if (wnd > t->max_wnd)
			t->max_wnd = wnd;
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
	}
	if (t->state == TCP_CLOSED)
		return;
	if (t->state == TCP_TIME_WAIT) {
		if (fl & TCP_FIN)
			t->ack_now = true; /* our last ACK was lost */
		return;
	}
	/* 5. Data, in order only: what was received before is trimmed, a gap
	 * is not kept (the peer resends; a duplicate ACK tells it where). */
	bool can_rx = t->state == TCP_ESTABLISHED || t->state == TCP_FIN_WAIT_1 || t->state == TCP_FIN_WAIT_2;
	if (dlen && can_rx) {
		if (seq_lt(seq, t->rcv_nxt)) {
			uint32_t skip = t->rcv_nxt - seq;
			if (skip >= dlen) {
				dlen = 0;
			} else {
				data += skip;
				dlen -= skip;
			}
			seq = t->rcv_nxt;
		}
		if (seq != t->rcv_nxt) {
			ns.st.tcp_out_of_order++;
			t->ack_now = true;
			return;
		}
		uint32_t n = umin(dlen, TCP_RBUF - t->rb_len);
		for (uint32_t i = 0; i < n; i++) /* small: requests, not bulk */
			t->rbuf[(t->rb_head + t->rb_len + i) & (TCP_RBUF - 1)] = data[i];
		t->rb_len += n;
		t->rcv_nxt += n;
		ns.st.tcp_bytes_in += n;
		t->ack_now = true;
		if (n < dlen)
			return; /* window overrun: the rest (and a FIN) comes again */
		seq += n;
	} else if (dlen) {
		t->ack_now = true; /* data after the peer's FIN: ignored */
	}
	/* 6. FIN, once everything before it is in. */
	if ((fl & TCP_FIN) && seq + dlen == t->rcv_nxt && !t->fin_rcvd) {
		t->rcv_nxt++;
		t->fin_rcvd = true;
		t->ack_now = true;
		switch (t->state) {
		case TCP_ESTABLISHED:
			t->state = TCP_CLOSE_WAIT;
			break;
		case TCP_FIN_WAIT_1:
			t->state = TCP_CLOSING;
			break;
		case TCP_FIN_WAIT_2:
			t->state = TCP_TIME_WAIT;
			break;
		default:
			break;
		}
	} else if ((fl & TCP_FIN) && t->fin_rcvd) {
		t->ack_now = true;
	}
}

/* ---- the polling loop and the API ---------------------------------------------- */

/* Processes every waiting frame (up to a batch); runs timers; sends what is
 * due. With nothing received, waits up to wait_us for a frame. */
static int net_poll(uint64_t wait_us)
{
	int got = 0;
	for (; got < 64; got++) {
		int len = vnet_recv(ns.dev, ns.rx, sizeof(ns.rx));
		if (len <= 0)
			break;
		ns.st.rx_frames++;
		eth_input(ns.rx, (unsigned)len > sizeof(ns.rx) ? sizeof(ns.rx) : (unsigned)len);
	}
	arp_timer();
	tcp_timer();
	tcp_output();
	if (!got && wait_us)
		vnet_wait(ns.dev, wait_us);
	return got;
}

/* How long net_poll may sleep: until the next TCP/ARP timer, at most max_us. */
static uint64_t poll_budget(uint64_t deadline, uint64_t max_us)
{
	uint64_t now = now_us(), w = max_us;
	if (deadline > now && deadline - now < w)
		w = deadline - now;
	if (ns.tcb.rto_at) {
		uint64_t r = ns.tcb.rto_at > now ? ns.tcb.rto_at - now : 0;
		if (r < w)
			w = r;
	}
	return w ? w : 1;
}

void net_reset(void)
{
	memset(&ns, 0, sizeof(ns));
}

const struct net_stats *net_stats(void)
{
	return &ns.st;
}

void net_config(struct vnet *n, const struct net_cfg *cfg)
{
	bind_dev(n);
	ns.ip = cfg->ip;
	ns.mask = cfg->mask;
	ns.router = cfg->router;
}

int net_dhcp(struct vnet *n, struct net_cfg *cfg, uint32_t timeout_ms)
{
	bind_dev(n);
	uint64_t t0 = now_us(), deadline = t0 + (uint64_t)timeout_ms * 1000;
	ns.ip = ns.mask = ns.router = 0;
	ns.dhcp_xid = tcp_iss() ^ 0x5a5a0000u;
	ns.dhcp_active = true;
	ns.dhcp.valid = false;
	uint32_t offer_ip = 0, server = 0;
	uint64_t resend = 0, backoff = 500000;
	uint8_t want = DHCP_OFFER;
	int rc = -1;
	while (now_us() < deadline) {
		uint64_t now = now_us();
		if (now >= resend) {
			uint16_t secs = (uint16_t)((now - t0) / 1000000);
			if (want == DHCP_OFFER)
				dhcp_send(DHCP_DISCOVER, 0, 0, secs);
			else
				dhcp_send(DHCP_REQUEST, offer_ip, server, secs);
			resend = now + backoff;
			if (backoff < 4000000)
				backoff *= 2;
		}
		net_poll(poll_budget(resend < deadline ? resend : deadline, 10000));
		if (!ns.dhcp.valid)
			continue;
		struct dhcp_reply r = ns.dhcp;
		ns.dhcp.valid = false;
		if (want == DHCP_OFFER && r.type == DHCP_OFFER && r.yiaddr && r.yiaddr != IP_BCAST) {
			offer_ip = r.yiaddr;
			server = r.server;
			want = DHCP_ACK;
			resend = 0; /* REQUEST now */
			backoff = 500000;
		} else if (want == DHCP_ACK && r.type == DHCP_ACK && r.yiaddr == offer_ip) {
			cfg->ip = r.yiaddr;
			cfg->mask = r.mask ? r.mask : 0xffffff00u;
			cfg->router = r.router;
			cfg->dns = r.dns;
			cfg->server = r.server;
			cfg->lease_s = r.lease;
			ns.ip = cfg->ip;
			ns.mask = cfg->mask;
			ns.router = cfg->router;
			rc = 0;
			break;
		} else if (want == DHCP_ACK && r.type == DHCP_NAK) {
			want = DHCP_OFFER; /* start over */
			ns.dhcp_xid++;
			resend = 0;
		}
	}
	ns.dhcp_active = false;
	return rc;
}

int net_tcp_accept(struct vnet *n, uint16_t port, uint32_t timeout_ms)
{
	bind_dev(n);
	struct tcb *t = &ns.tcb;
	if (!ns.ip || !port)
		return -1;
	memset(t, 0, offsetof(struct tcb, sbuf));
	t->state = TCP_LISTEN;
	t->lport = port;
	t->rto_us = TCP_RTO_MIN_US;
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000;
	while (now_us() < deadline) {
		net_poll(poll_budget(deadline, 10000));
		if (t->state == TCP_ESTABLISHED || t->state == TCP_CLOSE_WAIT)
			return 0;
	}
	t->state = TCP_CLOSED;
	return -1;
}

void net_tcp_peer(uint32_t *ip, uint16_t *port)
{
	*ip = ns.tcb.rip;
	*port = ns.tcb.rport;
}

int net_tcp_recv(struct vnet *n, void *buf, unsigned max, uint32_t timeout_ms)
{
	bind_dev(n);
	struct tcb *t = &ns.tcb;
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000;
	for (;;) {
		if (t->rb_len) {
			uint32_t k = umin(max, t->rb_len);
			uint8_t *d = buf;
			for (uint32_t i = 0; i < k; i++)
				d[i] = t->rbuf[(t->rb_head + i) & (TCP_RBUF - 1)];
			t->rb_head = (t->rb_head + k) & (TCP_RBUF - 1);
			t->rb_len -= k;
			/* A window update once the window's right edge can move by
			 * an MSS or half the buffer (receiver SWS avoidance, RFC
			 * 1122 4.2.3.3): a peer stopped by a full buffer goes on. */
			if ((int32_t)(t->rcv_nxt + tcp_rcv_wnd() - t->rcv_adv) >= (int32_t)umin(TCP_MSS, TCP_RBUF / 2))
				t->ack_now = true;
			tcp_output();
			return (int)k;
		}
		if (t->fin_rcvd)
			return 0;
		if (t->state == TCP_CLOSED || t->reset || t->state == TCP_LISTEN)
			return -1;
		if (now_us() >= deadline)
			return -1;
		net_poll(poll_budget(deadline, 10000));
	}
}

int net_tcp_send(struct vnet *n, const void *buf, unsigned len, uint32_t timeout_ms)
{
	bind_dev(n);
	struct tcb *t = &ns.tcb;
	const uint8_t *p = buf;
	unsigned done = 0;
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000;
	while (done < len) {
		if (t->reset || t->fin_queued || (t->state != TCP_ESTABLISHED && t->state != TCP_CLOSE_WAIT))
			return -1;
		uint32_t space = TCP_SBUF - t->sb_len;
		if (space) {
			uint32_t k = umin(space, len - done);
			uint32_t at = (t->snd_una + t->sb_len) & (TCP_SBUF - 1), first = umin(k, TCP_SBUF - at);
			net_copy(t->sbuf + at, p + done, first);
			net_copy(t->sbuf, p + done + first, k - first);
			t->sb_len += k;
			done += k;
			tcp_output();
			/* Take in ACKs that already came, without waiting. */
			net_poll(0);
			continue;
		}
		if (now_us() >= deadline)
			return -1;
		net_poll(poll_budget(deadline, 2000));
	}
	return (int)done;
}

int net_tcp_close(struct vnet *n, uint32_t timeout_ms)
{
	bind_dev(n);
	struct tcb *t = &ns.tcb;
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000;
	if (t->state == TCP_LISTEN || t->state == TCP_SYN_RCVD) {
		t->state = TCP_CLOSED;
		return 0;
	}
	if (t->state == TCP_CLOSED)
		return t->reset ? -1 : 0;
	t->fin_queued = true;
	tcp_output();
	while (now_us() < deadline) {
		if (t->state == TCP_CLOSED || t->state == TCP_TIME_WAIT)
			return t->reset ? -1 : 0;
		/* Our FIN is acknowledged: all data arrived; the peer's FIN is
		 * waited for only briefly below. */
		if (t->state == TCP_FIN_WAIT_2 && t->fin_rcvd)
			return 0;
		net_poll(poll_budget(deadline, 10000));
		if (t->state == TCP_FIN_WAIT_2) {
			uint64_t d2 = now_us() + 200000;
			while (t->state == TCP_FIN_WAIT_2 && now_us() < d2 && now_us() < deadline)
				net_poll(poll_budget(d2, 10000));
			return 0;
		}
	}
	return -1;
}
