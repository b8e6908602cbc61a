/* smp: find the CPUs (MP table, ACPI MADT), start the APs, exchange IPIs. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*smp_tap_fn)(bool ok, const char *fmt, ...);
typedef void (*smp_skip_fn)(const char *what, const char *reason);

void smp_test(smp_tap_fn tap, smp_skip_fn skip);
/* test=irqlat: iters IPIs from cpu 1 to cpu 0, one at a time, cpu 0 waiting
 * halted (sti; hlt) or running (spinning with IF set); prints the latency
 * from the sender's TSC before its ICR write to the target's handler. */
void smp_irqlat(smp_tap_fn tap, smp_skip_fn skip, bool halted, unsigned iters);

/* What the MP table / MADT say about interrupt routing (for ioapic.c). */
struct smp_irq_info {
	uint64_t ioapic_base;  /* 0 if not found */
	int isa_pin[16];       /* IOAPIC pin of each ISA IRQ, -1 if not listed */
	const char *source;
};
void smp_irq_info(struct smp_irq_info *out);

#endif
