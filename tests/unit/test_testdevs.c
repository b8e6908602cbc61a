/*
 * Unit tests for the devices kvm-unit-tests need: pc-testdev, pci-testdev
 * and the ACPI PM registers, on a fake VM (no KVM) through the same bus paths
 * a vCPU exit takes, with hostile accesses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pci.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"
#include "bus_access.h"

#define RAM (16ull << 20)

static struct vm vm;

/* Interrupt lines go to the real IOAPIC (split mode, no KVM): program pin n
 * edge-triggered and unmasked, then count its deliveries. */
static void ioapic_pin_edge(unsigned pin, uint8_t vector)
{
	const struct bus_range *r = bus_find(&vm.mmio, IRQ_IOAPIC_ADDR, 4);
	assert_non_null(r);
	r->ops->write(r->opaque, 0x00, 4, 0x10 + 2 * pin);
	r->ops->write(r->opaque, 0x10, 4, vector);
}

/* The IOAPIC's routes through irq.c's bookkeeping (no KVM), as vm.c's. */
static int route_msi(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_route_msi(ctx, gsi, addr, data);
}

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	assert_int_equal(mem_init(&vm.mem, RAM), 0);
	fake_irq_hook = fake_irq_split; /* the lines reach the IOAPIC */
	vm.cfg.irqchip = IRQCHIP_SPLIT;
	vm.env.msi = (struct dev_msi){ .ctx = &vm, .route = route_msi };
	assert_non_null(fake_dev_create(&vm, &ioapic_dev_ops));
	assert_true(irq_msi_alloc(&vm) >= 0); /* irq.c's bookkeeping, which IOAPIC routes need */
	assert_int_equal(pci_init(&vm), 0);
	irq_attach(&vm, NULL, dev_find(&vm.devs, "ioapic", 0));
	struct dev_msi msi = vm.env.msi;
	fake_vm_env(&vm); /* the PCI host */
	vm.env.msi = msi;
	assert_non_null(fake_dev_create(&vm, &pc_testdev_dev_ops));
	assert_non_null(fake_dev_create(&vm, &acpi_pm_dev_ops));
	assert_non_null(fake_dev_create(&vm, &rtc_dev_ops));
	assert_non_null(fake_dev_create(&vm, &pci_testdev_dev_ops));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_vm_free(&vm); /* the PCI functions' state first, then their bus */
	pci_destroy(&vm);
	mem_free(&vm.mem);
	irq_destroy(&vm);
	return 0;
}

static uint32_t cfg_rd(unsigned devfn, unsigned off)
{
	wr(&vm.pio, 0xcf8, 4, 0x80000000u | devfn << 8 | (off & 0xfc));
	return (uint32_t)rd(&vm.pio, 0xcfc, 4);
}

static void cfg_wr(unsigned devfn, unsigned off, uint32_t v)
{
	wr(&vm.pio, 0xcf8, 4, 0x80000000u | devfn << 8 | (off & 0xfc));
	wr(&vm.pio, 0xcfc, 4, v);
}

/* ---- pc-testdev ---- */

static void test_scratch_logic(void **state)
{
	(void)state;
	uint32_t r = pc_testdev_scratch_write(0, 0, 4, 0x11223344);
	assert_int_equal(r, 0x11223344);
	assert_int_equal(pc_testdev_scratch_read(r, 1, 2), 0x2233);
	assert_int_equal(pc_testdev_scratch_read(r, 3, 1), 0x11);
	r = pc_testdev_scratch_write(r, 2, 1, 0xff);
	assert_int_equal(r, 0x11ff3344);
	/* clipped to the register: a 4-byte access at offset 2 sees 2 bytes */
	assert_int_equal(pc_testdev_scratch_read(r, 2, 4), 0x11ff);
	assert_int_equal(pc_testdev_scratch_write(r, 2, 4, 0xaabbccdd), 0xccdd3344);
	/* offsets and sizes out of range do nothing */
	assert_int_equal(pc_testdev_scratch_read(r, 4, 1), 0);
	assert_int_equal(pc_testdev_scratch_write(r, 9, 4, 0), r);
	assert_int_equal(pc_testdev_scratch_read(r, 0, 0), 0);
	assert_int_equal(pc_testdev_irq_pin(0), 2);
	assert_int_equal(pc_testdev_irq_pin(14), 14);
	assert_int_equal(pc_testdev_irq_pin(23), 23);
	assert_int_equal(pc_testdev_irq_pin(24), -1);
}

