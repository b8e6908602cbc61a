/*
 * virtio_devs: the virtio devices as registry types (device.h), one per
 * model, in the order vm.c always made them (rng, console, disks, networks),
 * so their PCI slots do not depend on option order.
 *
 * Not converted yet: the transport and the models are still created with
 * the VM (reached through the PCI host: pci_host_vm), and torn down by
 * virtio_destroy_all after the registry's devices. What the registry gives
 * them is their place in the creation order, the snapshot sections (the
 * transport's save and load) and the user's error messages.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../device.h"
#include "../pci.h"
#include "../vm.h"
#include "virtio.h"
#include "virtio_net.h"
#include "virtio_pci_priv.h"

/* The function the model just made: the transport's newest. */
static void *virtio_newest(struct vm *vm)
{
	struct virtio_dev *d[PCI_MAX_SLOTS];
	unsigned n = virtio_devices(vm, d, PCI_MAX_SLOTS);
	return n ? d[n - 1] : NULL;
}

static int virtio_made(struct vm *vm, void **dev)
{
	*dev = virtio_newest(vm);
	return *dev ? 0 : -ENODEV;
}

static int virtio_rng_count(const struct vm_config *cfg)
{
	return cfg->rng;
}

static int virtio_rng_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	struct vm *vm = pci_host_vm(env->pci);
	int r = vm ? virtio_rng_create(vm) : -ENODEV;
	if (r < 0) {
		snprintf(err, n, "--rng: virtio-rng: %s", strerror(-r));
		return r;
	}
	return virtio_made(vm, dev);
}

static int virtio_console_count(const struct vm_config *cfg)
{
	return cfg->console_virtio;
}

static int virtio_console_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	struct vm *vm = pci_host_vm(env->pci);
	int r = vm ? virtio_console_create(vm) : -ENODEV;
	if (r < 0) {
		snprintf(err, n, "--console virtio: virtio-console: %s", strerror(-r));
		return r;
	}
	return virtio_made(vm, dev);
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
	struct vm *vm = pci_host_vm(env->pci);
	int r = vm ? virtio_blk_create_limited(vm, disk->path, disk->readonly, &disk->rl) : -ENODEV;
	if (r < 0) {
		snprintf(err, n, "--disk %s: %s", disk->path,
			 r == -EBUSY ? "locked: in use by another VM" : strerror(-r));
		return DEV_ERR_USAGE;
	}
	return virtio_made(vm, dev);
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
	struct vm *vm = pci_host_vm(env->pci);
	char why[256] = "no PCI host";
	int r = vm ? virtio_net_create_msg(vm, spec, why, sizeof(why)) : -ENODEV;
	if (r < 0) {
		snprintf(err, n, "--network %s: %s", spec, why);
		return r == -EINVAL ? DEV_ERR_USAGE : r;
	}
	return virtio_made(vm, dev);
}

#define VIRTIO_TYPE(tname, cnt, mk)                                                          \
	{                                                                                    \
		.name = tname, .desc = tname, .count = cnt, .create = mk,                    \
		.snap = { .name = tname, .version = 1, .save = virtio_snap_save,             \
			  .load = virtio_snap_load },                                        \
	}

/* No destroy: virtio_destroy_all frees the transport and models, after the
 * registry's devices (vm_destroy). No reset yet: a device reset is the
 * driver's (the status register), not the host's. */
const struct dev_ops virtio_rng_dev_ops = VIRTIO_TYPE("virtio-rng", virtio_rng_count, virtio_rng_dev_create);
const struct dev_ops virtio_console_dev_ops =
	VIRTIO_TYPE("virtio-console", virtio_console_count, virtio_console_dev_create);
const struct dev_ops virtio_blk_dev_ops = VIRTIO_TYPE("virtio-blk", virtio_blk_count, virtio_blk_dev_create);
const struct dev_ops virtio_net_dev_ops = VIRTIO_TYPE("virtio-net", virtio_net_count, virtio_net_dev_create);
