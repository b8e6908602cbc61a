/* Multiboot v1: a.out kludge and ELF paths, the info structure, modules, errors. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pci.h"
#include "boot/boot.h"
#include "load_error.h"
#include "memory.h"
#include "util.h"

#define MB_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_AOUT (1u << 16)

#define HDR_OFF 0x40
#define LOAD_ADDR 0x100000u

static _Alignas(8) uint8_t img[0x6000];

struct mb_hdr {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

/* A 0x3000-byte kludge image whose byte i is (i * 3) except the header. */
static size_t build_kludge(uint32_t flags, uint32_t load_end, uint32_t bss_end, uint32_t entry)
{
	memset(img, 0, sizeof(img));
	for (size_t i = 0; i < 0x3000; i++)
		img[i] = (uint8_t)(i * 3);
	struct mb_hdr h = { MB_MAGIC, flags | MB_AOUT, 0, LOAD_ADDR + HDR_OFF, LOAD_ADDR,
			    load_end, bss_end, entry };
	h.checksum = 0u - h.magic - h.flags;
	memcpy(img + HDR_OFF, &h, sizeof(h));
	return 0x3000;
}

static struct mb_hdr *hdr(void) { return (struct mb_hdr *)(img + HDR_OFF); }

/* Re-sign after a test pokes the header. */
static void fix_checksum(void)
{
	hdr()->checksum = 0u - hdr()->magic - hdr()->flags;
}

struct fixture {
	struct guest_mem m;
	struct boot_entry e;
	char err[256];
	char dir[64];
	struct boot_module mods[4];
	int nr_mods;
	const char *cmdline;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || mem_init(&f->m, MIB(64)) < 0)
		return -1;
	strcpy(f->dir, "/tmp/hvmm-mb-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static char *tmpfile_path(struct fixture *f, const char *name)
{
	static char paths[8][128];
	static int next;
	char *p = paths[next++ % 8];
	snprintf(p, 128, "%s/%s", f->dir, name);
	return p;
}

static const char *make_file(struct fixture *f, const char *name, size_t len, uint8_t seed)
{
	char *p = tmpfile_path(f, name);
	FILE *fp = fopen(p, "wb");
	assert_non_null(fp);
	for (size_t i = 0; i < len; i++)
		fputc((uint8_t)(seed + i), fp);
	fclose(fp);
	return p;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	mem_free(&f->m);
	free(f);
	return 0;
}

static int load(struct fixture *f, size_t len)
{
	struct boot_params_in in = { .image = img, .image_len = len, .image_path = "mb.bin",
				     .cmdline = f->cmdline, .modules = f->mods,
				     .nr_modules = f->nr_mods, .ncpus = 1 };
	f->err[0] = '\0';
	return boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err));
}


static uint32_t rd32(struct fixture *f, uint64_t gpa)
{
	uint32_t v;
	assert_int_equal(mem_read(&f->m, gpa, &v, 4), 0);
	return v;
}

static uint64_t rd64(struct fixture *f, uint64_t gpa)
{
	uint64_t v;
	assert_int_equal(mem_read(&f->m, gpa, &v, 8), 0);
	return v;
}

static const char *str_at(struct fixture *f, uint32_t gpa)
{
	assert_true(gpa >= BOOT_INFO && gpa < BOOT_INFO + BOOT_INFO_SIZE);
	const char *s = mem_ptr(&f->m, gpa, 1);
	assert_non_null(memchr(s, 0, BOOT_INFO + BOOT_INFO_SIZE - gpa));
	return s;
}

