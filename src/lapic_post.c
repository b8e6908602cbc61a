/*
 * lapic_post: the interrupt remapping table and posted interrupts of hvmm's
 * own local APICs (`--irqchip user`), with the lecture's names (pi.h).
 *
 * Every interrupt — an IOAPIC pin, a device's MSI, an IPI, the APIC timer —
 * goes through an IRT entry (lapic_irte_for) computed when it is sent: the
 * message's destination resolved against the APICs as they are now, which
 * is what an entry written by the VMM at routing time would say as long as
 * the guest keeps its APIC IDs (and stays right when it does not). A posted
 * entry names the target vCPU's PID: the poster sets the PIR bit and, only
 * if the PID asks for one, notifies — a kick out of KVM_RUN for a running
 * vCPU, a wake-up for a halted one, nothing for a ready one (SN). The vCPU
 * takes PIR into its IRR when it goes to running, and while halted, to see
 * whether what was posted wakes it. A remapped entry is the VMM's own
 * delivery: the target's APIC lock, IRR, and a kick or wake-up for every
 * interrupt.
 *
 * The vCPU's state is its thread's to change (lapic_pi_state): running
 * just before KVM_RUN, ready after every exit and while woken up, halted
 * from an HLT exit until something wakes it.
 */
#include <pthread.h>

#include "lapic_priv.h"
#include "vcpu.h"
#include "vm.h"

struct lapic_irte lapic_irte_for(bool posting, const struct lapic_msg *m, uint64_t targets)
{
	struct lapic_irte e = { .mode = LAPIC_IRTE_REMAPPED, .vector = m->vector, .vcpu = -1 };
	/* vectors below 16 stay the VMM's: the APIC reports them illegal */
	if (!posting || m->level || m->vector < 16 || (m->dm != LAPIC_DM_FIXED && m->dm != LAPIC_DM_LOWEST) ||
	    !targets || (targets & (targets - 1)))
		return e;
	e.mode = LAPIC_IRTE_POSTED;
	e.vcpu = __builtin_ctzll(targets);
	return e;
}

void lapic_pi_account(struct lapic *l, uint64_t now_ns)
{
	if (l->state_since_ns && now_ns > l->state_since_ns)
		l->stats.state_ns[l->state] += now_ns - l->state_since_ns;
	l->state_since_ns = now_ns;
}

void lapic_pi_state(struct lapic *l, enum pi_state s, uint64_t now_ns)
{
	if (s == l->state)
		return;
	/* The PID first: from here a post sees the new state's rules. */
	pi_set_state(&l->pid, s);
	lapic_pi_account(l, now_ns);
	l->stats.entered[s]++;
	__atomic_store_n(&l->state, s, __ATOMIC_RELAXED); /* posters read it (lapic_lat.c) */
	lapic_timeline_note(l, s, now_ns);
}

unsigned lapic_pi_take(struct lapic *l)
{
	uint32_t got[8] = { 0 };
	unsigned n = pi_drain(&l->pid, got);
	if (!n)
		return 0;
	/* As lapic_accept: an APIC disabled (globally, or by software since
	 * the post) drops fixed interrupts. */
	if (!lapic_hw_enabled(&l->regs) || !lapic_sw_enabled(&l->regs))
		return 0;
	/* Edge-triggered fixed interrupts only (lapic_irte_for): what
	 * lapic_accept does for each, for all of them at once. */
	for (int i = 0; i < 8; i++) {
		l->regs.irr[i] |= got[i];
		l->regs.tmr[i] &= ~got[i];
	}
	l->stats.pir_taken += n;
	return n;
}

unsigned lapic_vcpu_take_posted(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	pthread_mutex_lock(&l->lock);
	unsigned n = lapic_pi_take(l);
	pthread_mutex_unlock(&l->lock);
	return n;
}

void lapic_pi_post(struct vcpu *t, uint8_t vector, enum lapic_src src)
{
	struct lapic *l = t->lapic;
	/* stamped before the post: the vCPU may take it at once */
	if (src == LAPIC_SRC_IOAPIC || src == LAPIC_SRC_MSI)
		lapic_lat_raised(l, vector);
	enum pi_notify n = pi_post(&l->pid, vector);
	/* counted by the poster without the lock: relaxed atomics, as the
	 * IPI counts */
	__atomic_add_fetch(&l->stats.irt[src][LAPIC_IRTE_POSTED], 1, __ATOMIC_RELAXED);
	switch (n) {
	case PI_NOTIFY_ACTIVE:
		__atomic_add_fetch(&l->stats.notify_active, 1, __ATOMIC_RELAXED);
		if (t != vcpu_current())
			vcpu_kick(t); /* the vCPU itself takes it before its next entry */
		break;
	case PI_NOTIFY_WAKEUP:
		__atomic_add_fetch(&l->stats.notify_wakeup, 1, __ATOMIC_RELAXED);
		lapic_vcpu_wake(t);
		break;
	case PI_NOTIFY_SUPPRESSED: /* ready: taken at its next entry */
		__atomic_add_fetch(&l->stats.suppressed, 1, __ATOMIC_RELAXED);
		break;
	case PI_NOTIFY_OUTSTANDING: /* one notification for them all */
		__atomic_add_fetch(&l->stats.coalesced, 1, __ATOMIC_RELAXED);
		break;
	default:
		break; /* vectors below 16: lapic_irte_for never posts them */
	}
}
