/*
 * virtio_pci: the virtio 1.2 modern PCI transport (§4.1) for hvmm's device
 * models (see virtio.h for the layout the guest sees).
 *
 * BAR 0 (16 KiB, memory, 64-bit):
 *   0x0000 common configuration   (VIRTIO_PCI_CAP_COMMON_CFG)
 *   0x1000 ISR status             (VIRTIO_PCI_CAP_ISR_CFG)
 *   0x2000 device configuration   (VIRTIO_PCI_CAP_DEVICE_CFG, if the model has one)
 *   0x3000 notify, 4 bytes/queue  (VIRTIO_PCI_CAP_NOTIFY_CFG, multiplier 4)
 * BAR 2 (4 KiB): MSI-X table at 0, PBA at 0x800 (pci_msix.c serves both).
 *
 * Threads and locking:
 *   - vCPU threads reach the BARs through pci.c, which holds the PCI
 *     function's lock (pci_dev_lock) around every BAR access and hook. That
 *     lock is the transport's lock too: feature, status and queue set-up
 *     state only change under it.
 *   - Every queue, and everything the model does with one, runs on the
 *     event-loop thread: notifies (eventfd → virtio_notify_cb), the model's
 *     driver_ok and the reset. So a device reset never races a queue_notify
 *     in progress: the vCPU writing status 0 marks the reset pending, kicks
 *     the control eventfd and waits (at most VIRTIO_RESET_WAIT_S) while the
 *     loop runs the model's reset between two callbacks, without any lock
 *     (it may drain its back end); then the vCPU, which still holds the
 *     device lock, clears the transport state and status reads 0 when the
 *     write returns. If the loop is busy longer, the vCPU gives up waiting,
 *     status keeps reading non-zero (§4.1.4.3.2: the driver waits for 0),
 *     every other write is ignored, and the loop finishes the reset itself
 *     under the device lock. The loop never takes the device lock while a
 *     vCPU waits (reset_lock hands the finish over), so no deadlock.
 *   - Interrupts (pci_msix_notify, pci_intx_set) take only pci's inner MSI-X
 *     lock, so any thread may raise them with or without the device lock.
 *   - Lock order: pci device lock → reset_lock → (pci's MSI-X lock). The
 *     loop never waits for a vCPU; a vCPU waits for the loop only in a
 *     status-0 write, bounded, and nothing the loop runs meanwhile needs
 *     this device's lock.
 * Without an event loop (dev_env's loop NULL: unit tests, the fuzzer) the
 * same actions run inline on the calling thread.
 *
 * A function is created from its struct dev_env (the handles: guest memory,
 * the loop, KVM's VM fd, the PCI host, the IOMMU, the registry) and keeps
 * only those; the registry types of virtio_devs.c create and destroy it.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../evloop.h"
#include "../iommu.h"
#include "../pci.h"
#include "../util.h"
#include "../vm_config.h"
#include "virtio.h"
#include "virtio_pci_priv.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* §4.1.4 capability types */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define PCI_CAP_ID_VNDR 0x09

#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

/* BAR 0 layout */
#define VIRTIO_BAR0_SIZE 0x4000
#define VIRTIO_COMMON_OFF 0x0000
#define VIRTIO_COMMON_LEN 0x38
#define VIRTIO_ISR_OFF 0x1000
#define VIRTIO_ISR_LEN 4
#define VIRTIO_DEVCFG_OFF 0x2000
#define VIRTIO_DEVCFG_MAX 0x1000
#define VIRTIO_NOTIFY_OFF 0x3000
#define VIRTIO_NOTIFY_MULT 4
#define VIRTIO_MSIX_BAR 2
#define VIRTIO_MSIX_BAR_SIZE 0x1000
#define VIRTIO_MSIX_PBA_OFF 0x800

/* common configuration fields (§4.1.4.3) */
enum {
	CC_DFSELECT = 0x00,
	CC_DF = 0x04,
	CC_GFSELECT = 0x08,
	CC_GF = 0x0c,
	CC_MSIX_CONFIG = 0x10,
	CC_NUM_QUEUES = 0x12,
	CC_STATUS = 0x14,
	CC_CFG_GEN = 0x15,
	CC_Q_SELECT = 0x16,
	CC_Q_SIZE = 0x18,
	CC_Q_MSIX = 0x1a,
	CC_Q_ENABLE = 0x1c,
	CC_Q_NOFF = 0x1e,
	CC_Q_DESC = 0x20,
	CC_Q_DRIVER = 0x28,
	CC_Q_DEVICE = 0x30,
};
static const struct { uint8_t off, len; } virtio_cc_fields[] = {
	{ CC_DFSELECT, 4 }, { CC_DF, 4 },        { CC_GFSELECT, 4 },   { CC_GF, 4 },
	{ CC_MSIX_CONFIG, 2 }, { CC_NUM_QUEUES, 2 }, { CC_STATUS, 1 }, { CC_CFG_GEN, 1 },
	{ CC_Q_SELECT, 2 }, { CC_Q_SIZE, 2 },     { CC_Q_MSIX, 2 },     { CC_Q_ENABLE, 2 },
	{ CC_Q_NOFF, 2 },   { CC_Q_DESC, 8 },     { CC_Q_DRIVER, 8 },   { CC_Q_DEVICE, 8 },
};

