/*
 * Unit tests for virtio-console on a fake VM with the real event loop:
 * hvmm's stdin and stdout are pipes here. Output of the transmit queue,
 * input buffered until the driver posts receive buffers (bounded, nothing
 * dropped), the Ctrl-A escapes, and a device that is not live yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "evloop.h"
#include "pci.h"
#include "util.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "fake_vm.h"

static struct vm vm;
#include "virtio_driver.h"

#define RAM (16ull << 20)
#define RX 0
#define TX 1
#define QSZ 8

static int in_w = -1, out_r = -1;      /* the test's ends of stdin / stdout */
static int saved_in = -1, saved_out = -1;

static int setup(void **state)
{
	(void)state;
	int in[2], out[2];
	fflush(stdout);
	if (pipe(in) || pipe(out))
		return -1;
	saved_in = dup(STDIN_FILENO);
	saved_out = dup(STDOUT_FILENO);
	dup2(in[0], STDIN_FILENO);
	dup2(out[1], STDOUT_FILENO);
	close(in[0]);
	close(out[1]);
	in_w = in[1];
	out_r = out[0];
	fcntl(out_r, F_SETFL, O_NONBLOCK);

	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	vm.cfg.console_virtio = true;
	if (mem_init(&vm.mem, RAM) || pci_init(&vm) || evloop_init(&vm) || evloop_start(&vm))
		return -1;
	fake_vm_env(&vm); /* the PCI host, the loop */
	if (virtio_console_create(&vm.env, NULL))
		return -1;
	struct virtio_dev *d;
	if (virtio_devices(&vm.devs, &d, 1) != 1)
		return -1;
	drv_attach(d);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	evloop_stop(&vm);
	dev_destroy_all(&vm.devs);
	evloop_destroy(&vm);
	pci_destroy(&vm);
	irq_destroy(&vm);
	fake_vm_free(&vm);
	mem_free(&vm.mem);
	dup2(saved_in, STDIN_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_in);
	close(saved_out);
	if (in_w >= 0)
		close(in_w);
	close(out_r);
	in_w = out_r = -1;
	return 0;
}

static void type(const void *s, size_t n)
{
	assert_int_equal(write(in_w, s, n), (ssize_t)n);
}

/* Read exactly n bytes of hvmm's stdout (2 s at most). */
static void expect_out(const char *want, size_t n)
{
	char buf[256];
	size_t got = 0;
	assert_true(n <= sizeof(buf));
	for (int i = 0; i < 2000 && got < n; i++) {
		ssize_t r = read(out_r, buf + got, n - got);
		if (r > 0)
			got += (size_t)r;
		else
			usleep(1000);
	}
	assert_int_equal(got, n);
	assert_memory_equal(buf, want, n);
}

static void bring_up(void)
{
	negotiate(F_STD);
	setup_queue(RX, QSZ);
	setup_queue(TX, QSZ);
	driver_ok();
}

static const uint8_t *rx_buf(uint16_t slot, size_t len)
{
	return mem_ptr(&vm.mem, BUF_GPA(RX, slot), len);
}

static void test_identity(void **state)
{
	(void)state;
	assert_int_equal(cfg_rd(0x02, 2), 0x1043);
	assert_int_equal(cc_rd(NUM_QUEUES, 2), 2);
	/* no MULTIPORT, no SIZE, no EMERG_WRITE: no device features at all */
	cc_wr(DFSELECT, 4, 0);
	assert_int_equal(cc_rd(DF, 4) & 0xffffff, 0);
	/* config reads as zeros */
	assert_int_not_equal(cap_device, 0);
	assert_int_equal(mmio_rd(bar0 + cap_device, 4), 0);
	assert_int_equal(mmio_rd(bar0 + cap_device + 8, 4), 0);
}

static void test_output(void **state)
{
	(void)state;
	bring_up();
	post_buffer(TX, QSZ, 6, "hello\n");
	notify(TX);
	expect_out("hello\n", 6);
	struct vq_used_elem u = take_used(TX, QSZ);
	assert_int_equal(u.id, 0);
	assert_int_equal(u.len, 0);
	post_buffer(TX, QSZ, 3, "abc");
	post_buffer(TX, QSZ, 2, "de");
	notify(TX);
	expect_out("abcde", 5);
}

