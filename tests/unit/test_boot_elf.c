/* ELF32/ELF64 loader: placement, entry state, page tables, and malformed images. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "load_error.h"
#include "memory.h"
#include "util.h"

#define DATA_OFF 0x1000 /* segment i's file bytes start at DATA_OFF + i * 0x1000 */

struct seg {
	uint32_t type;
	uint64_t paddr, filesz, memsz;
};

static _Alignas(8) uint8_t img[DATA_OFF + 8 * 0x1000];

/* Build a minimal ET_EXEC into img; segment i's bytes are (i + 1) * 0x11 + offset. */
static size_t build_elf(int cls, uint64_t entry, const struct seg *segs, int n)
{
	memset(img, 0, sizeof(img));
	size_t phoff = cls == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	unsigned char ident[EI_NIDENT] = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, (unsigned char)cls,
					   ELFDATA2LSB, EV_CURRENT };
	for (int i = 0; i < n; i++) {
		uint64_t off = DATA_OFF + (uint64_t)i * 0x1000;
		for (uint64_t b = 0; b < segs[i].filesz && b < 0x1000; b++)
			img[off + b] = (uint8_t)((i + 1) * 0x11 + b);
	}
	if (cls == ELFCLASS64) {
		Elf64_Ehdr e = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
				 .e_entry = entry, .e_phoff = phoff, .e_ehsize = sizeof(e),
				 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)n };
		memcpy(e.e_ident, ident, EI_NIDENT);
		memcpy(img, &e, sizeof(e));
		for (int i = 0; i < n; i++) {
			Elf64_Phdr p = { .p_type = segs[i].type, .p_offset = DATA_OFF + (uint64_t)i * 0x1000,
					 .p_vaddr = segs[i].paddr, .p_paddr = segs[i].paddr,
					 .p_filesz = segs[i].filesz, .p_memsz = segs[i].memsz };
			memcpy(img + phoff + i * sizeof(p), &p, sizeof(p));
		}
	} else {
		Elf32_Ehdr e = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
				 .e_entry = (uint32_t)entry, .e_phoff = (uint32_t)phoff, .e_ehsize = sizeof(e),
				 .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = (uint16_t)n };
		memcpy(e.e_ident, ident, EI_NIDENT);
		memcpy(img, &e, sizeof(e));
		for (int i = 0; i < n; i++) {
			Elf32_Phdr p = { .p_type = segs[i].type, .p_offset = DATA_OFF + (uint32_t)i * 0x1000,
					 .p_vaddr = (uint32_t)segs[i].paddr, .p_paddr = (uint32_t)segs[i].paddr,
					 .p_filesz = (uint32_t)segs[i].filesz, .p_memsz = (uint32_t)segs[i].memsz };
			memcpy(img + phoff + i * sizeof(p), &p, sizeof(p));
		}
	}
	return DATA_OFF + (size_t)n * 0x1000;
}

static Elf64_Ehdr *eh64(void) { return (Elf64_Ehdr *)img; }
static Elf64_Phdr *ph64(int i) { return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)) + i; }

struct fixture {
	struct guest_mem m;
	struct boot_entry e;
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || mem_init(&f->m, MIB(64)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mem_free(&f->m);
	free(f);
	return 0;
}

static int load(struct fixture *f, size_t len)
{
	struct boot_params_in in = { .image = img, .image_len = len, .image_path = "t.elf", .ncpus = 1 };
	f->err[0] = '\0';
	return boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err));
}


static void test_elf64_loads(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = {
		{ PT_LOAD, 0x100000, 0x100, 0x2000 },
		{ PT_NOTE, 0x0, 0x10, 0x10 }, /* not loaded even though it points at page 0 */
		{ PT_LOAD, 0x200000, 0x80, 0x80 },
	};
	size_t len = build_elf(ELFCLASS64, 0x100010, s, 3);
	memset(mem_ptr(&f->m, 0x100000, 0x2000), 0xee, 0x2000); /* bss must come back zeroed */
	assert_int_equal(load(f, len), 0);
	assert_int_equal(f->e.format, BOOT_ELF);
	assert_int_equal(f->e.mode, BOOT_MODE_LONG64);
	assert_int_equal(f->e.rip, 0x100010);
	assert_int_equal(f->e.rsp, BOOT_STACK_TOP);
	assert_int_equal(f->e.cr3, BOOT_PML4);
	assert_int_equal(f->e.image_lo, 0x100000);
	assert_int_equal(f->e.image_hi, 0x200080);
	const uint8_t *p = mem_ptr(&f->m, 0x100000, 0x2000);
	assert_int_equal(p[0], 0x11);
	assert_int_equal(p[0xff], (uint8_t)(0x11 + 0xff));
	for (int i = 0x100; i < 0x2000; i++)
		assert_int_equal(p[i], 0);
	p = mem_ptr(&f->m, 0x200000, 0x80);
	assert_int_equal(p[0], 0x33);
	assert_int_equal(p[0x7f], (uint8_t)(0x33 + 0x7f));
	/* The PT_NOTE "at" address 0 left the real-mode IVT area alone. */
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x10, 1), 0);
}

