/*
 * The 8254 PIT (pit.c) and the 8259 pair (pic.c): the PIT chip on an explicit
 * clock (counting in each mode, OUT, the latch and read-back commands, BCD,
 * channel 2's gate through port 0x61, the timer channel 0 needs), the device
 * through the bus as a vCPU exit reaches it, and the PIC's delivery (IRR,
 * ISR, masks, EOIs, cascade, edge and level, poll, spurious IRQ 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "vm.h"
#include "fake_vm.h"

#define T0 1000000000ull /* an arbitrary "now" the tests start from */
#define CMD 3
#define SYSCTL PIT_PORT_SYSCTL

/* The host time at which exactly `ticks` input clocks have passed since t0. */
static uint64_t at(uint64_t ticks)
{
	return T0 + (ticks * 1000000000ull + PIT_HZ - 1) / PIT_HZ;
}

static uint16_t read16(struct pit_chip *p, unsigned port, uint64_t now)
{
	uint16_t lo = pit_chip_read(p, port, now);
	return (uint16_t)(lo | pit_chip_read(p, port, now) << 8);
}

static void write16(struct pit_chip *p, unsigned port, uint16_t v, uint64_t now)
{
	pit_chip_write(p, port, (uint8_t)v, now);
	pit_chip_write(p, port, (uint8_t)(v >> 8), now);
}

static struct pit_chip *chip(void)
{
	struct pit_chip *p = pit_chip_new();
	assert_non_null(p);
	return p;
}

static void test_mode2_rate_generator(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x34, T0); /* ch0, LSB then MSB, mode 2 */
	write16(p, 0, 1000, T0);
	assert_int_equal(read16(p, 0, T0), 1000);
	assert_int_equal(read16(p, 0, at(100)), 900);
	assert_int_equal(read16(p, 0, at(999)), 1);
	assert_int_equal(read16(p, 0, at(1000)), 1000); /* reloaded */
	assert_int_equal(read16(p, 0, at(1500)), 500);
	/* OUT is low only in the tick before each reload */
	assert_true(pit_chip_out(p, 0, at(998)));
	assert_false(pit_chip_out(p, 0, at(999)));
	assert_true(pit_chip_out(p, 0, at(1000)));
	/* the timer: periodic, next edge at the next multiple of the count */
	uint64_t first, period;
	assert_true(pit_chip_timer(p, at(1500), &first, &period));
	assert_int_equal(first, at(2000));
	assert_int_equal(period, (1000 * 1000000000ull + PIT_HZ - 1) / PIT_HZ);
	/* a written 0 is 65536: the BIOS's 18.2 Hz */
	pit_chip_write(p, CMD, 0x34, T0);
	write16(p, 0, 0, T0);
	assert_true(pit_chip_timer(p, T0, &first, &period));
	assert_true(period > 54900000 && period < 54940000);
	assert_int_equal(read16(p, 0, at(1)), 65535);
	pit_chip_free(p);
}

static void test_mode3_square_wave(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x36, T0); /* ch0, word, mode 3 */
	write16(p, 0, 100, T0);
	assert_int_equal(read16(p, 0, T0), 100);
	assert_int_equal(read16(p, 0, at(10)), 80); /* by two per clock */
	assert_true(pit_chip_out(p, 0, at(49)));     /* high the first half */
	assert_false(pit_chip_out(p, 0, at(50)));    /* low the second */
	assert_int_equal(read16(p, 0, at(60)), 80);
	assert_true(pit_chip_out(p, 0, at(100)));
	uint64_t first, period;
	assert_true(pit_chip_timer(p, at(150), &first, &period));
	assert_int_equal(first, at(200));
	assert_true(period > 0);
	/* modes 6 and 7 are 2 and 3 */
	pit_chip_write(p, CMD, 0x3e, T0);
	pit_chip_write(p, CMD, 0xe2, T0); /* read-back: status of ch0 */
	assert_int_equal(pit_chip_read(p, 0, T0) & 0x0e, 3 << 1);
	pit_chip_free(p);
}

