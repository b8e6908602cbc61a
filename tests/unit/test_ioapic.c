/* Unit tests for the IOAPIC (src/devices/ioapic.c), driven through the MMIO bus. */
#include <errno.h>
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

/* ---- test doubles ---- */

static int route_calls;
static unsigned route_pin;
static uint64_t route_addr;
static uint32_t route_data;

int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data)
{
	(void)vm;
	route_calls++;
	route_pin = pin;
	route_addr = addr;
	route_data = data;
	return 0;
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

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	ioapic_set_line(vm, pin, level); /* what irq.c does in split mode */
}

/* ---- harness ---- */

static struct vm vm;

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	route_calls = 0;
	assert_int_equal(ioapic_create(&vm), 0);
	assert_non_null(vm.ioapic);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_vm_free(&vm);
	assert_null(vm.ioapic);
	return 0;
}

static uint64_t mread(uint64_t off, unsigned size)
{
	const struct bus_range *r = bus_find(&vm.mmio, IRQ_IOAPIC_ADDR + off, size);
	assert_non_null(r);
	return r->ops->read(r->opaque, IRQ_IOAPIC_ADDR + off - r->base, size);
}

static void mwrite(uint64_t off, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(&vm.mmio, IRQ_IOAPIC_ADDR + off, size);
	assert_non_null(r);
	r->ops->write(r->opaque, IRQ_IOAPIC_ADDR + off - r->base, size, v);
}

static uint32_t reg_read(uint32_t reg)
{
	mwrite(0x00, 4, reg);
	return (uint32_t)mread(0x10, 4);
}

static void reg_write(uint32_t reg, uint32_t v)
{
	mwrite(0x00, 4, reg);
	mwrite(0x10, 4, v);
}

static void rte_write(unsigned pin, uint32_t hi, uint32_t lo)
{
	reg_write(0x10 + 2 * pin + 1, hi);
	reg_write(0x10 + 2 * pin, lo);
}

#define RTE_LEVEL 0x8000u
#define RTE_REMOTE_IRR 0x4000u
#define RTE_MASK 0x10000u

/* ---- tests ---- */

static void test_id_version(void **state)
{
	(void)state;
	assert_int_equal(reg_read(0x01), 0x00170020); /* 24 entries, version 0x20 */
	assert_int_equal(reg_read(0x00), 0);
	reg_write(0x00, 0xfa000000);
	assert_int_equal(reg_read(0x00), 0x0a000000); /* 4-bit ID */
	assert_int_equal(reg_read(0x02), 0x0a000000); /* ARB follows the ID */
	reg_write(0x01, 0xffffffff);                  /* VER is read-only */
	assert_int_equal(reg_read(0x01), 0x00170020);
	assert_int_equal(mread(0x00, 4), 0x01);       /* IOREGSEL reads back */
}

static void test_reset_masked(void **state)
{
	(void)state;
	for (unsigned pin = 0; pin < IRQ_IOAPIC_PINS; pin++) {
		assert_int_equal(reg_read(0x10 + 2 * pin), RTE_MASK);
		assert_int_equal(reg_read(0x10 + 2 * pin + 1), 0);
	}
	assert_int_equal(route_calls, 0);
}

static void test_rte_to_msi(void **state)
{
	(void)state;
	/* pin 4: dest 3, logical, lowest priority, vector 0x31, edge */
	rte_write(4, 0x03000000, 0x00000931);
	assert_int_equal(route_pin, 4);
	assert_int_equal(route_addr, 0xfee03004ull);
	assert_int_equal(route_data, 0x4131);
	/* pin 9: physical dest 0x12, fixed, level, vector 0x40 */
	rte_write(9, 0x12000000, RTE_LEVEL | 0x40);
	assert_int_equal(route_pin, 9);
	assert_int_equal(route_addr, 0xfee12000ull);
	assert_int_equal(route_data, 0xc040);
	/* ExtINT keeps its delivery mode */
	rte_write(0, 0, 0x700);
	assert_int_equal(route_data, 0x4700);
	/* read back: writable bits only */
	reg_write(0x10 + 2 * 4, 0xffffffff);
	assert_int_equal(reg_read(0x10 + 2 * 4), 0x1afff); /* no delivery status/remote IRR */
	reg_write(0x10 + 2 * 4 + 1, 0xffffffff);
	/* bits 63:48: destination, and 55:48 (Intel's extended destination,
	 * the remappable format's bits for VT-d) */
	assert_int_equal(reg_read(0x10 + 2 * 4 + 1), 0xffff0000);
	/* 55:48 go out as address bits 11:4: a remappable entry (format bit
	 * 48, index 5 in 63:49) becomes a remappable MSI with handle 5 */
	rte_write(6, 0x000b0000, 0x00000951);
	assert_int_equal(route_addr, 0xfee000b4ull);
}

