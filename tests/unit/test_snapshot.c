/* Unit tests for the snapshot state file (src/snapshot_file.c) and the
 * device registry (src/snapshot.c): what a restore refuses, and why. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot_priv.h"
#include "util.h"
#include "fake_vm.h"

static char path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/hvmm-test-snap-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

/* Two sections: "a" #0 with 5 bytes (padding follows), "b" #0 empty. */
static void write_two(void)
{
	struct snap_writer w;
	char err[200];
	snap_writer_init(&w, 64 << 20, 2, 0);
	snap_section_begin(&w, "a", 0, 3);
	snap_put(&w.body, "hello", 5);
	snap_section_end(&w);
	snap_section_begin(&w, "b", 0, 1);
	snap_section_end(&w);
	assert_int_equal(snap_writer_save(&w, path, err, sizeof(err)), 0);
	snap_writer_free(&w);
}

static void patch(long off, uint8_t xor)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= xor;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void expect_open_error(const char *want)
{
	struct snap_reader r;
	char err[300] = "";
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("error '%s', want '%s'", err, want);
}

static void test_roundtrip(void **state)
{
	(void)state;
	write_two();
	struct snap_reader r;
	char err[300];
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(r.h.ram_size, 64 << 20);
	assert_int_equal(r.h.ncpus, 2);
	assert_int_equal(r.h.nr_sections, 2);
	struct snap_cur c;
	uint32_t ver;
	assert_int_equal(snap_reader_next(&r, "a", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(ver, 3);
	char got[8] = "";
	snap_get(&c, got, 5);
	assert_false(c.bad);
	assert_int_equal(c.left, 0);
	assert_memory_equal(got, "hello", 5);
	/* past the end: zero-filled and flagged, never a read beyond */
	snap_get(&c, got, 2);
	assert_true(c.bad);
	assert_int_equal(got[0], 0);
	assert_int_equal(snap_reader_next(&r, "b", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(c.left, 0);
	assert_int_equal(snap_reader_done(&r, err, sizeof(err)), 0);
	snap_reader_close(&r);
}

/* A VM built with other options meets another device where it expects its
 * own, or one section too many or too few: each named in the error. */
static void test_mismatch_is_named(void **state)
{
	(void)state;
	write_two();
	struct snap_reader r;
	char err[300];
	struct snap_cur c;
	uint32_t ver;
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_next(&r, "uart", 0, &c, &ver, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "has a #0 where this VM has uart #0"));
	assert_int_equal(snap_reader_next(&r, "a", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_done(&r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "has a b #0 this VM does not"));
	assert_int_equal(snap_reader_next(&r, "b", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_next(&r, "c", 1, &c, &ver, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no c #1"));
	snap_reader_close(&r);
}

/* snap_reader_find (a device peeking at its section before the loads, as
 * virtio-net's kept slirp helper does): any position, the reader's own
 * position untouched, and a section that is not there is -ENOENT. */
static void test_find(void **state)
{
	(void)state;
	write_two();
	struct snap_reader r;
	char err[300];
	struct snap_cur c;
	uint32_t ver;
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(&r, "b", 0, &c, &ver), 0);
	assert_int_equal(ver, 1);
	assert_int_equal(c.left, 0);
	assert_int_equal(snap_reader_find(&r, "a", 0, &c, &ver), 0);
	assert_int_equal(ver, 3);
	assert_int_equal(c.left, 5);
	assert_memory_equal(c.p, "hello", 5);
	assert_int_equal(snap_reader_find(&r, "a", 1, &c, &ver), -ENOENT);
	assert_int_equal(snap_reader_find(&r, "net-user", 0, &c, &ver), -ENOENT);
	/* the sequential walk still starts at the first section */
	assert_int_equal(snap_reader_next(&r, "a", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_next(&r, "b", 0, &c, &ver, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(&r, "a", 0, &c, &ver), 0);
	snap_reader_close(&r);
}

static void test_damage_is_refused(void **state)
{
	(void)state;
	const long body = (long)sizeof(struct snap_header);
	write_two();
	patch(body + (long)sizeof(struct snap_section) + 1, 0x20); /* "hello" -> "hEllo" */
	expect_open_error("corrupt section a #0");
	write_two();
	patch(40, 1); /* inside the header */
	expect_open_error("corrupt snapshot header");
	write_two();
	patch(0, 1);
	expect_open_error("is not an hvmm snapshot");
	write_two();
	assert_int_equal(truncate(path, body + 10), 0);
	expect_open_error("truncated");
	write_two();
	{ /* a section whose size runs past the end, with its header CRC intact */
		int fd = open(path, O_RDWR);
		uint64_t huge = 1ull << 40;
		assert_int_equal(pwrite(fd, &huge, 8, body + SNAP_NAME_LEN + 8), 8);
		close(fd);
		expect_open_error("section 0 is malformed");
	}
	{ /* another format version, with a valid header CRC: refused by name */
		struct snap_writer w;
		char err[200];
		snap_writer_init(&w, 1 << 20, 1, 0);
		w.h.format = 99;
		assert_int_equal(snap_writer_save(&w, path, err, sizeof(err)), 0);
		snap_writer_free(&w);
		expect_open_error("snapshot format 99, this hvmm reads formats 1 to 2");
	}
	unlink(path);
	expect_open_error("cannot read");
}

/* ---- the registry ---- */

struct toy {
	uint32_t reg;
	bool refuse;
};

static int toy_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct toy *t = dev;
	snap_put(b, &t->reg, sizeof(t->reg));
	return 0;
}

static int toy_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct toy *t = dev;
	uint32_t v;
	snap_get(c, &v, sizeof(v));
	if (version != 1 || c->bad || v > 100) {
		snprintf(err, n, "toy: reg %u out of range", v);
		return -1;
	}
	if (t->refuse)
		v = 0; /* a load that loses state: the round trip must notice */
	t->reg = v;
	return 0;
}

static const struct snap_ops toy_ops = { .name = "toy", .version = 1, .save = toy_save, .load = toy_load };
static const struct dev_ops toy_dev = { .name = "toy", .snap = toy_ops };
static const struct dev_ops other_dev = {
	.name = "other", .snap = { .name = "other", .version = 1, .save = toy_save, .load = toy_load }
};

static void test_registry(void **state)
{
	(void)state;
	struct vm vm;
	fake_vm_init(&vm);
	struct toy a = { 7, false }, b = { 9, false }, c = { 1, false };
	assert_int_equal(dev_registry_add(&vm.devs, &toy_dev, &a), 0);
	assert_int_equal(dev_registry_add(&vm.devs, &other_dev, &c), 0);
	assert_int_equal(dev_registry_add(&vm.devs, &toy_dev, &b), 0);
	struct dev_registry *r = &vm.devs;
	assert_int_equal(r->nr, 3);
	assert_int_equal(r->v[0].index, 0);
	assert_int_equal(r->v[1].index, 0);
	assert_int_equal(r->v[2].index, 1); /* the second toy */
	assert_ptr_equal(dev_find(r, "toy", 1), &b);
	assert_ptr_equal(dev_find(r, "other", 0), &c);
	assert_null(dev_find(r, "other", 1));
	assert_null(r->unsupported);
	dev_registry_unsupported(r, "--device vfio");
	dev_registry_unsupported(r, "--device edu");
	assert_string_equal(r->unsupported, "--device vfio"); /* the first is named */
	fake_vm_free(&vm);
	assert_int_equal(vm.devs.nr, 0);
	assert_null(vm.devs.v);
	assert_null(vm.snap);
}

static void test_roundtrip_helper(void **state)
{
	(void)state;
	char err[200];
	struct toy a = { 42, false }, b = { 0, false };
	assert_int_equal(snapshot_roundtrip(&toy_ops, &a, &b, err, sizeof(err)), 0);
	assert_int_equal(b.reg, 42);
	struct toy lossy = { 0, true };
	assert_int_equal(snapshot_roundtrip(&toy_ops, &a, &lossy, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "differs after the load"));
	struct toy bad = { 101, false };
	assert_int_equal(snapshot_roundtrip(&toy_ops, &bad, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "out of range"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mismatch_is_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_roundtrip_helper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
