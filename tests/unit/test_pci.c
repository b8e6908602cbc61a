/*
 * Unit tests for pci.c / pci_msix.c on a fake VM (no KVM): configuration
 * mechanism #1 and ECAM, BAR sizing, moving and decoding, write masks, the
 * capability chain, MSI-X masking / pending / delivery through the irqfd
 * eventfds, INTx, and hostile accesses.
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
#include "pci_priv.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"

#define TEST_BAR_SIZE 0x4000
#define TEST_TABLE 0x2000
#define TEST_PBA 0x3000
#define TEST_NVEC 4
#define CAP_VENDOR 0x09

/* ---- a test device: BAR 0 records what reaches its own ops ---- */

static struct {
	unsigned reads, writes;
	uint64_t last_off, last_val;
	unsigned last_size;
	unsigned hooks;
	unsigned hook_bar;
	uint64_t hook_addr;
	bool hook_on;
	unsigned cfg_hooks;
	unsigned cfg_hook_off;
	uint32_t cfg_hook_val;
} dev_log;

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	dev_log.reads++;
	dev_log.last_off = off;
	dev_log.last_size = size;
	return 0x1234;
}

static void dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	(void)opaque;
	dev_log.writes++;
	dev_log.last_off = off;
	dev_log.last_size = size;
	dev_log.last_val = val;
}

static const struct bus_ops dev_ops = { .read = dev_read, .write = dev_write };

static void bar_hook(void *opaque, unsigned bar, uint64_t addr, bool on)
{
	(void)opaque;
	dev_log.hooks++;
	dev_log.hook_bar = bar;
	dev_log.hook_addr = addr;
	dev_log.hook_on = on;
}

static void cfg_hook(void *opaque, unsigned off, unsigned size, uint32_t val)
{
	(void)opaque;
	(void)size;
	dev_log.cfg_hooks++;
	dev_log.cfg_hook_off = off;
	dev_log.cfg_hook_val = val;
}

static struct vm vm;
static struct pci_dev *dev;
static uint64_t bar_base;
static unsigned vendor_cap;

static void make_vm(bool no_irqfd)
{
	fake_vm_init(&vm);
	vm.cfg.no_irqfd = no_irqfd;
	memset(&dev_log, 0, sizeof(dev_log));
	assert_int_equal(pci_init(&vm), 0);
	assert_non_null(fake_dev_create(&vm, &sysreset_dev_ops));
	const struct pci_dev_info info = {
		.vendor_id = 0x1af4, .device_id = 0x1044, .subsys_vendor_id = 0x1af4, .subsys_id = 0x4,
		.revision = 1, .class_code = 0xff0000, .intx_pin = 1, .name = "test-dev",
	};
	dev = pci_dev_add(vm.pci, &info);
	assert_non_null(dev);
	bar_base = pci_bar_add(dev, 0, TEST_BAR_SIZE, &dev_ops, NULL);
	assert_true(bar_base >= PCI_MMIO_BASE && bar_base < PCI_MMIO_END);
	assert_int_equal(bar_base % TEST_BAR_SIZE, 0);
	uint8_t body[6] = { 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee }, wmask[6] = { 0, 0, 0xff, 0x0f, 0, 0 };
	vendor_cap = pci_cap_add(dev, CAP_VENDOR, 8, body, wmask);
	assert_int_not_equal(vendor_cap, 0);
	assert_int_equal(pci_msix_init(dev, TEST_NVEC, 0, TEST_TABLE, TEST_PBA), 0);
	pci_dev_set_bar_hook(dev, bar_hook, NULL);
	pci_dev_set_config_hook(dev, cfg_hook, NULL);
}

static int setup(void **state)
{
	(void)state;
	make_vm(false);
	return 0;
}

static int setup_no_irqfd(void **state)
{
	(void)state;
	make_vm(true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_destroy(&vm);
	fake_vm_free(&vm);
	irq_destroy(&vm);
	return 0;
}

/* ---- guest-side accessors: exactly the bus paths a vCPU exit takes ---- */

static uint64_t bus_rd(struct bus *b, uint64_t addr, unsigned size)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (!r || !r->opaque)
		return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	return r->ops->read(r->opaque, addr - r->base, size);
}

static void bus_wr(struct bus *b, uint64_t addr, unsigned size, uint64_t val)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (r && r->opaque)
		r->ops->write(r->opaque, addr - r->base, size, val);
}

static uint32_t cf8_addr(unsigned bus, unsigned devfn, unsigned reg)
{
	return 0x80000000u | bus << 16 | devfn << 8 | (reg & 0xfc);
}

