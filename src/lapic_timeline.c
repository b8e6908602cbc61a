/*
 * lapic_timeline: `--timeline FILE` — every vCPU's state changes (running,
 * ready, halted: lapic_post.c) recorded with their time, written at the end
 * of the run as one self-contained HTML page: a row per vCPU, coloured by
 * state along the run's time axis, and a table of the time spent in each.
 *
 * The file is opened when the VM is created (before the sandbox, which then
 * needs no open for it) and written after the vCPUs have ended. Recording is
 * an append to a per-vCPU array by the vCPU's own thread (no lock); an array
 * that fills up stops recording and the page says from when.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lapic_priv.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"
#include "vsched.h"

#define TL_CAP (1u << 18)  /* state changes kept per vCPU (4 MiB) */
#define TL_WIDTH 1200      /* pixels of the time axis */

struct lapic_tl {
	uint32_t n;
	bool full;
	struct {
		uint64_t t;
		uint8_t state;
	} e[];
};

int lapic_timeline_alloc(struct vcpu *v)
{
	struct lapic *l = v->lapic;
	l->tl = malloc(sizeof(*l->tl) + TL_CAP * sizeof(l->tl->e[0]));
	if (!l->tl)
		return -ENOMEM;
	l->tl->n = 0;
	l->tl->full = false;
	lapic_timeline_note(l, l->state, l->state_since_ns);
	return 0;
}

void lapic_timeline_note(struct lapic *l, enum pi_state s, uint64_t now_ns)
{
	struct lapic_tl *tl = l->tl;
	if (!tl || tl->full)
		return;
	if (tl->n == TL_CAP) {
		tl->full = true;
		return;
	}
	tl->e[tl->n].t = now_ns;
	tl->e[tl->n].state = (uint8_t)s;
	tl->n++;
}

void lapic_timeline_free(struct lapic *l)
{
	free(l->tl);
	l->tl = NULL;
}

static const char *const tl_color[PI_NR_STATES] = { "#2e9d4a", "#e8a33d", "#9aa4b1" };

/* Time of each state within [a, b) for one vCPU: e sorted by time. */
static void tl_bucket(const struct lapic_tl *tl, uint64_t end, uint64_t a, uint64_t b, uint64_t *ns,
		      uint32_t *cursor)
{
	uint32_t i = *cursor;
	while (i + 1 < tl->n && tl->e[i + 1].t <= a)
		i++;
	*cursor = i;
	for (; i < tl->n && tl->e[i].t < b; i++) {
		uint64_t s = tl->e[i].t, e = i + 1 < tl->n ? tl->e[i + 1].t : end;
		if (s < a)
			s = a;
		if (e > b)
			e = b;
		if (e > s)
			ns[tl->e[i].state] += e - s;
	}
}

