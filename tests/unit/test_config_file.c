/* Unit tests for --config-file (src/config_file.c): Firecracker's VM
 * description as hvmm options, and every field it refuses by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_file.h"

/* The options joined with '|', or the error. */
static char got[2048];

static int run(const char *json)
{
	char **argv = NULL;
	int argc = 0;
	char err[256] = "";
	int r = config_file_parse(json, strlen(json), &argv, &argc, err, sizeof(err));
	got[0] = 0;
	if (r < 0) {
		snprintf(got, sizeof(got), "%s", err);
	} else {
		for (int i = 0; i < argc; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "|" : "", argv[i]);
		assert_null(argv ? argv[argc] : NULL);
	}
	config_file_free(argv, argc);
	return r;
}

static void expect_ok(const char *json, const char *want)
{
	if (run(json) != 0 || strcmp(got, want) != 0)
		fail_msg("%s\n  got  %s\n  want %s", json, got, want);
}

static void expect_err(const char *json, const char *want)
{
	if (run(json) == 0 || !strstr(got, want))
		fail_msg("%s\n  got  %s\n  want an error with '%s'", json, got, want);
}

/* Firecracker's own example configuration, shape for shape. */
static void test_firecracker_example(void **state)
{
	(void)state;
	expect_ok("{\n"
		  "  \"boot-source\": {\"kernel_image_path\": \"vmlinux.bin\",\n"
		  "                  \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off\"},\n"
		  "  \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"bionic.rootfs.ext4\",\n"
		  "              \"is_root_device\": true, \"is_read_only\": false}],\n"
		  "  \"network-interfaces\": [{\"iface_id\": \"eth0\", \"guest_mac\": \"AA:FC:00:00:00:01\",\n"
		  "                          \"host_dev_name\": \"tap0\"}],\n"
		  "  \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 1024, \"smt\": false,\n"
		  "                     \"track_dirty_pages\": false}\n"
		  "}\n",
		  "--cpus=2|--mem=1024M|--disk=bionic.rootfs.ext4|--network=tap:tap0,mac=AA:FC:00:00:00:01|"
		  "--kernel=vmlinux.bin|--cmdline=console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw");
}

static void test_mapping(void **state)
{
	(void)state;
	/* the root device first whatever its place; read-only roots say ro */
	expect_ok("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a.img\", \"is_root_device\": false,"
		  " \"is_read_only\": true},"
		  " {\"drive_id\": \"r\", \"path_on_host\": \"r.img\", \"is_root_device\": true, \"is_read_only\": true}],"
		  " \"boot-source\": {\"kernel_image_path\": \"k\", \"initrd_path\": \"i\"}}",
		  "--disk=r.img,ro|--disk=a.img,ro|--kernel=k|--initrd=i|--cmdline=root=/dev/vda ro");
	/* a bucket of size per refill_time ms is size*1000/refill_time per second */
	expect_ok("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a.img\", \"is_root_device\": false,"
		  " \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 500, \"one_time_burst\": 4096},"
		  " \"ops\": {\"size\": 100, \"refill_time\": 1000}}}]}",
		  "--disk=a.img,bw=2097152,bw-burst=4096,iops=100");
	expect_ok("{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t1\","
		  " \"rx_rate_limiter\": {\"ops\": {\"size\": 50, \"refill_time\": 100}},"
		  " \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 1000}}}]}",
		  "--network=tap:t1,rx-pps=500,tx-bw=1000");
	expect_ok("{\"entropy\": {}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 256,"
		  " \"track_dirty_pages\": true, \"cpu_template\": \"None\", \"huge_pages\": \"None\"}}",
		  "--cpus=1|--mem=256M|--track-dirty-pages|--rng");
	expect_ok("{}", "");
	expect_ok("{\"metrics\": {\"metrics_path\": \"/run/m.fifo\"}}", "--metrics=/run/m.fifo");
	expect_ok("{\"machine-config\": {\"vcpu_count\": 4, \"mem_size_mib\": 64, \"cpu_template\": \"T2\"}}",
		  "--cpus=4|--mem=64M|--cpu-template=T2");
}