static void test_input_before_driver(void **state)
{
	(void)state;
	/* typed before the driver is up: held, not lost */
	type("abc", 3);
	usleep(20000);
	negotiate(F_STD);
	setup_queue(RX, QSZ);
	setup_queue(TX, QSZ);
	uint16_t slot = post_buffer(RX, QSZ, 64, NULL);
	assert_int_equal(used_idx(RX), 0); /* nothing before DRIVER_OK */
	driver_ok();
	struct vq_used_elem u = take_used(RX, QSZ);
	assert_int_equal(u.id, slot);
	assert_int_equal(u.len, 3);
	assert_memory_equal(rx_buf(slot, 3), "abc", 3);
	/* typed while a buffer is posted: delivered at once */
	slot = post_buffer(RX, QSZ, 64, NULL);
	notify(RX);
	type("xy", 2);
	u = take_used(RX, QSZ);
	assert_int_equal(u.len, 2);
	assert_memory_equal(rx_buf(slot, 2), "xy", 2);
}

static void test_escapes(void **state)
{
	(void)state;
	bring_up();
	uint16_t slot = post_buffer(RX, QSZ, 64, NULL);
	notify(RX);
	/* Ctrl-A Ctrl-A is a literal Ctrl-A; Ctrl-A z is swallowed */
	type("x\001\001y\001zq", 7);
	struct vq_used_elem u = take_used(RX, QSZ);
	assert_int_equal(u.len, 4);
	assert_memory_equal(rx_buf(slot, 4), "x\001yq", 4);
	assert_int_equal(stop_calls, 0);
	/* Ctrl-A x stops the VM, also split over two reads */
	type("\001", 1);
	usleep(20000);
	type("x", 1);
	for (int i = 0; i < 2000 && !__atomic_load_n(&stop_calls, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_USER);
	assert_int_equal(stop_status, HVMM_EXIT_OK);
	assert_string_equal(stop_msg, "terminated by Ctrl-A x");
}

/* More input than the device holds, with no receive buffer: it stops
 * reading stdin (the rest waits in the pipe) and delivers all of it, in
 * order, once the driver posts buffers. */
static void test_backpressure(void **state)
{
	(void)state;
	bring_up();
	static uint8_t data[6000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i % 23);
	type(data, sizeof(data));
	int left = 0;
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(ioctl(in_w, FIONREAD, &left), 0);
		if (left <= (int)sizeof(data) - 4096)
			break;
		usleep(1000);
	}
	usleep(50000);
	assert_int_equal(ioctl(in_w, FIONREAD, &left), 0);
	assert_int_equal(left, (int)sizeof(data) - 4096); /* the device holds 4096 */
	size_t got = 0;
	while (got < sizeof(data)) {
		uint16_t slot = post_buffer(RX, QSZ, 1000, NULL);
		notify(RX);
		struct vq_used_elem u = take_used(RX, QSZ);
		assert_int_equal(u.id, slot);
		assert_true(u.len > 0 && u.len <= 1000);
		assert_memory_equal(rx_buf(slot, u.len), data + got, u.len);
		got += u.len;
	}
	assert_int_equal(got, sizeof(data));
}

/* stdin at EOF: the device stops watching it and keeps working. */
static void test_stdin_eof(void **state)
{
	(void)state;
	bring_up();
	type("z", 1);
	close(in_w);
	in_w = -1;
	uint16_t slot = post_buffer(RX, QSZ, 64, NULL);
	notify(RX);
	struct vq_used_elem u = take_used(RX, QSZ);
	assert_int_equal(u.len, 1);
	assert_memory_equal(rx_buf(slot, 1), "z", 1);
	post_buffer(TX, QSZ, 3, "ok\n");
	notify(TX);
	expect_out("ok\n", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_before_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_eof, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
