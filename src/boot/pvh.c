/*
 * PVH boot (Xen's x86 HVM direct boot ABI, as QEMU/Firecracker/cloud-hypervisor
 * speak it to Linux): an ELF32/ELF64 whose PT_NOTE holds a "Xen" note of type
 * XEN_ELFNOTE_PHYS32_ENTRY with the 32-bit physical entry point. PT_LOADs go
 * to p_paddr; the CPU starts in flat 32-bit protected mode, paging off, with
 * EBX = the struct hvm_start_info (version 1, with memory map) the loader
 * writes, with its memory map and command line, in the BOOT_INFO area (the
 * multiboot/Linux zero-page area, free when PVH is used).
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pci.h"
#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

#define PVH_NOTE_TYPE 18u /* XEN_ELFNOTE_PHYS32_ENTRY */
#define PVH_MAGIC 0x336ec578u
#define PVH_VERSION 1u
#define PVH_E820_RAM 1u
#define PVH_E820_RESERVED 2u
#define PVH_MEMMAP_MAX 8u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "hvm_start_info layout");

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * Scan one note segment [off, off+size) of the file. 1 and *entry,
 * *entry_size (its descsz) when the PHYS32_ENTRY note is there, 0 when not, -1 (err set) when malformed.
 */
static int pvh_scan_notes(const uint8_t *img, uint64_t off, uint64_t size, uint64_t align,
			  unsigned seg, uint32_t *entry, uint64_t *entry_size, char *err,
			  size_t errlen)
{
	uint64_t pos = 0;
	while (pos < size) {
		if (size - pos < 12)
			return boot_fail(err, errlen,
					 "ELF note segment %u: note header at +0x%llx truncated (%llu bytes left)",
					 seg, (unsigned long long)pos, (unsigned long long)(size - pos));
		const uint8_t *n = img + off + pos;
		uint64_t namesz = rd32(n), descsz = rd32(n + 4);
		uint32_t type = rd32(n + 8);
		uint64_t name_off = pos + 12;
		uint64_t desc_off = name_off + align_up(namesz, align);
		if (align_up(namesz, align) > size - name_off)
			return boot_fail(err, errlen,
					 "ELF note segment %u: note name (namesz %llu) runs past the segment",
					 seg, (unsigned long long)namesz);
		if (align_up(descsz, align) > size - desc_off && descsz > size - desc_off)
			return boot_fail(err, errlen,
					 "ELF note segment %u: note desc (descsz %llu) runs past the segment",
					 seg, (unsigned long long)descsz);
		const uint8_t *name = img + off + name_off;
		if (type == PVH_NOTE_TYPE && namesz == 4 && memcmp(name, "Xen", 4) == 0) {
			/* A 32-bit entry, stored in 4 bytes or — as Linux emits it with
			 * _ASM_PTR on x86-64 — in 8; the caller refuses other sizes and
			 * an 8-byte value that does not fit in 32 bits. */
			*entry_size = descsz;
			*entry = 0;
			if (descsz == 4)
				*entry = rd32(img + off + desc_off);
			else if (descsz == 8 && rd32(img + off + desc_off + 4) == 0)
				*entry = rd32(img + off + desc_off);
			else if (descsz == 8)
				*entry_size = 0xffffffffull; /* above 4 GiB: reported below */
			return 1;
		}
		uint64_t next = desc_off + align_up(descsz, align);
		if (next > size)
			next = size; /* the last note's padding may be cut off */
		pos = next;
	}
	return 0;
}

/*
 * Find the PVH entry note in an ELF image. 1 and *entry, *entry_size when found, 0 when the
 * image is an ELF without it (or no ELF), -1 (err set) for a malformed header
 * or note segment.
 */
