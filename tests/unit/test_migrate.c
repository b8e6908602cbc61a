/* Unit tests for the migration stream's receiving side (src/migrate_recv.c):
 * a source is hostile input. Each test writes a stream into a pipe and
 * checks what the destination makes of it — never a byte outside RAM,
 * never a record out of order, never an allocation a length asks for. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate.h"
#include "migrate_proto.h"

#define RAM (1u << 20)
static uint8_t *ram;
static struct mig_in in;
static int rfd = -1, wfd = -1;
static char err[512];

/* The stream so far goes into a pipe (< 64 KiB per test), then EOF. */
static uint8_t stream[1 << 16];
static size_t slen;

static void put(const void *p, size_t n)
{
	assert_true(slen + n <= sizeof(stream));
	memcpy(stream + slen, p, n);
	slen += n;
}

static void rec(uint32_t type, uint32_t count, uint64_t len)
{
	struct mig_rec h = { .type = type, .count = count, .len = len };
	put(&h, sizeof(h));
}

static void hello_with(uint64_t ram_size, uint32_t ncpus, uint32_t version)
{
	struct mig_hello hi = { .version = version, .page_size = MIG_PAGE, .ram_size = ram_size, .ncpus = ncpus,
				.irqchip = 1 };
	memcpy(hi.magic, MIG_MAGIC, 8);
	snprintf(hi.hvmm_version, sizeof(hi.hvmm_version), "test");
	rec(MIG_HELLO, 0, sizeof(hi));
	put(&hi, sizeof(hi));
}

static void hello(void)
{
	hello_with(RAM, 2, MIG_VERSION);
}

static void page(uint64_t off, uint8_t fill)
{
	rec(MIG_PAGES, 1, 8 + MIG_PAGE);
	put(&off, 8);
	uint8_t p[MIG_PAGE];
	memset(p, fill, sizeof(p));
	put(p, sizeof(p));
}

static void state(const char *s)
{
	struct mig_state_prefix pre = { .paused_realtime_ns = 42 };
	rec(MIG_STATE, 0, sizeof(pre) + strlen(s));
	put(&pre, sizeof(pre));
	put(s, strlen(s));
}

/* Feed the stream; 0/-1/MIG_IN_MISMATCH of the hello, then of the rest. */
static int feed(int *hello_r)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	rfd = p[0];
	wfd = p[1];
	fcntl(wfd, F_SETPIPE_SZ, 1 << 17);
	assert_int_equal(write(wfd, stream, slen), (ssize_t)slen);
	close(wfd);
	wfd = -1;
	*hello_r = mig_recv_hello(&in, rfd, err, sizeof(err));
	if (*hello_r)
		return *hello_r;
	return mig_recv_stream(&in, rfd, err, sizeof(err));
}

static int setup(void **st)
{
	(void)st;
	ram = calloc(1, RAM);
	assert_non_null(ram);
	mig_in_init(&in, ram, RAM, 2, 1, 1 << 16);
	slen = 0;
	err[0] = 0;
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	mig_in_free(&in);
	free(ram);
	if (rfd >= 0)
		close(rfd);
	rfd = -1;
	return 0;
}

static bool ram_zero(void)
{
	for (size_t i = 0; i < RAM; i++)
		if (ram[i])
			return false;
	return true;
}

static void test_whole_stream(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	page(0, 0x11);
	page(RAM - MIG_PAGE, 0x22);
	rec(MIG_ROUND, 1, 0);
	page(0, 0x33); /* a page written again */
	state("STATE");
	int h;
	assert_int_equal(feed(&h), 0);
	assert_int_equal(ram[0], 0x33);
	assert_int_equal(ram[RAM - 1], 0x22);
	assert_int_equal(in.pages, 3);
	assert_int_equal(in.next_round, 2);
	assert_int_equal(in.state_len, 5);
	assert_memory_equal(in.state, "STATE", 5);
	assert_int_equal(in.src_paused_ns, 42);
}

static void test_hello_mismatch(void **st)
{
	(void)st;
	hello_with(RAM * 2, 2, MIG_VERSION);
	int h;
	assert_int_equal(feed(&h), MIG_IN_MISMATCH);
	assert_non_null(strstr(err, "--mem 2M"));
}

static void test_hello_version(void **st)
{
	(void)st;
	hello_with(RAM, 2, MIG_VERSION + 1);
	int h;
	assert_int_equal(feed(&h), MIG_IN_MISMATCH);
	assert_non_null(strstr(err, "format 2"));
}

