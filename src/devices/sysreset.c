/*
 * Reset control register at 0xCF9 (the PIIX/ICH "RCR"): bit 2 (RST_CPU) set
 * asks for a reset, which hvmm turns into a clean stop — a VMM with no
 * firmware to rerun treats "reset" as "the guest is done". Bit 1 (SYS_RST,
 * hard vs soft) only selects the kind of reset, so it is kept, not acted on.
 *
 * 0xCF9 sits inside the PCI configuration ports 0xCF8-0xCFF. When pci.c
 * owns that range (pci_init before sysreset_create), this device registers
 * nothing and pci.c forwards byte accesses at 0xCF9 to sysreset_io_*().
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "devices_priv.h"

#define SYSRESET_PORT 0xcf9
#define SYSRESET_RST_CPU 0x04

struct sysreset {
	struct dev_ctl ctl; /* a reset request stops the VM */
	struct bus *pio;
	_Atomic uint8_t value; /* last value written, read back without RST_CPU */
};

static uint8_t sysreset_get(struct sysreset *s)
{
	return s->value & (uint8_t)~SYSRESET_RST_CPU;
}

static void sysreset_set(struct sysreset *s, uint8_t value)
{
	s->value = value;
	if (value & SYSRESET_RST_CPU)
		dev_ctl_stop(&s->ctl, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest reset via port 0xcf9");
}

static uint64_t sysreset_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset;
	(void)size;
	return sysreset_get(opaque);
}

static void sysreset_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	sysreset_set(opaque, (uint8_t)value);
}

uint8_t sysreset_io_read(struct sysreset *s)
{
	return s ? sysreset_get(s) : 0xff;
}

void sysreset_io_write(struct sysreset *s, uint8_t value)
{
	if (s)
		sysreset_set(s, value);
}

/* ---- snapshot: the register as last written ---- */

struct sysreset_snap {
	uint8_t value;
};

static int sysreset_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct sysreset *s = dev;
	(void)err, (void)n;
	struct sysreset_snap w;
	memset(&w, 0, sizeof(w));
	w.value = s->value;
	snap_put(b, &w, sizeof(w));
	return 0;
}

static int sysreset_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct sysreset *s = dev;
	struct sysreset_snap w;
	if (devices_snap_version("sysreset", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("sysreset", c, err, n) < 0)
		return -1;
	/* Only kept: a value with RST_CPU set asked for the reset that ended
	 * the old VM's run already, so it requests nothing now. */
	s->value = w.value;
	return 0;
}

static const struct bus_ops sysreset_ops = {
	.read = sysreset_read,
	.write = sysreset_write,
};

static int sysreset_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct sysreset *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ctl = env->ctl;
	s->pio = env->pio;
	/* PCI already owns 0xCF8-0xCFF: it forwards 0xCF9 to us (it finds us
	 * in the registry as "sysreset"). */
	if (!bus_find(env->pio, SYSRESET_PORT, 1)) {
		int r = bus_register(env->pio, SYSRESET_PORT, 1, &sysreset_ops, s, "reset control");
		if (r < 0) {
			free(s);
			return r;
		}
	}
	*dev = s;
	return 0;
}

static void sysreset_reset(void *dev)
{
	struct sysreset *s = dev;
	s->value = 0;
}

static void sysreset_destroy(void *dev)
{
	devices_bus_forget(((struct sysreset *)dev)->pio, dev);
	free(dev);
}

const struct dev_ops sysreset_dev_ops = {
	.name = "sysreset",
	.desc = "reset control (0xcf9)",
	.create = sysreset_create,
	.reset = sysreset_reset,
	.snap = { .name = "sysreset", .version = 1, .save = sysreset_snap_save, .load = sysreset_snap_load },
	.destroy = sysreset_destroy,
};
