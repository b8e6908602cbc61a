/* Unit tests for hvmm's local APIC model (src/lapic.c, lapic_timer.c,
 * lapic_route.c): registers, priorities, EOI, routing and the timer against
 * an explicit clock, with no KVM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "irq.h"
#include "lapic.h"
#include "lapic_priv.h"
#include "vcpu.h"
#include "vm.h"

static struct lapic_regs a;

static int setup(void **state)
{
	(void)state;
	lapic_reset(&a, 0, true);
	struct lapic_effect e;
	lapic_mmio_write(&a, LAPIC_REG_SVR, 4, 0x1ff, 0, &e); /* software enable */
	return 0;
}

static bool irr(const struct lapic_regs *r, int v)
{
	return r->irr[v >> 5] & (1u << (v & 31));
}

static bool isr(const struct lapic_regs *r, int v)
{
	return r->isr[v >> 5] & (1u << (v & 31));
}

static void test_reset_state(void **state)
{
	(void)state;
	struct lapic_regs r;
	lapic_reset(&r, 3, false);
	assert_int_equal(r.base, LAPIC_DEFAULT_BASE | LAPIC_BASE_EN);
	assert_int_equal(lapic_mmio_read(&r, LAPIC_REG_ID, 4, 0), 3u << 24);
	assert_int_equal(lapic_mmio_read(&r, LAPIC_REG_VER, 4, 0) & 0xff, 0x14);
	assert_int_equal(lapic_mmio_read(&r, LAPIC_REG_VER, 4, 0) >> 16, 5); /* 6 LVTs */
	assert_int_equal(lapic_mmio_read(&r, LAPIC_REG_DFR, 4, 0), 0xffffffffu);
	assert_int_equal(lapic_mmio_read(&r, LAPIC_REG_SVR, 4, 0), 0xff);
	assert_true(lapic_mmio_read(&r, LAPIC_REG_LVT_LINT0, 4, 0) & LAPIC_LVT_MASKED);
	assert_false(lapic_accepts_pic(&r)); /* an AP's LINT0 is masked */
	/* the boot CPU's LINT0 is the 8259's virtual wire */
	assert_true(lapic_accepts_pic(&a));
	assert_true(a.base & LAPIC_BASE_BSP);
}

static void test_ppr_and_pending(void **state)
{
	(void)state;
	assert_true(lapic_accept(&a, LAPIC_DM_FIXED, 0x41, false, true));
	assert_int_equal(lapic_pending_vector(&a), 0x41);
	/* TPR class 4 blocks vector 0x41 (class 4): not strictly above */
	struct lapic_effect e;
	lapic_mmio_write(&a, LAPIC_REG_TPR, 4, 0x40, 0, &e);
	assert_int_equal(lapic_ppr(&a), 0x40);
	assert_int_equal(lapic_pending_vector(&a), -1);
	assert_int_equal(lapic_highest_irr(&a), 0x41); /* still there for HLT */
	lapic_mmio_write(&a, LAPIC_REG_TPR, 4, 0x3f, 0, &e);
	assert_int_equal(lapic_pending_vector(&a), 0x41);
	/* acknowledge: IRR → ISR, and the in-service class now sets PPR */
	lapic_ack(&a, 0x41);
	assert_false(irr(&a, 0x41));
	assert_true(isr(&a, 0x41));
	assert_int_equal(lapic_ppr(&a), 0x40);
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_PPR, 4, 0), 0x40);
	/* same class waits for the EOI, a higher class preempts */
	lapic_accept(&a, LAPIC_DM_FIXED, 0x45, false, true);
	assert_int_equal(lapic_pending_vector(&a), -1);
	lapic_accept(&a, LAPIC_DM_FIXED, 0x51, false, true);
	assert_int_equal(lapic_pending_vector(&a), 0x51);
	lapic_mmio_write(&a, LAPIC_REG_TPR, 4, 0, 0, &e);
	lapic_mmio_write(&a, LAPIC_REG_EOI, 4, 0, 0, &e);
	assert_int_equal(e.eoi_level_vector, -1); /* edge: nothing for the IOAPIC */
	assert_false(isr(&a, 0x41));
	assert_int_equal(lapic_pending_vector(&a), 0x51);
	/* registers read back through the MMIO view */
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_IRR + 0x20, 4, 0), (1u << 5) | (1u << 17));
}

