/* clock: the TSC as the time base, its frequency from CPUID or the PIT. */
#ifndef GUEST_CLOCK_H
#define GUEST_CLOCK_H

#include <stdint.h>

extern uint64_t clock_tsc_hz;
extern const char *clock_source; /* how clock_tsc_hz was found */

void clock_init(void);
uint64_t clock_ns(void);
uint64_t clock_tsc_to_ns(uint64_t cycles);
void clock_spin_ns(uint64_t ns);

#endif
