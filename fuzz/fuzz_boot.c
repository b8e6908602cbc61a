/*
 * libFuzzer target for the image loaders (src/boot/: detect.c, elf.c,
 * multiboot.c, pvh.c, linux.c, flat.c, kernel.c) and the host-side
 * decompressors behind a bzImage (decompress.c: gzip, xz, zstd, lz4; bzip2,
 * lzma and lzo are recognised and refused). The input is what a user hands
 * hvmm as --kernel, --initrd, --cmdline and a multiboot/PVH module: any of it
 * may be hostile (a downloaded image).
 *
 * Guest RAM is 1-16 MiB (from the input) with PROT_NONE guard pages right
 * before and after it, so a loader writing one byte outside RAM faults at
 * once; the decompressors may produce at most RAM-size bytes (kernel.c's
 * limit), which keeps a run fast.
 *
 * Checked, besides the sanitizers and LeakSanitizer (every malloc'd image,
 * decompression buffer and module copy is freed on success and on error):
 *  - success: the loaded extent [image_lo, image_hi) is non-empty and in
 *    RAM; a long-mode entry has CR3 at the boot page tables;
 *  - failure: a non-empty one-line reason (hvmm prints it as one line);
 *  - no file descriptor is left open (the module is read by path).
 *
 * Input:
 *   u8  flags   bits 0-2: format (0 auto, 1 flat, 2 elf, 3 multiboot,
 *               4 linux, 5 pvh, 6-7 auto); bit 3: --no-decompress;
 *               bit 4: with ACPI (PVH rsdp_paddr); bit 5: initrd;
 *               bit 6: a module; bit 7: a command line
 *   u8  ram     bits 0-2: RAM 1, 2, 4, 8 or 16 MiB, or (5-7) 1 MiB + 37 * (bits 4-7 + 1)
 *               pages; bits 4-7: ncpus - 1
 *   [bit 7]  u8 n, n bytes: the command line (a NUL ends it early)
 *   [bit 5]  u16 n, n bytes: the initrd
 *   [bit 6]  u16 n, n bytes: the module; u8 m, m bytes: its arguments
 *   rest: the kernel image
 * gen_seeds.py writes ELF32/ELF64, multiboot (a.out kludge and ELF), PVH,
 * flat and bzImage seeds, the bzImages carrying a tiny vmlinux compressed
 * with each codec (gzip/xz/lzma/bzip2 by Python, zstd and lz4 by Debian's
 * tools).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "fuzz_common.h"

#define FZ_CHECK(c)                                                                          \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "fuzz_boot: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define FZ_PAGE 4096ull
#define FZ_RAM_MAX (16ull << 20)

/* One mapping for the largest RAM; a smaller RAM sits at its end (against the
 * trailing guard) and the unused start is made PROT_NONE for that run, so a
 * guard page is always right before and right after RAM. */
static uint8_t *fz_map;

static void fz_map_init(void)
{
	fz_map = mmap(NULL, FZ_RAM_MAX + 2 * FZ_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		      -1, 0);
	FZ_CHECK(fz_map != MAP_FAILED);
}

/* The RAM size the mapping is currently protected for (0: none yet): the
 * two mprotect calls are made only when an input picks another size, since
 * syscalls dominate a run on a slow host. */
static uint64_t fz_map_size;

static void fz_ram_setup(struct guest_mem *m, uint64_t size)
{
	uint8_t *ram = fz_map + FZ_PAGE + (FZ_RAM_MAX - size);
	if (size != fz_map_size) {
		FZ_CHECK(mprotect(fz_map + FZ_PAGE, FZ_RAM_MAX - size, PROT_NONE) == 0);
		FZ_CHECK(mprotect(ram, size, PROT_READ | PROT_WRITE) == 0);
		fz_map_size = size;
	}
	memset(m, 0, sizeof(*m));
	m->base = ram;
	m->ram_size = size;
	m->nr_regions = 1;
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = size, .hva = ram };
}

static void fz_ram_reset(const struct guest_mem *m)
{
	/* back to zero pages: cheap for what the run did not touch */
	FZ_CHECK(madvise(m->base, m->ram_size, MADV_DONTNEED) == 0);
}

