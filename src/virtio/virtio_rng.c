/*
 * virtio-rng (§5.4): one request queue; every device-writable buffer the
 * driver posts comes back filled from the host's getrandom(). No features,
 * no configuration. Runs on the event-loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio.h"

#define RNG_QUEUE_MAX 256
/* Bytes per chain at most: a driver asking for more gets this much (it
 * reads `len` of the used element), so one request cannot stall the loop. */
#define RNG_MAX_PER_CHAIN (64u << 10)

struct virtio_rng {
	struct vq_elem elem; /* ~32 KiB: kept off the stack */
};

/* Fill iov with random bytes, at most max; returns bytes written. */
static uint32_t rng_fill(const struct iovec *iov, unsigned n, uint32_t max)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < n && done < max; i++) {
		size_t want = iov[i].iov_len;
		if (want > max - done)
			want = max - done;
		size_t got = 0;
		while (got < want) {
			ssize_t r = getrandom((char *)iov[i].iov_base + got, want - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done + (uint32_t)got; /* host entropy gone: hand back what we have */
			got += (size_t)r;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_rng *r = virtio_dev_opaque(d);
	struct virtqueue *vq = virtio_queue(d, q);
	if (!vq)
		return;
	bool pushed = false;
	for (;;) {
		int got = virtio_queue_pop(d, q, &r->elem);
		if (got <= 0)
			break; /* empty, or broken: the transport set NEEDS_RESET */
		/* Readable buffers have no meaning here; they are returned untouched. */
		uint32_t n = rng_fill(r->elem.in, r->elem.n_in, RNG_MAX_PER_CHAIN);
		vq_push_elem(vq, &r->elem, n);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(d, q);
}

static void rng_destroy(struct virtio_dev *d)
{
	free(virtio_dev_opaque(d));
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_type = VIRTIO_ID_RNG,
	.features = 0,
	.nr_queues = 1,
	.queue_max = RNG_QUEUE_MAX,
	.config_size = 0,
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
	/* Snapshots: the transport and the queue are all there is. A chain is
	 * popped, filled and pushed within one callback, so none is in flight
	 * while the loop is parked. */
	.snap_stateless = true,
};

int virtio_rng_create(const struct dev_env *env, struct virtio_dev **out)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	struct virtio_dev *d = virtio_pci_create(env, &rng_ops, r);
	if (!d) {
		int e = errno ? -errno : -ENOMEM;
		free(r);
		return e;
	}
	return virtio_model_done(env, d, out);
}
