/*
 * Snapshot save/load of the legacy devices (src/devices/): two fake VMs with
 * every legacy device, state driven into A through its ports, then each of
 * A's registry entries saved, loaded into B's and saved again (byte for
 * byte the same), and B checked to go on where A was. Also: loads of short,
 * wrongly versioned and corrupt payloads fail with a reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/devices.h"
#include "snapshot_priv.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"
#include "bus_access.h"
#include "fake_devices.h"

/* ---- the devices' handles: irq.c's split-mode wiring and its KVM routes ---- */

static int route_calls;
static uint64_t route_addr[IRQ_IOAPIC_PINS];
static uint32_t route_data[IRQ_IOAPIC_PINS];

/* The IOAPIC's routing handle: what it asks KVM for, per pin. */
static int route_rec(void *ctx, unsigned pin, uint64_t addr, uint32_t data)
{
	(void)ctx;
	route_calls++;
	if (pin < IRQ_IOAPIC_PINS) {
		route_addr[pin] = addr;
		route_data[pin] = data;
	}
	return 0;
}

/* ---- harness ---- */

static struct vm vma, vmb;
static const char fw_file[] = "0123456789abcdef";

/* Every legacy device (fake_devices.h), no event loop. */
static void make_vm(struct vm *vm)
{
	fake_vm_init(vm);
	fake_irq_hook = fake_irq_split; /* ISA lines reach the PIC and the IOAPIC */
	vm->cfg.mem_size = MIB(64);
	vm->cfg.ncpus = 2;
	vm->env.msi = (struct dev_msi){ .ctx = vm, .route = route_rec };
	if (fake_legacy_create(vm))
		fail_msg("%s", fake_err);
	assert_int_equal(fw_cfg_add_file(dev_find(&vm->devs, "fw_cfg", 0), "etc/test", fw_file, sizeof(fw_file) - 1), 0);
}

static int setup(void **state)
{
	(void)state;
	make_vm(&vma);
	make_vm(&vmb);
	route_calls = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	devices_snap_clock_pin(false);
	fake_vm_free(&vma);
	fake_vm_free(&vmb);
	return 0;
}

/* The legacy devices with guest-visible state, in the registry's order;
 * debug-exit, which has none, is the one without a section. */
static const char *const legacy_names[] = {
	"uart", "i8042", "sysreset", "boot-timer", "fw_cfg", "acpi-pm",
	"rtc", "ioapic", "pic", "pit", "pc-testdev",
};

static const struct dev_inst *find_dev(struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->devs.nr; i++)
		if (!strcmp(vm->devs.v[i].ops->name, name))
			return &vm->devs.v[i];
	fail_msg("%s is not in the registry", name);
	return NULL;
}

/* IOAPIC registers through the MMIO window. */
static uint32_t ioapic_reg(struct vm *vm, uint32_t reg)
{
	wr(&vm->mmio, IRQ_IOAPIC_ADDR, 4, reg);
	return (uint32_t)rd(&vm->mmio, IRQ_IOAPIC_ADDR + 0x10, 4);
}

static void ioapic_rte(struct vm *vm, unsigned pin, uint32_t hi, uint32_t lo)
{
	wr(&vm->mmio, IRQ_IOAPIC_ADDR, 4, 0x10 + 2 * pin + 1);
	wr(&vm->mmio, IRQ_IOAPIC_ADDR + 0x10, 4, hi);
	wr(&vm->mmio, IRQ_IOAPIC_ADDR, 4, 0x10 + 2 * pin);
	wr(&vm->mmio, IRQ_IOAPIC_ADDR + 0x10, 4, lo);
}

static uint16_t pit_latched(struct vm *vm, unsigned ch)
{
	wr(&vm->pio, 0x43, 1, ch << 6); /* counter latch */
	uint16_t lo = (uint16_t)rd(&vm->pio, 0x40 + ch, 1);
	return (uint16_t)(lo | rd(&vm->pio, 0x40 + ch, 1) << 8);
}

static uint8_t cmos_read(struct vm *vm, uint8_t idx)
{
	wr(&vm->pio, 0x70, 1, idx);
	return (uint8_t)rd(&vm->pio, 0x71, 1);
}

