/*
 * vsched: hvmm's scheduler of vCPUs onto physical CPUs (`--pcpus M`, with
 * `--irqchip user`): at most M of the VM's vCPU threads are in KVM_RUN at
 * once. That makes the lecture's *ready* state happen for real: a vCPU with
 * work to do but no physical CPU, because other vCPUs have them.
 *
 * A vCPU takes a slot before it enters the guest (vsched_acquire) and keeps
 * it across exits, until it halts (a halted vCPU needs no CPU: it gives the
 * slot back before sleeping) or its time slice is over while another vCPU
 * waits. Waiters queue in arrival order; the first one, finding every slot
 * taken, waits until the earliest holder's slice ends and then preempts it:
 * marks it and kicks it out of KVM_RUN (the callback), and the holder, at
 * that exit, gives its slot up (vsched_exit) and queues again at the back.
 *
 * Several VMs in one hvmm process share one scheduler — the lecture's
 * "another VM has the CPU": ids are then numbered across the VMs and each
 * is bound to its VM and the VM's own number for it (vsched_bind).
 *
 * Pure but for pthreads and the clock: the kick, "should I give up waiting"
 * (the VM stopping or pausing) and the time are the caller's, so the unit
 * tests drive it with plain threads.
 */
#ifndef HVMM_VSCHED_H
#define HVMM_VSCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define VSCHED_MAX_VCPUS 64
#define VSCHED_DEFAULT_SLICE_NS 4000000ull /* 4 ms: a few of Linux's CFS minimum slices */

struct vsched_vcpu_stats {
	uint64_t waits;     /* times it had to wait for a slot */
	uint64_t wait_ns;   /* time spent waiting */
	uint64_t preempted; /* slices ended by a waiter */
	uint64_t slices;    /* slots taken */
};

struct vsched {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int slots, used;
	uint64_t slice_ns;
	int queue[VSCHED_MAX_VCPUS]; /* waiting vCPU ids, first come first */
	int queued;
	bool holding[VSCHED_MAX_VCPUS];
	uint64_t slice_end[VSCHED_MAX_VCPUS];
	atomic_bool preempt[VSCHED_MAX_VCPUS];
	struct vsched_vcpu_stats st[VSCHED_MAX_VCPUS];
	/* the caller's: kick a vCPU out of the guest; should a waiter give
	 * up (its VM stops or pauses). Called with the owner's ctx and its own
	 * number for the vCPU (vsched_bind). */
	void (*kick)(void *ctx, int id);
	bool (*give_up)(void *ctx);
	void *owner[VSCHED_MAX_VCPUS];
	int local[VSCHED_MAX_VCPUS];
};

/* slots >= 1; slice_ns 0: VSCHED_DEFAULT_SLICE_NS. Every id starts bound
 * to ctx under its own number. 0 or -errno. */
int vsched_init(struct vsched *s, int slots, uint64_t slice_ns, void (*kick)(void *ctx, int id),
	       bool (*give_up)(void *ctx), void *ctx);
/* id belongs to ctx, which calls it local (before any vCPU runs). */
void vsched_bind(struct vsched *s, int id, void *ctx, int local);
void vsched_destroy(struct vsched *s);
/* vCPU id wants a physical CPU (its own thread). true: it holds a slot (at
 * once if it held one already); false: give_up said so while it waited. */
bool vsched_acquire(struct vsched *s, int id);
/* Give the slot back (halting, pausing, ending). No-op without one. */
void vsched_release(struct vsched *s, int id);
/* After every exit: if the slice was preempted, the slot goes back (the
 * next vsched_acquire queues). true if it did. */
bool vsched_exit(struct vsched *s, int id);
bool vsched_holds(struct vsched *s, int id);
/* A copy of vCPU id's counts. */
struct vsched_vcpu_stats vsched_stats(struct vsched *s, int id);

#endif
