/*
 * lapic_vcpu: hvmm's local APICs wired to KVM and to the vCPU threads
 * (`--irqchip user`). Without an in-kernel irqchip KVM knows nothing about
 * interrupts but what hvmm hands it before each KVM_RUN:
 *
 *  - a vector with KVM_INTERRUPT, only when the last exit said the guest can
 *    take one now (ready_for_interrupt_injection: IF set, no shadow, nothing
 *    being injected); otherwise request_interrupt_window makes KVM exit as
 *    soon as it can (KVM_EXIT_IRQ_WINDOW_OPEN). The vector moves IRR → ISR
 *    when it is handed over, as the CPU's INTA would do it;
 *  - an NMI with KVM_NMI (KVM keeps it until the guest can take it);
 *  - the task priority through kvm_run->cr8, both ways: KVM reports the
 *    guest's CR8 after each exit and loads ours before each entry, and a
 *    guest lowering CR8 exits (KVM_EXIT_SET_TPR) so a blocked vector goes in.
 *
 * HLT exits to hvmm (KVM_EXIT_HLT) and the thread sleeps here until its APIC
 * has something the halted CPU would wake for; an AP sleeps here, too, from
 * power-on or INIT until a SIPI (KVM refuses KVM_SET_MP_STATE other than
 * RUNNABLE without an in-kernel LAPIC, so the wait-for-SIPI state is ours).
 *
 * Any thread may post an interrupt (a device's MSI from the event loop, the
 * IOAPIC, another vCPU's IPI): it takes the target's lock, sets IRR, then
 * wakes the target — the condition variable if it sleeps here, the kick
 * signal if it is in KVM_RUN. The APIC timer is a POSIX timer per vCPU that
 * sends that same kick signal to the vCPU's own thread at the expiry.
 *
 * Locks: each APIC's `lock` covers its registers; it is never held while
 * calling out (IOAPIC EOI, PIC, KVM, another APIC). `wait_lock` only guards
 * the sleep/wake handshake. Lock order: IOAPIC/PIC → one APIC.
 */
#include "lapic.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "lapic_priv.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"
#include "vsched.h"


static unsigned lapic_lowest_rr; /* lowest-priority round robin (any thread; racy is fine) */

int lapic_vcpu_create(struct vcpu *v, bool x2apic_ok)
{
	struct lapic *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->vcpu = v;
	l->x2apic_ok = x2apic_ok;
	v->vm->lapic_msi = lapic_deliver_msi; /* irq.c's way to the APICs */
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->wait_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wait_cond, &ca);
	pthread_condattr_destroy(&ca);
	lapic_reset(&l->regs, (uint32_t)v->id, v->id == 0);
	l->wait_sipi = v->id != 0;
	pi_desc_init(&l->pid, (uint32_t)v->id); /* ready: not yet in the guest */
	l->state = PI_READY;
	l->state_since_ns = util_now_ns();
	v->lapic = l;
	if (v->vm->timeline_f && lapic_timeline_alloc(v) < 0)
		return -ENOMEM;
	/* device interrupt latency, for whoever reads the statistics (here:
	 * the vCPU thread allocates nothing) */
	if (v->vm->stats_on && !(l->lat = lapic_lat_alloc()))
		return -ENOMEM;
	if (v->fd < 0)
		return 0; /* unit tests: no KVM */
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	l->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	if (ioctl(v->fd, KVM_GET_REGS, &l->reset_regs) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &l->reset_sregs) < 0)
		return -errno;
	return 0;
}

void lapic_vcpu_destroy(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	if (!l)
		return;
	lapic_timeline_free(l);
	lapic_lat_free(l);
	pthread_cond_destroy(&l->wait_cond);
	pthread_mutex_destroy(&l->wait_lock);
	pthread_mutex_destroy(&l->lock);
	free(l);
	v->lapic = NULL;
}

