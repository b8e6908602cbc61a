/*
 * snapshot's own: its state and the file format, shared by its .c files
 * (not by devices).
 */
#ifndef HVMM_SNAPSHOT_PRIV_H
#define HVMM_SNAPSHOT_PRIV_H

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
};

/* ---- the state file (snapshot_file.c) ---- */

#define SNAP_MAGIC "HVMMSNAP"
#define SNAP_FORMAT 1          /* the layout below; a reader refuses others */
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
	uint32_t flags;        /* 0 */
	uint64_t body_size;    /* bytes after the header */
	uint8_t id[16];        /* random; the memory file's trailer repeats it */
	char hvmm_version[32]; /* who wrote it, for the error messages */
	uint64_t created_ns;   /* CLOCK_REALTIME at the save */
	uint8_t reserved[20];
	uint32_t header_crc;   /* crc32 of the header with this field 0 */
};
_Static_assert(sizeof(struct snap_header) == 128, "snap_header is part of the file format");

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

/* The memory file's last page: which state file it belongs to. */
struct snap_mem_trailer {
	char magic[8];  /* "HVMMMEM1" */
	uint8_t id[16];
	uint64_t ram_size;
};

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

struct vcpu;
int snapshot_vcpu_save(struct vcpu *v, struct snap_writer *w, char *err, size_t n);
int snapshot_vcpu_load(struct vcpu *v, struct snap_cur *c, uint32_t version, char *err, size_t n);
int snapshot_kvm_vm_save(struct vm *vm, struct snap_writer *w, char *err, size_t n);
int snapshot_kvm_vm_load(struct vm *vm, struct snap_cur *c, uint32_t version, char *err, size_t n);

#endif
