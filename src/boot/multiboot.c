#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pci.h"
#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

/* Multiboot specification 0.6.96 (v1). */
#define MB_HEADER_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_SEARCH_LEN 8192

#define MB_HF_PAGE_ALIGN (1u << 0) /* modules page-aligned: we always do that */
#define MB_HF_MEMINFO (1u << 1)    /* mem_* and mmap: we always give them */
#define MB_HF_VIDEO (1u << 2)      /* a video mode hint, free to ignore */
#define MB_HF_AOUT_KLUDGE (1u << 16)
#define MB_HF_KNOWN (MB_HF_PAGE_ALIGN | MB_HF_MEMINFO | MB_HF_VIDEO)

#define MB_INFO_MEM (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MMAP (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

#define MB_MMAP_RAM 1
#define MB_MMAP_RESERVED 2

struct mb_header {
	uint32_t magic, flags, checksum;
	/* valid when MB_HF_AOUT_KLUDGE */
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name, apm_table;
	uint32_t vbe_control_info, vbe_mode_info;
	uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
	uint8_t framebuffer[28];
};
_Static_assert(offsetof(struct mb_info, mmap_length) == 44, "multiboot info layout");
_Static_assert(offsetof(struct mb_info, boot_loader_name) == 64, "multiboot info layout");
_Static_assert(sizeof(struct mb_info) == 116, "multiboot info layout");

struct mb_module {
	uint32_t mod_start, mod_end, string, reserved;
};

/* The size field sits before each entry and does not count itself. */
struct __attribute__((packed)) mb_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
};
_Static_assert(sizeof(struct mb_mmap_entry) == 24, "multiboot mmap entry layout");

long boot_mb_find_header(const uint8_t *image, size_t len)
{
	size_t end = len < MB_SEARCH_LEN ? len : MB_SEARCH_LEN;
	for (size_t off = 0; off + 12 <= end; off += 4) {
		uint32_t w[3];
		memcpy(w, image + off, sizeof(w));
		if (w[0] == MB_HEADER_MAGIC && (uint32_t)(w[0] + w[1] + w[2]) == 0)
			return (long)off;
	}
	return -1;
}

/* Bump allocator over the info area; everything the kernel reads lives there. */
struct mb_area {
	uint8_t *host;
	uint32_t base; /* guest-physical: BOOT_INFO, or after the image (mb_info_base) */
	uint64_t used;
	bool full;
};

static uint32_t area_alloc(struct mb_area *a, uint64_t size, uint64_t align)
{
	uint64_t off = (a->used + align - 1) & ~(align - 1);
	if (a->full || size > BOOT_INFO_SIZE || off > BOOT_INFO_SIZE - size) {
		a->full = true;
		return 0;
	}
	a->used = off + size;
	return (uint32_t)(a->base + off);
}

static void *area_at(struct mb_area *a, uint32_t gpa)
{
	return a->host + (gpa - a->base);
}

/*
 * Where the info area goes: BOOT_INFO, unless the image wants that memory
 * (kvm-unit-tests' realmode test loads at 0x8000, as it may: the multiboot
 * spec lets the loader put its structures anywhere the image is not, and QEMU
 * puts them after the image). Then it goes page-aligned after the image, or at
 * 1 MiB if that would run into the MP table and the legacy VGA/BIOS area.
 * 0 when it fits nowhere in RAM below 4 GiB.
 */
static uint64_t mb_info_base(const struct guest_mem *m, uint64_t lo, uint64_t hi)
{
	if (hi <= BOOT_INFO || lo >= BOOT_INFO + BOOT_INFO_SIZE)
		return BOOT_INFO;
	uint64_t a = (hi + BOOT_PAGE - 1) & ~(BOOT_PAGE - 1);
	if (a < MIB(1) && a + BOOT_INFO_SIZE > BOOT_MPTABLE)
		a = MIB(1);
	if (a + BOOT_INFO_SIZE > MEM_HOLE_END || !mem_ptr(m, a, BOOT_INFO_SIZE))
		return 0;
	return a;
}

static uint32_t area_str(struct mb_area *a, const char *s1, const char *s2)
{
	size_t l1 = strlen(s1), l2 = s2 ? strlen(s2) + 1 : 0;
	uint32_t gpa = area_alloc(a, (uint64_t)l1 + l2 + 1, 1);
	if (!gpa)
		return 0;
	char *p = area_at(a, gpa);
	memcpy(p, s1, l1);
	if (s2) {
		p[l1] = ' ';
		memcpy(p + l1 + 1, s2, l2 - 1);
	}
	p[l1 + l2] = '\0';
	return gpa;
}

static void mmap_add(struct mb_area *a, uint32_t *count, uint64_t addr, uint64_t end, uint32_t type)
{
	if (end <= addr)
		return;
	uint32_t gpa = area_alloc(a, sizeof(struct mb_mmap_entry), 4);
	if (!gpa)
		return;
	struct mb_mmap_entry e = { .size = sizeof(e) - 4, .addr = addr, .len = end - addr, .type = type };
	memcpy(area_at(a, gpa), &e, sizeof(e));
	(*count)++;
}

