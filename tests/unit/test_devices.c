/* Unit tests for debug-exit, i8042, 0xcf9 reset, boot timer and PIC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"
#include "vm.h"
#include "fake_vm.h"

/* ---- test doubles ---- */


/* The level each ISA line was last set to, and how often it rose. */
static bool irq_level[16];
static int irq_raised[16];

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	(void)vm;
	if (pin < 16) {
		irq_raised[pin] += level && !irq_level[pin];
		irq_level[pin] = level;
	}
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

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	memset(irq_level, 0, sizeof(irq_level));
	memset(irq_raised, 0, sizeof(irq_raised));
	util_mark_start();
	assert_int_equal(debug_exit_create(&vm), 0);
	assert_int_equal(i8042_create(&vm), 0);
	assert_int_equal(sysreset_create(&vm), 0);
	assert_int_equal(boot_timer_create(&vm), 0);
	assert_int_equal(pic_create(&vm), 0);
	assert_int_equal(acpi_pm_create(&vm), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_vm_free(&vm);
	assert_null(vm.boot_timer);
	return 0;
}

static uint64_t bread(struct bus *b, uint64_t addr, unsigned size)
{
	const struct bus_range *r = bus_find(b, addr, size);
	assert_non_null(r);
	return r->ops->read(r->opaque, addr - r->base, size);
}

static void bwrite(struct bus *b, uint64_t addr, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(b, addr, size);
	assert_non_null(r);
	r->ops->write(r->opaque, addr - r->base, size, v);
}

static uint64_t in(uint64_t port, unsigned size)
{
	return bread(&vm.pio, port, size);
}

static void out(uint64_t port, unsigned size, uint64_t v)
{
	bwrite(&vm.pio, port, size, v);
}

/* ---- debug exit ---- */

static void test_debug_exit_status(void **state)
{
	(void)state;
	static const struct { uint64_t v; unsigned size; int status; } cases[] = {
		{ 0, 1, 1 }, { 1, 1, 3 }, { 0x7f, 1, 0xff }, { 0x80, 1, 1 },
		{ 0x7f, 4, 0xff }, { 0x101, 4, 3 }, { 0x21, 2, 0x43 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stop_calls = 0;
		out(DEBUG_EXIT_PORT, cases[i].size, cases[i].v);
		assert_int_equal(stop_calls, 1);
		assert_int_equal(stop_reason, VM_STOP_DEBUG_EXIT);
		assert_int_equal(stop_status, cases[i].status);
	}
	/* any of the four ports */
	stop_calls = 0;
	out(DEBUG_EXIT_PORT + 3, 1, 1);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_status, 3);
	assert_null(bus_find(&vm.pio, DEBUG_EXIT_PORT + 4, 1));
	/* reads: all-ones of the access size */
	assert_int_equal(in(DEBUG_EXIT_PORT, 1), 0xff);
	assert_int_equal(in(DEBUG_EXIT_PORT, 2), 0xffff);
	assert_int_equal(in(DEBUG_EXIT_PORT, 4), 0xffffffff);
}

/* ---- i8042 ---- */

static void test_i8042_probe(void **state)
{
	(void)state;
	uint8_t st = (uint8_t)in(0x64, 1);
	assert_true(st & 0x04);        /* system flag */
	assert_false(st & 0x01);       /* output buffer empty */
	assert_false(st & 0x02);       /* input buffer empty: ready for commands */
	out(0x64, 1, 0xAA);            /* self test */
	assert_true(in(0x64, 1) & 0x01);
	assert_int_equal(in(0x60, 1), 0x55);
	assert_false(in(0x64, 1) & 0x01);
	out(0x64, 1, 0xAB);            /* keyboard interface test */
	assert_int_equal(in(0x60, 1), 0x00);
	out(0x64, 1, 0x20);            /* read command byte */
	assert_int_equal(in(0x60, 1), 0x45);
	out(0x64, 1, 0x60);            /* write command byte */
	out(0x60, 1, 0x12);
	out(0x64, 1, 0x20);
	assert_int_equal(in(0x60, 1), 0x12);
	out(0x64, 1, 0xAD);            /* disable/enable: accepted, no response */
	out(0x64, 1, 0xAE);
	out(0x64, 1, 0xA7);
	out(0x64, 1, 0xA8);
	assert_false(in(0x64, 1) & 0x01);
	out(0x64, 1, 0xD3);            /* write aux output buffer: reads back as mouse data */
	out(0x60, 1, 0x5a);
	assert_int_equal(in(0x64, 1) & 0x21, 0x21);
	assert_int_equal(in(0x60, 1), 0x5a);
	out(0x60, 1, 0xF2);            /* a byte for a keyboard that is not there */
	assert_false(in(0x64, 1) & 0x01);
	assert_int_equal(stop_calls, 0);
	/* hostile: a flood of commands does not overflow anything */
	for (int i = 0; i < 1000; i++)
		out(0x64, 1, 0xAA);
	for (int i = 0; i < 1000; i++)
		in(0x60, 1);
	assert_false(in(0x64, 1) & 0x01);
	assert_null(bus_find(&vm.pio, 0x61, 1)); /* not ours */
}

