/*
 * isa-debug-exit: QEMU's test-exit device, here with QEMU's iobase=0xf4,
 * iosize=4. A write of v ends hvmm with status (v << 1) | 1, truncated to 8
 * bits as the process status is; the result is always odd, so it can never be
 * confused with a status hvmm picks itself (all of those are even).
 */
#include <stdint.h>

#include "../util.h"
#include "../vm.h"
#include "devices_priv.h"

#define DEBUG_EXIT_LEN 4

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	/* Nothing to read: an open bus reads all-ones. */
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct vm *vm = opaque;
	(void)offset;
	if (size < 8)
		value &= (1ull << (8 * size)) - 1;
	int status = (int)(((value << 1) | 1) & 0xff);
	vm_stop(vm, VM_STOP_DEBUG_EXIT, status, "guest wrote 0x%llx to isa-debug-exit: status %d",
		(unsigned long long)value, status);
}

static const struct bus_ops debug_exit_ops = {
	.read = debug_exit_read,
	.write = debug_exit_write,
};

/* No snapshot registration: the device has no state at all (a write stops
 * hvmm at once), so there is nothing to save and nothing to restore. */
int debug_exit_create(struct vm *vm)
{
	/* Stateless: the VM itself is the opaque pointer, nothing to free. */
	return bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, &debug_exit_ops, vm,
			    "isa-debug-exit");
}

void debug_exit_destroy(struct vm *vm)
{
	(void)vm; /* no state of its own */
}
