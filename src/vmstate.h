/*
 * vmstate: a vCPU's state as KVM exposes it — the lecture's VMCS (VMCB on
 * AMD) seen from user space: the guest-state area (registers, segments,
 * control registers, EFER), the non-register state (activity, interrupt
 * shadow, NMI blocking, pending events), the last exit's reason and
 * qualification, and a guest-virtual address walked through the guest's page
 * tables into hvmm's memory slots. For --stats-json, after the vCPUs stopped.
 */
#ifndef HVMM_VMSTATE_H
#define HVMM_VMSTATE_H

#include <json-c/json.h>
#include <stdio.h>

struct vcpu;

/* The vCPU's state, or NULL where KVM refuses to give it. */
json_object *vmstate_json(struct vcpu *v);
/* One line of it for --stats: where the vCPU was and whether it was halted
 * (a guest that hung tells where). */
void vmstate_print(struct vcpu *v, FILE *f);

#endif
