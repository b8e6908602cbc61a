/* Unit tests for the 16550A UART (src/devices/uart.c), driven through the bus. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"
#include "vm.h"
#include "fake_vm.h"

/* ---- test doubles for what needs KVM ---- */

static bool irq_line[IRQ_IOAPIC_PINS];
static int irq_raises[IRQ_IOAPIC_PINS]; /* 0 -> 1 transitions seen */

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	(void)vm;
	assert_true(pin < IRQ_IOAPIC_PINS);
	/* the UART must only call when the level changes */
	assert_int_not_equal(irq_line[pin], level);
	if (level)
		irq_raises[pin]++;
	irq_line[pin] = level;
}

/* irq.c's senders (split mode: KVM ioctls; no KVM here) */
void irq_pin_fire(struct vm *vm, unsigned pin, bool edge)
{
	(void)vm, (void)pin, (void)edge;
}

int irq_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm, (void)addr, (void)data;
	return 0;
}

int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data)
{
	(void)vm, (void)pin, (void)addr, (void)data;
	return 0;
}

/* ---- harness ---- */

static struct vm vm;
static char tmp_path[64];

static uint64_t setup_limit; /* --serial-limit for the next setup */

static void setup_vm(enum serial_mode mode, const char *path)
{
	fake_vm_init(&vm);
	memset(irq_line, 0, sizeof(irq_line));
	memset(irq_raises, 0, sizeof(irq_raises));
	assert_int_equal(uart_create(&vm, mode, path, setup_limit), 0);
	assert_non_null(vm.uart);
}

static int setup_none(void **state)
{
	(void)state;
	setup_vm(SERIAL_NONE, NULL);
	return 0;
}

static int setup_file(void **state)
{
	(void)state;
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/hvmm-test-uart-XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	close(fd);
	setup_vm(SERIAL_FILE, tmp_path);
	return 0;
}

static int setup_file_limited(void **state)
{
	setup_limit = 16;
	int r = setup_file(state);
	setup_limit = 0;
	return r;
}

static int teardown(void **state)
{
	(void)state;
	fake_vm_free(&vm);
	assert_null(vm.uart);
	if (tmp_path[0]) {
		unlink(tmp_path);
		tmp_path[0] = 0;
	}
	return 0;
}

static uint8_t rd(unsigned off)
{
	const struct bus_range *r = bus_find(&vm.pio, UART_COM1_BASE + off, 1);
	assert_non_null(r);
	return (uint8_t)r->ops->read(r->opaque, UART_COM1_BASE + off - r->base, 1);
}

static void wr(unsigned off, uint8_t v)
{
	const struct bus_range *r = bus_find(&vm.pio, UART_COM1_BASE + off, 1);
	assert_non_null(r);
	r->ops->write(r->opaque, UART_COM1_BASE + off - r->base, 1, v);
}

static void feed(const char *s)
{
	uart_receive(&vm, (const uint8_t *)s, strlen(s));
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = 0;
	return n;
}

/* ---- tests ---- */

static void test_divisor_latch(void **state)
{
	(void)state;
	wr(1, 0x05); /* IER */
	wr(3, 0x83); /* DLAB on, 8N1 */
	wr(0, 0x0c);
	wr(1, 0x34);
	assert_int_equal(rd(0), 0x0c);
	assert_int_equal(rd(1), 0x34);
	assert_int_equal(rd(3), 0x83);
	wr(3, 0x03); /* DLAB off: offsets 0/1 are RBR/IER again */
	assert_int_equal(rd(1), 0x05);
	assert_int_equal(rd(3), 0x03);
	wr(3, 0x80);
	assert_int_equal(rd(0), 0x0c); /* latch kept */
	assert_int_equal(rd(1), 0x34);
}

static void test_lsr_iir_reset_and_fifo_bits(void **state)
{
	(void)state;
	assert_int_equal(rd(5), 0x60); /* THRE | TEMT, no data */
	assert_int_equal(rd(2), 0x01); /* no interrupt, FIFOs off */
	wr(2, 0x07);                   /* FIFO on + clear both */
	assert_int_equal(rd(2), 0xc1);
	feed("a");
	assert_int_equal(rd(5), 0x61); /* DR */
	assert_int_equal(rd(0), 'a');
	assert_int_equal(rd(5), 0x60);
	wr(2, 0x00);
	assert_int_equal(rd(2), 0x01);
	/* scratch */
	wr(7, 0x5a);
	assert_int_equal(rd(7), 0x5a);
	/* MSR without loopback: DCD, DSR, CTS */
	assert_int_equal(rd(6), 0xb0);
}

