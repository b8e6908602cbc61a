/*
 * snapshot's own: its state and the file format, shared by its .c files
 * (not by devices).
 */
#ifndef HVMM_SNAPSHOT_PRIV_H
#define HVMM_SNAPSHOT_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

/* The snapshot state of a VM (the devices are vm->devs, device.h). */
struct snapshot_reg {
	struct snap_reader *restore; /* --restore: the state file, between open and apply */
	bool to_files;               /* snapshot_create is saving (not a migration) */
	/* counts for --stats and the API */
	uint64_t saves, save_ns_last, save_state_bytes, save_mem_bytes;
	uint64_t restore_ns; /* state read and checked, RAM mapped, everything loaded */
	uint64_t restore_open_ns, restore_kvm_ns; /* of it: the file and RAM; KVM's and the vCPUs' state */
	/* --track-dirty-pages: the pages written since the last snapshot (KVM's
	 * log and devices' writes gathered here at each snapshot, cleared once
	 * one was written), and that snapshot's id, which a diff names as its
	 * parent. have_last: there is one (a snapshot taken, or restored from). */
	uint64_t *dirty;
	size_t dirty_words;
	uint8_t last_id[16];
	bool have_last;
	uint64_t save_diff_pages; /* the last diff's pages */
};

/* ---- the state file (snapshot_file.c) ---- */

#define SNAP_MAGIC "HVMMSNAP"
#define SNAP_FORMAT 2          /* the layout below; a reader refuses others */
#define SNAP_FORMAT_MIN 1      /* format 1: no "config" section; still read */
#define SNAP_NAME_LEN 24
#define SNAP_MAX_STATE (64u << 20) /* a state file is KiBs per vCPU and device */
#define SNAP_MEM_TRAILER 4096  /* after RAM in the memory file: magic and id */

/* The first 128 bytes of a state file. Little-endian, as the host. */
struct snap_header {
	char magic[8];         /* SNAP_MAGIC */
	uint32_t format;       /* SNAP_FORMAT */
	uint32_t header_size;  /* sizeof(struct snap_header) */
	uint64_t ram_size;
	uint32_t ncpus;
	uint32_t irqchip;      /* enum irqchip_mode */
	uint32_t nr_sections;
	uint32_t flags;        /* SNAP_FLAG_*; format 1: 0 */
	uint64_t body_size;    /* bytes after the header */
	uint8_t id[16];        /* random; the memory file's trailer repeats it */
	char hvmm_version[32]; /* who wrote it, for the error messages */
	uint64_t created_ns;   /* CLOCK_REALTIME at the save */
	uint8_t reserved[20];
	uint32_t header_crc;   /* crc32 of the header with this field 0 */
};
_Static_assert(sizeof(struct snap_header) == 128, "snap_header is part of the file format");

#define SNAP_FLAG_DIFF 1u /* its memory file is a diff (only the pages written since its parent) */

/* Before each section's payload (padded to 8 bytes). */
struct snap_section {
	char name[SNAP_NAME_LEN]; /* NUL-terminated */
	uint32_t instance;
	uint32_t version;
	uint64_t size;            /* payload bytes, without the padding */
	uint32_t crc;             /* crc32 of the payload */
	uint32_t reserved;
};
_Static_assert(sizeof(struct snap_section) == 48, "snap_section is part of the file format");

/* The memory file's last page: which state file it belongs to, and for a
 * diff, which snapshot it is a diff of (its parent: a full snapshot's or
 * the previous diff's id). The rest of the page is zero. */
#define SNAP_MEM_MAGIC "HVMMMEM1"
#define SNAP_DIFF_MAGIC "HVMMDIF1"
#define SNAP_PAGE 4096u
struct snap_mem_trailer {
	char magic[8];  /* SNAP_MEM_MAGIC or SNAP_DIFF_MAGIC */
	uint8_t id[16];
	uint64_t ram_size;
	uint8_t parent[16]; /* a diff's; zero in a full memory file */
};

/* ---- memory files (snapshot_diff.c) ---- */

/* Write t at the end of fd's ram_size bytes. 0 or -errno. */
int snap_mem_trailer_write(int fd, const struct snap_mem_trailer *t);
/* Read and check fd's trailer: a regular file of ram_size + one page whose
 * trailer has a known magic and this RAM size. 0, or -1 with err naming
 * path. */
int snap_mem_trailer_read(int fd, const char *path, uint64_t ram_size, struct snap_mem_trailer *t, char *err,
			  size_t n);
/* The memory file that a restore maps: a full one (not a diff) of this
 * snapshot (id). 0, or -1 with err. */
int snap_mem_check_full(int fd, const char *path, uint64_t ram_size, const uint8_t id[16], char *err, size_t n);

