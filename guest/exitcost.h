/* exitcost: what one VM exit of each kind costs the guest, timed from inside. */
#ifndef GUEST_EXITCOST_H
#define GUEST_EXITCOST_H

#include <stdint.h>

struct exitcost {
	const char *name;  /* short key, e.g. "cpuid" */
	const char *what;  /* what the loop does and who handles the exit */
	uint64_t iters;
	uint64_t cycles;   /* TSC cycles per iteration (median of the batches) */
	uint64_t ns;       /* the same in ns */
};

/* Runs every loop (ring 0, interrupts off but where a loop needs them);
 * fills up to max entries and returns how many. */
unsigned exitcost_run(struct exitcost *out, unsigned max, uint64_t iters);

#endif