static void test_not_hello(void **st)
{
	(void)st;
	rec(MIG_ROUND, 0, 0);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "no hello"));
}

static void test_hello_wrong_length(void **st)
{
	(void)st;
	rec(MIG_HELLO, 0, 1ull << 40); /* never read that much */
	int h;
	assert_int_equal(feed(&h), -1);
}

static void test_page_outside_ram(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	page(RAM, 0x44);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "is not a page of the guest"));
	assert_true(ram_zero());
}

static void test_page_unaligned(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	page(100, 0x44);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_true(ram_zero());
}

/* One bad offset in a batch: no page of the batch lands. */
static void test_batch_one_bad(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_PAGES, 2, 2 * (8 + MIG_PAGE));
	uint64_t offs[2] = { 0, UINT64_MAX & ~0xfffull };
	put(offs, sizeof(offs));
	uint8_t p[2 * MIG_PAGE];
	memset(p, 0x55, sizeof(p));
	put(p, sizeof(p));
	int h;
	assert_int_equal(feed(&h), -1);
	assert_true(ram_zero());
}

static void test_pages_wrong_length(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_PAGES, 1, 8 + MIG_PAGE - 1);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "malformed page record"));
}

static void test_pages_too_many(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_PAGES, MIG_BATCH + 1, (uint64_t)(MIG_BATCH + 1) * (8 + MIG_PAGE));
	int h;
	assert_int_equal(feed(&h), -1);
}

static void test_pages_before_round(void **st)
{
	(void)st;
	hello();
	page(0, 0x66);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "before the first round"));
	assert_true(ram_zero());
}

static void test_round_out_of_order(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_ROUND, 2, 0);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "round 2 where round 1"));
}

static void test_state_before_ram(void **st)
{
	(void)st;
	hello();
	state("S");
	int h;
	assert_int_equal(feed(&h), -1);
	assert_null(in.state);
}

static void test_state_too_large(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_STATE, 0, (1ull << 16) + 17);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "malformed state"));
}

static void test_second_hello(void **st)
{
	(void)st;
	hello();
	hello();
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "second hello"));
}

static void test_unknown_type(void **st)
{
	(void)st;
	hello();
	rec(99, 0, 0);
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "unknown record type 99"));
}

static void test_truncated(void **st)
{
	(void)st;
	hello();
	rec(MIG_ROUND, 0, 0);
	rec(MIG_PAGES, 1, 8 + MIG_PAGE);
	uint64_t off = 0;
	put(&off, 8);
	put("abc", 3); /* the source died mid-page */
	int h;
	assert_int_equal(feed(&h), -1);
	assert_non_null(strstr(err, "the source closed it"));
}

/* The replies the source reads are checked too. */
static void test_reply(void **st)
{
	(void)st;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mig_reply_send(p[1], MIG_R_REFUSE, "no\x01way"), 0);
	struct mig_reply bad = { .type = MIG_R_RUNNING, .len = MIG_MSG_MAX + 1 };
	assert_int_equal(write(p[1], &bad, sizeof(bad)), (ssize_t)sizeof(bad));
	close(p[1]);
	uint32_t t;
	char msg[64];
	assert_int_equal(mig_reply_recv(p[0], &t, msg, sizeof(msg)), 0);
	assert_int_equal(t, MIG_R_REFUSE);
	assert_string_equal(msg, "no?way");
	assert_int_equal(mig_reply_recv(p[0], &t, msg, sizeof(msg)), -EPROTO);
	assert_int_equal(mig_reply_recv(p[0], &t, msg, sizeof(msg)), -EPIPE);
	close(p[0]);
}

static void test_addr(void **st)
{
	(void)st;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(migrate_parse_addr("tcp:127.0.0.1:4444", false, &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(migrate_parse_addr("tcp:[::1]:4444", false, &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(migrate_parse_addr("tcp::4444", true, &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(migrate_parse_addr("tcp::4444", false, &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(migrate_parse_addr("tcp:localhost:4444", false, &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(migrate_parse_addr("tcp:1.2.3.4:0", false, &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(migrate_parse_addr("tcp:1.2.3.4:65536", false, &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(migrate_parse_addr("udp:1.2.3.4:5", false, &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(migrate_parse_addr("tcp:[::1:5", false, &ss, &len, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_whole_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_wrong_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_unaligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_one_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages_wrong_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pages_before_round, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_before_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
