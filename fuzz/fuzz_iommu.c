/*
 * libFuzzer target for the VT-d unit (src/iommu*.c) and what drives it: a
 * fake VM (no KVM) with 1 MiB of RAM, the IOAPIC, the unit with interrupt
 * remapping and QEMU's edu device. The input is replayed as what a hostile
 * guest controls: any bytes of RAM (root, context, page and interrupt
 * remapping tables, the invalidation queue), the unit's registers at any
 * offset and size, IOAPIC entries, edu's registers (DMA through the unit,
 * MSI through remapping) and its configuration space, and direct
 * translations and remappings for any requester.
 *
 * Besides the sanitizers, checked here: a successful translation hands out
 * a non-empty range that does not wrap; DMA either succeeds or fails whole
 * pages (never touches anything outside RAM: ASan would say); remapping
 * returns a compatibility-format message in the interrupt range.
 *
 * Input: a sequence of operations, the first byte of each selecting it
 * (see fz_run); numbers little-endian, zeros once the input runs out. Seeds
 * (fuzz/gen_seeds.py) set up kvm-unit-tests' tables and a Linux-like queue.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "iommu.h"
#include "pci.h"
#include "snapshot.h"
#include "vm.h"
#include "fuzz_common.h"
#include "fuzz_env.h"

#define FZ_CHECK(c)                                                                         \
	do {                                                                                \
		if (!(c)) {                                                                 \
			fprintf(stderr, "fuzz_iommu: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                            \
		}                                                                           \
	} while (0)

#define FZ_RAM (1ull << 20)

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

static struct vm fz_vm;
static uint64_t fz_edu_bar;
static unsigned fz_edu_devfn;

static void fz_routes_changed(void *ctx)
{
	struct vm *vm = ctx;
	ioapic_reroute_all(dev_find(&vm->devs, "ioapic", 0));
	pci_msix_reroute_all(vm);
}

/* Guest RAM, made by hvmm's own mem_init and kept across inputs: mapping
 * and unmapping 1 MiB for every input cost four syscalls and a page fault
 * per page touched, on a host where syscalls are slow. Between inputs it
 * goes back to zero pages (fz_vm_free). Every FZ_REMAP_EVERY inputs it is
 * freed and made again, so mem_init and mem_free still run inside inputs
 * (libFuzzer counts coverage only there, not in a one-time set-up). */
#define FZ_REMAP_EVERY 256
static struct guest_mem fz_mem;
static unsigned fz_runs;

static void fz_vm_build(void)
{
	if (fz_runs++ % FZ_REMAP_EVERY == 0) {
		mem_free(&fz_mem);
		FZ_CHECK(mem_init(&fz_mem, FZ_RAM) == 0);
	}
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_SPLIT;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	fz_vm.mem = fz_mem;
	fz_vm_env(&fz_vm, true, true);
	FZ_CHECK(fz_dev(&fz_vm, &ioapic_dev_ops));
	irq_attach(&fz_vm, NULL, dev_find(&fz_vm.devs, "ioapic", 0));
	FZ_CHECK(irq_msi_alloc(&fz_vm) >= 0);
	FZ_CHECK(pci_init(&fz_vm) == 0);
	fz_vm.cfg.intremap = 1;
	FZ_CHECK((fz_vm.iommu = fz_dev(&fz_vm, &iommu_dev_ops)));
	iommu_set_routes_hook(fz_vm.iommu, fz_routes_changed, &fz_vm);
	fz_vm.env.pci = fz_vm.pci;
	fz_vm.env.iommu = fz_vm.iommu; /* as dev_create_all: the devices after it */
	FZ_CHECK(fz_dev(&fz_vm, &edu_dev_ops));
	fz_edu_devfn = 8; /* the first slot after the host bridge */
	FZ_CHECK(pci_config_read(&fz_vm, fz_edu_devfn, 0, 4) == 0x11e81234);
	fz_edu_bar = pci_config_read(&fz_vm, fz_edu_devfn, 0x10, 4) & ~0xfull;
}