/* Output-buffer-full interrupts: IRQ 1 for keyboard-side bytes, IRQ 12 for
 * aux-side ones, each only while the command byte enables it; reading the
 * byte drops the line. Linux's aux probe waits for IRQ 12 after a loopback. */
static void test_i8042_irqs(void **state)
{
	(void)state;
	out(0x64, 1, 0xAA);            /* default command byte 0x45: keyboard interrupt on */
	assert_true(irq_level[1]);
	assert_false(irq_level[12]);
	assert_int_equal(in(0x60, 1), 0x55);
	assert_false(irq_level[1]);
	out(0x64, 1, 0x60);            /* both interrupts on */
	out(0x60, 1, 0x47);
	assert_false(irq_level[1]);
	out(0x64, 1, 0xD3);            /* aux loopback: IRQ 12, not IRQ 1 */
	out(0x60, 1, 0xa5);
	assert_true(irq_level[12]);
	assert_false(irq_level[1]);
	assert_int_equal(in(0x60, 1), 0xa5);
	assert_false(irq_level[12]);
	out(0x64, 1, 0xD3);            /* two bytes queued: the line follows the head */
	out(0x60, 1, 0x01);
	out(0x64, 1, 0xD2);
	out(0x60, 1, 0x02);
	assert_true(irq_level[12]);
	assert_false(irq_level[1]);
	in(0x60, 1);
	assert_false(irq_level[12]);
	assert_true(irq_level[1]);
	in(0x60, 1);
	assert_false(irq_level[1]);
	assert_int_equal(irq_raised[1], 2);
	assert_int_equal(irq_raised[12], 2);
	out(0x64, 1, 0x60);            /* interrupts off: bytes wait to be polled */
	out(0x60, 1, 0x44);
	out(0x64, 1, 0xD3);
	out(0x60, 1, 0x5a);
	out(0x64, 1, 0x20);
	assert_false(irq_level[1] || irq_level[12]);
	assert_int_equal(in(0x64, 1) & 0x21, 0x21);
	out(0x64, 1, 0x60);            /* enabling the aux interrupt with 0x5a, 0x44 queued */
	out(0x60, 1, 0x46);
	assert_true(irq_level[12]);
	assert_int_equal(in(0x60, 1), 0x5a);
	assert_false(irq_level[12]);
	assert_false(irq_level[1]);    /* 0x44 is keyboard-side and its interrupt is off */
	assert_int_equal(in(0x60, 1), 0x44);
	assert_false(irq_level[1] || irq_level[12]);
}

static void test_i8042_reset(void **state)
{
	(void)state;
	out(0x64, 1, 0xD1);            /* write output port, reset bit kept high */
	out(0x60, 1, 0x03);
	assert_int_equal(stop_calls, 0);
	out(0x64, 1, 0xD0);
	assert_int_equal(in(0x60, 1), 0x03);
	out(0x64, 1, 0xFE);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
	assert_int_equal(stop_status, HVMM_EXIT_OK);
	assert_string_equal(stop_msg, "guest reset via i8042 (0x64 <- 0xfe)");
	out(0x64, 1, 0xD1);            /* output port bit 0 low: reset */
	out(0x60, 1, 0x02);
	assert_int_equal(stop_calls, 2);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
}

