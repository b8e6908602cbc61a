/*
 * snapshot_vm: taking a snapshot of a paused VM, and starting a VM from one
 * (snapshot.h). The state file's sections come in a fixed order: "memory"
 * (which memory file, how large), "kvm-vm", one "vcpu" per vCPU, then every
 * registered device in creation order. A restore walks the same order over
 * a VM built from the same options, so a difference in the options shows as
 * the first section that does not match, named in the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirtylog.h"
#include "lifecycle.h"
#include "options.h"
#include "snapshot_priv.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

#define SNAP_MEM_VERSION 1
#define SNAP_MAX_PATH 4096u

static bool snap_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < SNAP_PAGE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

/*
 * RAM as hvmm maps it, in one file of ram_size bytes plus a trailer page.
 * Zero pages are left as holes: a guest that used 40 MiB of 512 costs 40 MiB
 * of disk, and a restore maps the holes as zeros. *written: bytes of data.
 */
static int snap_mem_save(struct vm *vm, const char *path, const uint8_t id[16], uint64_t *written,
			 char *err, size_t n)
{
	const struct guest_mem *m = &vm->mem;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, n, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int r = 0;
	uint64_t total = 0;
	if (ftruncate(fd, (off_t)(m->ram_size + SNAP_MEM_TRAILER)) < 0)
		r = -errno;
	for (uint64_t off = 0; r == 0 && off < m->ram_size;) {
		if (snap_page_zero(m->base + off)) {
			off += SNAP_PAGE;
			continue;
		}
		uint64_t end = off + SNAP_PAGE; /* a run of data pages, written at once */
		while (end < m->ram_size && end - off < (8u << 20) && !snap_page_zero(m->base + end))
			end += SNAP_PAGE;
		for (uint64_t o = off; r == 0 && o < end;) {
			ssize_t w = pwrite(fd, m->base + o, (size_t)(end - o), (off_t)o);
			if (w < 0 && errno != EINTR)
				r = -errno;
			else if (w > 0)
				o += (uint64_t)w;
		}
		total += end - off;
		off = end;
	}
	struct snap_mem_trailer t;
	memset(&t, 0, sizeof(t));
	memcpy(t.magic, SNAP_MEM_MAGIC, 8);
	memcpy(t.id, id, 16);
	t.ram_size = m->ram_size;
	if (r == 0)
		r = snap_mem_trailer_write(fd, &t);
	if ((r = snap_file_finish(fd, r)) < 0) {
		snprintf(err, n, "writing %s: %s", path, strerror(-r));
		return -1;
	}
	*written = total;
	return 0;
}


int snapshot_state_build(struct vm *vm, struct snap_writer *w, const char *mem_name, char *err, size_t n)
{
	struct snapshot_reg *reg = vm->snap;
	snap_writer_init(w, vm->mem.ram_size, (uint32_t)vm->ncpus, (uint32_t)vm->cfg.irqchip);
	if (!reg && !(reg = vm->snap = calloc(1, sizeof(*reg)))) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	if (!lifecycle_paused(vm)) {
		snprintf(err, n, "the VM is running: pause it first (PATCH /vm {\"state\": \"Paused\"})");
		return -1;
	}
	if (atomic_load(&vm->suspended)) {
		snprintf(err, n, "the guest is in S3 sleep: wake it first");
		return -1;
	}
	if (vm->devs.unsupported) {
		snprintf(err, n, "%s cannot be snapshotted", vm->devs.unsupported);
		return -1;
	}
	size_t plen = strlen(mem_name);
	if (!plen || plen >= SNAP_MAX_PATH) {
		snprintf(err, n, "snapshot paths must be 1 to %u bytes long", SNAP_MAX_PATH - 1);
		return -1;
	}
	snap_memory_put(w, vm->mem.ram_size, mem_name);
	snap_config_put(w, vm->cfg.vm_args, vm->cfg.nr_vm_args);
	int r = snapshot_kvm_vm_save(vm, w, err, n);
	for (int i = 0; r == 0 && i < vm->ncpus; i++)
		r = snapshot_vcpu_save(vm->vcpus[i], w, err, n);
	for (int i = 0; r == 0 && i < vm->devs.nr; i++) {
		const struct dev_inst *d = &vm->devs.v[i];
		const struct snap_ops *so = &d->ops->snap;
		if (!so->name)
			continue; /* nothing guest-visible to save */
		snap_section_begin(w, so->name, (uint32_t)d->index, so->version);
		char derr[200] = "";
		if (so->save(d->dev, &w->body, derr, sizeof(derr)) < 0) {
			snprintf(err, n, "%s #%d: %s", so->name, d->index, derr);
			r = -1;
		}
		snap_section_end(w);
	}
	if (r == 0 && w->body.failed) {
		snprintf(err, n, "out of memory building the state");
		r = -1;
	}
	return r;
}

