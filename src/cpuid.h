/*
 * cpuid: the CPUID policy a guest sees — named features, `--cpuid-mask` /
 * `--cpuid-set` specs and Firecracker-style CPU templates applied to the
 * table KVM_GET_SUPPORTED_CPUID returned. Pure logic: no ioctls, so the unit
 * tests run it on hand-built tables.
 */
#ifndef HVMM_CPUID_H
#define HVMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

struct cpuid_feature {
	const char *name;
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint8_t bit;
};

/* The named feature (case-insensitive), or NULL. */
const struct cpuid_feature *cpuid_feature_find(const char *name);

/* The entry for leaf/subleaf (subleaf only counts for indexed leaves), or NULL. */
struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf);

/*
 * spec: comma list of feature names or LEAF[.SUBLEAF]:REG:BIT (0x1:ecx:27,
 * 7.0:ebx:5). set: true sets the bits, false clears them. All or nothing: on
 * an unknown name, bad syntax or a leaf the table lacks, c is unchanged, err
 * gets one line and the result is -1; 0 on success.
 */
int cpuid_apply_spec(struct kvm_cpuid2 *c, const char *spec, bool set, char *err, size_t errlen);

/*
 * Nested virtualization in the guest's CPUID. on: keep what KVM offers (SVM
 * with its leaf 0x8000000A on AMD, VMX on Intel); -1 if it offers neither
 * (kvm_amd/kvm_intel loaded with nested=0, or a CPU without them). Off (hvmm's
 * default, as Firecracker's): SVM and VMX cleared and leaf 0x8000000A zeroed.
 */
int cpuid_nested(struct kvm_cpuid2 *c, bool on);

/*
 * --irqchip user: CPUID as hvmm's own local APIC has it — x2APIC and the
 * TSC-deadline timer on (both implemented in lapic.c), and off the KVM
 * paravirtual features that only work against KVM's in-kernel LAPIC (PV EOI,
 * PV unhalt/kick, PV IPIs, PV sched yield, async-PF interrupts, extended
 * MSI destination IDs): a guest would otherwise write their MSRs or make
 * their hypercalls and get a #GP or nothing at all.
 */
void cpuid_user_apic(struct kvm_cpuid2 *c);

/* Template none|minimal|no-xsave (see README). 0, or -1 with err on an unknown name. */
int cpuid_apply_template(struct kvm_cpuid2 *c, const char *name, char *err, size_t errlen);

#endif
