/*
 * dirtylog: --dirty-log MS, KVM's dirty-page tracking of guest RAM. The
 * memory slots are registered with KVM_MEM_LOG_DIRTY_PAGES; every MS ms the
 * main thread takes each slot's bitmap (KVM_GET_DIRTY_LOG, which also
 * write-protects the pages again) and counts the pages the guest wrote since
 * the last time: what live migration copies each round.
 */
#ifndef HVMM_DIRTYLOG_H
#define HVMM_DIRTYLOG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

#define DIRTYLOG_MAX_SAMPLES 600

/* After mem_init, before the slots are registered. 0 or -errno. */
int dirtylog_init(struct vm *vm);
/* The KVM_SET_USER_MEMORY_REGION flags the slots need (0 without --dirty-log
 * or --track-dirty-pages). */
uint32_t dirtylog_slot_flags(const struct vm *vm);
/* When the next harvest is due (util_now_ns clock), 0 for never. */
uint64_t dirtylog_due_ns(const struct vm *vm);
/* Take every slot's bitmap and record one sample. Main thread. */
void dirtylog_harvest(struct vm *vm);
/* {"interval_ms", "samples": [{"ms", "pages"}], "total_pages"}, or NULL. */
json_object *dirtylog_json(struct vm *vm);
void dirtylog_destroy(struct vm *vm);

/*
 * For a live migration (migrate_send.c): switch KVM's logging of every slot
 * on or off while the VM runs (KVM_SET_USER_MEMORY_REGION with the same
 * slot and KVM_MEM_LOG_DIRTY_PAGES toggled). 0 or -errno. Not with
 * --dirty-log, which harvests the same log for itself.
 */
int dirtylog_track(struct vm *vm, bool on);
/* OR the pages written since the last call (or since tracking began) into
 * out, one bit per page of RAM as hvmm maps it (the slots' bitmaps laid end
 * to end), and re-protect them. 0 or -errno. */
int dirtylog_take(struct vm *vm, uint64_t *out);

#endif