/* --track-dirty-pages: the pages written since the last snapshot, gathered
 * into reg->dirty (kept there until a snapshot is written, so that one that
 * fails loses none). The VM is paused: nothing writes meanwhile. */
static int snap_gather_dirty(struct vm *vm, char *err, size_t n)
{
	struct snapshot_reg *reg = vm->snap;
	int r = dirtylog_take(vm, reg->dirty);
	if (r < 0) {
		snprintf(err, n, "reading KVM's dirty log: %s", strerror(-r));
		return -1;
	}
	mem_dma_take(&vm->mem, reg->dirty, reg->dirty_words);
	return 0;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff, char *err,
		    size_t n)
{
	if (!*state_path) {
		snprintf(err, n, "snapshot paths must be 1 to %u bytes long", SNAP_MAX_PATH - 1);
		return -1;
	}
	if (diff && !vm->cfg.track_dirty_pages) {
		snprintf(err, n, "a Diff snapshot needs track_dirty_pages (machine-config, or hvmm run "
			 "--track-dirty-pages)");
		return -1;
	}
	if (diff && (!vm->snap || !vm->snap->have_last)) {
		snprintf(err, n, "a Diff snapshot needs a snapshot of this VM to be a diff of: take a Full one "
			 "first");
		return -1;
	}
	uint64_t t0 = util_now_ns();
	struct snap_writer w;
	/* The state exists before the devices save: virtio-net asks whether this
	 * save is for files (its kept slirp helper) during the first one too. */
	if (!vm->snap && !(vm->snap = calloc(1, sizeof(*vm->snap)))) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	vm->snap->to_files = true;
	int r = snapshot_state_build(vm, &w, mem_path, err, n);
	vm->snap->to_files = false;
	struct snapshot_reg *reg = vm->snap;
	uint64_t mem_bytes = 0, pages = 0;
	if (r == 0 && vm->cfg.track_dirty_pages)
		r = snap_gather_dirty(vm, err, n);
	if (r == 0 && diff) {
		w.h.flags |= SNAP_FLAG_DIFF;
		r = snapshot_write_diff(vm->mem.base, vm->mem.ram_size, reg->dirty, mem_path, w.h.id, reg->last_id,
					&pages, err, n);
		mem_bytes = pages * SNAP_PAGE;
	} else if (r == 0) {
		/* RAM first: a state file that exists names a memory file that is whole. */
		r = snap_mem_save(vm, mem_path, w.h.id, &mem_bytes, err, n);
	}
	if (r == 0)
		r = snap_writer_save(&w, state_path, err, n);
	if (r == 0) {
		reg->saves++;
		reg->save_ns_last = util_now_ns() - t0;
		reg->save_state_bytes = sizeof(w.h) + w.body.len;
		reg->save_mem_bytes = mem_bytes;
		if (diff)
			reg->save_diff_pages = pages;
		if (reg->dirty) { /* the next diff starts from this snapshot */
			memset(reg->dirty, 0, reg->dirty_words * sizeof(uint64_t));
			memcpy(reg->last_id, w.h.id, 16);
			reg->have_last = true;
		}
	}
	snap_writer_free(&w);
	return r;
}

int snapshot_track_start(struct vm *vm)
{
	struct snapshot_reg *reg = vm->snap;
	if (!reg && !(reg = vm->snap = calloc(1, sizeof(*reg))))
		return -ENOMEM;
	reg->dirty_words = (size_t)((vm->mem.ram_size / SNAP_PAGE + 63) / 64);
	if (!(reg->dirty = calloc(reg->dirty_words, sizeof(uint64_t))))
		return -ENOMEM;
	return mem_dma_track_start(&vm->mem);
}

