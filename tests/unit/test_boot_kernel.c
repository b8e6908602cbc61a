/* boot_load()'s Linux path: bzImage detection, host-side decompression of the
 * payload into a vmlinux, and --no-decompress booting the bzImage itself. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "util.h"

#define LOAD 0x1000000u /* pref_address and the vmlinux's p_paddr */
#define ENTRY_OFF 0x40

static size_t gzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = z.total_out;
	deflateEnd(&z);
	return len;
}

/* An x86-64 executable's ELF header at b: entry LOAD + ENTRY_OFF, phnum
 * program headers right after it. */
static void put_ehdr(uint8_t *b, unsigned phnum)
{
	Elf64_Ehdr *e = (Elf64_Ehdr *)b;
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = LOAD + ENTRY_OFF;
	e->e_phoff = sizeof(*e);
	e->e_ehsize = sizeof(*e);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = (uint16_t)phnum;
}

/* A minimal vmlinux: one PT_LOAD of 4 KiB at LOAD, entry LOAD + ENTRY_OFF. */
static size_t make_vmlinux(uint8_t *b)
{
	memset(b, 0, 0x2000);
	put_ehdr(b, 1);
	Elf64_Phdr *p = (Elf64_Phdr *)(b + sizeof(Elf64_Ehdr));
	p->p_type = PT_LOAD;
	p->p_offset = 0x1000;
	p->p_vaddr = p->p_paddr = LOAD;
	p->p_filesz = p->p_memsz = 0x1000;
	for (int i = 0; i < 0x1000; i++)
		b[0x1000 + i] = (uint8_t)(i * 7 + 1);
	return 0x2000;
}

static void put16(uint8_t *b, size_t off, uint16_t v) { memcpy(b + off, &v, 2); }
static void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* bzImage: one setup sector after the boot sector, then the protected-mode
 * part, which starts with the compressed payload (payload_offset 0). */
static size_t make_bzimage(uint8_t *b, size_t cap, const uint8_t *payload, size_t plen)
{
	const size_t kern = 2 * 512;
	assert_true(kern + plen + 4 <= cap);
	memset(b, 0, kern);
	b[0x1f1] = 1;                    /* setup_sects */
	put16(b, 0x1fe, 0xaa55);         /* boot_flag */
	b[0x200] = 0xeb;                 /* jump over the header ... */
	b[0x201] = 0x268 - 0x202;        /* ... whose length reaches the 2.12 fields */
	memcpy(b + 0x202, "HdrS", 4);
	put16(b, 0x206, 0x020f);         /* protocol 2.15 */
	b[0x211] = 0x01;                 /* loadflags: LOADED_HIGH */
	put32(b, 0x22c, 0x7fffffff);     /* initrd_addr_max */
	put32(b, 0x230, 0x200000);       /* kernel_alignment */
	b[0x234] = 1;                    /* relocatable_kernel */
	put16(b, 0x236, 1);              /* xloadflags: XLF_KERNEL_64 */
	put32(b, 0x238, 2048);           /* cmdline_size */
	put32(b, 0x248, 0);              /* payload_offset */
	put32(b, 0x24c, (uint32_t)plen); /* payload_length */
	put64(b, 0x258, LOAD);           /* pref_address */
	put32(b, 0x260, 0x400000);       /* init_size */
	memcpy(b + kern, payload, plen);
	put32(b, kern + plen, 0x2000);   /* the decompressed size, as the kernel appends it */
	return kern + plen + 4;
}

static uint8_t vml[0x2000], gz[0x4000], img[0x8000];

static int load(struct guest_mem *m, size_t len, bool no_decompress, struct boot_entry *e, char *err)
{
	struct boot_params_in in = { .image = img, .image_len = len, .image_path = "bz",
				     .cmdline = "console=ttyS0", .ncpus = 1,
				     .no_decompress = no_decompress };
	return boot_load(m, &in, e, err, 256);
}