static void test_mode0_terminal_count(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x30, T0); /* ch0, word, mode 0 */
	assert_false(pit_chip_out(p, 0, T0)); /* low from the control word */
	uint64_t first, period;
	assert_false(pit_chip_timer(p, T0, &first, &period)); /* no count yet */
	write16(p, 0, 500, T0);
	assert_false(pit_chip_out(p, 0, at(499)));
	assert_true(pit_chip_out(p, 0, at(500)));
	assert_true(pit_chip_out(p, 0, at(70000))); /* stays high */
	assert_int_equal(read16(p, 0, at(501)), 0xffff); /* keeps counting, wrapping */
	/* one edge, at terminal count */
	assert_true(pit_chip_timer(p, T0, &first, &period));
	assert_int_equal(first, at(500));
	assert_int_equal(period, 0);
	assert_false(pit_chip_timer(p, at(600), &first, &period));
	/* writing the LSB stops the count (OUT low) until the MSB comes */
	pit_chip_write(p, 0, 0x10, at(700));
	assert_false(pit_chip_out(p, 0, at(800)));
	pit_chip_write(p, 0, 0x00, at(800));
	assert_int_equal(read16(p, 0, at(810)), 6);
	pit_chip_free(p);
}

static void test_mode4_strobe(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x38, T0); /* ch0, word, mode 4 */
	write16(p, 0, 20, T0);
	assert_true(pit_chip_out(p, 0, at(19)));
	assert_false(pit_chip_out(p, 0, at(20))); /* one clock low */
	assert_true(pit_chip_out(p, 0, at(21)));
	uint64_t first, period;
	assert_true(pit_chip_timer(p, T0, &first, &period));
	assert_int_equal(first, at(20));
	assert_int_equal(period, 0);
	pit_chip_free(p);
}

static void test_latch(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x34, T0);
	write16(p, 0, 10000, T0);
	pit_chip_write(p, CMD, 0x00, at(100)); /* latch ch0 */
	pit_chip_write(p, CMD, 0x00, at(200)); /* ignored: one is pending */
	assert_int_equal(read16(p, 0, at(5000)), 9900);
	assert_int_equal(read16(p, 0, at(5000)), 5000); /* released: live again */
	/* LSB-only and MSB-only access */
	pit_chip_write(p, CMD, 0x54, T0); /* ch1, LSB only, mode 2 */
	pit_chip_write(p, 1, 200, T0);
	assert_int_equal(pit_chip_read(p, 1, at(50)), 150);
	assert_int_equal(pit_chip_read(p, 1, at(50)), 150); /* no flip-flop */
	pit_chip_write(p, CMD, 0x64, T0); /* ch1, MSB only */
	pit_chip_write(p, 1, 0x12, T0);    /* 0x1200 */
	assert_int_equal(pit_chip_read(p, 1, at(0x100)), 0x11);
	pit_chip_write(p, CMD, 0x40, at(0x100)); /* latch */
	assert_int_equal(pit_chip_read(p, 1, at(0x1000)), 0x11);
	pit_chip_free(p);
}

static void test_readback(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x34, T0);
	write16(p, 0, 1000, T0);
	pit_chip_write(p, CMD, 0xb6, T0); /* ch2, word, mode 3: no count yet */
	/* count and status of channels 0 and 2 */
	pit_chip_write(p, CMD, 0xc0 | 0x02 | 0x08, at(300));
	assert_int_equal(pit_chip_read(p, 0, at(400)), 0x80 | 0x30 | 2 << 1); /* OUT, word, mode 2 */
	assert_int_equal(read16(p, 0, at(400)), 700);
	assert_int_equal(pit_chip_read(p, 2, at(400)), 0x80 | 0x40 | 0x30 | 3 << 1); /* null count */
	/* status only (COUNT# set): the live count follows it */
	pit_chip_write(p, CMD, 0xe0 | 0x02, at(500));
	assert_int_equal(pit_chip_read(p, 0, at(500)), 0x80 | 0x30 | 2 << 1);
	assert_int_equal(read16(p, 0, at(500)), 500);
	/* count only (STATUS# set) */
	pit_chip_write(p, CMD, 0xd0 | 0x02, at(600));
	assert_int_equal(read16(p, 0, at(900)), 400);
	/* the control port reads nothing */
	assert_int_equal(pit_chip_read(p, CMD, T0), 0xff);
	pit_chip_free(p);
}

