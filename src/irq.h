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
 *    ISA lines (pins below 16) also drive hvmm's 8259 (devices/pic.c), whose
 *    output the boot vCPU injects as ExtINT.
 *  - IRQCHIP_USER: no irqchip in KVM at all. hvmm's own local APICs
 *    (lapic.h) beside the same IOAPIC and 8259 as in split mode; a pin's
 *    route is kept here as in split mode, and delivering it sends the
 *    route's MSI to hvmm's APICs instead of KVM_IRQ_LINE. No irqfds (they
 *    need an in-kernel irqchip): devices inject as with --no-irqfd.
 *  - IRQCHIP_KERNEL: KVM_CREATE_IRQCHIP (PIC + IOAPIC + LAPIC in KVM) and
 *    the in-kernel PIT; a line is KVM_IRQ_LINE on the pin's GSI (ISA IRQ 0,
 *    pin 2, is GSI 0, routed to PIC IRQ 0 and IOAPIC pin 2).
 */
#ifndef HVMM_IRQ_H
#define HVMM_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

enum irqchip_mode {
	IRQCHIP_SPLIT = 0,
	IRQCHIP_KERNEL,
	IRQCHIP_USER,
};

/* hvmm's IOAPIC and 8259 (split and user modes). */
static inline bool irq_user_ioapic(enum irqchip_mode mode)
{
	return mode != IRQCHIP_KERNEL;
}

#define IRQ_IOAPIC_PINS 24
#define IRQ_ISA_IRQS 16
#define IRQ_PIT_PIN 2 /* ISA IRQ 0's IOAPIC pin */
#define IRQ_IOAPIC_ADDR 0xfec00000ull
#define IRQ_LAPIC_ADDR 0xfee00000ull

int irq_mode_parse(const char *s, enum irqchip_mode *out);
const char *irq_mode_name(enum irqchip_mode m);

/* Before any vCPU exists: create the irqchip for vm->cfg.irqchip. 0 or -errno. */
int irq_init(struct vm *vm);
/* Split mode: the chips irq_set_line and irq_eoi drive (hvmm's 8259 pair
 * and IOAPIC, from the device registry), once they exist; and the PIC, for
 * the boot vCPU's ExtINT (NULL: none). */
struct pic;
struct ioapic;
void irq_attach(struct vm *vm, struct pic *pic, struct ioapic *ioapic);
struct pic *irq_pic(struct vm *vm);
/* Drive IOAPIC pin `pin` (ISA IRQ n is pin n, IRQ 0 is pin 2). Thread-safe. */
void irq_set_line(struct vm *vm, unsigned pin, bool level);
/* For a guest without firmware (multiboot, ELF, flat): leave the 8259 pair
 * and the PIT as a PC BIOS does (irq vectors 0x08/0x70, IRQ 0 unmasked and
 * ticking at 18.2 Hz), in hvmm's chips or KVM's. 0 or -errno. */
int irq_firmware_init(struct vm *vm);
/* Split and user mode: the guest EOI'd `vector` on a level-triggered route. */
void irq_eoi(struct vm *vm, unsigned vector);
/* Split mode, called by the IOAPIC: (re)program GSI `pin` as an MSI route. 0 or -errno. */
int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data);

/* Fire IOAPIC pin `pin`'s route (the IOAPIC, with its lock held): KVM_IRQ_LINE
 * in split mode (an edge is a 1 then a 0), the route's MSI to hvmm's APICs
 * in user mode. */
void irq_pin_fire(struct vm *vm, unsigned pin, bool edge);
/* Send one MSI (address, data) from a device or hvmm itself: KVM_SIGNAL_MSI,
 * or hvmm's APICs in user mode. 0 or -errno. Any thread. */
int irq_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/*
 * MSI GSIs for PCI MSI-X vectors (the IRT proper). GSIs above the IOAPIC's
 * pins are handed out once per vector and never reused; each carries at most
 * one MSI route. KVM_SET_GSI_ROUTING replaces KVM's whole table, so irq.c
 * keeps every route hvmm wants — the IOAPIC pins' MSI routes in split mode,
 * KVM's default PIC/IOAPIC routes of GSIs 0-23 in kernel mode — and rewrites
 * it whole on each change. Without KVM (vm_fd < 0) only the bookkeeping runs.
 * Thread-safe; never calls back into devices.
 */
#define IRQ_MSI_GSI_BASE IRQ_IOAPIC_PINS
#define IRQ_MAX_MSI_GSIS 1024
/* A fresh GSI, or -ENOSPC. Works before irq_init (allocates the state). */
int irq_msi_alloc(struct vm *vm);
/* Point `gsi` at the MSI message (addr, data). 0 or -errno. */
int irq_msi_route(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data);
/* Point `gsi` at SINT `sint` of the vCPU with Hyper-V VP index `vp`
 * (KVM_IRQ_ROUTING_HV_SINT; hyperv.c). 0 or -errno. */
int irq_hv_sint_route(struct vm *vm, unsigned gsi, uint32_t vp, uint32_t sint);
/* Drop the route (the GSI stays allocated). 0 or -errno. */
int irq_msi_unroute(struct vm *vm, unsigned gsi);
/* Raise an edge on an allocated GSI (KVM_IRQ_LINE, level 1: KVM's SINT
 * routes act on the rising level and ignore 0). 0 or -errno. */
int irq_gsi_raise(struct vm *vm, unsigned gsi);
/* Free the state (vm_destroy, unit tests). */
/* How often KVM's routing table was replaced (each change to a route
 * rewrites all of it: KVM_SET_GSI_ROUTING is the only interface). */
uint64_t irq_rewrites(struct vm *vm);
void irq_destroy(struct vm *vm);

#endif