/* how long a vCPU writing status 0 waits for the loop's half of the reset */
#define VIRTIO_RESET_WAIT_S 2

/* ---- small helpers ---- */

static inline void virtio_count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void virtio_efd_kick(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is saturated, which still means "kicked" */
}

static void virtio_efd_drain(int fd)
{
	uint64_t cnt;
	ssize_t r = read(fd, &cnt, sizeof(cnt));
	(void)r; /* EAGAIN: nothing pending */
}

/* Raise an interrupt: MSI-X vector `vec` when MSI-X is on, else the ISR bit and INTx.
 * Any thread, any lock state. */
static void virtio_raise(struct virtio_dev *d, uint16_t vec, uint8_t isr_bit)
{
	if (pci_msix_enabled(d->pci)) {
		/* §4.1.5.1.2: with MSI-X, only the config bit goes to ISR as well */
		if (isr_bit == VIRTIO_ISR_CONFIG)
			atomic_fetch_or(&d->isr, isr_bit);
		if (vec != VIRTIO_NO_VECTOR)
			pci_msix_notify(d->pci, vec);
		return;
	}
	atomic_fetch_or(&d->isr, isr_bit);
	pci_intx_set(d->pci, true);
}

/* ---- ioeventfds ---- */

static int virtio_ioeventfd_one(struct virtio_dev *d, unsigned q, uint64_t addr, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = d->ioeventfd_len,
		.fd = d->q[q].efd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};
	return ioctl(d->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void virtio_ioeventfd_unregister(struct virtio_dev *d)
{
	if (!d->ioeventfd_base)
		return;
	for (unsigned q = 0; q < d->ops->nr_queues; q++)
		virtio_ioeventfd_one(d, q, d->ioeventfd_base + VIRTIO_NOTIFY_OFF + q * VIRTIO_NOTIFY_MULT,
				     false);
	d->ioeventfd_base = 0;
}

/* One ioeventfd per queue on its notify slot at BAR 0 = `bar`. Any length
 * when KVM allows it (a driver may kick with a 16- or 32-bit write), else
 * the 16-bit write §4.1.5.2 describes. On failure notifies still work
 * through the MMIO exit. Device lock held. */
static void virtio_ioeventfd_register(struct virtio_dev *d, uint64_t bar)
{
	virtio_ioeventfd_unregister(d);
	if (d->ioeventfd_off)
		return;
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		uint64_t addr = bar + VIRTIO_NOTIFY_OFF + q * VIRTIO_NOTIFY_MULT;
		int r = virtio_ioeventfd_one(d, q, addr, true);
		if (r == -EINVAL && q == 0 && d->ioeventfd_len == 0) {
			d->ioeventfd_len = 2;
			r = virtio_ioeventfd_one(d, q, addr, true);
		}
		if (r < 0) {
			/* E.g. the guest put BAR 0 over another device's notify
			 * slots (EEXIST). Kicks still arrive by MMIO exit while
			 * it stays there; the next move tries again. */
			if (!d->ioeventfd_warned) {
				d->ioeventfd_warned = true;
				util_err("%s: KVM_IOEVENTFD at %#llx: %s; queue notifies exit to hvmm",
					 d->ops->name, (unsigned long long)addr, strerror(-r));
			}
			for (unsigned i = 0; i < q; i++)
				virtio_ioeventfd_one(d, i, bar + VIRTIO_NOTIFY_OFF + i * VIRTIO_NOTIFY_MULT,
						     false);
			return;
		}
	}
	d->ioeventfd_base = bar;
}

/* pci.c: BAR `bar` now decodes at addr (or stopped decoding). Device lock held. */
static void virtio_bar_hook(void *opaque, unsigned bar, uint64_t addr, bool decoding)
{
	struct virtio_dev *d = opaque;
	if (bar != 0)
		return;
	if (decoding)
		virtio_ioeventfd_register(d, addr);
	else
		virtio_ioeventfd_unregister(d);
}

/* ---- queues, reset and DRIVER_OK: event-loop thread ---- */

static void virtio_handle_notify(struct virtio_dev *d, unsigned q)
{
	if (!atomic_load(&d->running) || (atomic_load(&d->status) & VIRTIO_STATUS_NEEDS_RESET)) {
		/* Before DRIVER_OK the driver must not kick (§3.1.1 step 8 ends
		 * set-up); count it. Between DRIVER_OK and the loop's driver_ok
		 * the kick is redundant: virtio_do_driver_ok polls every queue. */
		if (!(atomic_load(&d->status) & VIRTIO_STATUS_DRIVER_OK))
			virtio_count(&d->st.early_notifies);
		return;
	}
	virtio_count(&d->st.notifies);
	if (d->ops->queue_notify && virtio_queue(d, q))
		d->ops->queue_notify(d, q);
}

static void virtio_notify_cb(void *opaque, uint32_t events)
{
	(void)events;
	struct virtio_queue_state *qs = opaque;
	virtio_efd_drain(qs->efd);
	virtio_handle_notify(qs->dev, qs->index);
}

/* The transport half of a reset: registers back to their reset values,
 * status 0 last. Device lock held. */