static void test_bcd(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	pit_chip_write(p, CMD, 0x31, T0); /* ch0, word, mode 0, BCD */
	write16(p, 0, 0x1234, T0);         /* 1234 decimal */
	assert_int_equal(read16(p, 0, at(34)), 0x1200);
	assert_int_equal(read16(p, 0, at(1234)), 0x0000);
	assert_int_equal(read16(p, 0, at(1235)), 0x9999); /* the modulus is 10000 */
	assert_true(pit_chip_out(p, 0, at(1234)));
	pit_chip_write(p, CMD, 0x35, T0); /* mode 2, BCD, count 0 = 10000 */
	write16(p, 0, 0, T0);
	assert_int_equal(read16(p, 0, at(1)), 0x9999);
	pit_chip_write(p, CMD, 0x35, T0); /* not BCD digits: any count in range */
	write16(p, 0, 0xffff, T0);
	assert_true(read16(p, 0, at(1)) <= 0x9999);
	pit_chip_free(p);
}

/* Linux's calibration path: channel 2, mode 0, gated through port 0x61. */
static void test_channel2_gate(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	assert_int_equal(pit_chip_read(p, SYSCTL, T0) & 0x01, 0); /* gate low at reset */
	pit_chip_write(p, CMD, 0xb0, T0); /* ch2, word, mode 0 */
	write16(p, 2, 1000, T0);
	assert_int_equal(read16(p, 2, at(500)), 1000); /* gate low: not counting */
	pit_chip_write(p, SYSCTL, 0x01, at(500));      /* gate up, speaker off */
	assert_int_equal(pit_chip_read(p, SYSCTL, at(500)) & 0x23, 0x01);
	assert_int_equal(read16(p, 2, at(600)), 900);
	pit_chip_write(p, SYSCTL, 0x00, at(600)); /* gate down: paused */
	assert_int_equal(read16(p, 2, at(5000)), 900);
	pit_chip_write(p, SYSCTL, 0x03, at(5000)); /* resumed, speaker data on */
	assert_int_equal(pit_chip_read(p, SYSCTL, at(5899)) & 0x20, 0);
	assert_int_equal(pit_chip_read(p, SYSCTL, at(5900)) & 0x23, 0x23); /* OUT2 */
	/* mode 2 on channel 2: the gate's rising edge reloads */
	pit_chip_write(p, CMD, 0xb4, at(6000));
	write16(p, 2, 100, at(6000));
	assert_int_equal(read16(p, 2, at(6030)), 70);
	pit_chip_write(p, SYSCTL, 0x00, at(6030));
	assert_true(pit_chip_out(p, 2, at(6099))); /* gate low: OUT high */
	pit_chip_write(p, SYSCTL, 0x01, at(7000));
	assert_int_equal(read16(p, 2, at(7010)), 90);
	/* mode 1: counts from the gate's rising edge, OUT low meanwhile */
	pit_chip_write(p, SYSCTL, 0x00, at(8000));
	pit_chip_write(p, CMD, 0xb2, at(8000));
	write16(p, 2, 50, at(8000));
	assert_true(pit_chip_out(p, 2, at(8100)));
	assert_int_equal(read16(p, 2, at(8100)), 50);
	pit_chip_write(p, SYSCTL, 0x01, at(8100));
	assert_false(pit_chip_out(p, 2, at(8110)));
	assert_int_equal(read16(p, 2, at(8110)), 40);
	assert_true(pit_chip_out(p, 2, at(8150)));
	/* channel 0 never counts in mode 1: its gate has no edge */
	pit_chip_write(p, CMD, 0x32, T0);
	write16(p, 0, 50, T0);
	uint64_t first, period;
	assert_false(pit_chip_timer(p, T0, &first, &period));
	pit_chip_free(p);
}

static void test_hostile(void **state)
{
	(void)state;
	struct pit_chip *p = chip();
	/* data before any control word: the access mode is undefined, ignored */
	pit_chip_write(p, 0, 0x12, T0);
	pit_chip_write(p, 7, 0x12, T0); /* no such port */
	assert_int_equal(pit_chip_read(p, 7, T0), 0xff);
	assert_false(pit_chip_out(p, 9, T0));
	uint64_t first, period;
	assert_false(pit_chip_timer(p, T0, &first, &period));
	/* count 1 in mode 2: legal for reads, the host timer's period is the
	 * device's business (clamped to PIT_MIN_PERIOD_NS there) */
	pit_chip_write(p, CMD, 0x34, T0);
	write16(p, 0, 1, T0);
	assert_int_equal(read16(p, 0, at(12345)), 1);
	assert_true(pit_chip_timer(p, T0, &first, &period));
	/* time going backwards (clock reads on two CPUs) reads as no time */
	assert_int_equal(read16(p, 0, T0 - 5000), 1);
	pit_chip_free(p);
}

