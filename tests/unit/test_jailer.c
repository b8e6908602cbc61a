/* jailer: option checks and hvmm's command line moved into the jail (no root needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "jailer/jailer.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static int parse(int argc, char **argv, struct jail_cfg *cfg)
{
	bool done;
	return jail_parse(argc, argv, cfg, &done);
}

/* hvmm's argv in the jail, joined with '|', for one comparison per case. */
static void joined(const struct jail_cfg *cfg, char *out, size_t len)
{
	out[0] = 0;
	for (char **a = cfg->hvmm_argv; *a; a++) {
		strncat(out, *a, len - strlen(out) - 1);
		if (a[1])
			strncat(out, "|", len - strlen(out) - 1);
	}
}

static void test_full(void **state)
{
	(void)state;
	char *argv[] = { "hvmm-jailer", "--id", "vm-1", "--exec-file", "/usr/bin/hvmm", "--uid", "123",
			 "--gid", "100", "--cgroup", "memory.max=512M", "--cgroup", "cpu.max=50000 100000",
			 "--new-pid-ns", "--parent-cgroup", "tenants/a", "--",
			 "run", "-m", "512M", "--kernel=/boot/vmlinuz", "--initrd", "/boot/initrd.img",
			 "--cmdline", "--kernel x", "--disk", "/img/a,b.img,ro,bw=1M", "--disk", "/img/c.img",
			 "--module", "/m.bin,arg one", "--serial", "out/serial.log", "--stats-json=s.json",
			 "--network", "user", NULL };
	struct jail_cfg cfg;
	char s[1024];
	assert_int_equal(parse(ARGC(argv), argv, &cfg), 0);
	assert_string_equal(cfg.id, "vm-1");
	assert_int_equal(cfg.uid, 123);
	assert_int_equal(cfg.gid, 100);
	assert_true(cfg.new_pid_ns);
	assert_false(cfg.daemonize);
	assert_true(cfg.net_user); /* --network user: the slirp helper goes in */
	assert_string_equal(cfg.base, JAIL_DEFAULT_BASE);
	assert_string_equal(cfg.parent_cgroup, "tenants/a");
	assert_int_equal(cfg.nr_cgroup, 2);
	assert_string_equal(cfg.cgroup[1].file, "cpu.max");
	assert_string_equal(cfg.cgroup[1].value, "50000 100000");
	joined(&cfg, s, sizeof(s));
	assert_string_equal(s, "/hvmm|run|-m|512M|--kernel|/kernel|--initrd|/initrd|--cmdline|--kernel x|"
			       "--disk|/disk0,ro,bw=1M|--disk|/disk1|--module|/module0,arg one|"
			       "--serial|/serial|--stats-json|/stats.json|--network|user");
	assert_int_equal(cfg.nr_binds, 7);
	/* a comma in the file's name stays in the name; ro comes from the options */
	assert_string_equal(cfg.binds[2].src, "/img/a,b.img");
	assert_true(cfg.binds[2].readonly);
	assert_false(cfg.binds[3].readonly);
	assert_true(cfg.binds[0].readonly); /* the kernel */
	assert_string_equal(cfg.binds[4].src, "/m.bin");
	assert_true(cfg.binds[5].output);
	assert_string_equal(cfg.binds[5].src, "out/serial.log");
	assert_string_equal(cfg.binds[6].name, "stats.json");
	jail_cfg_free(&cfg);
}

