/* Helpers shared by the loaders in src/boot/; not part of boot's interface. */
#ifndef HVMM_BOOT_PRIV_H
#define HVMM_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot.h"

#define BOOT_PAGE 0x1000ull

/* Format a one-line error into err and return -1, so callers can `return boot_fail(...)`. */
int boot_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Check that an image wants [gpa, gpa+len) somewhere it may go: wholly inside
 * RAM and clear of the boot structures, which are [BOOT_RESERVED_START,
 * reserved_end) and the MP table. reserved_end is BOOT_RESERVED_END where the
 * loader writes page tables and its info area at their fixed places, and
 * BOOT_MB_RESERVED_END for multiboot, whose info area moves out of the
 * image's way. `what` names the piece for the message ("ELF segment 2",
 * "module /x"). 0, or -1 with err set.
 */
int boot_check_dest(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t reserved_end,
		    const char *what, char *err, size_t errlen);

/* A validated ELF executable: class, entry and loaded extent. */
struct boot_elf_info {
	int elf_class; /* ELFCLASS32 or ELFCLASS64 */
	uint64_t entry;
	uint64_t lo, hi; /* guest-physical [lo, hi) covered by PT_LOAD segments */
};

/*
 * Validate an ELF32/ELF64 x86 executable and copy its PT_LOAD segments to
 * their p_paddr. Nothing is written unless every segment is valid.
 */
int boot_elf_load_image(struct guest_mem *m, const uint8_t *image, size_t len, uint64_t reserved_end,
			struct boot_elf_info *info, char *err, size_t errlen);

/*
 * Loading an ELF64 executable as it streams in (a decompressor's output), each
 * chunk copied straight to its segments' places in guest RAM: no buffer the
 * size of the file. The first 64 KiB are kept for the headers (lx_vmlinux_
 * entry reads them from head). The checks are boot_elf_load_image's; unlike
 * it, a stream that fails part-way has already written RAM (the boot then
 * fails as a whole). An image this loader does not take (not ELF64, program
 * headers past the first 64 KiB, segments that overlap in guest RAM) is
 * BOOT_STREAM_DECLINED from write or finish, and is for boot_elf_load_image.
 */
#define BOOT_STREAM_DECLINED (-2)
struct boot_elf_stream_seg {
	unsigned index; /* in the program headers, for messages */
	uint64_t offset, filesz, memsz, paddr;
};
struct boot_elf_stream {
	struct guest_mem *m;
	uint64_t reserved_end, max_len, total;
	uint8_t head[64 * 1024];
	size_t head_len;
	bool planned;
	struct boot_elf_stream_seg *segs;
	unsigned nseg;
	struct boot_elf_info info;
};
void boot_elf_stream_init(struct boot_elf_stream *s, struct guest_mem *m, uint64_t reserved_end,
			  uint64_t max_len);
/* A struct boot_sink's write: the bytes at file offset off (in order). */
int boot_elf_stream_write(void *ctx, uint64_t off, const uint8_t *p, size_t n, char *err, size_t errlen);
/* The stream has ended: every segment's file range inside it? *info then. */
int boot_elf_stream_finish(struct boot_elf_stream *s, struct boot_elf_info *info, char *err,
			   size_t errlen);
void boot_elf_stream_free(struct boot_elf_stream *s);

/* Offset of a valid multiboot v1 header (magic, 4-byte aligned, in the first
 * 8 KiB, checksum right), or -1. */
long boot_mb_find_header(const uint8_t *image, size_t len);

/*
 * Read a module file and copy it into guest RAM page-aligned at or after
 * `next` (below 1 MiB it skips the MP table and the legacy VGA/BIOS area, which
 * are not usable RAM), ending at or below `limit`. Its place in *addr, *len.
 * Shared by the multiboot and PVH loaders. 0 or -1 with err set.
 */
int boot_place_module(struct guest_mem *m, const struct boot_module *bm, uint64_t next,
		      uint64_t limit, uint64_t *addr, uint64_t *len, char *err, size_t errlen);

#endif
