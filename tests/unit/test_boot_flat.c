/* Flat binaries: placement at 0x10000, real-mode entry, size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "memory.h"
#include "util.h"

#define FLAT_MAX (BOOT_MPTABLE - BOOT_FLAT_ADDR)

static uint8_t img[FLAT_MAX + 1];

static int load(struct guest_mem *m, size_t len, enum boot_format fmt, struct boot_entry *e,
		char *err, size_t errlen)
{
	struct boot_params_in in = { .image = img, .image_len = len, .format = fmt, .ncpus = 1 };
	return boot_load(m, &in, e, err, errlen);
}

static void test_flat_loads(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(2)), 0);
	for (size_t i = 0; i < 300; i++)
		img[i] = (uint8_t)(i * 7 + 1);
	struct boot_entry e;
	char err[256];
	assert_int_equal(load(&m, 300, BOOT_AUTO, &e, err, sizeof(err)), 0);
	assert_int_equal(e.format, BOOT_FLAT);
	assert_int_equal(e.mode, BOOT_MODE_REAL16);
	assert_int_equal(e.cs_sel, 0x1000);
	assert_int_equal(e.rip, 0);
	assert_int_equal(e.rsp, 0x8000);
	assert_int_equal(e.image_lo, BOOT_FLAT_ADDR);
	assert_int_equal(e.image_hi, BOOT_FLAT_ADDR + 300);
	assert_memory_equal(mem_ptr(&m, BOOT_FLAT_ADDR, 300), img, 300);
	assert_int_equal(*(uint8_t *)mem_ptr(&m, BOOT_FLAT_ADDR + 300, 1), 0);
	assert_int_equal(*(uint8_t *)mem_ptr(&m, BOOT_FLAT_ADDR - 1, 1), 0);
	mem_free(&m);
}

static void test_flat_size_limit(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(2)), 0);
	struct boot_entry e;
	char err[256];
	memset(img, 0xf4, sizeof(img));
	/* Exactly up to the MP table is fine... */
	assert_int_equal(load(&m, FLAT_MAX, BOOT_FLAT, &e, err, sizeof(err)), 0);
	assert_int_equal(e.image_hi, BOOT_MPTABLE);
	/* ...one byte more is refused, naming the limit. */
	err[0] = '\0';
	assert_int_equal(load(&m, FLAT_MAX + 1, BOOT_FLAT, &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "flat image"));
	assert_non_null(strstr(err, "585728 bytes")); /* 0x9f000 - 0x10000 */
	assert_null(strchr(err, '\n'));
	mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flat_loads),
		cmocka_unit_test(test_flat_size_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