/* Non-trivial state in every device of A, through the guest's ports. */
static void drive_a(void)
{
	struct vm *vm = &vma;
	struct bus *pio = &vm->pio;
	/* The interrupt controllers first: ICW1 would clear what is latched. */
	pic_firmware_init(dev_find(&vm->devs, "pic", 0));
	wr(pio, 0x21, 1, 0xe0);			 /* master: IRQ 0-4 unmasked */
	wr(pio, 0xa1, 1, 0xfb);			 /* slave: IRQ 10 unmasked */
	ioapic_rte(vm, 4, 0x01000000, 0x34);		 /* COM1: edge, vector 0x34 */
	ioapic_rte(vm, 10, 0x02000000, 0x8000 | 0x3a); /* level, vector 0x3a */
	ioapic_rte(vm, 12, 0, 0x10000 | 0x8000 | 0x3c); /* masked level */
	wr(&vm->mmio, IRQ_IOAPIC_ADDR, 4, 0x00);
	wr(&vm->mmio, IRQ_IOAPIC_ADDR + 0x10, 4, 0x05000000); /* ID 5 */
	wr(&vm->mmio, IRQ_IOAPIC_ADDR, 4, 0x15);	 /* leave IOREGSEL at pin 2's high dword */
	/* pc-testdev's line 10: the level pin fires and awaits its EOI */
	wr(pio, PC_TESTDEV_IRQ_PORT + 10, 1, 1);
	wr(pio, PC_TESTDEV_SCRATCH_PORT, 4, 0xdeadbeef);
	wr(&vm->mmio, PC_TESTDEV_IOMEM + 0x100, 8, 0x1122334455667788ull);

	/* UART: 8N1, divisor 3, FIFO, RX interrupt through OUT2, two bytes in */
	wr(pio, UART_COM1_BASE + 3, 1, 0x83);
	wr(pio, UART_COM1_BASE + 0, 1, 0x03);
	wr(pio, UART_COM1_BASE + 1, 1, 0x00);
	wr(pio, UART_COM1_BASE + 3, 1, 0x03);
	wr(pio, UART_COM1_BASE + 2, 1, 0x07);
	wr(pio, UART_COM1_BASE + 1, 1, 0x01);
	wr(pio, UART_COM1_BASE + 4, 1, 0x0b);
	wr(pio, UART_COM1_BASE + 7, 1, 0x5a);
	uart_receive(dev_find(&vm->devs, "uart", 0), (const uint8_t *)"hi", 2);

	/* i8042: a self test answer (IRQ 1) and a command waiting for data */
	wr(pio, 0x64, 1, 0xaa);
	wr(pio, 0x64, 1, 0x60);

	wr(pio, 0xcf9, 1, 0x02); /* SYS_RST kind, no reset */
	wr(pio, BOOT_TIMER_PORT, 4, 7);
	wr(&vm->mmio, BOOT_TIMER_MMIO, 4, 9);

	/* fw_cfg: 3 bytes into the file, half a DMA address written */
	wr(pio, FW_CFG_PORT_SEL, 2, 0x20);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rd(pio, FW_CFG_PORT_DATA, 1), (uint8_t)fw_file[i]);
	wr(pio, FW_CFG_PORT_DMA, 4, 0x78563412);

	wr(pio, ACPI_PM_BASE + 2, 2, 0x0101); /* TMR_EN, PWRBTN_EN */
	wr(pio, 0x70, 1, 0x40);
	wr(pio, 0x71, 1, 0xab);
	wr(pio, 0x70, 1, 0x0e);
	wr(pio, 0x71, 1, 0x11);
	wr(pio, 0x70, 1, 0x41); /* index left at 0x41 */

	/* PIT: channel 0 rate generator, channel 1 with a latched count,
	 * channel 2 square wave gated on through port 0x61 */
	wr(pio, 0x43, 1, 0x34);
	wr(pio, 0x40, 1, 0x00);
	wr(pio, 0x40, 1, 0x40);
	wr(pio, 0x43, 1, 0x54);
	wr(pio, 0x41, 1, 0x80);
	wr(pio, 0x43, 1, 0x40);
	wr(pio, 0x43, 1, 0xb6);
	wr(pio, 0x42, 1, 0x45);
	wr(pio, 0x42, 1, 0x23);
	wr(pio, 0x61, 1, 0x01);
}

