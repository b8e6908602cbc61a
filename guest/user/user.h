/*
 * user: the ring-3 side. Everything compiled from guest/user/ is linked into
 * the user-accessible pages (.utext/.udata), so tasks may call only code from
 * here. The kernel includes this header to start tasks and read results.
 */
#ifndef GUEST_USER_H
#define GUEST_USER_H

#include <stdint.h>

enum u_entry {
	U_ENTRY_INT80 = 0,
	U_ENTRY_SYSCALL = 1,
	U_ENTRY_INT3 = 2,
	U_ENTRY_COUNT = 3,
};

extern volatile int u_entry;        /* entry the task's syscalls use */
extern volatile uint64_t u_tsc_khz; /* set by the kernel (clock.c) */
extern const char *const u_entry_names[U_ENTRY_COUNT];

/* Entry of every task (kernel IRETQs here): marks the boot timer the first
 * time, runs fn(arg), exits with its result. */
__attribute__((noreturn)) void u_task_main(long (*fn)(long), long arg);

/* Task bodies (utests.c). */
long u_hello(long);
long u_boot(long);
long u_probe(long entry);          /* 0 if a syscall through entry works */
long u_fault(long kind);           /* raises the exception named by kind */
long u_bench(long entry);          /* result in u_bench_ns_x10 */
extern volatile uint64_t u_bench_ns_x10, u_bench_iters;
long u_demand(long pages);         /* touches pages of the demand region */
long u_exec_data(long);            /* jumps into a data page: must fault with NX */
long u_smp(long);                  /* per-CPU work; returns cpu id + 100 */
long u_sleep_test(long ms);        /* sleeps through the syscall; returns elapsed ms */
long u_yield_worker(long id);      /* appends 'a'+id to u_yield_log, yields, 4 times */
extern volatile char u_yield_log[32];
extern volatile unsigned u_yield_len;

enum u_fault_kind { U_FAULT_DE, U_FAULT_UD, U_FAULT_GP, U_FAULT_PF, U_FAULT_KERNEL_WRITE, U_FAULT_COUNT };

#endif
