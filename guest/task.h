/* task: ring-3 tasks — functions run at CPL3, each with its own user stack
 * and ring-0 stack, scheduled round-robin on their CPU by yield/exit. */
#ifndef GUEST_TASK_H
#define GUEST_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"

#define TASK_KILLED (-1000L)
#define TASK_SLOTS 4 /* tasks per CPU at a time */

typedef long (*task_fn)(long);

struct task {
	uint64_t ksp; /* saved ring-0 stack pointer while switched out */
	bool live;
	long status;
	struct task_fault fault;
	uint8_t kstack[8192] __attribute__((aligned(16)));
};

/* Runs fn(arg) in ring 3 on this CPU until it exits (its status) or faults
 * (TASK_KILLED; details in cpu_self()->fault). */
long task_run(task_fn fn, long arg);
/* Runs n (<= TASK_SLOTS) tasks together on this CPU until all have ended;
 * status[i] and fault[i] (may be 0) tell how each ended. */
void task_run_group(unsigned n, const task_fn *fns, const long *args, long *status, struct task_fault *fault);
/* From a syscall: let the next live task of this CPU run (no-op if alone). */
void task_yield(void);
/* From a syscall or trap: end the running task. */
__attribute__((noreturn)) void task_finish(long status);
__attribute__((noreturn)) void task_kill(struct task_fault f);
/* Resolves a ring-3 #PF in the demand region; false if it is not one. */
bool task_demand_fault(uint64_t addr, uint64_t err);
extern volatile uint64_t task_demand_faults;
/* Maps the boot-marker MMIO page for the first ring-3 instruction. */
void task_init(void);

/* entry.S */
void ctx_switch(uint64_t *save_rsp, uint64_t new_rsp);
extern char task_bootstrap[];

#endif
