/*
 * vnet: the ring-3 virtio-net driver's interface to the ring-3 network stack
 * (net.c). The driver (helper `guest`, vnet.c) owns the device; the stack
 * (helper `gnet`) sees only whole Ethernet frames, without the virtio-net
 * header. Polling or interrupt mode is chosen at open.
 */
#ifndef GUEST_VNET_H
#define GUEST_VNET_H

#include <stdbool.h>
#include <stdint.h>

#define VNET_MTU_FRAME 1514 /* largest Ethernet frame (no FCS) the stack sends or gets */

struct vnet; /* driver state, defined in vnet.c */

/* Finds the first virtio-net device, negotiates, posts rx buffers. NULL if none
 * or on error (the reason is written with u_write). irq: wait for MSI-X
 * interrupts instead of spinning. */
struct vnet *vnet_open(bool irq);
void vnet_mac(struct vnet *n, uint8_t mac[6]);
/* Queues one frame (14..VNET_MTU_FRAME bytes) and kicks; 0, or -1 when the tx
 * ring is full (after reclaiming completed buffers) or len is bad. */
int vnet_send(struct vnet *n, const void *frame, unsigned len);
/* Copies the next received frame into buf; its length, 0 if none is waiting. */
int vnet_recv(struct vnet *n, void *buf, unsigned max);
/* Blocks until a frame may be waiting or `us` microseconds passed (interrupt
 * mode: sleeps on the rx vector; polling mode: spins on the used ring). */
void vnet_wait(struct vnet *n, uint64_t us);
/* Microseconds since boot (TSC based, ring 3: no syscall). */
uint64_t vnet_now_us(void);

#endif
