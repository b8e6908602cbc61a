/* ioapic: routing ISA IRQs through the IOAPIC (found in the MP table or the MADT). */
#ifndef GUEST_IOAPIC_H
#define GUEST_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* Routes ISA irq to vector on the LAPIC dest (edge, active high); false when
 * there is no IOAPIC. The pin comes from the MP table's I/O interrupt entries
 * or the MADT's overrides, else pin = irq. */
bool ioapic_route_isa(unsigned irq, uint8_t vector, uint32_t dest);
void ioapic_mask_isa(unsigned irq);
/* Where the routing information came from, for the TAP line. */
extern const char *ioapic_source;
extern uint64_t ioapic_base;

#endif
