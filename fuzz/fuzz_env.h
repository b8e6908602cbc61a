/* fuzz_env: the handles a fuzz target's devices are created with (struct
 * dev_env), wired as vm.c wires them: lines through irq.c, a stop through
 * vm_stop (the target's own), the IOAPIC's routes through irq.c and the
 * IOMMU (vm->iommu, which is also env's iommu once the target made one), a
 * passed-through function's MSI GSIs through irq.c. Include after vm.h. */
#ifndef HVMM_FUZZ_ENV_H
#define HVMM_FUZZ_ENV_H

#include "device.h"
#include "iommu.h"
#include "irq.h"
#include "vm.h"

static void fz_env_irq(void *ctx, unsigned pin, bool level)
{
	irq_set_line(ctx, pin, level);
}

static void fz_env_stop(void *ctx, enum vm_stop_reason reason, int status, const char *msg)
{
	vm_stop(ctx, reason, status, "%s", msg);
}

static __attribute__((unused)) int fz_env_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_route_msi(ctx, gsi, addr, data);
}

static __attribute__((unused)) int fz_env_remap(void *ctx, uint16_t sid, bool verify, uint64_t *addr,
						uint32_t *data)
{
	return iommu_remap_msi(((struct vm *)ctx)->iommu, sid, verify, addr, data);
}

static __attribute__((unused)) void fz_env_fault(void *ctx, uint16_t sid, uint64_t addr, int reason)
{
	iommu_ir_fault(((struct vm *)ctx)->iommu, sid, addr, reason);
}

static __attribute__((unused)) int fz_env_gsi_alloc(void *ctx)
{
	return irq_msi_alloc(ctx);
}

static __attribute__((unused)) int fz_env_gsi_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_msi_route(ctx, gsi, addr, data);
}

/* vm->env from what vm has now; msi: the IOAPIC's routing (routes through
 * irq.c; remap adds the IOMMU). */
static inline void fz_vm_env(struct vm *vm, bool routes, bool remap)
{
	vm->env = (struct dev_env){
		.cfg = &vm->cfg,
		.pio = &vm->pio,
		.mmio = &vm->mmio,
		.mem = &vm->mem,
		.loop = vm->evloop,
		.pci = vm->pci,
		.vm_fd = vm->vm_fd,
		.ctl = { .ctx = vm, .stop = fz_env_stop, .stopping = &vm->stopping, .paused = &vm->paused },
		.irq_set = fz_env_irq,
		.irq_ctx = vm,
		.hyperv = vm->hyperv,
		.iommu = vm->iommu,
		.reg = &vm->devs,
	};
	/* a device's own MSI GSIs (vfio), through irq.c as vm.c wires them */
	vm->env.msi = (struct dev_msi){ .ctx = vm, .gsi_alloc = fz_env_gsi_alloc, .gsi_route = fz_env_gsi_route };
	if (routes)
		vm->env.msi.route = fz_env_route;
	if (remap) {
		vm->env.msi.remap = fz_env_remap;
		vm->env.msi.fault = fz_env_fault;
	}
}

/* The next instance of ops from vm->env, recorded in vm's registry; NULL
 * if it could not be made. */
static inline void *fz_dev(struct vm *vm, const struct dev_ops *ops)
{
	char err[256];
	int index = 0;
	for (int i = 0; i < vm->devs.nr; i++)
		index += vm->devs.v[i].ops == ops;
	if (dev_create(&vm->env, ops, index, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	return vm->devs.v[vm->devs.nr - 1].dev;
}

#endif