static void test_eoi_level_tmr(void **state)
{
	(void)state;
	lapic_accept(&a, LAPIC_DM_FIXED, 0x61, true, true); /* level, from an IOAPIC pin */
	assert_true(a.tmr[3] & (1u << 1));
	lapic_ack(&a, 0x61);
	struct lapic_effect e;
	lapic_mmio_write(&a, LAPIC_REG_EOI, 4, 0, 0, &e);
	assert_int_equal(e.eoi_level_vector, 0x61);
	/* TMR keeps its value until the vector's next acceptance (SDM) */
	assert_true(a.tmr[3] & (1u << 1));
	lapic_accept(&a, LAPIC_DM_FIXED, 0x61, false, true);
	assert_false(a.tmr[3] & (1u << 1));
	lapic_ack(&a, 0x61);
	assert_int_equal(lapic_eoi(&a), -1);
	/* EOI with nothing in service does nothing */
	assert_int_equal(lapic_eoi(&a), -1);
}

static void test_accept_rules(void **state)
{
	(void)state;
	struct lapic_effect e;
	/* vectors 0-15 are illegal: ESR bit 6 after the latching write */
	lapic_accept(&a, LAPIC_DM_FIXED, 3, false, true);
	assert_int_equal(lapic_highest_irr(&a), -1);
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_ESR, 4, 0), 0);
	lapic_mmio_write(&a, LAPIC_REG_ESR, 4, 0, 0, &e);
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_ESR, 4, 0), LAPIC_ESR_RECV_ILLEGAL);
	/* NMI, INIT, SIPI, ExtINT are flags for the vCPU thread */
	assert_true(lapic_accept(&a, LAPIC_DM_NMI, 0, false, true));
	assert_true(a.nmi_pending);
	assert_false(lapic_accept(&a, LAPIC_DM_INIT, 0, true, false)); /* level de-assert */
	assert_true(lapic_accept(&a, LAPIC_DM_INIT, 0, true, true));
	assert_true(a.init_pending);
	assert_true(lapic_accept(&a, LAPIC_DM_SIPI, 0x9a, false, true));
	assert_true(a.sipi_pending);
	assert_int_equal(a.sipi_vector, 0x9a);
	/* a software-disabled APIC drops fixed interrupts and masks its LVTs */
	lapic_mmio_write(&a, LAPIC_REG_SVR, 4, 0xff, 0, &e);
	assert_false(lapic_accept(&a, LAPIC_DM_FIXED, 0x80, false, true));
	assert_true(a.lvt[LAPIC_LVT_LINT0] & LAPIC_LVT_MASKED);
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x30, 0, &e);
	assert_true(a.lvt[LAPIC_LVT_TIMER] & LAPIC_LVT_MASKED);
}

static void test_icr_send_and_errors(void **state)
{
	(void)state;
	struct lapic_effect e;
	lapic_mmio_write(&a, LAPIC_REG_ICR_HI, 4, 0x02000000u, 0, &e);
	lapic_mmio_write(&a, LAPIC_REG_ICR_LO, 4, 0x4000 | 0x842, 0, &e); /* logical, fixed, 0x42 */
	assert_true(e.send);
	assert_int_equal(e.msg.dest, 2);
	assert_true(e.msg.logical);
	assert_int_equal(e.msg.dm, LAPIC_DM_FIXED);
	assert_int_equal(e.msg.vector, 0x42);
	/* delivery status reads idle: hvmm delivers at once */
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_ICR_LO, 4, 0) & (1u << 12), 0);
	/* a fixed IPI with vector < 16: not sent, ESR bit 5 */
	lapic_mmio_write(&a, LAPIC_REG_ICR_LO, 4, 0x4005, 0, &e);
	assert_false(e.send);
	lapic_mmio_write(&a, LAPIC_REG_ESR, 4, 0, 0, &e);
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_ESR, 4, 0), LAPIC_ESR_SEND_ILLEGAL);
	/* unaligned or narrow writes do not reach a register */
	lapic_mmio_write(&a, LAPIC_REG_TPR + 1, 1, 0x7f, 0, &e);
	assert_int_equal(a.tpr, 0);
	assert_int_equal(lapic_mmio_read(&a, 0x2000, 4, 0), 0); /* out of the page */
}

