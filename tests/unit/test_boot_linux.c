/* Linux boot protocol loader: crafted bzImages and vmlinux ELF64s, boot_params,
 * e820, initrd placement, and every malformed image we know to refuse. */
#include <asm/bootparam.h>
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pci.h"
#include "boot/boot.h"
#include "load_error.h"
#include "memory.h"
#include "util.h"

#define KLOAD MIB(16)   /* pref_address of the crafted bzImages, as real x86-64 kernels */
#define PM_LEN 0x3000u  /* protected-mode kernel bytes in the crafted bzImage */
#define INIT_SIZE 0x20000u
#define HDR_END 0x26cu  /* 0x1f1 + sizeof(struct setup_header) */

static _Alignas(8) uint8_t img[0x10000];
static _Alignas(8) uint8_t rd[0x5000];

/* Header fields a test may change before build_bz() lays out the file. */
struct bz_opts {
	uint8_t setup_sects;
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint64_t pref;
	uint32_t init_size, initrd_max, cmdline_size, kernel_alignment;
	uint8_t relocatable;
	uint32_t pm_len;
};

static struct bz_opts bz_default(void)
{
	return (struct bz_opts){ .setup_sects = 1, .version = 0x020f, .loadflags = LOADED_HIGH,
				 .xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
				 .pref = KLOAD, .init_size = INIT_SIZE, .initrd_max = 0x7fffffff,
				 .cmdline_size = 2047, .kernel_alignment = 0x200000, .relocatable = 1,
				 .pm_len = PM_LEN };
}

static struct setup_header *bz_hdr(void)
{
	return (struct setup_header *)(img + 0x1f1);
}

/* A bzImage: boot sector junk, setup header, setup code, then a patterned kernel. */
static size_t build_bz(const struct bz_opts *o)
{
	memset(img, 0x77, sizeof(img)); /* stray bytes that must not reach boot_params */
	memset(img + 0x1f1, 0, HDR_END - 0x1f1); /* past the header's end: junk too */
	struct setup_header h = {
		.setup_sects = o->setup_sects, .boot_flag = 0xaa55, .jump = 0x00eb | ((HDR_END - 0x202) << 8),
		.header = 0x53726448, .version = o->version, .loadflags = o->loadflags,
		.initrd_addr_max = o->initrd_max, .kernel_alignment = o->kernel_alignment,
		.relocatable_kernel = o->relocatable, .xloadflags = o->xloadflags,
		.cmdline_size = o->cmdline_size, .pref_address = o->pref, .init_size = o->init_size,
		.syssize = o->pm_len / 16, .kernel_version = 0x1234,
	};
	memcpy(img + 0x1f1, &h, sizeof(h));
	size_t sects = o->setup_sects ? o->setup_sects : 4;
	size_t off = (sects + 1) * 512;
	for (size_t i = 0; i < o->pm_len; i++)
		img[off + i] = (uint8_t)(i * 7 + 1);
	return off + o->pm_len;
}

struct fixture {
	struct guest_mem m;
	struct boot_entry e;
	char err[256];
	const char *cmdline;
	size_t initrd_len;
};

static int setup_ram(void **state, uint64_t ram)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || mem_init(&f->m, ram) < 0)
		return -1;
	f->cmdline = "console=ttyS0 root=/dev/ram0";
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_ram(state, MIB(128)); }
static int setup_5g(void **state) { return setup_ram(state, GIB(5)); }
static int setup_4m(void **state) { return setup_ram(state, MIB(4)); }

static int teardown(void **state)
{
	struct fixture *f = *state;
	mem_free(&f->m);
	free(f);
	return 0;
}

static int load(struct fixture *f, size_t len)
{
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 13 + 5);
	struct boot_linux_in in = { .kernel = img, .kernel_len = len, .cmdline = f->cmdline,
				    .initrd = f->initrd_len ? rd : NULL, .initrd_len = f->initrd_len };
	f->err[0] = '\0';
	return boot_load_linux(&f->m, &in, &f->e, f->err, sizeof(f->err));
}


