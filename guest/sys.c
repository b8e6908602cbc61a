/*
 * sys: the syscall handlers, called straight from the three entries in
 * entry.S through sys_table. Each is a plain C function of three longs.
 */
#include "apic.h"
#include "arch.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "layout.h"
#include "task.h"

extern char __user_text_start[], __user_data_end[];

static bool sys_user_range(uint64_t p, uint64_t n)
{
	if (p + n < p)
		return false;
	if (p >= (uint64_t)__user_text_start && p + n <= (uint64_t)__user_data_end)
		return true;
	return p >= USER_BASE && p + n <= USER_END;
}

static long sys_nop(long a, long b, long c)
{
	(void)a, (void)b, (void)c;
	return 0;
}

static long sys_write(long buf, long len, long c)
{
	(void)c;
	if (len < 0 || len > 4096 || !sys_user_range((uint64_t)buf, (uint64_t)len))
		return -14; /* EFAULT */
	console_write((const char *)buf, (size_t)len);
	return len;
}

static long sys_exit(long code, long b, long c)
{
	(void)b, (void)c;
	task_finish(code);
}

static long sys_yield(long a, long b, long c)
{
	(void)a, (void)b, (void)c;
	task_yield();
	return 0;
}

static long sys_time(long a, long b, long c)
{
	(void)a, (void)b, (void)c;
	return (long)clock_ns();
}

/* HLT until the deadline, woken by a one-shot LAPIC timer. */
static long sys_sleep(long ns, long b, long c)
{
	(void)b, (void)c;
	if (ns <= 0)
		return 0;
	uint64_t end = clock_ns() + (uint64_t)ns;
	for (uint64_t now = clock_ns(); now < end; now = clock_ns()) {
		apic_timer_oneshot_ns(end - now);
		irq_wait();
	}
	return 0;
}

static long sys_probe(long x, long b, long c)
{
	(void)b, (void)c;
	return x + 1;
}

static long sys_cpu(long a, long b, long c)
{
	(void)a, (void)b, (void)c;
	return cpu_self()->id;
}

long (*const sys_table[SYS_COUNT])(long, long, long) = {
	[SYS_NOP] = sys_nop,     [SYS_WRITE] = sys_write, [SYS_EXIT] = sys_exit,
	[SYS_YIELD] = sys_yield, [SYS_TIME] = sys_time,   [SYS_SLEEP] = sys_sleep,
	[SYS_PROBE] = sys_probe, [SYS_CPU] = sys_cpu,
};
