/* inject: --inject's events, as the user types them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "inject.h"

static void test_parse_each_kind(void **state)
{
	(void)state;
	struct inject_req r[INJECT_MAX];
	int n = 0;
	char err[200];
	assert_int_equal(inject_parse(r, &n, "nmi@250", err, sizeof(err)), 0);
	assert_int_equal(inject_parse(r, &n, "irq:0x5e@0", err, sizeof(err)), 0);
	assert_int_equal(inject_parse(r, &n, "exception:13:0x1234@1000", err, sizeof(err)), 0);
	assert_int_equal(inject_parse(r, &n, "exception:6@5", err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(r[0].kind, INJECT_NMI);
	assert_int_equal(r[0].at_ms, 250);
	assert_int_equal(r[1].kind, INJECT_IRQ);
	assert_int_equal(r[1].vector, 0x5e);
	assert_int_equal(r[1].at_ms, 0);
	assert_int_equal(r[2].kind, INJECT_EXCEPTION);
	assert_int_equal(r[2].vector, 13);
	assert_true(r[2].has_error_code);
	assert_int_equal(r[2].error_code, 0x1234);
	assert_false(r[3].has_error_code);
}

static void test_parse_bad(void **state)
{
	(void)state;
	const char *bad[] = {
		"", "nmi", "@5", "nmi@", "nmi@x", "nmi@-1", "nmi:2@5", "irq@5", "irq:15@5", "irq:256@5",
		"irq:0x5e", "exception:2@5", "exception:32@5", "exception:13@5" /* needs its error code */,
		"exception:6:1@5" /* has none */, "exception:13:0x100000000@5", "exception@5", "bogus:1@1",
		"nmi@3600001", "irq:0x5e@1@2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct inject_req r[INJECT_MAX];
		int n = 0;
		char err[200] = "";
		assert_int_equal(inject_parse(r, &n, bad[i], err, sizeof(err)), -1);
		assert_int_equal(n, 0);
		assert_true(err[0] != '\0');
	}
}

static void test_parse_limit(void **state)
{
	(void)state;
	struct inject_req r[INJECT_MAX];
	int n = 0;
	char err[200];
	for (int i = 0; i < INJECT_MAX; i++)
		assert_int_equal(inject_parse(r, &n, "nmi@1", err, sizeof(err)), 0);
	assert_int_equal(inject_parse(r, &n, "nmi@1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 8"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_each_kind),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