static void virtio_reset_finish(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		struct virtio_queue_state *qs = &d->q[q];
		vq_stop(&qs->vq);
		qs->size = d->ops->queue_max;
		atomic_store(&qs->msix_vector, VIRTIO_NO_VECTOR);
		qs->enabled = false;
		qs->desc = qs->driver = qs->device = 0;
	}
	d->dfselect = d->gfselect = 0;
	d->guest_features = d->features = 0;
	d->queue_select = 0;
	atomic_store(&d->msix_config, VIRTIO_NO_VECTOR);
	atomic_store(&d->isr, 0);
	d->reset_pending = false;
	atomic_store(&d->logged, false);
	virtio_count(&d->st.resets);
	atomic_store(&d->status, 0); /* last: the driver may now go on */
	pci_intx_set(d->pci, false);
}

/* Event-loop thread (or inline): the model's half, then the transport's,
 * which the vCPU waiting in virtio_reset_request does if it still waits. */
static void virtio_do_reset(struct virtio_dev *d)
{
	atomic_store(&d->running, false);
	/* The model first, with no lock held: it may wait for its back end
	 * (io_uring, sockets). After this no buffer of the old rings is used. */
	if (d->ops->reset)
		d->ops->reset(d);
	if (!d->inline_mode)
		for (unsigned q = 0; q < d->ops->nr_queues; q++)
			virtio_efd_drain(d->q[q].efd); /* stale kicks of the old driver */

	pthread_mutex_lock(&d->reset_lock);
	if (d->reset_waiter) {
		/* It holds the device lock: hand the rest over to it. */
		d->reset_model_done = true;
		pthread_cond_signal(&d->reset_cond);
		pthread_mutex_unlock(&d->reset_lock);
		return;
	}
	pthread_mutex_unlock(&d->reset_lock);
	pci_dev_lock(d->pci);
	virtio_reset_finish(d);
	pci_dev_unlock(d->pci);
}

static void virtio_do_driver_ok(struct virtio_dev *d)
{
	uint8_t s = atomic_load(&d->status);
	if (!(s & VIRTIO_STATUS_DRIVER_OK) || (s & VIRTIO_STATUS_NEEDS_RESET) || atomic_load(&d->running))
		return;
	atomic_store(&d->running, true); /* first: driver_ok may use the queues */
	if (d->ops->driver_ok)
		d->ops->driver_ok(d);
	/* Kicks before DRIVER_OK were ignored: look at every queue once. */
	for (unsigned q = 0; q < d->ops->nr_queues; q++)
		if (d->ops->queue_notify && virtio_queue(d, q))
			d->ops->queue_notify(d, q);
}

void virtio_dev_reset(struct virtio_dev *d)
{
	/* Nobody waits: the vCPUs and the loop are parked, and a request still
	 * posted for the loop belongs to the driver session reset here. */
	atomic_store(&d->ctl_req, 0);
	atomic_store(&d->running, false);
	if (d->ops->reset)
		d->ops->reset(d);
	if (!d->inline_mode)
		for (unsigned q = 0; q < d->ops->nr_queues; q++)
			virtio_efd_drain(d->q[q].efd);
	pci_dev_lock(d->pci);
	virtio_reset_finish(d);
	atomic_store(&d->config_generation, 0); /* as created: nobody reads it now */
	pci_dev_unlock(d->pci);
	/* The configuration space as created, the way a restore sets it (BARs
	 * and their ioeventfds moved back, MSI-X off). */
	pci_dev_reset(d->pci);
}

void virtio_ctl_run(struct virtio_dev *d)
{
	unsigned req = atomic_exchange(&d->ctl_req, 0);
	if (req & VIRTIO_CTL_RESET) {
		virtio_do_reset(d);
		/* A DRIVER_OK taken in the same word was posted before this reset
		 * finished (status writes are ignored while one is pending), so it
		 * belongs to the session just reset. Acting on it would walk the
		 * queues while the vCPU finishes the reset and clears them
		 * (virtio_reset_finish), and leave `running` set into the next
		 * session, whose driver_ok the model would then never see. */
		return;
	}
	if (req & VIRTIO_CTL_DRIVER_OK)
		virtio_do_driver_ok(d); /* checks the status again: a reset may have come first */
}

static void virtio_ctl_cb(void *opaque, uint32_t events)
{
	(void)events;
	struct virtio_dev *d = opaque;
	virtio_efd_drain(d->ctl_efd);
	virtio_ctl_run(d);
}

/* Queue a control request for the loop (or note it for an inline run after
 * the caller drops the device lock). */
static void virtio_ctl_post(struct virtio_dev *d, unsigned req)
{
	atomic_fetch_or(&d->ctl_req, req);
	if (!d->inline_mode)
		virtio_efd_kick(d->ctl_efd);
}

/* ---- common configuration: vCPU thread, device lock held ---- */

