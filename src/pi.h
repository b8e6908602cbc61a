/*
 * pi: posted interrupts, the lecture's way, for hvmm's own interrupt path
 * (`--irqchip user`).
 *
 * Each vCPU has a Posted Interrupt Descriptor (PID):
 *   - PIR, the Posted Interrupt Requests: one bit per vector, set by whoever
 *     posts (a device's MSI on the event loop, the IOAPIC, another vCPU's
 *     IPI, the APIC timer), lock-free;
 *   - ON, the outstanding notification: a notification was sent and the
 *     vCPU has not yet taken PIR;
 *   - SN, suppress notification: post only, tell nobody (the vCPU is
 *     *ready*: not in the guest, and it takes PIR before it enters again);
 *   - NV, the notification vector: the active notification vector while
 *     the vCPU is *running* (the poster kicks it out of KVM_RUN; it takes
 *     PIR at the next entry, as the CPU's posted-interrupt processing does
 *     at its next VM entry), the wake-up notification vector while it is
 *     *halted* (the poster wakes it; it becomes ready);
 *   - NDST, the notification destination: the vCPU's index.
 *
 * The VMM updates SN and NV at every state change ("PID update"): running
 * → SN 0, NV active; ready → SN 1; halted → SN 0, NV wake-up. Going to
 * running, it takes whatever PIR holds into the APIC's IRR.
 *
 * A post is the hardware's sequence, with atomics: set the PIR bit; then,
 * in one compare-and-swap on the control word, if neither ON nor SN is set,
 * set ON and send the notification NV names. So a burst of posts to a
 * running vCPU costs one kick, not one per interrupt, and nothing posted is
 * ever lost or taken twice: PIR bits are only cleared by the atomic swap of
 * pi_drain, and ON is cleared before that swap, so a post racing with the
 * drain either lands in this drain or notifies again for the next one.
 *
 * The Interrupt Remapping Table (struct pi_irte) is in lapic_post.c: each
 * source's entry names a PID and a vector (posted) or a message the VMM
 * delivers itself (remapped). This file is pure: no threads, no KVM.
 */
#ifndef HVMM_PI_H
#define HVMM_PI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The notification vectors, Linux's numbers for the same two jobs
 * (POSTED_INTR_VECTOR, POSTED_INTR_WAKEUP_VECTOR). In hvmm a vector names
 * the notification: a kick for the first, a wake-up for the second. */
#define PI_NV_ACTIVE 0xf2
#define PI_NV_WAKEUP 0xf1

/* The control word: ON bit 0, SN bit 1, NV bits 23:16, NDST bits 63:32
 * (the VT-d PID's order of fields, packed into one word so that "test SN
 * and ON, set ON" is one atomic step). */
#define PI_CTL_ON (1ull << 0)
#define PI_CTL_SN (1ull << 1)
#define PI_CTL_NV_SHIFT 16
#define PI_CTL_NDST_SHIFT 32

/* A vCPU's state, as the lecture has them. */
enum pi_state {
	PI_RUNNING, /* in the guest (KVM_RUN) */
	PI_READY,   /* runnable, not in the guest: hvmm has its CPU (an exit) */
	PI_HALTED,  /* executed HLT (or waits for SIPI): sleeps until woken */
	PI_NR_STATES,
};

/* What a post asks of the poster. */
enum pi_notify {
	PI_NOTIFY_NONE,        /* not posted: vectors 0-15 are not interrupts */
	PI_NOTIFY_SUPPRESSED,  /* posted; SN set (ready): no notification */
	PI_NOTIFY_OUTSTANDING, /* posted; ON set: a notification is on its way */
	PI_NOTIFY_ACTIVE,      /* posted; kick the running vCPU out of the guest */
	PI_NOTIFY_WAKEUP,      /* posted; wake the halted vCPU */
};

struct pi_desc {
	_Atomic uint64_t pir[4];
	_Atomic uint64_t ctl;
};

/* A fresh PID for vCPU ndst: PIR empty, ON clear, in the ready state (SN
 * set: nothing is notified before the vCPU first runs). */
void pi_desc_init(struct pi_desc *d, uint32_t ndst);
/* Post vector (any thread): its PIR bit, then the notification, if one is
 * due, for the caller to send (PI_NOTIFY_ACTIVE, _WAKEUP), or why none is.
 * Vectors 0-15 are not interrupts: dropped, PI_NOTIFY_NONE. */
enum pi_notify pi_post(struct pi_desc *d, uint8_t vector);
/* The VMM's PID update when the vCPU enters state s (its own thread). */
void pi_set_state(struct pi_desc *d, enum pi_state s);
/* Take everything posted (the vCPU's thread, before entering the guest):
 * ON cleared, then PIR swapped for empty. irr receives the vectors (OR'ed
 * in, the APIC's 8 words of IRR); returns how many were taken. */
unsigned pi_drain(struct pi_desc *d, uint32_t irr[8]);
/* Must the vCPU take PIR before it may sleep: a PIR bit set, or ON (a
 * notification outstanding, which stops further ones)? Lock-free: a
 * halted vCPU's last look, after pi_set_state(PI_HALTED). */
bool pi_pending(const struct pi_desc *d);
/* Fields of the control word. */
bool pi_on(const struct pi_desc *d);
bool pi_sn(const struct pi_desc *d);
uint8_t pi_nv(const struct pi_desc *d);
uint32_t pi_ndst(const struct pi_desc *d);
const char *pi_state_name(enum pi_state s);

#endif
