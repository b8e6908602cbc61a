/* snapshot_config: the options a state file carries — written and read
 * back; read like guest input (an option that does not end, one a snapshot
 * may not carry, bytes left over, too many); a format-1 file without them;
 * and PUT /snapshot/load's checks before anything is built (the state whole
 * and with its options, the memory file its own and not a diff). */
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

#include "options.h"
#include "snapshot.h"
#include "snapshot_priv.h"

#define RAM (1ull << 20)

static char dir[64], state_path[128], mem_path[128], other_path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hvmm-test-snapcfg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(state_path, sizeof(state_path), "%s/vm.snap", dir);
	snprintf(mem_path, sizeof(mem_path), "%s/vm.mem", dir);
	snprintf(other_path, sizeof(other_path), "%s/other.mem", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(state_path), unlink(mem_path), unlink(other_path);
	rmdir(dir);
	return 0;
}

static char *const vm_args[] = { "--mem=1M", "--cpus=2", "--disk=/img/a.img,ro,bw=1M", "--rng", NULL };

/* A state file as snapshot_state_build starts one: memory, then config
 * (format 2), then a device section; id returned. */
static void write_state(int format, char *const *args, int n, uint8_t id[16])
{
	struct snap_writer w;
	char err[200];
	snap_writer_init(&w, RAM, 2, 0);
	w.h.format = (uint32_t)format;
	snap_memory_put(&w, RAM, mem_path);
	if (format >= 2)
		snap_config_put(&w, args, n);
	snap_section_begin(&w, "uart", 0, 1);
	snap_put(&w.body, "x", 1);
	snap_section_end(&w);
	assert_int_equal(snap_writer_save(&w, state_path, err, sizeof(err)), 0);
	memcpy(id, w.h.id, 16);
	snap_writer_free(&w);
}

static void write_mem(const char *path, const char *magic, const uint8_t id[16])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(RAM + SNAP_MEM_TRAILER)), 0);
	struct snap_mem_trailer t = { .ram_size = RAM };
	memcpy(t.magic, magic, 8);
	memcpy(t.id, id, 16);
	assert_int_equal(snap_mem_trailer_write(fd, &t), 0);
	close(fd);
}

static void test_config_roundtrip(void **state)
{
	(void)state;
	uint8_t id[16];
	write_state(2, vm_args, 4, id);
	char **args;
	int n;
	char err[300];
	assert_int_equal(snapshot_read_config(state_path, &args, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(args[i], vm_args[i]);
	assert_null(args[4]);
	options_free_args(args, n);
	/* a format-1 file (an older hvmm's): no options, no error */
	write_state(1, NULL, 0, id);
	assert_int_equal(snapshot_read_config(state_path, &args, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	options_free_args(args, n);
	/* a file that is not a snapshot: named */
	assert_int_equal(snapshot_read_config("/nonexistent.snap", &args, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot read /nonexistent.snap"));
}

/* A payload parsed as snap_config_parse sees it. */
static int parse_payload(const void *p, size_t len, uint32_t version, char *err, size_t en)
{
	struct snap_cur c = { .p = p, .left = len };
	char **args;
	int n;
	int r = snap_config_parse(&c, version, &args, &n, err, en);
	if (r == 0)
		options_free_args(args, n);
	return r;
}

static void test_config_hostile(void **state)
{
	(void)state;
	char err[300];
	struct {
		const char *bytes;
		size_t len;
		uint32_t version;
		const char *want;
	} bad[] = {
		{ "\x01\0\0\0--mem=1M", 12, 1, "does not end" },
		{ "\x01\0\0\0--api-sock=/tmp/s\0", 24, 1, "'--api-sock=/tmp/s', which is not an option a snapshot carries" },
		{ "\x01\0\0\0--serial=/etc/passwd\0", 26, 1, "not an option a snapshot carries" },
		{ "\x01\0\0\0--restore=/x\0", 18, 1, "not an option a snapshot carries" },
		{ "\x02\0\0\0--rng\0", 10, 1, "does not end" },
		{ "\x01\0\0\0--rng\0junk", 14, 1, "bytes after the last option" },
		{ "\x00\x10\0\0", 4, 1, "malformed config section" },
		{ "\x01\0", 2, 1, "malformed config section" },
		{ "\x00\0\0\0", 4, 2, "malformed config section" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (parse_payload(bad[i].bytes, bad[i].len, bad[i].version, err, sizeof(err)) != -1 ||
		    !strstr(err, bad[i].want))
			fail_msg("case %zu: '%s', want '%s'", i, err, bad[i].want);
	}
	assert_int_equal(parse_payload("\x02\0\0\0--rng\0--mem=2M\0", 19, 1, err, sizeof(err)), 0);
	assert_int_equal(parse_payload("\0\0\0\0", 4, 1, err, sizeof(err)), 0);
}

static void expect_load_error(const char *mem, const char *want)
{
	char **args = (char **)1;
	int n = 99;
	char err[400] = "";
	if (snapshot_load_check(state_path, mem, &args, &n, err, sizeof(err)) != -1 || !strstr(err, want))
		fail_msg("load check: '%s', want '%s'", err, want);
	assert_null(args);
	assert_int_equal(n, 0);
}

static void test_load_check(void **state)
{
	(void)state;
	uint8_t id[16], other[16] = { 1 };
	write_state(2, vm_args, 4, id);
	write_mem(mem_path, SNAP_MEM_MAGIC, id);
	char **args;
	int n;
	char err[400];
	assert_int_equal(snapshot_load_check(state_path, mem_path, &args, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_string_equal(args[2], "--disk=/img/a.img,ro,bw=1M");
	options_free_args(args, n);
	/* NULL: the memory file the state names */
	assert_int_equal(snapshot_load_check(state_path, NULL, &args, &n, err, sizeof(err)), 0);
	options_free_args(args, n);
	expect_load_error("/nonexistent.mem", "cannot open the memory file /nonexistent.mem");
	write_mem(other_path, SNAP_MEM_MAGIC, other);
	expect_load_error(other_path, "belongs to another snapshot");
	write_mem(other_path, SNAP_DIFF_MAGIC, id);
	expect_load_error(other_path, "is a diff snapshot's memory file: merge it onto its base first");
	expect_load_error(state_path, "is not the memory file of a 1 MiB guest"); /* the state file given as RAM */
	/* a damaged state file: checked whole before anything else */
	int fd = open(state_path, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)sizeof(struct snap_header) + 60), 1);
	close(fd);
	expect_load_error(mem_path, "corrupt section memory #0 (checksum)");
	/* not a snapshot at all */
	fd = open(state_path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "{}", 2), 2);
	close(fd);
	expect_load_error(mem_path, "is not an hvmm snapshot");
	/* an older hvmm's file: restorable only with its options */
	write_state(1, NULL, 0, id);
	write_mem(mem_path, SNAP_MEM_MAGIC, id);
	expect_load_error(mem_path, "did not keep the VM's options");
	unlink(state_path);
	expect_load_error(mem_path, "cannot read");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_roundtrip, setup, teardown),
		cmocka_unit_test(test_config_hostile),
		cmocka_unit_test_setup_teardown(test_load_check, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