static void test_thre_interrupt(void **state)
{
	(void)state;
	wr(4, 0x08); /* OUT2 */
	assert_false(irq_line[4]);
	wr(1, 0x02); /* ETBEI with THR empty: THRE pending */
	assert_true(irq_line[4]);
	assert_int_equal(rd(2), 0x02);
	/* reading IIR that reported THRE clears it */
	assert_false(irq_line[4]);
	assert_int_equal(rd(2), 0x01);
	/* a THR write empties at once and raises THRE again: a new edge */
	wr(0, 'x');
	assert_true(irq_line[4]);
	assert_int_equal(irq_raises[4], 2);
	/* a second write while pending gives yet another edge */
	wr(0, 'y');
	assert_int_equal(irq_raises[4], 3);
	/* disabling ETBEI drops the line */
	wr(1, 0x00);
	assert_false(irq_line[4]);
	/* re-enabling re-raises (Linux's THRE test relies on this) */
	wr(1, 0x02);
	assert_true(irq_line[4]);
	/* without OUT2 the line stays low although IIR reports */
	wr(4, 0x00);
	assert_false(irq_line[4]);
	assert_int_equal(rd(2), 0x02);
}

static void test_rx_fifo_irq_out2(void **state)
{
	(void)state;
	wr(2, 0x01); /* FIFO on */
	wr(1, 0x01); /* ERBFI */
	feed("0123456789abcdefXYZW");  /* 20 bytes: 16 in the FIFO, 4 queued */
	assert_false(irq_line[4]);     /* OUT2 clear: gated */
	wr(4, 0x0b);                   /* DTR|RTS|OUT2 */
	assert_true(irq_line[4]);
	assert_int_equal(rd(2), 0xc4); /* data available, FIFO bits */
	char got[21] = { 0 };
	for (int i = 0; i < 20; i++) {
		assert_true(rd(5) & 0x01);
		got[i] = (char)rd(0);
	}
	assert_string_equal(got, "0123456789abcdefXYZW");
	assert_false(rd(5) & 0x01);
	assert_false(irq_line[4]);
	assert_int_equal(rd(2), 0xc1);
	/* line status outranks data available */
	wr(1, 0x05);
	wr(4, 0x1b); /* loopback too, to overrun */
	wr(2, 0x00); /* FIFO off: 1-byte holding register */
	wr(0, 'p');
	wr(0, 'q'); /* overrun */
	assert_int_equal(rd(2), 0x06);
	assert_int_equal(rd(5) & 0x03, 0x03); /* DR | OE, OE cleared by the read */
	assert_int_equal(rd(2), 0x04);
	assert_int_equal(rd(0), 'p');
	assert_int_equal(rd(5) & 0x03, 0x00);
}

/* Input that arrives while the VM is paused (a snapshot may be reading the
 * devices) changes nothing the guest sees until the resume: no byte in the
 * FIFO, no interrupt; then all of it, in order. */
static void test_input_waits_for_resume(void **state)
{
	(void)state;
	wr(2, 0x01);
	wr(1, 0x01); /* ERBFI */
	wr(4, 0x0b); /* OUT2 */
	atomic_store(&vm.paused, true);
	uart_pause_barrier(&vm);
	feed("ab");
	assert_false(irq_line[4]);
	assert_false(rd(5) & 0x01);
	assert_int_equal(rd(2) & 0x0f, 0x01); /* no interrupt pending */
	atomic_store(&vm.paused, false);
	uart_resume(&vm);
	assert_true(irq_line[4]);
	assert_int_equal(rd(0), 'a');
	assert_int_equal(rd(0), 'b');
	assert_false(irq_line[4]);
}

static void test_loopback(void **state)
{
	(void)state;
	wr(4, 0x10 | 0x0a);          /* LOOP | RTS | OUT2: Linux's probe */
	assert_int_equal(rd(6) & 0xf0, 0x90); /* CTS | DCD */
	wr(4, 0x10 | 0x05);          /* LOOP | DTR | OUT1 */
	uint8_t msr = rd(6);
	assert_int_equal(msr & 0xf0, 0x60); /* DSR | RI */
	assert_int_equal(msr & 0x0f, 0x0b); /* DCTS, DDSR, DDCD changed; RI rose: no TERI */
	assert_int_equal(rd(6) & 0x0f, 0x00); /* deltas cleared by the read */
	wr(0, 'L');
	assert_int_equal(rd(5) & 0x01, 0x01);
	assert_int_equal(rd(0), 'L');
	/* host input does not reach the receiver in loopback... */
	feed("h");
	assert_int_equal(rd(5) & 0x01, 0x00);
	/* ...until loopback ends */
	wr(4, 0x00);
	assert_int_equal(rd(5) & 0x01, 0x01);
	assert_int_equal(rd(0), 'h');
	/* back to modem-present: CTS and DCD rose, RI fell (TERI), DSR stayed */
	assert_int_equal(rd(6), 0xb0 | 0x0d);
}

static void test_msi_interrupt(void **state)
{
	(void)state;
	wr(4, 0x08);
	wr(1, 0x08); /* EDSSI */
	assert_false(irq_line[4]);
	wr(4, 0x18); /* loopback on: lines change -> modem status interrupt */
	assert_true(irq_line[4]);
	assert_int_equal(rd(2), 0x00);
	rd(6);
	assert_false(irq_line[4]);
	assert_int_equal(rd(2), 0x01);
}

