/*
 * lapic: the register file of one local APIC and its priority rules (Intel
 * SDM vol. 3, chapter "Advanced Programmable Interrupt Controller"). Pure
 * state: no KVM, no locks, time passed in. See lapic.h for the layers.
 */
#include "lapic.h"

#include <string.h>

#define LAPIC_VERSION 0x14 /* an integrated APIC, as KVM reports */
#define LAPIC_MAX_LVT (LAPIC_NR_LVT - 1)

static bool lapic_bit(const uint32_t *v, int vector)
{
	return v[vector >> 5] & (1u << (vector & 31));
}

static void lapic_bit_set(uint32_t *v, int vector)
{
	v[vector >> 5] |= 1u << (vector & 31);
}

static void lapic_bit_clear(uint32_t *v, int vector)
{
	v[vector >> 5] &= ~(1u << (vector & 31));
}

static int lapic_highest(const uint32_t *v)
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

void lapic_init_reset(struct lapic_regs *r)
{
	uint32_t id = r->id, xid = r->xapic_id;
	uint64_t base = r->base;
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->xapic_id = xid;
	r->base = base;
	r->dfr = 0xffffffffu;
	r->svr = 0xff; /* software-disabled, spurious vector 0xff */
	for (int i = 0; i < LAPIC_NR_LVT; i++)
		r->lvt[i] = LAPIC_LVT_MASKED;
	if (lapic_x2apic(r))
		r->ldr = ((id >> 4) << 16) | (1u << (id & 0xf));
}

void lapic_reset(struct lapic_regs *r, uint32_t id, bool bsp)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->xapic_id = id << 24;
	r->base = LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | (bsp ? LAPIC_BASE_BSP : 0);
	lapic_init_reset(r);
	/* What a PC BIOS leaves on the boot CPU, and KVM's LAPIC at reset: the
	 * 8259 reaches it through LINT0 in ExtINT mode (virtual wire), which
	 * firmware-less guests (kvm-unit-tests' realmode) rely on. */
	if (bsp)
		r->lvt[LAPIC_LVT_LINT0] = (uint32_t)LAPIC_DM_EXTINT << 8;
}

bool lapic_hw_enabled(const struct lapic_regs *r)
{
	return r->base & LAPIC_BASE_EN;
}

bool lapic_sw_enabled(const struct lapic_regs *r)
{
	return r->svr & LAPIC_SVR_ENABLE;
}

bool lapic_x2apic(const struct lapic_regs *r)
{
	return (r->base & (LAPIC_BASE_EN | LAPIC_BASE_EXTD)) == (LAPIC_BASE_EN | LAPIC_BASE_EXTD);
}

uint32_t lapic_cur_id(const struct lapic_regs *r)
{
	return lapic_x2apic(r) ? r->id : r->xapic_id >> 24;
}