static void test_x2apic_msrs(void **state)
{
	(void)state;
	struct lapic_regs r;
	lapic_reset(&r, 0x23, false);
	struct lapic_effect e;
	uint64_t v;
	/* MSRs #GP in xAPIC mode */
	assert_false(lapic_msr_read(&r, 0x802, &v, 0));
	/* transitions: xAPIC → x2APIC only with CPUID's x2APIC */
	assert_false(lapic_set_base(&r, r.base | LAPIC_BASE_EXTD, false));
	assert_true(lapic_set_base(&r, r.base | LAPIC_BASE_EXTD, true));
	assert_true(lapic_x2apic(&r));
	assert_true(lapic_msr_read(&r, 0x802, &v, 0));
	assert_int_equal(v, 0x23);
	/* LDR: cluster 2, bit 3 */
	assert_true(lapic_msr_read(&r, 0x80d, &v, 0));
	assert_int_equal(v, (2u << 16) | (1u << 3));
	/* x2APIC → xAPIC directly: #GP; reserved bits: #GP */
	assert_false(lapic_set_base(&r, (r.base & ~LAPIC_BASE_EXTD), true));
	assert_false(lapic_set_base(&r, r.base | 1, true));
	/* DFR is gone, EOI takes only 0, the upper half is reserved */
	assert_false(lapic_msr_read(&r, 0x80e, &v, 0));
	lapic_msr_write(&r, 0x80b, 1, 0, &e);
	assert_true(e.gp);
	lapic_msr_write(&r, 0x808, 1ull << 32, 0, &e);
	assert_true(e.gp);
	/* ICR: one 64-bit write, 32-bit destination */
	lapic_msr_write(&r, 0x80f, 0x1ff, 0, &e); /* software enable */
	lapic_msr_write(&r, 0x830, (0x12345ull << 32) | 0x4051, 0, &e);
	assert_true(e.send);
	assert_true(e.msg.x2apic_dest);
	assert_int_equal(e.msg.dest, 0x12345);
	assert_true(lapic_msr_read(&r, 0x830, &v, 0));
	assert_int_equal(v, (0x12345ull << 32) | 0x4051);
	/* SELF IPI */
	lapic_msr_write(&r, 0x83f, 0x66, 0, &e);
	assert_true(e.send);
	assert_int_equal(e.msg.shorthand, 1);
	assert_int_equal(e.msg.vector, 0x66);
	/* disable: through disabled back to xAPIC, state reset but the ID */
	r.tpr = 0x50;
	assert_true(lapic_set_base(&r, LAPIC_DEFAULT_BASE, true));
	assert_false(lapic_hw_enabled(&r));
	assert_int_equal(r.tpr, 0);
	assert_false(lapic_set_base(&r, LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | LAPIC_BASE_EXTD, true));
	assert_true(lapic_set_base(&r, LAPIC_DEFAULT_BASE | LAPIC_BASE_EN, true));
	assert_int_equal(lapic_cur_id(&r), 0x23);
	/* the BSP bit is read-only */
	assert_false(r.base & LAPIC_BASE_BSP);
}

static void test_msi_decode(void **state)
{
	(void)state;
	struct lapic_msg m;
	assert_true(lapic_msi_decode(0xfee03004ull, 0xc000 | 0x100 | 0x33, &m));
	assert_int_equal(m.dest, 3);
	assert_true(m.logical);
	assert_int_equal(m.dm, LAPIC_DM_LOWEST);
	assert_int_equal(m.vector, 0x33);
	assert_true(m.level && m.assert);
	assert_false(lapic_msi_decode(0xfed00000ull, 0x33, &m));
	assert_false(lapic_msi_decode(0x1fee00000ull, 0x33, &m));
}

/* Four APICs: IDs 0-3; logical IDs set per case. */
static struct lapic_regs cpus[4];
static struct lapic_regs *ptrs[4];

static void four(uint32_t dfr)
{
	for (int i = 0; i < 4; i++) {
		lapic_reset(&cpus[i], (uint32_t)i, i == 0);
		cpus[i].svr = 0x1ff;
		cpus[i].dfr = dfr;
		ptrs[i] = &cpus[i];
	}
}

static void test_route_physical_and_shorthands(void **state)
{
	(void)state;
	four(0xffffffffu);
	struct lapic_msg m = { .dest = 2, .dm = LAPIC_DM_FIXED, .vector = 0x40 };
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 1u << 2);
	m.dest = 0xff; /* broadcast */
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0xf);
	m.dest = 7;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0);
	m.shorthand = 1; /* self */
	assert_int_equal(lapic_route(ptrs, 4, 1, &m, NULL), 1u << 1);
	m.shorthand = 2; /* all including self */
	assert_int_equal(lapic_route(ptrs, 4, 1, &m, NULL), 0xf);
	m.shorthand = 3; /* all excluding self */
	assert_int_equal(lapic_route(ptrs, 4, 1, &m, NULL), 0xd);
	/* a globally disabled APIC matches no destination */
	m.shorthand = 0;
	m.dest = 2;
	cpus[2].base &= ~LAPIC_BASE_EN;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0);
	/* an xAPIC ID rewritten by the guest is what physical mode matches */
	cpus[3].xapic_id = 9u << 24;
	m.dest = 9;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 1u << 3);
}

