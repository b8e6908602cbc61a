/*
 * snapshot_kvm: what KVM holds for hvmm — each vCPU's registers, FPU and
 * extended state, MSRs, local APIC, pending events and nested state, and
 * the VM's clock (plus KVM's PIC, IOAPIC and PIT with --irqchip kernel).
 *
 * The order of the writes at a restore matters, because KVM checks each
 * against what is already set: CPUID was set at the vCPU's creation; the
 * special registers (EFER, CR0/CR4) before the MSRs and the nested state
 * that depend on them; the local APIC before the MSRs, because KVM ignores
 * a TSC-deadline write while the APIC timer is not in TSC-deadline mode;
 * pending events last, so that nothing written afterwards clears them.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "snapshot_priv.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

#define SNAP_VCPU_VERSION 1
#define SNAP_VM_VERSION 1
#define SNAP_MAX_MSRS 1024
#define SNAP_MAX_XSAVE (1u << 20)
#define SNAP_MAX_NESTED (1u << 20)

/* The fixed part of a vCPU's section; the MSRs, the XSAVE area and the
 * nested state follow it, each as long as it says. */
struct snap_vcpu_fixed {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
	uint32_t nr_msrs;
	uint32_t xsave_size;
	uint32_t nested_size;
	uint32_t has_xcrs;
};

/* The MSRs KVM can save for this host, once per process (KVM_GET_MSR_INDEX_LIST:
 * the architectural ones it virtualizes and its own, kvmclock's among them). */
static int snap_msr_list(int kvm_fd, uint32_t **out, uint32_t *nr)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	if (probe.nmsrs > SNAP_MAX_MSRS)
		return -E2BIG;
	struct kvm_msr_list *l = malloc(sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int e = -errno;
		free(l);
		return e;
	}
	uint32_t *idx = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (!idx) {
		free(l);
		return -ENOMEM;
	}
	memcpy(idx, l->indices, l->nmsrs * sizeof(uint32_t));
	*nr = l->nmsrs;
	*out = idx;
	free(l);
	return 0;
}

/* The size KVM's XSAVE area has on this host: 4 KiB, or more with AMX
 * (KVM_CAP_XSAVE2 tells, and then KVM_GET_XSAVE2 is the call). */
static uint32_t snap_xsave_size(int kvm_fd, bool *xsave2)
{
	int s = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	*xsave2 = s > (int)sizeof(struct kvm_xsave);
	return *xsave2 ? (uint32_t)s : (uint32_t)sizeof(struct kvm_xsave);
}

/*
 * Read every listed MSR KVM lets this vCPU read. KVM_GET_MSRS stops at the
 * first one it refuses (returns how many it read): skip that one, go on.
 */
static int snap_get_msrs(int fd, const uint32_t *idx, uint32_t nr, struct kvm_msr_entry *out,
			 uint32_t *got)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + nr * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	uint32_t n = 0, i = 0;
	while (i < nr) {
		uint32_t batch = nr - i;
		m->nmsrs = batch;
		for (uint32_t k = 0; k < batch; k++)
			m->entries[k] = (struct kvm_msr_entry){ .index = idx[i + k] };
		int r = ioctl(fd, KVM_GET_MSRS, m);
		if (r < 0) {
			int e = -errno;
			free(m);
			return e;
		}
		memcpy(out + n, m->entries, (size_t)r * sizeof(struct kvm_msr_entry));
		n += (uint32_t)r;
		i += (uint32_t)r + ((uint32_t)r < batch ? 1 : 0); /* skip the refused one */
	}
	free(m);
	*got = n;
	return 0;
}

