/*
 * Test doubles for the device unit tests: a struct vm with buses but no KVM
 * (vm_fd = -1, so devices skip their ioctls), and the handles a device is
 * created with (struct dev_env, vm->env) as recorders of the test's own:
 *
 *  - the stop request counts what a device asked for (stop_calls,
 *    stop_reason, stop_status, stop_msg);
 *  - an interrupt line records its level per pin (fake_irq_level,
 *    fake_irq_rises) and goes on to fake_irq_hook when a test wires it
 *    somewhere (the split irqchip's PIC and IOAPIC: fake_irq_split).
 *
 * Every device, the virtio transport and models included, stops the VM
 * through its env's stop handle. Only the event loop (evloop.c: a callback
 * that fails) still calls vm_stop(), so that is replaced at link time,
 * recording into the same counters. Include once per test program.
 */
#ifndef HVMM_TEST_FAKE_VM_H
#define HVMM_TEST_FAKE_VM_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "device.h"
#include "devices/devices.h"
#include "iommu.h"
#include "snapshot.h"
#include "vm.h"

static int stop_calls;
static enum vm_stop_reason stop_reason;
static int stop_status;
static char stop_msg[256];

static bool fake_irq_level[IRQ_IOAPIC_PINS];
static unsigned fake_irq_rises[IRQ_IOAPIC_PINS];
/* Where a line goes after it is recorded (NULL: nowhere). */
static void (*fake_irq_hook)(struct vm *vm, unsigned pin, bool level);

static void fake_record_stop(enum vm_stop_reason reason, int status, const char *msg)
{
	stop_calls++;
	stop_reason = reason;
	stop_status = status;
	snprintf(stop_msg, sizeof(stop_msg), "%s", msg);
}

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fake_record_stop(reason, status, msg);
}

static void fake_env_stop(void *ctx, enum vm_stop_reason reason, int status, const char *msg)
{
	(void)ctx;
	fake_record_stop(reason, status, msg);
}

static void fake_env_irq(void *ctx, unsigned pin, bool level)
{
	if (pin < IRQ_IOAPIC_PINS) {
		fake_irq_rises[pin] += level && !fake_irq_level[pin];
		fake_irq_level[pin] = level;
	}
	if (fake_irq_hook)
		fake_irq_hook(ctx, pin, level);
}

/* As irq.c in split mode: an ISA line reaches the 8259 and the IOAPIC
 * (those of vm's registry). For fake_irq_hook. */
static __attribute__((unused)) void fake_irq_split(struct vm *vm, unsigned pin, bool level)
{
	if (pin >= IRQ_IOAPIC_PINS)
		return;
	if (pin && pin < IRQ_ISA_IRQS)
		pic_set_irq(dev_find(&vm->devs, "pic", 0), pin == IRQ_PIT_PIN ? 0 : pin, level);
	ioapic_set_line(dev_find(&vm->devs, "ioapic", 0), pin, level);
}

/* vm->env from what vm has now (call again once a test made its event
 * loop or PCI host). */
static inline void fake_vm_env(struct vm *vm)
{
	vm->env = (struct dev_env){
		.cfg = &vm->cfg,
		.pio = &vm->pio,
		.mmio = &vm->mmio,
		.mem = &vm->mem,
		.loop = vm->evloop,
		.pci = vm->pci,
		.vm_fd = vm->vm_fd,
		.ctl = { .ctx = vm, .stop = fake_env_stop, .stopping = &vm->stopping, .paused = &vm->paused },
		.irq_set = fake_env_irq,
		.irq_ctx = vm,
		.hyperv = vm->hyperv,
		.iommu = vm->iommu,
		.reg = &vm->devs,
	};
}

static inline void fake_vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = vm->kvm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	fake_vm_env(vm);
	stop_calls = 0;
	stop_reason = VM_STOP_NONE;
	stop_status = -1;
	stop_msg[0] = 0;
	memset(fake_irq_level, 0, sizeof(fake_irq_level));
	memset(fake_irq_rises, 0, sizeof(fake_irq_rises));
	fake_irq_hook = NULL;
}

/* Instance 0 of ops, created from vm->env into vm's registry: the device,
 * or NULL with the reason in fake_err. */
static char fake_err[256];
static inline void *fake_dev_create(struct vm *vm, const struct dev_ops *ops)
{
	int index = 0;
	for (int i = 0; i < vm->devs.nr; i++)
		index += !strcmp(vm->devs.v[i].ops->name, ops->name);
	if (dev_create(&vm->env, ops, index, fake_err, sizeof(fake_err)) < 0)
		return NULL;
	return vm->devs.v[vm->devs.nr - 1].dev;
}

/* The IOMMU from vm->env (as --device intel-iommu with intremap= on or
 * off), given to the devices made after it as dev_create_all gives it;
 * NULL with the reason in fake_err. */
static inline __attribute__((unused)) struct iommu *fake_iommu(struct vm *vm, bool intremap)
{
	enum irqchip_mode chip = vm->cfg.irqchip;
	int ir = vm->cfg.intremap;
	vm->cfg.irqchip = IRQCHIP_SPLIT; /* what intremap needs */
	vm->cfg.intremap = intremap;
	struct iommu *u = fake_dev_create(vm, &iommu_dev_ops);
	vm->cfg.irqchip = chip;
	vm->cfg.intremap = ir;
	vm->iommu = vm->env.iommu = u;
	return u;
}

/* Free every device and the buses. */
static inline void fake_vm_free(struct vm *vm)
{
	dev_destroy_all(&vm->devs);
	vm->iommu = vm->env.iommu = NULL;
	snapshot_registry_free(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
}

#endif
