/* Guest-side accesses to a bus in the unit tests: what a vCPU's exit handler
 * does, without KVM. Nothing there (or a range without a device) reads as
 * all ones and ignores writes, as on a PC. */
#ifndef HVMM_TEST_BUS_ACCESS_H
#define HVMM_TEST_BUS_ACCESS_H

#include <stdint.h>

#include "bus.h"

static uint64_t rd(struct bus *b, uint64_t addr, unsigned size)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (!r || !r->opaque)
		return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	return r->ops->read(r->opaque, addr - r->base, size);
}

static void wr(struct bus *b, uint64_t addr, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (r && r->opaque)
		r->ops->write(r->opaque, addr - r->base, size, v);
}

#endif