static uint64_t virtio_cc_get(struct virtio_dev *d, unsigned field)
{
	struct virtio_queue_state *qs =
		d->queue_select < d->ops->nr_queues ? &d->q[d->queue_select] : NULL;
	switch (field) {
	case CC_DFSELECT: return d->dfselect;
	case CC_DF: return d->dfselect < 2 ? (uint32_t)(d->host_features >> (32 * d->dfselect)) : 0;
	case CC_GFSELECT: return d->gfselect;
	case CC_GF: return d->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * d->gfselect)) : 0;
	case CC_MSIX_CONFIG: return atomic_load(&d->msix_config);
	case CC_NUM_QUEUES: return d->ops->nr_queues;
	case CC_STATUS: return atomic_load(&d->status);
	case CC_CFG_GEN: return atomic_load(&d->config_generation);
	case CC_Q_SELECT: return d->queue_select;
	/* §4.1.4.3.2: an unavailable queue reads size 0 */
	case CC_Q_SIZE: return qs ? qs->size : 0;
	case CC_Q_MSIX: return qs ? atomic_load(&qs->msix_vector) : VIRTIO_NO_VECTOR;
	case CC_Q_ENABLE: return qs ? qs->enabled : 0;
	case CC_Q_NOFF: return qs ? qs->index : 0;
	case CC_Q_DESC: return qs ? qs->desc : 0;
	case CC_Q_DRIVER: return qs ? qs->driver : 0;
	case CC_Q_DEVICE: return qs ? qs->device : 0;
	}
	return 0;
}