static uint32_t cf8_read(unsigned bus, unsigned devfn, unsigned reg, unsigned size)
{
	bus_wr(&vm.pio, 0xcf8, 4, cf8_addr(bus, devfn, reg));
	return (uint32_t)bus_rd(&vm.pio, 0xcfc + (reg & 3), size);
}

static void cf8_write(unsigned devfn, unsigned reg, unsigned size, uint32_t val)
{
	bus_wr(&vm.pio, 0xcf8, 4, cf8_addr(0, devfn, reg));
	bus_wr(&vm.pio, 0xcfc + (reg & 3), size, val);
}

static uint32_t ecam_read(unsigned devfn, unsigned reg, unsigned size)
{
	return (uint32_t)bus_rd(&vm.mmio, PCI_ECAM_BASE + (devfn << 12) + reg, size);
}

static void ecam_write(unsigned devfn, unsigned reg, unsigned size, uint32_t val)
{
	bus_wr(&vm.mmio, PCI_ECAM_BASE + (devfn << 12) + reg, size, val);
}

static unsigned devfn(void)
{
	return pci_dev_devfn(dev);
}

/* ---- tests ---- */

static void test_host_bridge_ids(void **state)
{
	(void)state;
	assert_int_equal(cf8_read(0, 0, 0, 4), 0x29c08086);
	assert_int_equal(ecam_read(0, 0, 4), 0x29c08086);
	assert_int_equal(cf8_read(0, 0, 8, 4) >> 8, 0x060000);
	assert_int_equal(cf8_read(0, 0, 0x0e, 1), 0); /* header type 0, single function */
	assert_int_equal(cf8_read(0, 0, 0, 2), 0x8086);
	assert_int_equal(cf8_read(0, 0, 2, 2), 0x29c0);
	assert_int_equal(cf8_read(0, 0, 3, 1), 0x29);
	/* the test device sits in slot 1 */
	assert_int_equal(devfn(), 8);
	assert_int_equal(cf8_read(0, 8, 0, 4), 0x10441af4);
	assert_int_equal(ecam_read(8, 0x2c, 4), 0x00041af4);
	assert_int_equal(ecam_read(8, 8, 4), 0xff000001);
}

static void test_config_address(void **state)
{
	(void)state;
	bus_wr(&vm.pio, 0xcf8, 4, 0x80000000);
	assert_int_equal(bus_rd(&vm.pio, 0xcf8, 4), 0x80000000);
	bus_wr(&vm.pio, 0xcf8, 4, 0xffffffff); /* reserved bits 30:24 and 1:0 read 0 */
	assert_int_equal(bus_rd(&vm.pio, 0xcf8, 4), 0x80fffffc);
	/* non-dword accesses to 0xcf8 are not CONFIG_ADDRESS */
	bus_wr(&vm.pio, 0xcf8, 2, 0);
	bus_wr(&vm.pio, 0xcfb, 1, 0x01); /* Linux's type-1 probe pokes this */
	assert_int_equal(bus_rd(&vm.pio, 0xcf8, 4), 0x80fffffc);
	assert_int_equal(bus_rd(&vm.pio, 0xcf8, 2), 0xffff);
	/* enable bit clear: data port reads all-ones, writes go nowhere */
	bus_wr(&vm.pio, 0xcf8, 4, 0x00000000);
	assert_int_equal(bus_rd(&vm.pio, 0xcfc, 4), 0xffffffff);
	bus_wr(&vm.pio, 0xcf8, 4, 0x00000800 | 0x04);
	bus_wr(&vm.pio, 0xcfc, 2, PCI_CMD_MEM);
	assert_int_equal(cf8_read(0, 8, 4, 2) & PCI_CMD_MEM, 0);
}

static void test_data_port_sizes(void **state)
{
	(void)state;
	/* byte and word accesses at 0xcfc..0xcff pick bytes of the dword */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cf8_read(0, 8, i, 1), (0x10441af4u >> (8 * i)) & 0xff);
	assert_int_equal(cf8_read(0, 8, 2, 2), 0x1044);
	bus_wr(&vm.pio, 0xcf8, 4, cf8_addr(0, 8, 0));
	assert_int_equal(bus_rd(&vm.pio, 0xcfd, 2), 0x441a);
	/* a dword at 0xcfd would cross 0xd00: nobody claims it */
	assert_null(bus_find(&vm.pio, 0xcfd, 4));
	/* interrupt line: writable; pin: read-only; swizzle: slot 1 INTA -> pin 17 */
	assert_int_equal(cf8_read(0, 8, PCI_INT_PIN, 1), 1);
	assert_int_equal(cf8_read(0, 8, PCI_INT_LINE, 1), 17);
	cf8_write(8, PCI_INT_LINE, 1, 11);
	cf8_write(8, PCI_INT_PIN, 1, 3);
	assert_int_equal(cf8_read(0, 8, PCI_INT_LINE, 2), 0x010b);
}

