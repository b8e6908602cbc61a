/*
 * virtio: the ring-3 virtio 1.2 modern-PCI driver library — device discovery
 * through SYS_PCI_DEV, the transport (status, features, queues, MSI-X table)
 * through the BAR mappings, and split virtqueues in SYS_DMA memory.
 *
 * Polling or interrupt mode per device: in polling mode every queue's MSI-X
 * table entry stays masked and the used ring is spun on; in interrupt mode the
 * entries are unmasked and vq_wait() sleeps in SYS_IRQ_WAIT. A device can
 * switch between the two without a reset (vio_set_irq).
 *
 * EVENT_IDX and INDIRECT_DESC are used when the device offers them, unless
 * VIO_NO_EVENT_IDX / VIO_NO_INDIRECT ask otherwise (so both ways are tested).
 */
#ifndef GUEST_USER_VIRTIO_H
#define GUEST_USER_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "../pci.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* vio_open flags */
#define VIO_IRQ 1          /* interrupt mode from the start */
#define VIO_NO_EVENT_IDX 2 /* do not negotiate EVENT_IDX */
#define VIO_NO_INDIRECT 4  /* do not negotiate INDIRECT_DESC */

#define VQ_MAX 256    /* largest queue this driver sets up */
#define VQ_IND_MAX 16 /* descriptors per indirect table */
#define VIO_MAX_QUEUES 4

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/* One buffer of a request: guest-physical address and length. */
struct vq_sg {
	uint64_t pa;
	uint32_t len;
};

struct vdev;

struct vq {
	struct vdev *dev;
	uint16_t index, size;
	volatile struct vq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint32_t *used;  /* flags|idx in word 0, then {id, len} pairs, avail_event */
	uint64_t desc_pa, avail_pa, used_pa;
	volatile uint16_t *notify;
	struct vq_desc *ind; /* VQ_MAX indirect tables of VQ_IND_MAX, one per head */
	uint64_t ind_pa;
	uint16_t free_head, num_free, avail_idx, kicked_idx, last_used;
	int16_t msix;   /* MSI-X table entry, -1: none */
	int16_t vec;    /* u_msi_count index of that entry */
	uint16_t next[VQ_MAX];    /* free list / chain links (driver-private) */
	uint16_t chain[VQ_MAX];   /* descriptors of the chain at a head (0: free) */
	uint64_t token[VQ_MAX];
	/* statistics */
	uint64_t kicks, kicks_suppressed, added, completed, irq_waits;
};

struct vdev {
	struct pci_udev pci;
	int pci_index;
	uint16_t type;
	uint64_t offered, features; /* by the device; negotiated */
	unsigned vec_base;          /* first of its 4 u_msi_count slots */
	bool irq, event_idx, indirect;
	volatile uint8_t *common, *isr, *devcfg, *notify_base;
	uint32_t notify_mult, notify_len, devcfg_len;
	volatile uint32_t *msix_table;
	unsigned nq;
	struct vq *q[VIO_MAX_QUEUES];
	char err[96]; /* why open failed */
};

/* MMIO accessors of exact width (virtio 1.2 §4.1.3.1). */
static inline uint8_t mmio_r8(volatile void *p) { return *(volatile uint8_t *)p; }
static inline uint16_t mmio_r16(volatile void *p) { return *(volatile uint16_t *)p; }
static inline uint32_t mmio_r32(volatile void *p) { return *(volatile uint32_t *)p; }
static inline void mmio_w8(volatile void *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static inline void mmio_w16(volatile void *p, uint16_t v) { *(volatile uint16_t *)p = v; }
static inline void mmio_w32(volatile void *p, uint32_t v) { *(volatile uint32_t *)p = v; }
/* Full barrier (store→load ordering) without SSE: a locked no-op. */
static inline void vio_mb(void) { __asm__ volatile("lock addl $0, (%%rsp)" ::: "memory", "cc"); }
static inline void vio_barrier(void) { __asm__ volatile("" ::: "memory"); }

/* ---- DMA memory (SYS_DMA), bump-allocated and reusable after vio_dma_reset --- */
/* `bytes` zeroed, `align`-aligned (power of two, <= 4096 * 16); its physical
 * address in *pa. NULL when out of DMA memory. */
void *vio_dma_alloc(uint64_t bytes, uint64_t align, uint64_t *pa);
/* Forget every allocation (the memory is reused by the next ones). */
void vio_dma_reset(void);
uint64_t vio_dma_pa(const void *va); /* physical address of DMA memory (0 if not DMA) */

/* ---- devices --------------------------------------------------------------- */
/* Finds the nth (0-based) virtio device of `type`, opens it (SYS_PCI_DEV),
 * resets it and negotiates VERSION_1, the ring features allowed by flags and
 * the device features in `want` that it offers. Status is FEATURES_OK after.
 * 0, or -1 with d->err set. */
int vio_open(struct vdev *d, uint16_t type, unsigned nth, uint64_t want, unsigned flags);
/* Sets up queue `index` with at most `max` entries, MSI-X table entry
 * `index` (mod the table size). 0 or -1 (d->err). */
int vio_queue(struct vdev *d, struct vq *q, unsigned index, unsigned max);
/* DRIVER_OK. 0, or -1 if the device refused (DEVICE_NEEDS_RESET / FAILED). */
int vio_driver_ok(struct vdev *d);
/* Device reset (status 0, waits until it reads 0). */
void vio_reset(struct vdev *d);
/* Switches polling ↔ interrupt mode: masks or unmasks the queues' MSI-X entries. */
void vio_set_irq(struct vdev *d, bool irq);
uint8_t vio_status(struct vdev *d);
/* MSI interrupts counted so far on the vectors of the device's queues. */
uint64_t vio_irq_count(struct vdev *d);
/* Device-specific configuration space (read with the generation check). */
void vio_cfg_read(struct vdev *d, unsigned off, void *buf, unsigned len);
const char *vio_type_name(uint16_t type);

/* ---- split virtqueues -------------------------------------------------------- */
/* Adds one chain: n_out device-readable buffers then n_in device-writable
 * ones, remembered by `token`. Uses an indirect table when negotiated and the
 * chain has more than one buffer. 0, or -1 when the ring has no room. */
int vq_add(struct vq *q, const struct vq_sg *sg, unsigned n_out, unsigned n_in, uint64_t token);
/* Publishes the added chains and notifies the device unless it asked not to
 * be (EVENT_IDX avail_event / NO_NOTIFY flag). */
void vq_kick(struct vq *q);
/* Takes one completed chain: 1 (*token, *len set), 0 if none, -1 if the device
 * returned a bad id (a device bug). */
int vq_get(struct vq *q, uint64_t *token, uint32_t *len);
bool vq_has_used(struct vq *q);
/* Waits until the queue has a completed chain or `us` microseconds passed:
 * spins in polling mode, sleeps on the queue's MSI-X vector in interrupt mode.
 * True if something completed. */
bool vq_wait(struct vq *q, uint64_t us);

/* ---- small helpers for ring-3 code ---------------------------------------- */
uint64_t vio_now_us(void);
/* Formats like a minimal snprintf: %s %c %d %u %x %p with l/ll, width, 0-pad. */
int u_fmt(char *buf, unsigned size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A TAP check line (numbered by the kernel) and a "# ..." comment line. */
void u_tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void u_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void u_copy(void *d, const void *s, uint64_t n); /* rep movsb: fast in ring 3 */
void u_zero(void *d, uint64_t n);

#endif