static bool virtio_features_ok(struct virtio_dev *d)
{
	/* §2.2.1: nothing we did not offer; modern drivers only (VERSION_1).
	 * Behind an IOMMU the device only speaks IOVAs: a driver that does
	 * not accept ACCESS_PLATFORM would hand it physical addresses and so
	 * bypass the guest's own DMA isolation; §6.1 lets the device refuse. */
	uint64_t need = (1ull << VIRTIO_F_VERSION_1) |
			(d->host_features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	return !(d->guest_features & ~d->host_features) && (d->guest_features & need) == need;
}

/* The vq_dma translator: the device's requester id through the IOMMU. */
static int virtio_dma_translate(void *opaque, uint64_t iova, bool write, uint64_t *gpa,
				uint64_t *avail)
{
	struct virtio_dev *d = opaque;
	virtio_count(&d->st.dma_translations);
	int r = iommu_translate(d->iommu, pci_dev_sid(d->pci), iova, write, gpa, avail);
	if (r)
		virtio_count(&d->st.dma_faults);
	return r;
}

static uint64_t virtio_dma_generation(void *opaque)
{
	struct virtio_dev *d = opaque;
	return iommu_generation(d->iommu);
}

/* After the lock is dropped: what a write asked for. */
struct virtio_after {
	char needs_reset[80]; /* non-empty: virtio_dev_needs_reset(why) */
	bool inline_ctl;
};

/*
 * Status 0 from a vCPU (device lock held). The model's reset runs on the
 * loop; this vCPU waits for it (bounded) and then finishes the reset itself,
 * so a driver that reads status right after writing 0 already sees the
 * device reset — as on QEMU, and needed when status was 0 before. Only the
 * loop's model half runs meanwhile, and it takes no device lock when a
 * waiter is there. If the loop is busy for longer, the status stays as it
 * was (still "resetting") and the loop finishes the reset when it gets to it.
 */
static void virtio_reset_request(struct virtio_dev *d)
{
	d->reset_pending = true;
	pthread_mutex_lock(&d->reset_lock);
	d->reset_waiter = true;
	d->reset_model_done = false;
	virtio_ctl_post(d, VIRTIO_CTL_RESET);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += VIRTIO_RESET_WAIT_S;
	while (!d->reset_model_done &&
	       pthread_cond_timedwait(&d->reset_cond, &d->reset_lock, &until) != ETIMEDOUT)
		;
	bool done = d->reset_model_done;
	d->reset_waiter = false;
	d->reset_model_done = false;
	pthread_mutex_unlock(&d->reset_lock);
	if (done)
		virtio_reset_finish(d);
}

static void virtio_status_write(struct virtio_dev *d, uint8_t val, struct virtio_after *after)
{
	if (val == 0) {
		if (d->inline_mode) {
			d->reset_pending = true;
			virtio_ctl_post(d, VIRTIO_CTL_RESET);
			after->inline_ctl = true;
		} else {
			virtio_reset_request(d);
		}
		return;
	}
	uint8_t old = atomic_load(&d->status);
	/* The driver sets bits, never clears them (§2.1.2); NEEDS_RESET is ours. */
	uint8_t s = old | (val & (uint8_t)~VIRTIO_STATUS_NEEDS_RESET);
	if ((s & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if (virtio_features_ok(d)) {
			d->features = d->guest_features;
		} else {
			s &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* refused: the driver reads it back */
			virtio_count(&d->st.refused);
		}
	}
	if ((s & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(s & VIRTIO_STATUS_FEATURES_OK)) {
			s &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
			snprintf(after->needs_reset, sizeof(after->needs_reset),
				 "DRIVER_OK without FEATURES_OK");
		} else {
			atomic_store(&d->status, s);
			virtio_ctl_post(d, VIRTIO_CTL_DRIVER_OK);
			after->inline_ctl = d->inline_mode;
			return;
		}
	}
	atomic_store(&d->status, s);
}

static void virtio_queue_enable(struct virtio_dev *d, struct virtio_queue_state *qs,
				struct virtio_after *after)
{
	if (qs->enabled)
		return;
	qs->enabled = true;
	uint8_t s = atomic_load(&d->status);
	int r = VQ_ERR_RING;
	if (s & VIRTIO_STATUS_FEATURES_OK)
		r = vq_start_dma(&qs->vq, d->mem,
				 d->features & (1ull << VIRTIO_F_ACCESS_PLATFORM) ? &d->dma : NULL,
				 qs->size, qs->desc, qs->driver, qs->device,
				 d->features & (1ull << VIRTIO_F_EVENT_IDX),
				 d->features & (1ull << VIRTIO_F_INDIRECT_DESC));
	if (r != VQ_OK)
		snprintf(after->needs_reset, sizeof(after->needs_reset), "queue %u enabled %s",
			 qs->index, !(s & VIRTIO_STATUS_FEATURES_OK) ? "before FEATURES_OK"
				    : r == VQ_ERR_DMA ? "with a ring the IOMMU does not map"
						      : "with a bad ring");
}

static void virtio_cc_set(struct virtio_dev *d, unsigned field, uint64_t v, struct virtio_after *after)
{
	uint8_t s = atomic_load(&d->status);
	struct virtio_queue_state *qs =
		d->queue_select < d->ops->nr_queues ? &d->q[d->queue_select] : NULL;
	/* Queue set-up is frozen once the driver said DRIVER_OK: from then on
	 * the rings belong to the event loop. */
	bool q_writable = qs && !(s & VIRTIO_STATUS_DRIVER_OK) && !qs->enabled;
	switch (field) {
	case CC_DFSELECT: d->dfselect = (uint32_t)v; break;
	case CC_GFSELECT: d->gfselect = (uint32_t)v; break;
	case CC_GF:
		if (d->gfselect < 2 && !(s & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned sh = 32 * d->gfselect;
			d->guest_features = (d->guest_features & ~(0xffffffffull << sh)) |
					    ((uint64_t)(uint32_t)v << sh);
		}
		break;
	case CC_MSIX_CONFIG:
		/* A vector we cannot map reads back as NO_VECTOR (§4.1.5.1.2). */
		atomic_store(&d->msix_config, v < d->nvec ? (uint16_t)v : VIRTIO_NO_VECTOR);
		break;
	case CC_STATUS: virtio_status_write(d, (uint8_t)v, after); break;
	case CC_Q_SELECT: d->queue_select = (uint16_t)v; break;
	case CC_Q_SIZE:
		/* A power of two up to the maximum, else the write is refused
		 * and the driver reads back the size it must use. */
		if (q_writable && v && v <= d->ops->queue_max && !(v & (v - 1)))
			qs->size = (uint16_t)v;
		else if (qs && v != qs->size)
			virtio_count(&d->st.refused);
		break;
	case CC_Q_MSIX:
		if (qs)
			atomic_store(&qs->msix_vector, v < d->nvec ? (uint16_t)v : VIRTIO_NO_VECTOR);
		break;
	case CC_Q_ENABLE:
		/* Writing 0 is forbidden to the driver (§4.1.4.3.2): ignored. */
		if (q_writable && v == 1)
			virtio_queue_enable(d, qs, after);
		break;
	case CC_Q_DESC: if (q_writable) qs->desc = v; break;
	case CC_Q_DRIVER: if (q_writable) qs->driver = v; break;
	case CC_Q_DEVICE: if (q_writable) qs->device = v; break;
	default: break; /* read-only */
	}
}

static uint64_t virtio_cc_read(struct virtio_dev *d, unsigned off, unsigned size)
{
	uint64_t val = 0;
	for (size_t i = 0; i < ARRAY_SIZE(virtio_cc_fields); i++) {
		unsigned fo = virtio_cc_fields[i].off, fl = virtio_cc_fields[i].len;
		if (fo + fl <= off || fo >= off + size)
			continue;
		uint64_t fv = virtio_cc_get(d, fo);
		/* the bytes of this field that fall inside the access */
		for (unsigned b = 0; b < fl; b++)
			if (fo + b >= off && fo + b < off + size)
				val |= ((fv >> (8 * b)) & 0xff) << (8 * (fo + b - off));
	}
	return val;
}

/* Any access size: each field the access touches is merged byte by byte and
 * written whole (a 64-bit address written as two 32-bit halves, §4.1.3.1). */
static void virtio_cc_write(struct virtio_dev *d, unsigned off, unsigned size, uint64_t val,
			    struct virtio_after *after)
{
	for (size_t i = 0; i < ARRAY_SIZE(virtio_cc_fields); i++) {
		unsigned fo = virtio_cc_fields[i].off, fl = virtio_cc_fields[i].len;
		if (fo + fl <= off || fo >= off + size)
			continue;
		uint64_t fv = virtio_cc_get(d, fo);
		for (unsigned b = 0; b < fl; b++)
			if (fo + b >= off && fo + b < off + size) {
				uint64_t byte = (val >> (8 * (fo + b - off))) & 0xff;
				fv = (fv & ~(0xffull << (8 * b))) | (byte << (8 * b));
			}
		virtio_cc_set(d, fo, fv, after);
	}
}

/* ---- BAR 0 ---- */

static uint64_t virtio_bar0_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_dev *d = opaque;
	if (off < VIRTIO_COMMON_OFF + VIRTIO_COMMON_LEN) /* common cfg starts at 0 */
		return virtio_cc_read(d, (unsigned)(off - VIRTIO_COMMON_OFF), size);
	if (off >= VIRTIO_ISR_OFF && off < VIRTIO_ISR_OFF + VIRTIO_ISR_LEN) {
		if (off != VIRTIO_ISR_OFF)
			return 0;
		/* Read clears, and drops INTx (§4.1.4.5). A queue interrupt
		 * raised between the exchange and the drop re-asserts it. */
		uint8_t v = atomic_exchange(&d->isr, 0);
		pci_intx_set(d->pci, false);
		if (atomic_load(&d->isr) && !pci_msix_enabled(d->pci))
			pci_intx_set(d->pci, true);
		return v;
	}
	if (off >= VIRTIO_DEVCFG_OFF && off < VIRTIO_DEVCFG_OFF + VIRTIO_DEVCFG_MAX) {
		unsigned o = (unsigned)(off - VIRTIO_DEVCFG_OFF);
		uint64_t v = 0;
		if (d->ops->config_read && util_range_ok(o, size, d->ops->config_size))
			d->ops->config_read(d, o, &v, size);
		return v;
	}
	return 0; /* notify region and gaps read 0 */
}

static void virtio_bar0_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct virtio_dev *d = opaque;
	struct virtio_after after = { 0 };
	if (off < VIRTIO_COMMON_OFF + VIRTIO_COMMON_LEN) { /* common cfg starts at 0 */
		if (!d->reset_pending)
			virtio_cc_write(d, (unsigned)(off - VIRTIO_COMMON_OFF), size, val, &after);
	} else if (off >= VIRTIO_DEVCFG_OFF && off < VIRTIO_DEVCFG_OFF + VIRTIO_DEVCFG_MAX) {
		unsigned o = (unsigned)(off - VIRTIO_DEVCFG_OFF);
		if (d->ops->config_write && !d->reset_pending &&
		    util_range_ok(o, size, d->ops->config_size))
			d->ops->config_write(d, o, &val, size);
	} else if (off >= VIRTIO_NOTIFY_OFF) {
		/* A kick that exits to hvmm (--no-ioeventfd, or KVM refused
		 * the ioeventfd): the same eventfd, so the loop does the work. */
		unsigned q = (unsigned)((off - VIRTIO_NOTIFY_OFF) / VIRTIO_NOTIFY_MULT);
		if (q < d->ops->nr_queues) {
			if (d->inline_mode)
				virtio_handle_notify(d, q);
			else
				virtio_efd_kick(d->q[q].efd);
		}
	}
	/* ISR writes are ignored (read-only) */

	if (after.needs_reset[0])
		virtio_dev_needs_reset(d, after.needs_reset);
	if (after.inline_ctl) {
		/* No loop: run it here. The model's reset/driver_ok must not run
		 * under the device lock (they may call back into us). */
		pci_dev_unlock(d->pci);
		virtio_ctl_run(d);
		pci_dev_lock(d->pci);
	}
}

static const struct bus_ops virtio_bar0_ops = {
	.read = virtio_bar0_read,
	.write = virtio_bar0_write,
};

/* BAR 2 holds only the MSI-X table and PBA, which pci_msix.c serves. */
static uint64_t virtio_bar2_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque, (void)off, (void)size;
	return 0;
}