static void test_absent_functions(void **state)
{
	(void)state;
	assert_int_equal(cf8_read(1, 0, 0, 4), 0xffffffff);      /* bus 1 */
	assert_int_equal(cf8_read(0, 2 << 3, 0, 4), 0xffffffff); /* empty slot */
	assert_int_equal(cf8_read(0, 1, 0, 4), 0xffffffff);      /* function 1 */
	assert_int_equal(ecam_read(31 << 3, 0, 4), 0xffffffff);
	assert_int_equal(ecam_read(9, 0, 2), 0xffff);
	/* writes there vanish without a trace */
	ecam_write(2 << 3, 4, 2, 0xffff);
	cf8_write(2 << 3, 4, 2, 0xffff);
	assert_int_equal(ecam_read(2 << 3, 4, 2), 0xffff);
}

static void test_ecam_matches_cf8(void **state)
{
	(void)state;
	for (unsigned df = 0; df <= 8; df += 8)
		for (unsigned reg = 0; reg < 256; reg += 4)
			assert_int_equal(ecam_read(df, reg, 4), cf8_read(0, df, reg, 4));
	/* a write through one is seen through the other */
	ecam_write(8, PCI_CACHE_LINE, 1, 0x10);
	assert_int_equal(cf8_read(0, 8, PCI_CACHE_LINE, 1), 0x10);
	/* extended space (>= 256) exists through ECAM only: zeros */
	assert_int_equal(ecam_read(8, 0x100, 4), 0);
	assert_int_equal(ecam_read(8, 0xffc, 4), 0);
	/* a quadword ECAM access splits into two dwords */
	assert_int_equal(bus_rd(&vm.mmio, PCI_ECAM_BASE + (8 << 12), 8),
			 (uint64_t)ecam_read(8, 4, 4) << 32 | ecam_read(8, 0, 4));
}