static void test_route_logical(void **state)
{
	(void)state;
	four(0xffffffffu); /* flat */
	for (int i = 0; i < 4; i++)
		cpus[i].ldr = (1u << i) << 24;
	struct lapic_msg m = { .dest = 0x3, .logical = true, .dm = LAPIC_DM_FIXED, .vector = 0x40 };
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0x3);
	m.dest = 0xc;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0xc);
	/* cluster: two clusters of two */
	four(0x0fffffffu);
	cpus[0].ldr = 0x11u << 24;
	cpus[1].ldr = 0x12u << 24;
	cpus[2].ldr = 0x21u << 24;
	cpus[3].ldr = 0x22u << 24;
	m.dest = 0x13; /* cluster 1, both */
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0x3);
	m.dest = 0x22;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0x8);
	m.dest = 0xf1; /* every cluster, member 1 */
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0x5);
	/* x2APIC: cluster in 31:16, members in 15:0 */
	four(0xffffffffu);
	for (int i = 0; i < 4; i++)
		assert_true(lapic_set_base(&cpus[i], cpus[i].base | LAPIC_BASE_EXTD, true));
	m = (struct lapic_msg){ .dest = 0x5, .logical = true, .x2apic_dest = true, .vector = 0x40 };
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0x5);
	m.dest = 0x10005; /* cluster 1: nobody */
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0);
	m = (struct lapic_msg){ .dest = 0xffffffffu, .x2apic_dest = true, .vector = 0x40 };
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, NULL), 0xf);
}

static void test_route_lowest_priority(void **state)
{
	(void)state;
	four(0xffffffffu);
	for (int i = 0; i < 4; i++)
		cpus[i].ldr = (1u << i) << 24;
	cpus[0].tpr = 0x20;
	cpus[1].tpr = 0x10;
	cpus[2].tpr = 0x10;
	cpus[3].tpr = 0x00;
	struct lapic_msg m = { .dest = 0x7, .logical = true, .dm = LAPIC_DM_LOWEST, .vector = 0x40 };
	unsigned rr = 0;
	/* 0, 1, 2 match; 1 and 2 share the lowest TPR: they take turns */
	uint64_t first = lapic_route(ptrs, 4, -1, &m, &rr);
	uint64_t second = lapic_route(ptrs, 4, -1, &m, &rr);
	assert_true((first == 0x2 && second == 0x4) || (first == 0x4 && second == 0x2));
	m.dest = 0xf;
	assert_int_equal(lapic_route(ptrs, 4, -1, &m, &rr), 0x8);
}

static void test_timer_oneshot_periodic(void **state)
{
	(void)state;
	struct lapic_effect e;
	const uint64_t t0 = 1000000;
	lapic_mmio_write(&a, LAPIC_REG_TDCR, 4, 0x3, t0, &e); /* ÷16 */
	assert_int_equal(lapic_timer_divisor(a.tdcr), 16);
	assert_int_equal(lapic_timer_divisor(0xb), 1);
	assert_int_equal(lapic_timer_divisor(0xa), 128);
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x30, t0, &e); /* one-shot, vector 0x30 */
	lapic_mmio_write(&a, LAPIC_REG_TMICT, 4, 1000, t0, &e); /* 16 us */
	assert_int_equal(a.timer_period_ns, 16000);
	assert_true(e.timer_changed);
	assert_int_equal(a.timer_next_ns, t0 + 16000);
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_TMCCT, 4, t0 + 8000), 500);
	assert_false(lapic_timer_tick(&a, t0 + 15999));
	assert_true(lapic_timer_tick(&a, t0 + 16000));
	assert_true(irr(&a, 0x30));
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_TMCCT, 4, t0 + 16001), 0);
	assert_false(lapic_timer_tick(&a, t0 + 40000)); /* once only */
	/* periodic, period 1.6 ms: re-armed on the same phase */
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x20031, t0, &e);
	assert_int_equal(a.timer_next_ns, 0); /* the mode switch stopped it */
	lapic_mmio_write(&a, LAPIC_REG_TMICT, 4, 100000, t0, &e);
	assert_true(lapic_timer_tick(&a, t0 + 1600000));
	assert_int_equal(a.timer_next_ns, t0 + 3200000);
	assert_true(lapic_timer_tick(&a, t0 + 3250000));
	assert_int_equal(a.timer_next_ns, t0 + 4800000);
	/* a host away for several periods: one interrupt, the phase kept */
	assert_true(lapic_timer_tick(&a, t0 + 10000000));
	assert_int_equal(a.timer_next_ns, t0 + 11200000);
	assert_true(irr(&a, 0x31));
	/* a new divisor rescales what is left: 1.2 ms left at ÷16 = 75000
	 * counts, at ÷2 that is 150 us */
	lapic_mmio_write(&a, LAPIC_REG_TDCR, 4, 0x0, t0 + 10000000, &e);
	assert_int_equal(a.timer_next_ns, t0 + 10150000);
	assert_int_equal(a.timer_period_ns, 200000);
	/* a periodic timer never runs faster than every 200 us (KVM's floor);
	 * a one-shot may be as short as it likes (above: 16 us) */
	lapic_mmio_write(&a, LAPIC_REG_TMICT, 4, 1, t0 + 10000000, &e);
	assert_int_equal(a.timer_period_ns, 200000);
	assert_int_equal(a.timer_next_ns, t0 + 10200000);
	/* masked: the timer runs, no interrupt */
	memset(a.irr, 0, sizeof(a.irr));
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x30031, t0, &e);
	assert_false(lapic_timer_tick(&a, t0 + 20000000));
	assert_int_equal(lapic_highest_irr(&a), -1);
	/* TMICT 0 stops it */
	lapic_mmio_write(&a, LAPIC_REG_TMICT, 4, 0, t0, &e);
	assert_int_equal(a.timer_next_ns, 0);
}

