/* fuzz_input: the byte reader every fuzz target decodes its input with. */
#ifndef HVMM_FUZZ_INPUT_H
#define HVMM_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fz_in {
	const uint8_t *p;
	size_t n;
};

/* The next `bytes` bytes (<= 8) as a little-endian number; zeros once the
 * input runs out, so every input decodes to something. */
static inline uint64_t fz_take(struct fz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t c = 0;
		if (in->n) {
			c = *in->p++;
			in->n--;
		}
		v |= (uint64_t)c << (8 * i);
	}
	return v;
}

/* An access size: 1, 2, 4 or 8. */
static inline unsigned fz_size(struct fz_in *in)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	return sizes[fz_take(in, 1) & 3];
}

#endif