static void roundtrip_all(void)
{
	const struct dev_registry *ra = &vma.devs, *rb = &vmb.devs;
	assert_int_equal(ra->nr, rb->nr);
	devices_snap_clock_pin(true);
	for (int i = 0; i < ra->nr; i++) {
		char err[256] = "";
		assert_ptr_equal(ra->v[i].ops, rb->v[i].ops);
		if (!ra->v[i].ops->snap.name)
			continue; /* nothing to save */
		int r = snapshot_roundtrip(&ra->v[i].ops->snap, ra->v[i].dev, rb->v[i].dev, err, sizeof(err));
		if (r != 0)
			fail_msg("%s: %s", ra->v[i].ops->name, err);
	}
	devices_snap_clock_pin(false);
}

/* ---- tests ---- */

static void test_registry(void **state)
{
	(void)state;
	const struct dev_registry *r = &vma.devs;
	assert_null(r->unsupported);
	/* Exactly the legacy devices, in creation order, one each: the
	 * registry's table up to the PCI functions (which these options do not
	 * ask for). A device added twice, or left out, shows here. */
	assert_int_equal(r->nr, (int)ARRAY_SIZE(legacy_names) + 1);
	/* The table starts with the IOMMU (not asked for: none here). */
	assert_ptr_equal(dev_types[0], &iommu_dev_ops);
	size_t saved = 0;
	for (int i = 0; i < r->nr; i++) {
		const struct dev_ops *ops = r->v[i].ops;
		assert_ptr_equal(ops, dev_types[i + 1]);
		assert_int_equal(r->v[i].index, 0);
		assert_non_null(r->v[i].dev);
		assert_non_null(ops->desc);
		assert_non_null(ops->destroy);
		if (!ops->snap.name) {
			assert_string_equal(ops->name, "debug-exit");
			continue;
		}
		assert_string_equal(ops->snap.name, ops->name); /* the section is the device's name */
		assert_string_equal(ops->name, legacy_names[saved++]);
		assert_int_equal(ops->snap.version, 1);
		assert_non_null(ops->snap.save);
		assert_non_null(ops->snap.load);
		assert_ptr_equal(dev_find(r, ops->name, 0), r->v[i].dev);
	}
	assert_int_equal(saved, ARRAY_SIZE(legacy_names));
	assert_null(dev_find(r, "uart", 1));
	assert_null(dev_find(r, "no-such-device", 0));
}

/* Fresh devices save and load too (the state a restore right after boot has). */
static void test_roundtrip_reset_state(void **state)
{
	(void)state;
	roundtrip_all();
}

