/* smp: find the CPUs (MP table, ACPI MADT), start the APs, exchange IPIs. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdbool.h>

typedef void (*smp_tap_fn)(bool ok, const char *fmt, ...);
typedef void (*smp_skip_fn)(const char *what, const char *reason);

void smp_test(smp_tap_fn tap, smp_skip_fn skip);

#endif
