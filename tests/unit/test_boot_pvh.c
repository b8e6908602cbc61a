/* PVH loader: note detection, hvm_start_info, memory map, malformed notes. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pci.h"
#include "boot/boot.h"
#include "load_error.h"
#include "memory.h"
#include "util.h"

#define NOTE_OFF 0x800
#define DATA_OFF 0x1000
#define IMG_LEN 0x2000
#define ENTRY 0x100040u

static _Alignas(8) uint8_t img[IMG_LEN];
static size_t note_len;

static void put32(size_t off, uint32_t v) { memcpy(img + off, &v, 4); }

/* Append one note at NOTE_OFF + note_len: name padded to 4, desc padded to 4. */
static void add_note(const char *name, uint32_t namesz, uint32_t type, const void *desc,
		     uint32_t descsz)
{
	size_t o = NOTE_OFF + note_len;
	put32(o, namesz);
	put32(o + 4, descsz);
	put32(o + 8, type);
	memcpy(img + o + 12, name, strlen(name) + 1);
	o += 12 + ((namesz + 3u) & ~3u);
	memcpy(img + o, desc, descsz);
	note_len = o + ((descsz + 3u) & ~3u) - NOTE_OFF;
}

/* ELF64 (or ELF32): PT_LOAD 0x100 bytes at 0x100000, PT_NOTE over the notes added after. */
static void build(int cls)
{
	memset(img, 0, sizeof(img));
	note_len = 0;
	unsigned char ident[EI_NIDENT] = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, (unsigned char)cls,
					   ELFDATA2LSB, EV_CURRENT };
	for (int b = 0; b < 0x100; b++)
		img[DATA_OFF + b] = (uint8_t)(0x40 + b);
	if (cls == ELFCLASS64) {
		Elf64_Ehdr e = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
				 .e_entry = 0xffffffff81000000ull, .e_phoff = sizeof(e), .e_ehsize = sizeof(e),
				 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2 };
		memcpy(e.e_ident, ident, EI_NIDENT);
		memcpy(img, &e, sizeof(e));
		Elf64_Phdr p[2] = {
			{ .p_type = PT_LOAD, .p_offset = DATA_OFF, .p_paddr = 0x100000, .p_filesz = 0x100,
			  .p_memsz = 0x1000 },
			{ .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_align = 4 },
		};
		memcpy(img + sizeof(e), p, sizeof(p));
	} else {
		Elf32_Ehdr e = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
				 .e_entry = 0x100000, .e_phoff = sizeof(e), .e_ehsize = sizeof(e),
				 .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 2 };
		memcpy(e.e_ident, ident, EI_NIDENT);
		memcpy(img, &e, sizeof(e));
		Elf32_Phdr p[2] = {
			{ .p_type = PT_LOAD, .p_offset = DATA_OFF, .p_paddr = 0x100000, .p_filesz = 0x100,
			  .p_memsz = 0x1000 },
			{ .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_align = 4 },
		};
		memcpy(img + sizeof(e), p, sizeof(p));
	}
}

/* Set the PT_NOTE's file size (after the notes are added). */
static void set_note_size(int cls, uint64_t size)
{
	if (cls == ELFCLASS64) {
		Elf64_Phdr p;
		memcpy(&p, img + sizeof(Elf64_Ehdr) + sizeof(p), sizeof(p));
		p.p_filesz = p.p_memsz = size;
		memcpy(img + sizeof(Elf64_Ehdr) + sizeof(p), &p, sizeof(p));
	} else {
		Elf32_Phdr p;
		memcpy(&p, img + sizeof(Elf32_Ehdr) + sizeof(p), sizeof(p));
		p.p_filesz = p.p_memsz = (uint32_t)size;
		memcpy(img + sizeof(Elf32_Ehdr) + sizeof(p), &p, sizeof(p));
	}
}

static void build_pvh(int cls)
{
	build(cls);
	uint8_t id[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	add_note("GNU", 4, 3, id, sizeof(id)); /* skipped */
	uint32_t entry = ENTRY;
	add_note("Xen", 4, 18, &entry, 4);
	set_note_size(cls, note_len);
}

struct fixture {
	struct guest_mem m;
	struct boot_entry e;
	char err[256];
	enum boot_format fmt;
	const char *cmdline;
};

static int setup_size(void **state, uint64_t size)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || mem_init(&f->m, size) < 0)
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_size(state, MIB(128)); }
static int setup_5g(void **state) { return setup_size(state, 5ull << 30); }

static int teardown(void **state)
{
	struct fixture *f = *state;
	mem_free(&f->m);
	free(f);
	return 0;
}

