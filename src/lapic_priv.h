/*
 * lapic_priv: one vCPU's local APIC with what its thread keeps around it,
 * shared by lapic_vcpu.c (the KVM glue) and lapic_post.c (the posted-
 * interrupt path).
 */
#ifndef HVMM_LAPIC_PRIV_H
#define HVMM_LAPIC_PRIV_H

#include <linux/kvm.h>
#include <stdatomic.h>
#include <time.h>

#include "lapic.h"
#include "pi.h"

struct lapic {
	struct vcpu *vcpu;
	pthread_mutex_t lock;
	struct lapic_regs regs;
	/* vCPU-thread state (lock held when others may read it) */
	bool halted;       /* in HLT: sleeps here until a wake-up event */
	bool halt_if;      /* IF at the HLT: only NMI/INIT/SIPI wake a CLI;HLT */
	bool wait_sipi;    /* after power-on (APs) or INIT: waits for a SIPI */
	uint64_t halt_t0;
	bool x2apic_ok;    /* CPUID offers x2APIC: else enabling it is a #GP */
	/* the sleep handshake */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	uint64_t wake_seq;
	atomic_bool asleep; /* in lapic_sleep: a wake-up is enough, no kick needed */
	/* the host timer behind the APIC timer (vCPU thread only) */
	timer_t host_timer;
	bool have_timer;
	uint64_t armed_ns;
	uint64_t armed_period; /* its interval: a periodic APIC timer's period */
	uint64_t tsc_khz;
	/* the CPU state after power-on, for SIPI and INIT */
	struct kvm_regs reset_regs;
	struct kvm_sregs reset_sregs;
	struct lapic_stats stats;
	/* posted interrupts (lapic_post.c): the PID posters write without
	 * the lock; state, since_ns are the vCPU thread's */
	struct pi_desc pid;
	enum pi_state state;
	uint64_t state_since_ns;
	struct lapic_tl *tl; /* --timeline: the state changes (lapic_timeline.c) */
	/* device interrupts' latency (lapic_lat.c): per vector, when a device
	 * raised it and the vCPU's state then, in one word (0: none waiting) */
	uint64_t dev_raised[256];
	struct lapic_lat *lat; /* samples by that state (lock held) */
};


/* lapic_lat.c: a device (IOAPIC pin, MSI) raised vector for this vCPU
 * (any thread); the vector is handed to the guest (its thread, at the
 * injection, lock held). */
struct lapic_lat *lapic_lat_alloc(void); /* with the statistics on */
void lapic_lat_raised(struct lapic *l, uint8_t vector);
void lapic_lat_injected(struct lapic *l, int vector);
void lapic_lat_free(struct lapic *l);

/* lapic_post.c */

/* The time in the current state up to now_ns, counted (the vCPU thread). */
void lapic_pi_account(struct lapic *l, uint64_t now_ns);
/* The vCPU thread enters state s: the PID update, and the time spent in
 * the state it leaves counted. */
void lapic_pi_state(struct lapic *l, enum pi_state s, uint64_t now_ns);
/* Take PIR into IRR (l->lock held; the vCPU's own thread). Returns how many
 * vectors it held. */
unsigned lapic_pi_take(struct lapic *l);
/* Post vector to target's PID and send the notification the post asks for
 * (any thread, no APIC lock held). */
void lapic_pi_post(struct vcpu *target, uint8_t vector, enum lapic_src src);

/* lapic_timeline.c: record a state change (the vCPU's thread); free. */
void lapic_timeline_note(struct lapic *l, enum pi_state s, uint64_t now_ns);
void lapic_timeline_free(struct lapic *l);

#endif