static void test_mask_toggle_keeps_route(void **state)
{
	(void)state;
	int calls = route_calls;
	rte_write(5, 0x01000000, RTE_MASK | 0x35);   /* programmed while masked: no route yet */
	reg_write(0x10 + 2 * 5, RTE_MASK | 0x36);
	assert_int_equal(route_calls, calls);
	reg_write(0x10 + 2 * 5, 0x35);               /* unmask: the route, once */
	assert_int_equal(route_calls, calls + 1);
	assert_int_equal(route_data, 0x4035);
	reg_write(0x10 + 2 * 5, RTE_MASK | 0x35);    /* mask, unmask: same message, no reroute */
	reg_write(0x10 + 2 * 5, 0x35);
	assert_int_equal(route_calls, calls + 1);
	reg_write(0x10 + 2 * 5, 0x36);               /* a new vector while unmasked */
	assert_int_equal(route_calls, calls + 2);
	assert_int_equal(route_data, 0x4036);
	/* Linux's boot: mask all 24 pins (low word first, as its
	 * ioapic_mask_entry does), then reprogram some while masked */
	calls = route_calls;
	for (unsigned pin = 0; pin < 24; pin++) {
		reg_write(0x10 + 2 * pin, RTE_MASK);
		reg_write(0x10 + 2 * pin + 1, 0);
	}
	rte_write(9, 0x01000000, RTE_MASK | RTE_LEVEL | 0x39);
	assert_int_equal(route_calls, calls);
}

static void test_masked_not_delivered(void **state)
{
	(void)state;
	rte_write(3, 0, RTE_MASK | 0x33);
	irq_set_line(&vm, 3, true);
	irq_set_line(&vm, 3, false);
	assert_int_equal(ioapic_delivered(&vm, 3), 0);
	/* a masked edge is lost: unmasking later does not deliver it */
	irq_set_line(&vm, 3, true);
	reg_write(0x10 + 2 * 3, 0x33);
	assert_int_equal(ioapic_delivered(&vm, 3), 0);
	/* a masked level pin is delivered once unmasked */
	rte_write(10, 0, RTE_MASK | RTE_LEVEL | 0x3a);
	irq_set_line(&vm, 10, true);
	assert_int_equal(ioapic_delivered(&vm, 10), 0);
	reg_write(0x10 + 2 * 10, RTE_LEVEL | 0x3a);
	assert_int_equal(ioapic_delivered(&vm, 10), 1);
}

static void test_edge_once_per_rising_edge(void **state)
{
	(void)state;
	rte_write(4, 0, 0x34);
	irq_set_line(&vm, 4, true);
	assert_int_equal(ioapic_delivered(&vm, 4), 1);
	irq_set_line(&vm, 4, true); /* still high: no new edge */
	assert_int_equal(ioapic_delivered(&vm, 4), 1);
	irq_set_line(&vm, 4, false);
	assert_int_equal(ioapic_delivered(&vm, 4), 1);
	irq_set_line(&vm, 4, true);
	assert_int_equal(ioapic_delivered(&vm, 4), 2);
	/* EOIs do nothing to edge pins */
	ioapic_eoi(&vm, 0x34);
	assert_int_equal(ioapic_delivered(&vm, 4), 2);
	assert_false(reg_read(0x10 + 2 * 4) & RTE_REMOTE_IRR);
	/* other pins are untouched */
	assert_int_equal(ioapic_delivered(&vm, 5), 0);
}

