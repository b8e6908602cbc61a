/*
 * pi: the Posted Interrupt Descriptor and its three operations (see pi.h).
 */
#include "pi.h"

#include <string.h>

static uint64_t pi_ctl_make(bool on, bool sn, uint8_t nv, uint32_t ndst)
{
	return (on ? PI_CTL_ON : 0) | (sn ? PI_CTL_SN : 0) | (uint64_t)nv << PI_CTL_NV_SHIFT |
	       (uint64_t)ndst << PI_CTL_NDST_SHIFT;
}

void pi_desc_init(struct pi_desc *d, uint32_t ndst)
{
	for (int i = 0; i < 4; i++)
		atomic_init(&d->pir[i], 0);
	atomic_init(&d->ctl, pi_ctl_make(false, true, PI_NV_ACTIVE, ndst));
}

enum pi_notify pi_post(struct pi_desc *d, uint8_t vector)
{
	if (vector < 16)
		return PI_NOTIFY_NONE;
	/* The request first: whoever takes PIR after this sees it. seq_cst,
	 * so the ON/SN test below cannot be ordered before it. */
	atomic_fetch_or(&d->pir[vector / 64], 1ull << (vector % 64));
	uint64_t ctl = atomic_load(&d->ctl);
	for (;;) {
		if (ctl & PI_CTL_SN)
			return PI_NOTIFY_SUPPRESSED;
		if (ctl & PI_CTL_ON)
			return PI_NOTIFY_OUTSTANDING;
		if (atomic_compare_exchange_weak(&d->ctl, &ctl, ctl | PI_CTL_ON))
			break;
	}
	uint8_t nv = (uint8_t)(ctl >> PI_CTL_NV_SHIFT);
	return nv == PI_NV_WAKEUP ? PI_NOTIFY_WAKEUP : PI_NOTIFY_ACTIVE;
}

void pi_set_state(struct pi_desc *d, enum pi_state s)
{
	uint64_t ctl = atomic_load(&d->ctl);
	for (;;) {
		uint64_t n = ctl & ~(PI_CTL_SN | 0xffull << PI_CTL_NV_SHIFT);
		switch (s) {
		case PI_RUNNING:
			n |= (uint64_t)PI_NV_ACTIVE << PI_CTL_NV_SHIFT;
			break;
		case PI_HALTED:
			n |= (uint64_t)PI_NV_WAKEUP << PI_CTL_NV_SHIFT;
			break;
		default: /* ready: NV stays what it was, notifications off */
			n |= PI_CTL_SN | (ctl & 0xffull << PI_CTL_NV_SHIFT);
			break;
		}
		if (atomic_compare_exchange_weak(&d->ctl, &ctl, n))
			return;
	}
}

unsigned pi_drain(struct pi_desc *d, uint32_t irr[8])
{
	/* ON first: a post from here on notifies again, so it is never left
	 * in PIR unnoticed behind a stale ON. */
	atomic_fetch_and(&d->ctl, ~PI_CTL_ON);
	unsigned n = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t w = atomic_exchange(&d->pir[i], 0);
		if (!w)
			continue;
		irr[2 * i] |= (uint32_t)w;
		irr[2 * i + 1] |= (uint32_t)(w >> 32);
		n += (unsigned)__builtin_popcountll(w);
	}
	return n;
}

bool pi_pending(const struct pi_desc *d)
{
	/* ON too: a post can set ON just after a drain took its vector (its
	 * PIR bit went with the drain, its ON stays). A vCPU that slept on
	 * that ON would never be notified again, as later posts see ON set. */
	if (atomic_load(&d->ctl) & PI_CTL_ON)
		return true;
	for (int i = 0; i < 4; i++)
		if (atomic_load(&d->pir[i]))
			return true;
	return false;
}

bool pi_on(const struct pi_desc *d)
{
	return atomic_load(&d->ctl) & PI_CTL_ON;
}

bool pi_sn(const struct pi_desc *d)
{
	return atomic_load(&d->ctl) & PI_CTL_SN;
}

uint8_t pi_nv(const struct pi_desc *d)
{
	return (uint8_t)(atomic_load(&d->ctl) >> PI_CTL_NV_SHIFT);
}

uint32_t pi_ndst(const struct pi_desc *d)
{
	return (uint32_t)(atomic_load(&d->ctl) >> PI_CTL_NDST_SHIFT);
}

const char *pi_state_name(enum pi_state s)
{
	static const char *const names[] = { "running", "ready", "halted" };
	return s < PI_NR_STATES ? names[s] : "?";
}