int lapic_vcpu_thread_init(struct vcpu *v, int signo)
{
	struct lapic *l = v->lapic;
	/* The timer's expiries and the timed HLT sleep would otherwise be
	 * rounded up by the default 50 us of timer slack: a 1 kHz guest timer
	 * would lose a twentieth of its period on every tick. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	struct sigevent se = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = signo };
	se._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &se, &l->host_timer) < 0)
		return -errno;
	l->have_timer = true;
	return 0;
}

void lapic_vcpu_thread_exit(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	if (l)
		lapic_pi_account(l, util_now_ns()); /* the state it ends in counts up to here */
	if (l && v->vm->vsched)
		vsched_release(v->vm->vsched, vm_vsched_id(v->vm, v->id));
	if (l && l->have_timer) {
		timer_delete(l->host_timer);
		l->have_timer = false;
	}
}

const struct lapic_stats *lapic_vcpu_stats(const struct vcpu *v)
{
	return v->lapic ? &v->lapic->stats : NULL;
}

bool lapic_vcpu_wake(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	if (!l)
		return false;
	pthread_mutex_lock(&l->wait_lock);
	l->wake_seq++;
	bool asleep = atomic_load(&l->asleep);
	pthread_cond_broadcast(&l->wait_cond);
	pthread_mutex_unlock(&l->wait_lock);
	return asleep;
}

bool lapic_vcpu_asleep(const struct vcpu *v)
{
	return v->lapic && atomic_load(&v->lapic->asleep);
}

/* ---- delivery ---- */

void lapic_deliver(struct vm *vm, const struct lapic_msg *m, int self, enum lapic_src src)
{
	int n = vm->ncpus < 64 ? vm->ncpus : 64;
	/* A snapshot of every APIC's destination state: routing never holds
	 * two APIC locks at once. */
	struct lapic_regs snap[64];
	struct lapic_regs *ptr[64] = { 0 };
	for (int i = 0; i < n; i++) {
		struct lapic *l = vm->vcpus[i]->lapic;
		pthread_mutex_lock(&l->lock);
		snap[i] = l->regs;
		pthread_mutex_unlock(&l->lock);
		ptr[i] = &snap[i];
	}
	uint64_t hit = lapic_route(ptr, n, self, m, &lapic_lowest_rr);
	if (self >= 0 && self < n)
		__atomic_add_fetch(&vm->vcpus[self]->lapic->stats.ipis_sent, 1, __ATOMIC_RELAXED);
	struct lapic_irte e = lapic_irte_for(vm->cfg.posted_interrupts > 0, m, hit);
	if (e.mode == LAPIC_IRTE_POSTED) {
		struct vcpu *t = vm->vcpus[e.vcpu];
		if (self >= 0 && e.vcpu != self)
			__atomic_add_fetch(&t->lapic->stats.ipis_received, 1, __ATOMIC_RELAXED);
		lapic_pi_post(t, e.vector, src);
		return;
	}
	struct vcpu *me = vcpu_current();
	for (int i = 0; i < n; i++) {
		if (!(hit & (1ull << i)))
			continue;
		struct vcpu *t = vm->vcpus[i];
		struct lapic *l = t->lapic;
		pthread_mutex_lock(&l->lock);
		l->stats.irt[src][LAPIC_IRTE_REMAPPED]++;
		bool changed = lapic_accept(&l->regs, m->dm, m->vector, m->level, m->assert);
		if (changed && src != LAPIC_SRC_IPI && src != LAPIC_SRC_TIMER)
			lapic_lat_raised(l, m->vector);
		if (changed && self >= 0 && i != self)
			l->stats.ipis_received++;
		pthread_mutex_unlock(&l->lock);
		if (!changed)
			continue;
		/* asleep in hvmm: the wake-up does it; else out of KVM_RUN,
		 * to inject it (a kick costs the target an exit round trip) */
		if (!lapic_vcpu_wake(t) && t != me)
			vcpu_kick(t);
	}
}

int lapic_deliver_msi(struct vm *vm, uint64_t addr, uint32_t data, int src)
{
	struct lapic_msg m;
	if (!lapic_msi_decode(addr, data, &m))
		return -EINVAL;
	lapic_deliver(vm, &m, -1, src == LAPIC_SRC_IOAPIC ? LAPIC_SRC_IOAPIC : LAPIC_SRC_MSI);
	return 0;
}