static void test_pc_testdev_ports(void **state)
{
	(void)state;
	wr(&vm.pio, 0xe0, 4, 0xdeadbeef);
	assert_int_equal(rd(&vm.pio, 0xe0, 4), 0xdeadbeef);
	assert_int_equal(rd(&vm.pio, 0xe1, 2), 0xadbe);
	/* 0xe8: the same register, byte by byte */
	assert_int_equal(rd(&vm.pio, 0xe8, 4), 0xdeadbeef);
	wr(&vm.pio, 0xea, 2, 0x1234);
	assert_int_equal(rd(&vm.pio, 0xe0, 4), 0x1234beef);
	/* interrupt lines: one byte, v != 0 asserts (an edge per rising edge) */
	ioapic_pin_edge(14, 0x40);
	ioapic_pin_edge(2, 0x41);
	ioapic_pin_edge(11, 0x42);
	wr(&vm.pio, 0x200e, 1, 5);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 14), 1);
	wr(&vm.pio, 0x200e, 1, 0);
	wr(&vm.pio, 0x200e, 1, 1);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 14), 2);
	wr(&vm.pio, 0x2000, 1, 1); /* IRQ 0 is pin 2 */
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 2), 1);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 0), 0);
	wr(&vm.pio, 0x200b, 4, 1); /* not one byte: dropped, as QEMU does */
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 11), 0);
	assert_null(bus_find(&vm.pio, 0x2018, 1)); /* 24 lines */
	assert_int_equal(rd(&vm.pio, 0x2005, 1), 0);
	/* MMIO scratch: reads what was written, at any size and offset inside */
	wr(&vm.mmio, 0xff000000, 8, 0x0102030405060708ull);
	assert_int_equal(rd(&vm.mmio, 0xff000004, 4), 0x01020304);
	wr(&vm.mmio, 0xff00ffff, 1, 0x5a);
	assert_int_equal(rd(&vm.mmio, 0xff00ffff, 1), 0x5a);
	assert_null(bus_find(&vm.mmio, 0xff00fffe, 4)); /* past the end: not ours */
}

static void test_pc_testdev_flush(void **state)
{
	(void)state;
	uint8_t *p = mem_ptr(&vm.mem, 0x200000, 0x1000);
	assert_non_null(p);
	p[0x10] = 0x77;
	wr(&vm.pio, 0xe4, 4, 0x200123); /* any address in the page */
	assert_int_equal(pc_testdev_flushes(dev_find(&vm.devs, "pc-testdev", 0)), 1);
	assert_int_equal(p[0x10], 0x77); /* contents kept, still writable */
	p[0x10] = 0x78;
	wr(&vm.pio, 0xe4, 2, 0x200000); /* not 4 bytes: dropped */
	wr(&vm.pio, 0xe4, 4, 0xfec00000); /* not RAM: ignored */
	wr(&vm.pio, 0xe4, 4, RAM);         /* just past RAM */
	assert_int_equal(pc_testdev_flushes(dev_find(&vm.devs, "pc-testdev", 0)), 1);
	assert_int_equal(rd(&vm.pio, 0xe4, 4), 0);
}

/* ---- ACPI PM ---- */

static void test_pm_timer_logic(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_timer_ticks(0), 0);
	assert_int_equal(acpi_pm_timer_ticks(1000000000ull), 3579545 & 0xffffff);
	assert_int_equal(acpi_pm_timer_ticks(1000), 3); /* 3.58 ticks per us */
	/* no overflow for a long-running VM: a year of ns */
	uint64_t year = 365ull * 86400 * 1000000000ull;
	assert_int_equal(acpi_pm_timer_ticks(year), (uint32_t)((365ull * 86400 * 3579545) & 0xffffff));
	assert_int_equal(acpi_pm_sts_write(0x8101, 0x0100), 0x8001); /* write 1 to clear */
	assert_int_equal(acpi_pm_sts_write(0x8101, 0x7efe), 0x8101); /* 0s and unknown bits: nothing */
}

static void test_pm_registers(void **state)
{
	(void)state;
	uint32_t t1 = (uint32_t)rd(&vm.pio, 0x608, 4);
	usleep(2000);
	uint32_t t2 = (uint32_t)rd(&vm.pio, 0x608, 4);
	assert_true(t1 <= 0xffffff && t2 <= 0xffffff);
	assert_true(((t2 - t1) & 0xffffff) >= 7000 / 2); /* 2 ms is ~7160 ticks */
	wr(&vm.pio, 0x608, 4, 0);                        /* read-only */
	assert_true(((uint32_t)rd(&vm.pio, 0x608, 4) - t2) < 0x800000);
	/* SCI_EN reads set; SLP_EN is write-only and counted */
	assert_int_equal(rd(&vm.pio, 0x604, 2) & 1, 1);
	wr(&vm.pio, 0x604, 2, 0x2400);
	assert_int_equal(acpi_pm_sleep_requests(dev_find(&vm.devs, "acpi-pm", 0)), 1);
	assert_int_equal(rd(&vm.pio, 0x604, 2), 0x0401); /* SLP_TYP kept, SCI_EN, no SLP_EN */
	assert_int_equal(stop_calls, 0); /* S3 without vCPU threads: only counted */
	wr(&vm.pio, 0x604, 2, 0x2000);   /* SLP_TYP 0: power off */
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
	assert_int_equal(stop_status, 0);
	/* enable bits: only the three that exist */
	wr(&vm.pio, 0x602, 2, 0xffff);
	assert_int_equal(rd(&vm.pio, 0x602, 2), 0x0501);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 9), 0); /* nothing pending: no SCI */
	assert_null(bus_find(&vm.pio, 0x60c, 1));
}

