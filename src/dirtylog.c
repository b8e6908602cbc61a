/*
 * Dirty-page tracking. KVM write-protects the pages of a logged slot (or
 * clears their dirty bits in the nested page table); the guest's first write
 * to each faults into KVM, which sets its bit and lets the write go on.
 * KVM_GET_DIRTY_LOG hands the bitmap over and re-protects the pages, so each
 * harvest counts what was written since the previous one.
 */
#include "dirtylog.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "memory.h"
#include "util.h"
#include "vm.h"

struct dirtylog_sample {
	uint32_t ms;    /* since the guest started */
	uint32_t pages; /* written in the interval that ended then */
};

struct dirtylog {
	uint64_t interval_ns, next_ns, total;
	uint64_t *bitmap[2]; /* one per memory region (slot) */
	size_t words[2];
	unsigned n, dropped;
	struct dirtylog_sample samples[DIRTYLOG_MAX_SAMPLES];
};

int dirtylog_init(struct vm *vm)
{
	if (!vm->cfg.dirty_log_ms)
		return 0;
	struct dirtylog *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	vm->dirtylog = d;
	d->interval_ns = (uint64_t)vm->cfg.dirty_log_ms * 1000000u;
	for (int i = 0; i < vm->mem.nr_regions && i < 2; i++) {
		uint64_t pages = vm->mem.regions[i].size / 4096;
		d->words[i] = (size_t)((pages + 63) / 64); /* KVM wants whole longs */
		d->bitmap[i] = calloc(d->words[i], sizeof(uint64_t));
		if (!d->bitmap[i])
			return -ENOMEM;
	}
	return 0;
}

uint32_t dirtylog_slot_flags(const struct vm *vm)
{
	return vm->dirtylog || vm->cfg.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
}

uint64_t dirtylog_due_ns(const struct vm *vm)
{
	struct dirtylog *d = vm->dirtylog;
	if (!d)
		return 0;
	if (!d->next_ns)
		d->next_ns = util_now_ns() + d->interval_ns;
	return d->next_ns;
}

void dirtylog_harvest(struct vm *vm)
{
	struct dirtylog *d = vm->dirtylog;
	if (!d)
		return;
	uint64_t pages = 0;
	for (int i = 0; i < vm->mem.nr_regions && i < 2; i++) {
		memset(d->bitmap[i], 0, d->words[i] * sizeof(uint64_t));
		struct kvm_dirty_log log = { .slot = (uint32_t)i, .dirty_bitmap = d->bitmap[i] };
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			util_err("--dirty-log: KVM_GET_DIRTY_LOG slot %d: %s", i, strerror(errno));
			continue;
		}
		for (size_t w = 0; w < d->words[i]; w++)
			pages += (uint64_t)__builtin_popcountll(d->bitmap[i][w]);
	}
	d->total += pages;
	uint64_t now = util_now_ns();
	d->next_ns = now + d->interval_ns;
	if (d->n < DIRTYLOG_MAX_SAMPLES) {
		uint64_t ms = (util_since_start_ns() - vm->run_ns) / 1000000u;
		d->samples[d->n++] = (struct dirtylog_sample){ (uint32_t)ms, (uint32_t)pages };
	} else {
		d->dropped++;
	}
}

json_object *dirtylog_json(struct vm *vm)
{
	struct dirtylog *d = vm->dirtylog;
	if (!d)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "interval_ms", json_object_new_uint64(vm->cfg.dirty_log_ms));
	json_object *a = json_object_new_array();
	for (unsigned i = 0; i < d->n; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "ms", json_object_new_uint64(d->samples[i].ms));
		json_object_object_add(s, "pages", json_object_new_uint64(d->samples[i].pages));
		json_object_array_add(a, s);
	}
	json_object_object_add(o, "samples", a);
	json_object_object_add(o, "samples_dropped", json_object_new_uint64(d->dropped));
	json_object_object_add(o, "total_pages", json_object_new_uint64(d->total));
	return o;
}

void dirtylog_destroy(struct vm *vm)
{
	struct dirtylog *d = vm->dirtylog;
	if (!d)
		return;
	free(d->bitmap[0]);
	free(d->bitmap[1]);
	free(d);
	vm->dirtylog = NULL;
}

int dirtylog_track(struct vm *vm, bool on)
{
	if (vm->dirtylog)
		return -EBUSY;
	int r = mem_register_slots(&vm->mem, vm->vm_fd, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
	return r < 0 ? r : 0;
}

int dirtylog_take(struct vm *vm, uint64_t *out)
{
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct mem_region *reg = &vm->mem.regions[i];
		uint64_t first = (uint64_t)(reg->hva - vm->mem.base) / 4096;
		size_t words = (size_t)((reg->size / 4096 + 63) / 64);
		/* Slot 1 starts at 3 GiB of the mapping, a multiple of 64
		 * pages: its bitmap is whole words of out. */
		uint64_t *dst = out + first / 64;
		uint64_t *tmp = calloc(words, sizeof(uint64_t));
		if (!tmp)
			return -ENOMEM;
		struct kvm_dirty_log log = { .slot = (uint32_t)i, .dirty_bitmap = tmp };
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int e = -errno;
			free(tmp);
			return e;
		}
		for (size_t w = 0; w < words; w++)
			dst[w] |= tmp[w];
		free(tmp);
	}
	return 0;
}
