/*
 * The VMCS, from outside. KVM keeps the real VMCS/VMCB to itself; what a VMM
 * gets are its fields through KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_VCPU_EVENTS
 * and KVM_GET_MP_STATE, and the last exit in kvm_run. Read from the main
 * thread once the vCPU threads have ended, so nothing races KVM_RUN.
 */
#include "vmstate.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "memory.h"
#include "stats.h"
#include "vcpu.h"
#include "vm.h"

static void vmstate_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *vmstate_seg(const struct kvm_segment *s)
{
	json_object *o = json_object_new_object();
	vmstate_u64(o, "selector", s->selector);
	vmstate_u64(o, "base", s->base);
	vmstate_u64(o, "limit", s->limit);
	vmstate_u64(o, "type", s->type);
	vmstate_u64(o, "dpl", s->dpl);
	vmstate_u64(o, "present", s->present);
	vmstate_u64(o, "l", s->l);
	vmstate_u64(o, "db", s->db);
	return o;
}

static const char *vmstate_mp_name(uint32_t s)
{
	switch (s) {
	case KVM_MP_STATE_RUNNABLE: return "runnable";
	case KVM_MP_STATE_UNINITIALIZED: return "uninitialized";
	case KVM_MP_STATE_INIT_RECEIVED: return "init-received";
	case KVM_MP_STATE_HALTED: return "halted";
	case KVM_MP_STATE_SIPI_RECEIVED: return "sipi-received";
	default: return "other";
	}
}

/* The exit's reason and its qualification, as kvm_run carries them. */
static json_object *vmstate_exit(const struct kvm_run *run)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "reason", json_object_new_string(stats_reason_name(run->exit_reason)));
	vmstate_u64(o, "code", run->exit_reason);
	if (run->exit_reason == KVM_EXIT_IO) {
		vmstate_u64(o, "port", run->io.port);
		vmstate_u64(o, "size", run->io.size);
		json_object_object_add(o, "direction",
				       json_object_new_string(run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in"));
		vmstate_u64(o, "count", run->io.count);
	} else if (run->exit_reason == KVM_EXIT_MMIO) {
		vmstate_u64(o, "address", run->mmio.phys_addr);
		vmstate_u64(o, "length", run->mmio.len);
		json_object_object_add(o, "write", json_object_new_boolean(run->mmio.is_write));
	}
	return o;
}

/*
 * The guest's own 4-level walk of one linear address, as the CPU's page
 * walker does it after the guest's CR3: each level's entry (a guest-physical
 * address, read from hvmm's memory through its slot) until a leaf. Under
 * nested paging each of those guest-physical reads is itself translated by
 * the NPT/EPT; `hvmm lab ept` counts that second dimension.
 */
static json_object *vmstate_walk(struct vcpu *v, const struct kvm_sregs *s, uint64_t la)
{
	json_object *o = json_object_new_object();
	vmstate_u64(o, "linear", la);
	json_object *levels = json_object_new_array();
	json_object_object_add(o, "levels", levels);
	if (!(s->cr0 & (1u << 31)) || !(s->efer & (1u << 10))) {
		json_object_object_add(o, "note", json_object_new_string("not in long mode with paging"));
		return o;
	}
	uint64_t table = s->cr3 & 0x000ffffffffff000ull;
	for (int level = 4; level >= 1; level--) {
		unsigned idx = (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
		uint64_t gpa = table + idx * 8ull, e;
		if (mem_read(&v->vm->mem, gpa, &e, sizeof(e)) < 0) {
			json_object_object_add(o, "note", json_object_new_string("a table outside guest RAM"));
			return o;
		}
		json_object *l = json_object_new_object();
		vmstate_u64(l, "level", (uint64_t)level);
		vmstate_u64(l, "index", idx);
		vmstate_u64(l, "entry_gpa", gpa);
		vmstate_u64(l, "entry", e);
		/* where hvmm keeps that guest-physical address: slot and offset */
		for (int r = 0; r < v->vm->mem.nr_regions; r++) {
			const struct mem_region *m = &v->vm->mem.regions[r];
			if (gpa >= m->gpa && gpa - m->gpa < m->size) {
				vmstate_u64(l, "slot", (uint64_t)r);
				vmstate_u64(l, "slot_offset", gpa - m->gpa);
			}
		}
		json_object_array_add(levels, l);
		if (!(e & 1)) {
			json_object_object_add(o, "note", json_object_new_string("not present"));
			return o;
		}
		bool leaf = level == 1 || ((level == 2 || level == 3) && (e & 0x80));
		if (leaf) {
			uint64_t page = 1ull << (12 + 9 * (level - 1));
			vmstate_u64(o, "page_size", page);
			vmstate_u64(o, "gpa", (e & 0x000ffffffffff000ull & ~(page - 1)) | (la & (page - 1)));
			return o;
		}
		table = e & 0x000ffffffffff000ull;
	}
	return o;
}

void vmstate_print(struct vcpu *v, FILE *f)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "vcpu%d at the stop: KVM refuses its registers\n", v->id);
		return;
	}
	struct kvm_mp_state mp = { 0 };
	struct kvm_vcpu_events ev = { 0 };
	bool have_mp = ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0;
	bool have_ev = ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0;
	fprintf(f, "vcpu%d at the stop: rip %#llx rsp %#llx rflags %#llx (IF %d) cr0 %#llx cr3 %#llx, %s%s%s\n",
		v->id, (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
		(int)((r.rflags >> 9) & 1), (unsigned long long)s.cr0, (unsigned long long)s.cr3,
		have_mp ? vmstate_mp_name(mp.mp_state) : "activity unknown",
		have_ev && ev.interrupt.injected ? ", an interrupt being injected" : "",
		have_ev && (ev.exception.pending || ev.exception.injected) ? ", an exception pending" : "");
}