/* ---- RTC ---- */

static uint8_t cmos_rd(uint8_t reg)
{
	wr(&vm.pio, 0x70, 1, reg);
	return (uint8_t)rd(&vm.pio, 0x71, 1);
}

static void cmos_wr(uint8_t reg, uint8_t v)
{
	wr(&vm.pio, 0x70, 1, reg);
	wr(&vm.pio, 0x71, 1, v);
}

static void test_rtc_alarm_logic(void **state)
{
	(void)state;
	const uint8_t any[3] = { 0xc0, 0xff, 0xc5 }, now[3] = { 0x12, 0x34, 0x05 };
	assert_true(rtc_alarm_match(any, now));
	const uint8_t at[3] = { 0x12, 0xc0, 0x05 }, other[3] = { 0x13, 0xc0, 0xc0 };
	assert_true(rtc_alarm_match(at, now));
	assert_false(rtc_alarm_match(other, now));
}

static void test_rtc_registers(void **state)
{
	(void)state;
	assert_int_equal(cmos_rd(0x0d), 0x80);       /* battery fine */
	assert_int_equal(cmos_rd(0x0b) & 0x06, 0x02); /* BCD, 24 h */
	uint8_t s = cmos_rd(0x00), m = cmos_rd(0x02), h = cmos_rd(0x04);
	assert_true((s & 0xf) < 10 && (s >> 4) < 6 && (m >> 4) < 6 && h < 0x24);
	assert_true(cmos_rd(0x08) >= 1 && cmos_rd(0x08) <= 0x12);
	/* set the clock: SET freezes it, the written fields read back */
	cmos_wr(0x0b, 0x82);
	cmos_wr(0x04, 0x23);
	cmos_wr(0x02, 0x59);
	cmos_wr(0x00, 0x58);
	assert_int_equal(cmos_rd(0x04), 0x23);
	assert_int_equal(cmos_rd(0x02), 0x59);
	assert_int_equal(cmos_rd(0x00), 0x58);
	assert_int_equal(cmos_rd(0x0a) & 0x80, 0); /* no update cycle while SET */
	cmos_wr(0x0b, 0x02 | 0x04);               /* run again, binary mode */
	uint8_t sec = cmos_rd(0x00);
	assert_true(sec >= 58 && sec <= 59 + 2); /* 0x58 BCD was 58 s */
	/* an alarm for any second, AIE on: C says AF and IRQF within a second */
	cmos_wr(0x01, 0xc0);
	cmos_wr(0x03, 0xc0);
	cmos_wr(0x05, 0xc0);
	cmos_wr(0x0b, 0x02 | 0x04 | 0x20);
	(void)cmos_rd(0x0c);
	for (int i = 0; i < 150 && !rtc_alarm_due(dev_find(&vm.devs, "rtc", 0)); i++)
		usleep(10000);
	assert_true(rtc_alarm_due(dev_find(&vm.devs, "rtc", 0)));
	uint8_t c = cmos_rd(0x0c);
	assert_int_equal(c & 0xa0, 0xa0);          /* IRQF | AF */
	assert_int_equal(cmos_rd(0x0c) & 0x20, 0); /* reading cleared it */
	/* CMOS RAM keeps what is written; the index ignores the NMI bit */
	cmos_wr(0x80 | 0x40, 0x5a);
	assert_int_equal(cmos_rd(0x40), 0x5a);
	assert_int_equal(rd(&vm.pio, 0x70, 1), 0xff); /* the index port is write-only */
}

/* ---- pci-testdev ---- */

static unsigned testdev_devfn(void)
{
	for (unsigned devfn = 8; devfn < 256; devfn += 8)
		if (cfg_rd(devfn, 0) == 0x00051b36)
			return devfn;
	fail_msg("pci-testdev not found on bus 0");
	return 0;
}