static int pvh_find_entry(const uint8_t *img, size_t len, uint32_t *entry, uint64_t *entry_size,
			  char *err, size_t errlen)
{
	if (!img || len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0 || img[EI_DATA] != ELFDATA2LSB)
		return 0;
	uint64_t phoff;
	unsigned phnum, phentsize;
	bool is64 = img[EI_CLASS] == ELFCLASS64;
	if (is64) {
		Elf64_Ehdr e;
		if (len < sizeof(e))
			return boot_fail(err, errlen, "ELF64 header truncated");
		memcpy(&e, img, sizeof(e));
		phoff = e.e_phoff, phnum = e.e_phnum, phentsize = e.e_phentsize;
		if (phnum && phentsize < sizeof(Elf64_Phdr))
			return boot_fail(err, errlen, "ELF e_phentsize %u is too small", phentsize);
	} else if (img[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr e;
		if (len < sizeof(e))
			return boot_fail(err, errlen, "ELF32 header truncated");
		memcpy(&e, img, sizeof(e));
		phoff = e.e_phoff, phnum = e.e_phnum, phentsize = e.e_phentsize;
		if (phnum && phentsize < sizeof(Elf32_Phdr))
			return boot_fail(err, errlen, "ELF e_phentsize %u is too small", phentsize);
	} else {
		return 0;
	}
	if (!util_range_ok(phoff, (uint64_t)phnum * phentsize, len))
		return boot_fail(err, errlen, "ELF program headers lie outside the %zu-byte file", len);
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *p = img + phoff + (uint64_t)i * phentsize;
		uint32_t type;
		uint64_t off, filesz, align;
		if (is64) {
			Elf64_Phdr ph;
			memcpy(&ph, p, sizeof(ph));
			type = ph.p_type, off = ph.p_offset, filesz = ph.p_filesz, align = ph.p_align;
		} else {
			Elf32_Phdr ph;
			memcpy(&ph, p, sizeof(ph));
			type = ph.p_type, off = ph.p_offset, filesz = ph.p_filesz, align = ph.p_align;
		}
		if (type != PT_NOTE || filesz == 0)
			continue;
		if (!util_range_ok(off, filesz, len))
			return boot_fail(err, errlen,
					 "ELF note segment %u [0x%llx, +0x%llx) lies outside the %zu-byte file",
					 i, (unsigned long long)off, (unsigned long long)filesz, len);
		int r = pvh_scan_notes(img, off, filesz, align == 8 ? 8 : 4, i, entry, entry_size,
					err, errlen);
		if (r != 0)
			return r;
	}
	return 0;
}

bool boot_is_pvh(const uint8_t *image, size_t len)
{
	uint32_t entry;
	uint64_t size;
	char err[8];
	return pvh_find_entry(image, len, &entry, &size, err, sizeof(err)) == 1;
}

/* A bump allocator over the BOOT_INFO area. */
struct pvh_area {
	uint8_t *host;
	uint64_t used;
	bool full;
};

static uint64_t area_alloc(struct pvh_area *a, uint64_t size, uint64_t align)
{
	uint64_t at = align_up(a->used, align);
	if (a->full || at > BOOT_INFO_SIZE || size > BOOT_INFO_SIZE - at) {
		a->full = true;
		return 0;
	}
	a->used = at + size;
	return BOOT_INFO + at;
}

static uint64_t area_put(struct pvh_area *a, uint64_t gpa, const void *src, size_t n)
{
	if (gpa)
		memcpy(a->host + (gpa - BOOT_INFO), src, n);
	return gpa;
}

static uint64_t area_str(struct pvh_area *a, const char *s)
{
	size_t n = strlen(s) + 1;
	return area_put(a, area_alloc(a, n, 1), s, n);
}

static void memmap_add(struct hvm_memmap_table_entry *t, uint32_t *n, uint64_t addr, uint64_t end,
		       uint32_t type)
{
	if (end <= addr || *n >= PVH_MEMMAP_MAX)
		return;
	t[(*n)++] = (struct hvm_memmap_table_entry){ .addr = addr, .size = end - addr, .type = type };
}