void snapshot_track_reset(struct vm *vm)
{
	if (!vm->cfg.track_dirty_pages || !vm->snap)
		return;
	vm->snap->have_last = false;
	if (dirtylog_track(vm, true) < 0 || mem_dma_track_start(&vm->mem) < 0)
		vm->cfg.track_dirty_pages = false; /* a Diff now says it needs tracking */
}

/* Map the memory file over guest RAM, privately. */
static int snap_mem_map(struct vm *vm, const char *path, const uint8_t id[16])
{
	struct guest_mem *m = &vm->mem;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		util_err("--restore: cannot open the memory file %s: %s", path, strerror(errno));
		return HVMM_EXIT_IMAGE;
	}
	int status = HVMM_EXIT_IMAGE;
	char err[512];
	if (snap_mem_check_full(fd, path, m->ram_size, id, err, sizeof(err)) < 0) {
		util_err("--restore: %s", err);
		goto out;
	}
	/* Over the anonymous mapping, before KVM or a device has seen its
	 * address: pages come from the page cache when the guest first touches
	 * them, and stay shared with every other VM restored from this file
	 * until written. */
	void *p = mmap(m->base, m->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
		       fd, 0);
	if (p == MAP_FAILED) {
		util_err("--restore: mapping %s: %s", path, strerror(errno));
		status = HVMM_EXIT_HOST;
		goto out;
	}
	status = 0;
out:
	close(fd);
	return status;
}

