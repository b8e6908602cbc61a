/* util: size and number parsing as the CLI uses them; memory layout checks;
 * the bound on whole-file reads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "memory.h"
#include "util.h"

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(util_parse_size("128M", &v), 0);
	assert_int_equal(v, 128ull << 20);
	assert_int_equal(util_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(util_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(util_parse_size("512MiB", &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(util_parse_size("1KB", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(util_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(util_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ull << 40);
	const char *bad[] = { "", "M", "-1", "12Q", "1.5G", "1GG", "1 G", "0x10", "99999999999999999999",
			      "17179869184G", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(util_parse_size(bad[i], &v), -1);
}

static void test_uint(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(util_parse_uint("1", 1, 64, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(util_parse_uint("64", 1, 64, &v), 0);
	assert_int_equal(util_parse_uint("0", 1, 64, &v), -1);
	assert_int_equal(util_parse_uint("65", 1, 64, &v), -1);
	assert_int_equal(util_parse_uint("2x", 1, 64, &v), -1);
	assert_int_equal(util_parse_uint("-2", 1, 64, &v), -1);
	assert_int_equal(util_parse_uint("", 1, 64, &v), -1);
}

static void test_range(void **state)
{
	(void)state;
	assert_true(util_range_ok(0, 10, 10));
	assert_true(util_range_ok(10, 0, 10));
	assert_false(util_range_ok(5, 6, 10));
	assert_false(util_range_ok(11, 0, 10));
	assert_false(util_range_ok(1, UINT64_MAX, 10));
}

static void test_mem_layout(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(mem_init(&m, MIB(128)), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_non_null(mem_ptr(&m, 0, MIB(128)));
	assert_null(mem_ptr(&m, MIB(128) - 1, 2));
	assert_null(mem_ptr(&m, UINT64_MAX, 2));
	assert_int_equal(mem_top(&m), MIB(128));
	mem_free(&m);

	/* 4 GiB: 3 GiB below the hole, 1 GiB from 4 GiB up; nothing in the hole */
	assert_int_equal(mem_init(&m, GIB(4)), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.regions[0].size, MEM_HOLE_START);
	assert_int_equal(m.regions[1].gpa, MEM_HOLE_END);
	assert_int_equal(m.regions[1].size, GIB(1));
	assert_null(mem_ptr(&m, MEM_HOLE_START, 1));
	assert_null(mem_ptr(&m, MEM_HOLE_START - 1, 2)); /* straddles RAM and hole */
	assert_non_null(mem_ptr(&m, MEM_HOLE_END, GIB(1)));
	assert_ptr_equal(mem_ptr(&m, MEM_HOLE_END, 1), m.base + MEM_HOLE_START);
	assert_int_equal(mem_top(&m), MEM_HOLE_END + GIB(1));
	char c = 'x';
	assert_int_equal(mem_write(&m, MEM_HOLE_END, &c, 1), 0);
	assert_int_equal(mem_write(&m, MEM_HOLE_START, &c, 1), -1);
	mem_free(&m);

	assert_int_not_equal(mem_init(&m, KIB(4)), 0);        /* below 1 MiB */
	assert_int_not_equal(mem_init(&m, MIB(128) + 1), 0);  /* not page-sized */
	assert_int_not_equal(mem_init(&m, GIB(65)), 0);       /* above the maximum */
}

/* util_read_file refuses a file larger than its bound before allocating:
 * a sparse 1 TiB file costs nothing to make and would be fatal to read. */
static void test_read_file_cap(void **state)
{
	(void)state;
	char path[] = "/tmp/hvmm-test-read-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hvmm", 4), 4);
	uint8_t *b = NULL;
	size_t n = 0;
	assert_int_equal(util_read_file(path, &b, &n, 4), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(b, "hvmm", 4);
	free(b);
	b = NULL;
	assert_int_equal(util_read_file(path, &b, &n, 3), -EFBIG);
	assert_null(b);
	assert_int_equal(ftruncate(fd, 1ll << 40), 0);
	assert_int_equal(util_read_file(path, &b, &n, 64ull << 30), -EFBIG);
	assert_null(b);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_mem_layout),
		cmocka_unit_test(test_read_file_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