int snapshot_vcpu_save(struct vcpu *v, struct snap_writer *w, char *err, size_t n)
{
	struct vm *vm = v->vm;
	int fd = v->fd;
	struct snap_vcpu_fixed f;
	memset(&f, 0, sizeof(f));
	uint32_t *idx = NULL, nidx = 0;
	struct kvm_msr_entry *msrs = NULL;
	void *xsave = NULL, *nested = NULL;
	const char *what = NULL;
	int r, rc = -1;
	/* MP state first: reading it makes KVM take pending INIT/SIPI into
	 * the state it reports, as Firecracker does it. */
	if (ioctl(fd, KVM_GET_MP_STATE, &f.mp) < 0) { what = "KVM_GET_MP_STATE"; goto fail; }
	if (ioctl(fd, KVM_GET_REGS, &f.regs) < 0) { what = "KVM_GET_REGS"; goto fail; }
	if (ioctl(fd, KVM_GET_SREGS, &f.sregs) < 0) { what = "KVM_GET_SREGS"; goto fail; }
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		if (ioctl(fd, KVM_GET_XCRS, &f.xcrs) < 0) { what = "KVM_GET_XCRS"; goto fail; }
		f.has_xcrs = 1;
	}
	bool xsave2;
	f.xsave_size = snap_xsave_size(vm->kvm_fd, &xsave2);
	if (!(xsave = calloc(1, f.xsave_size))) { errno = ENOMEM; what = "XSAVE area"; goto fail; }
	if (ioctl(fd, xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) { what = "KVM_GET_XSAVE"; goto fail; }
	if (ioctl(fd, KVM_GET_DEBUGREGS, &f.debugregs) < 0) { what = "KVM_GET_DEBUGREGS"; goto fail; }
	if (ioctl(fd, KVM_GET_LAPIC, &f.lapic) < 0) { what = "KVM_GET_LAPIC"; goto fail; }
	if ((r = snap_msr_list(vm->kvm_fd, &idx, &nidx)) < 0) { errno = -r; what = "KVM_GET_MSR_INDEX_LIST"; goto fail; }
	if (!(msrs = calloc(nidx ? nidx : 1, sizeof(*msrs)))) { errno = ENOMEM; what = "MSRs"; goto fail; }
	if ((r = snap_get_msrs(fd, idx, nidx, msrs, &f.nr_msrs)) < 0) { errno = -r; what = "KVM_GET_MSRS"; goto fail; }
	/* Nested state only where the guest is itself a hypervisor: KVM's
	 * answer is then longer than its bare header. */
	int nmax = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
	if (nmax > (int)sizeof(struct kvm_nested_state) && (uint32_t)nmax <= SNAP_MAX_NESTED) {
		struct kvm_nested_state *ns = calloc(1, (size_t)nmax);
		if (!ns) { errno = ENOMEM; what = "nested state"; goto fail; }
		ns->size = (uint32_t)nmax;
		if (ioctl(fd, KVM_GET_NESTED_STATE, ns) < 0) { free(ns); what = "KVM_GET_NESTED_STATE"; goto fail; }
		if (ns->size > sizeof(*ns) || ns->flags) {
			nested = ns;
			f.nested_size = ns->size;
		} else {
			free(ns);
		}
	}
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &f.events) < 0) { what = "KVM_GET_VCPU_EVENTS"; goto fail; }
	snap_section_begin(w, "vcpu", (uint32_t)v->id, SNAP_VCPU_VERSION);
	snap_put(&w->body, &f, sizeof(f));
	snap_put(&w->body, msrs, f.nr_msrs * sizeof(*msrs));
	snap_put(&w->body, xsave, f.xsave_size);
	if (nested)
		snap_put(&w->body, nested, f.nested_size);
	snap_section_end(w);
	rc = 0;
	goto out;
fail:
	snprintf(err, n, "vcpu%d: %s: %s", v->id, what, strerror(errno));
out:
	free(idx);
	free(msrs);
	free(xsave);
	free(nested);
	return rc;
}

