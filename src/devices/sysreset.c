/*
 * Reset control register at 0xCF9 (the PIIX/ICH "RCR"): bit 2 (RST_CPU) set
 * asks for a reset, which hvmm turns into a clean stop — a VMM with no
 * firmware to rerun treats "reset" as "the guest is done". Bit 1 (SYS_RST,
 * hard vs soft) only selects the kind of reset, so it is kept, not acted on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../util.h"
#include "../vm.h"
#include "devices_priv.h"

#define SYSRESET_PORT 0xcf9
#define SYSRESET_RST_CPU 0x04

struct sysreset {
	struct vm *vm;
	_Atomic uint8_t value; /* last value written, read back without RST_CPU */
};

static uint64_t sysreset_read(void *opaque, uint64_t offset, unsigned size)
{
	struct sysreset *s = opaque;
	(void)offset;
	(void)size;
	return s->value & (uint8_t)~SYSRESET_RST_CPU;
}

static void sysreset_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct sysreset *s = opaque;
	(void)offset;
	(void)size;
	s->value = (uint8_t)value;
	if (value & SYSRESET_RST_CPU)
		vm_stop(s->vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest reset via port 0xcf9");
}

static const struct bus_ops sysreset_ops = {
	.read = sysreset_read,
	.write = sysreset_write,
};

int sysreset_create(struct vm *vm)
{
	struct sysreset *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	int r = bus_register(&vm->pio, SYSRESET_PORT, 1, &sysreset_ops, s, "reset control");
	if (r < 0)
		free(s);
	return r;
}

void sysreset_destroy(struct vm *vm)
{
	devices_free_opaque(&vm->pio, &sysreset_ops, free);
}
