/*
 * libFuzzer target for the plain IOAPIC (src/devices/ioapic.c) and the 8259
 * pair beside it (src/devices/pic.c), as the split irqchip wires them
 * (irq.c): a fake VM without KVM and without an IOMMU (fuzz_iommu covers the
 * remappable entries). The input is what the guest does to them — IOREGSEL /
 * IOWIN / EOI-register accesses of any size at any offset of the page,
 * redirection entries written whole or dword by dword, EOIs of any vector
 * through the LAPIC (ioapic_eoi, as KVM reports them) — and what devices do:
 * ISA and PCI lines rising and falling (irq_set_line) — plus the PIC's ports
 * and its INTA cycle.
 *
 * Checked against a model of what the guest wrote, after every operation:
 * each entry reads back its writable bits as written (RO bits aside), the
 * ID and version registers are right, Remote IRR is never set on an edge
 * pin, and no pin is stuck: an asserted, unmasked level pin always has
 * Remote IRR set (it was delivered and waits for its EOI), because nothing
 * else can be keeping it from firing. A masked pin is never delivered; an
 * operation delivers a pin at most once. A PIC INTA gives a vector or -1.
 *
 * Input: a sequence of operations, the first byte of each selecting it (see
 * fz_run); numbers little-endian, zeros once the input runs out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "irq.h"
#include "devices/devices.h"
#include "snapshot.h"
#include "vm.h"
#include "fuzz_common.h"
#include "fuzz_env.h"

#define FZ_CHECK(c)                                                                            \
	do {                                                                                   \
		if (!(c)) {                                                                    \
			fprintf(stderr, "fuzz_ioapic: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                               \
		}                                                                              \
	} while (0)

#define FZ_PINS IRQ_IOAPIC_PINS
#define RTE_LO_WRITABLE 0x0001afffu /* vector, delivery/dest mode, polarity, trigger, mask */
#define RTE_REMOTE_IRR 0x4000u
#define RTE_LEVEL 0x8000u
#define RTE_MASK 0x10000u

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

static struct vm fz_vm;
/* looked up once per input: dev_find's name compares were a quarter of the
 * target's time when made ~50 times per operation */
static void *fz_ioapic, *fz_pic;

/* the model: what the guest wrote, and the lines the devices drive */
static uint32_t fz_lo[FZ_PINS], fz_hi[FZ_PINS], fz_id;
static bool fz_line[FZ_PINS];

static void fz_vm_build(void)
{
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_SPLIT;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	fz_vm_env(&fz_vm, true, false);
	FZ_CHECK(fz_dev(&fz_vm, &ioapic_dev_ops));
	FZ_CHECK(fz_dev(&fz_vm, &pic_dev_ops));
	fz_pic = dev_find(&fz_vm.devs, "pic", 0);
	fz_ioapic = dev_find(&fz_vm.devs, "ioapic", 0);
	irq_attach(&fz_vm, fz_pic, fz_ioapic);
	FZ_CHECK(irq_msi_alloc(&fz_vm) >= 0); /* the routing state irq.c keeps */
	for (unsigned n = 0; n < FZ_PINS; n++) {
		fz_lo[n] = RTE_MASK;
		fz_hi[n] = 0;
		fz_line[n] = false;
	}
	fz_id = 0;
}

static void fz_vm_free(void)
{
	dev_destroy_all(&fz_vm.devs);
	snapshot_registry_free(&fz_vm);
	irq_destroy(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

static uint64_t fz_bus(struct bus *b, uint64_t addr, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (!r || !r->opaque)
		return 0;
	FZ_LOG("%s %s %#lx/%u %#lx\n", b == &fz_vm.pio ? "pio" : "mmio", write ? "write" : "read", addr,
	       size, v);
	if (write) {
		r->ops->write(r->opaque, addr - r->base, size, v);
		return 0;
	}
	return r->ops->read(r->opaque, addr - r->base, size);
}

/* A register read through IOREGSEL/IOWIN of the IOAPIC's range r, as
 * fz_bus does it but without looking the range up again: fz_check_state
 * makes ~100 of these after every operation, and the IOAPIC's page does not
 * move during a run (every other access still goes through bus_find). */
static uint32_t fz_reg_read_at(const struct bus_range *r, uint32_t reg)
{
	r->ops->write(r->opaque, IRQ_IOAPIC_ADDR - r->base, 4, reg);
	return (uint32_t)r->ops->read(r->opaque, IRQ_IOAPIC_ADDR + 0x10 - r->base, 4);
}

static uint32_t fz_reg_read(uint32_t reg)
{
	fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR, 4, true, reg);
	return (uint32_t)fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR + 0x10, 4, false, 0);
}

/* A 32-bit IOWIN write through the selected register, model updated. */
static void fz_reg_write(uint32_t reg, uint32_t v)
{
	reg &= 0xff;
	fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR, 4, true, reg);
	fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR + 0x10, 4, true, v);
	if (reg == 0)
		fz_id = v & 0x0f000000u;
	if (reg >= 0x10 && reg < 0x10 + 2 * FZ_PINS) {
		unsigned n = (reg - 0x10) / 2;
		if (reg & 1)
			fz_hi[n] = v & 0xffff0000u;
		else
			fz_lo[n] = v & RTE_LO_WRITABLE;
	}
}