static void test_roundtrip_and_behaviour(void **state)
{
	(void)state;
	drive_a();
	/* What A shows just before the snapshot. */
	uint32_t rte_a[2 * IRQ_IOAPIC_PINS];
	for (unsigned i = 0; i < 2 * IRQ_IOAPIC_PINS; i++)
		rte_a[i] = ioapic_reg(&vma, 0x10 + i);
	wr(&vma.mmio, IRQ_IOAPIC_ADDR, 4, 0x15);
	assert_true(rte_a[20] & 0x4000); /* pin 10's Remote IRR */
	assert_true(pic_output(dev_find(&vma.devs, "pic", 0)));
	wr(&vma.pio, 0x70, 1, 0x41);
	route_calls = 0;

	roundtrip_all();

	uint16_t pit0_a = pit_latched(&vma, 0), pit0_b = pit_latched(&vmb, 0);
	struct bus *pio = &vmb.pio;

	/* the IOAPIC: IOREGSEL, the entries, the route of the pin awaiting EOI */
	assert_int_equal(rd(&vmb.mmio, IRQ_IOAPIC_ADDR, 4), 0x15);
	for (unsigned i = 0; i < 2 * IRQ_IOAPIC_PINS; i++)
		assert_int_equal(ioapic_reg(&vmb, 0x10 + i), rte_a[i]);
	assert_int_equal(ioapic_reg(&vmb, 0x00), 0x05000000);
	assert_true(route_calls >= 2); /* pins 4 and 10 routed in B */
	assert_int_equal(route_data[10] & 0xff, 0x3a);
	assert_int_equal(route_data[4] & 0xff, 0x34);
	uint64_t before = ioapic_delivered(dev_find(&vmb.devs, "ioapic", 0), 10);
	ioapic_eoi(dev_find(&vmb.devs, "ioapic", 0), 0x3a); /* the line is still high: delivered again */
	assert_int_equal(ioapic_delivered(dev_find(&vmb.devs, "ioapic", 0), 10), before + 1);

	/* the PIC: IRR as in A, INT still up, IRQ 1 (i8042) first */
	wr(&vma.pio, 0x20, 1, 0x0a);
	wr(pio, 0x20, 1, 0x0a);
	assert_int_equal(rd(pio, 0x20, 1), rd(&vma.pio, 0x20, 1));
	assert_int_equal(rd(pio, 0x21, 1), 0xe0);
	assert_true(pic_output(dev_find(&vmb.devs, "pic", 0)));
	assert_int_equal(pic_intack(dev_find(&vmb.devs, "pic", 0)), 0x09);

	/* the PIT: channel 0 goes on from A's count (modulo 0x4000; the two
	 * reads are microseconds apart, a tick is 0.84 us) */
	uint16_t d = (uint16_t)((pit0_a - pit0_b) & 0x3fff);
	if (d > 0x2000)
		d = (uint16_t)(0x4000 - d);
	assert_true(d < 2000);
	assert_int_equal(rd(pio, 0x41, 1), 0x80); /* channel 1's latch */
	assert_int_equal(rd(pio, 0x61, 1) & 0x0f, 0x01);

	/* the UART: both bytes, then nothing */
	assert_int_equal(rd(pio, UART_COM1_BASE + 7, 1), 0x5a);
	assert_int_equal(rd(pio, UART_COM1_BASE + 2, 1), 0xc4); /* FIFO, RX data */
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 'h');
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 'i');
	assert_int_equal(rd(pio, UART_COM1_BASE + 5, 1) & 0x01, 0);
	wr(pio, UART_COM1_BASE + 3, 1, 0x83);
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 0x03);
	wr(pio, UART_COM1_BASE + 3, 1, 0x03);

	/* i8042: the self test's 0x55, then the pending 0x60 takes its byte */
	assert_int_equal(rd(pio, 0x64, 1) & 0x01, 0x01);
	assert_int_equal(rd(pio, 0x60, 1), 0x55);
	wr(pio, 0x60, 1, 0x47);
	wr(pio, 0x64, 1, 0x20);
	assert_int_equal(rd(pio, 0x60, 1), 0x47);

	assert_int_equal(sysreset_io_read(dev_find(&vmb.devs, "sysreset", 0)), 0x02);
	struct boot_timer_mark m[BOOT_TIMER_MAX_MARKS];
	assert_int_equal(boot_timer_marks(dev_find(&vmb.devs, "boot-timer", 0), m, BOOT_TIMER_MAX_MARKS), 2);
	assert_int_equal(m[0].value, 7);
	assert_false(m[0].mmio);
	assert_int_equal(m[1].value, 9);
	assert_true(m[1].mmio);
	assert_true(m[0].ns <= m[1].ns);

	/* fw_cfg: the selected file goes on at byte 3 */
	assert_int_equal(rd(pio, FW_CFG_PORT_DATA, 1), (uint8_t)fw_file[3]);
	assert_int_equal(rd(pio, FW_CFG_PORT_DATA, 1), (uint8_t)fw_file[4]);

	/* ACPI PM: enables kept, the timer within 10 ms of A's */
	assert_int_equal(rd(pio, ACPI_PM_BASE + 2, 2), 0x0101);
	uint32_t ta = (uint32_t)rd(&vma.pio, ACPI_PM_BASE + 8, 4);
	uint32_t tb = (uint32_t)rd(pio, ACPI_PM_BASE + 8, 4);
	uint32_t dt = (tb - ta) & ACPI_PM_TIMER_MASK;
	if (dt > ACPI_PM_TIMER_MASK / 2)
		dt = (ACPI_PM_TIMER_MASK + 1 - dt) & ACPI_PM_TIMER_MASK;
	assert_true(dt < ACPI_PM_TIMER_HZ / 100);

	/* RTC: the index, CMOS RAM and the clock's minutes as A's */
	assert_int_equal(rd(pio, 0x71, 1), 0); /* index 0x41, never written */
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(&vmb, (uint8_t)i), cmos_read(&vma, (uint8_t)i));
	assert_int_equal(cmos_read(&vmb, 0x40), 0xab);
	assert_int_equal(cmos_read(&vmb, 0x0b), cmos_read(&vma, 0x0b));

	assert_int_equal(rd(pio, PC_TESTDEV_SCRATCH_PORT, 4), 0xdeadbeef);
	assert_int_equal(rd(&vmb.mmio, PC_TESTDEV_IOMEM + 0x100, 8), 0x1122334455667788ull);
}

