/* utests: the ring-3 halves of the tests. Results go back as exit codes or
 * through .udata variables the kernel reads. */
#include <stdint.h>

#include "usys.h"

volatile uint64_t u_bench_ns_x10, u_bench_iters = 1000000;

static inline uint64_t u_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

long u_hello(long arg)
{
	(void)arg;
	u_puts("hello from ring 3\n");
	return 0;
}

/* test=boot: nothing but the first ring-3 instruction (the boot marker in
 * u_task_main) and the exit: what bench/ times as time-to-ring-3. */
long u_boot(long arg)
{
	(void)arg;
	return 0;
}

long u_probe(long entry)
{
	long r;
	switch (entry) {
	case U_ENTRY_INT80:
		r = u_sys_int80(SYS_PROBE, 41, 0, 0);
		break;
	case U_ENTRY_SYSCALL:
		r = u_sys_syscall(SYS_PROBE, 41, 0, 0);
		break;
	default:
		r = u_sys_int3(SYS_PROBE, 41, 0, 0);
		break;
	}
	return r == 42 ? 0 : 1;
}

long u_fault(long kind)
{
	volatile long zero = 0;
	switch (kind) {
	case U_FAULT_DE:
		return 100 / zero;
	case U_FAULT_UD:
		__asm__ volatile("ud2");
		break;
	case U_FAULT_GP:
		__asm__ volatile("cli"); /* IOPL 0: privileged in ring 3 */
		break;
	case U_FAULT_PF:
		return *(volatile long *)(USER_END + 0x1000); /* nothing mapped */
	case U_FAULT_KERNEL_WRITE:
		*(volatile long *)0x300000 = 1; /* kernel-only page */
		break;
	}
	return 0;
}

/* SYS_NOP round trips; ns per round trip ×10 from the TSC. */
long u_bench(long entry)
{
	uint64_t n = u_bench_iters;
	uint64_t t0 = u_rdtsc();
	switch (entry) {
	case U_ENTRY_INT80:
		for (uint64_t i = 0; i < n; i++)
			u_sys_int80(SYS_NOP, 0, 0, 0);
		break;
	case U_ENTRY_SYSCALL:
		for (uint64_t i = 0; i < n; i++)
			u_sys_syscall(SYS_NOP, 0, 0, 0);
		break;
	default:
		for (uint64_t i = 0; i < n; i++)
			u_sys_int3(SYS_NOP, 0, 0, 0);
		break;
	}
	uint64_t cycles = u_rdtsc() - t0;
	/* cycles * 1e7 / khz overflows only past ~1.8e12 cycles. */
	u_bench_ns_x10 = cycles * 10000 / u_tsc_khz * 1000 / n;
	return 0;
}

long u_demand(long pages)
{
	volatile uint64_t *base = (volatile uint64_t *)USER_DEMAND_BASE;
	for (long i = 0; i < pages; i++) /* write then read back: every page fresh */
		base[i * 512] = 0x5a5a0000 + (uint64_t)i;
	for (long i = 0; i < pages; i++)
		if (base[i * 512] != 0x5a5a0000 + (uint64_t)i)
			return 1;
	return 0;
}

long u_exec_data(long arg)
{
	(void)arg;
	/* A 'ret' in a demand-mapped data page (NX): the call must fault. */
	volatile uint8_t *p = (volatile uint8_t *)(USER_DEMAND_BASE + USER_DEMAND_SIZE - 0x1000);
	*p = 0xc3;
	((void (*)(void))p)();
	return 0;
}

long u_smp(long arg)
{
	(void)arg;
	volatile uint64_t x = 0;
	for (int i = 0; i < 100000; i++) /* some real ring-3 work */
		x += (uint64_t)i;
	return u_sys(SYS_CPU, 0, 0, 0) + 100;
}

long u_sleep_test(long ms)
{
	long t0 = u_sys(SYS_TIME, 0, 0, 0);
	u_sys(SYS_SLEEP, ms * 1000000, 0, 0);
	return (u_sys(SYS_TIME, 0, 0, 0) - t0) / 1000000;
}

volatile char u_yield_log[32];
volatile unsigned u_yield_len;

long u_yield_worker(long id)
{
	for (int i = 0; i < 4; i++) {
		if (u_yield_len < sizeof(u_yield_log) - 1)
			u_yield_log[u_yield_len++] = (char)('a' + id);
		u_sys(SYS_YIELD, 0, 0, 0);
	}
	return id;
}