static void test_read_only_and_rw1c(void **state)
{
	(void)state;
	ecam_write(8, 0, 4, 0);
	assert_int_equal(ecam_read(8, 0, 4), 0x10441af4);
	ecam_write(8, 8, 4, 0);
	assert_int_equal(ecam_read(8, 8, 4), 0xff000001);
	ecam_write(0, 0, 4, 0xdeadbeef);
	assert_int_equal(ecam_read(0, 0, 4), 0x29c08086);
	/* status: capability list bit is read-only; error bits are RW1C */
	uint16_t st = (uint16_t)ecam_read(8, PCI_STATUS, 2);
	assert_true(st & PCI_STATUS_CAP_LIST);
	pci_dev_lock(dev);
	pci_dev_config(dev)[PCI_STATUS + 1] |= 0xa0; /* the device sets 0x2000 and 0x8000 */
	pci_dev_unlock(dev);
	ecam_write(8, PCI_STATUS, 2, 0x2000 | PCI_STATUS_CAP_LIST);
	assert_int_equal(ecam_read(8, PCI_STATUS, 2), 0x8000 | PCI_STATUS_CAP_LIST);
	ecam_write(8, PCI_STATUS, 2, 0xffff);
	assert_int_equal(ecam_read(8, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
	/* command: only the implemented bits stick */
	ecam_write(8, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(ecam_read(8, PCI_COMMAND, 2), PCI_CMD_WRITABLE);
	/* a write to the status half of the dword leaves the command alone */
	ecam_write(8, PCI_COMMAND, 4, 0);
	assert_int_equal(ecam_read(8, PCI_COMMAND, 2), 0);
	/* unused BARs and the expansion ROM read 0 and size to 0 */
	ecam_write(8, PCI_BAR0 + 8, 4, 0xffffffff);
	assert_int_equal(ecam_read(8, PCI_BAR0 + 8, 4), 0);
	ecam_write(8, 0x30, 4, 0xffffffff);
	assert_int_equal(ecam_read(8, 0x30, 4), 0);
}

static void test_capability_chain(void **state)
{
	(void)state;
	assert_true(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned ptr = cf8_read(0, 8, PCI_CAP_PTR, 1), n = 0;
	bool seen_vendor = false, seen_msix = false;
	while (ptr) {
		assert_true(ptr >= 0x40 && ptr < 256 && (ptr & 3) == 0);
		assert_true(++n < 48);
		unsigned id = cf8_read(0, 8, ptr, 1);
		if (id == CAP_VENDOR) {
			seen_vendor = true;
			assert_int_equal(ptr, vendor_cap);
			assert_int_equal(cf8_read(0, 8, ptr + 2, 1), 6);
		}
		if (id == PCI_CAP_ID_MSIX) {
			seen_msix = true;
			assert_int_equal(cf8_read(0, 8, ptr + 2, 2), TEST_NVEC - 1);
			assert_int_equal(cf8_read(0, 8, ptr + 4, 4), TEST_TABLE | 0);
			assert_int_equal(cf8_read(0, 8, ptr + 8, 4), TEST_PBA | 0);
		}
		ptr = cf8_read(0, 8, ptr + 1, 1);
	}
	assert_true(seen_vendor && seen_msix);
	assert_int_equal(n, 2);
	/* the host bridge has no list */
	assert_false(cf8_read(0, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(cf8_read(0, 0, PCI_CAP_PTR, 1), 0);
	/* capability body: wmask'd bytes change, the rest and the header do not;
	 * the device's config hook hears about it */
	cf8_write(8, vendor_cap, 4, 0xffffffff);
	assert_int_equal(cf8_read(0, 8, vendor_cap, 4),
			 (uint32_t)CAP_VENDOR | cf8_read(0, 8, vendor_cap + 1, 1) << 8 | 6u << 16 | 0xaau << 24);
	cf8_write(8, vendor_cap + 4, 2, 0xffff);
	assert_int_equal(cf8_read(0, 8, vendor_cap + 4, 2), 0xcfff);
	assert_int_equal(dev_log.cfg_hook_off, vendor_cap + 4);
	assert_int_equal(dev_log.cfg_hook_val, 0xffff);
	assert_true(dev_log.cfg_hooks >= 2);
	/* header writes are pci's own business */
	unsigned before = dev_log.cfg_hooks;
	cf8_write(8, PCI_COMMAND, 2, 0);
	assert_int_equal(dev_log.cfg_hooks, before);
}

static void test_bar_sizing(void **state)
{
	(void)state;
	uint32_t lo = ecam_read(8, PCI_BAR0, 4), hi = ecam_read(8, PCI_BAR0 + 4, 4);
	assert_int_equal(lo, (uint32_t)bar_base | PCI_BAR_MEM64);
	assert_int_equal(hi, 0);
	assert_int_equal(pci_dev_bar_addr(dev, 0), bar_base);
	ecam_write(8, PCI_BAR0, 4, 0xffffffff);
	ecam_write(8, PCI_BAR0 + 4, 4, 0xffffffff);
	assert_int_equal(ecam_read(8, PCI_BAR0, 4), (uint32_t)~(TEST_BAR_SIZE - 1) | PCI_BAR_MEM64);
	assert_int_equal(ecam_read(8, PCI_BAR0 + 4, 4), 0xffffffff);
	/* decoding is off, so sizing never told the device anything */
	assert_int_equal(dev_log.hooks, 0);
	ecam_write(8, PCI_BAR0, 4, lo);
	ecam_write(8, PCI_BAR0 + 4, 4, hi);
	assert_int_equal(pci_dev_bar_addr(dev, 0), bar_base);
	/* byte writes to a BAR merge through the mask too */
	ecam_write(8, PCI_BAR0, 1, 0xff);
	assert_int_equal(ecam_read(8, PCI_BAR0, 4), (uint32_t)bar_base | PCI_BAR_MEM64);
}

static void test_bar_decode_and_move(void **state)
{
	(void)state;
	/* memory decoding off after reset: the window reads all-ones */
	assert_int_equal(bus_rd(&vm.mmio, bar_base, 4), 0xffffffff);
	assert_int_equal(dev_log.reads, 0);
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM);
	assert_int_equal(dev_log.hooks, 1);
	assert_true(dev_log.hook_on);
	assert_int_equal(dev_log.hook_addr, bar_base);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + 0x10, 4), 0x1234);
	assert_int_equal(dev_log.last_off, 0x10);
	bus_wr(&vm.mmio, bar_base + 0x100, 2, 0xbeef);
	assert_int_equal(dev_log.last_off, 0x100);
	assert_int_equal(dev_log.last_val, 0xbeef);
	/* an access running past the BAR's end reaches nobody */
	unsigned w = dev_log.writes;
	bus_wr(&vm.mmio, bar_base + TEST_BAR_SIZE - 2, 4, 1);
	assert_int_equal(dev_log.writes, w);
	/* move it (64-bit: low dword then high dword) */
	uint64_t nb = PCI_MMIO_BASE + 0x1000000;
	ecam_write(8, PCI_BAR0, 4, (uint32_t)nb);
	assert_int_equal(dev_log.hook_addr, nb);
	assert_true(dev_log.hook_on);
	assert_int_equal(pci_dev_bar_addr(dev, 0), nb);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + 0x10, 4), 0xffffffff);
	assert_int_equal(bus_rd(&vm.mmio, nb + 0x20, 4), 0x1234);
	assert_int_equal(dev_log.last_off, 0x20);
	/* out of the window: stops decoding */
	ecam_write(8, PCI_BAR0 + 4, 4, 1);
	assert_false(dev_log.hook_on);
	assert_int_equal(bus_rd(&vm.mmio, nb + 0x20, 4), 0xffffffff);
	ecam_write(8, PCI_BAR0 + 4, 4, 0);
	assert_true(dev_log.hook_on);
	/* decoding off: hook says so, window goes dark */
	unsigned hooks = dev_log.hooks;
	ecam_write(8, PCI_COMMAND, 2, 0);
	assert_int_equal(dev_log.hooks, hooks + 1);
	assert_false(dev_log.hook_on);
	assert_int_equal(bus_rd(&vm.mmio, nb + 0x20, 4), 0xffffffff);
	/* rewriting the same state calls nobody */
	ecam_write(8, PCI_COMMAND, 2, 0);
	assert_int_equal(dev_log.hooks, hooks + 1);
}

/* ---- MSI-X ---- */

static void msix_entry(unsigned i, uint32_t addr, uint32_t data, bool masked)
{
	uint64_t e = bar_base + TEST_TABLE + 16 * i;
	bus_wr(&vm.mmio, e + 0, 4, addr);
	bus_wr(&vm.mmio, e + 4, 4, 0);
	bus_wr(&vm.mmio, e + 8, 4, data);
	bus_wr(&vm.mmio, e + 12, 4, masked);
}

static unsigned msix_cap(void)
{
	return dev->msix->cap;
}

static void msix_ctrl(uint16_t v)
{
	ecam_write(8, msix_cap() + 2, 2, v);
}

static uint64_t efd_count(unsigned vec)
{
	uint64_t n = 0;
	if (read(dev->msix->v[vec].efd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return 0;
	return n;
}

static uint32_t pba(void)
{
	return (uint32_t)bus_rd(&vm.mmio, bar_base + TEST_PBA, 4);
}

static void test_msix_table(void **state)
{
	(void)state;
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	/* reset: every vector masked, message zero; table is not the device's */
	unsigned r = dev_log.reads;
	for (unsigned i = 0; i < TEST_NVEC; i++) {
		assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 16 * i + 12, 4), 1);
		assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 16 * i, 4), 0);
	}
	assert_int_equal(dev_log.reads, r);
	msix_entry(2, 0xfee03000, 0x4055, true);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 32 + 8, 4), 0x4055);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 32, 8), 0xfee03000);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 32 + 9, 1), 0x40);
	/* qword write of address + upper */
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 16, 8, 0x00000000fee01000ull);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 16, 4), 0xfee01000);
	/* reserved vector-control bits do not stick */
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 12, 4, 0xfffffffe);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 12, 4), 0);
	/* hostile: byte/word writes ignored, PBA writes ignored, misaligned qword */
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 32 + 8, 1, 0x99);
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 32 + 8, 2, 0x9999);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 32 + 8, 4), 0x4055);
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 36, 8, ~0ull);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 32 + 8, 4), 0x4055);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 36, 8), ~0ull);
	bus_wr(&vm.mmio, bar_base + TEST_PBA, 4, 0xf);
	assert_int_equal(pba(), 0);
	/* straddling the table's start or the PBA's end: nobody's (all-ones, dropped) */
	unsigned w = dev_log.writes;
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE - 4, 8), ~0ull);
	bus_wr(&vm.mmio, bar_base + TEST_TABLE - 2, 4, 0);
	bus_wr(&vm.mmio, bar_base + TEST_PBA + 4, 8, 0);
	assert_int_equal(dev_log.writes, w);
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE, 4), 0);
	/* past the table's last entry: the device's own registers again */
	assert_int_equal(bus_rd(&vm.mmio, bar_base + TEST_TABLE + 16 * TEST_NVEC, 4), 0x1234);
	assert_int_equal(dev_log.last_off, TEST_TABLE + 16 * TEST_NVEC);
	/* bad indices */
	assert_false(pci_msix_notify(dev, TEST_NVEC));
	assert_false(pci_msix_notify(dev, 1000));
}