static void test_timer_tsc_deadline(void **state)
{
	(void)state;
	struct lapic_effect e;
	const uint64_t now = 5000000;
	/* outside TSC-deadline mode the MSR write is dropped */
	lapic_timer_write_deadline(&a, 123456, now, 1000, 2000000);
	assert_int_equal(a.tsc_deadline, 0);
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x40040, now, &e); /* mode 2, vector 0x40 */
	assert_int_equal(lapic_timer_mode(&a), LAPIC_TIMER_TSC_DEADLINE);
	/* TMICT is ignored in this mode */
	lapic_mmio_write(&a, LAPIC_REG_TMICT, 4, 1000, now, &e);
	assert_int_equal(a.tmict, 0);
	assert_int_equal(a.timer_next_ns, 0);
	/* 2 GHz guest TSC (2,000,000 kHz): 4000 cycles ahead is 2 us */
	lapic_timer_write_deadline(&a, 1004000, now, 1000000, 2000000);
	assert_int_equal(a.tsc_deadline, 1004000);
	assert_int_equal(a.timer_next_ns, now + 2000);
	/* disarm with 0 */
	lapic_timer_write_deadline(&a, 0, now, 1000000, 2000000);
	assert_int_equal(a.timer_next_ns, 0);
	assert_false(lapic_timer_tick(&a, now + 1000000));
	/* re-arm, fire: IRR set, the MSR reads 0 afterwards */
	lapic_timer_write_deadline(&a, 1004000, now, 1000000, 2000000);
	assert_false(lapic_timer_tick(&a, now + 1999));
	assert_true(lapic_timer_tick(&a, now + 2000));
	assert_true(irr(&a, 0x40));
	assert_int_equal(a.tsc_deadline, 0);
	/* a deadline already past fires at the next look */
	lapic_timer_write_deadline(&a, 500, now, 1000000, 2000000);
	assert_true(lapic_timer_tick(&a, now));
	/* TMCCT reads 0 in this mode */
	assert_int_equal(lapic_mmio_read(&a, LAPIC_REG_TMCCT, 4, now), 0);
	/* leaving the mode drops the deadline */
	lapic_timer_write_deadline(&a, 1004000, now, 1000000, 2000000);
	lapic_mmio_write(&a, LAPIC_REG_LVT_TIMER, 4, 0x40, now, &e);
	assert_int_equal(a.tsc_deadline, 0);
	assert_int_equal(a.timer_next_ns, 0);
}

static void test_init_reset_keeps_identity(void **state)
{
	(void)state;
	struct lapic_effect e;
	lapic_mmio_write(&a, LAPIC_REG_ID, 4, 0x05000000, 0, &e);
	lapic_mmio_write(&a, LAPIC_REG_TPR, 4, 0x30, 0, &e);
	lapic_accept(&a, LAPIC_DM_FIXED, 0x70, false, true);
	lapic_init_reset(&a);
	assert_int_equal(lapic_cur_id(&a), 5);
	assert_int_equal(a.tpr, 0);
	assert_int_equal(lapic_highest_irr(&a), -1);
	assert_true(a.base & LAPIC_BASE_EN);
	assert_false(lapic_sw_enabled(&a));
}


