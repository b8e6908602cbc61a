/*
 * virtio_snap: snapshots of a virtio-pci device — one section per device,
 * named after its model ("virtio-blk"), holding in this order:
 *
 *   1. the PCI function (pci_dev_snap_save: BARs, command, MSI-X table...),
 *   2. the transport: feature selects, offered/driver/accepted features,
 *      device status, config generation, ISR, config vector, queue select,
 *      and per queue its set-up registers and the ring's device-side state
 *      (struct vq_state: last_avail, used idx, event-index state...),
 *   3. the model's own state (its snap_save).
 *
 * A save first finishes what is in flight: a reset the loop had not run yet
 * is run now (the loop is parked), then the model's quiesce completes its
 * back end's requests into the used ring. So the queue state saved has no
 * request that the device popped and has not answered, except what a model
 * saves itself (virtio-console's chain waiting for stdout).
 *
 * A load checks every field as guest input (the features against what this
 * device offers, sizes, vectors, the ring addresses and indices) before the
 * device is changed, restores the queues without resetting their indices or
 * writing guest RAM, and, for a device that was DRIVER_OK, marks it running
 * and calls the model's driver_ok (back ends start; the queue positions are
 * the restored ones). Kicks that were pending in the old process's eventfds
 * are lost with it, so each queue's eventfd is kicked once: when the event
 * loop starts it looks at every queue, as after DRIVER_OK. Nothing raises an
 * interrupt during the load.
 */
#include <stdio.h>
#include <string.h>

#include "../pci.h"
#include "../snapshot.h"
#include "virtio.h"
#include "virtio_pci_priv.h"

#define VIRTIO_SNAP_VERSION 1

struct virtio_snap_dev {
	uint64_t host_features, guest_features, features;
	uint32_t dfselect, gfselect;
	uint16_t msix_config, queue_select, nr_queues;
	uint8_t status, config_generation, isr;
	uint8_t pad[7];
};
_Static_assert(sizeof(struct virtio_snap_dev) == 48, "file layout: no hidden padding");

struct virtio_snap_queue {
	uint64_t desc, driver, device;
	uint16_t size, msix_vector;
	uint8_t enabled;
	uint8_t pad[3];
	struct vq_state vq;
};
_Static_assert(sizeof(struct virtio_snap_queue) == 80, "file layout: no hidden padding");

#define VIRTIO_ISR_ALL 3 /* queue | config */

int virtio_snap_save(void *opaque, struct snap_buf *b, char *err, size_t n)
{
	struct virtio_dev *d = opaque;
	/* A guest's status-0 write whose model half the loop has not run (the
	 * vCPU stopped waiting for it): finish it here, as the loop would
	 * have, rather than save a device half reset. */
	if (!d->inline_mode && (atomic_load(&d->ctl_req) & VIRTIO_CTL_RESET))
		virtio_ctl_run(d);
	if (d->reset_pending) {
		snprintf(err, n, "%s: a device reset is in progress", d->ops->name);
		return -1;
	}
	if (d->ops->quiesce)
		d->ops->quiesce(d);

	pci_dev_snap_save(d->pci, b);

	struct virtio_snap_dev s;
	struct virtio_snap_queue q[VIRTIO_MAX_QUEUES];
	memset(&s, 0, sizeof(s));
	memset(q, 0, sizeof(q));
	pci_dev_lock(d->pci);
	s.host_features = d->host_features;
	s.guest_features = d->guest_features;
	s.features = d->features;
	s.dfselect = d->dfselect;
	s.gfselect = d->gfselect;
	s.msix_config = atomic_load(&d->msix_config);
	s.queue_select = d->queue_select;
	s.nr_queues = (uint16_t)d->ops->nr_queues;
	s.status = atomic_load(&d->status);
	s.config_generation = atomic_load(&d->config_generation);
	s.isr = atomic_load(&d->isr);
	for (unsigned i = 0; i < d->ops->nr_queues; i++) {
		const struct virtio_queue_state *qs = &d->q[i];
		q[i].desc = qs->desc;
		q[i].driver = qs->driver;
		q[i].device = qs->device;
		q[i].size = qs->size;
		q[i].msix_vector = atomic_load(&qs->msix_vector);
		q[i].enabled = qs->enabled;
		vq_save(&qs->vq, &q[i].vq); /* the loop is parked: nobody moves the ring */
	}
	pci_dev_unlock(d->pci);
	snap_put(b, &s, sizeof(s));
	snap_put(b, q, d->ops->nr_queues * sizeof(q[0]));

	if (d->ops->snap_save)
		return d->ops->snap_save(d, b, err, n);
	return 0;
}