static void test_pci_testdev(void **state)
{
	(void)state;
	unsigned d = testdev_devfn();
	assert_int_equal(cfg_rd(d, 0x08) >> 8, 0xff0000); /* class "other" */
	assert_int_equal(cfg_rd(d, 0x3c) >> 8 & 0xff, 0);  /* no interrupt pin */
	uint32_t bar0 = cfg_rd(d, 0x10), bar1 = cfg_rd(d, 0x14);
	assert_int_equal(bar0 & 0xf, 0);          /* 32-bit memory */
	assert_int_equal(bar1 & 0x3, 1);          /* I/O */
	assert_true(bar0 >= PCI_MMIO_BASE && bar0 < PCI_MMIO_END);
	assert_true(bar1 >= PCI_IO_BASE && bar1 < PCI_IO_END);
	/* sizing as firmware and kvm-unit-tests do it */
	cfg_wr(d, 0x10, 0xffffffff);
	assert_int_equal(cfg_rd(d, 0x10), 0xfffff000);
	cfg_wr(d, 0x10, bar0);
	cfg_wr(d, 0x14, 0xffffffff);
	assert_int_equal(cfg_rd(d, 0x14), 0xffffff01);
	cfg_wr(d, 0x14, bar1);
	bar1 &= ~0x3u; /* the port base */
	/* decoding off: nothing answers */
	assert_int_equal(rd(&vm.mmio, bar0, 1), 0xff);
	assert_int_equal(rd(&vm.pio, bar1, 1), 0xff);
	cfg_wr(d, 0x04, 0x3); /* I/O and memory space on */
	assert_int_equal(cfg_rd(d, 0x04) & 0x3, 0x3);
	/* no test selected: the header reads 0 */
	assert_int_equal(rd(&vm.mmio, bar0 + 4, 4), 0);
	/* memory test 0, no-eventfd: every write at its offset counts */
	wr(&vm.mmio, bar0, 1, 0);
	assert_int_equal(rd(&vm.mmio, bar0 + 1, 1), 1);          /* width */
	uint32_t off = (uint32_t)rd(&vm.mmio, bar0 + 4, 4);
	assert_int_equal(off, 2048);
	uint8_t data = (uint8_t)rd(&vm.mmio, bar0 + 8, 1);
	assert_int_equal(data, 0xfa);
	char name[32] = "";
	for (unsigned i = 0; i < sizeof(name) - 1; i++)
		name[i] = (char)rd(&vm.mmio, bar0 + 16 + i, 1);
	assert_string_equal(name, "mmio-no-eventfd");
	for (int i = 0; i < 16; i++)
		wr(&vm.mmio, bar0 + off, 1, data);
	wr(&vm.mmio, bar0 + off, 1, data ^ 1); /* no match: not counted */
	assert_int_equal(rd(&vm.mmio, bar0 + 12, 4), 16);
	/* I/O test 2 (datamatch): its eventfd would be in KVM; the fake VM has
	 * none, so the writes reach the device and count */
	wr(&vm.pio, bar1, 1, 2);
	assert_int_equal(rd(&vm.pio, bar1 + 4, 4), 128 + 5);
	assert_int_equal(rd(&vm.pio, bar1 + 12, 4), 0); /* selecting resets the count */
	wr(&vm.pio, bar1 + 133, 1, 0xfa);
	assert_int_equal(rd(&vm.pio, bar1 + 12, 4), 1);
	/* I/O test 1 (wildcard): any value counts */
	wr(&vm.pio, bar1, 1, 1);
	assert_int_equal(rd(&vm.pio, bar1 + 8, 1), 0xce);
	wr(&vm.pio, bar1 + 132, 1, 0x00);
	assert_int_equal(rd(&vm.pio, bar1 + 12, 4), 1);
	/* hostile: a test number out of range deselects; reads past the header are 0 */
	wr(&vm.mmio, bar0, 4, 0xffffffff);
	assert_int_equal(rd(&vm.mmio, bar0 + 4, 4), 0);
	wr(&vm.mmio, bar0, 1, 1);
	assert_int_equal(rd(&vm.mmio, bar0 + 40, 8), 0);
	assert_int_equal(rd(&vm.mmio, bar0 + 4095, 1), 0);
	/* move the I/O BAR out of the window: it stops decoding */
	cfg_wr(d, 0x14, 0x1001);
	assert_int_equal(rd(&vm.pio, 0x1000, 1), 0xff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scratch_logic),
		cmocka_unit_test_setup_teardown(test_pc_testdev_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pc_testdev_flush, setup, teardown),
		cmocka_unit_test(test_pm_timer_logic),
		cmocka_unit_test_setup_teardown(test_pm_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pci_testdev, setup, teardown),
		cmocka_unit_test(test_rtc_alarm_logic),
		cmocka_unit_test_setup_teardown(test_rtc_registers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
