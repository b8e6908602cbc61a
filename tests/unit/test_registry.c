/*
 * The device registry (src/devices/registry.c, types.c): what vm.c relies on
 * when it builds a VM from the options. The table's order and the options'
 * counts; a create that fails gives the user's message and the exit status
 * that says whose mistake it was (a --serial file or a --disk image is the
 * user's: 2), with what was made before it still recorded and freed by
 * dev_destroy_all; instances numbered per name and found by it; pause and
 * resume reach the devices that have them; each device's counters under its
 * name.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus.h"
#include "device.h"
#include "iommu.h"
#include "irq.h"
#include "devices/devices.h"
#include "pci.h"
#include "util.h"
#include "virtio/image_lock.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "fake_vm.h"

#define RAM (16ull << 20)

static struct vm vm;

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	vm.cfg.ncpus = 1;
	vm.cfg.serial = SERIAL_NONE;
	vm.cfg.irqchip = IRQCHIP_SPLIT;
	if (mem_init(&vm.mem, RAM) || pci_init(&vm))
		return -1;
	fake_vm_env(&vm); /* the PCI host */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dev_destroy_all(&vm.devs);
	pci_destroy(&vm);
	irq_destroy(&vm); /* the MSI-X vectors' GSIs */
	fake_vm_free(&vm);
	mem_free(&vm.mem);
	return 0;
}

static int index_of(const char *name)
{
	for (size_t i = 0; i < dev_nr_types; i++)
		if (!strcmp(dev_types[i]->name, name))
			return (int)i;
	fail_msg("%s is not a device type", name);
	return -1;
}

/* The order the snapshot sections and PCI slots depend on; every type
 * named once, with what the user reads on a failure. */
static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < dev_nr_types; i++) {
		const struct dev_ops *t = dev_types[i];
		assert_non_null(t->name);
		assert_non_null(t->desc);
		assert_non_null(t->create);
		if (t->snap.name) {
			assert_string_equal(t->snap.name, t->name);
			assert_non_null(t->snap.save);
			assert_non_null(t->snap.load);
		}
		/* Every type resets, but one with no state at all (isa-debug-exit
		 * is a port that stops the VM); the unit tests of snapshots check
		 * that each reset gives what a fresh device saves. */
		if (!t->reset && strcmp(t->name, "debug-exit"))
			fail_msg("device type %s has no reset", t->name);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(dev_types[j]->name, t->name);
	}
	assert_true(index_of("uart") < index_of("ioapic"));
	/* the IOMMU first: before the IOAPIC and the PCI functions behind it */
	assert_int_equal(index_of("intel-iommu"), 0);
	assert_true(index_of("pc-testdev") < index_of("pci-testdev"));
	assert_true(index_of("pci-testdev") < index_of("edu"));
	assert_true(index_of("edu") < index_of("vfio"));
	assert_true(index_of("vfio") < index_of("virtio-rng"));
	assert_true(index_of("virtio-rng") < index_of("virtio-console"));
	assert_true(index_of("virtio-console") < index_of("virtio-blk"));
	assert_true(index_of("virtio-blk") < index_of("virtio-net"));
}

/* The options decide what is made: the kernel irqchip has none of hvmm's
 * chips, and devices not asked for are not there. */
static void test_counts(void **state)
{
	(void)state;
	vm.cfg.irqchip = IRQCHIP_KERNEL;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), 0);
	assert_null(dev_find(&vm.devs, "ioapic", 0));
	assert_null(dev_find(&vm.devs, "pic", 0));
	assert_null(dev_find(&vm.devs, "pit", 0));
	assert_null(dev_find(&vm.devs, "pc-testdev", 0));
	assert_null(dev_find(&vm.devs, "edu", 0));
	assert_non_null(dev_find(&vm.devs, "uart", 0));
	assert_non_null(dev_find(&vm.devs, "rtc", 0));
	/* the first entry is the host bridge pci_init recorded (for its place
	 * among the snapshot sections); the rest are the table's, in order */
	assert_string_equal(vm.devs.v[0].ops->name, "pci-host");
	assert_non_null(vm.devs.v[0].ops->reset);
	for (int i = 1; i < vm.devs.nr; i++) {
		assert_ptr_equal(vm.devs.v[i].ops, dev_types[index_of(vm.devs.v[i].ops->name)]);
		if (i > 1)
			assert_true(index_of(vm.devs.v[i - 1].ops->name) < index_of(vm.devs.v[i].ops->name));
	}
}

