/*
 * exitcost: the guest's view of a VM exit. Each loop repeats one action that
 * exits (or, for the baseline, does not) and times it with the TSC. Who
 * handles the exit decides what it costs: KVM alone (CPUID, a KVM-handled MSR,
 * HLT, a nested page fault) or KVM and then hvmm in user space (port I/O and
 * MMIO of hvmm's devices). `hvmm lab exits` sets these numbers beside hvmm's
 * own time per exit from --stats-json, which is hvmm's share.
 *
 * Each kind runs in batches and reports the median batch, so that a host
 * interrupt or a descheduled nested host in one batch does not move it.
 */
#include "exitcost.h"

#include <stdbool.h>

#include "apic.h"
#include "arch.h"
#include "clock.h"
#include "console.h"
#include "ioapic.h"
#include "layout.h"
#include "median.h"
#include "mm.h"
#include "pci.h"
#include "smp.h"

#define EXITCOST_BATCHES 9
#define COM1_LSR 0x3fd

static uint64_t exitcost_ioapic;

static void act_nop(uint64_t i) { (void)i; __asm__ volatile("" ::: "memory"); }

static void act_cpuid(uint64_t i)
{
	(void)i;
	uint32_t r[4];
	cpuid(0, 0, r);
}

/* IA32_TSC_AUX through RDMSR: an MSR KVM emulates without user space. */
static void act_rdmsr(uint64_t i) { (void)i; (void)rdmsr(0xc0000103); }

static void act_vmcall(uint64_t i)
{
	(void)i;
	/* An unknown KVM hypercall number: KVM answers -KVM_ENOSYS itself.
	 * VMCALL is Intel's; on AMD it raises #UD, which KVM intercepts and
	 * emulates as the hypercall all the same (its own cost is then part of
	 * the number, as it is for a guest kernel built for the other vendor). */
	uint64_t ret = 0x7fffffff;
	__asm__ volatile("vmcall" : "+a"(ret) : : "memory");
}

/* KVM's signature at CPUID 0x40000000: without KVM, VMCALL is a #UD. */
static bool exitcost_on_kvm(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31)))
		return false;
	cpuid(0x40000000, 0, r);
	return r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d;
}

/* COM1's line status register: a port hvmm's UART answers (user space). */
static void act_pio(uint64_t i) { (void)i; (void)inb(COM1_LSR); }

/* The IOAPIC's data window (the version register selected once): MMIO that
 * hvmm's IOAPIC answers in user space (split irqchip). */
static void act_mmio(uint64_t i) { (void)i; (void)mmio_read32(exitcost_ioapic + 0x10); }

/* A self-IPI delivered at once (interrupts open): the ICR write exits to KVM,
 * which injects the interrupt on the next entry. */
static void act_ipi(uint64_t i)
{
	(void)i;
	uint64_t n = u_msi_count[MSI_VECTORS - 1];
	apic_send_ipi(apic_id(), VEC_MSI_BASE + MSI_VECTORS - 1);
	/* Interrupts open until it has arrived: a nested host may deliver it
	 * a little later than the next instruction. */
	while (u_msi_count[MSI_VECTORS - 1] == n)
		irq_wait_poll();
}

/* The same with HLT between: the vCPU halts with the IPI pending, exits to
 * KVM for the HLT, and KVM sees the interrupt and enters again. Minus the
 * self-IPI loop, this is the HLT exit. */
static void act_hlt(uint64_t i)
{
	(void)i;
	uint64_t n = u_msi_count[MSI_VECTORS - 1];
	apic_send_ipi(apic_id(), VEC_MSI_BASE + MSI_VECTORS - 1);
	__asm__ volatile("sti; hlt; cli" ::: "memory");
	while (u_msi_count[MSI_VECTORS - 1] == n)
		irq_wait_poll();
}

/* First touch of a guest page hvmm's RAM never had backed yet: a nested page
 * fault (NPT/EPT violation) that KVM fixes by faulting the host page in. */
/* PAUSE: no exit at all unless the host does pause-loop exiting (Intel's
 * PLE, AMD's pause filter), which a long enough run of PAUSEs trips; then
 * KVM takes the exit and yields the CPU to another vCPU if it can. */
static void act_pause(uint64_t i) { (void)i; __asm__ volatile("pause" ::: "memory"); }

/* External interrupts: with IF clear nothing in the guest runs for them,
 * but each host interrupt that arrives while the vCPU is in guest mode
 * exits (the host must take it), and KVM re-enters. The guest sees that as
 * a gap in a loop that reads the TSC. Spins ms milliseconds; e gets the
 * number of gaps (iters) and their median length (cycles, ns). A gap is a
 * step 16 times the loop's own median step and at least 1 us: the host's
 * interrupt and its exit and entry, or the host running something else
 * meanwhile (preemption) — the lab sets the count beside KVM's irq_exits. */
static void exitcost_extint(struct exitcost *e, uint64_t ms)
{
	static uint64_t gaps[512];
	uint64_t step[64];
	uint64_t prev = rdtsc();
	for (unsigned i = 0; i < 64; i++) {
		uint64_t t = rdtsc();
		step[i] = t - prev;
		prev = t;
	}
	uint64_t us = clock_tsc_hz / 1000000 ? clock_tsc_hz / 1000000 : 1;
	uint64_t thr = 16 * median_u64(step, 64);
	if (thr < us)
		thr = us;
	uint64_t n = 0, end = rdtsc() + ms * 1000 * us;
	prev = rdtsc();
	while (prev < end) {
		uint64_t t = rdtsc();
		if (t - prev > thr) {
			if (n < 512)
				gaps[n] = t - prev; /* the median of the first 512 */
			n++;
		}
		prev = t;
	}
	e->iters = n;
	e->cycles = median_u64(gaps, (uint32_t)(n < 512 ? n : 512));
	e->ns = clock_tsc_to_ns(e->cycles * 1000) / 1000;
}