static void test_kludge_loads(void **state)
{
	struct fixture *f = *state;
	size_t len = build_kludge(0x3, 0, LOAD_ADDR + 0x5000, LOAD_ADDR + 0x80);
	memset(mem_ptr(&f->m, LOAD_ADDR, 0x5000), 0xee, 0x5000);
	assert_int_equal(load(f, len), 0);
	assert_int_equal(f->e.format, BOOT_MULTIBOOT);
	assert_int_equal(f->e.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->e.rip, LOAD_ADDR + 0x80);
	assert_int_equal(f->e.rax, MB_BOOT_MAGIC);
	assert_int_equal(f->e.rbx, BOOT_INFO);
	assert_int_equal(f->e.rsp, BOOT_STACK_TOP);
	assert_int_equal(f->e.image_lo, LOAD_ADDR);
	assert_int_equal(f->e.image_hi, LOAD_ADDR + 0x5000);
	assert_memory_equal(mem_ptr(&f->m, LOAD_ADDR, 0x3000), img, 0x3000);
	for (uint64_t a = LOAD_ADDR + 0x3000; a < LOAD_ADDR + 0x5000; a++)
		assert_int_equal(*(uint8_t *)mem_ptr(&f->m, a, 1), 0);
	/* 32-bit GDT for protected mode */
	assert_false(rd64(f, BOOT_GDT + 0x10) & (1ull << 53));
}

static void test_kludge_partial_load(void **state)
{
	struct fixture *f = *state;
	/* Load starts 0x20 bytes before the header in the file and stops at load_end. */
	size_t len = build_kludge(0, 0, 0, 0);
	hdr()->header_addr = 0x200020;
	hdr()->load_addr = 0x200000;
	hdr()->load_end_addr = 0x200100;
	hdr()->entry_addr = 0x200000;
	assert_int_equal(load(f, len), 0);
	assert_memory_equal(mem_ptr(&f->m, 0x200000, 0x100), img + HDR_OFF - 0x20, 0x100);
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x200100, 1), 0);
	assert_int_equal(f->e.image_hi, 0x200100);
}

static void test_info(void **state)
{
	struct fixture *f = *state;
	f->cmdline = "console=ttyS0 test=42";
	assert_int_equal(load(f, build_kludge(0x2, 0, 0, LOAD_ADDR)), 0);
	const uint64_t mbi = f->e.rbx;
	uint32_t flags = rd32(f, mbi);
	assert_int_equal(flags, (1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 9));
	assert_int_equal(rd32(f, mbi + 4), 636);                  /* mem_lower: up to the MP table */
	assert_int_equal(rd32(f, mbi + 8), (MIB(64) - MIB(1)) >> 10); /* mem_upper */
	assert_string_equal(str_at(f, rd32(f, mbi + 16)), "mb.bin console=ttyS0 test=42");
	assert_int_equal(rd32(f, mbi + 20), 0); /* mods_count */
	assert_string_equal(str_at(f, rd32(f, mbi + 64)), "hvmm");

	uint32_t mmap_len = rd32(f, mbi + 44), mmap = rd32(f, mbi + 48);
	assert_true(mmap >= BOOT_INFO && mmap + mmap_len <= BOOT_INFO + BOOT_INFO_SIZE);
	const struct { uint64_t addr, len; uint32_t type; } want[] = {
		{ 0, BOOT_MPTABLE, 1 },
		{ BOOT_MPTABLE, 0xa0000 - BOOT_MPTABLE, 2 },
		{ 0xf0000, 0x10000, 2 },
		{ MIB(1), MIB(63), 1 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 }, /* MMCONFIG, reserved */
	};
	assert_int_equal(mmap_len, 5 * 24);
	for (unsigned i = 0; i < 5; i++) {
		uint64_t e = mmap + i * 24;
		assert_int_equal(rd32(f, e), 20); /* size, not counting itself */
		assert_int_equal(rd64(f, e + 4), want[i].addr);
		assert_int_equal(rd64(f, e + 12), want[i].len);
		assert_int_equal(rd32(f, e + 20), want[i].type);
	}
}