/* Carry out what a register write asks for, with no APIC lock held. */
static void lapic_effects(struct vcpu *v, const struct lapic_effect *e)
{
	if (e->send)
		lapic_deliver(v->vm, &e->msg, v->id, LAPIC_SRC_IPI);
	if (e->eoi_level_vector >= 0)
		irq_eoi(v->vm, (unsigned)e->eoi_level_vector);
}

/* ---- exits ---- */

bool lapic_vcpu_mmio(struct vcpu *v, uint64_t addr, unsigned len, bool write, uint8_t *data)
{
	struct lapic *l = v->lapic;
	pthread_mutex_lock(&l->lock);
	uint64_t base = l->regs.base & LAPIC_BASE_ADDR_MASK;
	if (!lapic_hw_enabled(&l->regs) || lapic_x2apic(&l->regs) || addr < base ||
	    addr - base >= 0x1000) {
		pthread_mutex_unlock(&l->lock);
		return false; /* not this vCPU's xAPIC page: the bus has it */
	}
	uint64_t now = util_now_ns();
	struct lapic_effect e = { .eoi_level_vector = -1 };
	if (write) {
		uint32_t val = 0;
		memcpy(&val, data, len < 4 ? len : 4);
		lapic_mmio_write(&l->regs, addr - base, len, val, now, &e);
	} else {
		uint32_t val = lapic_mmio_read(&l->regs, addr - base, len, now);
		memset(data, 0, len <= 8 ? len : 8);
		memcpy(data, &val, len < 4 ? len : 4);
	}
	pthread_mutex_unlock(&l->lock);
	lapic_effects(v, &e);
	return true;
}

/* The guest's TSC now, as KVM computes it (host TSC scaled plus offset). */
static uint64_t lapic_guest_tsc(struct vcpu *v)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = 0x10 /* IA32_TIME_STAMP_COUNTER */ };
	return ioctl(v->fd, KVM_GET_MSRS, &m) == 1 ? m.e.data : 0;
}

bool lapic_vcpu_msr(struct vcpu *v, bool write)
{
	struct kvm_run *run = v->run;
	struct lapic *l = v->lapic;
	uint32_t msr = run->msr.index;
	uint64_t now = util_now_ns();
	struct lapic_effect e = { .eoi_level_vector = -1 };
	bool ok = true;
	if (msr == LAPIC_MSR_APIC_BASE) {
		pthread_mutex_lock(&l->lock);
		if (write)
			ok = lapic_set_base(&l->regs, run->msr.data, l->x2apic_ok);
		else
			run->msr.data = l->regs.base;
		uint64_t base = l->regs.base;
		pthread_mutex_unlock(&l->lock);
		/* KVM keeps CPUID.1:EDX.APIC in step with its own copy of the
		 * MSR (clear while the APIC is disabled): give it the value. */
		if (write && ok) {
			struct {
				struct kvm_msrs h;
				struct kvm_msr_entry e;
			} m = { .h.nmsrs = 1, .e = { .index = LAPIC_MSR_APIC_BASE, .data = base } };
			ioctl(v->fd, KVM_SET_MSRS, &m);
		}
	} else if (msr == LAPIC_MSR_TSC_DEADLINE) {
		uint64_t tsc = write ? lapic_guest_tsc(v) : 0;
		pthread_mutex_lock(&l->lock);
		if (write)
			lapic_timer_write_deadline(&l->regs, run->msr.data, now, tsc, l->tsc_khz);
		else
			run->msr.data = lapic_timer_mode(&l->regs) == LAPIC_TIMER_TSC_DEADLINE ?
				l->regs.tsc_deadline : 0;
		pthread_mutex_unlock(&l->lock);
	} else if (msr >= LAPIC_MSR_X2APIC_FIRST && msr <= LAPIC_MSR_X2APIC_LAST) {
		pthread_mutex_lock(&l->lock);
		if (write) {
			lapic_msr_write(&l->regs, msr, run->msr.data, now, &e);
			ok = !e.gp;
		} else {
			uint64_t val = 0;
			ok = lapic_msr_read(&l->regs, msr, &val, now);
			run->msr.data = val;
		}
		pthread_mutex_unlock(&l->lock);
	} else {
		return false;
	}
	run->msr.error = ok ? 0 : 1; /* 1: KVM injects the #GP */
	if (ok)
		lapic_effects(v, &e);
	return true;
}

