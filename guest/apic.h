/* apic: the local APIC (xAPIC by MMIO, x2APIC by MSR when CPUID offers it). */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

extern bool apic_x2;
extern uint64_t apic_timer_hz;          /* timer input clock after the divider (÷16) */
extern const char *apic_timer_source;

/* Enables this CPU's LAPIC (x2APIC unless forbid_x2). */
void apic_init(bool forbid_x2);
uint32_t apic_id(void);
void apic_eoi(void);
/* Timer calibration (BSP, once): needs clock_init. */
void apic_timer_calibrate(void);
void apic_timer_periodic(uint32_t hz);
void apic_timer_oneshot_ns(uint64_t ns);
void apic_timer_stop(void);
void apic_send_ipi(uint32_t dest, uint8_t vector);
void apic_send_init(uint32_t dest);
void apic_send_sipi(uint32_t dest, uint8_t page);

#endif