/* The device on the PIO bus, as a vCPU exit reaches it. */
static void test_device_ports(void **state)
{
	(void)state;
	static struct vm vm;
	fake_vm_init(&vm);
	assert_non_null(fake_dev_create(&vm, &pit_dev_ops));
	const struct bus_range *ctl = bus_find(&vm.pio, 0x43, 1);
	const struct bus_range *c2 = bus_find(&vm.pio, 0x42, 1);
	const struct bus_range *sc = bus_find(&vm.pio, 0x61, 1);
	assert_non_null(ctl);
	assert_non_null(c2);
	assert_non_null(sc);
	sc->ops->write(sc->opaque, 0x61 - sc->base, 1, 0x01);
	ctl->ops->write(ctl->opaque, 0x43 - ctl->base, 1, 0xb0);
	/* a 2-byte write at 0x42 is clipped to 0x42-0x43: LSB to ch2, then
	 * 0x00 to the control port (latch ch0, harmless) */
	c2->ops->write(c2->opaque, 0x42 - c2->base, 2, 0x00ff);
	c2->ops->write(c2->opaque, 0x42 - c2->base, 1, 0xff);
	uint64_t lo = c2->ops->read(c2->opaque, 0x42 - c2->base, 1);
	uint64_t hi = c2->ops->read(c2->opaque, 0x42 - c2->base, 1);
	assert_true(((hi << 8) | lo) <= 0xffff);
	assert_true(hi >= 0xf0); /* counting down from 0xffff, microseconds in */
	assert_int_equal(sc->ops->read(sc->opaque, 0, 4) & ~0xffull, 0); /* one byte wide */
	/* a 4-byte access at 0x40 covers the four ports */
	const struct bus_range *c0 = bus_find(&vm.pio, 0x40, 4);
	assert_non_null(c0);
	assert_int_equal(c0->ops->read(c0->opaque, 0, 4) >> 24, 0xff); /* 0x43 reads 0xff */
	pit_firmware_init(dev_find(&vm.devs, "pit", 0)); /* no event loop: the chip is set, no timer */
	assert_int_equal(pit_irqs(dev_find(&vm.devs, "pit", 0)), 0);
	fake_vm_free(&vm);
	assert_null(dev_find(&vm.devs, "pit", 0));
}

/* ---- the 8259 pair ---- */

static struct vm pvm;

static void pio_write(uint16_t port, uint8_t v)
{
	const struct bus_range *r = bus_find(&pvm.pio, port, 1);
	assert_non_null(r);
	r->ops->write(r->opaque, port - r->base, 1, v);
}

static uint8_t pio_read(uint16_t port)
{
	const struct bus_range *r = bus_find(&pvm.pio, port, 1);
	assert_non_null(r);
	return (uint8_t)r->ops->read(r->opaque, port - r->base, 1);
}

static int pic_setup(void **state)
{
	(void)state;
	fake_vm_init(&pvm);
	assert_non_null(fake_dev_create(&pvm, &pic_dev_ops));
	return 0;
}

static int pic_teardown(void **state)
{
	(void)state;
	fake_vm_free(&pvm);
	return 0;
}

static void test_pic_reset_and_mask(void **state)
{
	(void)state;
	assert_int_equal(pio_read(0x21), 0xff); /* masked until programmed */
	pic_firmware_init(dev_find(&pvm.devs, "pic", 0));
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 1, true);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pio_read(0x21), 0xfa);
	assert_int_equal(pio_read(0xa1), 0xff);
	/* Linux's probe: IMR reads back */
	pio_write(0x21, 0x5a);
	assert_int_equal(pio_read(0x21), 0x5a);
	/* IRQ 1 was latched while masked: unmasking raises INT */
	pio_write(0x21, 0xf8);
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x09);
	pio_write(0x20, 0x20);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 1, false);
}

