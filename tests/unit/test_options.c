/* options: the options a snapshot carries (options_vm_args) are the ones
 * that build the VM, each spelled out; parsed again they give the same VM
 * configuration (command line → args → parse → the same config); and a
 * snapshot's file cannot smuggle in an option that writes a file or opens
 * a socket (options_vm_arg_ok). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"
#include "vm.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

/* options_parse cuts some values up in place (as it may: argv is the
 * process's): it gets writable copies, which the configuration keeps. */
static char **kept[8];
static int kept_argc[8], nkept;

static int parse(int argc, char **argv, struct vm_config *cfg)
{
	bool done = false, preboot = false;
	char **v = calloc((size_t)argc + 1, sizeof(*v));
	for (int i = 0; i < argc; i++)
		v[i] = strdup(argv[i]);
	assert_true(nkept < 8);
	kept[nkept] = v; /* lives on in cfg until release() */
	kept_argc[nkept++] = argc;
	options_defaults(cfg);
	return options_parse(argc, v, cfg, &done, &preboot);
}

static int release(void **state)
{
	(void)state;
	while (nkept > 0) {
		nkept--;
		options_free_args(kept[nkept], kept_argc[nkept]);
	}
	return 0;
}

static void assert_same_vm(const struct vm_config *a, const struct vm_config *b)
{
	assert_int_equal(a->mem_size, b->mem_size);
	assert_int_equal(a->ncpus, b->ncpus);
	assert_int_equal(a->irqchip, b->irqchip);
	assert_int_equal(a->acpi, b->acpi);
	assert_int_equal(a->halt_poll_ns, b->halt_poll_ns);
	assert_int_equal(a->console_virtio, b->console_virtio);
	assert_int_equal(a->rng, b->rng);
	assert_int_equal(a->nr_disks, b->nr_disks);
	for (int i = 0; i < a->nr_disks; i++) {
		assert_string_equal(a->disks[i].path, b->disks[i].path);
		assert_int_equal(a->disks[i].readonly, b->disks[i].readonly);
		assert_memory_equal(&a->disks[i].rl, &b->disks[i].rl, sizeof(a->disks[i].rl));
	}
	assert_int_equal(a->nr_nets, b->nr_nets);
	for (int i = 0; i < a->nr_nets; i++)
		assert_string_equal(a->net[i], b->net[i]);
	assert_int_equal(a->nr_cpuid_ops, b->nr_cpuid_ops);
	for (int i = 0; i < a->nr_cpuid_ops; i++) {
		assert_string_equal(a->cpuid_ops[i].spec, b->cpuid_ops[i].spec);
		assert_int_equal(a->cpuid_ops[i].set, b->cpuid_ops[i].set);
	}
	assert_true((a->cpu_template == NULL) == (b->cpu_template == NULL));
	if (a->cpu_template)
		assert_string_equal(a->cpu_template, b->cpu_template);
	assert_int_equal(a->nr_msr_filter, b->nr_msr_filter);
	assert_memory_equal(a->msr_filter, b->msr_filter, sizeof(a->msr_filter));
	assert_int_equal(a->no_irqfd, b->no_irqfd);
	assert_int_equal(a->no_ioeventfd, b->no_ioeventfd);
	assert_int_equal(a->no_hlt_exits, b->no_hlt_exits);
	assert_int_equal(a->no_pause_exits, b->no_pause_exits);
	assert_int_equal(a->pc_testdev, b->pc_testdev);
	assert_int_equal(a->pci_testdev, b->pci_testdev);
	assert_int_equal(a->edu, b->edu);
	assert_int_equal(a->intel_iommu, b->intel_iommu);
	assert_int_equal(a->intremap, b->intremap);
	assert_int_equal(a->strict_io, b->strict_io);
}