int snapshot_vcpu_load(struct vcpu *v, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct vm *vm = v->vm;
	int fd = v->fd;
	struct snap_vcpu_fixed f;
	struct kvm_msrs *msrs = NULL;
	void *xsave = NULL;
	struct kvm_nested_state *nested = NULL;
	const char *what = NULL;
	int rc = -1;
	if (version != SNAP_VCPU_VERSION) {
		snprintf(err, n, "vcpu%d: state version %u, this hvmm reads %u", v->id, version,
			 SNAP_VCPU_VERSION);
		return -1;
	}
	snap_get(c, &f, sizeof(f));
	bool xsave2;
	uint32_t xsize = snap_xsave_size(vm->kvm_fd, &xsave2);
	if (c->bad || f.nr_msrs > SNAP_MAX_MSRS || f.nested_size > SNAP_MAX_NESTED ||
	    (f.nested_size && f.nested_size < sizeof(struct kvm_nested_state))) {
		snprintf(err, n, "vcpu%d: malformed state", v->id);
		return -1;
	}
	/* A larger XSAVE area than this host's holds state this host's CPU
	 * (or KVM) cannot take: refuse rather than drop it. */
	if (f.xsave_size < sizeof(struct kvm_xsave) || f.xsave_size > xsize) {
		snprintf(err, n, "vcpu%d: the snapshot's XSAVE area is %u bytes, this host's %u: taken on "
			 "another CPU?", v->id, f.xsave_size, xsize);
		return -1;
	}
	if (!(msrs = calloc(1, sizeof(*msrs) + f.nr_msrs * sizeof(struct kvm_msr_entry))) ||
	    !(xsave = calloc(1, xsize))) {
		snprintf(err, n, "vcpu%d: out of memory", v->id);
		goto out;
	}
	msrs->nmsrs = f.nr_msrs;
	snap_get(c, msrs->entries, f.nr_msrs * sizeof(struct kvm_msr_entry));
	snap_get(c, xsave, f.xsave_size);
	if (f.nested_size) {
		if (!(nested = calloc(1, f.nested_size))) {
			snprintf(err, n, "vcpu%d: out of memory", v->id);
			goto out;
		}
		snap_get(c, nested, f.nested_size);
		if (nested->size != f.nested_size) {
			snprintf(err, n, "vcpu%d: malformed nested state", v->id);
			goto out;
		}
	}
	if (c->bad || c->left) {
		snprintf(err, n, "vcpu%d: state of the wrong length", v->id);
		goto out;
	}
	if (ioctl(fd, KVM_SET_MP_STATE, &f.mp) < 0) { what = "KVM_SET_MP_STATE"; goto fail; }
	if (ioctl(fd, KVM_SET_REGS, &f.regs) < 0) { what = "KVM_SET_REGS"; goto fail; }
	if (ioctl(fd, KVM_SET_SREGS, &f.sregs) < 0) { what = "KVM_SET_SREGS"; goto fail; }
	if (ioctl(fd, KVM_SET_XSAVE, xsave) < 0) { what = "KVM_SET_XSAVE"; goto fail; }
	if (f.has_xcrs && ioctl(fd, KVM_SET_XCRS, &f.xcrs) < 0) { what = "KVM_SET_XCRS"; goto fail; }
	if (ioctl(fd, KVM_SET_DEBUGREGS, &f.debugregs) < 0) { what = "KVM_SET_DEBUGREGS"; goto fail; }
	if (ioctl(fd, KVM_SET_LAPIC, &f.lapic) < 0) { what = "KVM_SET_LAPIC"; goto fail; }
	int set = ioctl(fd, KVM_SET_MSRS, msrs);
	if (set < 0) { what = "KVM_SET_MSRS"; goto fail; }
	if ((uint32_t)set < f.nr_msrs) {
		snprintf(err, n, "vcpu%d: KVM refused MSR 0x%x = 0x%llx (taken on another CPU or KVM?)",
			 v->id, msrs->entries[set].index, (unsigned long long)msrs->entries[set].data);
		goto out;
	}
	if (nested && ioctl(fd, KVM_SET_NESTED_STATE, nested) < 0) { what = "KVM_SET_NESTED_STATE"; goto fail; }
	/* What KVM reported as valid, plus the SIPI vector it always reports
	 * but only takes when told. */
	f.events.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	/* The source VM had exception payloads on (--api-sock or --inject turn
	 * them on for queued exceptions): KVM takes the flag only where they
	 * are on, so this VM gets them too. */
	if (f.events.flags & KVM_VCPUEVENT_VALID_PAYLOAD) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_EXCEPTION_PAYLOAD, .args[0] = 1 };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) { what = "KVM_CAP_EXCEPTION_PAYLOAD"; goto fail; }
	}
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &f.events) < 0) { what = "KVM_SET_VCPU_EVENTS"; goto fail; }
	rc = 0;
	goto out;