/* Load the image by the header's address fields (the "a.out kludge"). */
static int mb_load_kludge(struct guest_mem *m, const struct boot_params_in *in, long hoff,
			  const struct mb_header *h, uint64_t *lo, uint64_t *hi, uint64_t *entry,
			  char *err, size_t errlen)
{
	if (h->load_addr > h->header_addr)
		return boot_fail(err, errlen, "multiboot load_addr 0x%x is above header_addr 0x%x",
				 h->load_addr, h->header_addr);
	uint64_t before = h->header_addr - h->load_addr;
	if (before > (uint64_t)hoff)
		return boot_fail(err, errlen,
				 "multiboot header_addr 0x%x - load_addr 0x%x puts the load start before "
				 "the beginning of the file",
				 h->header_addr, h->load_addr);
	uint64_t foff = (uint64_t)hoff - before;
	uint64_t load_end = h->load_end_addr ? h->load_end_addr
					     : h->load_addr + (in->image_len - foff);
	if (load_end < h->load_addr)
		return boot_fail(err, errlen, "multiboot load_end_addr 0x%x is below load_addr 0x%x",
				 h->load_end_addr, h->load_addr);
	uint64_t filesz = load_end - h->load_addr;
	if (!util_range_ok(foff, filesz, in->image_len))
		return boot_fail(err, errlen,
				 "multiboot load range [0x%x, 0x%llx) needs file bytes [0x%llx, 0x%llx) "
				 "beyond the %zu-byte file",
				 h->load_addr, (unsigned long long)load_end, (unsigned long long)foff,
				 (unsigned long long)(foff + filesz), in->image_len);
	uint64_t end = load_end;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < load_end)
			return boot_fail(err, errlen,
					 "multiboot bss_end_addr 0x%x is below the load end 0x%llx",
					 h->bss_end_addr, (unsigned long long)load_end);
		end = h->bss_end_addr;
	}
	if (end > MEM_HOLE_END)
		return boot_fail(err, errlen, "multiboot image ends above 4 GiB (0x%llx)",
				 (unsigned long long)end);
	if (end == h->load_addr)
		return boot_fail(err, errlen, "multiboot image loads nothing (load_addr == load end)");
	if (boot_check_dest(m, h->load_addr, end - h->load_addr, BOOT_MB_RESERVED_END, "multiboot image",
			    err, errlen) < 0)
		return -1;
	if (h->entry_addr < h->load_addr || h->entry_addr >= end)
		return boot_fail(err, errlen,
				 "multiboot entry_addr 0x%x is outside the loaded image [0x%x, 0x%llx)",
				 h->entry_addr, h->load_addr, (unsigned long long)end);
	uint8_t *dst = mem_ptr(m, h->load_addr, end - h->load_addr);
	memcpy(dst, in->image + foff, filesz);
	memset(dst + filesz, 0, end - load_end);
	*lo = h->load_addr;
	*hi = end;
	*entry = h->entry_addr;
	return 0;
}

static int mb_load_modules(struct guest_mem *m, const struct boot_params_in *in, struct mb_area *a,
			   uint64_t next, struct mb_info *info, char *err, size_t errlen)
{
	if (in->nr_modules <= 0)
		return 0;
	uint32_t mods = area_alloc(a, (uint64_t)in->nr_modules * sizeof(struct mb_module), 4);
	if (!mods)
		return 0; /* reported with the rest of an overfull info area */
	info->mods_addr = mods;
	info->mods_count = (uint32_t)in->nr_modules;
	for (int i = 0; i < in->nr_modules; i++) {
		const struct boot_module *bm = &in->modules[i];
		uint64_t addr, len;
		/* multiboot's module fields are 32-bit: stay below 4 GiB */
		if (boot_place_module(m, bm, next, MEM_HOLE_END, &addr, &len, err, errlen) < 0)
			return -1;
		struct mb_module mod = {
			.mod_start = (uint32_t)addr,
			.mod_end = (uint32_t)(addr + len),
			.string = area_str(a, bm->path, bm->args),
		};
		memcpy(area_at(a, mods + (uint32_t)i * sizeof(mod)), &mod, sizeof(mod));
		next = addr + len;
	}
	return 0;
}