void lapic_vcpu_hlt(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	pthread_mutex_lock(&l->lock);
	l->halted = true;
	l->halt_if = v->run->if_flag;
	l->halt_t0 = util_now_ns();
	l->stats.hlt_exits++;
	pthread_mutex_unlock(&l->lock);
}

/* ---- before KVM_RUN ---- */

/* SIPI (or INIT of the boot CPU): the power-on CPU state, and for a SIPI
 * real mode at vector << 12 (CS = vector << 8, IP = 0). */
static int lapic_start_cpu(struct vcpu *v, int sipi_vector)
{
	struct lapic *l = v->lapic;
	struct kvm_sregs s = l->reset_sregs;
	struct kvm_regs r = l->reset_regs;
	if (sipi_vector >= 0) {
		s.cs.selector = (uint16_t)(sipi_vector << 8);
		s.cs.base = (uint64_t)sipi_vector << 12;
		r.rip = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

/* Is there anything a halted CPU wakes for? Called with l->lock held. */
static bool lapic_wakes(struct lapic *l, bool pic)
{
	const struct lapic_regs *r = &l->regs;
	if (r->nmi_pending || r->init_pending)
		return true;
	if (!l->halt_if)
		return false;
	return lapic_pending_vector(r) >= 0 || r->extint_pending || (pic && lapic_accepts_pic(r));
}

/* Sleep until woken (lapic_vcpu_wake) or `until_ns` (0: no timer). */
static void lapic_sleep(struct lapic *l, uint64_t seq, uint64_t until_ns)
{
	pthread_mutex_lock(&l->wait_lock);
	atomic_store(&l->asleep, true);
	while (l->wake_seq == seq && !vm_stopping(l->vcpu->vm)) {
		/* never longer than 100 ms: a pause or stop that raced the
		 * wake-up is seen within that */
		uint64_t now = util_now_ns(), until = now + 100000000ull;
		if (until_ns && until_ns < until)
			until = until_ns;
		if (until <= now)
			break;
		struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };
		if (pthread_cond_timedwait(&l->wait_cond, &l->wait_lock, &ts) == ETIMEDOUT)
			break;
	}
	atomic_store(&l->asleep, false);
	pthread_mutex_unlock(&l->wait_lock);
}

/* Point the host timer at the APIC timer's next expiry. A periodic APIC
 * timer gets a periodic host timer on the same grid, so its ticks cost no
 * timer_settime each (what is armed already agrees with every next expiry). */
static void lapic_arm_host_timer(struct lapic *l, uint64_t next_ns, uint64_t period_ns)
{
	if (!l->have_timer)
		return;
	if (next_ns == l->armed_ns && period_ns == l->armed_period)
		return;
	if (next_ns && period_ns && period_ns == l->armed_period && l->armed_ns &&
	    next_ns > l->armed_ns && (next_ns - l->armed_ns) % period_ns == 0)
		return;
	struct itimerspec its = { 0 };
	if (next_ns) {
		its.it_value = (struct timespec){ (time_t)(next_ns / 1000000000ull),
						  (long)(next_ns % 1000000000ull) };
		its.it_interval = (struct timespec){ (time_t)(period_ns / 1000000000ull),
						     (long)(period_ns % 1000000000ull) };
	}
	timer_settime(l->host_timer, TIMER_ABSTIME, &its, NULL);
	l->armed_ns = next_ns;
	l->armed_period = next_ns ? period_ns : 0;
}

/*
 * The APIC's side of "may this vCPU enter the guest": expire the timer,
 * take INIT and SIPI, sleep while halted or waiting for SIPI. false: the VM
 * is stopping, pausing or suspending — the caller's loop sees to that.
 */
static bool lapic_vcpu_ready(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	struct vm *vm = v->vm;
	const bool pic_wired = v->id == 0 && irq_pic(vm);
	for (;;) {
		if (vm_stopping(vm) || atomic_load(&vm->suspended) || atomic_load(&vm->paused))
			return false;
		pthread_mutex_lock(&l->wait_lock);
		uint64_t seq = l->wake_seq;
		pthread_mutex_unlock(&l->wait_lock);
		/* the PIC's lock is taken before the APIC's, never inside it */
		bool pic = pic_wired && pic_output(irq_pic(vm));
		/* --inject's NMIs and exceptions for vCPU 0 (inject_vcpu, after
		 * this returns) wake it from HLT as KVM's pending events do */
		bool injection = v->id == 0 && inject_pending(vm);
		uint64_t now = util_now_ns();
		pthread_mutex_lock(&l->lock);
		int tv = lapic_timer_expire(&l->regs, now);
		if (tv >= 0) {
			/* the timer's IRT entry: its own vCPU, so posted (to a
			 * ready vCPU: suppressed, taken just below) or accepted */
			l->stats.timer_fires++;
			const struct lapic_msg tm = { .dm = LAPIC_DM_FIXED, .vector = (uint8_t)tv };
			if (lapic_irte_for(vm->cfg.posted_interrupts > 0, &tm, 1).mode == LAPIC_IRTE_POSTED) {
				lapic_pi_post(v, (uint8_t)tv, LAPIC_SRC_TIMER);
			} else {
				l->stats.irt[LAPIC_SRC_TIMER][LAPIC_IRTE_REMAPPED]++;
				lapic_accept(&l->regs, LAPIC_DM_FIXED, (uint8_t)tv, false, true);
			}
		}
		/* What was posted meanwhile: the VMM looks at PIR whenever it
		 * considers scheduling the vCPU in (a halted vCPU wakes for it
		 * like for any interrupt in IRR). */
		lapic_pi_take(l);
		if (l->regs.init_pending) {
			/* The INIT took effect when it arrived: a SIPI that came
			 * after it (INIT, SIPI in quick succession, before this
			 * thread got here) survives the reset. */
			bool sipi = l->regs.sipi_pending;
			uint8_t sipi_vector = l->regs.sipi_vector;
			l->regs.init_pending = false;
			lapic_init_reset(&l->regs);
			l->regs.sipi_pending = sipi;
			l->regs.sipi_vector = sipi_vector;
			l->halted = false;
			l->wait_sipi = !(l->regs.base & LAPIC_BASE_BSP);
			if (!l->wait_sipi) {
				pthread_mutex_unlock(&l->lock);
				if (lapic_start_cpu(v, -1) < 0)
					vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: INIT: %s",
						v->id, strerror(errno));
				continue;
			}
		}
		if (l->wait_sipi && l->regs.sipi_pending) {
			int vec = l->regs.sipi_vector;
			l->regs.sipi_pending = false;
			l->wait_sipi = false;
			pthread_mutex_unlock(&l->lock);
			int r = lapic_start_cpu(v, vec);
			if (r < 0) {
				vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: SIPI: %s", v->id,
					strerror(-r));
				return false;
			}
			continue;
		}
		l->regs.sipi_pending = false; /* a SIPI outside wait-for-SIPI is ignored */
		if (l->halted && (lapic_wakes(l, pic) || injection)) {
			l->halted = false;
			l->stats.halted_ns += now - l->halt_t0;
		}
		bool sleep = l->wait_sipi || l->halted;
		uint64_t next = l->regs.timer_next_ns;
		uint64_t period = lapic_timer_mode(&l->regs) == LAPIC_TIMER_PERIODIC ?
			l->regs.timer_period_ns : 0;
		pthread_mutex_unlock(&l->lock);
		/* armed while asleep too: its signal is harmless here, and a
		 * periodic tick then costs no timer_settime at all */
		lapic_arm_host_timer(l, next, period);
		if (!sleep)
			return true;
		/* Halted: the PID's wake-up notification on, then the last
		 * look at PIR (a post before the update saw SN and notified
		 * nobody), then sleep until a wake-up. */
		lapic_pi_state(l, PI_HALTED, now);
		if (!pi_pending(&l->pid)) {
			if (vm->vsched)
				vsched_release(vm->vsched, vm_vsched_id(vm, v->id)); /* halted: no CPU needed */
			lapic_sleep(l, seq, next);
		}
		lapic_pi_state(l, PI_READY, util_now_ns());
	}
}