/* ---- delivery through the VM (lapic_vcpu.c, irq.c in user mode), no KVM ---- */

static struct vm uvm;
static struct vcpu uv[3];

static void user_vm(bool posted)
{
	memset(&uvm, 0, sizeof(uvm));
	uvm.vm_fd = uvm.kvm_fd = -1;
	uvm.cfg.irqchip = IRQCHIP_USER;
	uvm.cfg.posted_interrupts = posted;
	uvm.ncpus = 3;
	/* user mode: irq.c keeps the routes, nothing goes to KVM */
	assert_int_equal(irq_init(&uvm), 0);
	for (int i = 0; i < 3; i++) {
		uv[i] = (struct vcpu){ .vm = &uvm, .id = i, .fd = -1 };
		uvm.vcpus[i] = &uv[i];
		assert_int_equal(lapic_vcpu_create(&uv[i], true), 0);
		lapic_vcpu_regs(&uv[i])->svr = 0x1ff;
	}
}

static void user_vm_free(void)
{
	for (int i = 0; i < 3; i++)
		lapic_vcpu_destroy(&uv[i]);
	irq_destroy(&uvm);
}

/* With --posted-interrupts off: every interrupt remapped, straight into
 * the target's IRR. */
static void test_deliver_msi_and_ipi(void **state)
{
	(void)state;
	user_vm(false);
	/* an MSI to APIC 1, fixed, edge */
	assert_int_equal(lapic_deliver_msi(&uvm, 0xfee01000ull, 0x44, LAPIC_SRC_MSI), 0);
	assert_true(irr(lapic_vcpu_regs(&uv[1]), 0x44));
	assert_false(irr(lapic_vcpu_regs(&uv[0]), 0x44));
	/* irq_signal_msi goes the same way in user mode (no KVM_SIGNAL_MSI) */
	assert_int_equal(irq_signal_msi(&uvm, 0xfee02000ull, 0x45), 0);
	assert_true(irr(lapic_vcpu_regs(&uv[2]), 0x45));
	assert_int_equal(lapic_deliver_msi(&uvm, 0xfed00000ull, 0x45, LAPIC_SRC_MSI), -EINVAL);
	/* an IOAPIC pin's route (bookkeeping only in user mode: no KVM table),
	 * fired: level-triggered vector 0x46 to APIC 2, TMR set */
	assert_int_equal(irq_route_msi(&uvm, 5, 0xfee02000ull, 0xc046), 0);
	irq_pin_fire(&uvm, 5, false);
	struct lapic_regs *r2 = lapic_vcpu_regs(&uv[2]);
	assert_true(irr(r2, 0x46));
	assert_true(r2->tmr[2] & (1u << 6));
	/* an unrouted pin sends nothing */
	irq_pin_fire(&uvm, 6, true);
	/* an IPI from vCPU 0 to all but itself: counted on both sides */
	struct lapic_msg m = { .shorthand = 3, .dm = LAPIC_DM_FIXED, .vector = 0x50 };
	lapic_deliver(&uvm, &m, 0, LAPIC_SRC_IPI);
	assert_false(irr(lapic_vcpu_regs(&uv[0]), 0x50));
	assert_true(irr(lapic_vcpu_regs(&uv[1]), 0x50) && irr(r2, 0x50));
	assert_int_equal(lapic_vcpu_stats(&uv[0])->ipis_sent, 1);
	assert_int_equal(lapic_vcpu_stats(&uv[1])->ipis_received, 1);
	assert_int_equal(lapic_vcpu_stats(&uv[2])->ipis_received, 1);
	/* INIT then SIPI to APIC 1 */
	m = (struct lapic_msg){ .dest = 1, .dm = LAPIC_DM_INIT, .level = true, .assert = true };
	lapic_deliver(&uvm, &m, 0, LAPIC_SRC_IPI);
	m = (struct lapic_msg){ .dest = 1, .dm = LAPIC_DM_SIPI, .vector = 0x9f };
	lapic_deliver(&uvm, &m, 0, LAPIC_SRC_IPI);
	struct lapic_regs *r1 = lapic_vcpu_regs(&uv[1]);
	assert_true(r1->init_pending && r1->sipi_pending);
	assert_int_equal(r1->sipi_vector, 0x9f);
	user_vm_free();
}