static void test_info_without_cmdline_and_above_4g(void **state)
{
	(void)state;
	struct fixture f = { .cmdline = NULL };
	assert_int_equal(mem_init(&f.m, GIB(4)), 0); /* 3 GiB low, 1 GiB at [4, 5) GiB */
	assert_int_equal(load(&f, build_kludge(0, 0, 0, LOAD_ADDR)), 0);
	assert_int_equal(rd32(&f, BOOT_INFO + 8), (GIB(3) - MIB(1)) >> 10);
	assert_string_equal(str_at(&f, rd32(&f, BOOT_INFO + 16)), "mb.bin ");
	uint32_t mmap_len = rd32(&f, BOOT_INFO + 44), mmap = rd32(&f, BOOT_INFO + 48);
	assert_int_equal(mmap_len, 6 * 24);
	assert_int_equal(rd64(&f, mmap + 3 * 24 + 12), GIB(3) - MIB(1));
	assert_int_equal(rd64(&f, mmap + 4 * 24 + 4), PCI_ECAM_BASE);
	assert_int_equal(rd32(&f, mmap + 4 * 24 + 20), 2);
	assert_int_equal(rd64(&f, mmap + 5 * 24 + 4), GIB(4));
	assert_int_equal(rd64(&f, mmap + 5 * 24 + 12), GIB(1));
	assert_int_equal(rd32(&f, mmap + 5 * 24 + 20), 1);
	mem_free(&f.m);
}

static void test_modules(void **state)
{
	struct fixture *f = *state;
	const char *a = make_file(f, "initrd.img", 5000, 1);
	const char *b = make_file(f, "second", 100, 50);
	const char *c = make_file(f, "empty", 0, 0);
	f->mods[0] = (struct boot_module){ a, "root=/dev/ram0 quiet" };
	f->mods[1] = (struct boot_module){ b, NULL };
	f->mods[2] = (struct boot_module){ c, "" };
	f->nr_mods = 3;
	/* kernel (with bss) ends at 0x105001: modules start at the next page */
	assert_int_equal(load(f, build_kludge(0x1, 0, LOAD_ADDR + 0x5001, LOAD_ADDR)), 0);
	assert_int_equal(rd32(f, BOOT_INFO + 20), 3);
	uint32_t mods = rd32(f, BOOT_INFO + 24);
	assert_true(mods >= BOOT_INFO && mods + 48 <= BOOT_INFO + BOOT_INFO_SIZE);
	uint32_t s0 = rd32(f, mods), e0 = rd32(f, mods + 4);
	uint32_t s1 = rd32(f, mods + 16), e1 = rd32(f, mods + 20);
	uint32_t s2 = rd32(f, mods + 32), e2 = rd32(f, mods + 36);
	assert_int_equal(s0, LOAD_ADDR + 0x6000);
	assert_int_equal(e0, s0 + 5000);
	assert_int_equal(s1, LOAD_ADDR + 0x8000); /* page after 0x107388 */
	assert_int_equal(e1, s1 + 100);
	assert_int_equal(s2, LOAD_ADDR + 0x9000);
	assert_int_equal(e2, s2);
	const uint8_t *p = mem_ptr(&f->m, s0, 5000);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(p[i], (uint8_t)(1 + i));
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, s1 + 99, 1), (uint8_t)(50 + 99));
	char want[256];
	snprintf(want, sizeof(want), "%s root=/dev/ram0 quiet", a);
	assert_string_equal(str_at(f, rd32(f, mods + 8)), want);
	assert_string_equal(str_at(f, rd32(f, mods + 24)), b);
	snprintf(want, sizeof(want), "%s ", c);
	assert_string_equal(str_at(f, rd32(f, mods + 40)), want);
	assert_int_equal(rd32(f, BOOT_INFO) & (1u << 3), 1u << 3);
}

static void test_module_errors(void **state)
{
	struct fixture *f = *state;
	f->mods[0] = (struct boot_module){ tmpfile_path(f, "missing"), NULL };
	f->nr_mods = 1;
	size_t len = build_kludge(0, 0, 0, LOAD_ADDR);
	expect_fail(f, len, "cannot read module");
	expect_fail(f, len, "missing");
	/* 64 MiB of RAM, kernel at 1 MiB: a 64 MiB module cannot fit */
	f->mods[0] = (struct boot_module){ make_file(f, "huge", MIB(64), 0), NULL };
	expect_fail(f, len, "does not fit in guest RAM");
}

