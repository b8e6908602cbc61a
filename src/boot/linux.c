/*
 * Linux x86 boot protocol, 64-bit entry (Documentation/x86/boot.rst): bzImage
 * and uncompressed vmlinux ELF64. Pure logic like the other loaders: every
 * check happens on the byte buffer, every write goes through mem_ptr().
 */
#include <asm/bootparam.h>
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include "../pci.h"
#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

/* Offsets in a bzImage file (the first sector is the old boot sector). */
#define LX_HDR_OFF 0x1f1u       /* struct setup_header starts here, as in boot_params */
#define LX_JUMP_LEN_OFF 0x201u  /* the 2-byte jump at 0x200 skips to the header's end */
#define LX_HDR_END_MAX 0x290u   /* boot_params has room for the header up to here */
#define LX_BOOT_FLAG 0xAA55u
#define LX_HDR_MAGIC 0x53726448u /* "HdrS" */
/* 2.12 is the first version with XLF_KERNEL_64 meaning what we rely on and
 * every field we read (pref_address, init_size: 2.10; xloadflags: 2.12). */
#define LX_MIN_VERSION 0x020cu
#define LX_SECTOR 512u
#define LX_DEFAULT_SETUP_SECTS 4u
#define LX_LOADER_UNDEFINED 0xff /* type_of_loader for a loader without an assigned ID */
#define LX_E820_RAM 1
#define LX_E820_RESERVED 2
/* boot.rst: a header of protocol < 2.03 implies this initrd_addr_max */
#define LX_INITRD_MAX_OLD 0x37ffffffull
/* Base memory Linux may use; from here to 1 MiB is the MP table, VGA and BIOS. */
#define LX_BASE_MEM_END BOOT_MPTABLE

_Static_assert(sizeof(struct boot_params) == 0x1000, "zero page is one page");
_Static_assert(offsetof(struct boot_params, hdr) == LX_HDR_OFF, "setup header offset");
_Static_assert(LX_HDR_OFF + sizeof(struct setup_header) <= LX_HDR_END_MAX, "setup header size");
/* The bytes a 2.12 header must have: everything up to and including handover_offset. */
#define LX_HDR_212_END (LX_HDR_OFF + offsetof(struct setup_header, handover_offset) + 4u)

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

static bool lx_overlaps(uint64_t a, uint64_t aend, uint64_t b, uint64_t bend)
{
	return a < bend && b < aend;
}

/* What both image kinds hand to the common zero-page code. */
struct lx_plan {
	uint64_t kernel_lo, kernel_hi; /* guest-physical extent the kernel may use */
	uint64_t entry;
	uint64_t initrd_max;           /* last byte the initrd may occupy */
	uint64_t cmdline_size;         /* longest command line the kernel accepts */
	uint64_t initrd_addr;          /* chosen by lx_plan_initrd */
};

static int lx_check_cmdline(const char *cmdline, uint64_t limit, char *err, size_t errlen)
{
	size_t len = strlen(cmdline);
	if (limit > BOOT_LINUX_CMDLINE_MAX - 1)
		limit = BOOT_LINUX_CMDLINE_MAX - 1;
	if (len > limit)
		return boot_fail(err, errlen, "kernel command line is %zu bytes; at most %llu fit",
				 len, (unsigned long long)limit);
	return 0;
}

/* Highest page-aligned place below both limits and above the kernel. */
static int lx_plan_initrd(const struct guest_mem *m, const struct boot_linux_in *in,
			  struct lx_plan *p, char *err, size_t errlen)
{
	if (!in->initrd || in->initrd_len == 0)
		return 0;
	uint64_t top = m->regions[0].size; /* RAM below the hole; a 32-bit ramdisk_image wants it */
	if (p->initrd_max < top - 1)
		top = p->initrd_max + 1;
	uint64_t floor = p->kernel_hi > MIB(1) ? p->kernel_hi : MIB(1);
	floor = (floor + BOOT_PAGE - 1) & ~(BOOT_PAGE - 1);
	if (in->initrd_len > top || align_down(top - in->initrd_len, BOOT_PAGE) < floor)
		return boot_fail(err, errlen,
				 "initrd (%zu bytes) does not fit between the kernel's end 0x%llx and "
				 "0x%llx (min of initrd_addr_max+1 and low RAM end)",
				 in->initrd_len, (unsigned long long)floor, (unsigned long long)top);
	p->initrd_addr = align_down(top - in->initrd_len, BOOT_PAGE);
	/* floor is above 1 MiB and the kernel, so nothing else of ours is in the way */
	if (lx_overlaps(p->initrd_addr, p->initrd_addr + in->initrd_len, p->kernel_lo, p->kernel_hi))
		return boot_fail(err, errlen, "initrd would overlap the kernel");
	return 0;
}

