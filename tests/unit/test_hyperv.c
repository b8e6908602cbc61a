/*
 * Unit tests for hyperv-testdev and the SynIC work behind it (hyperv.c), on a
 * fake VM (no KVM: SINT raises are only counted): the register's decoding
 * through the same bus path a vCPU's OUT takes, commands a guest should not
 * be able to make, the hypercalls' input checks, and the guest pages: a
 * message or flag lands only in an enabled page wholly inside RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hyperv.h"
#include "snapshot_priv.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"

#define RAM (16ull << 20)
#define MSG_PAGE 0x100000ull
#define EVT_PAGE 0x101000ull
#define INPUT 0x102000ull

static struct vm vm;

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.ncpus = 2;
	vm.cfg.hyperv = vm.cfg.hyperv_testdev = true;
	assert_int_equal(mem_init(&vm.mem, RAM), 0);
	assert_int_equal(hyperv_create(&vm), 0);
	fake_vm_env(&vm); /* the SynIC is hyperv-testdev's handle */
	assert_non_null(fake_dev_create(&vm, &hyperv_testdev_dev_ops));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_vm_free(&vm);
	hyperv_destroy(&vm);
	irq_destroy(&vm);
	mem_free(&vm.mem);
	return 0;
}

static uint32_t cmd(unsigned command, unsigned vp, unsigned sint, unsigned conn)
{
	return conn << 24 | command << 16 | vp << 8 | sint;
}

/* The guest's OUT to port 0x3000 of `size` bytes at `port`. */
static void out(uint16_t port, unsigned size, uint32_t v)
{
	const struct bus_range *r = bus_find(&vm.pio, port, size);
	if (r)
		r->ops->write(r->opaque, port - r->base, size, v);
}

static uint8_t *ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(&vm.mem, gpa, len);
	assert_non_null(p);
	return p;
}

static void synic_on(unsigned vp, uint64_t evt, uint64_t msg)
{
	hyperv_synic_exit(&vm, vp, 1, evt | 1, msg | 1);
}

/* HvPostMessage's input at INPUT. */
static void post_input(uint32_t conn, uint32_t type, uint32_t size, uint64_t payload0)
{
	uint8_t *p = ram(INPUT, 256);
	memset(p, 0, 256);
	memcpy(p, &conn, 4);
	memcpy(p + 8, &type, 4);
	memcpy(p + 12, &size, 4);
	memcpy(p + 16, &payload0, 8);
}

static uint64_t post(uint64_t gpa)
{
	return hyperv_hcall(&vm, HV_HCALL_POST_MESSAGE, gpa);
}

static uint64_t signal_fast(uint64_t param)
{
	return hyperv_hcall(&vm, HV_HCALL_SIGNAL_EVENT | HV_HCALL_FAST, param);
}

static void test_decode(void **state)
{
	(void)state;
	struct hyperv_testdev_cmd c = hyperv_testdev_decode(0x12040301);
	assert_int_equal(c.conn_id, 0x12);
	assert_int_equal(c.command, HYPERV_TESTDEV_MSG_CONN_CREATE);
	assert_int_equal(c.vp, 3);
	assert_int_equal(c.sint, 1);
	c = hyperv_testdev_decode(0xffffffff);
	assert_int_equal(c.conn_id, 0xff);
	assert_int_equal(c.command, 0xff);
	assert_int_equal(c.vp, 0xff);
	assert_int_equal(c.sint, 0xff);
}

/* Routes through the port: create, raise, destroy; only 4-byte writes at
 * offset 0 count, reads are 0. */
static void test_port_routes(void **state)
{
	(void)state;
	out(HYPERV_TESTDEV_PORT, 4, cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 1, 5, 0));
	int h = hyperv_testdev_route(dev_find(&vm.devs, "hyperv-testdev", 0), 1, 5);
	assert_true(h >= 0);
	out(HYPERV_TESTDEV_PORT, 4, cmd(HYPERV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 5, 0));
	out(HYPERV_TESTDEV_PORT, 4, cmd(HYPERV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 5, 0));
	assert_int_equal(hyperv_route_raised(vm.hyperv, h), 2);
	/* a 1-byte write and a 2-byte write into the register: ignored */
	out(HYPERV_TESTDEV_PORT, 1, cmd(HYPERV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 5, 0));
	out(HYPERV_TESTDEV_PORT + 2, 2, HYPERV_TESTDEV_SINT_ROUTE_SET_SINT);
	assert_int_equal(hyperv_route_raised(vm.hyperv, h), 2);
	const struct bus_range *r = bus_find(&vm.pio, HYPERV_TESTDEV_PORT, 4);
	assert_non_null(r);
	assert_int_equal(r->ops->read(r->opaque, 0, 4), 0);
	out(HYPERV_TESTDEV_PORT, 4, cmd(HYPERV_TESTDEV_SINT_ROUTE_DESTROY, 1, 5, 0));
	assert_int_equal(hyperv_testdev_route(dev_find(&vm.devs, "hyperv-testdev", 0), 1, 5), -1);
	assert_int_equal(hyperv_testdev_refused(dev_find(&vm.devs, "hyperv-testdev", 0)), 0);
	/* raising a destroyed route is refused, not a use of stale state */
	out(HYPERV_TESTDEV_PORT, 4, cmd(HYPERV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 5, 0));
	assert_int_equal(hyperv_testdev_refused(dev_find(&vm.devs, "hyperv-testdev", 0)), 1);
}