static void test_elf64_page_tables_and_gdt(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 } };
	assert_int_equal(load(f, build_elf(ELFCLASS64, 0x100000, s, 1)), 0);
	uint64_t *pml4 = mem_ptr(&f->m, BOOT_PML4, 4096);
	uint64_t *pdpt = mem_ptr(&f->m, BOOT_PML4 + 0x1000, 4096);
	assert_int_equal(pml4[0] & ~0xfffull, BOOT_PML4 + 0x1000);
	assert_int_equal(pml4[0] & 3, 3);
	assert_int_equal(pml4[1], 0);
	/* 64 MiB of RAM, but 4 GiB are mapped so the LAPIC/IOAPIC are reachable. */
	for (int g = 0; g < 4; g++)
		assert_int_equal(pdpt[g] & ~0xfffull, BOOT_PML4 + 0x2000 + g * 0x1000ull);
	assert_int_equal(pdpt[4], 0);
	uint64_t *pd3 = mem_ptr(&f->m, BOOT_PML4 + 0x5000, 4096);
	uint64_t lapic = pd3[(0xfee00000ull >> 21) & 511];
	assert_int_equal(lapic & ~0x1fffffull, 0xfee00000ull);
	assert_true(lapic & (1 << 7)); /* 2 MiB page */
	uint64_t *pd0 = mem_ptr(&f->m, BOOT_PML4 + 0x2000, 4096);
	assert_int_equal(pd0[1] & ~0x1fffffull, 0x200000);
	uint64_t *gdt = mem_ptr(&f->m, BOOT_GDT, 40);
	assert_int_equal(gdt[0], 0);
	assert_true(gdt[2] & (1ull << 53));  /* 0x10: L=1 in long mode */
	assert_false(gdt[2] & (1ull << 54)); /* and D=0 */
	assert_true(gdt[4] & (1ull << 53));  /* 0x20: code64 */
	assert_false(gdt[1] & (1ull << 53)); /* 0x08: code32 */
}

static void test_page_tables_above_4g(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(mem_init(&m, GIB(5)), 0); /* 3 GiB low + 2 GiB at [4, 6) GiB */
	uint64_t cr3 = 0;
	assert_int_equal(boot_x86_write_page_tables(&m, &cr3), 0);
	assert_int_equal(cr3, BOOT_PML4);
	uint64_t *pdpt = mem_ptr(&m, BOOT_PML4 + 0x1000, 4096);
	assert_int_not_equal(pdpt[5], 0);
	assert_int_equal(pdpt[6], 0);
	uint64_t *pd5 = mem_ptr(&m, BOOT_PML4 + 0x2000 + 5 * 0x1000, 4096);
	assert_int_equal(pd5[511] & ~0x1fffffull, GIB(6) - MIB(2));
	mem_free(&m);

	/* More address space than BOOT_PT_MAX_GIB: fake a region RAM can't really have. */
	assert_int_equal(mem_init(&m, MIB(4)), 0);
	m.regions[1] = (struct mem_region){ .gpa = GIB(4), .size = GIB(BOOT_PT_MAX_GIB), .hva = NULL };
	m.nr_regions = 2;
	assert_int_equal(boot_x86_write_page_tables(&m, &cr3), -1);
	m.nr_regions = 1;
	mem_free(&m);
}

static void test_elf32_loads(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x400000, 0x40, 0x1000 } };
	size_t len = build_elf(ELFCLASS32, 0x400020, s, 1);
	assert_int_equal(load(f, len), 0);
	assert_int_equal(f->e.format, BOOT_ELF);
	assert_int_equal(f->e.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->e.rip, 0x400020);
	assert_int_equal(f->e.rsp, BOOT_STACK_TOP);
	assert_int_equal(f->e.image_lo, 0x400000);
	assert_int_equal(f->e.image_hi, 0x401000);
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x40003f, 1), (uint8_t)(0x11 + 0x3f));
	uint64_t *gdt = mem_ptr(&f->m, BOOT_GDT, 40);
	assert_false(gdt[2] & (1ull << 53)); /* 0x10: 32-bit outside long mode */
	assert_true(gdt[2] & (1ull << 54));
	assert_int_equal(gdt[3] & 0xff0000000000ull, 0x930000000000ull); /* 0x18: data */
}

static void test_truncated_header(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 } };
	build_elf(ELFCLASS64, 0x100000, s, 1);
	expect_fail(f, 40, "truncated");
	build_elf(ELFCLASS32, 0x100000, s, 1);
	expect_fail(f, 20, "truncated");
}

static void test_phdrs_past_eof(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 } };
	size_t len = build_elf(ELFCLASS64, 0x100000, s, 1);
	eh64()->e_phoff = len - 8;
	expect_fail(f, len, "program headers");
	eh64()->e_phoff = UINT64_MAX - 8; /* offset + size wraps */
	expect_fail(f, len, "program headers");
	build_elf(ELFCLASS64, 0x100000, s, 1);
	eh64()->e_phnum = 60000;
	expect_fail(f, len, "program headers");
	build_elf(ELFCLASS64, 0x100000, s, 1);
	eh64()->e_phentsize = 8;
	expect_fail(f, len, "e_phentsize");
}