static uint64_t exitcost_fresh;
static void act_npt(uint64_t i) { *(volatile uint8_t *)(exitcost_fresh + i * PAGE_SIZE) = 1; }
/* The same pages again: mapped now, no exit. */
static void act_npt_again(uint64_t i) { *(volatile uint8_t *)(exitcost_fresh + i * PAGE_SIZE) = 2; }


/* Runs act in `batches` batches of up to iters/batches iterations, each at its
 * own indexes (first-touch loops need fresh pages every time). A batch also
 * ends after budget_cycles (0: no limit), so that a host where an exit costs
 * 100 us (a nested host under TCG) gets through in a second, not minutes. */
static void exitcost_time(struct exitcost *e, void (*act)(uint64_t), uint64_t iters, unsigned batches,
			  uint64_t budget_cycles)
{
	uint64_t per[EXITCOST_BATCHES];
	uint64_t n = iters / batches ? iters / batches : 1;
	e->iters = 0;
	for (unsigned b = 0; b < batches; b++) {
		uint64_t t0 = rdtsc(), i = 0, t = 0;
		while (i < n) {
			act(b * n + i++);
			t = rdtsc() - t0;
			if (budget_cycles && t > budget_cycles)
				break;
		}
		per[b] = t / i;
		e->iters += i;
	}
	e->cycles = median_u64(per, batches);
	e->ns = clock_tsc_to_ns(e->cycles * 1000) / 1000;
}

unsigned exitcost_run(struct exitcost *out, unsigned max, uint64_t iters)
{
	struct smp_irq_info info;
	smp_irq_info(&info);
	exitcost_ioapic = info.ioapic_base ? info.ioapic_base : 0xfec00000;
	mmio_write32(exitcost_ioapic, 1); /* IOREGSEL: the version register */

	const struct {
		const char *name, *what;
		void (*act)(uint64_t);
		uint64_t div; /* fewer iterations for the slow kinds */
	} kinds[] = {
		{ "none", "an empty loop that reads the TSC (the baseline: no exit)", act_nop, 1 },
		{ "cpuid", "CPUID leaf 0 (KVM)", act_cpuid, 10 },
		{ "msr", "RDMSR IA32_TSC_AUX (KVM)", act_rdmsr, 10 },
		{ "hypercall", "VMCALL/VMMCALL, unknown number (KVM)", act_vmcall, 10 },
		{ "pio", "IN from COM1's LSR (KVM, then hvmm's UART)", act_pio, 10 },
		{ "mmio", "read of the IOAPIC's data window (KVM, then hvmm's IOAPIC)", act_mmio, 10 },
		{ "ipi", "self-IPI through the ICR (an MSR in x2APIC mode, MMIO in xAPIC), delivered (KVM)", act_ipi, 10 },
		{ "hlt", "self-IPI, then HLT with it pending (KVM)", act_hlt, 10 },
		{ "pause", "PAUSE (no exit unless the host does pause-loop exiting; then KVM)", act_pause, 1 },
	};
	unsigned n = 0;
	__asm__ volatile("cli" ::: "memory");
	bool kvm = exitcost_on_kvm();
	if (!apic_timer_hz)
		apic_timer_calibrate(); /* for the HLT loop's backstop tick */
	/* 20 ms of TSC per batch at most: ~0.2 s per kind */
	uint64_t t0 = rdtsc();
	clock_spin_ns(1000000);
	uint64_t budget = (rdtsc() - t0) * 20;
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && n < max; k++, n++) {
		if (kinds[k].act == act_vmcall && !kvm) {
			n--;
			continue;
		}
		kprintf("# exitcost: %s\n", kinds[k].name); /* where a hang would be */
		out[n].name = kinds[k].name;
		out[n].what = kinds[k].what;
		/* A backstop for the HLT loop: in the nested host a HLT right after
		 * STI with the IPI already pending sometimes sleeps until something
		 * else comes (seen in 3 of 6 runs; the emulated CPU's interrupt
		 * shadow, not hvmm). A 100 Hz tick ends such a sleep within 10 ms;
		 * the median over batches keeps it out of the number. */
		bool tick = kinds[k].act == act_hlt && apic_timer_hz;
		if (tick)
			apic_timer_periodic(100);
		exitcost_time(&out[n], kinds[k].act, iters / kinds[k].div, EXITCOST_BATCHES, budget);
		if (tick)
			apic_timer_stop();
	}
	if (n < max) {
		kprintf("# exitcost: extint\n");
		out[n].name = "extint";
		out[n].what = "gaps in a 200 ms TSC loop with IF clear: host interrupts taken by exits (median gap)";
		exitcost_extint(&out[n++], 200);
	}
	/* Nested paging: 2048 pages (8 MiB) never touched, in 9 batches. */
	uint64_t pages = 2048;
	exitcost_fresh = mm_alloc_contig(pages * PAGE_SIZE);
	if (exitcost_fresh && n + 2 <= max) {
		out[n].name = "npt";
		out[n].what = "first write to each of 2048 pages never touched (a nested page fault where unmapped)";
		exitcost_time(&out[n++], act_npt, pages, EXITCOST_BATCHES, 0);
		out[n].name = "npt-mapped";
		out[n].what = "the same pages written again (mapped: no exit)";
		exitcost_time(&out[n++], act_npt_again, pages, EXITCOST_BATCHES, 0);
	}
	return n;
}