static uint64_t vmstate_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * --nested: what KVM_GET_NESTED_STATE says of the guest's own hypervisor. In
 * guest mode (the vCPU was running the guest's guest) the SVM format carries
 * the guest hypervisor's VMCB ("vmcb12": its control area as KVM cached it,
 * then KVM's save area of the guest hypervisor itself), which is the one real
 * VMCB a VMM gets to see; KVM's own VMCBs stay in the kernel.
 */
static json_object *vmstate_nested(struct vcpu *v)
{
	int max = ioctl(v->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
	if (max < (int)sizeof(struct kvm_nested_state))
		return NULL;
	struct kvm_nested_state *ns = calloc(1, (size_t)max);
	if (!ns)
		return NULL;
	ns->size = (uint32_t)max;
	if (ioctl(v->fd, KVM_GET_NESTED_STATE, ns) < 0) {
		free(ns);
		return NULL;
	}
	json_object *o = json_object_new_object();
	bool svm = ns->format == KVM_STATE_NESTED_FORMAT_SVM;
	json_object_object_add(o, "format", json_object_new_string(svm ? "svm" : "vmx"));
	json_object_object_add(o, "guest_mode", json_object_new_boolean(ns->flags & KVM_STATE_NESTED_GUEST_MODE));
	json_object_object_add(o, "run_pending", json_object_new_boolean(ns->flags & KVM_STATE_NESTED_RUN_PENDING));
	vmstate_u64(o, "size", ns->size);
	if (!svm) {
		vmstate_u64(o, "vmxon_pa", ns->hdr.vmx.vmxon_pa);
		vmstate_u64(o, "vmcs12_pa", ns->hdr.vmx.vmcs12_pa);
		free(ns);
		return o;
	}
	json_object_object_add(o, "gif", json_object_new_boolean(ns->flags & KVM_STATE_NESTED_GIF_SET));
	vmstate_u64(o, "vmcb12_pa", ns->hdr.svm.vmcb_pa);
	if ((ns->flags & KVM_STATE_NESTED_GUEST_MODE) &&
	    ns->size >= sizeof(*ns) + KVM_STATE_NESTED_SVM_VMCB_SIZE) {
		/* offsets of the VMCB (AMD64 APM vol. 2, appendix B) */
		const uint8_t *b = ns->data.svm[0].vmcb12;
		static const struct {
			const char *name;
			unsigned off, bytes;
		} f[] = {
			{ "intercept_cr", 0x000, 4 },       { "intercept_dr", 0x004, 4 },
			{ "intercept_exceptions", 0x008, 4 }, { "intercept_misc1", 0x00c, 4 },
			{ "intercept_misc2", 0x010, 4 },    { "iopm_base_pa", 0x040, 8 },
			{ "msrpm_base_pa", 0x048, 8 },      { "tsc_offset", 0x050, 8 },
			{ "asid", 0x058, 4 },               { "int_ctl", 0x060, 4 },
			{ "exit_code", 0x070, 8 },          { "exit_info_1", 0x078, 8 },
			{ "np_enable", 0x090, 8 },          { "event_inj", 0x0a8, 8 },
			{ "n_cr3", 0x0b0, 8 },              { "next_rip", 0x0c8, 8 },
		}, h[] = {
			{ "efer", 0x4d0, 8 }, { "cr4", 0x548, 8 }, { "cr3", 0x550, 8 }, { "cr0", 0x558, 8 },
			{ "rflags", 0x570, 8 }, { "rip", 0x578, 8 }, { "rsp", 0x5d8, 8 }, { "rax", 0x5f8, 8 },
		};
		json_object *c = json_object_new_object(), *hs = json_object_new_object();
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			vmstate_u64(c, f[i].name, vmstate_le(b + f[i].off, f[i].bytes));
		for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
			vmstate_u64(hs, h[i].name, vmstate_le(b + h[i].off, h[i].bytes));
		json_object_object_add(o, "vmcb12_control", c);
		json_object_object_add(o, "guest_hypervisor", hs);
	}
	free(ns);
	return o;
}

json_object *vmstate_json(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return NULL;
	json_object *o = json_object_new_object();
	json_object *g = json_object_new_object();
	json_object_object_add(o, "guest_state", g);
	vmstate_u64(g, "rip", r.rip);
	vmstate_u64(g, "rsp", r.rsp);
	vmstate_u64(g, "rflags", r.rflags);
	vmstate_u64(g, "cr0", s.cr0);
	vmstate_u64(g, "cr2", s.cr2);
	vmstate_u64(g, "cr3", s.cr3);
	vmstate_u64(g, "cr4", s.cr4);
	vmstate_u64(g, "efer", s.efer);
	vmstate_u64(g, "apic_base", s.apic_base);
	const struct {
		const char *n;
		const struct kvm_segment *s;
	} segs[] = { { "cs", &s.cs }, { "ss", &s.ss }, { "ds", &s.ds }, { "es", &s.es },
		     { "fs", &s.fs }, { "gs", &s.gs }, { "tr", &s.tr }, { "ldt", &s.ldt } };
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		json_object_object_add(g, segs[i].n, vmstate_seg(segs[i].s));
	json_object *gdt = json_object_new_object(), *idt = json_object_new_object();
	vmstate_u64(gdt, "base", s.gdt.base);
	vmstate_u64(gdt, "limit", s.gdt.limit);
	vmstate_u64(idt, "base", s.idt.base);
	vmstate_u64(idt, "limit", s.idt.limit);
	json_object_object_add(g, "gdtr", gdt);
	json_object_object_add(g, "idtr", idt);

	json_object *n = json_object_new_object();
	json_object_object_add(o, "non_register_state", n);
	struct kvm_mp_state mp;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0)
		json_object_object_add(n, "activity", json_object_new_string(vmstate_mp_name(mp.mp_state)));
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
		vmstate_u64(n, "interrupt_shadow", ev.interrupt.shadow);
		json_object_object_add(n, "nmi_masked", json_object_new_boolean(ev.nmi.masked));
		json_object_object_add(n, "nmi_pending", json_object_new_boolean(ev.nmi.pending));
		json_object_object_add(n, "exception_pending",
				       json_object_new_boolean(ev.exception.pending || ev.exception.injected));
		json_object_object_add(n, "interrupt_injected", json_object_new_boolean(ev.interrupt.injected));
	}
	json_object_object_add(o, "last_exit", vmstate_exit(v->run));
	json_object_object_add(o, "walk_rip", vmstate_walk(v, &s, s.cs.base + r.rip));
	if (v->vm->cfg.walk_set)
		json_object_object_add(o, "walk", vmstate_walk(v, &s, v->vm->cfg.walk_addr));
	json_object *nested = v->vm->cfg.nested ? vmstate_nested(v) : NULL;
	if (nested)
		json_object_object_add(o, "nested", nested);
	return o;
}