/* Save `name` from A into buf (clock as pinned by the caller). */
static void save_a(const char *name, struct snap_buf *buf)
{
	char err[256] = "";
	const struct dev_inst *a = find_dev(&vma, name);
	if (a->ops->snap.save(a->dev, buf, err, sizeof(err)) != 0 || buf->failed)
		fail_msg("%s: save: %s", name, err);
}

static void load_b(const char *name, const struct snap_buf *buf)
{
	char err[256] = "";
	const struct dev_inst *b = find_dev(&vmb, name);
	struct snap_cur c = { .p = buf->data, .left = buf->len };
	if (b->ops->snap.load(b->dev, &c, b->ops->snap.version, err, sizeof(err)) != 0)
		fail_msg("%s: load: %s", name, err);
	assert_false(c.bad);
	assert_int_equal(c.left, 0);
}

/* Time spent saved is not seen by the guest: a load in a "later process"
 * (here: 30 ms after the save) makes the PIT and the PM timer go on from
 * the values they had at the save, so B runs that much behind A. */
static void test_time_gap_not_counted(void **state)
{
	(void)state;
	drive_a();
	wr(&vma.pio, 0x43, 1, 0x34); /* channel 0: mode 2, count 65536 (55 ms) */
	wr(&vma.pio, 0x40, 1, 0x00);
	wr(&vma.pio, 0x40, 1, 0x00);
	struct snap_buf pit = { 0 }, pm = { 0 };
	devices_snap_clock_pin(true);
	uint64_t t0 = util_now_ns();
	save_a("pit", &pit);
	save_a("acpi-pm", &pm);
	usleep(30000);
	devices_snap_clock_pin(true);
	uint64_t gap = util_now_ns() - t0;
	load_b("pit", &pit);
	load_b("acpi-pm", &pm);
	devices_snap_clock_pin(false);
	snap_buf_free(&pit);
	snap_buf_free(&pm);

	uint16_t ca = pit_latched(&vma, 0), cb = pit_latched(&vmb, 0);
	uint32_t ta = (uint32_t)rd(&vma.pio, ACPI_PM_BASE + 8, 4);
	uint32_t tb = (uint32_t)rd(&vmb.pio, ACPI_PM_BASE + 8, 4);
	/* the PIT counts down: B's count is higher by the gap's ticks */
	int64_t pit_gap = (int64_t)(gap * PIT_HZ / 1000000000ull);
	int64_t pit_seen = (uint16_t)(cb - ca);
	assert_true(pit_seen > pit_gap - 2000 && pit_seen < pit_gap + 2000);
	/* the PM timer counts up: B's is lower by the gap's ticks */
	int64_t pm_gap = (int64_t)(gap * ACPI_PM_TIMER_HZ / 1000000000ull);
	int64_t pm_seen = (ta - tb) & ACPI_PM_TIMER_MASK;
	assert_true(pm_seen > pm_gap - 7000 && pm_seen < pm_gap + 7000);
}

/* Load a modified copy of A's payload for `name` into B: the return value,
 * and the reason in err. */
static int load_modified(const char *name, size_t cut, long off, uint8_t byte, uint32_t version,
			 char *err, size_t n)
{
	const struct dev_inst *a = find_dev(&vma, name), *b = find_dev(&vmb, name);
	struct snap_buf buf = { 0 };
	assert_int_equal(a->ops->snap.save(a->dev, &buf, err, n), 0);
	assert_false(buf.failed);
	assert_true(buf.len >= cut);
	if (off >= 0) {
		assert_true((size_t)off < buf.len);
		buf.data[off] = byte;
	}
	struct snap_cur c = { .p = buf.data, .left = buf.len - cut };
	err[0] = 0;
	int r = b->ops->snap.load(b->dev, &c, version, err, n);
	snap_buf_free(&buf);
	return r;
}

