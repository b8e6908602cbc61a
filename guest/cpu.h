/* cpu: per-CPU state (GDT/TSS/IDT, the stacks, the running task's context). */
#ifndef GUEST_CPU_H
#define GUEST_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct task;

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

/* What ended a task: its exit status, or the fault that killed it. */
struct task_fault {
	bool killed;
	uint32_t vector;
	uint64_t err, rip, cr2;
};

struct cpu {
	struct cpu *self;     /* CPU_SELF: GS base points here */
	uint64_t trap_top;    /* CPU_TRAP_TOP: ring-0 stack of the running task (= TSS.RSP0) */
	uint64_t user_rsp;    /* CPU_USER_RSP: scratch for the SYSCALL entry */
	unsigned id;          /* 0 = BSP */
	uint32_t apic_id;
	struct task *cur;     /* running task, 0 in the kernel's own context */
	uint64_t main_ksp;    /* the kernel context while tasks run */
	struct task_fault fault; /* how the last task_run ended */
	volatile uint64_t ticks; /* LAPIC timer interrupts */
	volatile uint64_t ipis;  /* IPIs received */
	volatile uint64_t ipi_tsc; /* TSC in the last IPI's handler (test=irqlat) */
	volatile bool online;
	struct tss tss;
	uint8_t trap_stack[16384] __attribute__((aligned(16)));
	uint8_t df_stack[4096] __attribute__((aligned(16)));
	uint8_t main_stack[16384] __attribute__((aligned(16))); /* APs' kernel stack */
};

extern struct cpu cpus[MAX_CPUS];
extern unsigned cpu_count;
extern bool cpu_has_nx;

static inline struct cpu *cpu_self(void)
{
	struct cpu *c;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* Loads GDT/TSS/IDT, GS base and the SYSCALL MSRs for cpus[id]. */
void cpu_init(unsigned id);

#endif
