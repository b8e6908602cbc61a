/*
 * virtio_devs: the virtio devices as registry types (device.h), one per
 * model, in the order vm.c always made them (rng, console, disks, networks),
 * so their PCI slots do not depend on option order.
 *
 * Each create builds the model and its PCI function from the dev_env
 * handles alone (virtio_pci_create keeps guest memory, the event loop, KVM's
 * VM fd, the IOMMU and the registry); each destroy undoes one, in the
 * registry's reverse order. A snapshot section holds the transport's state
 * and the model's (virtio_snap.c). The reset op is the transport's
 * device-status-0 reset, run by the host: the model drops its requests and
 * the function reads as a device the driver has not touched.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../device.h"
#include "../pci.h"
#include "../vm_config.h"
#include "virtio.h"
#include "virtio_net.h"
#include "virtio_pci_priv.h"

static int virtio_rng_count(const struct vm_config *cfg)
{
	return cfg->rng;
}

static int virtio_rng_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	int r = virtio_rng_create(env, (struct virtio_dev **)dev);
	if (r < 0)
		snprintf(err, n, "--rng: virtio-rng: %s", strerror(-r));
	return r;
}

static int virtio_console_count(const struct vm_config *cfg)
{
	return cfg->console_virtio;
}

static int virtio_console_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	int r = virtio_console_create(env, (struct virtio_dev **)dev);
	if (r < 0)
		snprintf(err, n, "--console virtio: virtio-console: %s", strerror(-r));
	return r;
}

static int virtio_blk_count(const struct vm_config *cfg)
{
	return cfg->nr_disks;
}

/* Every failure is the user's: the image is theirs (missing, locked by
 * another VM, unreadable). */
static int virtio_blk_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	const struct vm_disk *disk = &env->cfg->disks[i];
	int r = virtio_blk_create_limited(env, disk->path, disk->readonly, &disk->rl, (struct virtio_dev **)dev);
	if (r < 0) {
		snprintf(err, n, "--disk %s: %s", disk->path,
			 r == -EBUSY ? "locked: in use by another VM" : strerror(-r));
		return DEV_ERR_USAGE;
	}
	return 0;
}

static int virtio_net_count(const struct vm_config *cfg)
{
	return cfg->nr_nets;
}

/* The model words its own error: the back end knows what went wrong. A
 * bad spec is the user's mistake, the rest the host's. */
static int virtio_net_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	const char *spec = env->cfg->net[i];
	char why[256] = "";
	int r = virtio_net_create_msg(env, spec, i, (struct virtio_dev **)dev, why, sizeof(why));
	if (r < 0) {
		snprintf(err, n, "--network %s: %s", spec, why[0] ? why : strerror(-r));
		return r == -EINVAL ? DEV_ERR_USAGE : r;
	}
	return 0;
}

/* What a guest's write of 0 to device_status does (virtio_pci.c), from the
 * host: the model's reset, then the transport's registers. */
static void virtio_dev_reset_op(void *dev)
{
	virtio_dev_reset(dev);
}

static void virtio_dev_destroy_op(void *dev)
{
	virtio_dev_destroy(dev);
}

#define VIRTIO_TYPE(tname, cnt, mk)                                                          \
	{                                                                                    \
		.name = tname, .desc = tname, .count = cnt, .create = mk,                    \
		.reset = virtio_dev_reset_op, .destroy = virtio_dev_destroy_op,              \
		.snap = { .name = tname, .version = 1, .save = virtio_snap_save,             \
			  .load = virtio_snap_load },                                        \
	}

const struct dev_ops virtio_rng_dev_ops = VIRTIO_TYPE("virtio-rng", virtio_rng_count, virtio_rng_dev_create);
const struct dev_ops virtio_console_dev_ops =
	VIRTIO_TYPE("virtio-console", virtio_console_count, virtio_console_dev_create);
const struct dev_ops virtio_blk_dev_ops = VIRTIO_TYPE("virtio-blk", virtio_blk_count, virtio_blk_dev_create);
const struct dev_ops virtio_net_dev_ops = VIRTIO_TYPE("virtio-net", virtio_net_count, virtio_net_dev_create);

bool virtio_is_type(const struct dev_ops *ops)
{
	return ops == &virtio_rng_dev_ops || ops == &virtio_console_dev_ops || ops == &virtio_blk_dev_ops ||
	       ops == &virtio_net_dev_ops;
}

/* The type of a function by its model's device id (rng: the only other). */
static const struct dev_ops *virtio_type_of(struct virtio_dev *d)
{
	switch (d->ops->device_type) {
	case VIRTIO_ID_CONSOLE: return &virtio_console_dev_ops;
	case VIRTIO_ID_BLOCK: return &virtio_blk_dev_ops;
	case VIRTIO_ID_NET: return &virtio_net_dev_ops;
	default: return &virtio_rng_dev_ops;
	}
}

int virtio_model_done(const struct dev_env *env, struct virtio_dev *d, struct virtio_dev **out)
{
	if (out) {
		*out = d;
		return 0;
	}
	if (!env->reg || dev_registry_add(env->reg, virtio_type_of(d), d) < 0) {
		virtio_dev_destroy(d);
		return -ENOMEM;
	}
	return 0;
}