static void test_refusals_name_the_field(void **state)
{
	(void)state;
	expect_err("", "not valid JSON");
	expect_err("{\"drives\": [}", "not valid JSON");
	expect_err("{} x", "not valid JSON");
	expect_err("[]", "must be a JSON object");
	expect_err("{\"vsock\": {}}", "vsock is not supported by hvmm");
	expect_err("{\"mmds-config\": {}}", "mmds-config is not supported");
	expect_err("{\"metrics\": {}}", "metrics: missing field 'metrics_path'");
	expect_err("{\"metrics\": {\"metrics_path\": \"m\", \"level\": 1}}", "metrics: unknown field 'level'");
	expect_err("{\"drive\": []}", "unknown field 'drive'");
	expect_err("{\"machine-config\": {\"vcpu_count\": 2}}", "machine-config: missing field 'mem_size_mib'");
	expect_err("{\"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 1}}", "'vcpu_count' must be 1..64");
	expect_err("{\"machine-config\": {\"vcpu_count\": \"2\", \"mem_size_mib\": 1}}",
		   "'vcpu_count' must be an integer");
	expect_err("{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64, \"smt\": true}}", "smt true");
	expect_err("{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64, \"huge_pages\": \"2M\"}}",
		   "huge_pages \"2M\"");
	expect_err("{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64, \"vcpus\": 2}}",
		   "machine-config: unknown field 'vcpus'");
	expect_err("{\"drives\": {}}", "drives must be an array");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a\"}]}",
		   "drives[0]: missing field 'is_root_device'");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a\", \"is_root_device\": true},"
		   "{\"drive_id\": \"b\", \"path_on_host\": \"b\", \"is_root_device\": true}]}",
		   "both the root device");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"\", \"is_root_device\": false}]}",
		   "drives[0]: field 'path_on_host' is empty");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a\", \"is_root_device\": false,"
		   " \"partuuid\": \"x\"}]}", "partuuid is not supported");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a\", \"is_root_device\": false,"
		   " \"rate_limiter\": {\"bandwidth\": {\"size\": 1}}}]}",
		   "drives[0].rate_limiter.bandwidth: missing field 'refill_time'");
	expect_err("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"a\", \"is_root_device\": false,"
		   " \"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": 2000}}}]}",
		   "less than 1 per second");
	expect_err("{\"network-interfaces\": [{\"iface_id\": \"e\"}]}",
		   "network-interfaces[0]: missing field 'host_dev_name'");
	expect_err("{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t,x\"}]}",
		   "may not contain a comma");
	expect_err("{\"entropy\": {\"rate_limiter\": {}}}", "entropy: rate_limiter is not supported");
	expect_err("{\"boot-source\": {\"boot_args\": \"x\"}}", "boot-source: missing field 'kernel_image_path'");
}

/* hvmm-options: hvmm's own options, as given, after the sections'. */
static void test_hvmm_options(void **state)
{
	(void)state;
	expect_ok("{\"hvmm-options\": [\"--irqchip=user\", \"--rng\"],"
		  " \"boot-source\": {\"kernel_image_path\": \"k\"}}",
		  "--kernel=k|--irqchip=user|--rng");
	expect_err("{\"hvmm-options\": \"--rng\"}", "hvmm-options must be an array of strings");
	expect_err("{\"hvmm-options\": [\"--rng\", \"x\"]}", "hvmm-options[1]: want an option");
	expect_err("{\"hvmm-options\": [7]}", "hvmm-options[0]: want an option");
	expect_err("{\"hvmm-options\": [\"--\"]}", "hvmm-options[0]: want an option");
	expect_err("{\"hvmm-options\": [\"--config-file=x\"]}", "--config-file inside a description");
	/* several VMs are --config-file's, not a one-VM description's */
	expect_err("{\"vms\": []}", "vms: a description of several VMs is for --config-file only");
}

/* {"vms": [...]}: each VM's options apart, a bad one named by its place. */
static void test_several_vms(void **state)
{
	(void)state;
	struct config_vms v;
	char err[256] = "";
	const char *two = "{\"vms\": [{\"boot-source\": {\"kernel_image_path\": \"a\"}},"
			  " {\"boot-source\": {\"kernel_image_path\": \"b\"}, \"hvmm-options\": [\"--cpus=2\"]}]}";
	assert_int_equal(config_file_parse_vms(two, strlen(two), &v, err, sizeof(err)), 0);
	assert_true(v.multi);
	assert_int_equal(v.n, 2);
	assert_int_equal(v.argc[0], 1);
	assert_string_equal(v.argv[0][0], "--kernel=a");
	assert_int_equal(v.argc[1], 2);
	assert_string_equal(v.argv[1][0], "--kernel=b");
	assert_string_equal(v.argv[1][1], "--cpus=2");
	config_file_free_vms(&v);
	/* a plain description: one VM */
	const char *one = "{\"boot-source\": {\"kernel_image_path\": \"a\"}}";
	assert_int_equal(config_file_parse_vms(one, strlen(one), &v, err, sizeof(err)), 0);
	assert_false(v.multi);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.argv[0][0], "--kernel=a");
	config_file_free_vms(&v);
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"vms\": []}", "vms must be an array of 1 to 16" },
		{ "{\"vms\": {}}", "vms must be an array" },
		{ "{\"vms\": [{}], \"drives\": []}", "unknown field 'drives'" },
		{ "{\"vms\": [{}, 3]}", "vms[1]: must be an object" },
		{ "{\"vms\": [{}, {\"machine-config\": {\"vcpu_count\": 1}}]}",
		  "vms[1]: machine-config: missing field 'mem_size_mib'" },
		{ "{\"vms\": [{\"vms\": []}]}", "vms[0]: the description: unknown field 'vms'" },
		{ "{\"vms\": [{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]}", "vms must be an array of 1 to 16" },
		{ "{\"vms\": [", "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = config_file_parse_vms(bad[i].json, strlen(bad[i].json), &v, err, sizeof(err));
		if (r == 0 || !strstr(err, bad[i].want))
			fail_msg("%s\n  got  %s\n  want an error with '%s'", bad[i].json, r ? err : "success", bad[i].want);
		config_file_free_vms(&v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hvmm_options),
		cmocka_unit_test(test_several_vms),
		cmocka_unit_test(test_firecracker_example),
		cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_refusals_name_the_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