static void test_msix_mask_pending_unmask(void **state)
{
	(void)state;
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	msix_entry(0, 0xfee01000, 0x41, true);
	/* MSI-X still disabled: pending, nothing sent */
	assert_false(pci_msix_enabled(dev));
	assert_false(pci_msix_notify(dev, 0));
	assert_int_equal(pba(), 1);
	msix_ctrl(PCI_MSIX_CTRL_ENABLE);
	assert_true(pci_msix_enabled(dev));
	assert_false(pci_msix_notify(dev, 0)); /* vector still masked */
	assert_int_equal(efd_count(0), 0);
	/* unmask: the pending message goes out, once */
	msix_entry(0, 0xfee01000, 0x41, false);
	assert_int_equal(pba(), 0);
	assert_int_equal(efd_count(0), 1);
	assert_int_equal(dev->msix->v[0].pending_sent, 1);
	/* unmasked: straight through the irqfd */
	assert_true(pci_msix_notify(dev, 0));
	assert_true(pci_msix_notify(dev, 0));
	assert_int_equal(efd_count(0), 2);
	/* mask again: pending once however many notifies */
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 12, 4, 1);
	assert_false(pci_msix_notify(dev, 0));
	assert_false(pci_msix_notify(dev, 0));
	assert_int_equal(pba(), 1);
	assert_int_equal(efd_count(0), 0);
	bus_wr(&vm.mmio, bar_base + TEST_TABLE + 12, 4, 0);
	assert_int_equal(efd_count(0), 1);
	assert_int_equal(dev->msix->v[0].sent, 4);
	assert_int_equal(dev->msix->v[0].pending_sent, 2);
	/* other vectors are untouched */
	assert_int_equal(efd_count(1), 0);
}

