/* Format detection, format names, and boot_load's dispatch. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "memory.h"
#include "util.h"

#define MB_MAGIC 0x1BADB002u

static uint8_t img[16384];

static void put_mb_header(size_t off, uint32_t flags, uint32_t checksum_delta)
{
	uint32_t h[3] = { MB_MAGIC, flags, (uint32_t)(0u - MB_MAGIC - flags) + checksum_delta };
	memcpy(img + off, h, sizeof(h));
}

static void put_elf_magic(void)
{
	memcpy(img, ELFMAG, SELFMAG);
}

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(boot_detect(img, 0), BOOT_AUTO);
	assert_int_equal(boot_detect(NULL, 0), BOOT_AUTO);
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(16)), 0);
	struct boot_entry e;
	char err[128];
	for (int f = BOOT_AUTO; f <= BOOT_MULTIBOOT; f++) {
		struct boot_params_in in = { .image = img, .image_len = 0, .format = (enum boot_format)f };
		assert_int_equal(boot_load(&m, &in, &e, err, sizeof(err)), -1);
		assert_string_equal(err, "image is empty");
	}
	mem_free(&m);
}

static void test_flat_and_elf(void **state)
{
	(void)state;
	memset(img, 0, sizeof(img));
	assert_int_equal(boot_detect(img, 1), BOOT_FLAT);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FLAT);
	put_elf_magic();
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_ELF);
	assert_int_equal(boot_detect(img, 4), BOOT_ELF);
	assert_int_equal(boot_detect(img, 3), BOOT_FLAT); /* magic cut short */
}

static void test_multiboot(void **state)
{
	(void)state;
	memset(img, 0, sizeof(img));
	put_mb_header(0, 0, 0);
	assert_int_equal(boot_detect(img, 12), BOOT_MULTIBOOT);
	assert_int_equal(boot_detect(img, 11), BOOT_FLAT);

	/* The last aligned slot whose 12 bytes fit in the first 8 KiB, and one past it. */
	memset(img, 0, sizeof(img));
	put_mb_header(8192 - 12, 0x3, 0);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_MULTIBOOT);
	memset(img, 0, sizeof(img));
	put_mb_header(8192 - 8, 0x3, 0);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FLAT);
	memset(img, 0, sizeof(img));
	put_mb_header(8192, 0x3, 0);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FLAT);

	/* Misaligned, or a bad checksum: not multiboot. */
	memset(img, 0, sizeof(img));
	put_mb_header(66, 0x3, 0);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FLAT);
	memset(img, 0, sizeof(img));
	put_mb_header(64, 0x3, 1);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_FLAT);

	/* Multiboot wins over ELF. */
	memset(img, 0, sizeof(img));
	put_elf_magic();
	put_mb_header(0x1000, 0x10003, 0);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_MULTIBOOT);
	put_mb_header(0x1000, 0x10003, 5);
	assert_int_equal(boot_detect(img, sizeof(img)), BOOT_ELF);
}

static void test_names(void **state)
{
	(void)state;
	const char *names[] = { "auto", "flat", "elf", "multiboot" };
	for (int i = 0; i < 4; i++) {
		enum boot_format f = (enum boot_format)99;
		assert_string_equal(boot_format_name((enum boot_format)i), names[i]);
		assert_int_equal(boot_format_parse(names[i], &f), 0);
		assert_int_equal(f, i);
	}
	enum boot_format f = BOOT_ELF;
	assert_int_equal(boot_format_parse("bzimage", &f), -1);
	assert_int_equal(boot_format_parse("", &f), -1);
	assert_int_equal(boot_format_parse("ELF", &f), -1);
	assert_int_equal(f, BOOT_ELF);
	assert_string_equal(boot_format_name((enum boot_format)42), "unknown");
}

static void test_dispatch(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(16)), 0);
	struct boot_entry e;
	char err[256];
	/* ELF magic but a broken header: auto goes to the ELF loader, which refuses... */
	memset(img, 0, sizeof(img));
	put_elf_magic();
	struct boot_params_in in = { .image = img, .image_len = 64 };
	assert_int_equal(boot_load(&m, &in, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ELF"));
	/* ...while forcing flat loads the same bytes as a flat binary. */
	in.format = BOOT_FLAT;
	assert_int_equal(boot_load(&m, &in, &e, err, sizeof(err)), 0);
	assert_int_equal(e.format, BOOT_FLAT);
	assert_int_equal(e.mode, BOOT_MODE_REAL16);
	/* Forcing multiboot on an image without a header is an error. */
	in.format = BOOT_MULTIBOOT;
	assert_int_equal(boot_load(&m, &in, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no multiboot header"));
	mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_flat_and_elf),
		cmocka_unit_test(test_multiboot),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