static void e820_add(struct boot_params *bp, uint64_t addr, uint64_t end, uint32_t type)
{
	if (end <= addr || bp->e820_entries >= E820_MAX_ENTRIES_ZEROPAGE)
		return;
	bp->e820_table[bp->e820_entries++] = (struct boot_e820_entry){ addr, end - addr, type };
}

/* The map mirrors the memory slots; only the legacy area below 1 MiB is carved
 * out. The PCI ECAM window is listed reserved: Linux uses MMCONFIG only where
 * the firmware's map reserves it. */
static void lx_build_e820(const struct guest_mem *m, struct boot_params *bp)
{
	uint64_t low_end = m->regions[0].size;
	e820_add(bp, 0, LX_BASE_MEM_END, LX_E820_RAM);
	e820_add(bp, LX_BASE_MEM_END, MIB(1), LX_E820_RESERVED);
	e820_add(bp, MIB(1), low_end, LX_E820_RAM);
	e820_add(bp, PCI_ECAM_BASE, PCI_ECAM_BASE + PCI_ECAM_SIZE, LX_E820_RESERVED);
	if (m->nr_regions > 1)
		e820_add(bp, m->regions[1].gpa, m->regions[1].gpa + m->regions[1].size, LX_E820_RAM);
}

/* Everything is validated; write initrd, command line, zero page, GDT and page tables. */
static int lx_finish(struct guest_mem *m, const struct boot_linux_in *in, const struct lx_plan *p,
		     struct boot_params *bp, struct boot_entry *out, char *err, size_t errlen)
{
	const char *cmdline = in->cmdline ? in->cmdline : "";
	size_t clen = strlen(cmdline) + 1;
	uint8_t *zp = mem_ptr(m, BOOT_LINUX_PARAMS, sizeof(*bp));
	uint8_t *cl = mem_ptr(m, BOOT_LINUX_CMDLINE, BOOT_LINUX_CMDLINE_MAX);
	if (!zp || !cl)
		return boot_fail(err, errlen, "guest RAM too small for the zero page");
	uint64_t cr3 = 0;
	if (boot_x86_write_page_tables(m, &cr3) < 0)
		return boot_fail(err, errlen,
				 "identity page tables for %llu MiB of address space need more than %d GiB",
				 (unsigned long long)(mem_top(m) >> 20), BOOT_PT_MAX_GIB);
	boot_x86_write_gdt(m, BOOT_MODE_LONG64);

	bp->hdr.type_of_loader = LX_LOADER_UNDEFINED;
	bp->hdr.cmd_line_ptr = (uint32_t)BOOT_LINUX_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(BOOT_LINUX_CMDLINE >> 32);
	memset(cl, 0, BOOT_LINUX_CMDLINE_MAX);
	memcpy(cl, cmdline, clen);
	if (in->initrd && in->initrd_len) {
		memcpy(mem_ptr(m, p->initrd_addr, in->initrd_len), in->initrd, in->initrd_len);
		bp->hdr.ramdisk_image = (uint32_t)p->initrd_addr;
		bp->hdr.ramdisk_size = (uint32_t)in->initrd_len;
		bp->ext_ramdisk_image = (uint32_t)(p->initrd_addr >> 32);
		bp->ext_ramdisk_size = (uint32_t)((uint64_t)in->initrd_len >> 32);
	}
	lx_build_e820(m, bp);
	memcpy(zp, bp, sizeof(*bp));

