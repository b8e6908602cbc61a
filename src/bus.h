/*
 * bus: one interval map for port I/O and one for MMIO. Devices register their
 * ranges while the VM is being built; overlaps are refused. Once the vCPUs
 * start, the map is frozen and read without any lock on the exit hot path
 * (a sorted array + binary search: a handful of devices, cache-friendly).
 */
#ifndef HVMM_BUS_H
#define HVMM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the registered base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	struct bus_range *ranges;
	size_t nr, cap;
	bool frozen;
};

void bus_init(struct bus *b, const char *name);
void bus_free(struct bus *b);
/* 0; -EEXIST on overlap; -EINVAL for len 0, wrap-around or a frozen bus; -ENOMEM. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name);
/* Called when the vCPUs start: no registration after this. */
void bus_freeze(struct bus *b);
/* The range holding every byte of [addr, addr+size), or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned size);

#endif