static void virtio_bar2_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	(void)opaque, (void)off, (void)size, (void)val;
}

static const struct bus_ops virtio_bar2_ops = {
	.read = virtio_bar2_read,
	.write = virtio_bar2_write,
};

/* ---- the interface for models ---- */

void *virtio_dev_opaque(struct virtio_dev *d)
{
	return d->opaque;
}

uint64_t virtio_dev_features(struct virtio_dev *d)
{
	return d->features;
}

struct virtqueue *virtio_queue(struct virtio_dev *d, unsigned q)
{
	/* Only while live: §3.1.1, no buffer is used before DRIVER_OK, and none
	 * after DEVICE_NEEDS_RESET. */
	/* `running` first: it orders us after the vCPU's vq_start (its status
	 * store, which the loop loaded before setting running). */
	if (q >= d->ops->nr_queues || !atomic_load(&d->running) || !d->q[q].vq.avail)
		return NULL;
	return &d->q[q].vq;
}

void virtio_queue_interrupt(struct virtio_dev *d, unsigned q)
{
	struct virtqueue *vq = virtio_queue(d, q);
	if (!vq)
		return; /* not live (any more): no interrupt for a dead ring */
	if (!vq_need_interrupt(vq)) {
		virtio_count(&d->st.suppressed);
		return;
	}
	virtio_count(&d->st.interrupts);
	virtio_raise(d, atomic_load(&d->q[q].msix_vector), VIRTIO_ISR_QUEUE);
}

