/*
 * The loaders' error contract, checked the same way by every loader test: a
 * malformed image makes the load return -1 with one line (no newline) that
 * mentions what is wrong. The including test defines load(f, len) and a
 * fixture with `char err[]`. Include after <cmocka.h>.
 */
#ifndef HVMM_TEST_LOAD_ERROR_H
#define HVMM_TEST_LOAD_ERROR_H

#include <string.h>

#define expect_fail(f, len, needle) expect_load_error(load(f, len), (f)->err, needle, __LINE__)

static inline void expect_load_error(int rc, const char *err, const char *needle, int line)
{
	if (rc != -1)
		fail_msg("line %d: image loaded, expected an error mentioning \"%s\"", line, needle);
	if (!err[0] || strchr(err, '\n'))
		fail_msg("line %d: bad error message \"%s\"", line, err);
	if (!strstr(err, needle))
		fail_msg("line %d: error \"%s\" does not mention \"%s\"", line, err, needle);
}

#endif