/* ---- 0xcf9 ---- */

static void test_sysreset(void **state)
{
	(void)state;
	assert_int_equal(in(0xcf9, 1), 0);
	out(0xcf9, 1, 0x02);           /* select hard reset, no reset yet */
	assert_int_equal(stop_calls, 0);
	assert_int_equal(in(0xcf9, 1), 0x02);
	out(0xcf9, 1, 0x06);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
	assert_int_equal(stop_status, HVMM_EXIT_OK);
	assert_string_equal(stop_msg, "guest reset via port 0xcf9");
	assert_int_equal(in(0xcf9, 1), 0x02); /* bit 2 reads clear */
	assert_null(bus_find(&vm.pio, 0xcf8, 1));
	assert_null(bus_find(&vm.pio, 0xcf9, 2));
}

/* ---- boot timer ---- */

static void test_boot_timer(void **state)
{
	(void)state;
	struct boot_timer_mark m[BOOT_TIMER_MAX_MARKS + 4];
	assert_int_equal(boot_timer_marks(&vm, m, BOOT_TIMER_MAX_MARKS), 0);
	out(BOOT_TIMER_PORT, 4, 0x1234);
	bwrite(&vm.mmio, BOOT_TIMER_MMIO, 4, 0xcafe);
	out(BOOT_TIMER_PORT + 1, 1, 7);
	assert_int_equal(in(BOOT_TIMER_PORT, 4), 0);
	assert_int_equal(bread(&vm.mmio, BOOT_TIMER_MMIO, 4), 0);
	assert_int_equal(boot_timer_marks(&vm, m, BOOT_TIMER_MAX_MARKS), 3);
	assert_int_equal(m[0].value, 0x1234);
	assert_false(m[0].mmio);
	assert_int_equal(m[1].value, 0xcafe);
	assert_true(m[1].mmio);
	assert_int_equal(m[2].value, 7);
	assert_true(m[0].ns <= m[1].ns && m[1].ns <= m[2].ns);
	assert_true(m[2].ns < util_since_start_ns() + 1);
	/* count all, keep the first 16 */
	for (unsigned i = 0; i < 20; i++)
		out(BOOT_TIMER_PORT, 4, 100 + i);
	memset(m, 0xee, sizeof(m));
	assert_int_equal(boot_timer_marks(&vm, m, BOOT_TIMER_MAX_MARKS + 4), 23);
	assert_int_equal(m[15].value, 100 + 12);
	assert_int_equal(m[0].value, 0x1234); /* the first ones are never overwritten */
	assert_int_equal(m[5].value, 100 + 2);
	assert_int_equal(m[16].value, 0xeeeeeeee); /* nothing copied past the kept ones */
	assert_int_equal(boot_timer_marks(&vm, m, 2), 23); /* max respected */
	/* no device: no marks */
	struct vm empty;
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(boot_timer_marks(&empty, m, BOOT_TIMER_MAX_MARKS), 0);
}

/* ---- PIC ---- */