static const struct boot_params *zp(struct fixture *f)
{
	return mem_ptr(&f->m, BOOT_LINUX_PARAMS, sizeof(struct boot_params));
}

static void check_e820(struct fixture *f, const struct boot_e820_entry *want, int n)
{
	const struct boot_params *bp = zp(f);
	assert_int_equal(bp->e820_entries, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(bp->e820_table[i].addr, want[i].addr);
		assert_int_equal(bp->e820_table[i].size, want[i].size);
		assert_int_equal(bp->e820_table[i].type, want[i].type);
	}
	assert_int_equal(bp->e820_table[n].size, 0);
}

static void test_bz_loads(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	size_t len = build_bz(&o);
	memset(mem_ptr(&f->m, KLOAD, INIT_SIZE), 0xee, INIT_SIZE); /* init_size tail must be zeroed */
	assert_int_equal(load(f, len), 0);
	assert_int_equal(f->e.mode, BOOT_MODE_LONG64);
	assert_int_equal(f->e.rip, KLOAD + 0x200);
	assert_int_equal(f->e.rsi, BOOT_LINUX_PARAMS);
	assert_int_equal(f->e.cr3, BOOT_PML4);
	assert_int_equal(f->e.image_lo, KLOAD);
	assert_int_equal(f->e.image_hi, KLOAD + INIT_SIZE);
	/* The protected-mode kernel, byte for byte, then zeros to init_size. */
	const uint8_t *k = mem_ptr(&f->m, KLOAD, INIT_SIZE);
	assert_memory_equal(k, img + 2 * 512, PM_LEN);
	for (size_t i = PM_LEN; i < INIT_SIZE; i++)
		assert_int_equal(k[i], 0);
	/* GDT: __BOOT_CS 0x10 is 64-bit code, __BOOT_DS 0x18 flat data. */
	const uint64_t *gdt = mem_ptr(&f->m, BOOT_GDT, 40);
	assert_int_equal(gdt[2], 0x00af9b000000ffffull);
	assert_int_equal(gdt[3], 0x00cf93000000ffffull);
	/* The page tables map the kernel (2 MiB page 8 of the first GiB). */
	const uint64_t *pd0 = mem_ptr(&f->m, BOOT_PML4 + 0x2000, 4096);
	assert_int_equal(pd0[KLOAD >> 21] & ~0x1fffffull, KLOAD);
}

static void test_bz_boot_params(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	size_t len = build_bz(&o);
	memset(mem_ptr(&f->m, BOOT_LINUX_PARAMS, 0x1000), 0x55, 0x1000); /* stale page */
	assert_int_equal(load(f, len), 0);
	const struct boot_params *bp = zp(f);
	/* Everything outside the header and what we set is zero: no junk from the boot sector. */
	assert_int_equal(bp->sentinel, 0);
	assert_int_equal(bp->screen_info.orig_x, 0);
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	for (size_t i = HDR_END; i < 0x290; i++)
		assert_int_equal(((const uint8_t *)bp)[i], 0);
	/* The header as the image had it ... */
	assert_int_equal(bp->hdr.setup_sects, 1);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.kernel_version, 0x1234);
	assert_int_equal(bp->hdr.loadflags, LOADED_HIGH);
	assert_int_equal(bp->hdr.pref_address, KLOAD);
	assert_int_equal(bp->hdr.init_size, INIT_SIZE);
	assert_int_equal(bp->hdr.cmdline_size, 2047);
	/* ... plus what the loader fills in. */
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_LINUX_CMDLINE);
	assert_string_equal((const char *)mem_ptr(&f->m, BOOT_LINUX_CMDLINE, 64), f->cmdline);
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	const struct boot_e820_entry want[] = {
		{ 0, 0x9f000, 1 }, { 0x9f000, 0x61000, 2 }, { MIB(1), MIB(127), 1 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 },
	};
	check_e820(f, want, 4);
	/* Command line and zero page sit where nothing else of ours is. */
	assert_true(BOOT_LINUX_CMDLINE + BOOT_LINUX_CMDLINE_MAX <= BOOT_PML4);
	assert_true(BOOT_LINUX_PARAMS >= BOOT_STACK_TOP);
}

