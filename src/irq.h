/*
 * irq: the interrupt controller set-up and the one function devices use to
 * drive an interrupt line.
 *
 *  - IRQCHIP_SPLIT (default): LAPICs in KVM, IOAPIC in hvmm
 *    (devices/ioapic.c). Each IOAPIC pin is a KVM GSI route of type MSI that
 *    hvmm rewrites whenever the guest programs the pin's redirection entry —
 *    the seed's interrupt remapping table — and a device interrupt is
 *    KVM_IRQ_LINE on that GSI, which KVM turns into an MSI to the LAPIC.
 *    Level-triggered pins get their EOI back as KVM_EXIT_IOAPIC_EOI.
 *  - IRQCHIP_KERNEL: KVM_CREATE_IRQCHIP (PIC + IOAPIC + LAPIC in KVM) and
 *    the in-kernel PIT; a line is KVM_IRQ_LINE on the pin.
 */
#ifndef HVMM_IRQ_H
#define HVMM_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

enum irqchip_mode {
	IRQCHIP_SPLIT = 0,
	IRQCHIP_KERNEL,
};

#define IRQ_IOAPIC_PINS 24
#define IRQ_IOAPIC_ADDR 0xfec00000ull
#define IRQ_LAPIC_ADDR 0xfee00000ull

int irq_mode_parse(const char *s, enum irqchip_mode *out);
const char *irq_mode_name(enum irqchip_mode m);

/* Before any vCPU exists: create the irqchip for vm->cfg.irqchip. 0 or -errno. */
int irq_init(struct vm *vm);
/* Drive IOAPIC pin `pin` (ISA IRQ n is pin n, IRQ 0 is pin 2). Thread-safe. */
void irq_set_line(struct vm *vm, unsigned pin, bool level);
/* Split mode: the guest EOI'd `vector` on a level-triggered route. */
void irq_eoi(struct vm *vm, unsigned vector);
/* Split mode, called by the IOAPIC: (re)program GSI `pin` as an MSI route. 0 or -errno. */
int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data);

#endif
