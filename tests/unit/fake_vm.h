/*
 * Test doubles for the device unit tests: a struct vm with buses but no KVM
 * (vm_fd = -1, so devices skip their ioctls), and a vm_stop() that records
 * what a device asked for. Include once per test program; the program's own
 * vm_stop() replaces the library's at link time.
 */
#ifndef HVMM_TEST_FAKE_VM_H
#define HVMM_TEST_FAKE_VM_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snapshot.h"
#include "vm.h"

static int stop_calls;
static enum vm_stop_reason stop_reason;
static int stop_status;
static char stop_msg[256];

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm;
	stop_calls++;
	stop_reason = reason;
	stop_status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(stop_msg, sizeof(stop_msg), fmt, ap);
	va_end(ap);
}

static inline void fake_vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	stop_calls = 0;
	stop_reason = VM_STOP_NONE;
	stop_status = -1;
	stop_msg[0] = 0;
}

/* Free every device and the buses (devices find their state through them). */
static inline void fake_vm_free(struct vm *vm)
{
	devices_destroy(vm);
	snapshot_registry_free(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
}

#endif
