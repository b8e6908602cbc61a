/*
 * controls: the VM execution controls a user may set (which guest actions
 * exit), as KVM exposes them: HLT exits off (KVM_CAP_X86_DISABLE_EXITS) and an
 * MSR filter whose MSRs exit to hvmm (KVM_X86_SET_MSR_FILTER).
 */
#ifndef HVMM_CONTROLS_H
#define HVMM_CONTROLS_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;

#define CONTROLS_MAX_MSRS 16 /* KVM_MSR_FILTER_MAX_RANGES: one range per MSR */

/* --msr-filter LIST: comma-separated MSR indexes (0x... or decimal), added
 * to cfg. 0, or -1 with a one-line reason in err. */
int controls_parse_msr_filter(struct vm_config *cfg, const char *spec, char *err, size_t errlen);

/* On the VM fd, before any vCPU exists (KVM's rule for disabling exits).
 * 0, or an hvmm exit status after printing why. */
int controls_apply(struct vm *vm);

#endif