static void test_roundtrip(void **state)
{
	(void)state;
	char *argv[] = { "run", "-m", "512M", "--cpus=2", "--irq", "kernel", "--acpi", "off",
			 "--disk", "/img/root.img,ro,bw=10M,iops=100", "--disk", "/img/data,odd.img",
			 "--network", "user,hostfwd=tcp::2222-:22", "--network=tap:tap0,rx-bw=1M",
			 "--rng", "--console", "virtio", "--device", "edu", "--device", "intel-iommu,intremap=off",
			 "--device", "pc-testdev", "--cpuid-mask", "avx", "--cpuid-set", "7.0:ebx:5", "--cpu-template",
			 "minimal", "--msr-filter", "0xc0000103", "--no-irqfd", "--halt-poll", "kvm", "--strict-io",
			 /* the process's own: not carried */
			 "--api-sock", "/run/vm.sock", "--id", "vm1", "--serial", "/tmp/log", "--serial-limit", "1M",
			 "--stats", "--stats-json", "/tmp/s.json", "--timeout", "5", "--metrics", "/tmp/m",
			 "--track-dirty-pages", "--seccomp", "off", "--kernel", "/boot/vmlinux", "--cmdline",
			 "console=ttyS0", "--initrd", "/boot/initrd", NULL };
	char **args;
	int n;
	assert_int_equal(options_vm_args(ARGC(argv), argv, &args, &n), 0);
	const char *want[] = {
		"--mem=512M", "--cpus=2", "--irqchip=kernel", "--acpi=off", "--disk=/img/root.img,ro,bw=10M,iops=100",
		"--disk=/img/data,odd.img", "--network=user,hostfwd=tcp::2222-:22", "--network=tap:tap0,rx-bw=1M",
		"--rng", "--console=virtio", "--device=edu", "--device=intel-iommu,intremap=off",
		"--device=pc-testdev", "--cpuid-mask=avx", "--cpuid-set=7.0:ebx:5", "--cpu-template=minimal",
		"--msr-filter=0xc0000103", "--no-irqfd", "--halt-poll=kvm", "--strict-io",
	};
	assert_int_equal(n, (int)(sizeof(want) / sizeof(want[0])));
	for (int i = 0; i < n; i++) {
		assert_string_equal(args[i], want[i]);
		assert_true(options_vm_arg_ok(args[i]));
	}
	assert_null(args[n]);
	struct vm_config a, b;
	assert_int_equal(parse(ARGC(argv), argv, &a), 0);
	/* the args, with what a restore adds */
	char **v = calloc((size_t)n + 3, sizeof(*v));
	v[0] = "run";
	for (int i = 0; i < n; i++)
		v[i + 1] = args[i];
	v[n + 1] = "--restore=/s/vm.snap";
	assert_int_equal(parse(n + 2, v, &b), 0);
	assert_same_vm(&a, &b);
	/* and none of the process's options came along */
	assert_null(b.api_sock);
	assert_null(b.stats_json);
	assert_null(b.metrics_path);
	assert_false(b.stats);
	assert_false(b.track_dirty_pages);
	assert_int_equal(b.serial, SERIAL_STDIO);
	assert_null(b.image);
	assert_null(b.cmdline);
	assert_string_equal(b.restore, "/s/vm.snap");
	free(v);
	/* the canonical args are their own canonical form */
	char **again;
	int n2;
	char **w = calloc((size_t)n + 2, sizeof(*w));
	w[0] = "run";
	for (int i = 0; i < n; i++)
		w[i + 1] = args[i];
	assert_int_equal(options_vm_args(n + 1, w, &again, &n2), 0);
	assert_int_equal(n2, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(again[i], args[i]);
	options_free_args(again, n2);
	free(w);
	options_free_args(args, n);
}

/* The defaults are carried by saying nothing: a command line without VM
 * options gives none (main then takes the snapshot's). */
static void test_nothing_to_carry(void **state)
{
	(void)state;
	char *argv[] = { "run", "--restore", "/s/vm.snap,mem=/s/vm.mem", "--api-sock", "/s/sock", "--stats", NULL };
	char **args;
	int n;
	assert_int_equal(options_vm_args(ARGC(argv), argv, &args, &n), 0);
	assert_int_equal(n, 0);
	assert_null(args[0]);
	options_free_args(args, n);
	/* an unknown option is options_parse's to report, not a crash here */
	char *bad[] = { "run", "--no-such", "-m", "--mem", NULL };
	assert_int_equal(options_vm_args(ARGC(bad), bad, &args, &n), 0);
	options_free_args(args, n);
}

static void test_arg_ok(void **state)
{
	(void)state;
	const char *ok[] = { "--mem=1G", "--cpus=4", "--rng", "--disk=/a.img,ro", "--network=user",
			     "--device=edu", "--no-ioeventfd", "--console=virtio" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!options_vm_arg_ok(ok[i]))
			fail_msg("%s refused", ok[i]);
	const char *bad[] = { "--mem", "--rng=1", "--api-sock=/x", "--serial=/etc/passwd", "--metrics=/x",
			      "--stats-json=/x", "--restore=/x", "--incoming=tcp::1", "--kernel=/x", "-m512M",
			      "--me=1G", "mem=1G", "", "--", "--seccomp=off", "--config-file=/x", "--track-dirty-pages",
			      "--dirty-log=10" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (options_vm_arg_ok(bad[i]))
			fail_msg("'%s' taken", bad[i]);
}

/* --track-dirty-pages and --dirty-log both take KVM's log: refused together. */
static void test_track_conflict(void **state)
{
	(void)state;
	char *argv[] = { "run", "--track-dirty-pages", "--dirty-log", "100", "img", NULL };
	struct vm_config c;
	FILE *keep = stderr;
	stderr = fopen("/dev/null", "w");
	int r = parse(ARGC(argv), argv, &c);
	fclose(stderr);
	stderr = keep;
	assert_int_equal(r, 2);
	char *ok[] = { "run", "--track-dirty-pages", "img", NULL };
	assert_int_equal(parse(ARGC(ok), ok, &c), 0);
	assert_true(c.track_dirty_pages);
}

/* The list of carried options is the parser's: same names, same values. */
static void test_vm_list(void **state)
{
	(void)state;
	assert_int_equal(options_check_vm_list(), 0);
	int n = 0;
	for (const struct options_vm_opt *v = options_vm_list; v->name; v++)
		n++;
	assert_int_equal(n, 23);
}

/* --posted-interrupts: on by default with --irqchip user, off on request,
 * refused without hvmm's APICs or with another word. */
static void test_posted(void **state)
{
	(void)state;
	struct vm_config c;
	char *user[] = { "run", "--irqchip", "user", "img", NULL };
	assert_int_equal(parse(ARGC(user), user, &c), 0);
	assert_int_equal(c.posted_interrupts, 1);
	char *off[] = { "run", "--irqchip", "user", "--posted-interrupts", "off", "img", NULL };
	assert_int_equal(parse(ARGC(off), off, &c), 0);
	assert_int_equal(c.posted_interrupts, 0);
	char *split[] = { "run", "img", NULL };
	assert_int_equal(parse(ARGC(split), split, &c), 0);
	assert_int_equal(c.posted_interrupts, 0);
	FILE *keep = stderr;
	stderr = fopen("/dev/null", "w");
	char *nouser[] = { "run", "--posted-interrupts", "on", "img", NULL };
	int r1 = parse(ARGC(nouser), nouser, &c);
	char *word[] = { "run", "--irqchip", "user", "--posted-interrupts", "yes", "img", NULL };
	int r2 = parse(ARGC(word), word, &c);
	fclose(stderr);
	stderr = keep;
	assert_int_equal(r1, 2);
	assert_int_equal(r2, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_roundtrip, release),
		cmocka_unit_test(test_nothing_to_carry),
		cmocka_unit_test(test_arg_ok),
		cmocka_unit_test(test_vm_list),
		cmocka_unit_test(test_posted),
		cmocka_unit_test_teardown(test_track_conflict, release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
