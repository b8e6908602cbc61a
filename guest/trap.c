/*
 * trap: what happens on an exception or interrupt. A fault in ring 3 kills
 * the running task (the kernel goes on); a fault in ring 0 is a kernel bug
 * and panics with a distinct debug-exit code. User page faults in the demand
 * region are resolved here (the paging test).
 */
#include "trap.h"

#include "apic.h"
#include "arch.h"
#include "console.h"
#include "cpu.h"
#include "layout.h"
#include "mm.h"
#include "pci.h"
#include "task.h"

volatile int trap_quiet;

static const char *const trap_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
	"#SS stack fault", "#GP general protection", "#PF page fault", "reserved 15",
	"#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
	"#VE virtualization", "#CP control protection", "reserved 22", "reserved 23",
	"reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
	"#VC VMM communication", "#SX security", "reserved 31",
};

const char *trap_name(unsigned vector)
{
	return vector < 32 ? trap_names[vector] : "interrupt";
}

static void trap_report(struct trap_frame *f, uint64_t cr2, const char *what)
{
	kprintf("trap: %s (vector %lu) err=0x%lx rip=0x%lx cs=0x%lx rsp=0x%lx cr2=0x%lx cpu=%u: %s\n",
		trap_name((unsigned)f->vector), f->vector, f->err, f->rip, f->cs, f->rsp, cr2,
		cpu_self()->id, what);
}

volatile int trap_inject_mode;
struct trap_injected trap_injected[TRAP_INJECTED_MAX];
volatile unsigned trap_injected_n;

/* An event the host injected (test=inject): the mark first, so that the
 * host's clock sees the handler as early as possible. */
static int trap_take_injected(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;
	if (!(v == 2 || (v < 32 && v != 14 && v != VEC_BP) || v == VEC_INJECT_IRQ))
		return 0;
	outl(BOOT_MARKER_PORT, BOOT_MARK_INJECTED | v);
	unsigned i = trap_injected_n;
	if (i < TRAP_INJECTED_MAX)
		trap_injected[i] = (struct trap_injected){ v, f->err, f->rip, rdtsc() };
	trap_injected_n = i + 1;
	if (v >= 32)
		apic_eoi();
	return 1;
}

void trap_handle(struct trap_frame *f)
{
	struct cpu *c = cpu_self();
	if (trap_inject_mode && trap_take_injected(f))
		return;
	if (f->vector >= VEC_MSI_BASE && f->vector < VEC_MSI_BASE + MSI_VECTORS) {
		u_msi_count[f->vector - VEC_MSI_BASE]++; /* the ring-3 drivers read it */
		apic_eoi();
		return;
	}
	switch (f->vector) {
	case VEC_TIMER:
		c->ticks++;
		apic_eoi();
		return;
	case VEC_IPI:
		c->ipi_tsc = rdtsc();
		c->ipis++;
		apic_eoi();
		return;
	case VEC_SERIAL:
		console_rx_irq();
		apic_eoi();
		return;
	case VEC_SPURIOUS:
		return;
	}

	/* CR2 also after a #DF: it usually holds the address of the #PF that failed. */
	uint64_t cr2 = (f->vector == 14 || f->vector == 8) ? read_cr2() : 0;
	bool user = (f->cs & 3) == 3;
	if (user && f->vector == 14 && task_demand_fault(cr2, f->err))
		return;
	if (user && c->cur) {
		if (!trap_quiet)
			trap_report(f, cr2, "ring-3 task killed");
		task_kill((struct task_fault){ true, (uint32_t)f->vector, f->err, f->rip, cr2 });
	}
	trap_report(f, cr2, "in the kernel");
	panic("unexpected %s in ring %lu", trap_name((unsigned)f->vector), f->cs & 3);
}