fail:
	snprintf(err, n, "vcpu%d: %s: %s", v->id, what, strerror(errno));
out:
	free(msrs);
	free(xsave);
	free(nested);
	return rc;
}

/* The VM's part: kvmclock's value, and the chips KVM emulates itself in
 * --irqchip kernel (with the split irqchip they are hvmm's devices). */
struct snap_vm_state {
	struct kvm_clock_data clock;
	uint32_t irqchip;
	uint32_t has_pit;
	struct kvm_irqchip chips[3]; /* PIC master, PIC slave, IOAPIC */
	struct kvm_pit_state2 pit;
};

int snapshot_kvm_vm_save(struct vm *vm, struct snap_writer *w, char *err, size_t n)
{
	struct snap_vm_state s;
	memset(&s, 0, sizeof(s));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &s.clock) < 0) {
		snprintf(err, n, "KVM_GET_CLOCK: %s", strerror(errno));
		return -1;
	}
	s.irqchip = (uint32_t)vm->cfg.irqchip;
	if (vm->cfg.irqchip == IRQCHIP_KERNEL) {
		for (uint32_t i = 0; i < 3; i++) {
			s.chips[i].chip_id = i;
			if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.chips[i]) < 0) {
				snprintf(err, n, "KVM_GET_IRQCHIP %u: %s", i, strerror(errno));
				return -1;
			}
		}
		s.has_pit = ioctl(vm->vm_fd, KVM_GET_PIT2, &s.pit) == 0;
	}
	snap_section_begin(w, "kvm-vm", 0, SNAP_VM_VERSION);
	snap_put(&w->body, &s, sizeof(s));
	snap_section_end(w);
	return 0;
}

int snapshot_kvm_vm_load(struct vm *vm, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct snap_vm_state s;
	snap_get(c, &s, sizeof(s));
	if (version != SNAP_VM_VERSION || c->bad || c->left) {
		snprintf(err, n, "kvm-vm: state version %u of %zu bytes, this hvmm reads version %u",
			 version, sizeof(s), SNAP_VM_VERSION);
		return -1;
	}
	if (s.irqchip != (uint32_t)vm->cfg.irqchip) {
		snprintf(err, n, "the snapshot was taken with --irqchip %s",
			 irq_mode_name((enum irqchip_mode)s.irqchip));
		return -1;
	}
	/* The guest's clock goes on from the value it had: the time the VM
	 * spent saved is not seen, as with QEMU's and Firecracker's restore
	 * (NTP in the guest puts its wall clock right). Only the value: the
	 * flags describe the source host's clock. */
	struct kvm_clock_data cd = { .clock = s.clock.clock };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &cd) < 0) {
		snprintf(err, n, "KVM_SET_CLOCK: %s", strerror(errno));
		return -1;
	}
	if (vm->cfg.irqchip == IRQCHIP_KERNEL) {
		for (uint32_t i = 0; i < 3; i++) {
			s.chips[i].chip_id = i;
			if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.chips[i]) < 0) {
				snprintf(err, n, "KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
				return -1;
			}
		}
		if (s.has_pit && ioctl(vm->vm_fd, KVM_SET_PIT2, &s.pit) < 0) {
			snprintf(err, n, "KVM_SET_PIT2: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}