/* Sections being written: a body that grows, the header filled at the end. */
struct snap_writer {
	struct snap_header h;
	struct snap_buf body;
	size_t open_at; /* offset of the open section's header, or SIZE_MAX */
};
void snap_writer_init(struct snap_writer *w, uint64_t ram_size, uint32_t ncpus, uint32_t irqchip);
/* Start a section; its payload is what is put into w->body until the end. */
void snap_section_begin(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version);
void snap_section_end(struct snap_writer *w);
/* The header's body size and CRC, once the last section ended (the state
 * is then w->h followed by w->body, as a file holds it). */
void snap_writer_finish(struct snap_writer *w);
/* Header and body to path (created 0600, replaced). 0 or -1 with err. */
int snap_writer_save(struct snap_writer *w, const char *path, char *err, size_t n);
void snap_writer_free(struct snap_writer *w);
/* A file written so far with status r (0 or -errno): synced to disk and
 * closed; the first error, if any. */
int snap_file_finish(int fd, int r);

/* A state file read and checked as a whole: header, sizes, every CRC. */
struct snap_reader {
	struct snap_header h;
	uint8_t *file;
	size_t len;
	size_t next; /* the next section's offset in file */
};
int snap_reader_open(struct snap_reader *r, const char *path, char *err, size_t n);
/* The same checks on a state already in memory (a migration's): r owns file
 * from here on, also when it is refused. path names it in the errors. */
int snap_reader_open_mem(struct snap_reader *r, uint8_t *file, size_t len, const char *path, char *err,
			 size_t n);
/* The next section, which must be name/instance: its payload in c and its
 * version. 0, or -1 with err naming what was found instead. */
int snap_reader_next(struct snap_reader *r, const char *name, uint32_t instance, struct snap_cur *c,
		     uint32_t *version, char *err, size_t n);
/* The section name/instance wherever it is (the position stays): 0, or
 * -ENOENT. */
int snap_reader_find(const struct snap_reader *r, const char *name, uint32_t instance, struct snap_cur *c,
		     uint32_t *version);
/* The "memory" section: the RAM size again and the memory file's path. */
struct snap_mem_info {
	uint64_t ram_size;
	uint32_t path_len;
	uint32_t reserved;
};
/* Write it (mem_name 1 to 4095 bytes: the caller checked). */
void snap_memory_put(struct snap_writer *w, uint64_t ram_size, const char *mem_name);
/* The "memory" section, next in rd: the memory file's name into path
 * (len bytes with its NUL at most). 0, or -1 with err. */
int snap_memory_section(struct snap_reader *rd, char *path, size_t len, char *err, size_t n);
/* After the last expected section: nothing may be left. */
int snap_reader_done(struct snap_reader *r, char *err, size_t n);
void snap_reader_close(struct snap_reader *r);

/* ---- the VM's state, for snapshot_vm.c and migration ---- */

/*
 * The paused VM's state into w (initialised here): the "memory" section
 * naming mem_name, KVM's, every vCPU's and every device's. 0 or -1 with err
 * (not paused, in S3, a device that cannot be saved or whose save failed).
 * The caller frees w either way.
 */
int snapshot_state_build(struct vm *vm, struct snap_writer *w, const char *mem_name, char *err, size_t n);
/*
 * A state read and checked (rd, owned by the registry from here on) against
 * this VM's options, its "memory" section read: the name it gives into
 * mem_name. Then snapshot_restore_apply loads the rest. 0, or an hvmm exit
 * status after one line on stderr starting with `what`.
 */
int snapshot_restore_take(struct vm *vm, struct snap_reader *rd, const char *what, char *mem_name,
			  size_t mem_name_len);

/* ---- KVM's state (snapshot_kvm.c) ---- */

/* ---- the configuration section (snapshot_config.c) ---- */

/* The "config" section: the options that built the VM (vm_config's vm_args). */
void snap_config_put(struct snap_writer *w, char *const *args, int n);
/* Its payload, checked: every string whole and an option a snapshot may
 * carry (options_vm_arg_ok). 0 with a malloc'd array, or -1 with err. */
int snap_config_parse(struct snap_cur *c, uint32_t version, char ***args, int *n, char *err, size_t en);

struct vcpu;
int snapshot_vcpu_save(struct vcpu *v, struct snap_writer *w, char *err, size_t n);
int snapshot_vcpu_load(struct vcpu *v, struct snap_cur *c, uint32_t version, char *err, size_t n);
int snapshot_kvm_vm_save(struct vm *vm, struct snap_writer *w, char *err, size_t n);
int snapshot_kvm_vm_load(struct vm *vm, struct snap_cur *c, uint32_t version, char *err, size_t n);

#endif