static int load(struct fixture *f, size_t len)
{
	struct boot_params_in in = { .image = img, .image_len = len, .image_path = "t.elf", .ncpus = 1,
				     .format = f->fmt, .cmdline = f->cmdline,
				     .acpi_rsdp = BOOT_ACPI_RSDP };
	f->err[0] = '\0';
	return boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err));
}

struct start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static void check_start_info(struct fixture *f, const struct memmap_entry *want, uint32_t nwant)
{
	struct start_info si;
	assert_int_equal(mem_read(&f->m, f->e.rbx, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578u);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.rsdp_paddr, BOOT_ACPI_RSDP);
	assert_true(si.cmdline_paddr >= BOOT_INFO && si.cmdline_paddr < BOOT_INFO + BOOT_INFO_SIZE);
	assert_string_equal((const char *)mem_ptr(&f->m, si.cmdline_paddr, 1), "console=ttyS0 quiet");
	assert_int_equal(si.memmap_entries, nwant);
	assert_true(si.memmap_paddr >= BOOT_INFO && si.memmap_paddr < BOOT_INFO + BOOT_INFO_SIZE);
	for (uint32_t i = 0; i < nwant; i++) {
		struct memmap_entry e;
		assert_int_equal(mem_read(&f->m, si.memmap_paddr + i * sizeof(e), &e, sizeof(e)), 0);
		assert_int_equal(e.addr, want[i].addr);
		assert_int_equal(e.size, want[i].size);
		assert_int_equal(e.type, want[i].type);
	}
}

static void test_pvh64_loads(void **state)
{
	struct fixture *f = *state;
	build_pvh(ELFCLASS64);
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_PVH);
	f->cmdline = "console=ttyS0 quiet";
	assert_int_equal(load(f, IMG_LEN), 0);
	assert_int_equal(f->e.format, BOOT_PVH);
	assert_int_equal(f->e.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->e.rip, ENTRY);
	assert_int_equal(f->e.rbx, BOOT_INFO);
	assert_int_equal(f->e.image_lo, 0x100000);
	assert_int_equal(f->e.image_hi, 0x101000);
	assert_int_equal(*(uint8_t *)mem_ptr(&f->m, 0x100040, 1), 0x80);
	const struct memmap_entry want[] = {
		{ 0, BOOT_MPTABLE, 1, 0 },
		{ BOOT_MPTABLE, MIB(1) - BOOT_MPTABLE, 2, 0 },
		{ MIB(1), MIB(127), 1, 0 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2, 0 },
	};
	check_start_info(f, want, 4);
}

static void test_pvh_5g_memmap(void **state)
{
	struct fixture *f = *state;
	build_pvh(ELFCLASS64);
	f->cmdline = "console=ttyS0 quiet";
	assert_int_equal(load(f, IMG_LEN), 0);
	const struct memmap_entry want[] = {
		{ 0, BOOT_MPTABLE, 1, 0 },
		{ BOOT_MPTABLE, MIB(1) - BOOT_MPTABLE, 2, 0 },
		{ MIB(1), MEM_HOLE_START - MIB(1), 1, 0 },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2, 0 },
		{ MEM_HOLE_END, (5ull << 30) - MEM_HOLE_START, 1, 0 },
	};
	check_start_info(f, want, 5);
}

static void test_pvh32_and_forced(void **state)
{
	struct fixture *f = *state;
	build_pvh(ELFCLASS32);
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_PVH);
	assert_int_equal(load(f, IMG_LEN), 0);
	assert_int_equal(f->e.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->e.rip, ENTRY);
	struct start_info si;
	assert_int_equal(mem_read(&f->m, f->e.rbx, &si, sizeof(si)), 0);
	assert_int_equal(si.cmdline_paddr, 0); /* no command line */
	/* --boot elf still loads it as a plain ELF */
	f->fmt = BOOT_ELF;
	assert_int_equal(load(f, IMG_LEN), 0);
	assert_int_equal(f->e.format, BOOT_ELF);
	assert_int_equal(f->e.rip, 0x100000);
	enum boot_format fmt;
	assert_int_equal(boot_format_parse("pvh", &fmt), 0);
	assert_int_equal(fmt, BOOT_PVH);
	assert_string_equal(boot_format_name(BOOT_PVH), "pvh");
}

static void test_no_note_stays_elf(void **state)
{
	struct fixture *f = *state;
	build(ELFCLASS64);
	uint8_t id[8] = { 0 };
	add_note("GNU", 4, 3, id, sizeof(id));
	uint32_t entry = ENTRY;
	add_note("Xen", 4, 17, &entry, 4); /* another Xen note type */
	add_note("Xe", 3, 18, &entry, 4);  /* type 18, other name */
	set_note_size(ELFCLASS64, note_len);
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_ELF);
	assert_int_equal(load(f, IMG_LEN), 0);
	assert_int_equal(f->e.format, BOOT_ELF);
	f->fmt = BOOT_PVH;
	expect_fail(f, IMG_LEN, "no PVH entry note");
}