/* IMAGE found among values, short clusters, prefixes and "--". */
static void test_image(void **state)
{
	(void)state;
	struct {
		char *argv[12];
		const char *want;
	} cases[] = {
		{ { "run", "-m", "128M", "-c2", "--serial", "stdio", "img.elf", NULL },
		  "/hvmm|run|-m|128M|-c2|--serial|stdio|/kernel" },
		{ { "run", "-m128M", "--stats", "img.elf", "--ker", NULL }, "/hvmm|run|-m128M|--stats|/kernel|--ker" },
		{ { "run", "--ker", "vmlinuz", "--no-i", NULL }, "/hvmm|run|--kernel|/kernel|--no-i" },
		{ { "run", "--timeout", "5", "--", "-weird-name", NULL }, "/hvmm|run|--timeout|5|--|/kernel" },
		{ { "run", "--serial", "none", "--disk=", "x", NULL }, "/hvmm|run|--serial|none|--disk=|/kernel" },
		/* a restore: no IMAGE needed, both snapshot files go in */
		{ { "run", "--restore", "/s/vm,1.snap,mem=/s/vm.mem", "-m", "512M", NULL },
		  "/hvmm|run|--restore|/snapshot,mem=/snapshot.mem|-m|512M" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jail_cfg cfg;
		char s[512];
		int argc = 0;
		while (cases[i].argv[argc])
			argc++;
		memset(&cfg, 0, sizeof(cfg));
		assert_int_equal(jail_rewrite(argc, cases[i].argv, &cfg), 0);
		joined(&cfg, s, sizeof(s));
		assert_string_equal(s, cases[i].want);
		jail_cfg_free(&cfg);
	}
}

/* The state file's own path to its memory file is a host path: in a jail
 * mem= must say where it is. */
static void test_restore_needs_mem(void **state)
{
	(void)state;
	char *argv[] = { "run", "--restore", "/s/vm.snap", NULL };
	struct jail_cfg cfg;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_not_equal(jail_rewrite(3, argv, &cfg), 0);
	jail_cfg_free(&cfg);
	char *ok[] = { "run", "--restore=/s/vm.snap,mem=m", NULL };
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(jail_rewrite(2, ok, &cfg), 0);
	assert_int_equal(cfg.nr_binds, 2);
	assert_string_equal(cfg.binds[0].src, "/s/vm.snap");
	assert_string_equal(cfg.binds[1].src, "m");
	assert_true(cfg.binds[0].readonly && cfg.binds[1].readonly);
	jail_cfg_free(&cfg);
}

static void test_bad(void **state)
{
	(void)state;
#define BASE "hvmm-jailer", "--exec-file", "/h", "--gid", "1"
	char *a1[] = { BASE, "--id", "a_b", "--uid", "1", "--", "run", "x", NULL };
	char *a2[] = { BASE, "--id", "x", "--uid", "0", "--", "run", "x", NULL };
	char *a3[] = { BASE, "--id", "x", "--uid", "-1", "--", "run", "x", NULL };
	char *a4[] = { BASE, "--id", "x", "--uid", "1", "run", "x", NULL };
	char *a5[] = { BASE, "--id", "x", "--uid", "1", "--", "x", NULL };
	char *a6[] = { BASE, "--id", "x", "--uid", "1", "--cgroup", "cgroup.subtree_control=+memory", "--", "run", "x", NULL };
	char *a7[] = { BASE, "--id", "x", "--uid", "1", "--cgroup", "../memory.max=1", "--", "run", "x", NULL };
	char *a8[] = { BASE, "--id", "x", "--uid", "1", "--cgroup", "memory.max=", "--", "run", "x", NULL };
	char *a9[] = { BASE, "--id", "x", "--uid", "1", "--parent-cgroup", "a/../b", "--", "run", "x", NULL };
	char *a10[] = { BASE, "--id", "x", "--uid", "1", "--chroot-base-dir", "srv", "--", "run", "x", NULL };
	char *a11[] = { BASE, "--uid", "1", "--", "run", "x", NULL };
	char *a12[] = { BASE, "--id", "x", "--uid", "1", "--", "run", "--initrd", "a", "--initrd", "b", "x", NULL };
	char *a13[] = { BASE, "--id", "0123456789012345678901234567890123456789012345678901234567890123456789",
			"--uid", "1", "--", "run", "x", NULL };
	char *a14[] = { BASE, "--id", "x", "--uid", "1", "--", "run", "x", "y", "--kernel", "z", NULL };
	char **all[] = { a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14 };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct jail_cfg cfg;
		int argc = 0;
		while (all[i][argc])
			argc++;
		int r = parse(argc, all[i], &cfg);
		if (r != JAIL_EXIT_USAGE)
			fail_msg("case %zu: status %d, want %d", i + 1, r, JAIL_EXIT_USAGE);
		jail_cfg_free(&cfg);
	}
}

/* The jailer's list of hvmm's value-taking options is main.c's: a new
 * option there that takes a file or a value must be known here, or IMAGE
 * could be mistaken for a value (or the other way round). */
static void test_option_table(void **state)
{
	(void)state;
	FILE *f = fopen(HVMM_OPTIONS_C, "r");
	assert_non_null(f);
	char line[512];
	int in_main = 0, known = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		if (!strstr(line, "required_argument") || sscanf(line, " { \"%63[^\"]\"", name) != 1)
			continue;
		in_main++;
		bool found = false;
		for (int i = 0; jail_hvmm_value_opts[i]; i++)
			found |= strcmp(jail_hvmm_value_opts[i], name) == 0;
		if (!found)
			fail_msg("hvmm's --%s takes a value; the jailer's list lacks it", name);
	}
	fclose(f);
	while (jail_hvmm_value_opts[known])
		known++;
	assert_int_equal(in_main, known);
}

static void test_help(void **state)
{
	(void)state;
	char *argv[] = { "hvmm-jailer", "--help", NULL };
	struct jail_cfg cfg;
	bool done = false;
	FILE *keep = stdout;
	stdout = fopen("/dev/null", "w"); /* the usage text is not the test's output */
	assert_int_equal(jail_parse(ARGC(argv), argv, &cfg, &done), 0);
	fclose(stdout);
	stdout = keep;
	assert_true(done);
	jail_cfg_free(&cfg);
}

/* A dynamically linked program's interpreter and libraries land at their
 * own paths under the root; a file that is no ELF is an error. /bin/true is
 * Debian's, linked with the C library. */
static void test_libs(void **state)
{
	(void)state;
	char root[] = "/tmp/hvmm-test-jail-XXXXXX", path[512];
	assert_non_null(mkdtemp(root));
	assert_int_equal(jail_copy_libs("/bin/true", root), 0);
	struct stat st;
	snprintf(path, sizeof(path), "%s/lib64/ld-linux-x86-64.so.2", root);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size > 100000);
	snprintf(path, sizeof(path), "%s/lib/x86_64-linux-gnu/libc.so.6", root);
	if (stat(path, &st) != 0) /* where the system keeps it in /usr/lib only */
		snprintf(path, sizeof(path), "%s/usr/lib/x86_64-linux-gnu/libc.so.6", root);
	assert_int_equal(stat(path, &st), 0);
	/* options.c's source: no ELF */
	assert_int_equal(jail_copy_libs(HVMM_OPTIONS_C, root), JAIL_EXIT_SETUP);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_image),
		cmocka_unit_test(test_restore_needs_mem),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_option_table),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_libs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