/* What a guest cannot make: routes to vCPUs or SINTs that do not exist,
 * unknown commands, twice the same connection id, unknown connections. */
static void test_refused(void **state)
{
	(void)state;
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 2, 0, 0)),
			 -EINVAL); /* vCPU 2 of 2 */
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 0, 16, 0)),
			 -EINVAL);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(0, 0, 0, 0)), -EINVAL);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(8, 0, 0, 0)), -EINVAL);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_DESTROY, 0, 0, 0)),
			 -ENOENT);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 0, 8, 0x10)), 0);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x10)),
			 -EEXIST);
	/* event ids are a name space of their own, as HvSignalEvent's */
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 0, 9, 0x10)), 0);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 0, 9, 0x10)),
			 -EEXIST);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 5, 8, 0x11)),
			 -EINVAL);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 0x11)),
			 -ENOENT);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x11)),
			 -ENOENT);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 0x10)), 0);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x10)), 0);
	assert_int_equal(hyperv_testdev_refused(dev_find(&vm.devs, "hyperv-testdev", 0)), 10);
	/* the API refuses what the 8-bit register cannot even name */
	assert_int_equal(hyperv_msg_conn_create(vm.hyperv, 0x1000000, 0, 0), -EINVAL);
	assert_int_equal(hyperv_evt_conn_create(vm.hyperv, HYPERV_EVENT_FLAGS, 0, 0), -EINVAL);
}

/* A guest that creates and destroys routes forever gets no further than
 * HYPERV_MAX_ROUTES alive, and never runs hvmm out of GSIs. */
static void test_route_limits(void **state)
{
	(void)state;
	for (int i = 0; i < 3 * IRQ_MAX_MSI_GSIS; i++) {
		assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 0, 3, 0)), 0);
		assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_DESTROY, 0, 3, 0)), 0);
	}
	for (int i = 0; i < HYPERV_MAX_ROUTES; i++)
		assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 1, 3, 0)), 0);
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 1, 3, 0)),
			 -ENOSPC);
	assert_int_equal(hyperv_msg_conn_create(vm.hyperv, 1, 0, 0), -ENOSPC); /* its route: no room */
}

static void test_synic_page(void **state)
{
	(void)state;
	assert_int_equal(hyperv_synic_page(1, 0x123456789001ull), 0x123456789000ull);
	assert_int_equal(hyperv_synic_page(1, 0x123456789fffull), 0x123456789000ull);
	assert_true(hyperv_synic_page(0, 0x1001) == UINT64_MAX); /* SCONTROL off */
	assert_true(hyperv_synic_page(1, 0x1000) == UINT64_MAX); /* page off */
}

static uint32_t slot_type(uint64_t page, unsigned sint)
{
	uint32_t t;
	memcpy(&t, ram(page + sint * 256, 4), 4);
	return t;
}

/* Post, find the slot busy (msg_pending, the message waits), free it, and
 * the retry delivers; a second post while one waits is refused. */
static void test_post_message(void **state)
{
	(void)state;
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x11)), 0);
	synic_on(1, EVT_PAGE, MSG_PAGE);
	post_input(0x11, 0x12345678, 8, 0x10000);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	uint8_t *slot = ram(MSG_PAGE + 8 * 256, 256);
	assert_int_equal(slot_type(MSG_PAGE, 8), 0x12345678);
	assert_int_equal(slot[4], 8);
	assert_int_equal(slot[5], 0);
	uint64_t p0;
	memcpy(&p0, slot + 16, 8);
	assert_int_equal(p0, 0x10000);

	post_input(0x11, 0x12345678, 8, 0x10001);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS); /* taken, waiting */
	assert_int_equal(slot[5] & 1, 1);                 /* msg_pending */
	memcpy(&p0, slot + 16, 8);
	assert_int_equal(p0, 0x10000); /* the old message is untouched */
	assert_int_equal(post(INPUT), HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(hyperv_retry(&vm), 1);

	memset(slot, 0, 4); /* the guest empties the slot */
	assert_int_equal(hyperv_retry(&vm), 0);
	assert_int_equal(slot_type(MSG_PAGE, 8), 0x12345678);
	assert_int_equal(slot[5], 0);
	memcpy(&p0, slot + 16, 8);
	assert_int_equal(p0, 0x10001);
}