static void test_bz_setup_sects_zero_means_4(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	o.setup_sects = 0;
	size_t len = build_bz(&o);
	assert_int_equal(load(f, len), 0);
	assert_memory_equal(mem_ptr(&f->m, KLOAD, PM_LEN), img + 5 * 512, PM_LEN);
}

static void test_bz_null_cmdline_and_limits(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	o.cmdline_size = 5;
	size_t len = build_bz(&o);
	f->cmdline = NULL;
	assert_int_equal(load(f, len), 0);
	assert_string_equal((const char *)mem_ptr(&f->m, BOOT_LINUX_CMDLINE, 1), "");
	f->cmdline = "12345"; /* exactly cmdline_size: fits (the NUL is extra) */
	assert_int_equal(load(f, len), 0);
	assert_string_equal((const char *)mem_ptr(&f->m, BOOT_LINUX_CMDLINE, 8), "12345");
	f->cmdline = "123456";
	expect_fail(f, len, "command line is 6 bytes; at most 5");
	/* A header allowing more than our area still stops at the area. */
	o.cmdline_size = 0xffffffff;
	len = build_bz(&o);
	static char big[BOOT_LINUX_CMDLINE_MAX + 1];
	memset(big, 'a', BOOT_LINUX_CMDLINE_MAX);
	f->cmdline = big;
	expect_fail(f, len, "command line");
	big[BOOT_LINUX_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(load(f, len), 0);
}

static void test_e820_5g(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	assert_int_equal(load(f, build_bz(&o)), 0);
	const struct boot_e820_entry want[] = {
		{ 0, 0x9f000, 1 }, { 0x9f000, 0x61000, 2 }, { MIB(1), GIB(3) - MIB(1), 1 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 }, { GIB(4), GIB(2), 1 },
	};
	check_e820(f, want, 5);
	/* e820 RAM equals the slots, except the reserved legacy piece below 1 MiB. */
	assert_int_equal(f->m.regions[0].size, GIB(3));
	assert_int_equal(f->m.regions[1].gpa, GIB(4));
	assert_int_equal(f->m.regions[1].size, GIB(2));
}

static void test_initrd_high_128m(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	f->initrd_len = 5000; /* not a page multiple */
	assert_int_equal(load(f, build_bz(&o)), 0);
	const struct boot_params *bp = zp(f);
	uint64_t want = (MIB(128) - 5000) & ~0xfffull;
	assert_int_equal(bp->hdr.ramdisk_image, want);
	assert_int_equal(bp->hdr.ramdisk_size, 5000);
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	assert_memory_equal(mem_ptr(&f->m, want, 5000), rd, 5000);
}

static void test_initrd_below_addr_max_5g(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	o.initrd_max = 0x37ffffff; /* the old default: below low RAM's 3 GiB end */
	f->initrd_len = sizeof(rd);
	assert_int_equal(load(f, build_bz(&o)), 0);
	assert_int_equal(zp(f)->hdr.ramdisk_image, 0x38000000 - sizeof(rd));
	/* A limit above low RAM: the top of RAM below the hole wins, never above 4 GiB. */
	o.initrd_max = 0xffffffff;
	assert_int_equal(load(f, build_bz(&o)), 0);
	assert_int_equal(zp(f)->hdr.ramdisk_image, GIB(3) - sizeof(rd));
	assert_memory_equal(mem_ptr(&f->m, GIB(3) - sizeof(rd), sizeof(rd)), rd, sizeof(rd));
}

static void test_initrd_refused(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	/* initrd_addr_max inside the kernel's init_size: it would overlap the kernel */
	o.initrd_max = (uint32_t)(KLOAD + INIT_SIZE + 0x1000 - 1);
	f->initrd_len = 0x2000;
	expect_fail(f, build_bz(&o), "initrd");
	/* exactly one page above the kernel for a one-page initrd: fits */
	f->initrd_len = 0x1000;
	assert_int_equal(load(f, build_bz(&o)), 0);
	assert_int_equal(zp(f)->hdr.ramdisk_image, KLOAD + INIT_SIZE);
	/* initrd_addr_max below the kernel altogether */
	o.initrd_max = MIB(8);
	expect_fail(f, build_bz(&o), "does not fit");
}

static void test_initrd_too_large(void **state)
{
	struct fixture *f = *state; /* 4 MiB of RAM */
	struct bz_opts o = bz_default();
	o.pref = MIB(1);
	o.kernel_alignment = 0x100000;
	f->initrd_len = sizeof(rd);
	assert_int_equal(load(f, build_bz(&o)), 0);
	assert_int_equal(zp(f)->hdr.ramdisk_image, MIB(4) - sizeof(rd));
	o.init_size = (uint32_t)(MIB(3) - 0x4000); /* leaves 16 KiB: 20 KiB initrd does not fit */
	expect_fail(f, build_bz(&o), "initrd (20480 bytes) does not fit");
	/* the kernel itself larger than RAM */
	f->initrd_len = 0;
	o.init_size = (uint32_t)MIB(4);
	expect_fail(f, build_bz(&o), "outside guest RAM");
	o = bz_default(); /* 16 MiB pref_address in 4 MiB of RAM */
	expect_fail(f, build_bz(&o), "Linux kernel [0x1000000");
}

static void test_bz_malformed(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	size_t len = build_bz(&o);

	expect_fail(f, 0, "empty");
	expect_fail(f, 0x200, "truncated");
	expect_fail(f, HDR_END - 1, "truncated");

	bz_hdr()->boot_flag = 0x55aa;
	expect_fail(f, len, "not a Linux bzImage");
	len = build_bz(&o);
	bz_hdr()->header = 0x48647253;
	expect_fail(f, len, "not a Linux bzImage");

	o.version = 0x020b;
	len = build_bz(&o);
	expect_fail(f, len, "protocol 2.11 is too old");
	o.version = 0x0204;
	len = build_bz(&o);
	expect_fail(f, len, "protocol 2.04");
	o = bz_default();

	len = build_bz(&o);
	img[0x201] = 0x50; /* header ends at 0x252: no pref_address/init_size/xloadflags */
	expect_fail(f, len, "setup header ends at 0x252");

	o.loadflags = 0;
	expect_fail(f, build_bz(&o), "zImage");
	o = bz_default();
	o.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
	expect_fail(f, build_bz(&o), "kernel has no 64-bit entry");
	o = bz_default();

	/* setup_sects pointing at or past the end of the file */
	len = build_bz(&o);
	bz_hdr()->setup_sects = 200;
	expect_fail(f, len, "setup_sects 200");
	bz_hdr()->setup_sects = (uint8_t)(len / 512 - 1); /* kernel would start exactly at EOF */
	expect_fail(f, len, "past the");

	/* kernel over the boot structures / MP table / past RAM / misaligned */
	o.pref = 0x8000;
	o.kernel_alignment = 0x1000;
	expect_fail(f, build_bz(&o), "overlaps hvmm's boot structures");
	o.pref = 0x9e000;
	expect_fail(f, build_bz(&o), "overlaps hvmm's boot structures");
	o.pref = MIB(127); /* the file fits below 128 MiB, init_size does not */
	o.kernel_alignment = 0x100000;
	o.init_size = (uint32_t)MIB(2);
	expect_fail(f, build_bz(&o), "outside guest RAM");
	o.init_size = INIT_SIZE;
	o.pref = 0xfffffffffffff000ull;
	o.kernel_alignment = 0x1000;
	expect_fail(f, build_bz(&o), "outside guest RAM");
	o.pref = KLOAD + 0x1000;
	o.kernel_alignment = 0x200000;
	expect_fail(f, build_bz(&o), "not aligned to kernel_alignment");
	o.relocatable = 0; /* a fixed-address kernel goes where it says */
	assert_int_equal(load(f, build_bz(&o)), 0);
	assert_int_equal(f->e.rip, KLOAD + 0x1200);
}

/* Every prefix of a valid image loads or fails cleanly; under ASan, no stray reads. */
static void test_bz_every_truncation(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default();
	o.pm_len = 0x200;
	size_t len = build_bz(&o);
	for (size_t l = 1; l < len; l++) {
		int r = load(f, l);
		if (r == 0)
			assert_true(l > 2 * 512);
		else
			assert_true(f->err[0] != '\0');
	}
	assert_int_equal(load(f, len), 0);
}

/* ---- vmlinux ---- */

#define VM_VADDR 0xffffffff81000000ull
#define VM_DATA_OFF 0x1000u

/* An ELF64 vmlinux-alike: one text PT_LOAD at p_paddr KLOAD (virtual high), a bss-ish tail. */
static size_t build_vmlinux(uint64_t entry, int cls)
{
	memset(img, 0, sizeof(img));
	for (size_t i = 0; i < 0x2000; i++)
		img[VM_DATA_OFF + i] = (uint8_t)(i * 3 + 9);
	Elf64_Ehdr e = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, (unsigned char)cls,
				      ELFDATA2LSB, EV_CURRENT },
			 .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			 .e_entry = entry, .e_phoff = sizeof(e), .e_ehsize = sizeof(e),
			 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2 };
	Elf64_Phdr p[2] = {
		{ .p_type = PT_LOAD, .p_offset = VM_DATA_OFF, .p_vaddr = VM_VADDR, .p_paddr = KLOAD,
		  .p_filesz = 0x2000, .p_memsz = 0x4000 },
		{ .p_type = PT_NOTE, .p_offset = VM_DATA_OFF, .p_vaddr = 0, .p_paddr = 0,
		  .p_filesz = 0x10, .p_memsz = 0x10 },
	};
	memcpy(img, &e, sizeof(e));
	memcpy(img + sizeof(e), p, sizeof(p));
	return VM_DATA_OFF + 0x2000;
}

