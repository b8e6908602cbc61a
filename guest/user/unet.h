/* unet: the ring-3 body of test=virtio-net-tcp (unet.c) and what it reports. */
#ifndef GUEST_UNET_H
#define GUEST_UNET_H

#include <stdint.h>

/* arg: TCP port | bench MiB << 16 | interrupt mode << 40. */
static inline long u_net_arg(uint16_t port, uint32_t mib, int irq)
{
	return (long)port | (long)(mib & 0xffffff) << 16 | (long)(irq ? 1 : 0) << 40;
}

enum u_net_status {
	U_NET_OK = 0,
	U_NET_NO_DEVICE = 1,
	U_NET_DHCP = 2,
	U_NET_ACCEPT = 3,
	U_NET_RECV = 4,
	U_NET_SEND = 5,
	U_NET_CLOSE = 6,
};

struct u_net_result {
	uint32_t ip, mask, router, dns, lease_s;
	uint64_t dhcp_us;
	char request[128];
	uint64_t bench_bytes, bench_us;
	uint64_t retransmits, arp_requests, arp_replies, rx_frames, tx_frames;
};

extern volatile struct u_net_result u_net_res;
long u_net(long arg);

#endif