static void test_output_file(void **state)
{
	(void)state;
	const char *s = "hello\nworld";
	for (const char *p = s; *p; p++)
		wr(0, (uint8_t)*p);
	wr(4, 0x10); /* loopback bytes never reach the output */
	wr(0, '!');
	rd(0);
	wr(4, 0x00);
	char buf[64];
	read_file(tmp_path, buf, sizeof(buf));
	assert_string_equal(buf, "hello\n"); /* a whole line is out at once */
	uart_stop(&vm);
	uart_stop(&vm); /* idempotent */
	read_file(tmp_path, buf, sizeof(buf));
	assert_string_equal(buf, "hello\nworld");
}

/* --serial-limit: the first 16 bytes, one notice, the rest dropped and
 * counted; a guest that goes on writing does not grow the file. */
static void test_output_limit(void **state)
{
	(void)state;
	for (int line = 0; line < 1000; line++)
		for (const char *p = "0123456789\n"; *p; p++)
			wr(0, (uint8_t)*p);
	uart_stop(&vm);
	char buf[256];
	size_t n = read_file(tmp_path, buf, sizeof(buf));
	assert_string_equal(buf, "0123456789\n01234\n[hvmm: serial output limit of 16 bytes reached; "
				 "the rest is dropped]\n");
	assert_true(n < 100);
	assert_int_equal(uart_dropped(&vm), 1000 * 11 - 16);
}

static void test_output_thread_flushes_partial_line(void **state)
{
	(void)state;
	assert_int_equal(uart_start(&vm), 0);
	wr(0, '>');
	wr(0, ' ');
	char buf[64] = { 0 };
	for (int i = 0; i < 200 && strcmp(buf, "> ") != 0; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		read_file(tmp_path, buf, sizeof(buf));
	}
	assert_string_equal(buf, "> ");
	uart_stop(&vm);
}

static void test_file_open_error(void **state)
{
	(void)state;
	struct vm v2;
	memset(&v2, 0, sizeof(v2));
	bus_init(&v2.pio, "pio");
	assert_int_equal(uart_create(&v2, SERIAL_FILE, "/nonexistent-dir/x/serial.log", 0), -ENOENT);
	assert_null(v2.uart);
	/* and a bus overlap is refused with -EEXIST */
	assert_int_equal(uart_create(&vm, SERIAL_NONE, NULL, 0), -EEXIST);
	bus_free(&v2.pio);
}

static void test_ctrl_a(void **state)
{
	(void)state;
	feed("a\x01\x01" "b\x01z");
	assert_int_equal(rd(0), 'a');
	assert_int_equal(rd(0), 0x01); /* Ctrl-A Ctrl-A: a literal Ctrl-A */
	assert_int_equal(rd(0), 'b');
	assert_false(rd(5) & 0x01);    /* Ctrl-A z: swallowed */
	assert_int_equal(stop_calls, 0);
	feed("\x01x");
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_USER);
	assert_int_equal(stop_status, HVMM_EXIT_OK);
	assert_string_equal(stop_msg, "terminated by Ctrl-A x");
}

static void test_stdin_thread(void **state)
{
	(void)state;
	/* Put a pipe on stdin, as `echo hi | hvmm` would. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	fake_vm_free(&vm); /* replace setup's SERIAL_NONE UART (and its snapshot registry) */
	setup_vm(SERIAL_STDIO, NULL);
	wr(2, 0x01); /* before any input: switching FIFO mode empties the FIFO */
	assert_int_equal(uart_start(&vm), 0);
	assert_int_equal(write(p[1], "hi", 2), 2);
	close(p[1]); /* EOF: the thread stops reading, no error */
	char got[3] = { 0 };
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 400 && !(rd(5) & 0x01); j++) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		got[i] = (char)rd(0);
	}
	assert_string_equal(got, "hi");
	uart_stop(&vm);
	dup2(saved, STDIN_FILENO);
	close(saved);
}

static void test_hostile_accesses(void **state)
{
	(void)state;
	for (unsigned size = 1; size <= 8; size *= 2) {
		for (unsigned off = 0; off + size <= 8; off++) {
			const struct bus_range *r = bus_find(&vm.pio, UART_COM1_BASE + off, size);
			assert_non_null(r);
			r->ops->write(r->opaque, off, size, 0xffffffffffffffffull);
			r->ops->read(r->opaque, off, size);
		}
	}
	assert_null(bus_find(&vm.pio, UART_COM1_BASE + 7, 2)); /* straddles the end */
	/* a word read covers two registers, low byte first */
	wr(3, 0x03);
	wr(4, 0x00);
	const struct bus_range *r = bus_find(&vm.pio, UART_COM1_BASE + 3, 2);
	assert_int_equal(r->ops->read(r->opaque, 3, 2), 0x0003);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_divisor_latch, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_lsr_iir_reset_and_fifo_bits, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_rx_fifo_irq_out2, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_input_waits_for_resume, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_loopback, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_msi_interrupt, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_output_file, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_output_limit, setup_file_limited, teardown),
		cmocka_unit_test_setup_teardown(test_output_thread_flushes_partial_line, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_open_error, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_a, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_thread, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_accesses, setup_none, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