static void test_segment_past_eof(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 } };
	size_t len = build_elf(ELFCLASS64, 0x100000, s, 1);
	ph64(0)->p_offset = len - 4;
	expect_fail(f, len, "outside the");
	ph64(0)->p_offset = UINT64_MAX - 4;
	expect_fail(f, len, "outside the");
}

static void test_filesz_above_memsz(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x20, 0x10 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, s, 1), "p_filesz 0x20 > p_memsz 0x10");
}

static void test_segment_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 }, { PT_LOAD, 0x3ff0000, 0x10, 0x20000 } };
	memset(mem_ptr(&f->m, 0x100000, 1), 0xee, 1);
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, s, 2),
		    "ELF segment 1 [0x3ff0000, 0x4010000) lies outside guest RAM (64 MiB)");
	/* validated before anything was copied */
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x100000, 1), 0xee);
	struct seg wrap[] = { { PT_LOAD, UINT64_MAX - 0xfff, 0, 0x2000 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, wrap, 1), "outside guest RAM");
	struct seg hole[] = { { PT_LOAD, 0xfee00000, 0, 0x1000 } };
	expect_fail(f, build_elf(ELFCLASS32, 0x100000, hole, 1), "outside guest RAM");
}

static void test_segment_over_boot_structures(void **state)
{
	struct fixture *f = *state;
	struct seg pt[] = { { PT_LOAD, BOOT_PML4, 0x10, 0x10 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, pt, 1), "boot structures");
	struct seg info[] = { { PT_LOAD, 0x4000, 0, 0x2000 } }; /* bss reaching into the info area */
	expect_fail(f, build_elf(ELFCLASS32, 0x100000, info, 1), "boot structures");
	struct seg edge[] = { { PT_LOAD, BOOT_RESERVED_END - 1, 0x10, 0x10 } };
	expect_fail(f, build_elf(ELFCLASS32, 0x100000, edge, 1), "boot structures");
	struct seg mp[] = { { PT_LOAD, 0x90000, 0x10, BOOT_MPTABLE - 0x90000 + 1 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, mp, 1), "boot structures");
	struct seg fp[] = { { PT_LOAD, BOOT_MPTABLE_FP, 0x10, 0x10 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, fp, 1), "boot structures");
	/* right up to, and right after, the reserved areas is fine */
	struct seg ok[] = { { PT_LOAD, BOOT_RESERVED_END, 0x10, 0x10 },
			    { PT_LOAD, 0x90000, 0, BOOT_MPTABLE - 0x90000 },
			    { PT_LOAD, BOOT_MPTABLE_END, 0x10, 0x10 } };
	assert_int_equal(load(f, build_elf(ELFCLASS64, 0x100000, ok, 3)), 0);
}

static void test_no_pt_load(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_NOTE, 0x100000, 0x10, 0x10 } };
	expect_fail(f, build_elf(ELFCLASS64, 0x100000, s, 1), "no loadable");
	expect_fail(f, build_elf(ELFCLASS32, 0x100000, s, 0), "no loadable");
}

static void test_wrong_machine_and_type(void **state)
{
	struct fixture *f = *state;
	struct seg s[] = { { PT_LOAD, 0x100000, 0x10, 0x10 } };
	size_t len = build_elf(ELFCLASS64, 0x100000, s, 1);
	eh64()->e_machine = EM_386;
	expect_fail(f, len, "machine");
	eh64()->e_machine = EM_AARCH64;
	expect_fail(f, len, "machine");
	build_elf(ELFCLASS64, 0x100000, s, 1);
	eh64()->e_type = ET_DYN;
	expect_fail(f, len, "ET_EXEC");
	build_elf(ELFCLASS64, 0x100000, s, 1);
	img[EI_DATA] = ELFDATA2MSB;
	expect_fail(f, len, "little-endian");
	build_elf(ELFCLASS64, 0x100000, s, 1);
	img[EI_CLASS] = 7;
	expect_fail(f, len, "class");
	len = build_elf(ELFCLASS32, 0x100000, s, 1);
	((Elf32_Ehdr *)img)->e_machine = EM_X86_64;
	expect_fail(f, len, "machine");
}

static void test_forced_elf_on_garbage(void **state)
{
	struct fixture *f = *state;
	memset(img, 0x90, 256);
	struct boot_params_in in = { .image = img, .image_len = 256, .format = BOOT_ELF };
	assert_int_equal(boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "not an ELF"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elf64_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf64_page_tables_and_gdt, setup, teardown),
		cmocka_unit_test(test_page_tables_above_4g),
		cmocka_unit_test_setup_teardown(test_elf32_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_phdrs_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filesz_above_memsz, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_over_boot_structures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_pt_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_machine_and_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced_elf_on_garbage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