/* --device intel-iommu: created first of the table (right after the host
 * bridge's entry: the snapshot section order of earlier hvmm files), and
 * the devices after it get it as their env's iommu (dev_create_all). */
static void test_iommu_first(void **state)
{
	(void)state;
	vm.cfg.intel_iommu = true;
	vm.cfg.intremap = -1; /* auto: on with the split irqchip */
	vm.cfg.rng = true;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), 0);
	assert_string_equal(vm.devs.v[0].ops->name, "pci-host");
	assert_ptr_equal(vm.devs.v[1].ops, &iommu_dev_ops);
	assert_non_null(vm.env.iommu);
	assert_ptr_equal(vm.env.iommu, dev_find(&vm.devs, "intel-iommu", 0));
	assert_non_null(dev_find(&vm.devs, "ioapic", 0));
	assert_non_null(dev_find(&vm.devs, "virtio-rng", 0));
	/* its register window is on the MMIO bus, the capabilities readable */
	assert_non_null(bus_find(&vm.mmio, IOMMU_BASE, 8));
	/* auto intremap with the split irqchip: IR offered (ECAP bit 3) */
	const struct bus_range *r = bus_find(&vm.mmio, IOMMU_BASE + 0x10, 8);
	assert_true(r->ops->read(r->opaque, IOMMU_BASE + 0x10 - r->base, 8) & (1u << 3));
}

/* intremap=on needs hvmm's IOAPIC: with the kernel irqchip it is the
 * user's mistake (status 2), named, and nothing after it is made. */
static void test_iommu_intremap_usage(void **state)
{
	(void)state;
	vm.cfg.irqchip = IRQCHIP_KERNEL;
	vm.cfg.intel_iommu = true;
	vm.cfg.intremap = 1;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), HVMM_EXIT_USAGE);
	assert_string_equal(err, "--device intel-iommu,intremap=on needs --irqchip split or user");
	assert_int_equal(vm.devs.nr, 1); /* the host bridge alone */
	assert_null(vm.env.iommu);
}

/* A --disk that does not open: the user's (status 2), named; the devices
 * made before it are recorded (and freed by teardown's dev_destroy_all,
 * which ASan checks). */
static void test_disk_error_is_usage(void **state)
{
	(void)state;
	vm.cfg.nr_disks = 1;
	vm.cfg.disks[0] = (struct vm_disk){ .path = "/nonexistent-hvmm/disk.img" };
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), HVMM_EXIT_USAGE);
	assert_string_equal(err, "--disk /nonexistent-hvmm/disk.img: No such file or directory");
	assert_non_null(dev_find(&vm.devs, "uart", 0));
	assert_null(dev_find(&vm.devs, "virtio-blk", 0));
}

/* An image another VM holds: "locked", and the user's. */
static void test_locked_disk(void **state)
{
	(void)state;
	char path[] = "/tmp/hvmm-test-reg-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	int other = open(path, O_RDWR | O_CLOEXEC); /* another VM's open file */
	assert_true(other >= 0);
	assert_int_equal(image_lock(other, false), 0);
	vm.cfg.nr_disks = 1;
	vm.cfg.disks[0] = (struct vm_disk){ .path = path };
	char err[256] = "", want[300];
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), HVMM_EXIT_USAGE);
	snprintf(want, sizeof(want), "--disk %s: locked: in use by another VM", path);
	assert_string_equal(err, want);
	close(other);
	close(fd);
	unlink(path);
}