/* The input's own checks, before any connection is looked at. */
static void test_post_input_checks(void **state)
{
	(void)state;
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 0, 2, 0x20)), 0);
	synic_on(0, EVT_PAGE, MSG_PAGE);
	post_input(0x20, 1, 0, 0);
	assert_int_equal(post(INPUT + 4), HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(post(RAM - 128), HV_STATUS_INVALID_PARAMETER);  /* runs off RAM's end */
	assert_int_equal(post(RAM), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(post(0xfee00000), HV_STATUS_INVALID_PARAMETER); /* the LAPIC, not RAM */
	assert_int_equal(post(UINT64_MAX & ~7ull), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(hyperv_hcall(&vm, HV_HCALL_POST_MESSAGE | HV_HCALL_FAST, INPUT),
			 HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(hyperv_hcall(&vm, 0x1234, INPUT), HV_STATUS_INVALID_HYPERCALL_CODE);
	post_input(0x20, 1, HYPERV_MSG_PAYLOAD_MAX + 1, 0);
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_HYPERCALL_INPUT);
	post_input(0x20, 0, 8, 0);
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_PARAMETER);
	post_input(0x20, 0x80000010, 8, 0); /* a hypervisor message type */
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_PARAMETER);
	post_input(0x21, 1, 8, 0);
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(slot_type(MSG_PAGE, 2), 0); /* nothing of it reached the page */
	post_input(0x20, 1, HYPERV_MSG_PAYLOAD_MAX, 0);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(slot_type(MSG_PAGE, 2), 1);
}

/* The message page: only an enabled one wholly inside RAM is written. */
static void test_message_page_checks(void **state)
{
	(void)state;
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 0, 4, 0x30)), 0);
	post_input(0x30, 7, 8, 42);
	const uint64_t bad[] = { RAM, 0xfee00000, 0xfffff000, 1ull << 40 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		synic_on(0, EVT_PAGE, bad[i]);
		assert_int_equal(post(INPUT), HV_STATUS_INVALID_HYPERCALL_INPUT);
	}
	hyperv_synic_exit(&vm, 0, 0, EVT_PAGE | 1, MSG_PAGE | 1); /* SCONTROL off */
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_HYPERCALL_INPUT);
	hyperv_synic_exit(&vm, 0, 1, EVT_PAGE | 1, MSG_PAGE); /* SIMP off */
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* the last page of RAM is a page like any */
	synic_on(0, EVT_PAGE, RAM - 0x1000);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(slot_type(RAM - 0x1000, 4), 7);
	/* a waiting message whose page goes away is dropped, not written */
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(hyperv_retry(&vm), 1);
	synic_on(0, EVT_PAGE, RAM);
	assert_int_equal(hyperv_retry(&vm), 0);
}

static uint64_t flags_word(uint64_t page, unsigned sint, unsigned word)
{
	uint64_t w;
	memcpy(&w, ram(page + sint * 256 + word * 8, 8), 8);
	return w;
}

/* HvSignalEvent: the flag is set, the SINT raised only when it was clear;
 * the parameter and the event page are checked. */
/* The registry's reset takes down what the guest's commands made: the
 * routes and both kinds of connection are gone (posting and signalling
 * find no connection), and the same ids can be made again. */
