/*
 * snapshot: a VM's state written to files, and read back into a new hvmm
 * process that goes on where the old one was (docs/snapshot.md).
 *
 * Two files, as Firecracker has them: the *state file* (a versioned header,
 * then one checksummed section per vCPU, per KVM object and per device) and
 * the *memory file* (guest RAM as it is laid out in hvmm's one mapping,
 * sparse where pages are zero). Restoring maps the memory file privately,
 * so pages are read from the page cache when the guest first touches them
 * and several VMs restored from one file share them until they write.
 *
 * Every device implements the same two operations (struct snap_ops, part
 * of its struct dev_ops: device.h); a snapshot is the VM's device registry
 * walked in creation order, a restore the same walk on a VM built from the
 * same command line. A device's saved state is the guest-visible part only —
 * registers, queues, counters — never an fd, pointer, lock or thread.
 */
#ifndef HVMM_SNAPSHOT_H
#define HVMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vm;

/* ---- a device's payload ---- */

/* What a save appends to. Out of memory is remembered, not returned per call:
 * the save as a whole then fails. */
struct snap_buf {
	uint8_t *data;
	size_t len, cap;
	bool failed;
};
void snap_put(struct snap_buf *b, const void *p, size_t len);
void snap_buf_free(struct snap_buf *b);

/* What a load reads from. Every get is bounds-checked: reading past the end
 * zero-fills the rest of dst and sets `bad`, which the loader turns into a
 * "truncated" error, so a load reads first and checks `bad` once. */
struct snap_cur {
	const uint8_t *p;
	size_t left;
	bool bad;
};
void snap_get(struct snap_cur *c, void *dst, size_t len);

/* Save and load of one device. */
struct snap_ops {
	const char *name;  /* the section's name in the file (< 24 chars): "uart", "virtio-blk" */
	uint32_t version;  /* of the payload's layout; load is told the file's */
	/*
	 * With the VM paused (every vCPU out of KVM_RUN with its I/O completed,
	 * the event loop parked, no request in flight in a back end): append the
	 * guest-visible state to b. 0, or -1 with a one-line reason in err.
	 */
	int (*save)(void *dev, struct snap_buf *b, char *err, size_t n);
	/*
	 * Into a device just created from the same configuration, before any
	 * vCPU runs and before the event loop starts: take the state and redo
	 * what it implies on the host side (KVM routes, BAR mappings, armed
	 * timers), raising no interrupt the saved state does not already hold.
	 * 0, or -1 with a one-line reason in err (an unknown version, a value
	 * out of range: the file is checked like guest input).
	 */
	int (*load)(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n);
};

/*
 * --restore, while the devices are created (after snapshot_restore_open,
 * before _apply): the payload of the state file's section `name` with the
 * instance number the next device recorded under that name will get. For
 * a device whose host side depends on what the file says, before its load
 * (virtio-net's kept slirp helper). 0 with *c and *version; -ENOENT without
 * --restore or such a section. The payload is the file's: check it as such.
 */
int snapshot_restore_peek(struct vm *vm, const char *name, struct snap_cur *c, uint32_t *version);
/* In a save: true if it is PUT /snapshot/create's (files, for another
 * process to restore on this host), false for a migration's. */
bool snapshot_to_files(struct vm *vm);
/* Tear-down: the snapshot state (a restore's reader, the counts). */
void snapshot_registry_free(struct vm *vm);

/* ---- the VM ---- */

/*
 * Write the paused VM's state to state_path and its RAM to mem_path (both
 * created 0600 or replaced). 0, or -1 with a one-line reason in err (not
 * paused, a device that cannot be saved, a file that cannot be written).
 * diff: the memory file holds only the pages written since the previous
 * snapshot of this VM (or the one it was restored from), which needs
 * --track-dirty-pages; it names that snapshot as its parent.
 */
int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff, char *err,
		    size_t n);
/* --track-dirty-pages, in vm_create before the slots are registered:
 * devices' writes are recorded from here on (KVM's log by the slots'
 * flag). 0 or -errno. */
int snapshot_track_start(struct vm *vm);
/* Something else took the dirty log (a live migration that failed): go on
 * recording, but the next diff would miss pages, so until a full snapshot
 * there is no parent for one. */
void snapshot_track_reset(struct vm *vm);

/* ---- diff memory files (snapshot_diff.c) ---- */

/*
 * A diff memory file at path: the pages of ram whose bit is set in dirty
 * (one bit per 4 KiB page) at their offsets, holes elsewhere, a trailer
 * naming id and parent. *pages: how many were written. 0, or -1 with err.
 */
int snapshot_write_diff(const uint8_t *ram, uint64_t ram_size, const uint64_t *dirty, const char *path,
			const uint8_t id[16], const uint8_t parent[16], uint64_t *pages, char *err, size_t n);
/*
 * hvmm snapshot-merge: copy each diff's pages onto base (a full memory
 * file), in order, after checking that the first is a diff of base and
 * each next one a diff of the one before; base then belongs to the last
 * diff's state file. *bytes: data copied. 0, or -1 with err (base is
 * untouched when the chain is wrong).
 */
int snapshot_merge(const char *base, const char *const *diffs, int nr, uint64_t *bytes, char *err, size_t n);

/* ---- the configuration a snapshot carries (snapshot_config.c) ---- */

/*
 * The options that built the snapshot's VM (options.h), read from its state
 * file: *args malloc'd (options_free_args), *n of them; *n is 0 for a file
 * from an hvmm that did not write them (format 1). 0, or -1 with err.
 */
int snapshot_read_config(const char *state_path, char ***args, int *n, char *err, size_t en);
/*
 * PUT /snapshot/load's checks before anything is built: the state file
 * whole, with its configuration, and mem_path (or, if NULL, the file the
 * state names) its full memory file. *args as snapshot_read_config's.
 * 0, or -1 with a one-line reason in err.
 */
int snapshot_load_check(const char *state_path, const char *mem_path, char ***args, int *n, char *err,
			size_t en);
/*
 * --restore, in vm_create. snapshot_restore_open right after guest RAM is
 * mapped: read and check the state file against the configuration, and map
 * the memory file over RAM (privately: the guest's writes stay in this
 * process). snapshot_restore_apply once the devices and vCPUs exist, instead
 * of loading an image: KVM's state, every vCPU, every device. Each returns 0
 * or an hvmm exit status after one line on stderr.
 */
int snapshot_restore_open(struct vm *vm);
int snapshot_restore_apply(struct vm *vm);
/* --stats / --stats-json: saves, their sizes and times, the restore's time. */
void snapshot_print(struct vm *vm, FILE *f);
struct json_object *snapshot_json(struct vm *vm);

/*
 * For the tests: save a, load that into b, save b, and compare the two
 * payloads byte for byte. 0, or -1 with the first difference (or the save's
 * or load's own error) in err.
 */
int snapshot_roundtrip(const struct snap_ops *ops, void *a, void *b, char *err, size_t n);

#endif