/* The IRT entry: posted only for one vCPU, fixed or lowest priority, edge,
 * a vector from 16, and posting on. */
static void test_irte(void **state)
{
	(void)state;
	struct lapic_msg m = { .dm = LAPIC_DM_FIXED, .vector = 0x41 };
	struct lapic_irte e = lapic_irte_for(true, &m, 1ull << 5);
	assert_int_equal(e.mode, LAPIC_IRTE_POSTED);
	assert_int_equal(e.vcpu, 5);
	assert_int_equal(e.vector, 0x41);
	m.dm = LAPIC_DM_LOWEST;
	assert_int_equal(lapic_irte_for(true, &m, 1).mode, LAPIC_IRTE_POSTED);
	assert_int_equal(lapic_irte_for(false, &m, 1).mode, LAPIC_IRTE_REMAPPED); /* posting off */
	assert_int_equal(lapic_irte_for(true, &m, 3).mode, LAPIC_IRTE_REMAPPED);  /* two vCPUs */
	assert_int_equal(lapic_irte_for(true, &m, 0).mode, LAPIC_IRTE_REMAPPED);  /* nobody */
	m.level = true;
	assert_int_equal(lapic_irte_for(true, &m, 1).mode, LAPIC_IRTE_REMAPPED); /* EOI to the IOAPIC */
	m.level = false;
	m.vector = 0x0f;
	assert_int_equal(lapic_irte_for(true, &m, 1).mode, LAPIC_IRTE_REMAPPED); /* illegal: the APIC's */
	m.vector = 0x41;
	const uint8_t dms[] = { LAPIC_DM_NMI, LAPIC_DM_INIT, LAPIC_DM_SIPI, LAPIC_DM_EXTINT, LAPIC_DM_SMI };
	for (size_t i = 0; i < sizeof(dms); i++) {
		m.dm = dms[i];
		assert_int_equal(lapic_irte_for(true, &m, 1).mode, LAPIC_IRTE_REMAPPED);
	}
}

/* Posted (the default with --irqchip user): an MSI, an IOAPIC edge pin and
 * a unicast IPI land in the target's PIR, not its IRR, and notify per the
 * target's state; a level pin and a broadcast IPI are remapped; the vCPU
 * going to running takes PIR into IRR. */
static void test_deliver_posted(void **state)
{
	(void)state;
	user_vm(true);
	struct lapic_regs *r1 = lapic_vcpu_regs(&uv[1]), *r2 = lapic_vcpu_regs(&uv[2]);
	const struct lapic_stats *s1 = lapic_vcpu_stats(&uv[1]), *s2 = lapic_vcpu_stats(&uv[2]);
	/* vCPU 1 is ready (created, not yet in the guest): SN set */
	assert_int_equal(lapic_deliver_msi(&uvm, 0xfee01000ull, 0x44, LAPIC_SRC_MSI), 0);
	assert_false(irr(r1, 0x44));
	assert_int_equal(s1->irt[LAPIC_SRC_MSI][LAPIC_IRTE_POSTED], 1);
	assert_int_equal(s1->suppressed, 1);
	/* an edge IOAPIC pin to vCPU 1: posted too; a level one to vCPU 2
	 * remapped (its EOI must reach the IOAPIC: TMR) */
	assert_int_equal(irq_route_msi(&uvm, 5, 0xfee01000ull, 0x0047), 0);
	irq_pin_fire(&uvm, 5, true);
	assert_int_equal(s1->irt[LAPIC_SRC_IOAPIC][LAPIC_IRTE_POSTED], 1);
	assert_int_equal(irq_route_msi(&uvm, 6, 0xfee02000ull, 0xc046), 0);
	irq_pin_fire(&uvm, 6, false);
	assert_true(irr(r2, 0x46));
	assert_true(r2->tmr[2] & (1u << 6));
	assert_int_equal(s2->irt[LAPIC_SRC_IOAPIC][LAPIC_IRTE_REMAPPED], 1);
	/* a unicast IPI from vCPU 0 to vCPU 1: posted, counted as received */
	struct lapic_msg m = { .dest = 1, .dm = LAPIC_DM_FIXED, .vector = 0x50 };
	lapic_deliver(&uvm, &m, 0, LAPIC_SRC_IPI);
	assert_false(irr(r1, 0x50));
	assert_int_equal(s1->ipis_received, 1);
	assert_int_equal(s1->irt[LAPIC_SRC_IPI][LAPIC_IRTE_POSTED], 1);
	/* to all but itself: two destinations, remapped */
	m = (struct lapic_msg){ .shorthand = 3, .dm = LAPIC_DM_FIXED, .vector = 0x51 };
	lapic_deliver(&uvm, &m, 0, LAPIC_SRC_IPI);
	assert_true(irr(r1, 0x51) && irr(r2, 0x51));
	assert_int_equal(s1->irt[LAPIC_SRC_IPI][LAPIC_IRTE_REMAPPED], 1);
	assert_int_equal(s1->suppressed, 3);
	assert_int_equal(s1->notify_active + s1->notify_wakeup, 0);
	/* scheduled in: what waited in PIR is in IRR now, TMR clear */
	lapic_vcpu_take_posted(&uv[1]);
	assert_true(irr(r1, 0x44) && irr(r1, 0x47) && irr(r1, 0x50));
	assert_false(r1->tmr[2] & (1u << 4));
	assert_int_equal(s1->pir_taken, 3);
	user_vm_free();
}