static void test_malformed_notes(void **state)
{
	struct fixture *f = *state;
	uint32_t entry = ENTRY;
	f->fmt = BOOT_PVH;

	/* an 8-byte desc (how Linux emits it on x86-64) loads; above 4 GiB it is
	 * refused; another size is still detected (so the error is seen), refused */
	build(ELFCLASS64);
	uint64_t e64 = ENTRY;
	add_note("Xen", 4, 18, &e64, 8);
	set_note_size(ELFCLASS64, note_len);
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_PVH);
	assert_int_equal(load(f, IMG_LEN), 0);
	assert_int_equal(f->e.rip, ENTRY);
	build(ELFCLASS64);
	e64 = 0x100000000ull + ENTRY;
	add_note("Xen", 4, 18, &e64, 8);
	set_note_size(ELFCLASS64, note_len);
	expect_fail(f, IMG_LEN, "above 4 GiB");
	build(ELFCLASS64);
	uint16_t e16 = 0x1234;
	add_note("Xen", 4, 18, &e16, 2);
	set_note_size(ELFCLASS64, note_len);
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_PVH);
	f->fmt = BOOT_AUTO;
	expect_fail(f, IMG_LEN, "2-byte desc");
	f->fmt = BOOT_PVH;

	/* segment cut inside the note header */
	build_pvh(ELFCLASS64);
	set_note_size(ELFCLASS64, 20 + 8);
	expect_fail(f, IMG_LEN, "truncated");
	assert_int_equal(boot_detect(img, IMG_LEN), BOOT_ELF);

	/* namesz past the segment */
	build(ELFCLASS64);
	add_note("Xen", 4, 18, &entry, 4);
	put32(NOTE_OFF, 0x1000);
	set_note_size(ELFCLASS64, note_len);
	expect_fail(f, IMG_LEN, "namesz");
	put32(NOTE_OFF, 0xfffffffdu); /* would wrap a 32-bit sum */
	expect_fail(f, IMG_LEN, "namesz");

	/* descsz past the segment */
	build(ELFCLASS64);
	add_note("Xen", 4, 18, &entry, 4);
	put32(NOTE_OFF + 4, 0xffffffffu);
	set_note_size(ELFCLASS64, note_len);
	expect_fail(f, IMG_LEN, "descsz");
	put32(NOTE_OFF + 4, 8);
	expect_fail(f, IMG_LEN, "descsz");

	/* note segment outside the file */
	build_pvh(ELFCLASS64);
	set_note_size(ELFCLASS64, IMG_LEN);
	expect_fail(f, IMG_LEN, "outside");
	expect_fail(f, NOTE_OFF + 16, "outside");

	/* a bad PT_LOAD is still refused by the ELF checks */
	build_pvh(ELFCLASS32);
	Elf32_Phdr p;
	memcpy(&p, img + sizeof(Elf32_Ehdr), sizeof(p));
	p.p_paddr = 0x5000; /* over the boot structures */
	memcpy(img + sizeof(Elf32_Ehdr), &p, sizeof(p));
	expect_fail(f, IMG_LEN, "boot structures");
}

static void test_modules(void **state)
{
	struct fixture *f = *state;
	build_pvh(ELFCLASS64);
	char path[] = "/tmp/hvmm-pvh-mod-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "module!", 7), 7);
	close(fd);
	struct boot_module mods[2] = { { path, "arg one" }, { path, NULL } };
	struct boot_params_in in = { .image = img, .image_len = IMG_LEN, .image_path = "t.elf",
				     .ncpus = 1, .modules = mods, .nr_modules = 2 };
	int rc = boot_load(&f->m, &in, &f->e, f->err, sizeof(f->err));
	unlink(path);
	assert_int_equal(rc, 0);
	struct start_info si;
	assert_int_equal(mem_read(&f->m, f->e.rbx, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 2);
	assert_int_equal(si.rsdp_paddr, 0);
	uint64_t ml[8];
	assert_int_equal(mem_read(&f->m, si.modlist_paddr, ml, sizeof(ml)), 0);
	assert_int_equal(ml[0], 0x101000);
	assert_int_equal(ml[1], 7);
	assert_string_equal((const char *)mem_ptr(&f->m, ml[2], 1), "arg one");
	assert_int_equal(ml[4], 0x102000);
	assert_int_equal(ml[6], 0);
	assert_memory_equal(mem_ptr(&f->m, 0x102000, 7), "module!", 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pvh64_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_5g_memmap, setup_5g, teardown),
		cmocka_unit_test_setup_teardown(test_pvh32_and_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_note_stays_elf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_notes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modules, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
