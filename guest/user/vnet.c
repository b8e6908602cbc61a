/*
 * vnet: the ring-3 virtio-net driver behind vnet.h. One device, one rx and
 * one tx queue, no offloads: the device hands whole frames behind a 12-byte
 * virtio_net_hdr_v1 (VERSION_1 always has num_buffers), one 2 KiB DMA buffer
 * per descriptor, the buffer index being the descriptor's head index.
 */
#include "vnet.h"

#include "usys.h"
#include "virtio.h"
#include "vtest.h"

#define VNET_HDR 12
#define VNET_BUF 2048
#define VNET_F_MAC 5
#define VNET_QMAX 256

struct vnet {
	struct vdev dev;
	struct vq rx, tx;
	uint8_t *rxbuf, *txbuf;
	uint64_t rxbuf_pa, txbuf_pa;
	uint8_t mac[6];
	bool open;
};

static struct vnet vnet_dev;
unsigned vnet_open_flags; /* extra VIO_NO_* flags (vtest sets them from the command line) */

static int vnet_post_rx(struct vnet *n, uint16_t slot)
{
	struct vq_sg sg = { n->rxbuf_pa + (uint64_t)slot * VNET_BUF, VNET_BUF };
	return vq_add(&n->rx, &sg, 0, 1, slot);
}

struct vnet *vnet_open(bool irq)
{
	struct vnet *n = &vnet_dev;
	if (n->open) /* a second open starts over: the device forgets the old rings */
		vio_reset(&n->dev);
	n->open = false;
	if (vio_open(&n->dev, VIRTIO_ID_NET, 0, 1ull << VNET_F_MAC, (irq ? VIO_IRQ : 0) | vnet_open_flags) < 0 ||
	    vio_queue(&n->dev, &n->rx, 0, VNET_QMAX) < 0 || vio_queue(&n->dev, &n->tx, 1, VNET_QMAX) < 0) {
		u_note("vnet: %s", n->dev.err);
		if (n->dev.pci_index >= 0)
			vio_reset(&n->dev);
		return 0;
	}
	n->rxbuf = vio_dma_alloc((uint64_t)n->rx.size * VNET_BUF, 4096, &n->rxbuf_pa);
	n->txbuf = vio_dma_alloc((uint64_t)n->tx.size * VNET_BUF, 4096, &n->txbuf_pa);
	if (!n->rxbuf || !n->txbuf) {
		u_note("vnet: out of DMA memory");
		vio_reset(&n->dev);
		return 0;
	}
	for (uint16_t i = 0; i < n->rx.size; i++)
		vnet_post_rx(n, i);
	if (vio_driver_ok(&n->dev) < 0) {
		u_note("vnet: %s", n->dev.err);
		vio_reset(&n->dev);
		return 0;
	}
	vq_kick(&n->rx);
	if (n->dev.features & (1ull << VNET_F_MAC)) {
		vio_cfg_read(&n->dev, 0, n->mac, 6);
	} else { /* no MAC from the device: a locally administered one */
		static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
		u_copy(n->mac, mac, 6);
	}
	n->open = true;
	return n;
}

struct vdev *vnet_vdev(struct vnet *n)
{
	return &n->dev;
}

void vnet_mac(struct vnet *n, uint8_t mac[6])
{
	u_copy(mac, n->mac, 6);
}

int vnet_send(struct vnet *n, const void *frame, unsigned len)
{
	while (vq_get(&n->tx, 0, 0) > 0) /* reclaim sent buffers */
		;
	if (len < 14 || len > VNET_MTU_FRAME || n->tx.num_free == 0)
		return -1;
	uint16_t slot = n->tx.free_head; /* one-descriptor chains: the head is the slot */
	uint8_t *b = n->txbuf + (uint64_t)slot * VNET_BUF;
	u_zero(b, VNET_HDR); /* no checksum offload, no GSO */
	u_copy(b + VNET_HDR, frame, len);
	struct vq_sg sg = { n->txbuf_pa + (uint64_t)slot * VNET_BUF, VNET_HDR + len };
	if (vq_add(&n->tx, &sg, 1, 0, slot) < 0)
		return -1;
	vq_kick(&n->tx);
	return 0;
}

int vnet_recv(struct vnet *n, void *buf, unsigned max)
{
	for (;;) {
		uint64_t slot;
		uint32_t len;
		int r = vq_get(&n->rx, &slot, &len);
		if (r <= 0)
			return 0; /* nothing (or a device bug: r < 0, reported as nothing) */
		unsigned got = 0;
		if (len > VNET_HDR && len <= VNET_BUF) {
			got = len - VNET_HDR;
			if (got > max)
				got = max;
			u_copy(buf, n->rxbuf + slot * VNET_BUF + VNET_HDR, got);
		}
		vnet_post_rx(n, (uint16_t)slot);
		vq_kick(&n->rx);
		if (got)
			return (int)got;
	}
}

void vnet_wait(struct vnet *n, uint64_t us)
{
	vq_wait(&n->rx, us);
}

uint64_t vnet_now_us(void)
{
	return vio_now_us();
}
