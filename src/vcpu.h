/*
 * vcpu: one thread per virtual CPU. The thread loops on KVM_RUN — the seed's
 * VM launch/resume — and every return is a VM exit that reached hvmm. The
 * loop is fail-closed: one switch on exit_reason, and an exit it does not
 * expect stops the VM with a register dump instead of guessing.
 */
#ifndef HVMM_VCPU_H
#define HVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "stats.h"

struct vm;
struct lapic;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	int stats_fd; /* KVM binary stats, -1 when the host has none */
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	struct stats_vcpu stats;
	struct lapic *lapic; /* --irqchip user: hvmm's local APIC (lapic.h); else NULL */
};

/* KVM_CREATE_VCPU, map kvm_run, program CPUID (from cpuid, patched for this APIC ID). */
int vcpu_create(struct vm *vm, int id, const struct kvm_cpuid2 *cpuid, struct vcpu **out);
int vcpu_start(struct vcpu *v);
/* Make the vCPU leave KVM_RUN soon (safe from any thread). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* RIP, RSP, segments, control registers, EFER; instruction bytes at RIP. */
void vcpu_dump(struct vcpu *v, FILE *f);
/* Once per process, before any vCPU thread: the kick signal's handler. */
int vcpu_signals_init(void);
/* The vCPU whose thread calls this, or NULL on any other thread. */
struct vcpu *vcpu_current(void);

#endif