void virtio_config_changed(struct virtio_dev *d)
{
	atomic_fetch_add(&d->config_generation, 1);
	virtio_count(&d->st.interrupts);
	virtio_raise(d, atomic_load(&d->msix_config), VIRTIO_ISR_CONFIG);
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	uint8_t old = atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET);
	if (old & VIRTIO_STATUS_NEEDS_RESET)
		return;
	atomic_store(&d->running, false);
	virtio_count(&d->st.needs_reset);
	/* Once per device until the guest resets it: a guest must not be able
	 * to flood hvmm's stderr. */
	if (!atomic_exchange(&d->logged, true)) {
		util_err("%s (%02x:%02x.%x): guest driver error: %s; device needs reset",
			 d->ops->name, 0, pci_dev_devfn(d->pci) >> 3, pci_dev_devfn(d->pci) & 7,
			 why ? why : "?");
	}
	/* §2.1.2: SHOULD send a configuration change notification */
	virtio_count(&d->st.interrupts);
	virtio_raise(d, atomic_load(&d->msix_config), VIRTIO_ISR_CONFIG);
}

int virtio_queue_pop(struct virtio_dev *d, unsigned q, struct vq_elem *e)
{
	struct virtqueue *vq = virtio_queue(d, q);
	if (!vq || (atomic_load(&d->status) & VIRTIO_STATUS_NEEDS_RESET))
		return 0;
	int r = vq_pop(vq, e);
	if (r < 0) {
		char why[128];
		snprintf(why, sizeof(why), "queue %u: %s", q, vq_err_str(r));
		virtio_dev_needs_reset(d, why);
	}
	return r;
}

void virtio_dev_get_stats(struct virtio_dev *d, struct virtio_dev_stats *out)
{
	*out = (struct virtio_dev_stats){
		.notifies = atomic_load(&d->st.notifies),
		.interrupts = atomic_load(&d->st.interrupts),
		.suppressed = atomic_load(&d->st.suppressed),
		.needs_reset = atomic_load(&d->st.needs_reset),
		.early_notifies = atomic_load(&d->st.early_notifies),
		.resets = atomic_load(&d->st.resets),
		.refused = atomic_load(&d->st.refused),
		.dma_translations = atomic_load(&d->st.dma_translations),
		.dma_faults = atomic_load(&d->st.dma_faults),
	};
	for (unsigned q = 0; q < d->ops->nr_queues; q++)
		out->bad_chains += __atomic_load_n(&d->q[q].vq.errors, __ATOMIC_RELAXED);
}

const char *virtio_dev_name(struct virtio_dev *d)
{
	return d->ops->name;
}

unsigned virtio_dev_devfn(struct virtio_dev *d)
{
	return pci_dev_devfn(d->pci);
}

uint8_t virtio_dev_status(struct virtio_dev *d)
{
	return atomic_load(&d->status);
}

unsigned virtio_devices(const struct dev_registry *r, struct virtio_dev **out, unsigned max)
{
	unsigned n = 0;
	for (int i = 0; r && i < r->nr && n < max; i++)
		if (virtio_is_type(r->v[i].ops))
			out[n++] = r->v[i].dev;
	return n;
}

/* ---- creation and tear-down ---- */

static uint32_t virtio_class(uint16_t type)
{
	switch (type) {
	case VIRTIO_ID_NET: return 0x020000;     /* network, Ethernet */
	case VIRTIO_ID_BLOCK: return 0x010000;   /* mass storage, SCSI (as QEMU) */
	case VIRTIO_ID_CONSOLE: return 0x078000; /* communication, other */
	default: return 0xff0000;                /* unclassified */
	}
}

/* struct virtio_pci_cap (§4.1.4) after the id/next bytes; notify adds the multiplier. */
static int virtio_add_cap(struct pci_dev *p, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
	uint8_t body[18] = { 0 };
	unsigned cap_len = notify ? 20 : 16;
	body[0] = (uint8_t)cap_len;
	body[1] = type;
	body[2] = 0; /* BAR 0 */
	body[3] = 0; /* id */
	memcpy(body + 6, &off, 4);
	memcpy(body + 10, &len, 4);
	if (notify) {
		uint32_t mult = VIRTIO_NOTIFY_MULT;
		memcpy(body + 14, &mult, 4);
	}
	return pci_cap_add(p, PCI_CAP_ID_VNDR, cap_len, body, NULL) ? 0 : -ENOSPC;
}

/* Undo virtio_pci_create; with `destroy_model`, the model's destroy comes
 * last of all uses of d->ops (a model may keep its ops in the state it frees). */
static void virtio_dev_free(struct virtio_dev *d, bool destroy_model)
{
	if (!d->inline_mode && d->loop) {
		for (unsigned q = 0; q < d->ops->nr_queues; q++)
			if (d->q[q].efd >= 0)
				evloop_del(d->loop, d->q[q].efd);
		if (d->ctl_efd >= 0)
			evloop_del(d->loop, d->ctl_efd);
	}
	if (d->pci) {
		pci_dev_lock(d->pci);
		virtio_ioeventfd_unregister(d);
		pci_dev_set_bar_hook(d->pci, NULL, NULL);
		pci_dev_unlock(d->pci);
	}
	for (unsigned q = 0; q < d->ops->nr_queues; q++)
		if (d->q[q].efd >= 0)
			close(d->q[q].efd);
	if (d->ctl_efd >= 0)
		close(d->ctl_efd);
	if (destroy_model && d->ops->destroy)
		d->ops->destroy(d);
	pthread_cond_destroy(&d->reset_cond);
	pthread_mutex_destroy(&d->reset_lock);
	free(d);
}