static void test_pic_priority_and_eoi(void **state)
{
	(void)state;
	pic_firmware_init(dev_find(&pvm.devs, "pic", 0));
	pio_write(0x21, 0x00); /* all unmasked */
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 3, true);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, true);
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	pio_write(0x20, 0x0a); /* OCW3: read IRR */
	assert_int_equal(pio_read(0x20), 0x09);
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x08); /* IRQ 0 first */
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));            /* IRQ 3 waits for the EOI */
	pio_write(0x20, 0x0b); /* OCW3: read ISR */
	assert_int_equal(pio_read(0x20), 0x01);
	pio_write(0x20, 0x20); /* non-specific EOI */
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x0b);
	pio_write(0x20, 0x63); /* specific EOI, IRQ 3 */
	assert_int_equal(pio_read(0x20), 0x00);
	/* edge: a line held high does not request again; a new edge does */
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, true);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, false);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, true);
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x08);
	pio_write(0x20, 0x20);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, false);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 3, false);
	/* nothing pending at INTA: spurious IRQ 7, nothing put in service */
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x0f);
	pio_write(0x20, 0x0b);
	assert_int_equal(pio_read(0x20), 0x00);
	pio_write(0x20, 0x0a);
}

static void test_pic_cascade_level_poll(void **state)
{
	(void)state;
	pic_firmware_init(dev_find(&pvm.devs, "pic", 0));
	pio_write(0xa1, 0xf7); /* slave: IRQ 11 only */
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 11, true);
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x73);
	pio_write(0xa0, 0x20);
	pio_write(0x20, 0x20);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 11, false);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	/* level-triggered IRQ 10 (ELCR): requests as long as the line is high */
	pio_write(0x4d1, 0x04);
	assert_int_equal(pio_read(0x4d1), 0x04);
	pio_write(0x4d0, 0xff); /* IRQ 0, 1, 2 cannot be level */
	assert_int_equal(pio_read(0x4d0), 0xf8);
	pio_write(0x4d0, 0x00);
	pio_write(0xa1, 0xfb);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 10, true);
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x72);
	pio_write(0xa0, 0x20);
	pio_write(0x20, 0x20);
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0))); /* still high: again */
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 10, false);
	/* the master latched the cascade's edge; the slave has nothing left:
	 * the INTA gets the slave's spurious IRQ 15 */
	assert_true(pic_output(dev_find(&pvm.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x77);
	pio_write(0x20, 0x20);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	/* poll mode: the read acknowledges */
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, true);
	pio_write(0x20, 0x0c);
	assert_int_equal(pio_read(0x20), 0x80);
	pio_write(0x20, 0x0b);
	assert_int_equal(pio_read(0x20), 0x01);
	pio_write(0x20, 0x20);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 0, false);
	/* the cascade line itself is not a device's */
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 2, true);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 99, true);
	assert_false(pic_output(dev_find(&pvm.devs, "pic", 0)));
	pio_write(0x20, 0x0a);
}

static void test_pic_auto_eoi_and_rotation(void **state)
{
	(void)state;
	/* ICW4 with AEOI: nothing stays in service */
	pio_write(0x20, 0x11);
	pio_write(0x21, 0x20);
	pio_write(0x21, 0x04);
	pio_write(0x21, 0x03);
	pio_write(0x21, 0x00);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 5, true);
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x25);
	pio_write(0x20, 0x0b);
	assert_int_equal(pio_read(0x20), 0x00);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 5, false);
	/* set priority: IRQ 4 lowest, so IRQ 5 beats IRQ 1 */
	pio_write(0x20, 0xc4);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 1, true);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 5, true);
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x25);
	assert_int_equal(pic_intack(dev_find(&pvm.devs, "pic", 0)), 0x21);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 1, false);
	pic_set_irq(dev_find(&pvm.devs, "pic", 0), 5, false);
	pio_write(0x20, 0x0a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode2_rate_generator),
		cmocka_unit_test(test_mode3_square_wave),
		cmocka_unit_test(test_mode0_terminal_count),
		cmocka_unit_test(test_mode4_strobe),
		cmocka_unit_test(test_latch),
		cmocka_unit_test(test_readback),
		cmocka_unit_test(test_bcd),
		cmocka_unit_test(test_channel2_gate),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_device_ports),
		cmocka_unit_test_setup_teardown(test_pic_reset_and_mask, pic_setup, pic_teardown),
		cmocka_unit_test_setup_teardown(test_pic_priority_and_eoi, pic_setup, pic_teardown),
		cmocka_unit_test_setup_teardown(test_pic_cascade_level_poll, pic_setup, pic_teardown),
		cmocka_unit_test_setup_teardown(test_pic_auto_eoi_and_rotation, pic_setup, pic_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