/* 1, 2, 4, 8, 16 MiB or 1 MiB + a few pages (odd sizes find rounding bugs) */
static uint64_t fz_ram_size(uint8_t b)
{
	switch (b & 7) {
	case 0: return 1ull << 20;
	case 1: return 2ull << 20;
	case 2: return 4ull << 20;
	case 3: return 8ull << 20;
	case 4: return 16ull << 20;
	default: return (1ull << 20) + ((b >> 4) + 1) * FZ_PAGE * 37;
	}
}

static const uint8_t *fz_bytes(struct fz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p;
	*got = n < in->n ? n : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* Open descriptors, counted exactly from /proc/self/fd: the directory stays
 * open and is re-read from its start (lseek + getdents), a few syscalls
 * instead of one fcntl per possible fd. Its own fd is in the count before and
 * after alike. */
static DIR *fz_fd_dir;

static unsigned fz_open_fds(void)
{
	if (!fz_fd_dir)
		FZ_CHECK((fz_fd_dir = opendir("/proc/self/fd")) != NULL);
	rewinddir(fz_fd_dir);
	unsigned n = 0;
	for (struct dirent *e; (e = readdir(fz_fd_dir));)
		n += e->d_name[0] != '.';
	FZ_CHECK(n > 0); /* at least the directory's own fd */
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0) {
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
		fz_map_init();
	}
	unsigned fds_before = fz_open_fds();
	struct fz_in in = { data, size };
	uint8_t flags = (uint8_t)fz_take(&in, 1), rb = (uint8_t)fz_take(&in, 1);
	static const enum boot_format formats[8] = { BOOT_AUTO, BOOT_FLAT, BOOT_ELF, BOOT_MULTIBOOT,
						     BOOT_LINUX, BOOT_PVH, BOOT_AUTO, BOOT_AUTO };
	struct boot_params_in bp = {
		.format = formats[flags & 7],
		.no_decompress = flags & 8,
		.acpi_rsdp = flags & 16 ? BOOT_ACPI_RSDP : 0,
		.ncpus = 1 + (rb >> 4),
		.image_path = "fuzz-image",
	};
	char cmdline[257];
	if (flags & 0x80) {
		size_t n;
		const uint8_t *p = fz_bytes(&in, fz_take(&in, 1), &n);
		memcpy(cmdline, p, n);
		cmdline[n] = 0;
		bp.cmdline = cmdline;
	}
	if (flags & 0x20)
		bp.initrd = fz_bytes(&in, fz_take(&in, 2), &bp.initrd_len);
	int modfd = -1;
	char modpath[64], modargs[257];
	struct boot_module mod = { .path = modpath, .args = NULL };
	if (flags & 0x40) {
		size_t n;
		const uint8_t *p = fz_bytes(&in, fz_take(&in, 2), &n);
		modfd = memfd_create("fuzz-module", MFD_CLOEXEC);
		FZ_CHECK(modfd >= 0 && write(modfd, p, n) == (ssize_t)n);
		snprintf(modpath, sizeof(modpath), "/proc/self/fd/%d", modfd);
		p = fz_bytes(&in, fz_take(&in, 1), &n);
		memcpy(modargs, p, n);
		modargs[n] = 0;
		mod.args = n ? modargs : NULL;
		bp.modules = &mod;
		bp.nr_modules = 1;
	}
	bp.image = in.p;
	bp.image_len = in.n;

	struct guest_mem m;
	fz_ram_setup(&m, fz_ram_size(rb));
	struct boot_entry e;
	memset(&e, 0, sizeof(e));
	char err[512];
	memset(err, 'x', sizeof(err));
	int r = boot_load(&m, &bp, &e, err, sizeof(err));
	FZ_LOG("boot_load(format %d, %zu bytes, RAM %lu KiB) = %d: %s\n", (int)bp.format, bp.image_len,
	       (unsigned long)(m.ram_size >> 10), r, r ? err : boot_format_name(e.format));
	if (r == 0) {
		FZ_CHECK(e.image_lo < e.image_hi);
		FZ_CHECK(mem_ptr(&m, e.image_lo, e.image_hi - e.image_lo) != NULL);
		if (e.mode == BOOT_MODE_LONG64)
			FZ_CHECK(e.cr3 == BOOT_PML4);
	} else {
		FZ_CHECK(r == -1);
		FZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
		FZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
	}
	if (modfd >= 0)
		close(modfd);
	fz_ram_reset(&m);
	FZ_CHECK(fz_open_fds() == fds_before);
	return 0;
}