static void test_pic(void **state)
{
	(void)state;
	assert_int_equal(in(0x21, 1), 0xff); /* everything masked from the start */
	/* the init sequence Linux uses */
	out(0x20, 1, 0x11);
	out(0x21, 1, 0x20);
	out(0x21, 1, 0x04);
	out(0x21, 1, 0x01);
	out(0xa0, 1, 0x11);
	out(0xa1, 1, 0x28);
	out(0xa1, 1, 0x02);
	out(0xa1, 1, 0x01);
	out(0x21, 1, 0xfb); /* OCW1 */
	out(0xa1, 1, 0xff);
	assert_int_equal(in(0x21, 1), 0xfb);
	assert_int_equal(in(0xa1, 1), 0xff);
	/* probe_8259A: write, read back */
	out(0x21, 1, 0xff);
	out(0xa1, 1, 0xff);
	out(0xa1, 1, 0x5a);
	assert_int_equal(in(0xa1, 1), 0x5a);
	out(0x20, 1, 0x0a); /* OCW3: read ISR */
	assert_int_equal(in(0x20, 1), 0);
	out(0x20, 1, 0x20); /* OCW2: EOI */
	assert_int_equal(in(0x21, 1), 0xff);
	assert_int_equal(in(0x20, 2), 0xff00); /* word read: IRR, IMR */
	/* ICW1 without ICW4, single: only ICW2 follows */
	out(0x20, 1, 0x12);
	out(0x21, 1, 0x08);
	out(0x21, 1, 0x3c); /* OCW1 already */
	assert_int_equal(in(0x21, 1), 0x3c);
	/* ICW1 cascade without ICW4: ICW2, ICW3, then OCW1 */
	out(0xa0, 1, 0x10);
	assert_int_equal(in(0xa1, 1), 0x00); /* ICW1 clears IMR */
	out(0xa1, 1, 0x70);
	out(0xa1, 1, 0x02);
	out(0xa1, 1, 0x77);
	assert_int_equal(in(0xa1, 1), 0x77);
	/* ELCR: level bits only where allowed */
	out(0x4d0, 1, 0xff);
	out(0x4d1, 1, 0xff);
	assert_int_equal(in(0x4d0, 1), 0xf8);
	assert_int_equal(in(0x4d1, 1), 0xde);
	out(0x4d0, 2, 0x0000);
	assert_int_equal(in(0x4d0, 2), 0);
}

/* ---- ACPI fixed hardware ---- */

#define ACPI_PM_EVT ACPI_PM_BASE
#define ACPI_PM_CNT (ACPI_PM_BASE + ACPI_PM1_CNT_OFF)
#define ACPI_PM_TMR (ACPI_PM_BASE + ACPI_PM_TMR_OFF)

static void test_acpi_pm(void **state)
{
	(void)state;
	/* SCI_EN reads 1 (always in ACPI mode); SLP_TYP is kept, SLP_EN never is */
	assert_int_equal(in(ACPI_PM_CNT, 2), 1);
	out(ACPI_PM_CNT, 2, 3u << 10);
	assert_int_equal(in(ACPI_PM_CNT, 2), (3u << 10) | 1);
	/* a sleep type hvmm does not know (3) is ignored */
	out(ACPI_PM_CNT, 2, (3u << 10) | 0x2000);
	assert_int_equal(stop_calls, 0);
	assert_int_equal(in(ACPI_PM_CNT, 2) & 0x2000, 0);
	/* the timer counts up at 3.58 MHz within 24 bits, and one 32-bit read
	 * is one instant (never a torn value) */
	uint32_t t0 = (uint32_t)in(ACPI_PM_TMR, 4);
	usleep(20000);
	uint32_t t1 = (uint32_t)in(ACPI_PM_TMR, 4);
	assert_true(t0 <= 0xffffff && t1 <= 0xffffff);
	uint32_t d = (t1 - t0) & 0xffffff;
	assert_true(d >= 20000 * 3579545ull / 1000000 && d < 2000000); /* >= 20 ms, < 0.6 s */
	/* hostile accesses: an 8-byte read from the timer reads nothing past
	 * the block's end; writes to the timer change nothing */
	const struct bus_range *r = bus_find(&vm.pio, ACPI_PM_TMR, 4);
	assert_non_null(r);
	assert_int_equal(r->ops->read(r->opaque, ACPI_PM_TMR - r->base, 8) >> 32, 0);
	r->ops->write(r->opaque, ACPI_PM_LEN - 1, 8, ~0ull);
	out(ACPI_PM_TMR, 4, 0);
	assert_int_equal(stop_calls, 0);
	/* PM1_EN keeps only defined enables; PM1_STS bits are write-1-to-clear */
	out(ACPI_PM_EVT + 2, 2, 0xffff);
	assert_int_equal(in(ACPI_PM_EVT + 2, 2), 0x0501);
	out(ACPI_PM_EVT, 2, 0xffff);
	/* S5 with SLP_EN powers off, in a byte write of the high half too */
	out(ACPI_PM_CNT + 1, 1, (ACPI_PM_SLP_TYP_S5 << 2) | 0x20);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
	assert_int_equal(stop_status, HVMM_EXIT_OK);
	assert_string_equal(stop_msg, "guest powered off (ACPI S5)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_debug_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_irqs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sysreset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acpi_pm, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
