/* median: of measured intervals, where one stalled sample must not count. */
#ifndef GUEST_MEDIAN_H
#define GUEST_MEDIAN_H

#include <stdint.h>

/* The median of v[0..n) (v is reordered: an insertion sort, n is small); 0 for none. */
static inline uint64_t median_u64(uint64_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n ? v[n / 2] : 0;
}

#endif