static bool virtio_snap_vector_ok(const struct virtio_dev *d, uint16_t v)
{
	return v == VIRTIO_NO_VECTOR || v < d->nvec;
}

/* The transport's half checked as guest input, before anything is applied. */
static int virtio_snap_check(struct virtio_dev *d, const struct virtio_snap_dev *s,
			     const struct virtio_snap_queue *q, char *err, size_t n)
{
	const char *name = d->ops->name;
	if (s->host_features != d->host_features) {
		snprintf(err, n, "%s: offered features %#llx, this device offers %#llx", name,
			 (unsigned long long)s->host_features, (unsigned long long)d->host_features);
		return -1;
	}
	bool fok = s->status & VIRTIO_STATUS_FEATURES_OK;
	if (s->features & ~d->host_features) {
		snprintf(err, n, "%s: accepted features %#llx not offered", name,
			 (unsigned long long)s->features);
		return -1;
	}
	/* At FEATURES_OK the driver's features are accepted and frozen. */
	uint64_t need = (1ull << VIRTIO_F_VERSION_1) |
			(d->host_features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	if (fok ? s->features != s->guest_features || (s->features & need) != need : s->features != 0) {
		snprintf(err, n, "%s: accepted features %#llx do not match status %#x", name,
			 (unsigned long long)s->features, s->status);
		return -1;
	}
	if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !fok) {
		snprintf(err, n, "%s: status %#x: DRIVER_OK without FEATURES_OK", name, s->status);
		return -1;
	}
	/* Zero in every save: a byte the load would drop is a payload this
	 * hvmm did not write. */
	for (unsigned i = 0; i < sizeof(s->pad); i++) {
		if (s->pad[i]) {
			snprintf(err, n, "%s: malformed padding in the transport state", name);
			return -1;
		}
	}
	if (s->isr & ~VIRTIO_ISR_ALL) {
		snprintf(err, n, "%s: isr %#x", name, s->isr);
		return -1;
	}
	if (!virtio_snap_vector_ok(d, s->msix_config)) {
		snprintf(err, n, "%s: config msix vector %u", name, s->msix_config);
		return -1;
	}
	static const struct vq_state off; /* a queue never enabled, or reset */
	for (unsigned i = 0; i < d->ops->nr_queues; i++) {
		const struct virtio_snap_queue *qs = &q[i];
		const struct vq_state *v = &qs->vq;
		const char *why = NULL;
		if (!qs->size || qs->size > d->ops->queue_max || (qs->size & (qs->size - 1)))
			why = "size";
		else if (!virtio_snap_vector_ok(d, qs->msix_vector))
			why = "msix vector";
		else if (qs->enabled > 1 || memcmp(qs->pad, off.pad, sizeof(qs->pad)))
			why = "enable";
		else if (!qs->enabled && memcmp(v, &off, sizeof(off)))
			why = "ring state on a queue not enabled";
		/* A queue enabled before FEATURES_OK was never started: the
		 * transport set NEEDS_RESET instead. */
		else if (qs->enabled && !v->started && !v->broken &&
			 !(s->status & VIRTIO_STATUS_NEEDS_RESET))
			why = "enabled, neither started nor failed";
		else if (v->started && (!fok || v->size != qs->size || v->desc != qs->desc ||
					v->avail != qs->driver || v->used != qs->device))
			why = "ring does not match its registers";
		else if (v->started && (v->event_idx != !!(s->features & (1ull << VIRTIO_F_EVENT_IDX)) ||
					v->indirect != !!(s->features & (1ull << VIRTIO_F_INDIRECT_DESC))))
			why = "ring features do not match the accepted ones";
		if (why) {
			snprintf(err, n, "%s: queue %u: %s", name, i, why);
			return -1;
		}
	}
	return 0;
}