	*out = (struct boot_entry){
		.format = BOOT_AUTO,
		.mode = BOOT_MODE_LONG64,
		.rip = p->entry,
		/* the kernel sets up its own stack; a valid one costs nothing */
		.rsp = BOOT_STACK_TOP,
		.rsi = BOOT_LINUX_PARAMS,
		.cr3 = cr3,
		.image_lo = p->kernel_lo,
		.image_hi = p->kernel_hi,
	};
	return 0;
}

static int lx_load_bzimage(struct guest_mem *m, const struct boot_linux_in *in,
			   struct boot_entry *out, char *err, size_t errlen)
{
	const uint8_t *img = in->kernel;
	size_t len = in->kernel_len;
	struct setup_header h;
	if (len < LX_HDR_OFF + sizeof(h))
		return boot_fail(err, errlen,
				 "kernel image truncated: %zu bytes, the setup header needs %zu", len,
				 (size_t)LX_HDR_OFF + sizeof(h));
	memcpy(&h, img + LX_HDR_OFF, sizeof(h));
	if (h.boot_flag != LX_BOOT_FLAG || h.header != LX_HDR_MAGIC)
		return boot_fail(err, errlen,
				 "not a Linux bzImage (boot_flag 0x%04x, header 0x%08x; want 0xaa55 and "
				 "\"HdrS\")",
				 h.boot_flag, h.header);
	if (h.version < LX_MIN_VERSION)
		return boot_fail(err, errlen,
				 "Linux boot protocol %u.%02u is too old (need 2.12 or later for the "
				 "64-bit entry)",
				 h.version >> 8, h.version & 0xff);
	/* The jump at 0x200 lands right after the header: its target is the header's end. */
	size_t hdr_end = 0x202u + img[LX_JUMP_LEN_OFF];
	if (hdr_end < LX_HDR_212_END)
		return boot_fail(err, errlen,
				 "setup header ends at 0x%zx, before the 2.12 fields end (0x%zx)", hdr_end,
				 (size_t)LX_HDR_212_END);
	if (hdr_end > LX_HDR_END_MAX)
		hdr_end = LX_HDR_END_MAX; /* later fields we cannot place are not ours to pass */
	if (hdr_end > len)
		return boot_fail(err, errlen, "setup header (to 0x%zx) runs past the %zu-byte file",
				 hdr_end, len);
	if (!(h.loadflags & LOADED_HIGH))
		return boot_fail(err, errlen, "kernel is not loaded high (zImage); not supported");
	if (!(h.xloadflags & XLF_KERNEL_64))
		return boot_fail(err, errlen, "kernel has no 64-bit entry (XLF_KERNEL_64 not set)");
	uint64_t sects = h.setup_sects ? h.setup_sects : LX_DEFAULT_SETUP_SECTS;
	uint64_t pm_off = (sects + 1) * LX_SECTOR;
	if (pm_off >= len)
		return boot_fail(err, errlen,
				 "setup_sects %llu puts the kernel at 0x%llx, past the %zu-byte file",
				 (unsigned long long)sects, (unsigned long long)pm_off, len);
	uint64_t pm_len = len - pm_off;

	/* pref_address is where a non-relocatable kernel must go and what a
	 * relocatable one prefers; it is kernel_alignment-aligned by construction,
	 * so using it always satisfies the alignment rule. */
	uint64_t load = h.pref_address;
	if (h.relocatable_kernel && h.kernel_alignment &&
	    (h.kernel_alignment & (h.kernel_alignment - 1)) == 0 && load % h.kernel_alignment)
		return boot_fail(err, errlen,
				 "pref_address 0x%llx is not aligned to kernel_alignment 0x%x",
				 (unsigned long long)load, h.kernel_alignment);
	/* init_size covers the in-place decompression and early brk: reserve it all. */
	uint64_t span = h.init_size > pm_len ? h.init_size : pm_len;
	if (boot_check_dest(m, load, span, BOOT_RESERVED_END, "Linux kernel", err, errlen) < 0)
		return -1;

	struct lx_plan p = {
		.kernel_lo = load,
		.kernel_hi = load + span,
		.entry = load + BOOT_LINUX_ENTRY64_OFF,
		.initrd_max = h.initrd_addr_max ? h.initrd_addr_max : LX_INITRD_MAX_OLD,
		.cmdline_size = h.cmdline_size,
	};
	if (lx_check_cmdline(in->cmdline ? in->cmdline : "", p.cmdline_size, err, errlen) < 0 ||
	    lx_plan_initrd(m, in, &p, err, errlen) < 0)
		return -1;

