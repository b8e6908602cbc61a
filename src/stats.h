/*
 * stats: exit accounting. The seed's point that every VM exit costs time is
 * made measurable here: each vCPU counts every exit that reaches hvmm, by
 * reason, with the time hvmm spent handling it (KVM_RUN return → next
 * KVM_RUN), and splits port I/O and MMIO by address. Exits that never reach
 * hvmm (handled inside KVM) come from KVM's binary stats fd.
 *
 * Each vCPU owns its struct stats_vcpu and is its only writer, so the hot
 * path takes no lock; the main thread reads them after the vCPUs are joined.
 */
#ifndef HVMM_STATS_H
#define HVMM_STATS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define STATS_MAX_REASON 64   /* KVM_EXIT_* values are below this */
#define STATS_IO_SLOTS 512    /* per-vCPU address table (power of two) */
#define STATS_KVM_MAX 128

enum stats_io_kind {
	STATS_PIO_IN,
	STATS_PIO_OUT,
	STATS_MMIO_READ,
	STATS_MMIO_WRITE,
};

struct stats_timing {
	uint64_t count, total_ns, min_ns, max_ns;
};

struct stats_io {
	uint64_t addr;
	uint8_t kind; /* enum stats_io_kind */
	bool used;
	bool unhandled; /* no device on the bus at that address */
	struct stats_timing t;
};

struct stats_kvm {
	int n;
	char name[STATS_KVM_MAX][48];
	uint64_t value[STATS_KVM_MAX];
};

struct stats_vcpu {
	struct stats_timing reason[STATS_MAX_REASON];
	struct stats_io io[STATS_IO_SLOTS];
	uint64_t io_dropped; /* accesses that found the address table full */
	struct stats_kvm kvm;
};

const char *stats_reason_name(uint32_t reason);
const char *stats_io_kind_name(enum stats_io_kind k);

static inline void stats_time(struct stats_timing *t, uint64_t ns)
{
	if (t->count == 0 || ns < t->min_ns)
		t->min_ns = ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
	t->count++;
	t->total_ns += ns;
}

void stats_record_exit(struct stats_vcpu *s, uint32_t reason, uint64_t ns);
void stats_record_io(struct stats_vcpu *s, enum stats_io_kind kind, uint64_t addr, bool handled,
		     uint64_t ns);

/* Read every counter of a KVM binary stats fd (KVM_GET_STATS_FD). 0 or -errno. */
int stats_kvm_read(int stats_fd, struct stats_kvm *out);
uint64_t stats_kvm_get(const struct stats_kvm *k, const char *name);

struct vm;
/* Human-readable tables on f (--stats). */
void stats_print(struct vm *vm, FILE *f);
/* JSON (--stats-json). 0 or -errno. */
int stats_write_json(struct vm *vm, const char *path);
/* The same document as an object (the API's GET /hvmm/stats). vcpu_state:
 * with each vCPU's registers, which only a stopped or paused vCPU gives
 * without waiting for it. */
json_object *stats_json(struct vm *vm, bool vcpu_state);
/* The interrupt routing table alone (GET /hvmm/irt). */
json_object *stats_irt_json(struct vm *vm);
/* All user-space exits of all vCPUs. */
uint64_t stats_userspace_exits(struct vm *vm);

#endif