int virtio_snap_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct virtio_dev *d = opaque;
	const char *name = d->ops->name;
	if (version != VIRTIO_SNAP_VERSION) {
		snprintf(err, n, "%s: version %u unknown", name, version);
		return -1;
	}
	if (pci_dev_snap_load(d->pci, c, err, n) < 0)
		return -1;
	struct virtio_snap_dev s;
	struct virtio_snap_queue q[VIRTIO_MAX_QUEUES];
	snap_get(c, &s, sizeof(s));
	if (!c->bad && s.nr_queues != d->ops->nr_queues) {
		snprintf(err, n, "%s: %u queues, this device has %u", name, s.nr_queues, d->ops->nr_queues);
		return -1;
	}
	snap_get(c, q, d->ops->nr_queues * sizeof(q[0]));
	if (c->bad) {
		snprintf(err, n, "%s: transport state truncated", name);
		return -1;
	}
	if (virtio_snap_check(d, &s, q, err, n) < 0)
		return -1;

	const struct vq_dma *dma = s.features & (1ull << VIRTIO_F_ACCESS_PLATFORM) ? &d->dma : NULL;
	int r = 0;
	pci_dev_lock(d->pci);
	d->dfselect = s.dfselect;
	d->gfselect = s.gfselect;
	d->guest_features = s.guest_features;
	d->features = s.features;
	atomic_store(&d->msix_config, s.msix_config);
	d->queue_select = s.queue_select;
	atomic_store(&d->config_generation, s.config_generation);
	atomic_store(&d->isr, s.isr);
	for (unsigned i = 0; i < d->ops->nr_queues && !r; i++) {
		struct virtio_queue_state *qs = &d->q[i];
		qs->desc = q[i].desc;
		qs->driver = q[i].driver;
		qs->device = q[i].device;
		qs->size = q[i].size;
		atomic_store(&qs->msix_vector, q[i].msix_vector);
		qs->enabled = q[i].enabled;
		/* not vq_start: that would zero the used index in guest RAM */
		if (q[i].vq.started || q[i].vq.broken) {
			int e = vq_restore(&qs->vq, d->mem, dma, &q[i].vq);
			if (e != VQ_OK) {
				snprintf(err, n, "%s: queue %u: %s", name, i, vq_err_str(e));
				r = -1;
			}
		}
	}
	atomic_store(&d->status, s.status);
	pci_dev_unlock(d->pci);
	if (r < 0)
		return -1;

	/* Live again as it was: the model's load may use its queues already. */
	bool live = (s.status & VIRTIO_STATUS_DRIVER_OK) && !(s.status & VIRTIO_STATUS_NEEDS_RESET);
	atomic_store(&d->running, live);
	if (d->ops->snap_load && d->ops->snap_load(d, c, err, n) < 0)
		return -1;
	if (c->bad) {
		snprintf(err, n, "%s: model state truncated", name);
		return -1;
	}
	if (!live)
		return 0;
	if (d->ops->driver_ok)
		d->ops->driver_ok(d);
	/* The loop, once started, looks at every queue (kicks of the old
	 * process were lost with its eventfds). Without a loop (tests) the
	 * driver's next kick does it. */
	if (!d->inline_mode)
		for (unsigned i = 0; i < d->ops->nr_queues; i++)
			virtio_efd_kick(d->q[i].efd);
	return 0;
}

int virtio_snap_register(struct virtio_dev *d)
{
	if (!d->ops->snap_save && !d->ops->snap_stateless) {
		dev_registry_unsupported(d->reg, d->ops->name);
		return 0;
	}
	/* The save and load are every model's type's (virtio_devs.c). */
	return 0;
}