static void test_elf_multiboot(void **state)
{
	struct fixture *f = *state;
	memset(img, 0, sizeof(img));
	Elf32_Ehdr eh = { .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB,
				      EV_CURRENT },
			  .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
			  .e_entry = 0x30000c, .e_phoff = sizeof(eh), .e_ehsize = sizeof(eh),
			  .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 1 };
	Elf32_Phdr ph = { .p_type = PT_LOAD, .p_offset = 0x1000, .p_vaddr = 0xc0300000,
			  .p_paddr = 0x300000, .p_filesz = 0x1000, .p_memsz = 0x3000 };
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), &ph, sizeof(ph));
	uint32_t mh[3] = { MB_MAGIC, 0x3, 0u - MB_MAGIC - 0x3 };
	memcpy(img + 0x1000, mh, sizeof(mh));
	img[0x1fff] = 0x5a;
	assert_int_equal(boot_detect(img, 0x2000), BOOT_MULTIBOOT);
	assert_int_equal(load(f, 0x2000), 0);
	assert_int_equal(f->e.format, BOOT_MULTIBOOT);
	assert_int_equal(f->e.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->e.rip, 0x30000c);
	assert_int_equal(f->e.rax, MB_BOOT_MAGIC);
	assert_int_equal(f->e.rbx, BOOT_INFO);
	assert_int_equal(f->e.image_lo, 0x300000);
	assert_int_equal(f->e.image_hi, 0x303000);
	assert_int_equal(rd32(f, 0x300000), MB_MAGIC); /* loaded at p_paddr, not p_vaddr */
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x300fff, 1), 0x5a);

	/* A broken ELF under a valid multiboot header still fails cleanly. */
	((Elf32_Phdr *)(img + sizeof(eh)))->p_filesz = 0x4000;
	expect_fail(f, 0x2000, "p_filesz");
	((Elf32_Phdr *)(img + sizeof(eh)))->p_filesz = 0x1000;
	/* Below 0x1000 are the GDT and the boot stack. */
	((Elf32_Phdr *)(img + sizeof(eh)))->p_paddr = 0x800;
	expect_fail(f, 0x2000, "boot structures");
	/* An image over the info area (kvm-unit-tests' realmode loads at 0x8000)
	 * loads, and the info goes page-aligned after it: EBX says where. */
	((Elf32_Phdr *)(img + sizeof(eh)))->p_paddr = 0x8000;
	((Elf32_Ehdr *)img)->e_entry = 0x800c;
	assert_int_equal(load(f, 0x2000), 0);
	assert_int_equal(f->e.image_lo, 0x8000);
	assert_int_equal(f->e.image_hi, 0xb000); /* p_memsz 0x3000 */
	assert_int_equal(f->e.rbx, 0xb000);
	assert_int_equal(rd32(f, 0x8000), MB_MAGIC);
	assert_int_equal(rd32(f, 0xb000) & 0x1, 0x1); /* info flags: mem_* valid */
	/* No kludge and not ELF */
	memcpy(img, "MZ\0\0", 4);
	expect_fail(f, 0x2000, "not ELF");
}

static void test_bad_checksum(void **state)
{
	struct fixture *f = *state;
	size_t len = build_kludge(0, 0, 0, LOAD_ADDR);
	hdr()->checksum += 1;
	assert_int_equal(boot_detect(img, len), BOOT_FLAT);
	struct boot_params_in in = { .image = img, .image_len = len, .format = BOOT_MULTIBOOT };
	assert_int_equal(boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "no multiboot header"));
}

