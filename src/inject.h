/*
 * inject: event injection on request, the lecture's "VM entry control": the
 * VMM names an interrupt, an NMI or an exception and the CPU delivers it to
 * the guest at the next entry as if it had happened there.
 *
 * --inject SPEC schedules one (up to INJECT_MAX) on vCPU 0, a time after the
 * guest starts: irq:VEC@MS (a fixed MSI to the vCPU's LAPIC, KVM_SIGNAL_MSI),
 * nmi@MS (KVM_NMI) or exception:VEC[:ERRCODE]@MS (KVM_SET_VCPU_EVENTS). The
 * control API's PUT /hvmm/inject injects one at once (inject_now).
 */
#ifndef HVMM_INJECT_H
#define HVMM_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;

#define INJECT_MAX 8

enum inject_kind { INJECT_IRQ, INJECT_NMI, INJECT_EXCEPTION };

struct inject_req {
	enum inject_kind kind;
	uint8_t vector;      /* irq and exception */
	bool has_error_code; /* exception */
	uint32_t error_code;
	uint32_t at_ms;      /* after the guest starts */
};

/* The result of one request, for --stats-json. */
struct inject_result {
	struct inject_req req;
	uint64_t injected_ns; /* since hvmm started; 0: never injected (the VM ended first) */
};

/* Parse one --inject SPEC into cfg. 0, or -1 with a one-line reason in err. */
int inject_parse(struct inject_req *reqs, int *n, const char *spec, char *err, size_t errlen);
/* After evloop_init: a timerfd per request, watched by the event loop; with
 * --api-sock the queue for inject_now too. 0 or -errno. */
int inject_init(struct vm *vm);
/* The API's injection, now, on vCPU 0: spec as --inject's without "@MS"
 * ("irq:0x5e", "nmi", "exception:13:0"). Any thread. 0, or -1 with a
 * one-line reason in err. */
int inject_now(struct vm *vm, const char *spec, char *err, size_t n);
/* How many inject_now events of each kind reached vCPU 0 (irq, nmi, exception). */
void inject_now_counts(struct vm *vm, uint64_t out[3]);
/* When the guest starts (vm_run, main thread): arm the timers. */
void inject_arm(struct vm *vm);
/* vCPU 0's thread, before each KVM_RUN: the NMIs and exceptions due. */
void inject_vcpu(struct vcpu *v);
/* Does vCPU 0 have an NMI or exception waiting for inject_vcpu? (With
 * --irqchip user a halted vCPU 0 sleeps in hvmm and must wake for it, as
 * KVM wakes a halted vCPU for a pending event.) Any thread. */
bool inject_pending(struct vm *vm);
/* What was injected, when. Returns how many requests there were. */
unsigned inject_results(struct vm *vm, struct inject_result *out, unsigned max);
void inject_destroy(struct vm *vm);

#endif