int snapshot_restore_take(struct vm *vm, struct snap_reader *rd, const char *what, char *path,
			  size_t path_len)
{
	const struct vm_config *cfg = &vm->cfg;
	struct snapshot_reg *reg = vm->snap;
	if (!reg && !(reg = vm->snap = calloc(1, sizeof(*reg)))) {
		snap_reader_close(rd);
		free(rd);
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	reg->restore = rd;
	const struct snap_header *h = &rd->h;
	if (h->ram_size != vm->mem.ram_size || h->ncpus != (uint32_t)cfg->ncpus ||
	    h->irqchip != (uint32_t)cfg->irqchip) {
		util_err("%s: the snapshot is of a VM with --mem %lluM --cpus %u --irqchip %s; this one "
			 "has --mem %lluM --cpus %d --irqchip %s", what, (unsigned long long)(h->ram_size >> 20),
			 h->ncpus, irq_mode_name((enum irqchip_mode)h->irqchip),
			 (unsigned long long)(vm->mem.ram_size >> 20), cfg->ncpus, irq_mode_name(cfg->irqchip));
		return HVMM_EXIT_USAGE;
	}
	char err[512];
	if (snap_memory_section(rd, path, path_len, err, sizeof(err)) < 0) {
		util_err("%s: %s", what, err);
		return HVMM_EXIT_IMAGE;
	}
	if (h->format >= 2) { /* the options it was built with: checked, used by main's start */
		struct snap_cur c;
		uint32_t ver;
		char **args = NULL;
		int na = 0;
		if (snap_reader_next(rd, "config", 0, &c, &ver, err, sizeof(err)) < 0 ||
		    snap_config_parse(&c, ver, &args, &na, err, sizeof(err)) < 0) {
			util_err("%s: %s", what, err);
			return HVMM_EXIT_IMAGE;
		}
		options_free_args(args, na);
	}
	return 0;
}


int snapshot_restore_open(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	uint64_t t0 = util_now_ns();
	struct snap_reader *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	char err[512];
	if (snap_reader_open(rd, cfg->restore, err, sizeof(err)) < 0) {
		free(rd);
		util_err("--restore: %s", err);
		return HVMM_EXIT_IMAGE;
	}
	char path[SNAP_MAX_PATH];
	int r = snapshot_restore_take(vm, rd, "--restore", path, sizeof(path));
	if (r)
		return r;
	r = snap_mem_map(vm, cfg->restore_mem ? cfg->restore_mem : path, rd->h.id);
	/* a diff taken from here on is a diff of this snapshot */
	memcpy(vm->snap->last_id, rd->h.id, 16);
	vm->snap->have_last = true;
	vm->snap->restore_ns = vm->snap->restore_open_ns = util_now_ns() - t0;
	return r;
}

int snapshot_restore_apply(struct vm *vm)
{
	struct snapshot_reg *reg = vm->snap;
	struct snap_reader *rd = reg ? reg->restore : NULL;
	if (!rd)
		return 0;
	uint64_t t0 = util_now_ns();
	char err[512] = "";
	struct snap_cur c;
	uint32_t ver;
	int r = snap_reader_next(rd, "kvm-vm", 0, &c, &ver, err, sizeof(err));
	if (r == 0)
		r = snapshot_kvm_vm_load(vm, &c, ver, err, sizeof(err));
	for (int i = 0; r == 0 && i < vm->ncpus; i++) {
		r = snap_reader_next(rd, "vcpu", (uint32_t)i, &c, &ver, err, sizeof(err));
		if (r == 0)
			r = snapshot_vcpu_load(vm->vcpus[i], &c, ver, err, sizeof(err));
	}
	reg->restore_kvm_ns = util_now_ns() - t0;
	for (int i = 0; r == 0 && i < vm->devs.nr; i++) {
		const struct dev_inst *d = &vm->devs.v[i];
		const struct snap_ops *so = &d->ops->snap;
		if (!so->name)
			continue;
		r = snap_reader_next(rd, so->name, (uint32_t)d->index, &c, &ver, err, sizeof(err));
		if (r < 0)
			break;
		char derr[300] = "";
		if (so->load(d->dev, &c, ver, derr, sizeof(derr)) < 0) {
			snprintf(err, sizeof(err), "%s #%d: %s", so->name, d->index, derr);
			r = -1;
		} else if (c.bad || c.left) {
			snprintf(err, sizeof(err), "%s #%d: state of the wrong length for version %u",
				 so->name, d->index, ver);
			r = -1;
		}
	}
	if (r == 0)
		r = snap_reader_done(rd, err, sizeof(err));
	snap_reader_close(rd);
	free(rd);
	reg->restore = NULL;
	if (r < 0) {
		util_err("%s: %s", vm->cfg.incoming ? "--incoming" : "--restore", err);
		return HVMM_EXIT_IMAGE;
	}
	reg->restore_ns += util_now_ns() - t0;
	return 0;
}

void snapshot_print(struct vm *vm, FILE *f)
{
	struct snapshot_reg *reg = vm->snap;
	if (!reg || (!reg->saves && !vm->cfg.restore))
		return;
	int saved = 0; /* the devices with a section */
	for (int i = 0; i < vm->devs.nr; i++)
		saved += vm->devs.v[i].ops->snap.name != NULL;
	if (vm->cfg.restore)
		fprintf(f, "restore: %.3f ms (%s: read and checked, RAM mapped %.3f ms; KVM and vCPU state "
			"%.3f ms; %d devices %.3f ms)\n", (double)reg->restore_ns / 1e6, vm->cfg.restore,
			(double)reg->restore_open_ns / 1e6, (double)reg->restore_kvm_ns / 1e6, saved,
			(double)(reg->restore_ns - reg->restore_open_ns - reg->restore_kvm_ns) / 1e6);
	if (reg->saves)
		fprintf(f, "snapshots: %llu, the last %.1f ms: %llu bytes of state, %llu of RAM data (diff: %llu pages)\n",
			(unsigned long long)reg->saves, (double)reg->save_ns_last / 1e6,
			(unsigned long long)reg->save_state_bytes, (unsigned long long)reg->save_mem_bytes,
			(unsigned long long)reg->save_diff_pages);
}

struct json_object *snapshot_json(struct vm *vm)
{
	struct snapshot_reg *reg = vm->snap;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "saves", json_object_new_uint64(reg ? reg->saves : 0));
	json_object_object_add(j, "save_ns_last", json_object_new_uint64(reg ? reg->save_ns_last : 0));
	json_object_object_add(j, "save_state_bytes", json_object_new_uint64(reg ? reg->save_state_bytes : 0));
	json_object_object_add(j, "save_mem_bytes", json_object_new_uint64(reg ? reg->save_mem_bytes : 0));
	json_object_object_add(j, "save_diff_pages_last", json_object_new_uint64(reg ? reg->save_diff_pages : 0));
	json_object_object_add(j, "restored", json_object_new_boolean(vm->cfg.restore != NULL));
	json_object_object_add(j, "restore_ns", json_object_new_uint64(reg ? reg->restore_ns : 0));
	return j;
}