static int mb_write_info(struct guest_mem *m, const struct boot_params_in *in, uint64_t kernel_lo,
			 uint64_t kernel_hi, uint64_t *info_out, char *err, size_t errlen)
{
	uint64_t base = mb_info_base(m, kernel_lo, kernel_hi);
	struct mb_area a = { .host = base ? mem_ptr(m, base, BOOT_INFO_SIZE) : NULL, .base = (uint32_t)base };
	if (!a.host)
		return boot_fail(err, errlen, "guest RAM too small for the multiboot info");
	/* modules go after the image and, when it moved there, the info area */
	uint64_t next = base > kernel_hi ? base + BOOT_INFO_SIZE : kernel_hi;
	memset(a.host, 0, BOOT_INFO_SIZE);
	uint32_t info_gpa = area_alloc(&a, sizeof(struct mb_info), 8);
	struct mb_info info = { 0 };
	uint64_t low_end = m->regions[0].size; /* RAM below the 3 GiB hole */
	info.flags = MB_INFO_MEM | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP | MB_INFO_LOADER_NAME;
	info.mem_lower = (uint32_t)(BOOT_MPTABLE >> 10);
	info.mem_upper = low_end > MIB(1) ? (uint32_t)((low_end - MIB(1)) >> 10) : 0;

	uint32_t n = 0;
	info.mmap_addr = (uint32_t)(a.base + ((a.used + 3) & ~3ull));
	mmap_add(&a, &n, 0, BOOT_MPTABLE, MB_MMAP_RAM);
	mmap_add(&a, &n, BOOT_MPTABLE, 0xa0000, MB_MMAP_RESERVED);
	mmap_add(&a, &n, 0xf0000, MIB(1), MB_MMAP_RESERVED);
	mmap_add(&a, &n, MIB(1), low_end, MB_MMAP_RAM);
	mmap_add(&a, &n, PCI_ECAM_BASE, PCI_ECAM_BASE + PCI_ECAM_SIZE, MB_MMAP_RESERVED); /* PCI ECAM */
	if (m->nr_regions > 1)
		mmap_add(&a, &n, m->regions[1].gpa, m->regions[1].gpa + m->regions[1].size, MB_MMAP_RAM);
	info.mmap_length = n * (uint32_t)sizeof(struct mb_mmap_entry);

	info.boot_loader_name = area_str(&a, "hvmm", NULL);
	/* "IMAGE CMDLINE", as QEMU's -kernel (and GRUB) pass it: kernels that
	 * skip argv[0] see the same words on hvmm as there. */
	info.cmdline = area_str(&a, in->image_path ? in->image_path : "",
				in->cmdline ? in->cmdline : "");
	if (mb_load_modules(m, in, &a, next, &info, err, errlen) < 0)
		return -1;
	if (a.full)
		return boot_fail(err, errlen,
				 "multiboot info (command line, memory map, module list and strings) "
				 "does not fit in its %llu bytes at 0x%llx",
				 BOOT_INFO_SIZE, (unsigned long long)base);
	memcpy(area_at(&a, info_gpa), &info, sizeof(info));
	*info_out = base;
	return 0;
}

int boot_load_multiboot(struct guest_mem *m, const struct boot_params_in *in,
			struct boot_entry *out, char *err, size_t errlen)
{
	if (!in->image || in->image_len == 0)
		return boot_fail(err, errlen, "image is empty");
	long hoff = boot_mb_find_header(in->image, in->image_len);
	if (hoff < 0)
		return boot_fail(err, errlen,
				 "no multiboot header (magic 0x%x with a valid checksum, 4-byte aligned "
				 "in the first %d bytes)",
				 MB_HEADER_MAGIC, MB_SEARCH_LEN);
	struct mb_header h = { 0 };
	memcpy(&h, in->image + hoff, 12);
	uint32_t unknown = h.flags & 0xffffu & ~MB_HF_KNOWN;
	if (unknown)
		return boot_fail(err, errlen, "unsupported multiboot flags 0x%x (required flags 0x%x)",
				 unknown, h.flags & 0xffffu);
	uint64_t lo = 0, hi = 0, entry = 0;
	if (h.flags & MB_HF_AOUT_KLUDGE) {
		if (!util_range_ok((uint64_t)hoff, sizeof(h), in->image_len))
			return boot_fail(err, errlen,
					 "multiboot header at offset 0x%lx is cut off by the end of the file",
					 hoff);
		memcpy(&h, in->image + hoff, sizeof(h));
		if (mb_load_kludge(m, in, hoff, &h, &lo, &hi, &entry, err, errlen) < 0)
			return -1;
	} else {
		if (in->image_len < SELFMAG || memcmp(in->image, ELFMAG, SELFMAG) != 0)
			return boot_fail(err, errlen,
					 "multiboot image is not ELF and its header has no address fields "
					 "(flag bit 16)");
		struct boot_elf_info ei;
		if (boot_elf_load_image(m, in->image, in->image_len, BOOT_MB_RESERVED_END, &ei, err,
					errlen) < 0)
			return -1;
		if (ei.hi > MEM_HOLE_END || ei.entry >= MEM_HOLE_END)
			return boot_fail(err, errlen,
					 "multiboot kernel must load and start below 4 GiB (ends 0x%llx, "
					 "entry 0x%llx)",
					 (unsigned long long)ei.hi, (unsigned long long)ei.entry);
		lo = ei.lo;
		hi = ei.hi;
		entry = ei.entry;
	}
	uint64_t info_gpa = 0;
	if (mb_write_info(m, in, lo, hi, &info_gpa, err, errlen) < 0)
		return -1;
	boot_x86_write_gdt(m, BOOT_MODE_PROT32);
	*out = (struct boot_entry){
		.format = BOOT_MULTIBOOT,
		.mode = BOOT_MODE_PROT32,
		.rip = entry,
		.rsp = BOOT_STACK_TOP,
		.rax = MB_BOOT_MAGIC,
		.rbx = info_gpa,
		.image_lo = lo,
		.image_hi = hi,
	};
	return 0;
}
