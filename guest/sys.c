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
#include "mm.h"
#include "pci.h"
#include "task.h"
#include "tests.h"

extern char __user_text_start[], __user_data_end[];

static bool sys_user_range(uint64_t p, uint64_t n)
{
	if (p + n < p)
		return false;
	if (p >= (uint64_t)__user_text_start && p + n <= (uint64_t)__user_data_end)
		return true;
	return p >= USER_BASE && p + n <= USER_END;
}

/* A buffer the kernel may touch for the task: inside the image's user pages,
 * or on user pages of the user GiB whose PTEs have all of `need` (checked page
 * by page, so a bad pointer is -EFAULT and never a ring-0 #PF). */
static bool sys_user_mapped(uint64_t p, uint64_t n, uint64_t need)
{
	if (!sys_user_range(p, n))
		return false;
	if (p >= (uint64_t)__user_text_start && p + n <= (uint64_t)__user_data_end)
		return true;
	for (uint64_t va = p & ~(PAGE_SIZE - 1); va < p + n; va += PAGE_SIZE)
		if ((mm_lookup(va) & need) != need)
			return false;
	return true;
}

static bool sys_user_writable(uint64_t p, uint64_t n)
{
	return sys_user_mapped(p, n, PTE_P | PTE_W | PTE_U);
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

static long sys_pci_dev(long i, long out, long flags)
{
	if (i < 0 || !sys_user_writable((uint64_t)out, sizeof(struct pci_udev)))
		return -14; /* EFAULT */
	return pci_udev_get((unsigned)i, (struct pci_udev *)out, (unsigned)flags);
}

/* DMA memory: physically contiguous, mapped at the next free address of the
 * DMA window (user, uncached off: the devices are cache-coherent). Never freed;
 * the ring-3 side reuses what it got. Returns the user address, the
 * guest-physical base in *phys_out. */
static uint64_t sys_dma_next = USER_DMA_BASE;

static long sys_dma(long bytes, long phys_out, long c)
{
	(void)c;
	if (bytes <= 0 || (uint64_t)bytes > USER_DMA_END - sys_dma_next)
		return -12; /* ENOMEM */
	if (!sys_user_writable((uint64_t)phys_out, 8))
		return -14;
	uint64_t n = ((uint64_t)bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (n > USER_DMA_END - sys_dma_next)
		return -12;
	uint64_t pa = mm_alloc_contig(n);
	if (!pa)
		return -12;
	uint64_t va = sys_dma_next;
	for (uint64_t o = 0; o < n; o += PAGE_SIZE)
		if (!mm_map_user(va + o, pa + o, PTE_W | PTE_U | PTE_NX))
			return -12;
	sys_dma_next += n;
	*(uint64_t *)phys_out = pa;
	return (long)va;
}

/* Sleeps (HLT) until MSI vector VEC_MSI_BASE + i has fired more than `seen`
 * times in all, or timeout_ns passed; returns the count. */
static long sys_irq_wait(long i, long seen, long timeout_ns) { return pci_msi_wait(i, seen, timeout_ns); }

static long sys_tap(long ok, long msg, long len)
{
	if (len < 0 || len > 200 || !sys_user_mapped((uint64_t)msg, (uint64_t)len, PTE_P | PTE_U))
		return -14;
	tests_user_tap(ok != 0, (const char *)msg, (unsigned)len);
	return 0;
}

long (*const sys_table[SYS_COUNT])(long, long, long) = {
	[SYS_NOP] = sys_nop,     [SYS_WRITE] = sys_write, [SYS_EXIT] = sys_exit,
	[SYS_YIELD] = sys_yield, [SYS_TIME] = sys_time,   [SYS_SLEEP] = sys_sleep,
	[SYS_PROBE] = sys_probe, [SYS_CPU] = sys_cpu,
	[SYS_PCI_DEV] = sys_pci_dev, [SYS_DMA] = sys_dma,
	[SYS_IRQ_WAIT] = sys_irq_wait, [SYS_TAP] = sys_tap,
};