	struct boot_params bp;
	memset(&bp, 0, sizeof(bp));
	/* Only the header travels: the rest of the file's first page is not boot_params. */
	memcpy((uint8_t *)&bp + LX_HDR_OFF, img + LX_HDR_OFF, hdr_end - LX_HDR_OFF);
	memcpy(mem_ptr(m, load, pm_len), img + pm_off, pm_len);
	if (span > pm_len)
		memset(mem_ptr(m, load + pm_len, span - pm_len), 0, span - pm_len);
	return lx_finish(m, in, &p, &bp, out, err, errlen);
}

/* Physical entry of a vmlinux: Linux's e_entry is already physical
 * (phys_startup_64); an image with a virtual e_entry gets it translated
 * through the segment that contains it. */
static int lx_vmlinux_entry(const uint8_t *img, uint64_t *entry, char *err, size_t errlen)
{
	Elf64_Ehdr e;
	memcpy(&e, img, sizeof(e)); /* size and phdr range checked by boot_elf_load_image */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < e.e_phnum; i++) {
			Elf64_Phdr ph;
			memcpy(&ph, img + e.e_phoff + (uint64_t)i * e.e_phentsize, sizeof(ph));
			if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
				continue;
			uint64_t base = pass == 0 ? ph.p_paddr : ph.p_vaddr;
			if (e.e_entry >= base && e.e_entry - base < ph.p_memsz) {
				*entry = ph.p_paddr + (e.e_entry - base);
				return 0;
			}
		}
	}
	return boot_fail(err, errlen, "vmlinux entry 0x%llx is in no loadable segment",
			 (unsigned long long)e.e_entry);
}

static int lx_load_vmlinux(struct guest_mem *m, const struct boot_linux_in *in,
			   struct boot_entry *out, char *err, size_t errlen)
{
	if (in->kernel_len <= EI_CLASS || in->kernel[EI_CLASS] != ELFCLASS64)
		return boot_fail(err, errlen, "vmlinux is not ELF64; the 64-bit entry needs one");
	/* Check what needs no loading first, so a bad command line writes nothing. */
	if (lx_check_cmdline(in->cmdline ? in->cmdline : "", BOOT_LINUX_CMDLINE_MAX - 1, err,
			     errlen) < 0)
		return -1;
	struct boot_elf_info ei;
	if (in->elf_loaded)
		ei = *in->elf_loaded;
	else if (boot_elf_load_image(m, in->kernel, in->kernel_len, BOOT_RESERVED_END, &ei, err, errlen) < 0)
		return -1;
	struct lx_plan p = {
		.kernel_lo = ei.lo,
		.kernel_hi = ei.hi,
		.initrd_max = BOOT_LINUX_INITRD_MAX,
		.cmdline_size = BOOT_LINUX_CMDLINE_MAX - 1,
	};
	if (lx_vmlinux_entry(in->kernel, &p.entry, err, errlen) < 0 ||
	    lx_plan_initrd(m, in, &p, err, errlen) < 0)
		return -1;

	/* No header in the file: fill in what the 64-bit entry path reads. */
	struct boot_params bp;
	memset(&bp, 0, sizeof(bp));
	bp.hdr.boot_flag = LX_BOOT_FLAG;
	bp.hdr.header = LX_HDR_MAGIC;
	bp.hdr.version = LX_MIN_VERSION;
	bp.hdr.cmdline_size = (uint32_t)p.cmdline_size;
	return lx_finish(m, in, &p, &bp, out, err, errlen);
}

int boot_load_linux(struct guest_mem *m, const struct boot_linux_in *in, struct boot_entry *out,
		    char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!in->kernel || in->kernel_len == 0)
		return boot_fail(err, errlen, "kernel image is empty");
	if (in->kernel_len >= SELFMAG && memcmp(in->kernel, ELFMAG, SELFMAG) == 0)
		return lx_load_vmlinux(m, in, out, err, errlen);
	return lx_load_bzimage(m, in, out, err, errlen);
}
