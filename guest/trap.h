/* trap: exception and interrupt dispatch (frames built by entry.S). */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H

#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, err;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

void trap_handle(struct trap_frame *f);
const char *trap_name(unsigned vector);
/* Quiet mode: faults that kill a task are not reported (probes, expected faults). */
extern volatile int trap_quiet;

/* test=inject: while trap_inject_mode is set, NMIs, exceptions (but #PF and
 * the int3 system call) and vector VEC_INJECT_IRQ are events the host
 * injected: recorded here, marked to hvmm's boot timer, and returned from. */
#define TRAP_INJECTED_MAX 8
struct trap_injected {
	uint64_t vector, err, rip, tsc;
};
extern volatile int trap_inject_mode;
extern struct trap_injected trap_injected[TRAP_INJECTED_MAX];
extern volatile unsigned trap_injected_n;

#endif
