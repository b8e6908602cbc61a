/*
 * lapic_timer: the local APIC timer in its three modes against an explicit
 * host clock (CLOCK_MONOTONIC ns; the caller passes `now`). The bus runs at
 * 1 GHz as KVM's does, so one count is `divisor` ns; the expiry is kept as
 * an absolute time, and the current count is derived from it, never
 * decremented, so reading it costs nothing and drifts never.
 */
#include "lapic.h"

enum lapic_timer_mode lapic_timer_mode(const struct lapic_regs *r)
{
	unsigned m = (r->lvt[LAPIC_LVT_TIMER] & LAPIC_LVT_TIMER_MODE) >> LAPIC_LVT_TIMER_MODE_SHIFT;
	return m == 1 ? LAPIC_TIMER_PERIODIC : m == 2 ? LAPIC_TIMER_TSC_DEADLINE : LAPIC_TIMER_ONESHOT;
}

unsigned lapic_timer_divisor(uint32_t tdcr)
{
	/* bits 0, 1 and 3: 0b000 = 2 ... 0b110 = 128, 0b111 = 1 */
	unsigned v = (tdcr & 3) | ((tdcr & 8) >> 1);
	return v == 7 ? 1 : 2u << v;
}

/* A periodic timer fires at most every 200 us, KVM's floor (and the PIT's
 * here): a guest asking for a 1 ns period would otherwise have the host
 * timer interrupt its vCPU thread without pause. */
#define LAPIC_MIN_PERIOD_NS 200000u

static uint64_t lapic_timer_period(const struct lapic_regs *r, unsigned div)
{
	uint64_t ns = (uint64_t)r->tmict * div;
	if (lapic_timer_mode(r) == LAPIC_TIMER_PERIODIC && ns < LAPIC_MIN_PERIOD_NS)
		ns = LAPIC_MIN_PERIOD_NS;
	return ns;
}

static void lapic_timer_stop(struct lapic_regs *r)
{
	r->timer_next_ns = 0;
	r->timer_period_ns = 0;
}

void lapic_timer_write_tmict(struct lapic_regs *r, uint32_t val, uint64_t now_ns)
{
	if (lapic_timer_mode(r) == LAPIC_TIMER_TSC_DEADLINE)
		return; /* ignored in TSC-deadline mode */
	r->tmict = val;
	if (!val) {
		lapic_timer_stop(r);
		return;
	}
	r->timer_period_ns = lapic_timer_period(r, lapic_timer_divisor(r->tdcr));
	r->timer_next_ns = now_ns + r->timer_period_ns;
}

void lapic_timer_write_tdcr(struct lapic_regs *r, uint32_t val, uint64_t now_ns)
{
	unsigned old = lapic_timer_divisor(r->tdcr);
	r->tdcr = val & 0xb;
	unsigned div = lapic_timer_divisor(r->tdcr);
	if (!r->timer_next_ns || lapic_timer_mode(r) == LAPIC_TIMER_TSC_DEADLINE || div == old)
		return;
	/* the counts left run on at the new rate (KVM rescales the same way) */
	uint64_t left = r->timer_next_ns > now_ns ? (r->timer_next_ns - now_ns) / old : 0;
	r->timer_next_ns = now_ns + left * div;
	r->timer_period_ns = lapic_timer_period(r, div);
}

void lapic_timer_write_lvt(struct lapic_regs *r, uint32_t old, uint64_t now_ns)
{
	(void)now_ns;
	if ((old & LAPIC_LVT_TIMER_MODE) == (r->lvt[LAPIC_LVT_TIMER] & LAPIC_LVT_TIMER_MODE))
		return;
	/* A mode switch stops the timer and clears both counts, as KVM does:
	 * a count armed for one mode means nothing in the other. */
	lapic_timer_stop(r);
	r->tmict = 0;
	r->tsc_deadline = 0;
}

uint32_t lapic_timer_tmcct(const struct lapic_regs *r, uint64_t now_ns)
{
	if (lapic_timer_mode(r) == LAPIC_TIMER_TSC_DEADLINE || !r->timer_next_ns ||
	    now_ns >= r->timer_next_ns)
		return 0;
	uint64_t left = (r->timer_next_ns - now_ns) / lapic_timer_divisor(r->tdcr);
	return left > r->tmict ? r->tmict : (uint32_t)left;
}

void lapic_timer_write_deadline(struct lapic_regs *r, uint64_t val, uint64_t now_ns,
				uint64_t guest_tsc, uint64_t tsc_khz)
{
	if (lapic_timer_mode(r) != LAPIC_TIMER_TSC_DEADLINE)
		return; /* KVM drops the write outside TSC-deadline mode */
	r->tsc_deadline = val;
	if (!val) {
		lapic_timer_stop(r);
		return;
	}
	if (val <= guest_tsc || !tsc_khz) {
		r->timer_next_ns = now_ns ? now_ns : 1; /* already due */
		return;
	}
	unsigned __int128 ns = (unsigned __int128)(val - guest_tsc) * 1000000u / tsc_khz;
	/* a deadline centuries away is as good as never; keep it finite */
	r->timer_next_ns = ns > (uint64_t)1 << 62 ? now_ns + ((uint64_t)1 << 62) : now_ns + (uint64_t)ns;
}

int lapic_timer_expire(struct lapic_regs *r, uint64_t now_ns)
{
	if (!r->timer_next_ns || now_ns < r->timer_next_ns)
		return -1;
	switch (lapic_timer_mode(r)) {
	case LAPIC_TIMER_PERIODIC:
		if (r->timer_period_ns) {
			r->timer_next_ns += r->timer_period_ns;
			/* a host that was away for many periods: one interrupt,
			 * and the phase kept (interrupts would merge in IRR anyway) */
			if (r->timer_next_ns <= now_ns)
				r->timer_next_ns = now_ns + r->timer_period_ns -
						   (now_ns - r->timer_next_ns) % r->timer_period_ns;
		} else {
			lapic_timer_stop(r);
		}
		break;
	case LAPIC_TIMER_TSC_DEADLINE:
		r->tsc_deadline = 0;
		lapic_timer_stop(r);
		break;
	default:
		r->timer_next_ns = 0; /* one-shot: TMCCT reads 0 from now on */
		break;
	}
	uint32_t lvt = r->lvt[LAPIC_LVT_TIMER];
	return lvt & LAPIC_LVT_MASKED ? -1 : (int)(lvt & 0xff);
}

bool lapic_timer_tick(struct lapic_regs *r, uint64_t now_ns)
{
	int vector = lapic_timer_expire(r, now_ns);
	if (vector < 0)
		return false;
	lapic_accept(r, LAPIC_DM_FIXED, (uint8_t)vector, false, true);
	return true;
}
