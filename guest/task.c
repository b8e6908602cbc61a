/*
 * task: a few ring-3 tasks per CPU. The kernel starts a group and switches
 * to the first; yield passes the CPU round-robin, exit and kill end a task,
 * and the last to end switches back to the kernel context. Switching is a
 * change of ring-0 stack (ctx_switch), so the entries save nothing extra.
 */
#include "task.h"

#include "console.h"
#include "layout.h"
#include "mm.h"
#include "user/user.h"

volatile uint64_t task_demand_faults;
static struct task task_slots[MAX_CPUS][TASK_SLOTS];

#define TASK_USTACK_SIZE (USER_STACK_PAGES * PAGE_SIZE)
_Static_assert(TASK_SLOTS * TASK_USTACK_SIZE <= USER_STACK_STRIDE, "user stacks overlap");

/* User stack of slot i on CPU c, mapped on first use and then kept. */
static uint64_t task_ustack_top(struct cpu *c, unsigned i)
{
	uint64_t base = USER_BASE + (uint64_t)c->id * USER_STACK_STRIDE + i * TASK_USTACK_SIZE;
	uint64_t top = base + TASK_USTACK_SIZE;
	if (!(mm_lookup(top - PAGE_SIZE) & PTE_P)) {
		for (uint64_t va = base; va < top; va += PAGE_SIZE) {
			uint64_t pa = mm_alloc_page();
			if (!pa || !mm_map_user(va, pa, PTE_W | PTE_U | PTE_NX))
				panic("out of memory for a user stack of cpu %u", c->id);
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

/* The stack ctx_switch pops for a first run: six callee-saved registers,
 * task_bootstrap as return address, its two arguments, the IRETQ frame. */
static void task_prepare(struct task *t, uint64_t ustack_top, task_fn fn, long arg)
{
	uint64_t *sp = (uint64_t *)(t->kstack + sizeof(t->kstack));
	*--sp = GDT_UDATA | 3;
	*--sp = ustack_top - 8; /* entry sees the stack as if called */
	*--sp = 0x202;          /* IF on in ring 3 */
	*--sp = GDT_UCODE | 3;
	*--sp = (uint64_t)u_task_main;
	*--sp = (uint64_t)arg;  /* rsi */
	*--sp = (uint64_t)fn;   /* rdi */
	*--sp = (uint64_t)task_bootstrap;
	for (int i = 0; i < 6; i++)
		*--sp = 0;
	t->ksp = (uint64_t)sp;
	t->live = true;
	t->status = 0;
	t->fault = (struct task_fault){ 0 };
}

static void task_activate(struct cpu *c, struct task *t)
{
	uint64_t top = (uint64_t)(t->kstack + sizeof(t->kstack));
	c->cur = t;
	c->trap_top = top; /* SYSCALL entry */
	c->tss.rsp[0] = top; /* exceptions and interrupts from ring 3 */
}

/* The next live task after the running one, round-robin; 0 if none. */
static struct task *task_next(struct cpu *c)
{
	struct task *slots = task_slots[c->id];
	unsigned cur = c->cur ? (unsigned)(c->cur - slots) : TASK_SLOTS - 1;
	for (unsigned k = 1; k <= TASK_SLOTS; k++) {
		struct task *t = &slots[(cur + k) % TASK_SLOTS];
		if (t->live)
			return t;
	}
	return 0;
}

void task_run_group(unsigned n, const task_fn *fns, const long *args, long *status, struct task_fault *fault)
{
	struct cpu *c = cpu_self();
	if (n == 0 || n > TASK_SLOTS)
		panic("task_run_group: %u tasks", n);
	for (unsigned i = 0; i < n; i++)
		task_prepare(&task_slots[c->id][i], task_ustack_top(c, i), fns[i], args[i]);
	c->cur = 0;
	struct task *first = task_next(c);
	task_activate(c, first);
	ctx_switch(&c->main_ksp, first->ksp);
	/* back when the last task ended */
	c->cur = 0;
	for (unsigned i = 0; i < n; i++) {
		status[i] = task_slots[c->id][i].status;
		if (fault)
			fault[i] = task_slots[c->id][i].fault;
	}
}

long task_run(task_fn fn, long arg)
{
	long st;
	task_run_group(1, &fn, &arg, &st, &cpu_self()->fault);
	return st;
}

void task_yield(void)
{
	struct cpu *c = cpu_self();
	struct task *cur = c->cur, *next = task_next(c);
	if (!cur || !next || next == cur)
		return;
	task_activate(c, next);
	ctx_switch(&cur->ksp, next->ksp);
}

void task_finish(long status)
{
	struct cpu *c = cpu_self();
	struct task *cur = c->cur;
	cur->live = false;
	cur->status = status;
	struct task *next = task_next(c);
	if (next) {
		task_activate(c, next);
		ctx_switch(&cur->ksp, next->ksp);
	} else {
		c->cur = 0;
		ctx_switch(&cur->ksp, c->main_ksp);
	}
	panic("a finished task was resumed");
}

void task_kill(struct task_fault f)
{
	cpu_self()->cur->fault = f;
	task_finish(TASK_KILLED);
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
