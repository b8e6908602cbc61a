/*
 * The execution controls of the lecture, as a user-space VMM sets them: KVM
 * decides which guest instructions exit (the VMCS/VMCB intercepts); a VMM can
 * only ask it for less (HLT runs in the guest, halting the physical CPU;
 * PAUSE never exits, so a spinning vCPU is not yielded) or
 * for more (an MSR KVM would emulate exits to the VMM instead).
 */
#include "controls.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util.h"
#include "vm.h"

int controls_parse_msr_filter(struct vm_config *cfg, const char *spec, char *err, size_t errlen)
{
	const char *p = spec;
	if (!*p) {
		snprintf(err, errlen, "empty list");
		return -1;
	}
	while (*p) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 0);
		if (end == p || errno || v > UINT32_MAX || (*end && (*end != ',' || !end[1]))) {
			snprintf(err, errlen, "'%s' is not a list of MSR indexes (e.g. 0xc0000103,0x10)", spec);
			return -1;
		}
		if (cfg->nr_msr_filter >= CONTROLS_MAX_MSRS) {
			snprintf(err, errlen, "more than %d MSRs", CONTROLS_MAX_MSRS);
			return -1;
		}
		cfg->msr_filter[cfg->nr_msr_filter++] = (uint32_t)v;
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int controls_fail(const char *fmt, const char *what, int e)
{
	util_err(fmt, what, strerror(e));
	return HVMM_EXIT_HOST;
}

int controls_apply(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	/* Both in one request: KVM takes them only before the first vCPU. */
	const uint64_t hlt = KVM_X86_DISABLE_EXITS_HLT, pause = KVM_X86_DISABLE_EXITS_PAUSE;
	uint64_t off = (cfg->no_hlt_exits ? hlt : 0) | (cfg->no_pause_exits ? pause : 0);
	if (off) {
		const char *opt = off == (hlt | pause) ? "--no-hlt-exits --no-pause-exits"
				  : off == hlt ? "--no-hlt-exits" : "--no-pause-exits";
		int have = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS);
		uint64_t missing = have < 0 ? off : off & ~(uint64_t)have;
		if (missing) {
			util_err("%s: this host's KVM cannot leave %s to the guest (KVM_CAP_X86_DISABLE_EXITS = %d)", opt,
				 missing == (hlt | pause) ? "HLT or PAUSE" : missing == hlt ? "HLT" : "PAUSE", have);
			return HVMM_EXIT_HOST;
		}
		struct kvm_enable_cap c = { .cap = KVM_CAP_X86_DISABLE_EXITS, .args[0] = off };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) < 0) {
			util_err("%s: KVM_CAP_X86_DISABLE_EXITS: %s", opt, strerror(errno));
			return HVMM_EXIT_HOST;
		}
	}
	const bool user_apic = cfg->irqchip == IRQCHIP_USER;
	if (user_apic) {
		/* hvmm's local APICs (lapic.h) answer IA32_APIC_BASE and
		 * IA32_TSC_DEADLINE, which KVM would keep (both filtered
		 * below), and the x2APIC MSRs 0x800-0x8ff, which KVM never
		 * filters and, with no LAPIC of its own, finds invalid: those
		 * exit as INVAL. An MSR unknown to KVM exits as well and gets
		 * the #GP KVM would have given (vcpu_handle_msr). */
		struct kvm_enable_cap c = { .cap = KVM_CAP_X86_USER_SPACE_MSR,
					    .args[0] = KVM_MSR_EXIT_REASON_FILTER |
						       KVM_MSR_EXIT_REASON_INVAL |
						       KVM_MSR_EXIT_REASON_UNKNOWN };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) < 0)
			return controls_fail("--irqchip user: %s: %s", "KVM_CAP_X86_USER_SPACE_MSR", errno);
	}
	if (cfg->nr_msr_filter || user_apic) {
		if (cfg->nr_msr_filter + (user_apic ? 2 : 0) > CONTROLS_MAX_MSRS) {
			util_err("--msr-filter: at most %d MSRs with --irqchip user (its APIC takes 2 filter ranges)",
				 CONTROLS_MAX_MSRS - 2);
			return HVMM_EXIT_USAGE;
		}
	}
	if (cfg->nr_msr_filter && !user_apic) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0 ||
		    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0) {
			util_err("--msr-filter: this host's KVM has no MSR filter (KVM_CAP_X86_MSR_FILTER)");
			return HVMM_EXIT_HOST;
		}
		/* Only the filter's denials exit to hvmm: MSRs KVM does not know
		 * still #GP inside KVM, as without a filter. */
		struct kvm_enable_cap c = { .cap = KVM_CAP_X86_USER_SPACE_MSR,
					    .args[0] = KVM_MSR_EXIT_REASON_FILTER };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) < 0)
			return controls_fail("--msr-filter: %s: %s", "KVM_CAP_X86_USER_SPACE_MSR", errno);
	}
	if (cfg->nr_msr_filter || user_apic) {
		/* One single-MSR range each, its bitmap bit 0 clear: denied, so the
		 * access exits to user space. Everything else stays allowed. */
		static uint8_t deny; /* KVM copies the bitmaps during the ioctl */
		struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
		int n = 0;
		for (int i = 0; i < cfg->nr_msr_filter; i++)
			f.ranges[n++] = (struct kvm_msr_filter_range){
				.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
				.nmsrs = 1, .base = cfg->msr_filter[i], .bitmap = &deny };
		static const uint32_t apic_msrs[] = { 0x1b /* IA32_APIC_BASE */, 0x6e0 /* IA32_TSC_DEADLINE */ };
		for (unsigned i = 0; user_apic && i < 2; i++)
			f.ranges[n++] = (struct kvm_msr_filter_range){
				.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
				.nmsrs = 1, .base = apic_msrs[i], .bitmap = &deny };
		if (ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
			return controls_fail("--msr-filter: %s: %s", "KVM_X86_SET_MSR_FILTER", errno);
	}
	return 0;
}