static void test_kludge_errors(void **state)
{
	struct fixture *f = *state;
	size_t len = build_kludge(0, LOAD_ADDR - 0x10, 0, LOAD_ADDR);
	expect_fail(f, len, "load_end_addr");

	/* header_addr - load_addr larger than the header's file offset */
	build_kludge(0, 0, 0, LOAD_ADDR);
	hdr()->load_addr = LOAD_ADDR - 0x1000;
	expect_fail(f, len, "before the beginning of the file");
	build_kludge(0, 0, 0, LOAD_ADDR);
	hdr()->load_addr = LOAD_ADDR + 0x1000; /* above header_addr */
	expect_fail(f, len, "above header_addr");

	/* load_end beyond the end of the file */
	build_kludge(0, LOAD_ADDR + 0x3001, 0, LOAD_ADDR);
	expect_fail(f, len, "beyond the");

	/* bss_end below load_end */
	build_kludge(0, LOAD_ADDR + 0x2000, LOAD_ADDR + 0x1000, LOAD_ADDR);
	expect_fail(f, len, "bss_end_addr");

	/* entry outside what was loaded */
	build_kludge(0, 0, 0, LOAD_ADDR + 0x3000);
	expect_fail(f, len, "entry_addr");

	/* loads over the boot structures / outside RAM */
	build_kludge(0, 0, 0, 0x800);
	hdr()->header_addr = 0x800 + HDR_OFF;
	hdr()->load_addr = 0x800;
	expect_fail(f, len, "boot structures");
	build_kludge(0, 0, 0, 0x3fff000);
	hdr()->header_addr = 0x3fff000 + HDR_OFF;
	hdr()->load_addr = 0x3fff000;
	expect_fail(f, len, "outside guest RAM");
	build_kludge(0, 0, 0xffffffff, LOAD_ADDR);
	expect_fail(f, len, "outside guest RAM");

	/* a kludge header cut short by the end of the file */
	build_kludge(0, 0, 0, LOAD_ADDR);
	memmove(img + 0x1000 - 16, img + HDR_OFF, 12);
	memset(img + HDR_OFF, 0, 12);
	expect_fail(f, 0x1000, "cut off");
}

static void test_unsupported_flags(void **state)
{
	struct fixture *f = *state;
	size_t len = build_kludge(0x3 | (1u << 3), 0, 0, LOAD_ADDR);
	expect_fail(f, len, "unsupported multiboot flags 0x8");
	build_kludge(0x7 | (1u << 15), 0, 0, LOAD_ADDR);
	expect_fail(f, len, "unsupported multiboot flags 0x8000");
	/* optional bits above 16 are fine, video (bit 2) is ignored */
	build_kludge(0x7 | (1u << 20), 0, 0, LOAD_ADDR);
	fix_checksum();
	assert_int_equal(load(f, len), 0);
}

static void test_info_overflow(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(BOOT_INFO_SIZE + 1);
	memset(big, 'x', BOOT_INFO_SIZE);
	big[BOOT_INFO_SIZE] = '\0';
	f->cmdline = big;
	size_t len = build_kludge(0, 0, 0, LOAD_ADDR);
	expect_fail(f, len, "does not fit");
	/* a command line that nearly fills the area still fits */
	big[BOOT_INFO_SIZE - 512] = '\0';
	assert_int_equal(load(f, len), 0);
	/* "mb.bin " (the image path, as QEMU passes it) + the command line */
	assert_int_equal(strlen(str_at(f, rd32(f, BOOT_INFO + 16))), 7 + BOOT_INFO_SIZE - 512);
	/* ...but not with long module strings on top */
	char args[601];
	memset(args, 'y', 600);
	args[600] = '\0';
	f->mods[0] = (struct boot_module){ make_file(f, "m", 10, 0), args };
	f->nr_mods = 1;
	assert_int_equal(load(f, len), -1);
	free(big);
	assert_non_null(strstr(f->err, "does not fit"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_kludge_loads),
		T(test_kludge_partial_load),
		T(test_info),
		cmocka_unit_test(test_info_without_cmdline_and_above_4g),
		T(test_modules),
		T(test_module_errors),
		T(test_elf_multiboot),
		T(test_bad_checksum),
		T(test_kludge_errors),
		T(test_unsupported_flags),
		T(test_info_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
