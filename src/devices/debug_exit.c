/*
 * isa-debug-exit: QEMU's test-exit device, here with QEMU's iobase=0xf4,
 * iosize=4. A write of v ends hvmm with status (v << 1) | 1, truncated to 8
 * bits as the process status is; the result is always odd, so it can never be
 * confused with a status hvmm picks itself (all of those are even).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../util.h"
#include "devices_priv.h"

#define DEBUG_EXIT_LEN 4

struct debug_exit {
	struct dev_ctl ctl; /* its one effect: stop the VM */
	struct bus *pio;
};

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	/* Nothing to read: an open bus reads all-ones. */
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct debug_exit *d = opaque;
	(void)offset;
	if (size < 8)
		value &= (1ull << (8 * size)) - 1;
	int status = (int)(((value << 1) | 1) & 0xff);
	dev_ctl_stop(&d->ctl, VM_STOP_DEBUG_EXIT, status, "guest wrote 0x%llx to isa-debug-exit: status %d",
		(unsigned long long)value, status);
}

static const struct bus_ops debug_exit_ops = {
	.read = debug_exit_read,
	.write = debug_exit_write,
};

/* No snapshot section: the device has no guest-visible state at all (a
 * write stops hvmm at once), so there is nothing to save and nothing to
 * restore, and nothing to reset. */
static int debug_exit_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ctl = env->ctl;
	d->pio = env->pio;
	int r = bus_register(env->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, &debug_exit_ops, d, "isa-debug-exit");
	if (r < 0) {
		free(d);
		return r;
	}
	*dev = d;
	return 0;
}

static void debug_exit_destroy(void *dev)
{
	struct debug_exit *d = dev;
	devices_bus_forget(d->pio, d);
	free(d);
}

const struct dev_ops debug_exit_dev_ops = {
	.name = "debug-exit",
	.desc = "isa-debug-exit",
	.create = debug_exit_create,
	.destroy = debug_exit_destroy,
};