struct virtio_dev *virtio_pci_create(const struct dev_env *env, const struct virtio_dev_ops *ops, void *opaque)
{
	if (!ops || !ops->nr_queues || ops->nr_queues > VIRTIO_MAX_QUEUES || !ops->queue_max ||
	    ops->queue_max > VQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)) ||
	    ops->config_size > VIRTIO_DEVCFG_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (!env->pci || !env->mem) {
		errno = ENODEV;
		return NULL;
	}
	struct virtio_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->mem = env->mem;
	d->loop = env->loop;
	d->vm_fd = env->vm_fd;
	d->iommu = env->iommu;
	d->reg = env->reg;
	d->ops_copy = *ops;
	d->ops = &d->ops_copy;
	d->opaque = opaque;
	d->nvec = ops->nr_queues + 1;
	d->host_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) |
			   (1ull << VIRTIO_F_INDIRECT_DESC) | ops->features;
	/* Behind the VT-d unit the device's DMA is translated (§6.1). */
	if (env->iommu)
		d->host_features |= 1ull << VIRTIO_F_ACCESS_PLATFORM;
	d->dma = (struct vq_dma){ virtio_dma_translate, virtio_dma_generation, d };
	d->inline_mode = !env->loop;
	d->ioeventfd_off = (env->cfg && env->cfg->no_ioeventfd) || env->vm_fd < 0 || d->inline_mode;
	d->ctl_efd = -1;
	pthread_mutex_init(&d->reset_lock, NULL);
	pthread_cond_init(&d->reset_cond, NULL);
	atomic_store(&d->msix_config, VIRTIO_NO_VECTOR);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		d->q[q] = (struct virtio_queue_state){ .dev = d, .index = q, .efd = -1 };
		d->q[q].size = ops->queue_max;
		atomic_store(&d->q[q].msix_vector, VIRTIO_NO_VECTOR);
	}

	int err = 0;
	for (unsigned q = 0; q < ops->nr_queues && !err; q++) {
		d->q[q].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->q[q].efd < 0)
			err = errno;
	}
	if (!err) {
		d->ctl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->ctl_efd < 0)
			err = errno;
	}
	if (err) {
		virtio_dev_free(d, false);
		errno = err;
		return NULL;
	}

	struct pci_dev_info info = {
		.vendor_id = VIRTIO_PCI_VENDOR,
		.device_id = VIRTIO_PCI_DEVICE_BASE + ops->device_type,
		.subsys_vendor_id = VIRTIO_PCI_VENDOR,
		.subsys_id = VIRTIO_PCI_DEVICE_BASE + ops->device_type,
		.revision = 1, /* §4.1.2.1: modern-only devices have revision >= 1 */
		.class_code = virtio_class(ops->device_type),
		.intx_pin = 1,
		.name = ops->name,
	};
	struct pci_dev *p = pci_dev_add(env->pci, &info);
	if (!p) {
		err = errno;
		virtio_dev_free(d, false);
		errno = err;
		return NULL;
	}
	d->pci = p;
	/* The function stays on the bus from here (pci_dev_add has no undo):
	 * failures below leave it with dead BARs, and the VM is not started. */
	if (!pci_bar_add(p, 0, VIRTIO_BAR0_SIZE, &virtio_bar0_ops, d) ||
	    !pci_bar_add(p, VIRTIO_MSIX_BAR, VIRTIO_MSIX_BAR_SIZE, &virtio_bar2_ops, d)) {
		err = errno ? errno : ENOSPC;
		goto fail;
	}
	if ((err = -pci_msix_init(p, d->nvec, VIRTIO_MSIX_BAR, 0, VIRTIO_MSIX_PBA_OFF)))
		goto fail;
	if ((err = -virtio_add_cap(p, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_COMMON_OFF, VIRTIO_COMMON_LEN, false)) ||
	    (err = -virtio_add_cap(p, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_NOTIFY_OFF,
				   ops->nr_queues * VIRTIO_NOTIFY_MULT, true)) ||
	    (err = -virtio_add_cap(p, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFF, VIRTIO_ISR_LEN, false)))
		goto fail;
	/* A device without configuration (rng) has no device cap (§4.1.4.6). */
	if (ops->config_size &&
	    (err = -virtio_add_cap(p, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVCFG_OFF,
				   (uint32_t)ops->config_size, false)))
		goto fail;
	if (!d->inline_mode) {
		for (unsigned q = 0; q < ops->nr_queues && !err; q++)
			err = -evloop_add(d->loop, d->q[q].efd, EPOLLIN, virtio_notify_cb, &d->q[q]);
		if (!err)
			err = -evloop_add(d->loop, d->ctl_efd, EPOLLIN, virtio_ctl_cb, d);
		if (err)
			goto fail;
	}
	pci_dev_lock(p);
	pci_dev_set_bar_hook(p, virtio_bar_hook, d);
	pci_dev_unlock(p);
	if ((err = -pci_dev_reset_mark(p)))
		goto fail;
	/* last: the registry must not keep a device that failed */
	if ((err = -virtio_snap_register(d)))
		goto fail;
	return d;
fail:
	virtio_dev_free(d, false);
	errno = err;
	return NULL;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (!d)
		return;
	/* The loop is stopped: nothing else touches the queues. */
	if (d->ops->reset)
		d->ops->reset(d);
	virtio_dev_free(d, true);
}