uint32_t lapic_ppr(const struct lapic_regs *r)
{
	int isrv = lapic_highest(r->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (r->tpr & 0xf0) >= isr_class ? r->tpr & 0xff : isr_class;
}

int lapic_highest_irr(const struct lapic_regs *r)
{
	return lapic_highest(r->irr);
}

int lapic_pending_vector(const struct lapic_regs *r)
{
	if (!lapic_hw_enabled(r))
		return -1;
	int v = lapic_highest(r->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (lapic_ppr(r) & 0xf0))
		return -1;
	return v;
}

void lapic_ack(struct lapic_regs *r, int vector)
{
	if (vector < 0 || vector > 255)
		return;
	lapic_bit_clear(r->irr, vector);
	lapic_bit_set(r->isr, vector);
}

int lapic_eoi(struct lapic_regs *r)
{
	int v = lapic_highest(r->isr);
	if (v < 0)
		return -1;
	lapic_bit_clear(r->isr, v);
	/* TMR stays: it changes only when the next interrupt of this vector
	 * is accepted (SDM; kvm-unit-tests' ioapic test reads it back) */
	return lapic_bit(r->tmr, v) ? v : -1;
}

bool lapic_error(struct lapic_regs *r, uint32_t esr_bit)
{
	r->esr_pending |= esr_bit;
	uint32_t lvt = r->lvt[LAPIC_LVT_ERROR];
	if (lvt & LAPIC_LVT_MASKED || !lapic_sw_enabled(r) || (lvt & 0xff) < 16)
		return false;
	lapic_bit_set(r->irr, (int)(lvt & 0xff));
	lapic_bit_clear(r->tmr, (int)(lvt & 0xff));
	return true;
}

bool lapic_accept(struct lapic_regs *r, uint8_t dm, uint8_t vector, bool level, bool assert)
{
	if (!lapic_hw_enabled(r))
		return false;
	switch (dm) {
	case LAPIC_DM_FIXED:
	case LAPIC_DM_LOWEST:
		/* a software-disabled APIC drops fixed interrupts (KVM does too) */
		if (!lapic_sw_enabled(r))
			return false;
		if (vector < 16) {
			lapic_error(r, LAPIC_ESR_RECV_ILLEGAL);
			return true;
		}
		lapic_bit_set(r->irr, vector);
		if (level)
			lapic_bit_set(r->tmr, vector);
		else
			lapic_bit_clear(r->tmr, vector);
		return true;
	case LAPIC_DM_NMI:
		r->nmi_pending = true;
		return true;
	case LAPIC_DM_INIT:
		/* The level de-assert that older start-up sequences send after
		 * the INIT does nothing on an integrated APIC. */
		if (level && !assert)
			return false;
		r->init_pending = true;
		r->sipi_pending = false;
		return true;
	case LAPIC_DM_SIPI:
		r->sipi_pending = true;
		r->sipi_vector = vector;
		return true;
	case LAPIC_DM_EXTINT:
		r->extint_pending = true;
		return true;
	default: /* SMI: no SMM here; reserved modes */
		return false;
	}
}

bool lapic_accepts_pic(const struct lapic_regs *r)
{
	if (!lapic_hw_enabled(r))
		return true;
	uint32_t lint0 = r->lvt[LAPIC_LVT_LINT0];
	return !(lint0 & LAPIC_LVT_MASKED) && ((lint0 >> 8) & 7) == LAPIC_DM_EXTINT;
}

/* The writable bits of each LVT entry. */
static uint32_t lapic_lvt_mask(int i)
{
	switch (i) {
	case LAPIC_LVT_TIMER:
		/* one-shot, periodic and TSC-deadline: bits 18:17 */
		return 0xff | LAPIC_LVT_MASKED | LAPIC_LVT_TIMER_MODE;
	case LAPIC_LVT_LINT0:
	case LAPIC_LVT_LINT1:
		return 0xff | 0x700 | (1u << 13) | LAPIC_LVT_LEVEL | LAPIC_LVT_MASKED;
	case LAPIC_LVT_ERROR:
		return 0xff | LAPIC_LVT_MASKED;
	default: /* thermal, performance counters */
		return 0xff | 0x700 | LAPIC_LVT_MASKED;
	}
}

static uint32_t lapic_read_reg(struct lapic_regs *r, uint32_t off, uint64_t now_ns, bool *ok)
{
	*ok = true;
	if (off >= LAPIC_REG_ISR && off < LAPIC_REG_ISR + 0x80)
		return r->isr[(off - LAPIC_REG_ISR) >> 4];
	if (off >= LAPIC_REG_TMR && off < LAPIC_REG_TMR + 0x80)
		return r->tmr[(off - LAPIC_REG_TMR) >> 4];
	if (off >= LAPIC_REG_IRR && off < LAPIC_REG_IRR + 0x80)
		return r->irr[(off - LAPIC_REG_IRR) >> 4];
	if (off >= LAPIC_REG_LVT_TIMER && off <= LAPIC_REG_LVT_ERROR)
		return r->lvt[(off - LAPIC_REG_LVT_TIMER) >> 4];
	switch (off) {
	case LAPIC_REG_ID:
		return lapic_x2apic(r) ? r->id : r->xapic_id;
	case LAPIC_REG_VER:
		return LAPIC_VERSION | (uint32_t)LAPIC_MAX_LVT << 16;
	case LAPIC_REG_TPR:
		return r->tpr;
	case LAPIC_REG_APR:
		return 0;
	case LAPIC_REG_PPR:
		return lapic_ppr(r);
	case LAPIC_REG_LDR:
		return r->ldr;
	case LAPIC_REG_DFR:
		if (lapic_x2apic(r))
			break;
		return r->dfr;
	case LAPIC_REG_SVR:
		return r->svr;
	case LAPIC_REG_ESR:
		return r->esr;
	case LAPIC_REG_ICR_LO:
		return r->icr_lo & ~LAPIC_LVT_DELIV_PENDING; /* delivered at once */
	case LAPIC_REG_ICR_HI:
		if (lapic_x2apic(r))
			break;
		return r->icr_hi;
	case LAPIC_REG_TMICT:
		return r->tmict;
	case LAPIC_REG_TMCCT:
		return lapic_timer_tmcct(r, now_ns);
	case LAPIC_REG_TDCR:
		return r->tdcr;
	}
	*ok = false;
	return 0;
}

/* A write to the register at `off` (x2APIC: from the MSR). */
static void lapic_write_reg(struct lapic_regs *r, uint32_t off, uint32_t val, uint64_t now_ns,
			    struct lapic_effect *e)
{
	if (off >= LAPIC_REG_LVT_TIMER && off <= LAPIC_REG_LVT_ERROR) {
		int i = (int)((off - LAPIC_REG_LVT_TIMER) >> 4);
		uint32_t old = r->lvt[i];
		val &= lapic_lvt_mask(i);
		if (!lapic_sw_enabled(r))
			val |= LAPIC_LVT_MASKED; /* SDM: masks stay set while disabled */
		/* keep the read-only bits (remote IRR of LINT0/1) */
		r->lvt[i] = val | (old & ~lapic_lvt_mask(i) & ~LAPIC_LVT_MASKED);
		if (i == LAPIC_LVT_TIMER) {
			lapic_timer_write_lvt(r, old, now_ns);
			e->timer_changed = true;
		}
		return;
	}
	switch (off) {
	case LAPIC_REG_ID:
		if (!lapic_x2apic(r))
			r->xapic_id = val & 0xff000000u;
		else
			e->gp = true; /* read-only in x2APIC mode */
		return;
	case LAPIC_REG_TPR:
		r->tpr = val & 0xff;
		return;
	case LAPIC_REG_EOI:
		e->eoi_level_vector = lapic_eoi(r);
		return;
	case LAPIC_REG_LDR:
		if (lapic_x2apic(r))
			e->gp = true;
		else
			r->ldr = val & 0xff000000u;
		return;
	case LAPIC_REG_DFR:
		if (lapic_x2apic(r))
			e->gp = true;
		else
			r->dfr = val | 0x0fffffffu;
		return;
	case LAPIC_REG_SVR:
		r->svr = val & 0x13ff; /* vector, enable, focus check, EOI-broadcast bit */
		r->svr &= ~(1u << 12); /* ... which this APIC does not offer: reads 0 */
		if (!lapic_sw_enabled(r))
			for (int i = 0; i < LAPIC_NR_LVT; i++)
				r->lvt[i] |= LAPIC_LVT_MASKED;
		return;
	case LAPIC_REG_ESR:
		/* the write latches the errors seen since the last one */
		r->esr = r->esr_pending;
		r->esr_pending = 0;
		return;
	case LAPIC_REG_ICR_HI:
		if (!lapic_x2apic(r))
			r->icr_hi = val & 0xff000000u;
		return;
	case LAPIC_REG_ICR_LO:
		r->icr_lo = val & 0x000ccfffu; /* vector .. shorthand, no read-only bits */
		lapic_icr_msg(r, &e->msg);
		/* A fixed or lowest-priority IPI with a vector below 16 is an
		 * error at the sender and goes nowhere. */
		if ((e->msg.dm == LAPIC_DM_FIXED || e->msg.dm == LAPIC_DM_LOWEST) && e->msg.vector < 16) {
			lapic_error(r, LAPIC_ESR_SEND_ILLEGAL);
			return;
		}
		e->send = true;
		return;
	case LAPIC_REG_TMICT:
		lapic_timer_write_tmict(r, val, now_ns);
		e->timer_changed = true;
		return;
	case LAPIC_REG_TDCR:
		lapic_timer_write_tdcr(r, val, now_ns);
		e->timer_changed = true;
		return;
	case LAPIC_REG_SELF_IPI:
		if (!lapic_x2apic(r)) {
			e->gp = true;
			return;
		}
		e->msg = (struct lapic_msg){ .shorthand = 1, .dm = LAPIC_DM_FIXED, .vector = (uint8_t)val };
		e->send = true;
		return;
	default:
		/* read-only or reserved: dropped (xAPIC), #GP (x2APIC) */
		if (lapic_x2apic(r))
			e->gp = true;
		return;
	}
}

uint32_t lapic_mmio_read(struct lapic_regs *r, uint64_t off, unsigned size, uint64_t now_ns)
{
	/* Registers are 32 bits at 16-byte strides; narrower reads see a
	 * part of the register, as x86 byte reads of MMIO do. */
	if (off >= 0x1000 || size == 0 || size > 4 || (off & 0xf) + size > 4)
		return 0;
	bool ok;
	uint32_t v = lapic_read_reg(r, (uint32_t)(off & ~0xfull), now_ns, &ok);
	if (!ok || (off & ~0xfull) == LAPIC_REG_SELF_IPI)
		return 0;
	v >>= 8 * (off & 3);
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

void lapic_mmio_write(struct lapic_regs *r, uint64_t off, unsigned size, uint32_t val,
		      uint64_t now_ns, struct lapic_effect *e)
{
	*e = (struct lapic_effect){ .eoi_level_vector = -1 };
	/* only whole, aligned 32-bit writes reach a register */
	if (off >= 0x1000 || size != 4 || (off & 0xf) || off == LAPIC_REG_SELF_IPI)
		return;
	lapic_write_reg(r, (uint32_t)off, val, now_ns, e);
	e->gp = false; /* MMIO has no #GP: a bad write is dropped */
}

bool lapic_msr_read(struct lapic_regs *r, uint32_t msr, uint64_t *val, uint64_t now_ns)
{
	if (!lapic_x2apic(r) || msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST)
		return false;
	uint32_t off = (msr - LAPIC_MSR_X2APIC_FIRST) << 4;
	if (off == LAPIC_REG_ICR_LO) {
		*val = (uint64_t)r->icr_hi << 32 | (r->icr_lo & ~LAPIC_LVT_DELIV_PENDING);
		return true;
	}
	if (off == LAPIC_REG_EOI || off == LAPIC_REG_SELF_IPI || off == LAPIC_REG_RRD)
		return false; /* write-only / absent in x2APIC mode */
	bool ok;
	*val = lapic_read_reg(r, off, now_ns, &ok);
	return ok;
}

void lapic_msr_write(struct lapic_regs *r, uint32_t msr, uint64_t val, uint64_t now_ns,
		     struct lapic_effect *e)
{
	*e = (struct lapic_effect){ .eoi_level_vector = -1 };
	if (!lapic_x2apic(r) || msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST) {
		e->gp = true;
		return;
	}
	uint32_t off = (msr - LAPIC_MSR_X2APIC_FIRST) << 4;
	if (off == LAPIC_REG_ICR_LO) {
		/* one 64-bit write: destination in 63:32 */
		r->icr_hi = (uint32_t)(val >> 32);
	} else if (val >> 32) {
		e->gp = true; /* the upper half of every other register is reserved */
		return;
	}
	if (off == LAPIC_REG_EOI && val) {
		e->gp = true; /* x2APIC EOI takes only 0 */
		return;
	}
	lapic_write_reg(r, off, (uint32_t)val, now_ns, e);
}

bool lapic_set_base(struct lapic_regs *r, uint64_t val, bool x2apic_ok)
{
	const uint64_t reserved = ~(LAPIC_BASE_ADDR_MASK | LAPIC_BASE_EN | LAPIC_BASE_EXTD | LAPIC_BASE_BSP);
	if (val & reserved)
		return false;
	bool en = val & LAPIC_BASE_EN, extd = val & LAPIC_BASE_EXTD;
	if (extd && (!en || !x2apic_ok))
		return false; /* x2APIC without global enable is invalid */
	bool was_x2 = lapic_x2apic(r), was_en = lapic_hw_enabled(r);
	if (was_x2 && en && !extd)
		return false; /* x2APIC → xAPIC only through disabled */
	if (!was_en && en && extd)
		return false; /* disabled → x2APIC only through xAPIC */
	/* BSP is read-only */
	r->base = (val & ~LAPIC_BASE_BSP) | (r->base & LAPIC_BASE_BSP);
	if (was_en && !en) {
		/* globally disabled: as after power-on, but the ID stays */
		r->xapic_id = r->id << 24;
		lapic_init_reset(r);
	} else if (!was_x2 && lapic_x2apic(r)) {
		/* entering x2APIC: the logical ID is derived from the APIC ID */
		r->ldr = ((r->id >> 4) << 16) | (1u << (r->id & 0xf));
	}
	return true;
}
