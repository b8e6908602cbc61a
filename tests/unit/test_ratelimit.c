/* ratelimit: token buckets with debt, on a clock the test moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

#define MS 1000000ull
#define SEC 1000000000ull

static struct ratelimit limit(const char *a, const char *b)
{
	struct ratelimit rl;
	memset(&rl, 0, sizeof(rl));
	if (a)
		assert_int_equal(rl_parse_opt(a, &rl), 1);
	if (b)
		assert_int_equal(rl_parse_opt(b, &rl), 1);
	rl_start(&rl, 0);
	return rl;
}

static void test_parse(void **state)
{
	(void)state;
	struct ratelimit rl;
	memset(&rl, 0, sizeof(rl));
	assert_false(rl_active(&rl));
	assert_int_equal(rl_parse_opt("bw=10M", &rl), 1);
	assert_int_equal(rl.bytes.size, 10u << 20);
	assert_int_equal(rl_parse_opt("iops=250", &rl), 1);
	assert_int_equal(rl.ops.size, 250);
	assert_int_equal(rl_parse_opt("bw-burst=1G", &rl), 1);
	assert_int_equal(rl.bytes.burst, 1u << 30);
	assert_int_equal(rl_parse_opt("iops-burst=7", &rl), 1);
	assert_int_equal(rl.ops.burst, 7);
	assert_true(rl_active(&rl));
	assert_int_equal(rl_parse_opt("bw=0", &rl), -1);
	assert_int_equal(rl_parse_opt("bw=fast", &rl), -1);
	assert_int_equal(rl_parse_opt("iops=1.5", &rl), -1);
	assert_int_equal(rl_parse_opt("iops=", &rl), -1);
	assert_int_equal(rl_parse_opt("ro", &rl), 0);
	assert_int_equal(rl_parse_opt("bwx=1", &rl), 0);
	assert_false(rl_burst_without_rate(&rl));
}

/* Other names for the two rates (the network's), and a burst alone. */
static void test_parse_named(void **state)
{
	(void)state;
	struct ratelimit rl;
	memset(&rl, 0, sizeof(rl));
	assert_int_equal(rl_parse_opt_named("pps-burst=9", "bw", "pps", &rl), 1);
	assert_true(rl_burst_without_rate(&rl));
	assert_int_equal(rl_parse_opt_named("pps=300", "bw", "pps", &rl), 1);
	assert_false(rl_burst_without_rate(&rl));
	assert_int_equal(rl.ops.size, 300);
	assert_int_equal(rl.ops.burst, 9);
	assert_int_equal(rl_parse_opt_named("bw=2K", "bw", "pps", &rl), 1);
	assert_int_equal(rl.bytes.size, 2048);
	assert_int_equal(rl_parse_opt_named("iops=3", "bw", "pps", &rl), 0);
	assert_int_equal(rl_parse_opt_named("pps", "bw", "pps", &rl), 0);
	assert_int_equal(rl_parse_opt_named("ppsx=1", "bw", "pps", &rl), 0);
	assert_int_equal(rl_parse_opt_named("pps=0", "bw", "pps", &rl), -1);
	memset(&rl, 0, sizeof(rl));
	assert_int_equal(rl_parse_opt("bw-burst=1M", &rl), 1);
	assert_true(rl_burst_without_rate(&rl));
}

static void test_unlimited(void **state)
{
	(void)state;
	struct ratelimit rl = limit(NULL, NULL);
	for (int i = 0; i < 1000; i++) {
		uint64_t w = 1;
		assert_true(rl_ready(&rl, (uint64_t)i, &w));
		assert_int_equal(w, 0);
		rl_take(&rl, 1u << 30);
	}
	assert_int_equal(rl.throttled, 0);
}

/* A full bucket to start, then debt: the next request waits exactly until
 * the debt is repaid and one token is back. */
static void test_debt(void **state)
{
	(void)state;
	struct ratelimit rl = limit("bw=1000", NULL);
	uint64_t w;
	assert_true(rl_ready(&rl, 0, &w));
	rl_take(&rl, 600);
	assert_true(rl_ready(&rl, 0, &w));
	rl_take(&rl, 600); /* larger than what is left: allowed, 200 in debt */
	assert_false(rl_ready(&rl, 0, &w));
	assert_int_equal(w, 201 * MS);
	assert_false(rl_ready(&rl, 200 * MS, &w));
	assert_int_equal(w, 1 * MS);
	assert_true(rl_ready(&rl, 201 * MS, &w));
	/* a request far larger than the bucket still goes when it is full */
	assert_true(rl_ready(&rl, 5 * SEC, &w));
	rl_take(&rl, 10000);
	assert_false(rl_ready(&rl, 5 * SEC, &w));
	assert_int_equal(w, 9001 * MS);
	assert_int_equal(rl.throttled, 3);
}

/* Over a long run the rate is the limit: requests go as soon as allowed. */
static void run(struct ratelimit *rl, uint64_t req_bytes, uint64_t seconds, uint64_t *bytes, uint64_t *ops)
{
	uint64_t now = 0;
	*bytes = *ops = 0;
	while (now < seconds * SEC) {
		uint64_t w;
		if (!rl_ready(rl, now, &w)) {
			now += w;
			continue;
		}
		rl_take(rl, req_bytes);
		*bytes += req_bytes;
		(*ops)++;
		now += 10000; /* each request takes 10 us to issue */
	}
}

static void test_long_run(void **state)
{
	(void)state;
	uint64_t bytes, ops;
	struct ratelimit rl = limit("bw=1M", NULL);
	run(&rl, 4096, 100, &bytes, &ops);
	/* 100 s at 1 MiB/s plus the first full bucket, within one request */
	assert_true(bytes >= 101ull * (1 << 20) - 4096 && bytes <= 101ull * (1 << 20) + 4096);

	rl = limit("iops=50", "bw=1G");
	run(&rl, 512, 20, &bytes, &ops);
	assert_true(ops >= 20 * 50 + 50 - 1 && ops <= 20 * 50 + 50 + 1); /* the ops bucket binds */

	rl = limit("bw=100K", "iops=1000");
	run(&rl, 64 << 10, 30, &bytes, &ops); /* 64 KiB requests against 100 KiB/s */
	assert_true(bytes >= 31ull * (100 << 10) - (64 << 10) && bytes <= 31ull * (100 << 10) + (64 << 10));
}

/* A one-time burst is spent before the bucket, then never comes back. */
static void test_burst(void **state)
{
	(void)state;
	struct ratelimit rl = limit("bw=1000", "bw-burst=5000");
	uint64_t w;
	for (int i = 0; i < 5; i++) {
		assert_true(rl_ready(&rl, 0, &w));
		rl_take(&rl, 1000);
	}
	assert_int_equal(rl.bytes.burst, 0);
	assert_int_equal(rl.bytes.budget, 1000); /* the bucket untouched so far */
	assert_true(rl_ready(&rl, 0, &w));
	rl_take(&rl, 1000);
	assert_false(rl_ready(&rl, 0, &w));
	assert_int_equal(w, 1 * MS);
	/* a restart (device reset) fills the bucket, not the burst */
	rl_start(&rl, 0);
	assert_int_equal(rl.bytes.budget, 1000);
	assert_int_equal(rl.bytes.burst, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_named),
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_debt),
		cmocka_unit_test(test_long_run),
		cmocka_unit_test(test_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
