/*
 * lapic_stats: the numbers of hvmm's local APICs (--irqchip user) for
 * --stats and --stats-json: per vCPU, what was injected, the IPIs, the timer
 * and the time spent halted in hvmm — what the interrupt lab shows.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "lapic.h"
#include "pi.h"
#include "vcpu.h"
#include "vm.h"
#include "vsched.h"

static uint64_t lapic_irt_total(const struct lapic_stats *s, int mode)
{
	uint64_t n = 0;
	for (int i = 0; i < LAPIC_NR_SRC; i++)
		n += s->irt[i][mode];
	return n;
}

void lapic_stats_print(const struct vcpu *v, FILE *f)
{
	const struct lapic_stats *s = lapic_vcpu_stats(v);
	if (!s)
		return;
	fprintf(f, "       local APIC (hvmm): %llu interrupts injected (+%llu ExtINT, %llu NMI), "
		"IPIs %llu sent / %llu received, %llu timer fires, %llu HLT exits, %.1f ms halted\n",
		(unsigned long long)s->injected, (unsigned long long)s->extint,
		(unsigned long long)s->nmis, (unsigned long long)s->ipis_sent,
		(unsigned long long)s->ipis_received, (unsigned long long)s->timer_fires,
		(unsigned long long)s->hlt_exits, (double)s->halted_ns / 1e6);
	fprintf(f, "       IRT: %llu posted, %llu remapped; posts: %llu active and %llu wake-up "
		"notifications, %llu suppressed (SN), %llu coalesced (ON); %llu taken from PIR\n",
		(unsigned long long)lapic_irt_total(s, LAPIC_IRTE_POSTED),
		(unsigned long long)lapic_irt_total(s, LAPIC_IRTE_REMAPPED),
		(unsigned long long)s->notify_active, (unsigned long long)s->notify_wakeup,
		(unsigned long long)s->suppressed, (unsigned long long)s->coalesced,
		(unsigned long long)s->pir_taken);
	fprintf(f, "       states: running %.1f ms (%llu times), ready %.1f ms (%llu), halted %.1f ms (%llu)\n",
		(double)s->state_ns[PI_RUNNING] / 1e6, (unsigned long long)s->entered[PI_RUNNING],
		(double)s->state_ns[PI_READY] / 1e6, (unsigned long long)s->entered[PI_READY],
		(double)s->state_ns[PI_HALTED] / 1e6, (unsigned long long)s->entered[PI_HALTED]);
	struct lapic_lat_summary ls[PI_NR_STATES];
	uint64_t any = 0;
	for (int i = 0; i < PI_NR_STATES; i++)
		if (lapic_vcpu_dev_latency(v, i, &ls[i]))
			any += ls[i].n;
	if (any) {
		fprintf(f, "       device interrupt latency (raise → injection), median/p90 by the state at the raise:");
		for (int i = 0; i < PI_NR_STATES; i++)
			if (ls[i].n)
				fprintf(f, " %s %.1f/%.1f us (%llu)", pi_state_name((enum pi_state)i),
					(double)ls[i].median_ns / 1e3, (double)ls[i].p90_ns / 1e3,
					(unsigned long long)ls[i].n);
		fputc('\n', f);
	}
	if (v->vm->vsched) {
		struct vsched_vcpu_stats p = vsched_stats(v->vm->vsched, vm_vsched_id(v->vm, v->id));
		fprintf(f, "       pCPU (--pcpus %d): %llu slices, waited %llu times (%.1f ms ready without a "
			"CPU), %llu slices preempted\n", v->vm->cfg.pcpus, (unsigned long long)p.slices,
			(unsigned long long)p.waits, (double)p.wait_ns / 1e6, (unsigned long long)p.preempted);
	}
}

json_object *lapic_stats_json(const struct vcpu *v)
{
	const struct lapic_stats *s = lapic_vcpu_stats(v);
	if (!s)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "injected", json_object_new_uint64(s->injected));
	json_object_object_add(o, "extint", json_object_new_uint64(s->extint));
	json_object_object_add(o, "nmis", json_object_new_uint64(s->nmis));
	json_object_object_add(o, "ipis_sent", json_object_new_uint64(s->ipis_sent));
	json_object_object_add(o, "ipis_received", json_object_new_uint64(s->ipis_received));
	json_object_object_add(o, "timer_fires", json_object_new_uint64(s->timer_fires));
	json_object_object_add(o, "hlt_exits", json_object_new_uint64(s->hlt_exits));
	json_object_object_add(o, "halted_ns", json_object_new_uint64(s->halted_ns));
	/* the IRT: per source, how many went each way */
	static const char *const src[LAPIC_NR_SRC] = { "ioapic", "msi", "ipi", "timer" };
	json_object *irt = json_object_new_object();
	for (int i = 0; i < LAPIC_NR_SRC; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "posted", json_object_new_uint64(s->irt[i][LAPIC_IRTE_POSTED]));
		json_object_object_add(e, "remapped", json_object_new_uint64(s->irt[i][LAPIC_IRTE_REMAPPED]));
		json_object_object_add(irt, src[i], e);
	}
	json_object_object_add(o, "irt", irt);
	json_object *pid = json_object_new_object();
	json_object_object_add(pid, "notify_active", json_object_new_uint64(s->notify_active));
	json_object_object_add(pid, "notify_wakeup", json_object_new_uint64(s->notify_wakeup));
	json_object_object_add(pid, "suppressed", json_object_new_uint64(s->suppressed));
	json_object_object_add(pid, "coalesced", json_object_new_uint64(s->coalesced));
	json_object_object_add(pid, "pir_taken", json_object_new_uint64(s->pir_taken));
	json_object_object_add(o, "posted", pid);
	json_object *st = json_object_new_object();
	for (int i = 0; i < PI_NR_STATES; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "ns", json_object_new_uint64(s->state_ns[i]));
		json_object_object_add(e, "entered", json_object_new_uint64(s->entered[i]));
		json_object_object_add(st, pi_state_name((enum pi_state)i), e);
	}
	json_object_object_add(o, "states", st);
	/* device interrupts: raise → injection, by the state at the raise */
	json_object *dl = json_object_new_object();
	for (int i = 0; i < PI_NR_STATES; i++) {
		struct lapic_lat_summary ls;
		lapic_vcpu_dev_latency(v, i, &ls);
		json_object *e = json_object_new_object();
		json_object_object_add(e, "n", json_object_new_uint64(ls.n));
		json_object_object_add(e, "median_ns", json_object_new_uint64(ls.median_ns));
		json_object_object_add(e, "p90_ns", json_object_new_uint64(ls.p90_ns));
		json_object_object_add(e, "max_ns", json_object_new_uint64(ls.max_ns));
		json_object_object_add(dl, pi_state_name((enum pi_state)i), e);
	}
	json_object_object_add(o, "dev_latency", dl);
	if (v->vm->vsched) {
		struct vsched_vcpu_stats p = vsched_stats(v->vm->vsched, vm_vsched_id(v->vm, v->id));
		json_object *pc = json_object_new_object();
		json_object_object_add(pc, "slices", json_object_new_uint64(p.slices));
		json_object_object_add(pc, "waits", json_object_new_uint64(p.waits));
		json_object_object_add(pc, "wait_ns", json_object_new_uint64(p.wait_ns));
		json_object_object_add(pc, "preempted", json_object_new_uint64(p.preempted));
		json_object_object_add(o, "pcpu", pc);
	}
	return o;
}

void lapic_stats_print_vm(struct vm *vm, FILE *f)
{
	if (vm->cfg.irqchip != IRQCHIP_USER)
		return;
	fprintf(f, "irqchip user: local APICs, IOAPIC and 8259 in hvmm; device interrupts sent by "
		"hvmm (no irqfds without an in-kernel irqchip); interrupts to one vCPU %s\n",
		vm->cfg.posted_interrupts > 0 ? "posted (PIR, SN, NV per vCPU state)" :
						 "remapped (--posted-interrupts off)");
}