static void fz_vm_free(void)
{
	dev_destroy_all(&fz_vm.devs); /* edu and the IOAPIC; the bridge and IOMMU are theirs */
	fz_vm.iommu = NULL;
	pci_destroy(&fz_vm);
	irq_destroy(&fz_vm);
	snapshot_registry_free(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	/* zero again, as a fresh mem_init's would be: only the pages this
	 * input touched cost anything */
	FZ_CHECK(madvise(fz_mem.base, fz_mem.ram_size, MADV_DONTNEED) == 0);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

static void fz_mmio(uint64_t addr, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(&fz_vm.mmio, addr, size);
	if (!r || !r->opaque)
		return;
	FZ_LOG("mmio %s %#lx/%u %#lx\n", write ? "write" : "read", addr, size, v);
	if (write)
		r->ops->write(r->opaque, addr - r->base, size, v);
	else
		(void)r->ops->read(r->opaque, addr - r->base, size);
}

static void fz_run(struct fz_in *in)
{
	static uint8_t dma[3 * 4096];
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		switch ((op & 0x7f) % 10) { /* bit 7: write / level, where it matters */
		case 0:
		case 1: { /* a quadword of RAM: the tables */
			uint64_t off = (fz_take(in, 3) * 8) % FZ_RAM;
			uint64_t v = fz_take(in, 8);
			memcpy(mem_ptr(&fz_vm.mem, off, 8), &v, 8);
			break;
		}
		case 2:
		case 3: { /* the unit's registers */
			uint64_t off = fz_take(in, 2) % IOMMU_MMIO_LEN;
			unsigned size = fz_size(in);
			fz_mmio(IOMMU_BASE + off, size, op & 1, fz_take(in, 8));
			break;
		}
		case 4: { /* a translation for any requester */
			uint16_t sid = (uint16_t)fz_take(in, 2);
			uint64_t iova = fz_take(in, 8), gpa, avail;
			if (iommu_translate(fz_vm.iommu, sid, iova, op & 0x80, &gpa, &avail) == 0)
				FZ_CHECK(avail > 0 && gpa + (avail - 1) >= gpa);
			break;
		}
		case 5: { /* device DMA through the unit */
			uint16_t sid = (uint16_t)fz_take(in, 2);
			uint64_t iova = fz_take(in, 8) % (4 * FZ_RAM), len = fz_take(in, 2) % sizeof(dma);
			(void)iommu_dma_rw(fz_vm.iommu, &fz_vm.mem, sid, iova, dma, len, op & 0x80);
			break;
		}
		case 6: { /* an MSI from any requester */
			uint16_t sid = (uint16_t)fz_take(in, 2);
			uint64_t addr = 0xfee00000ull | (fz_take(in, 4) & 0xfffff);
			uint32_t data = (uint32_t)fz_take(in, 4);
			int r = iommu_remap_msi(fz_vm.iommu, sid, op & 0x80, &addr, &data);
			if (r == 0)
				FZ_CHECK((addr >> 20) == 0xfee);
			else
				iommu_ir_fault(fz_vm.iommu, sid, addr, r);
			break;
		}
		case 7: { /* an IOAPIC entry (remappable format or not) and its line */
			unsigned pin = (unsigned)fz_take(in, 1) % 24;
			fz_mmio(IRQ_IOAPIC_ADDR, 4, true, 0x10 + 2 * pin + 1);
			fz_mmio(IRQ_IOAPIC_ADDR + 0x10, 4, true, fz_take(in, 4));
			fz_mmio(IRQ_IOAPIC_ADDR, 4, true, 0x10 + 2 * pin);
			fz_mmio(IRQ_IOAPIC_ADDR + 0x10, 4, true, fz_take(in, 4));
			irq_set_line(&fz_vm, pin, op & 0x80);
			break;
		}
		case 8: { /* edu's registers: DMA, interrupts */
			uint64_t off = fz_take(in, 1) & 0xfc;
			unsigned size = fz_size(in);
			fz_mmio(fz_edu_bar + off, size, op & 0x80, fz_take(in, 8));
			break;
		}
		case 9: { /* edu's configuration space: command, MSI capability */
			unsigned off = (unsigned)fz_take(in, 1);
			pci_config_write(&fz_vm, fz_edu_devfn, off & ~3u, 4, (uint32_t)fz_take(in, 4));
			break;
		}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	fz_vm_build();
	struct fz_in in = { data, size };
	fz_run(&in);
	fz_vm_free();
	return 0;
}