static void test_truncated_and_version(void **state)
{
	(void)state;
	drive_a();
	char err[256];
	for (size_t i = 0; i < ARRAY_SIZE(legacy_names); i++) {
		assert_int_equal(load_modified(legacy_names[i], 1, -1, 0, 1, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "truncated"));
		assert_int_equal(strncmp(err, legacy_names[i], strlen(legacy_names[i])), 0);
		assert_int_equal(load_modified(legacy_names[i], 0, -1, 0, 2, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "version 2"));
	}
	/* nothing of it reached B: its UART has no byte, its PIT no count */
	assert_int_equal(rd(&vmb.pio, UART_COM1_BASE + 5, 1) & 0x01, 0);
	assert_int_equal(pit_latched(&vmb, 0), 0);
}

static void test_bad_values(void **state)
{
	(void)state;
	drive_a();
	char err[256];
	/* each payload's layout is the device's: these offsets are the first
	 * fields of struct X_snap */
	assert_int_equal(load_modified("pit", 0, 32, 9, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "pit: channel 1 mode 9 out of range");
	assert_int_equal(load_modified("uart", 0, 0, 0xff, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "uart: IER has reserved bits set");
	assert_int_equal(load_modified("uart", 0, 11, 0, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "IRQ level"));
	assert_int_equal(load_modified("rtc", 0, 0, 0x80, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "rtc: index out of range");
	assert_int_equal(load_modified("ioapic", 0, 1, 0x01, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "IOREGSEL"));
	assert_int_equal(load_modified("fw_cfg", 0, 11, 0x7f, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "past the end"));
	assert_int_equal(load_modified("i8042", 0, 2, 0x99, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "pending command"));
	assert_int_equal(load_modified("pic", 0, 6, 7, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "pic: ICW step out of range");
	assert_int_equal(load_modified("acpi-pm", 0, 0, 0xff, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "PM1_STS"));
	assert_int_equal(load_modified("boot-timer", 0, 20, 2, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mark 0"));
}

/* Padding is part of the layout: a byte there that a save never writes is
 * refused, not dropped (fuzz_snapshot: a boot-timer payload with padding
 * set loaded, and saved back different). */
static void test_padding_refused(void **state)
{
	(void)state;
	drive_a();
	char err[256];
	assert_int_equal(load_modified("boot-timer", 0, 4, 1, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "boot-timer: malformed padding");
	/* mark 0's padding (after age, value and the mmio flag) and mark 7's */
	assert_int_equal(load_modified("boot-timer", 0, 8 + 13, 0x80, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "boot-timer: mark 0 is malformed");
	assert_int_equal(load_modified("boot-timer", 0, 8 + 16 * 7 + 15, 1, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "boot-timer: mark 7 is malformed");
}

/*
 * Every device's reset, through the registry: after state driven into A,
 * reset → save gives what a fresh device (B's) saves, at one pinned clock.
 * A type with state and no reset fails here by name.
 */
static void test_reset_equals_fresh(void **state)
{
	(void)state;
	drive_a();
	const struct dev_registry *ra = &vma.devs, *rb = &vmb.devs;
	devices_snap_clock_pin(true);
	int checked = 0;
	for (int i = 0; i < ra->nr; i++) {
		const struct dev_ops *ops = ra->v[i].ops;
		if (!ops->snap.name)
			continue;
		if (!ops->reset)
			fail_msg("%s has guest-visible state and no reset", ops->name);
		ops->reset(ra->v[i].dev);
		struct snap_buf sa = { 0 }, sb = { 0 };
		char err[256] = "";
		assert_int_equal(ops->snap.save(ra->v[i].dev, &sa, err, sizeof(err)), 0);
		assert_int_equal(ops->snap.save(rb->v[i].dev, &sb, err, sizeof(err)), 0);
		if (sa.len != sb.len || memcmp(sa.data, sb.data, sa.len))
			fail_msg("%s: reset state differs from a fresh device's", ops->name);
		snap_buf_free(&sa);
		snap_buf_free(&sb);
		checked++;
	}
	devices_snap_clock_pin(false);
	assert_int_equal(checked, (int)ARRAY_SIZE(legacy_names));
	/* and A goes on as a fresh machine: COM1 empty, the PIC quiet */
	assert_int_equal(rd(&vma.pio, UART_COM1_BASE + 5, 1) & 0x01, 0);
	assert_false(pic_output(dev_find(&vma.devs, "pic", 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_and_behaviour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_gap_not_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_padding_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_equals_fresh, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