static int pvh_load_modules(struct guest_mem *m, const struct boot_params_in *in,
			    struct pvh_area *a, uint64_t next, struct hvm_start_info *si, char *err,
			    size_t errlen)
{
	if (in->nr_modules <= 0)
		return 0;
	uint64_t list = area_alloc(a, (uint64_t)in->nr_modules * sizeof(struct hvm_modlist_entry), 8);
	if (!list)
		return 0; /* reported with the rest of an overfull info area */
	si->modlist_paddr = list;
	si->nr_modules = (uint32_t)in->nr_modules;
	for (int i = 0; i < in->nr_modules; i++) {
		const struct boot_module *bm = &in->modules[i];
		uint64_t addr, len;
		if (boot_place_module(m, bm, next, UINT64_MAX, &addr, &len, err, errlen) < 0)
			return -1;
		struct hvm_modlist_entry e = {
			.paddr = addr,
			.size = len,
			.cmdline_paddr = bm->args ? area_str(a, bm->args) : 0,
		};
		area_put(a, list + (uint64_t)i * sizeof(e), &e, sizeof(e));
		next = addr + len;
	}
	return 0;
}

int boot_load_pvh(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		  char *err, size_t errlen)
{
	uint32_t entry = 0;
	uint64_t entry_size = 0;
	int r = pvh_find_entry(in->image, in->image_len, &entry, &entry_size, err, errlen);
	if (r < 0)
		return -1;
	if (r == 0)
		return boot_fail(err, errlen,
				 "%s has no PVH entry note (ELF note \"Xen\", type %u XEN_ELFNOTE_PHYS32_ENTRY)",
				 in->image_path ? in->image_path : "image", PVH_NOTE_TYPE);
	if (entry_size == 0xffffffffull)
		return boot_fail(err, errlen,
				 "PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) holds an entry above 4 GiB");
	if (entry_size != 4 && entry_size != 8)
		return boot_fail(err, errlen,
				 "PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a %llu-byte desc, not 4 or 8",
				 (unsigned long long)entry_size);
	struct pvh_area a = { .host = mem_ptr(m, BOOT_INFO, BOOT_INFO_SIZE) };
	if (!a.host)
		return boot_fail(err, errlen, "guest RAM too small for the PVH start info");
	struct boot_elf_info info;
	if (boot_elf_load_image(m, in->image, in->image_len, BOOT_RESERVED_END, &info, err, errlen) < 0)
		return -1;

	memset(a.host, 0, BOOT_INFO_SIZE);
	uint64_t si_gpa = area_alloc(&a, sizeof(struct hvm_start_info), 8);
	struct hvm_start_info si = {
		.magic = PVH_MAGIC,
		.version = PVH_VERSION,
		.rsdp_paddr = in->acpi_rsdp,
	};
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	uint32_t n = 0;
	uint64_t low_end = m->regions[0].size;
	memmap_add(map, &n, 0, BOOT_MPTABLE, PVH_E820_RAM);
	memmap_add(map, &n, BOOT_MPTABLE, MIB(1), PVH_E820_RESERVED);
	memmap_add(map, &n, MIB(1), low_end, PVH_E820_RAM);
	memmap_add(map, &n, PCI_ECAM_BASE, PCI_ECAM_BASE + PCI_ECAM_SIZE, PVH_E820_RESERVED); /* MMCONFIG */
	if (m->nr_regions > 1)
		memmap_add(map, &n, m->regions[1].gpa, m->regions[1].gpa + m->regions[1].size,
			   PVH_E820_RAM);
	si.memmap_paddr = area_put(&a, area_alloc(&a, n * sizeof(map[0]), 8), map, n * sizeof(map[0]));
	si.memmap_entries = n;
	if (in->cmdline)
		si.cmdline_paddr = area_str(&a, in->cmdline);
	if (pvh_load_modules(m, in, &a, info.hi, &si, err, errlen) < 0)
		return -1;
	if (a.full)
		return boot_fail(err, errlen,
				 "PVH start info (command line, memory map, module list) does not fit "
				 "in its %llu bytes at 0x%llx",
				 BOOT_INFO_SIZE, BOOT_INFO);
	area_put(&a, si_gpa, &si, sizeof(si));

	*out = (struct boot_entry){
		.format = BOOT_PVH,
		.mode = BOOT_MODE_PROT32,
		.rip = entry,
		.rsp = BOOT_STACK_TOP,
		.rbx = si_gpa,
		.image_lo = info.lo,
		.image_hi = info.hi,
	};
	boot_x86_write_gdt(m, BOOT_MODE_PROT32);
	return 0;
}
