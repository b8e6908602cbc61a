/*
 * net: a tiny ring-3 IPv4 stack over vnet (helper `gnet`): Ethernet II, ARP
 * (request/reply, small cache), IPv4 (no fragments: they are dropped), ICMP
 * echo reply, UDP, a DHCP client and one passive-open TCP connection at a
 * time — enough for the virtio-net test (DHCP from slirp, then a TCP exchange
 * through hostfwd) and for a guest→host throughput benchmark.
 *
 * TCP: MSS option, send window honoured with many segments in flight,
 * go-back-N retransmission on timeout (plus fast retransmit on three
 * duplicate ACKs) for data, SYN-ACK and FIN, zero-window probes, no window
 * scaling, no congestion control (a virtual link to one peer).
 *
 * Compiles freestanding (guest ring 3, -mgeneral-regs-only) and natively on
 * the host, where tests/unit/netstack runs it against libslirp. All state is
 * global: one stack per program.
 */
#ifndef GUEST_NET_H
#define GUEST_NET_H

#include <stdbool.h>
#include <stdint.h>

struct vnet;

struct net_cfg {
	uint32_t ip, mask, router, dns, server; /* host byte order; server: DHCP server */
	uint32_t lease_s;
};

/* DHCP DISCOVER/OFFER/REQUEST/ACK; 0 and *cfg filled, or -1 after timeout_ms. */
int net_dhcp(struct vnet *n, struct net_cfg *cfg, uint32_t timeout_ms);
/* Static configuration instead of DHCP (ip, mask, router are used). */
void net_config(struct vnet *n, const struct net_cfg *cfg);
/* TCP: wait for one incoming connection on port (passive open), then
 * recv/send on it. Each returns bytes, 0 on orderly close by the peer, -1 on
 * error/timeout. net_tcp_send returns once all len bytes are queued (sent or
 * in flight); net_tcp_close sends FIN after everything queued is acknowledged
 * and returns 0 once the FIN is acknowledged. */
int net_tcp_accept(struct vnet *n, uint16_t port, uint32_t timeout_ms);
int net_tcp_recv(struct vnet *n, void *buf, unsigned max, uint32_t timeout_ms);
int net_tcp_send(struct vnet *n, const void *buf, unsigned len, uint32_t timeout_ms);
int net_tcp_close(struct vnet *n, uint32_t timeout_ms);
/* Remote address of the current/last connection (host byte order). */
void net_tcp_peer(uint32_t *ip, uint16_t *port);

/* Counters, for tests and reports. */
struct net_stats {
	uint64_t rx_frames, tx_frames, tx_full;   /* tx_full: vnet_send said the ring is full */
	uint64_t rx_bad;                          /* malformed or bad checksum: dropped */
	uint64_t rx_ignored;                      /* well-formed but not for us / unsupported */
	uint64_t rx_frags;                        /* IPv4 fragments (dropped) */
	uint64_t arp_requests_sent, arp_replies_sent, arp_replies_rcvd;
	uint64_t icmp_echo_replies;
	uint64_t tcp_segs_in, tcp_segs_out, tcp_retransmits, tcp_fast_retransmits;
	uint64_t tcp_rst_sent, tcp_dup_acks, tcp_out_of_order;
	uint64_t tcp_bytes_in, tcp_bytes_out;
};
const struct net_stats *net_stats(void);
/* Forgets everything (configuration, ARP cache, connection, counters). */
void net_reset(void);

#endif
