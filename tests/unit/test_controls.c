/* controls: --msr-filter's list, as the user types it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "controls.h"
#include "vm.h"

static void test_msr_list(void **state)
{
	(void)state;
	struct vm_config cfg;
	char err[160];
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(controls_parse_msr_filter(&cfg, "0xc0000103,16,0x1b", err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_msr_filter, 3);
	assert_int_equal(cfg.msr_filter[0], 0xc0000103u);
	assert_int_equal(cfg.msr_filter[1], 16);
	assert_int_equal(cfg.msr_filter[2], 0x1b);
	/* repeated options add up */
	assert_int_equal(controls_parse_msr_filter(&cfg, "0x10", err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_msr_filter, 4);
}

static void test_msr_list_bad(void **state)
{
	(void)state;
	const char *bad[] = { "", "x", "0x10,", ",0x10", "0x10,,0x11", "0x1ffffffff", "-1x", "0x10;0x11", "12abc" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_config cfg;
		char err[160] = "";
		memset(&cfg, 0, sizeof(cfg));
		assert_int_equal(controls_parse_msr_filter(&cfg, bad[i], err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
}

static void test_msr_list_too_long(void **state)
{
	(void)state;
	struct vm_config cfg;
	char err[160];
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(controls_parse_msr_filter(&cfg, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", err, sizeof(err)), 0);
	assert_int_equal(controls_parse_msr_filter(&cfg, "17", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 16"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msr_list),
		cmocka_unit_test(test_msr_list_bad),
		cmocka_unit_test(test_msr_list_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
