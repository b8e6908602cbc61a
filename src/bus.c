#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

void bus_free(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	if (b->frozen || len == 0 || base + len - 1 < base || !ops)
		return -EINVAL;
	/* Find the insertion point that keeps ranges sorted by base. */
	size_t i = 0;
	while (i < b->nr && b->ranges[i].base < base)
		i++;
	if (i > 0) {
		const struct bus_range *p = &b->ranges[i - 1];
		if (p->base + p->len - 1 >= base)
			return -EEXIST;
	}
	if (i < b->nr && base + len - 1 >= b->ranges[i].base)
		return -EEXIST;
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nr - i) * sizeof(*b->ranges));
	b->ranges[i] = (struct bus_range){ base, len, ops, opaque, name };
	b->nr++;
	return 0;
}

void bus_freeze(struct bus *b)
{
	b->frozen = true;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned size)
{
	size_t lo = 0, hi = b->nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return util_range_ok(addr - r->base, size, r->len) ? r : NULL;
	}
	return NULL;
}
