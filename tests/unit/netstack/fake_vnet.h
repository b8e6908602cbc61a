/*
 * fake_vnet: guest/user/vnet.h implemented on the host with libslirp, so the
 * guest's network stack (guest/user/net.c, compiled natively) talks to the
 * same user-mode network hvmm and QEMU put behind virtio-net — without a VM.
 * Frames the stack sends go to slirp_input(); frames slirp emits are queued
 * for vnet_recv(). slirp's sockets and timers run inside vnet_recv() and
 * vnet_wait(), on the calling thread only.
 */
#ifndef FAKE_VNET_H
#define FAKE_VNET_H

#include <stdint.h>

#include "../../../guest/user/vnet.h"

/* Creates the slirp instance (10.0.2.0/24, DHCP from 10.0.2.15) and the
 * device; hostfwd 127.0.0.1:host_port -> 10.0.2.15:guest_port when
 * host_port != 0. NULL on failure. */
struct vnet *fake_vnet_new(int host_port, int guest_port);
void fake_vnet_free(struct vnet *n);
/* Drops every tx_every-th frame the stack sends and every rx_every-th frame
 * it would receive (0: none), to exercise retransmission. */
void fake_vnet_set_loss(struct vnet *n, unsigned tx_every, unsigned rx_every);
/* Queues a frame for vnet_recv() as if it came from the network. */
void fake_vnet_inject(struct vnet *n, const void *frame, unsigned len);
/* Takes the next frame the stack sent (0 if none) instead of giving it to
 * slirp, while capture is on. */
void fake_vnet_capture(struct vnet *n, int on);
int fake_vnet_captured(struct vnet *n, void *buf, unsigned max);

/* Called with every frame the stack sends, before it goes to slirp (a test
 * may inject answers of its own from here). */
void fake_vnet_set_tx_hook(struct vnet *n, void (*fn)(struct vnet *n, const uint8_t *frame, unsigned len, void *ctx),
			   void *ctx);

struct fake_vnet_counts {
	uint64_t tx, rx, tx_dropped, rx_dropped;
};
void fake_vnet_counts(struct vnet *n, struct fake_vnet_counts *c);

#endif