static void test_detect(void **state)
{
	(void)state;
	size_t n = make_bzimage(img, sizeof(img), (const uint8_t *)"x", 1);
	assert_true(boot_is_bzimage(img, n));
	assert_int_equal(boot_detect(img, n), BOOT_LINUX);
	assert_false(boot_is_bzimage(img, 0x205));
	assert_false(boot_is_bzimage(NULL, 0));
	img[0x204] = 'X';
	assert_false(boot_is_bzimage(img, n));
	enum boot_format f;
	assert_int_equal(boot_format_parse("linux", &f), 0);
	assert_int_equal(f, BOOT_LINUX);
	assert_string_equal(boot_format_name(BOOT_LINUX), "linux");
}

static void test_host_decompress(void **state)
{
	(void)state;
	size_t vn = make_vmlinux(vml);
	size_t gn = gzip(vml, vn, gz, sizeof(gz));
	size_t n = make_bzimage(img, sizeof(img), gz, gn);
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(64)), 0);
	struct boot_entry e;
	char err[256] = "";
	assert_int_equal(load(&m, n, false, &e, err), 0);
	/* the vmlinux inside was booted: its segment at p_paddr, its entry */
	assert_memory_equal(mem_ptr(&m, LOAD, 0x1000), vml + 0x1000, 0x1000);
	assert_int_equal(e.format, BOOT_LINUX);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, LOAD + ENTRY_OFF);
	assert_int_equal(e.rsi, BOOT_LINUX_PARAMS);
	mem_free(&m);
}

static void test_no_decompress(void **state)
{
	(void)state;
	size_t vn = make_vmlinux(vml);
	size_t gn = gzip(vml, vn, gz, sizeof(gz));
	size_t n = make_bzimage(img, sizeof(img), gz, gn);
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(64)), 0);
	struct boot_entry e;
	char err[256] = "";
	assert_int_equal(load(&m, n, true, &e, err), 0);
	/* the bzImage's protected-mode part itself, entered at its 64-bit entry */
	assert_memory_equal(mem_ptr(&m, LOAD, gn), gz, gn);
	assert_int_equal(e.rip, LOAD + 0x200);
	assert_int_equal(e.format, BOOT_LINUX);
	mem_free(&m);
}

static void test_payload_not_elf(void **state)
{
	(void)state;
	uint8_t junk[0x800];
	memset(junk, 'j', sizeof(junk));
	size_t gn = gzip(junk, sizeof(junk), gz, sizeof(gz));
	size_t n = make_bzimage(img, sizeof(img), gz, gn);
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(64)), 0);
	struct boot_entry e;
	char err[256] = "";
	assert_int_equal(load(&m, n, false, &e, err), -1);
	assert_non_null(strstr(err, "not decompress to an ELF"));
	/* a corrupt payload is an error, not a crash */
	n = make_bzimage(img, sizeof(img), gz, gn / 2);
	assert_int_equal(load(&m, n, false, &e, err), -1);
	mem_free(&m);
}

/*
 * The streaming loader (the decompressor's output straight into guest RAM,
 * src/boot/elf.c) against the whole-image loader on the same vmlinux: a
 * 3 MiB file, so the output comes in several windows, two segments apart in
 * the file and in RAM, the first with a zeroed tail (.bss), file bytes
 * between them that go nowhere.
 */
#define BIG_FILE 0x320000u
static uint8_t *make_big_vmlinux(int overlap, uint64_t seg2_filesz)
{
	uint8_t *b = calloc(1, BIG_FILE);
	assert_non_null(b);
	put_ehdr(b, 3);
	Elf64_Phdr *p = (Elf64_Phdr *)(b + sizeof(Elf64_Ehdr));
	p[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x1000, .p_paddr = LOAD, .p_vaddr = LOAD,
			     .p_filesz = 0x180000, .p_memsz = 0x183000 };
	p[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x1c0000, .p_filesz = 0x100 };
	p[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x200000,
			     .p_paddr = overlap ? LOAD + 0x100000 : LOAD + 0x400000,
			     .p_filesz = seg2_filesz, .p_memsz = 0x120000 };
	p[2].p_vaddr = p[2].p_paddr;
	uint32_t x = 12345;
	for (size_t i = 0x1000; i < BIG_FILE; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16 & 0x0f); /* compressible, not trivial */
	}
	return b;
}