static void test_vmlinux_loads(void **state)
{
	struct fixture *f = *state;
	f->initrd_len = 0x1000;
	memset(mem_ptr(&f->m, BOOT_LINUX_PARAMS, 0x1000), 0x55, 0x1000);
	assert_int_equal(load(f, build_vmlinux(KLOAD, ELFCLASS64)), 0); /* Linux: e_entry physical */
	assert_int_equal(f->e.mode, BOOT_MODE_LONG64);
	assert_int_equal(f->e.rip, KLOAD);
	assert_int_equal(f->e.rsi, BOOT_LINUX_PARAMS);
	assert_int_equal(f->e.cr3, BOOT_PML4);
	assert_int_equal(f->e.image_lo, KLOAD);
	assert_int_equal(f->e.image_hi, KLOAD + 0x4000);
	assert_memory_equal(mem_ptr(&f->m, KLOAD, 0x2000), img + VM_DATA_OFF, 0x2000);
	const struct boot_params *bp = zp(f);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020c);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_LINUX_CMDLINE);
	assert_int_equal(bp->hdr.cmdline_size, BOOT_LINUX_CMDLINE_MAX - 1);
	assert_string_equal((const char *)mem_ptr(&f->m, BOOT_LINUX_CMDLINE, 64), f->cmdline);
	assert_int_equal(bp->hdr.ramdisk_image, MIB(128) - 0x1000);
	assert_int_equal(bp->hdr.ramdisk_size, 0x1000);
	assert_memory_equal(mem_ptr(&f->m, MIB(128) - 0x1000, 0x1000), rd, 0x1000);
	/* the rest of the header is zero: nothing the file did not say */
	assert_int_equal(bp->hdr.setup_sects, 0);
	assert_int_equal(bp->hdr.loadflags, 0);
	assert_int_equal(bp->hdr.pref_address, 0);
	assert_int_equal(bp->hdr.xloadflags, 0);
	assert_int_equal(bp->sentinel, 0);
	const struct boot_e820_entry want[] = {
		{ 0, 0x9f000, 1 }, { 0x9f000, 0x61000, 2 }, { MIB(1), MIB(127), 1 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 },
	};
	check_e820(f, want, 4);
}