/* A --serial file that cannot be opened: the user's, worded as ever. */
static void test_serial_error_is_usage(void **state)
{
	(void)state;
	vm.cfg.serial = SERIAL_FILE;
	vm.cfg.serial_path = "/nonexistent-hvmm/serial.log";
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), HVMM_EXIT_USAGE);
	assert_string_equal(err, "cannot open serial output /nonexistent-hvmm/serial.log: No such file or directory");
	assert_int_equal(vm.devs.nr, 1); /* the host bridge alone: the UART is the first type */
}

/* A host failure (a device whose ports are taken) is the host's: 6. */
static void test_host_error(void **state)
{
	(void)state;
	char err[256] = "";
	assert_non_null(fake_dev_create(&vm, &rtc_dev_ops)); /* 0x70 taken before the walk */
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), HVMM_EXIT_HOST);
	assert_string_equal(err, "creating RTC: File exists");
}

/* Two instances of one name: numbered 0 and 1, found by both. */
static void test_instances(void **state)
{
	(void)state;
	char path[2][32];
	for (int i = 0; i < 2; i++) {
		snprintf(path[i], sizeof(path[i]), "/tmp/hvmm-test-reg-XXXXXX");
		int fd = mkstemp(path[i]);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 1 << 20), 0);
		close(fd);
		vm.cfg.disks[i] = (struct vm_disk){ .path = path[i] };
	}
	vm.cfg.nr_disks = 2;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), 0);
	void *a = dev_find(&vm.devs, "virtio-blk", 0), *b = dev_find(&vm.devs, "virtio-blk", 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_null(dev_find(&vm.devs, "virtio-blk", 2));
	int seen = 0;
	for (int i = 0; i < vm.devs.nr; i++)
		if (!strcmp(vm.devs.v[i].ops->name, "virtio-blk"))
			assert_int_equal(vm.devs.v[i].index, seen++);
	assert_int_equal(seen, 2);
	unlink(path[0]);
	unlink(path[1]);
}

/* Each device's counters under its name; the UART's drops, the PIT's IRQs. */
static void test_stats(void **state)
{
	(void)state;
	vm.cfg.pc_testdev = true;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), 0);
	json_object *o = json_object_new_object();
	dev_stats_all(&vm.devs, o);
	json_object *u, *p, *t, *d;
	assert_true(json_object_object_get_ex(o, "uart", &u));
	assert_true(json_object_object_get_ex(u, "dropped", &d));
	assert_int_equal(json_object_get_uint64(d), 0);
	assert_true(json_object_object_get_ex(o, "pit", &p));
	assert_true(json_object_object_get_ex(p, "irqs", &d));
	assert_true(json_object_object_get_ex(o, "pc-testdev", &t));
	assert_true(json_object_object_get_ex(t, "flushes", &d));
	assert_false(json_object_object_get_ex(o, "rtc", &d)); /* no counters */
	json_object_put(o);
}

/* Pause reaches the UART: input typed while paused is held, and delivered
 * by the resume. */
static void test_pause_resume(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_equal(dev_create_all(&vm.env, err, sizeof(err)), 0);
	const struct bus_range *r = bus_find(&vm.pio, UART_COM1_BASE + 5, 1);
	assert_non_null(r);
	atomic_store(&vm.paused, true);
	dev_pause_all(&vm.devs);
	uart_receive(dev_find(&vm.devs, "uart", 0), (const uint8_t *)"x", 1);
	assert_int_equal(r->ops->read(r->opaque, 5, 1) & 0x01, 0); /* LSR: no data yet */
	atomic_store(&vm.paused, false);
	dev_resume_all(&vm.devs);
	assert_int_equal(r->ops->read(r->opaque, 5, 1) & 0x01, 0x01);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_error_is_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_error_is_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iommu_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iommu_intremap_usage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