static void test_reset(void **state)
{
	(void)state;
	const struct dev_inst *inst = &vm.devs.v[vm.devs.nr - 1];
	assert_string_equal(inst->ops->name, "hyperv-testdev");
	assert_non_null(inst->ops->reset);
	struct hyperv_testdev *t = inst->dev;
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 1, 5, 0)), 0);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x11)), 0);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 1, 9, 0x45)), 0);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 0, 9, 0xff)), 0);
	synic_on(1, EVT_PAGE, MSG_PAGE);
	post_input(0x11, 0x12345678, 8, 0x10000);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(signal_fast(0x45), HV_STATUS_SUCCESS);

	inst->ops->reset(t);
	assert_int_equal(hyperv_testdev_route(t, 1, 5), -1);
	memset(ram(MSG_PAGE + 8 * 256, 256), 0, 256);
	assert_int_equal(post(INPUT), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(signal_fast(0x45), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(signal_fast(0xff), HV_STATUS_INVALID_CONNECTION_ID);
	/* made again from nothing, as on a fresh device */
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_SINT_ROUTE_CREATE, 1, 5, 0)), 0);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x11)), 0);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 1, 9, 0x45)), 0);
	assert_int_equal(post(INPUT), HV_STATUS_SUCCESS);
	/* a destroyed connection is not destroyed twice by the next reset */
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x45)), 0);
	inst->ops->reset(t);
	assert_int_equal(hyperv_testdev_write(t, cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 1, 9, 0x45)), 0);
}

static void test_signal_event(void **state)
{
	(void)state;
	const unsigned id = 0x45, sint = 9;
	assert_int_equal(hyperv_testdev_write(dev_find(&vm.devs, "hyperv-testdev", 0), cmd(HYPERV_TESTDEV_EVT_CONN_CREATE, 1, sint, id)), 0);
	synic_on(1, EVT_PAGE, MSG_PAGE);
	assert_int_equal(signal_fast(id), HV_STATUS_SUCCESS);
	assert_int_equal(flags_word(EVT_PAGE, sint, id / 64), 1ull << (id % 64));
	assert_int_equal(signal_fast(id), HV_STATUS_SUCCESS); /* already set */
	/* the raise count of the connection's route: hyperv.c's route 0 here */
	assert_int_equal(hyperv_route_raised(vm.hyperv, 0), 1);

	memset(ram(EVT_PAGE + sint * 256, 256), 0, 256);
	uint64_t param = id;
	memcpy(ram(INPUT, 8), &param, 8);
	assert_int_equal(hyperv_hcall(&vm, HV_HCALL_SIGNAL_EVENT, INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(flags_word(EVT_PAGE, sint, id / 64), 1ull << (id % 64));
	assert_int_equal(hyperv_route_raised(vm.hyperv, 0), 2);
	assert_int_equal(hyperv_hcall(&vm, HV_HCALL_SIGNAL_EVENT, INPUT + 1),
			 HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hyperv_hcall(&vm, HV_HCALL_SIGNAL_EVENT, RAM - 4), HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hyperv_hcall(&vm, HV_HCALL_SIGNAL_EVENT, RAM), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(signal_fast(id | 1ull << 32), HV_STATUS_INVALID_PORT_ID);
	assert_int_equal(signal_fast(id | 1ull << 60), HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(signal_fast(0x1234), HV_STATUS_INVALID_CONNECTION_ID);

	/* an event page outside RAM: nothing written, nothing raised */
	memset(ram(EVT_PAGE + sint * 256, 256), 0, 256);
	synic_on(1, RAM, MSG_PAGE);
	assert_int_equal(signal_fast(id), HV_STATUS_SUCCESS);
	assert_int_equal(hyperv_route_raised(vm.hyperv, 0), 2);
	assert_int_equal(flags_word(EVT_PAGE, sint, id / 64), 0);
	/* vCPU numbers beyond the table are ignored, not stored */
	hyperv_synic_exit(&vm, VM_MAX_CPUS, 1, EVT_PAGE | 1, MSG_PAGE | 1);
}

/* The SynIC's routes and connections are hyperv.c's host objects, which
 * have no snapshot: a VM with --hyperv (which hyperv-testdev needs) refuses
 * one, naming the first of them. */
static void test_snapshot_unsupported(void **state)
{
	(void)state;
	assert_non_null(vm.devs.unsupported);
	assert_string_equal(vm.devs.unsupported, "--hyperv");
}

/* Without --hyperv there is no SynIC: every hypercall KVM passes up fails. */
static void test_no_hyperv(void **state)
{
	(void)state;
	static struct vm bare;
	char err[128];
	fake_vm_init(&bare);
	assert_int_equal(hyperv_hcall(&bare, HV_HCALL_SIGNAL_EVENT | HV_HCALL_FAST, 1),
			 HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(dev_create(&bare.env, &hyperv_testdev_dev_ops, 0, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "creating hyperv-testdev: No such device");
	assert_int_equal(hyperv_route_create(bare.hyperv, 0, 0), -ENODEV);
	fake_vm_free(&bare);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_synic_page),
		cmocka_unit_test_setup_teardown(test_port_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_input_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_page_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test(test_no_hyperv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
