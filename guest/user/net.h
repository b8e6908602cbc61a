/*
 * net: a tiny ring-3 IPv4 stack over vnet (helper `gnet`): ARP, IPv4, ICMP
 * echo reply, UDP, a DHCP client and a TCP endpoint — enough for the
 * virtio-net test (DHCP from slirp, then a TCP exchange through hostfwd) and
 * for a guest→host throughput benchmark. One connection at a time; no IP
 * fragments; no TCP retransmission beyond what a loss-free virtual link needs
 * (documented in net.c).
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
/* TCP: wait for one incoming connection on port (passive open), then
 * recv/send on it. Each returns bytes, 0 on orderly close by the peer, -1 on
 * error/timeout. */
int net_tcp_accept(struct vnet *n, uint16_t port, uint32_t timeout_ms);
int net_tcp_recv(struct vnet *n, void *buf, unsigned max, uint32_t timeout_ms);
int net_tcp_send(struct vnet *n, const void *buf, unsigned len, uint32_t timeout_ms);
int net_tcp_close(struct vnet *n, uint32_t timeout_ms);

#endif
