/* boot_load()'s Linux path: bzImage detection, host-side decompression of the
 * payload into a vmlinux, and --no-decompress booting the bzImage itself. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "boot/boot.h"
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

/* A minimal vmlinux: one PT_LOAD of 4 KiB at LOAD, entry LOAD + ENTRY_OFF. */
static size_t make_vmlinux(uint8_t *b)
{
	memset(b, 0, 0x2000);
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
	e->e_phnum = 1;
	Elf64_Phdr *p = (Elf64_Phdr *)(b + sizeof(*e));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_host_decompress),
		cmocka_unit_test(test_no_decompress),
		cmocka_unit_test(test_payload_not_elf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