/* The whole state against the model (restoring IOREGSEL afterwards). */
static void fz_check_state(const uint64_t before[FZ_PINS])
{
	uint32_t sel = (uint32_t)fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR, 4, false, 0);
	const struct bus_range *r = bus_find(&fz_vm.mmio, IRQ_IOAPIC_ADDR, 0x20);
	FZ_CHECK(r && r->opaque && r->base <= IRQ_IOAPIC_ADDR);
	FZ_CHECK(fz_reg_read(0) == fz_id);
	FZ_CHECK(fz_reg_read_at(r, 1) == ((FZ_PINS - 1) << 16 | 0x20));
	FZ_CHECK(fz_reg_read_at(r, 2) == fz_id);
	for (unsigned n = 0; n < FZ_PINS; n++) {
		uint32_t lo = fz_reg_read_at(r, 0x10 + 2 * n), hi = fz_reg_read_at(r, 0x11 + 2 * n);
		FZ_CHECK((lo & RTE_LO_WRITABLE) == fz_lo[n]);
		FZ_CHECK((lo & ~(RTE_LO_WRITABLE | RTE_REMOTE_IRR)) == 0);
		FZ_CHECK(hi == fz_hi[n]);
		if (!(lo & RTE_LEVEL))
			FZ_CHECK(!(lo & RTE_REMOTE_IRR));
		else if (fz_line[n] && !(lo & RTE_MASK))
			FZ_CHECK(lo & RTE_REMOTE_IRR);
		uint64_t d = ioapic_delivered(fz_ioapic, n);
		FZ_CHECK(d == before[n] || d == before[n] + 1);
	}
	fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR, 4, true, sel);
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		uint64_t before[FZ_PINS];
		for (unsigned n = 0; n < FZ_PINS; n++)
			before[n] = ioapic_delivered(fz_ioapic, n);
		bool masked[FZ_PINS];
		for (unsigned n = 0; n < FZ_PINS; n++)
			masked[n] = fz_lo[n] & RTE_MASK;
		int only_pin = -1; /* the pin a line change may deliver, -1: any */
		switch (op % 9) {
		case 0: { /* a register through IOREGSEL/IOWIN */
			uint32_t reg = (uint32_t)fz_take(in, 1);
			fz_reg_write(reg, (uint32_t)fz_take(in, 4));
			break;
		}
		case 1: { /* a whole entry, masked first as Linux does, then unmasked */
			unsigned n = (unsigned)fz_take(in, 1) % FZ_PINS;
			uint32_t lo = (uint32_t)fz_take(in, 4), hi = (uint32_t)fz_take(in, 1) << 24;
			fz_reg_write(0x10 + 2 * n, lo | RTE_MASK);
			fz_reg_write(0x11 + 2 * n, hi);
			fz_reg_write(0x10 + 2 * n, lo);
			break;
		}
		case 2: { /* any access to the page, any size: the model cannot follow
			   * IOWIN writes of other sizes, so only reads and the EOI
			   * register here */
			uint64_t off = fz_take(in, 2) % 0x1000;
			unsigned size = fz_size(in);
			if (op & 0x80)
				fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR + 0x40, size, true, fz_take(in, 4));
			else
				fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR + off, size, false, 0);
			break;
		}
		case 3: { /* IOREGSEL write of any size, then a window read */
			unsigned size = fz_size(in);
			fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR, size, true, fz_take(in, 4));
			fz_bus(&fz_vm.mmio, IRQ_IOAPIC_ADDR + 0x10, fz_size(in), false, 0);
			break;
		}
		case 4: { /* a device line (ISA pins reach the PIC too) */
			unsigned n = (unsigned)fz_take(in, 1) % FZ_PINS;
			bool level = op & 0x80;
			irq_set_line(&fz_vm, n, level);
			fz_line[n] = level;
			only_pin = (int)n;
			break;
		}
		case 5: /* an EOI from a LAPIC */
			ioapic_eoi(fz_ioapic, (unsigned)fz_take(in, 1));
			break;
		case 6: { /* a pulse: rise and fall */
			unsigned n = (unsigned)fz_take(in, 1) % FZ_PINS;
			irq_set_line(&fz_vm, n, true);
			irq_set_line(&fz_vm, n, false);
			fz_line[n] = false;
			only_pin = (int)n;
			break;
		}
		case 7: { /* the 8259s: ICWs, OCWs, IMR, ELCR, any order */
			static const uint16_t ports[6] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1 };
			uint16_t port = ports[fz_take(in, 1) % 6];
			if (op & 0x80)
				fz_bus(&fz_vm.pio, port, 1, true, fz_take(in, 1));
			else
				fz_bus(&fz_vm.pio, port, 1, false, 0);
			break;
		}
		case 8: { /* the PIC's INTA cycle, as the boot vCPU runs it */
			int v = pic_intack(fz_pic);
			FZ_CHECK(v >= -1 && v <= 255);
			(void)pic_output(fz_pic);
			break;
		}
		}
		for (unsigned n = 0; n < FZ_PINS; n++) {
			uint64_t d = ioapic_delivered(fz_ioapic, n);
			if (d != before[n]) {
				FZ_CHECK(!masked[n] || !(fz_lo[n] & RTE_MASK)); /* masked before and after: never */
				FZ_CHECK(only_pin < 0 || only_pin == (int)n); /* a line fires its own pin */
			}
		}
		fz_check_state(before);
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
