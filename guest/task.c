/*
 * task: one ring-3 task at a time per CPU, run to completion. The kernel side
 * is a setjmp-style pair (task_enter/task_resume) so that exit and kill are
 * both a jump back to the caller of task_run; nothing is scheduled in ring 0.
 */
#include "task.h"

#include "console.h"
#include "layout.h"
#include "mm.h"
#include "user/user.h"

volatile uint64_t task_demand_faults;

static uint64_t task_stack_top(struct cpu *c)
{
	uint64_t base = USER_BASE + (uint64_t)c->id * USER_STACK_STRIDE;
	uint64_t top = base + USER_STACK_PAGES * PAGE_SIZE;
	if (!(mm_lookup(top - PAGE_SIZE) & PTE_P)) {
		for (uint64_t va = base; va < top; va += PAGE_SIZE) {
			uint64_t pa = mm_alloc_page();
			if (!pa || !mm_map_user(va, pa, PTE_W | PTE_U | PTE_NX))
				panic("out of memory for the user stack of cpu %u", c->id);
		}
	}
	return top;
}

void task_init(void)
{
	/* The boot-timer marker: an MMIO page (unassigned, writes ignored, on QEMU). */
	if (!mm_map_user(USER_MARKER_VA, BOOT_MARKER_MMIO, PTE_W | PTE_U | PTE_PCD | PTE_PWT | PTE_NX))
		panic("cannot map the boot marker");
}

long task_run(task_fn fn, long arg)
{
	struct cpu *c = cpu_self();
	uint64_t top = task_stack_top(c);
	c->fault = (struct task_fault){ 0 };
	c->in_task = true;
	/* RSP = top - 8: a function entry sees the stack as if called. */
	long st = task_enter((uint64_t)u_task_main, top - 8, (uint64_t)fn, &c->kctx, (uint64_t)arg);
	c->in_task = false;
	return st;
}

bool task_demand_fault(uint64_t addr, uint64_t err)
{
	/* Not-present faults only: a protection fault there is a real error. */
	if ((err & 1) || addr < USER_DEMAND_BASE || addr >= USER_DEMAND_BASE + USER_DEMAND_SIZE)
		return false;
	uint64_t pa = mm_alloc_page();
	if (!pa)
		return false;
	if (!mm_map_user(addr & ~(PAGE_SIZE - 1), pa, PTE_W | PTE_U | PTE_NX)) {
		mm_free_page(pa);
		return false;
	}
	task_demand_faults++;
	return true;
}