static void test_msix_function_mask(void **state)
{
	(void)state;
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	msix_entry(0, 0xfee00000, 0x30, false);
	msix_entry(3, 0xfee02000, 0x33, false);
	msix_ctrl(PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	assert_int_equal(ecam_read(8, msix_cap() + 2, 2),
			 PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK | (TEST_NVEC - 1));
	assert_false(pci_msix_notify(dev, 0));
	assert_false(pci_msix_notify(dev, 3));
	assert_int_equal(pba(), 0x9);
	/* the table size field is read-only */
	ecam_write(8, msix_cap() + 2, 2, 0xffff);
	assert_int_equal(ecam_read(8, msix_cap() + 2, 2) & 0x7ff, TEST_NVEC - 1);
	msix_ctrl(PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(pba(), 0);
	assert_int_equal(efd_count(0), 1);
	assert_int_equal(efd_count(3), 1);
	/* MSI-X enabled: INTx stays quiet even when the device raises it */
	pci_intx_set(dev, true);
	assert_true(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
	pci_intx_set(dev, false);
	assert_false(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
}

static void test_irt_snapshot(void **state)
{
	(void)state;
	struct pci_irt_entry e[8];
	assert_int_equal(pci_irt_snapshot(&vm, e, 8), 0); /* nothing programmed yet */
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	msix_entry(1, 0xfee05000, 0x62, false);
	msix_ctrl(PCI_MSIX_CTRL_ENABLE);
	assert_true(pci_msix_notify(dev, 1));
	assert_int_equal(pci_irt_snapshot(&vm, e, 8), 1);
	assert_string_equal(e[0].device, "test-dev");
	assert_int_equal(e[0].devfn, 8);
	assert_int_equal(e[0].vector, 1);
	assert_true(e[0].gsi >= IRQ_MSI_GSI_BASE);
	assert_int_equal(e[0].dest_apic_id, 5);
	assert_int_equal(e[0].guest_vector, 0x62);
	assert_false(e[0].masked);
	assert_true(e[0].irqfd);
	assert_int_equal(e[0].sent, 1);
	/* GSIs are distinct per vector */
	for (unsigned i = 1; i < TEST_NVEC; i++)
		assert_int_not_equal(dev->msix->v[i].gsi, dev->msix->v[0].gsi);
	assert_int_equal(pci_irt_snapshot(&vm, e, 0), 0);
}

static void test_no_irqfd(void **state)
{
	(void)state;
	for (unsigned i = 0; i < TEST_NVEC; i++)
		assert_int_equal(dev->msix->v[i].efd, -1);
	ecam_write(8, PCI_COMMAND, 2, PCI_CMD_MEM);
	msix_entry(0, 0xfee00000, 0x40, false);
	msix_ctrl(PCI_MSIX_CTRL_ENABLE);
	assert_true(pci_msix_notify(dev, 0)); /* KVM_SIGNAL_MSI, skipped without KVM */
	struct pci_irt_entry e[2];
	assert_int_equal(pci_irt_snapshot(&vm, e, 2), 1);
	assert_false(e[0].irqfd);
	assert_int_equal(e[0].sent, 1);
}

static void test_sysreset_through_pci(void **state)
{
	(void)state;
	/* PCI owns 0xcf8-0xcff; a byte at 0xcf9 is the reset control register */
	const struct bus_range *r = bus_find(&vm.pio, 0xcf9, 1);
	assert_non_null(r);
	assert_int_equal(r->base, 0xcf8);
	assert_int_equal(r->len, 8);
	bus_wr(&vm.pio, 0xcf8, 4, 0x80000000);
	assert_int_equal(bus_rd(&vm.pio, 0xcf9, 1), 0);
	bus_wr(&vm.pio, 0xcf9, 1, 0x02);
	assert_int_equal(stop_calls, 0);
	assert_int_equal(bus_rd(&vm.pio, 0xcf9, 1), 0x02);
	bus_wr(&vm.pio, 0xcf9, 1, 0x06);
	assert_int_equal(stop_calls, 1);
	assert_int_equal(stop_reason, VM_STOP_SHUTDOWN);
	/* CONFIG_ADDRESS was not disturbed by the byte access */
	assert_int_equal(bus_rd(&vm.pio, 0xcf8, 4), 0x80000000);
	/* a word at 0xcf9 is neither */
	bus_wr(&vm.pio, 0xcf9, 2, 0x0606);
	assert_int_equal(stop_calls, 1);
}

static void test_hostile_config(void **state)
{
	(void)state;
	/* direct API: misaligned, oversized, out of range, absent devices */
	assert_int_equal(pci_config_read(&vm, 8, 3, 2), 0xffff);
	assert_int_equal(pci_config_read(&vm, 8, 2, 4), 0xffffffff);
	assert_int_equal(pci_config_read(&vm, 8, 4096, 1), 0xff);
	assert_int_equal(pci_config_read(&vm, 8, 0, 3), 0xffffff);
	assert_int_equal(pci_config_read(&vm, 256, 0, 4), 0xffffffff);
	pci_config_write(&vm, 8, 3, 2, 0);
	pci_config_write(&vm, 8, 4095, 4, 0);
	pci_config_write(&vm, 999, 0, 4, 0);
	/* every byte of every function, all-ones written: nothing escapes the
	 * masks, ids survive, and the device stays consistent */
	for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4) {
		ecam_write(8, off, 4, 0xffffffff);
		ecam_write(0, off, 4, 0xffffffff);
	}
	assert_int_equal(ecam_read(8, 0, 4), 0x10441af4);
	assert_int_equal(ecam_read(0, 0, 4), 0x29c08086);
	assert_int_equal(ecam_read(8, PCI_CAP_PTR, 1), vendor_cap);
	/* MSI-X got enabled and function-masked along the way; notify still safe */
	assert_true(pci_msix_enabled(dev));
	assert_false(pci_msix_notify(dev, 0));
	/* the window after a wild BAR: not decoding, reads all-ones */
	assert_int_equal(bus_rd(&vm.mmio, bar_base, 4), 0xffffffff);
	assert_int_equal(bus_rd(&vm.mmio, PCI_MMIO_END - 4, 4), 0xffffffff);
}

/* Unmask IOAPIC pin `pin` as an edge-triggered vector (fake VM, split mode). */
static void ioapic_unmask(unsigned pin)
{
	bus_wr(&vm.mmio, IRQ_IOAPIC_ADDR, 4, 0x10 + 2 * pin);
	bus_wr(&vm.mmio, IRQ_IOAPIC_ADDR + 0x10, 4, 0x30 + pin);
}

static void test_intx(void **state)
{
	(void)state;
	/* end to end: slot 1 INTA reaches IOAPIC pin 17, the line register's value */
	assert_non_null(fake_dev_create(&vm, &ioapic_dev_ops));
	irq_attach(&vm, NULL, dev_find(&vm.devs, "ioapic", 0)); /* pci.c's INTx goes through irq.c */
	ioapic_unmask(17);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 17), 0);
	pci_intx_set(dev, true);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 17), 1);
	pci_intx_set(dev, true); /* no edge: no second delivery */
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 17), 1);
	pci_intx_set(dev, false);
	cf8_write(8, PCI_COMMAND, 2, PCI_CMD_INTX_DISABLE);
	pci_intx_set(dev, true);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 17), 1); /* disabled */
	cf8_write(8, PCI_COMMAND, 2, 0);                /* re-enabled while raised: an edge */
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 17), 2);
	pci_intx_set(dev, false);
	pci_intx_set(dev, true);
	assert_true(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
	/* status bit 3 is read-only for the guest */
	cf8_write(8, PCI_STATUS, 2, PCI_STATUS_INTX);
	assert_true(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
	pci_intx_set(dev, false);
	assert_false(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
	/* INTx disable: the status bit still follows the device */
	cf8_write(8, PCI_COMMAND, 2, PCI_CMD_INTX_DISABLE);
	assert_true(atomic_load(&dev->intx_disabled));
	pci_intx_set(dev, true);
	assert_true(cf8_read(0, 8, PCI_STATUS, 2) & PCI_STATUS_INTX);
	cf8_write(8, PCI_COMMAND, 2, 0);
	assert_false(atomic_load(&dev->intx_disabled));
	pci_intx_set(dev, false);
	/* a device without a pin */
	const struct pci_dev_info info = { .vendor_id = 0x1234, .device_id = 0x5678, .name = "nopin" };
	struct pci_dev *d2 = pci_dev_add(vm.pci, &info);
	assert_non_null(d2);
	assert_int_equal(pci_dev_devfn(d2), 16);
	assert_int_equal(cf8_read(0, 16, PCI_INT_LINE, 2), 0x00ff);
	pci_intx_set(d2, true);
	assert_false(cf8_read(0, 16, PCI_STATUS, 2) & PCI_STATUS_INTX);
}

static void test_api_limits(void **state)
{
	(void)state;
	/* BAR argument checks */
	assert_int_equal(pci_bar_add(dev, 0, TEST_BAR_SIZE, &dev_ops, NULL), 0); /* in use */
	assert_int_equal(pci_bar_add(dev, 1, TEST_BAR_SIZE, &dev_ops, NULL), 0); /* upper half */
	assert_int_equal(pci_bar_add(dev, 2, 0x3000, &dev_ops, NULL), 0);        /* not 2^n */
	assert_int_equal(pci_bar_add(dev, 2, 0x800, &dev_ops, NULL), 0);         /* < 4 KiB */
	assert_int_equal(pci_bar_add(dev, 5, 0x1000, &dev_ops, NULL), 0);        /* no bar 6 */
	uint64_t b2 = pci_bar_add(dev, 2, 0x100000, &dev_ops, NULL);
	assert_int_equal(b2 % 0x100000, 0);
	assert_true(b2 >= bar_base + TEST_BAR_SIZE);
	assert_int_equal(pci_bar_add(dev, 4, 1ull << 30, &dev_ops, NULL), 0);   /* window full */
	/* MSI-X argument checks */
	assert_int_equal(pci_msix_init(dev, 1, 0, 0, 0x1000), -EEXIST);
	const struct pci_dev_info info = { .vendor_id = 0x1234, .device_id = 1, .name = "x" };
	struct pci_dev *d2 = pci_dev_add(vm.pci, &info);
	assert_int_equal(pci_msix_init(d2, 1, 0, 0, 0x1000), -EINVAL); /* no BAR 0 */
	assert_int_not_equal(pci_bar_add(d2, 0, 0x1000, &dev_ops, NULL), 0);
	assert_int_equal(pci_msix_init(d2, 0, 0, 0, 0x800), -EINVAL);
	assert_int_equal(pci_msix_init(d2, 65, 0, 0, 0x800), -EINVAL);
	assert_int_equal(pci_msix_init(d2, 8, 0, 0, 0x40), -EINVAL);   /* overlap */
	assert_int_equal(pci_msix_init(d2, 8, 0, 0xfc0, 0), -EINVAL);  /* past the BAR */
	assert_int_equal(pci_msix_init(d2, 8, 0, 4, 0x800), -EINVAL);  /* misaligned */
	assert_int_equal(pci_msix_init(d2, 8, 0, 0, 0x800), 0);
	/* slots run out at 31 */
	unsigned n = 0;
	while (pci_dev_add(vm.pci, &info))
		n++;
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(n, PCI_MAX_SLOTS - 3);
}

int main(void)
{
	util_mark_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bridge_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_port_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_functions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecam_matches_cf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_and_rw1c, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capability_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_decode_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_mask_pending_unmask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_function_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irt_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_irqfd, setup_no_irqfd, teardown),
		cmocka_unit_test_setup_teardown(test_sysreset_through_pci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_limits, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
