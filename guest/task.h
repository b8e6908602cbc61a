/* task: ring-3 tasks — a function run at CPL3 on its CPU's user stack. */
#ifndef GUEST_TASK_H
#define GUEST_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"

#define TASK_KILLED (-1000L)

typedef long (*task_fn)(long);

/* Runs fn(arg) in ring 3 on this CPU until it exits (its status) or faults
 * (TASK_KILLED; details in cpu_self()->fault). */
long task_run(task_fn fn, long arg);
/* Resolves a ring-3 #PF in the demand region; false if it is not one. */
bool task_demand_fault(uint64_t addr, uint64_t err);
extern volatile uint64_t task_demand_faults;
/* Maps the boot-marker MMIO page for the first ring-3 instruction. */
void task_init(void);

/* entry.S */
long task_enter(uint64_t rip, uint64_t rsp, uint64_t arg0, struct kctx *ctx, uint64_t arg1);
__attribute__((noreturn)) void task_resume(struct kctx *ctx, long status);

#endif