/* Load vm as a bzImage (the streaming path) into a, and as a plain vmlinux
 * (the whole-image path) into b, RAM filled with 0xaa first; return both rcs. */
static void load_both(const uint8_t *vm, struct guest_mem *a, struct guest_mem *b, int *ra, int *rb,
		      char *erra, char *errb)
{
	uint8_t *gzb = malloc(BIG_FILE), *bz = malloc(BIG_FILE + 0x1000);
	assert_non_null(gzb);
	assert_non_null(bz);
	size_t gn = gzip(vm, BIG_FILE, gzb, BIG_FILE);
	size_t n = make_bzimage(bz, BIG_FILE + 0x1000, gzb, gn);
	assert_int_equal(mem_init(a, MIB(64)), 0);
	assert_int_equal(mem_init(b, MIB(64)), 0);
	memset(mem_ptr(a, 0, MIB(64)), 0xaa, MIB(64));
	memset(mem_ptr(b, 0, MIB(64)), 0xaa, MIB(64));
	struct boot_entry e;
	struct boot_params_in in = { .image = bz, .image_len = n, .image_path = "bz",
				     .cmdline = "console=ttyS0", .ncpus = 1 };
	*ra = boot_load(a, &in, &e, erra, 256);
	struct boot_linux_in li = { .kernel = vm, .kernel_len = BIG_FILE, .cmdline = "console=ttyS0" };
	*rb = boot_load_linux(b, &li, &e, errb, 256);
	free(gzb);
	free(bz);
}

static void test_streamed_as_whole(void **state)
{
	(void)state;
	for (int overlap = 0; overlap < 2; overlap++) {
		uint8_t *vm = make_big_vmlinux(overlap, 0x110000);
		struct guest_mem a, b;
		int ra, rb;
		char erra[256] = "", errb[256] = "";
		load_both(vm, &a, &b, &ra, &rb, erra, errb);
		assert_int_equal(ra, 0);
		assert_int_equal(rb, 0);
		/* the kernel's whole span and beyond, byte for byte (the
		 * overlapping image is declined by the streaming loader and loaded
		 * whole: the same result) */
		assert_memory_equal(mem_ptr(&a, LOAD, 0x600000), mem_ptr(&b, LOAD, 0x600000), 0x600000);
		if (!overlap) {
			assert_memory_equal(mem_ptr(&a, LOAD, 0x180000), vm + 0x1000, 0x180000);
			const uint8_t *bss = mem_ptr(&a, LOAD + 0x180000, 0x3001);
			for (size_t i = 0; i < 0x3000; i++)
				assert_int_equal(bss[i], 0);
			assert_int_equal(bss[0x3000], 0xaa); /* nothing past memsz */
			assert_memory_equal(mem_ptr(&a, LOAD + 0x400000, 0x110000), vm + 0x200000, 0x110000);
			/* the file bytes no segment takes went nowhere */
			assert_int_equal(*(const uint8_t *)mem_ptr(&a, LOAD + 0x200000, 1), 0xaa);
		}
		mem_free(&a);
		mem_free(&b);
		free(vm);
	}
}

/* A segment whose file range ends past the file: the same refusal either way. */
static void test_streamed_segment_past_end(void **state)
{
	(void)state;
	uint8_t *vm = make_big_vmlinux(0, BIG_FILE); /* 0x200000 + BIG_FILE > BIG_FILE */
	struct guest_mem a, b;
	int ra, rb;
	char erra[256] = "", errb[256] = "";
	/* p_memsz must cover p_filesz */
	((Elf64_Phdr *)(vm + sizeof(Elf64_Ehdr)))[2].p_memsz = BIG_FILE;
	load_both(vm, &a, &b, &ra, &rb, erra, errb);
	assert_int_equal(ra, -1);
	assert_int_equal(rb, -1);
	assert_non_null(strstr(erra, "ELF segment 2 file range [0x200000, +0x320000) lies outside the 3276800-byte file"));
	assert_non_null(strstr(errb, "ELF segment 2 file range [0x200000, +0x320000) lies outside the 3276800-byte file"));
	mem_free(&a);
	mem_free(&b);
	free(vm);
}