static void test_vmlinux_virtual_entry(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f, build_vmlinux(VM_VADDR + 0x123, ELFCLASS64)), 0);
	assert_int_equal(f->e.rip, KLOAD + 0x123);
	assert_int_equal(load(f, build_vmlinux(VM_VADDR + 0x3fff, ELFCLASS64)), 0); /* in bss */
	assert_int_equal(f->e.rip, KLOAD + 0x3fff);
}

static void test_vmlinux_5g(void **state)
{
	struct fixture *f = *state;
	f->initrd_len = 0x1000;
	assert_int_equal(load(f, build_vmlinux(KLOAD, ELFCLASS64)), 0);
	/* default initrd_addr_max 0x7fffffff for a vmlinux */
	assert_int_equal(zp(f)->hdr.ramdisk_image, 0x80000000 - 0x1000);
	const struct boot_e820_entry want[] = {
		{ 0, 0x9f000, 1 }, { 0x9f000, 0x61000, 2 }, { MIB(1), GIB(3) - MIB(1), 1 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 }, { GIB(4), GIB(2), 1 },
	};
	check_e820(f, want, 5);
}

static void test_vmlinux_malformed(void **state)
{
	struct fixture *f = *state;
	expect_fail(f, build_vmlinux(VM_VADDR + 0x4000, ELFCLASS64), "entry 0xffffffff81004000 is in no");
	expect_fail(f, build_vmlinux(0x500, ELFCLASS64), "in no loadable segment");
	size_t len = build_vmlinux(KLOAD, ELFCLASS32);
	expect_fail(f, len, "not ELF64");
	expect_fail(f, 4, "not ELF64");
	len = build_vmlinux(KLOAD, ELFCLASS64);
	expect_fail(f, 40, "truncated");
	expect_fail(f, VM_DATA_OFF + 0x100, "outside the");
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
	ph->p_paddr = 0x8000;
	expect_fail(f, len, "overlaps hvmm's boot structures");
	ph->p_paddr = MIB(128) - 0x3000;
	expect_fail(f, len, "outside guest RAM");
	/* the kernel at the top of RAM leaves no room for an initrd above it */
	ph->p_paddr = MIB(128) - 0x4000;
	ph->p_vaddr = ph->p_paddr;
	((Elf64_Ehdr *)img)->e_entry = ph->p_paddr;
	f->initrd_len = 0x1000;
	expect_fail(f, len, "initrd (4096 bytes) does not fit");
	f->initrd_len = 0;
	assert_int_equal(load(f, len), 0);
	/* a command line longer than the area */
	static char big[BOOT_LINUX_CMDLINE_MAX + 1];
	memset(big, 'b', BOOT_LINUX_CMDLINE_MAX);
	f->cmdline = big;
	expect_fail(f, len, "command line");
	for (size_t l = 1; l < len; l++) /* every prefix: error or load, never a crash */
		if (load(f, l) != 0)
			assert_true(f->err[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bz_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bz_boot_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bz_setup_sects_zero_means_4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bz_null_cmdline_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_e820_5g, setup_5g, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_high_128m, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_below_addr_max_5g, setup_5g, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_too_large, setup_4m, teardown),
		cmocka_unit_test_setup_teardown(test_bz_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bz_every_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_virtual_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_5g, setup_5g, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_malformed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
