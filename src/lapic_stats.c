/*
 * lapic_stats: the numbers of hvmm's local APICs (--irqchip user) for
 * --stats and --stats-json: per vCPU, what was injected, the IPIs, the timer
 * and the time spent halted in hvmm — what the interrupt lab shows.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "lapic.h"
#include "vcpu.h"
#include "vm.h"

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
	return o;
}

void lapic_stats_print_vm(struct vm *vm, FILE *f)
{
	if (vm->cfg.irqchip != IRQCHIP_USER)
		return;
	fprintf(f, "irqchip user: local APICs, IOAPIC and 8259 in hvmm; device interrupts sent by "
		"hvmm (no irqfds without an in-kernel irqchip)\n");
}