/* The streaming loader itself, fed in chunks of odd sizes (a byte at a time
 * through the headers): it takes the image (does not decline), and RAM ends
 * as the whole-image loader leaves it; what it declines, it declines before
 * writing anything. */
static int stream_in(struct guest_mem *m, const uint8_t *vm, size_t len, size_t first, size_t step,
		     char *err)
{
	struct boot_elf_stream *es = malloc(sizeof(*es));
	assert_non_null(es);
	boot_elf_stream_init(es, m, BOOT_RESERVED_END, MIB(64));
	int r = 0;
	for (size_t off = 0; off < len && r == 0;) {
		size_t n = off < first ? 1 : step;
		if (n > len - off)
			n = len - off;
		r = boot_elf_stream_write(es, off, vm + off, n, err, 256);
		off += n;
	}
	struct boot_elf_info ei;
	if (r == 0)
		r = boot_elf_stream_finish(es, &ei, err, 256);
	if (r == 0) {
		assert_int_equal(ei.entry, LOAD + ENTRY_OFF);
		assert_int_equal(ei.lo, LOAD);
		assert_int_equal(ei.hi, LOAD + 0x520000);
	}
	boot_elf_stream_free(es);
	free(es);
	return r;
}

static void test_stream_loader(void **state)
{
	(void)state;
	static const size_t steps[][2] = { { 0, 1u << 20 }, { 200, 4093 }, { 0, 65537 }, { 64, BIG_FILE } };
	uint8_t *vm = make_big_vmlinux(0, 0x110000);
	struct guest_mem a, b;
	assert_int_equal(mem_init(&a, MIB(64)), 0);
	assert_int_equal(mem_init(&b, MIB(64)), 0);
	char err[256] = "";
	struct boot_elf_info ei;
	memset(mem_ptr(&b, 0, MIB(64)), 0xaa, MIB(64));
	assert_int_equal(boot_elf_load_image(&b, vm, BIG_FILE, BOOT_RESERVED_END, &ei, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		memset(mem_ptr(&a, 0, MIB(64)), 0xaa, MIB(64));
		assert_int_equal(stream_in(&a, vm, BIG_FILE, steps[i][0], steps[i][1], err), 0);
		assert_memory_equal(mem_ptr(&a, 0, MIB(64)), mem_ptr(&b, 0, MIB(64)), MIB(64));
	}
	/* declined, RAM untouched: overlapping segments, ELF32, no ELF at all,
	 * program headers beyond the first 64 KiB */
	free(vm);
	for (int k = 0; k < 4; k++) {
		vm = make_big_vmlinux(k == 0, 0x110000);
		Elf64_Ehdr *e = (Elf64_Ehdr *)vm;
		if (k == 1)
			e->e_ident[EI_CLASS] = ELFCLASS32;
		if (k == 2)
			memcpy(vm, "junk", 4);
		if (k == 3)
			e->e_phoff = 0x20000;
		memset(mem_ptr(&a, 0, MIB(64)), 0xaa, MIB(64));
		assert_int_equal(stream_in(&a, vm, BIG_FILE, 0, 1u << 20, err), BOOT_STREAM_DECLINED);
		const uint8_t *r = mem_ptr(&a, 0, MIB(64));
		for (size_t i = 0; i < MIB(64); i += 4096)
			assert_int_equal(r[i], 0xaa);
		free(vm);
	}
	/* a bad segment is an error with the whole-image loader's message */
	vm = make_big_vmlinux(0, 0x110000);
	((Elf64_Phdr *)(vm + sizeof(Elf64_Ehdr)))[2].p_paddr = MIB(63);
	assert_int_equal(stream_in(&a, vm, BIG_FILE, 0, 1u << 20, err), -1);
	assert_non_null(strstr(err, "ELF segment 2"));
	free(vm);
	mem_free(&a);
	mem_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_host_decompress),
		cmocka_unit_test(test_no_decompress),
		cmocka_unit_test(test_payload_not_elf),
		cmocka_unit_test(test_streamed_as_whole),
		cmocka_unit_test(test_streamed_segment_past_end),
		cmocka_unit_test(test_stream_loader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