static void test_level_remote_irr_eoi(void **state)
{
	(void)state;
	rte_write(11, 0, RTE_LEVEL | 0x50);
	irq_set_line(&vm, 11, true);
	assert_int_equal(ioapic_delivered(&vm, 11), 1);
	assert_true(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
	irq_set_line(&vm, 11, true); /* in service: held */
	assert_int_equal(ioapic_delivered(&vm, 11), 1);
	ioapic_eoi(&vm, 0x51);       /* another vector: nothing */
	assert_int_equal(ioapic_delivered(&vm, 11), 1);
	assert_true(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
	ioapic_eoi(&vm, 0x50);       /* still asserted: redelivered */
	assert_int_equal(ioapic_delivered(&vm, 11), 2);
	assert_true(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
	irq_set_line(&vm, 11, false);
	mwrite(0x40, 4, 0x50);       /* EOI through the IOAPIC's EOI register */
	assert_int_equal(ioapic_delivered(&vm, 11), 2);
	assert_false(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
	irq_set_line(&vm, 11, true);
	assert_int_equal(ioapic_delivered(&vm, 11), 3);
	/* a guest write cannot set or clear Remote IRR */
	reg_write(0x10 + 2 * 11, RTE_LEVEL | 0x50);
	assert_true(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
	/* switching to edge drops it */
	reg_write(0x10 + 2 * 11, 0x50);
	assert_false(reg_read(0x10 + 2 * 11) & RTE_REMOTE_IRR);
}

/* An ISR that retargets its own level pin (kvm-unit-tests' ioapic "self
 * reconfigure"): the route KVM delivered through stays until the EOI, which
 * names the vector delivered; then the new route goes in, and a pin still
 * asserted fires through it. */
static void test_reconfigure_in_flight(void **state)
{
	(void)state;
	rte_write(13, 0, RTE_LEVEL | 0x64);
	irq_set_line(&vm, 13, true);
	assert_int_equal(ioapic_delivered(&vm, 13), 1);
	int calls = route_calls;
	reg_write(0x10 + 2 * 13 + 1, 0x01000000); /* dest 1, while in flight */
	assert_int_equal(route_calls, calls);       /* the old route stays */
	assert_int_equal(reg_read(0x10 + 2 * 13 + 1), 0x01000000); /* the entry reads new */
	reg_write(0x10 + 2 * 13, RTE_LEVEL | 0x65); /* and a new vector */
	assert_int_equal(route_calls, calls);
	ioapic_eoi(&vm, 0x65); /* not what was delivered: nothing */
	assert_true(reg_read(0x10 + 2 * 13) & RTE_REMOTE_IRR);
	assert_int_equal(route_calls, calls);
	ioapic_eoi(&vm, 0x64); /* the delivered vector: IRR clears, new route */
	assert_int_equal(route_calls, calls + 1);
	assert_int_equal(route_pin, 13);
	assert_int_equal(route_addr, 0xfee01000ull);
	assert_int_equal(route_data, 0xc065);
	/* still asserted: delivered again, through the new route */
	assert_int_equal(ioapic_delivered(&vm, 13), 2);
	ioapic_eoi(&vm, 0x64);
	assert_true(reg_read(0x10 + 2 * 13) & RTE_REMOTE_IRR);
	irq_set_line(&vm, 13, false);
	ioapic_eoi(&vm, 0x65);
	assert_false(reg_read(0x10 + 2 * 13) & RTE_REMOTE_IRR);
	assert_int_equal(ioapic_delivered(&vm, 13), 2);
	/* without an interrupt in flight a change is routed at once */
	reg_write(0x10 + 2 * 13 + 1, 0x02000000);
	assert_int_equal(route_calls, calls + 2);
	assert_int_equal(route_addr, 0xfee02000ull);
}

static void test_hostile(void **state)
{
	(void)state;
	/* unknown registers and offsets read 0, writes are ignored */
	assert_int_equal(reg_read(0x03), 0);
	assert_int_equal(reg_read(0x40), 0);
	assert_int_equal(reg_read(0xff), 0);
	reg_write(0x40, 0xffffffff);
	reg_write(0xff, 0xffffffff);
	for (uint64_t off = 0; off < 0x1000; off += 4) {
		if (off == 0x00 || off == 0x10 || off == 0x40)
			continue;
		mwrite(off, 4, 0xffffffff);
		assert_int_equal(mread(off, 4), 0);
	}
	mwrite(0x00, 8, 0xffffffffffffffffull); /* IOREGSEL keeps 8 bits */
	assert_int_equal(mread(0x00, 4), 0xff);
	mwrite(0x00, 1, 0x01);
	assert_int_equal(mread(0x10, 2), 0x0020); /* narrow read: the low bytes */
	ioapic_set_line(&vm, IRQ_IOAPIC_PINS, true); /* out of range: ignored */
	ioapic_set_line(&vm, 1000, true);
	assert_int_equal(ioapic_delivered(&vm, 1000), 0);
	for (unsigned pin = 0; pin < IRQ_IOAPIC_PINS; pin++)
		assert_int_equal(ioapic_delivered(&vm, pin), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_id_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rte_to_msi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mask_toggle_keeps_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_not_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edge_once_per_rising_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_remote_irr_eoi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