int lapic_timeline_write(struct vm *vm, FILE *f, uint64_t end_ns)
{
	uint64_t t0 = UINT64_MAX;
	for (int i = 0; i < vm->ncpus; i++) {
		const struct lapic_tl *tl = vm->vcpus[i]->lapic ? vm->vcpus[i]->lapic->tl : NULL;
		if (tl && tl->n && tl->e[0].t < t0)
			t0 = tl->e[0].t;
	}
	if (t0 == UINT64_MAX || end_ns <= t0)
		return -EINVAL;
	const double span_ms = (double)(end_ns - t0) / 1e6;
	const int row = 28, top = 40, left = 70;
	fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hvmm: vCPU states</title>\n"
		   "<style>body{font:14px sans-serif;margin:20px}td,th{padding:2px 10px;text-align:right}"
		   "th{text-align:left}</style></head><body>\n");
	fprintf(f, "<h2>vCPU states: running, ready, halted</h2>\n<p>%d vCPUs, %s, interrupts to one vCPU %s; "
		   "%.1f ms from the first vCPU's creation to the end. Each pixel column shows the state the "
		   "vCPU spent most of that %.3f ms in.</p>\n",
		vm->ncpus, vm->cfg.pcpus ? "at most --pcpus of them in the guest at once" : "no --pcpus limit",
		vm->cfg.posted_interrupts > 0 ? "posted" : "remapped", span_ms, span_ms / TL_WIDTH);
	if (vm->cfg.pcpus)
		fprintf(f, "<p>--pcpus %d</p>\n", vm->cfg.pcpus);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", left + TL_WIDTH + 10,
		top + row * vm->ncpus + 40);
	for (int k = 0; k <= 10; k++) {
		int x = left + TL_WIDTH * k / 10;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
			   "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.0f ms</text>\n",
			x, top - 5, x, top + row * vm->ncpus, x, top - 10, span_ms * k / 10);
	}
	for (int i = 0; i < vm->ncpus; i++) {
		const struct lapic_tl *tl = vm->vcpus[i]->lapic ? vm->vcpus[i]->lapic->tl : NULL;
		int y = top + row * i;
		fprintf(f, "<text x=\"0\" y=\"%d\">vcpu%d</text>\n", y + row / 2 + 4, i);
		if (!tl)
			continue;
		uint32_t cursor = 0;
		int run_x = 0, run_c = -1;
		for (int x = 0; x <= TL_WIDTH; x++) {
			int c = -1;
			if (x < TL_WIDTH) {
				uint64_t a = t0 + (end_ns - t0) * (uint64_t)x / TL_WIDTH;
				uint64_t b = t0 + (end_ns - t0) * (uint64_t)(x + 1) / TL_WIDTH;
				uint64_t ns[PI_NR_STATES] = { 0 };
				tl_bucket(tl, end_ns, a, b, ns, &cursor);
				for (int s = 0; s < PI_NR_STATES; s++)
					if (ns[s] && (c < 0 || ns[s] > ns[c]))
						c = s;
			}
			if (c == run_c)
				continue;
			if (run_c >= 0)
				fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>vcpu%d "
					   "%s</title></rect>\n", left + run_x, y, x - run_x, row - 6, tl_color[run_c], i,
					pi_state_name((enum pi_state)run_c));
			run_x = x;
			run_c = c;
		}
		if (tl->full)
			fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">(recording full: %u changes kept)</text>\n",
				left, y + row - 1, tl->n);
	}
	int ly = top + row * vm->ncpus + 20;
	for (int s = 0; s < PI_NR_STATES; s++)
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s"
			   "</text>\n", left + 130 * s, ly, tl_color[s], left + 130 * s + 20, ly + 12,
			pi_state_name((enum pi_state)s));
	fprintf(f, "</svg>\n<table><tr><th>vCPU</th><th>running</th><th>ready</th><th>halted</th>"
		   "<th>state changes</th>%s</tr>\n", vm->vsched ? "<th>waited for a CPU</th><th>preempted</th>" : "");
	for (int i = 0; i < vm->ncpus; i++) {
		const struct lapic_stats *s = lapic_vcpu_stats(vm->vcpus[i]);
		if (!s)
			continue;
		double total = 0;
		for (int k = 0; k < PI_NR_STATES; k++)
			total += (double)s->state_ns[k];
		if (total <= 0)
			total = 1;
		fprintf(f, "<tr><th>vcpu%d</th>", i);
		for (int k = 0; k < PI_NR_STATES; k++)
			fprintf(f, "<td>%.1f ms (%.0f%%)</td>", (double)s->state_ns[k] / 1e6,
				100.0 * (double)s->state_ns[k] / total);
		fprintf(f, "<td>%llu</td>", (unsigned long long)(s->entered[0] + s->entered[1] + s->entered[2]));
		if (vm->vsched) {
			struct vsched_vcpu_stats p = vsched_stats(vm->vsched, vm_vsched_id(vm, i));
			fprintf(f, "<td>%llu times, %.1f ms</td><td>%llu</td>", (unsigned long long)p.waits,
				(double)p.wait_ns / 1e6, (unsigned long long)p.preempted);
		}
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "</table>\n</body></html>\n");
	return ferror(f) ? -EIO : 0;
}