bool lapic_vcpu_before_run(struct vcpu *v)
{
	if (!lapic_vcpu_ready(v)) {
		/* stopping or pausing: a parked vCPU needs no CPU */
		if (v->vm->vsched)
			vsched_release(v->vm->vsched, vm_vsched_id(v->vm, v->id));
		return false;
	}
	/* --pcpus: a CPU to run on, waiting (ready) while others have them */
	if (v->vm->vsched && !vsched_acquire(v->vm->vsched, vm_vsched_id(v->vm, v->id)))
		return false;
	struct lapic *l = v->lapic;
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;
	bool pic = v->id == 0 && pic_output(irq_pic(vm));
	/* Running: posts from now on notify with the active vector (a kick,
	 * which makes this entry's KVM_RUN return at once), and PIR is taken
	 * after the update, so nothing posted before it waits for a later
	 * exit. */
	lapic_pi_state(l, PI_RUNNING, util_now_ns());
	pthread_mutex_lock(&l->lock);
	lapic_pi_take(l);
	bool nmi = l->regs.nmi_pending;
	l->regs.nmi_pending = false;
	bool extint = l->regs.extint_pending || (pic && lapic_accepts_pic(&l->regs));
	int vector = -1;
	if (run->ready_for_interrupt_injection && !extint) {
		vector = lapic_pending_vector(&l->regs);
		if (vector >= 0) {
			lapic_ack(&l->regs, vector);
			lapic_lat_injected(l, vector);
			l->stats.injected++;
		}
	}
	/* KVM takes one interrupt per entry; anything left asks for the
	 * window, so KVM comes back as soon as the guest can take more. */
	bool more = extint || lapic_pending_vector(&l->regs) >= 0;
	run->cr8 = (l->regs.tpr >> 4) & 0xf;
	pthread_mutex_unlock(&l->lock);

	if (nmi) {
		if (ioctl(v->fd, KVM_NMI) < 0)
			util_err("vcpu%d: KVM_NMI: %s", v->id, strerror(errno));
		else
			l->stats.nmis++;
	}
	if (extint && run->ready_for_interrupt_injection) {
		/* ExtINT: the vector comes from the 8259's INTA cycle */
		int pv = pic_intack(irq_pic(vm));
		pthread_mutex_lock(&l->lock);
		l->regs.extint_pending = false;
		pthread_mutex_unlock(&l->lock);
		if (pv >= 0) {
			vector = pv;
			l->stats.extint++;
		}
		more = v->id == 0 && pic_output(irq_pic(vm));
	}
	if (vector >= 0) {
		struct kvm_interrupt irq = { .irq = (uint32_t)vector };
		if (ioctl(v->fd, KVM_INTERRUPT, &irq) < 0) {
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: KVM_INTERRUPT vector 0x%x: %s",
				v->id, vector, strerror(errno));
			return false;
		}
		run->ready_for_interrupt_injection = 0; /* taken until KVM says again */
	}
	run->request_interrupt_window = more;
	return true;
}

void lapic_vcpu_exited(struct vcpu *v)
{
	lapic_pi_state(v->lapic, PI_READY, util_now_ns()); /* the VMM has the CPU */
	/* --pcpus: a slice another vCPU preempted ends at this exit */
	if (v->vm->vsched)
		vsched_exit(v->vm->vsched, vm_vsched_id(v->vm, v->id));
}

void lapic_vcpu_after_run(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	uint32_t cr8 = v->run->cr8 & 0xf;
	pthread_mutex_lock(&l->lock);
	/* CR8 is TPR[7:4]; keep the low bits an MMIO write set if it agrees */
	if (((l->regs.tpr >> 4) & 0xf) != cr8)
		l->regs.tpr = cr8 << 4;
	pthread_mutex_unlock(&l->lock);
}

struct lapic_regs *lapic_vcpu_regs(struct vcpu *v)
{
	return v->lapic ? &v->lapic->regs : NULL;
}