/* Device interrupt latency (lapic_lat.c): a raise stamps the vector with
 * the time and the vCPU's state; raises while it waits merge into the
 * first; the injection counts one sample under the state at the raise;
 * what no device raised (IPIs, the timer) or a second injection counts
 * nothing. */
static void test_dev_latency(void **state)
{
	(void)state;
	struct lapic l;
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.lock, NULL);
	struct vcpu v = { .lapic = &l };
	struct lapic_lat_summary ls;
	/* statistics off: nothing stamped, nothing counted */
	lapic_lat_raised(&l, 0x44);
	assert_int_equal(l.dev_raised[0x44], 0);
	assert_non_null(l.lat = lapic_lat_alloc());
	l.state = PI_HALTED;
	lapic_lat_raised(&l, 0x44);
	uint64_t first = l.dev_raised[0x44];
	assert_int_equal(first & 3, PI_HALTED + 1);
	struct timespec ms2 = { 0, 2000000 };
	nanosleep(&ms2, NULL);
	l.state = PI_RUNNING;
	lapic_lat_raised(&l, 0x44); /* merges: the first raise's time and state */
	assert_int_equal(l.dev_raised[0x44], first);
	lapic_lat_injected(&l, 0x44);
	assert_int_equal(l.dev_raised[0x44], 0);
	lapic_lat_injected(&l, 0x44); /* nothing waiting: no sample */
	lapic_lat_injected(&l, 0x45); /* never raised by a device */
	assert_true(lapic_vcpu_dev_latency(&v, PI_HALTED, &ls));
	assert_int_equal(ls.n, 1);
	assert_true(ls.median_ns >= 2000000 && ls.max_ns == ls.median_ns);
	assert_true(lapic_vcpu_dev_latency(&v, PI_RUNNING, &ls));
	assert_int_equal(ls.n, 0);
	/* many samples while running: the median of the kept ones */
	for (int i = 0; i < 3 * LAPIC_LAT_KEEP; i++) {
		lapic_lat_raised(&l, 0x60);
		lapic_lat_injected(&l, 0x60);
	}
	assert_true(lapic_vcpu_dev_latency(&v, PI_RUNNING, &ls));
	assert_int_equal(ls.n, 3 * LAPIC_LAT_KEEP);
	assert_true(ls.median_ns <= ls.p90_ns && ls.p90_ns <= ls.max_ns && ls.median_ns < 2000000);
	assert_false(lapic_vcpu_dev_latency(&v, PI_NR_STATES, &ls));
	lapic_lat_free(&l);
	pthread_mutex_destroy(&l.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dev_latency),
		cmocka_unit_test_setup(test_reset_state, setup),
		cmocka_unit_test_setup(test_ppr_and_pending, setup),
		cmocka_unit_test_setup(test_eoi_level_tmr, setup),
		cmocka_unit_test_setup(test_accept_rules, setup),
		cmocka_unit_test_setup(test_icr_send_and_errors, setup),
		cmocka_unit_test_setup(test_x2apic_msrs, setup),
		cmocka_unit_test_setup(test_msi_decode, setup),
		cmocka_unit_test_setup(test_route_physical_and_shorthands, setup),
		cmocka_unit_test_setup(test_route_logical, setup),
		cmocka_unit_test_setup(test_route_lowest_priority, setup),
		cmocka_unit_test_setup(test_timer_oneshot_periodic, setup),
		cmocka_unit_test_setup(test_timer_tsc_deadline, setup),
		cmocka_unit_test_setup(test_init_reset_keeps_identity, setup),
		cmocka_unit_test(test_deliver_msi_and_ipi),
		cmocka_unit_test(test_irte),
		cmocka_unit_test(test_deliver_posted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
