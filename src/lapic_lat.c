/*
 * lapic_lat: how long a device interrupt takes to reach the guest, by the
 * target vCPU's state when the device raised it — the lecture's table of
 * running / ready / halted, measured by hvmm for any guest (Linux too),
 * with hvmm's own APICs (--irqchip user) on either path, posted or
 * remapped.
 *
 * The raise stamps the vector with the time and the state (in one word,
 * the state in the low two bits, so a reader never sees one without the
 * other); the first raise wins while the vector waits (later ones merge
 * into it, as in IRR). The injection takes the stamp and keeps the
 * latency. Only device sources are stamped: IPIs and the APIC timer have
 * their own measurements (the test kernel's test=irqlat).
 */
#include <stdlib.h>
#include <string.h>

#include "lapic_priv.h"
#include "util.h"
#include "vcpu.h"

struct lapic_lat {
	uint64_t n[PI_NR_STATES];
	uint64_t max[PI_NR_STATES];
	uint32_t keep[PI_NR_STATES][LAPIC_LAT_KEEP]; /* ns, a ring of the last ones */
};

struct lapic_lat *lapic_lat_alloc(void)
{
	return calloc(1, sizeof(struct lapic_lat));
}

void lapic_lat_raised(struct lapic *l, uint8_t vector)
{
	if (!l->lat)
		return; /* nobody reads the numbers: no clock read */
	enum pi_state s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
	uint64_t stamp = (util_now_ns() & ~3ull) | ((uint64_t)s + 1);
	uint64_t none = 0;
	__atomic_compare_exchange_n(&l->dev_raised[vector], &none, stamp, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}

void lapic_lat_injected(struct lapic *l, int vector)
{
	if (!l->lat || vector < 0 || vector > 255 || !__atomic_load_n(&l->dev_raised[vector], __ATOMIC_RELAXED))
		return; /* nothing a device raised: no clock read */
	uint64_t stamp = __atomic_exchange_n(&l->dev_raised[vector], 0, __ATOMIC_RELAXED);
	if (!stamp)
		return;
	if (!l->lat)
		return;
	unsigned s = (unsigned)(stamp & 3) - 1;
	uint64_t now = util_now_ns(), t = stamp & ~3ull;
	uint64_t d = now > t ? now - t : 0;
	if (s >= PI_NR_STATES)
		return;
	struct lapic_lat *a = l->lat;
	a->keep[s][a->n[s] % LAPIC_LAT_KEEP] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	a->n[s]++;
	if (d > a->max[s])
		a->max[s] = d;
}

void lapic_lat_free(struct lapic *l)
{
	free(l->lat);
	l->lat = NULL;
}

/* Heapsort, in place: glibc's qsort asks the kernel for the machine's
 * memory (sysinfo) before sorting more than a few hundred bytes, which the
 * API thread's seccomp list does not allow (found by the Linux bench:
 * GET /hvmm/stats stopped the VM). */
static void lapic_lat_sift(uint32_t *a, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[i] >= a[c])
			return;
		uint32_t t = a[i];
		a[i] = a[c];
		a[c] = t;
		i = c;
	}
}

static void lapic_lat_sort(uint32_t *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		lapic_lat_sift(a, i, n);
	for (size_t end = n; end-- > 1;) {
		uint32_t t = a[0];
		a[0] = a[end];
		a[end] = t;
		lapic_lat_sift(a, 0, end);
	}
}

bool lapic_vcpu_dev_latency(const struct vcpu *v, int state, struct lapic_lat_summary *out)
{
	memset(out, 0, sizeof(*out));
	struct lapic *l = v->lapic;
	if (!l || state < 0 || state >= PI_NR_STATES)
		return false;
	pthread_mutex_lock(&l->lock);
	struct lapic_lat *a = l->lat;
	size_t k = a ? (size_t)(a->n[state] < LAPIC_LAT_KEEP ? a->n[state] : LAPIC_LAT_KEEP) : 0;
	uint32_t *copy = k ? malloc(k * sizeof(*copy)) : NULL;
	if (copy)
		memcpy(copy, a->keep[state], k * sizeof(*copy));
	if (a) {
		out->n = a->n[state];
		out->max_ns = a->max[state];
	}
	pthread_mutex_unlock(&l->lock);
	if (copy) {
		lapic_lat_sort(copy, k);
		out->median_ns = copy[k / 2];
		out->p90_ns = copy[k * 9 / 10];
		free(copy);
	}
	return true;
}
