/*
 * Unit tests for vfio.c / vfio_pci.c without VFIO: a memfd stands in for the
 * device fd (its config region and BARs at made-up offsets), on a fake VM
 * (no KVM: memory slots are only counted). Covers --device vfio's argument
 * parsing, configuration space forwarding, the BARs hvmm virtualizes
 * (sizing, 64-bit, prefetchable, I/O, moving, decoding → mappings), the
 * hidden ROM and interrupt pin, MSI-X and MSI control interception, trapped
 * BAR accesses and hostile offsets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "evloop.h"
#include "irq.h"
#include "pci.h"
#include "util.h"
#include "vfio.h"
#include "vm.h"
#include "fake_vm.h"
#include "bus_access.h"

/* The fake device's layout in the memfd. */
#define CFG_OFF 0x0
#define BAR0_OFF 0x10000 /* 16 KiB, 32-bit memory, mmap */
#define BAR0_SIZE 0x4000
#define BAR1_OFF 0x20000 /* 8 KiB, 32-bit memory, MSI-X table at 0, PBA at 0x800 */
#define BAR1_SIZE 0x2000
#define BAR2_OFF 0x30000 /* 4 KiB, 64-bit prefetchable (BAR 2 and 3) */
#define BAR2_SIZE 0x1000
#define BAR4_OFF 0x40000 /* I/O, 28 bytes: the guest sees 32 */
#define BAR4_SIZE 0x1c
#define FILE_SIZE 0x50000
#define MSIX_CAP 0x40
#define MSI_CAP 0x50
#define NVEC 4

static struct vm vm;
static int memfd;
static unsigned devfn;

static void put(uint64_t off, const void *p, size_t n)
{
	assert_int_equal(pwrite(memfd, p, n, (off_t)off), (ssize_t)n);
}

static void put32(uint64_t off, uint32_t v)
{
	put(off, &v, 4);
}

static uint32_t get32(uint64_t off)
{
	uint32_t v = 0;
	assert_int_equal(pread(memfd, &v, 4, (off_t)off), 4);
	return v;
}

static void region(struct vfio_dev *v, unsigned i, uint64_t off, uint64_t size, bool mmap_ok)
{
	v->region[i] = (struct vfio_region){
		.offset = off, .size = size,
		.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			 (mmap_ok ? VFIO_REGION_INFO_FLAG_MMAP : 0),
	};
}

/* setup_sparse: BAR 0 may only be mapped in two areas (a sparse-mmap
 * capability, plus one area past its end that must be ignored), and BAR 1
 * says its MSI-X table may be mapped (MSIX_MAPPABLE). */
static bool sparse;
/* setup_intx: the kernel irqchip and a device with INTx (VFIO reports one) */
static bool intx;

/* A passed-through function's MSI GSIs, as vm.c wires them (irq.c). */
static int env_gsi_alloc(void *ctx)
{
	return irq_msi_alloc(ctx);
}

static int env_gsi_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_msi_route(ctx, gsi, addr, data);
}

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.irqchip = intx ? IRQCHIP_KERNEL : IRQCHIP_SPLIT;
	assert_int_equal(evloop_init(&vm), 0); /* masked MSI-X vectors are read there */
	assert_int_equal(pci_init(&vm), 0);
	memfd = memfd_create("fake-vfio", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, FILE_SIZE), 0);
	/* configuration space: edu's ids, a capability list MSI-X -> MSI */
	put32(CFG_OFF + 0x00, 0x11e81234);
	put32(CFG_OFF + 0x04, 0x00100000);        /* status: capability list */
	put32(CFG_OFF + 0x08, 0x00ff0010);        /* class, revision */
	put32(CFG_OFF + 0x10, 0x00000000);        /* BAR 0: 32-bit memory */
	put32(CFG_OFF + 0x14, 0x00000000);        /* BAR 1: 32-bit memory */
	put32(CFG_OFF + 0x18, 0x0000000c);        /* BAR 2: 64-bit, prefetchable */
	put32(CFG_OFF + 0x20, 0x00000001);        /* BAR 4: I/O */
	put32(CFG_OFF + 0x2c, 0x11001af4);
	put32(CFG_OFF + 0x30, 0xfffe0001);        /* a ROM the guest must not see */
	put32(CFG_OFF + 0x34, MSIX_CAP);
	put32(CFG_OFF + 0x3c, 0x0000010b);        /* INTA, line 11 */
	put32(CFG_OFF + MSIX_CAP, (uint32_t)(NVEC - 1) << 16 | MSI_CAP << 8 | 0x11);
	put32(CFG_OFF + MSIX_CAP + 4, 0x0 | 1);   /* table: BAR 1 offset 0 */
	put32(CFG_OFF + MSIX_CAP + 8, 0x800 | 1); /* PBA: BAR 1 offset 0x800 */
	put32(CFG_OFF + MSI_CAP, 0x0080u << 16 | 0x05); /* MSI, 64-bit, last */
	put32(CFG_OFF + 0x60, 0xcafef00d);        /* something of the device's */
	put32(BAR1_OFF + 0x900, 0x600dbeef);      /* in the trapped page, not the table */
	put32(BAR4_OFF + 0x4, 0x44332211);
	struct vfio_dev v;
	memset(&v, 0, sizeof(v));
	snprintf(v.bdf, sizeof(v.bdf), "0000:00:10.0");
	v.fd = memfd;
	v.group = v.container = -1;
	region(&v, VFIO_PCI_CONFIG_REGION_INDEX, CFG_OFF, 4096, false);
	region(&v, 0, BAR0_OFF, BAR0_SIZE, true);
	region(&v, 1, BAR1_OFF, BAR1_SIZE, true);
	region(&v, 2, BAR2_OFF, BAR2_SIZE, true);
	region(&v, 4, BAR4_OFF, BAR4_SIZE, false);
	v.irq_count[VFIO_PCI_INTX_IRQ_INDEX] = 1;
	if (sparse) {
		v.region[0].sparse = true;
		v.region[0].nr_areas = 3;
		v.region[0].areas[0].offset = 0;
		v.region[0].areas[0].size = 0x1000;
		v.region[0].areas[1].offset = 0x3000;
		v.region[0].areas[1].size = 0x1000;
		v.region[0].areas[2].offset = 0x3800;
		v.region[0].areas[2].size = 0x1000;
		v.region[1].msix_mappable = true;
	}
	char err[256] = "";
	fake_vm_env(&vm); /* the PCI host, the loop */
	vm.env.msi = (struct dev_msi){ .ctx = &vm, .gsi_alloc = env_gsi_alloc, .gsi_route = env_gsi_route };
	struct vfio_pci *p = NULL;
	int r = vfio_pci_create(&vm.env, 0, &v, &p, err, sizeof(err));
	if (r)
		fprintf(stderr, "vfio_pci_create: %s\n", err);
	assert_int_equal(r, 0);
	assert_int_equal(dev_registry_add(&vm.devs, &vfio_dev_ops, p), 0); /* as the registry's create */
	assert_string_equal(vm.devs.unsupported, "--device vfio");
	devfn = 1 << 3; /* the first free slot */
	return 0;
}

static int setup_sparse(void **state)
{
	sparse = true;
	int r = setup(state);
	sparse = false;
	return r;
}

static int setup_intx(void **state)
{
	intx = true;
	int r = setup(state);
	intx = false;
	return r;
}

static int teardown(void **state)
{
	(void)state;
	dev_destroy_all(&vm.devs); /* vfio's destroy closes memfd */
	evloop_destroy(&vm);
	pci_destroy(&vm);
	fake_vm_free(&vm);
	irq_destroy(&vm);
	return 0;
}

static uint32_t cfg_rd(unsigned off, unsigned size)
{
	return pci_config_read(&vm, devfn, off, size);
}

static void cfg_wr(unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(&vm, devfn, off, size, v);
}

static struct vfio_pci_stats stats(void)
{
	struct vfio_pci_stats st;
	const char *bdf;
	assert_true(vfio_pci_stats(&vm.devs, 0, &st, &bdf));
	assert_string_equal(bdf, "0000:00:10.0");
	return st;
}

/* ---- --device vfio,... ---- */

static void test_parse(void **state)
{
	(void)state;
	char bdf[VFIO_BDF_LEN], err[160];
	assert_int_equal(vfio_parse("host=0000:00:05.0", bdf, err, sizeof(err)), 0);
	assert_string_equal(bdf, "0000:00:05.0");
	assert_int_equal(vfio_parse("host=0A:1F.7", bdf, err, sizeof(err)), 0);
	assert_string_equal(bdf, "0000:0a:1f.7");
	assert_int_equal(vfio_parse("host=ffff:ff:1f.7", bdf, err, sizeof(err)), 0);
	const char *bad[] = { "", "host=", "host=0000:00:20.0", "host=0000:00:05.8", "host=zz",
			      "foo=1", "host=0000:00:05.0,x", "host=0000-00:05.0", "host=00:5.0",
			      "host=+000:00:05.0", "host=0000:00:05.0 " };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(vfio_parse(bad[i], bdf, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 10);
		assert_null(strchr(err, '\n'));
	}
}

/* ---- configuration space ---- */

static void test_config_forwarded(void **state)
{
	(void)state;
	assert_int_equal(cfg_rd(0, 4), 0x11e81234);
	assert_int_equal(cfg_rd(2, 2), 0x11e8);
	assert_int_equal(cfg_rd(0x60, 4), 0xcafef00d);
	put32(CFG_OFF + 0x60, 0x01020304); /* the device's register changed: seen live */
	assert_int_equal(cfg_rd(0x61, 1), 0x03);
	cfg_wr(0x64, 4, 0xa5a5a5a5);       /* and writes reach it */
	assert_int_equal(get32(CFG_OFF + 0x64), 0xa5a5a5a5);
	cfg_wr(0x66, 2, 0x1234);
	assert_int_equal(get32(CFG_OFF + 0x64), 0x1234a5a5);
	/* the capability list is the device's */
	assert_int_equal(cfg_rd(0x34, 1), MSIX_CAP);
	assert_int_equal(cfg_rd(MSIX_CAP, 1), 0x11);
	assert_int_equal(cfg_rd(MSIX_CAP + 1, 1), MSI_CAP);
	assert_int_equal(cfg_rd(MSI_CAP, 1), 0x05);
	/* extended space: forwarded, offsets past the region read all-ones */
	put32(CFG_OFF + 0x100, 0x00010001);
	assert_int_equal(cfg_rd(0x100, 4), 0x00010001);
}

static void test_rom_and_pin_hidden(void **state)
{
	(void)state;
	assert_int_equal(cfg_rd(0x30, 4), 0);
	cfg_wr(0x30, 4, 0xffffffff);
	assert_int_equal(cfg_rd(0x30, 4), 0);
	assert_int_equal(get32(CFG_OFF + 0x30), 0xfffe0001); /* never reached the device */
	assert_int_equal(cfg_rd(0x3d, 1), 0);                 /* no INTx */
}

static void test_command_forwarded(void **state)
{
	(void)state;
	/* decoding and mastering start off, on the device too */
	assert_int_equal(get32(CFG_OFF + 4) & 0xffff, 0);
	cfg_wr(0x04, 2, 0x0006);
	assert_int_equal(get32(CFG_OFF + 4) & 0xffff, 0x0006);
	assert_int_equal(cfg_rd(0x04, 2) & 0x7, 0x6);
	/* the status half is the device's */
	assert_int_equal(cfg_rd(0x06, 2), 0x0010);
}

static void test_bar_sizing(void **state)
{
	(void)state;
	uint32_t b0 = cfg_rd(0x10, 4);
	assert_int_equal(b0 & 0xf, 0);
	assert_true(b0 >= PCI_MMIO_BASE && b0 < PCI_MMIO_END);
	cfg_wr(0x10, 4, 0xffffffff);
	assert_int_equal(cfg_rd(0x10, 4), (uint32_t)~(BAR0_SIZE - 1));
	assert_int_equal(get32(CFG_OFF + 0x10), 0); /* hvmm's, not the device's */
	/* 64-bit prefetchable: flags kept, upper half sizes too */
	assert_int_equal(cfg_rd(0x18, 4) & 0xf, 0xc);
	cfg_wr(0x18, 4, 0xffffffff);
	cfg_wr(0x1c, 4, 0xffffffff);
	assert_int_equal(cfg_rd(0x18, 4), (uint32_t)~(BAR2_SIZE - 1) | 0xc);
	assert_int_equal(cfg_rd(0x1c, 4), 0xffffffff);
	/* I/O: 28 bytes show as 32 */
	assert_int_equal(cfg_rd(0x20, 4) & 0x3, 1);
	cfg_wr(0x20, 4, 0xffffffff);
	assert_int_equal(cfg_rd(0x20, 4), (uint32_t)~(32u - 1) | 1);
	/* BAR 5 is unused: reads 0, stays 0 */
	cfg_wr(0x24, 4, 0xffffffff);
	assert_int_equal(cfg_rd(0x24, 4), 0);
}

static void test_bar_mappings(void **state)
{
	(void)state;
	struct vfio_pci_stats st = stats();
	/* BAR 0 whole, BAR 1 but its MSI-X page, BAR 2 whole; I/O never */
	assert_int_equal(st.mapped_bytes, BAR0_SIZE + (BAR1_SIZE - 0x1000) + BAR2_SIZE);
	assert_int_equal(st.maps, 0); /* decoding off */
	cfg_wr(0x04, 2, 0x0002);
	st = stats();
	assert_int_equal(st.maps, 3);
	/* moved while decoding: BAR 0's slot goes and comes back */
	uint32_t b0 = cfg_rd(0x10, 4);
	cfg_wr(0x10, 4, b0 + 0x100000);
	st = stats();
	assert_int_equal(st.unmaps, 1);
	assert_int_equal(st.maps, 4);
	/* sizing moves it out of the window: gone */
	cfg_wr(0x10, 4, 0xffffffff);
	st = stats();
	assert_int_equal(st.unmaps, 2);
	cfg_wr(0x10, 4, b0);
	/* decoding off: every mapping goes */
	cfg_wr(0x04, 2, 0);
	st = stats();
	assert_int_equal(st.maps, 5);
	assert_int_equal(st.unmaps, 5);
}

/* Only the sparse areas are mapped, each its own slot; the MSI-X page stays
 * trapped even though VFIO would let hvmm map it. */
static void test_sparse_mappings(void **state)
{
	(void)state;
	struct vfio_pci_stats st = stats();
	assert_int_equal(st.mapped_bytes, 0x2000 + (BAR1_SIZE - 0x1000) + BAR2_SIZE);
	cfg_wr(0x04, 2, 0x0002);
	st = stats();
	assert_int_equal(st.maps, 4);
	cfg_wr(0x04, 2, 0);
	st = stats();
	assert_int_equal(st.unmaps, 4);
}

static void test_trapped_bar_accesses(void **state)
{
	(void)state;
	cfg_wr(0x04, 2, 0x0003);
	uint64_t b1 = cfg_rd(0x14, 4) & ~0xfu, io = cfg_rd(0x20, 4) & ~0x3u;
	/* the MSI-X page's other bytes reach the device */
	assert_int_equal(rd(&vm.mmio, b1 + 0x900, 4), 0x600dbeef);
	wr(&vm.mmio, b1 + 0x904, 4, 0x12345678);
	assert_int_equal(get32(BAR1_OFF + 0x904), 0x12345678);
	/* the table is hvmm's: a write never reaches the device */
	wr(&vm.mmio, b1 + 0x0, 4, 0xfee00000);
	assert_int_equal(get32(BAR1_OFF + 0x0), 0);
	assert_int_equal(rd(&vm.mmio, b1 + 0x0, 4), 0xfee00000);
	assert_int_equal(rd(&vm.mmio, b1 + 0xc, 4), 1); /* masked after reset */
	/* I/O BAR: forwarded; past the region's 28 bytes all-ones */
	assert_int_equal(rd(&vm.pio, io + 4, 4), 0x44332211);
	wr(&vm.pio, io + 8, 2, 0xbeef);
	assert_int_equal(get32(BAR4_OFF + 8) & 0xffff, 0xbeef);
	assert_int_equal(rd(&vm.pio, io + 0x1c, 4), 0xffffffff);
	wr(&vm.pio, io + 0x1c, 4, 0); /* ignored, no crash */
	struct vfio_pci_stats st = stats();
	assert_true(st.bar_reads >= 3 && st.bar_writes >= 2);
}

static void test_msix_control(void **state)
{
	(void)state;
	assert_int_equal(cfg_rd(MSIX_CAP + 2, 2), NVEC - 1);
	cfg_wr(MSIX_CAP + 2, 2, 0x8000);
	assert_int_equal(cfg_rd(MSIX_CAP + 2, 2), 0x8000 | (NVEC - 1));
	struct pci_dev *d = pci_dev_at(&vm, devfn);
	assert_true(pci_msix_enabled(d));
	/* the device's own control word is left to VFIO */
	assert_int_equal(get32(CFG_OFF + MSIX_CAP) >> 16, NVEC - 1);
	for (unsigned i = 0; i < NVEC; i++)
		assert_true(pci_msix_vector_fd(d, i) >= 0);
	assert_int_equal(pci_msix_vector_fd(d, NVEC), -1);
	/* the table size is read-only, the table location is the device's */
	cfg_wr(MSIX_CAP + 2, 2, 0x07ff);
	assert_int_equal(cfg_rd(MSIX_CAP + 2, 2), NVEC - 1);
	assert_int_equal(cfg_rd(MSIX_CAP + 8, 4), 0x801);
	cfg_wr(MSIX_CAP + 8, 4, 0);
	assert_int_equal(cfg_rd(MSIX_CAP + 8, 4), 0x801);
	assert_false(pci_msix_enabled(d));
}

/* A masked vector's interrupt waits in the PBA: VFIO's trigger for it is
 * then hvmm's own eventfd, swapped back to the irqfd on unmask. */
static void test_msix_masking(void **state)
{
	(void)state;
	struct pci_dev *d = pci_dev_at(&vm, devfn);
	const struct vfio_dev *v = vfio_pci_dev(&vm.devs, 0);
	assert_non_null(v);
	int irqfd0 = pci_msix_vector_fd(d, 0);
	cfg_wr(0x04, 2, 0x0002);
	cfg_wr(MSIX_CAP + 2, 2, 0x8000);
	/* every vector masked after reset: all triggers are hvmm's */
	assert_int_equal(v->last_irqs.index, VFIO_PCI_MSIX_IRQ_INDEX);
	assert_int_equal(v->last_irqs.start, 0);
	assert_int_equal(v->last_irqs.count, NVEC);
	int maskfd0 = v->last_irqs.fd0;
	assert_true(maskfd0 >= 0 && maskfd0 != irqfd0);
	uint64_t b1 = cfg_rd(0x14, 4) & ~0xfu;
	wr(&vm.mmio, b1 + 0x0, 4, 0xfee00000);
	wr(&vm.mmio, b1 + 0x8, 4, 0x45);
	wr(&vm.mmio, b1 + 0xc, 4, 0); /* unmask vector 0: its irqfd goes to the device */
	assert_int_equal(v->last_irqs.start, 0);
	assert_int_equal(v->last_irqs.count, 1);
	assert_int_equal(v->last_irqs.fd0, irqfd0);
	wr(&vm.mmio, b1 + 0xc, 4, 1); /* masked again */
	assert_int_equal(v->last_irqs.fd0, maskfd0);
	/* the device fires while masked: pending, not delivered */
	assert_int_equal(evloop_start(&vm), 0);
	uint64_t one = 1, n = 0;
	assert_int_equal(write(maskfd0, &one, sizeof(one)), (ssize_t)sizeof(one));
	for (int i = 0; i < 2000 && !(rd(&vm.mmio, b1 + 0x800, 4) & 1); i++)
		usleep(1000);
	assert_int_equal(rd(&vm.mmio, b1 + 0x800, 4) & 1, 1);
	assert_int_equal(read(irqfd0, &n, sizeof(n)), -1); /* nothing on the irqfd yet */
	/* unmask: the pending message goes out through the irqfd */
	wr(&vm.mmio, b1 + 0xc, 4, 0);
	assert_int_equal(read(irqfd0, &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_int_equal(n, 1);
	assert_int_equal(rd(&vm.mmio, b1 + 0x800, 4) & 1, 0);
	assert_int_equal(v->last_irqs.fd0, irqfd0);
	/* MSI-X off: every trigger taken back */
	uint64_t calls = v->last_irqs.calls;
	cfg_wr(MSIX_CAP + 2, 2, 0);
	assert_true(v->last_irqs.calls > calls);
	assert_int_equal(v->last_irqs.count, 0);
}

/*
 * The registry's reset: what the guest programmed in hvmm's part of the
 * function (command, a moved BAR, MSI-X on with a vector unmasked, MSI's
 * message) goes back to how it was created, decoding and bus mastering
 * go off in the device too, every trigger is taken back from VFIO, and
 * the device gets VFIO_DEVICE_RESET when it has one (said once when not).
 */
static void test_reset(void **state)
{
	(void)state;
	struct pci_dev *d = pci_dev_at(&vm, devfn);
	struct vfio_dev *v = (struct vfio_dev *)vfio_pci_dev(&vm.devs, 0);
	const struct dev_inst *inst = &vm.devs.v[vm.devs.nr - 1];
	assert_ptr_equal(inst->ops, &vfio_dev_ops);
	assert_non_null(inst->ops->reset);
	uint32_t bar0 = cfg_rd(0x10, 4), bar1 = cfg_rd(0x14, 4);
	cfg_wr(0x10, 4, bar0 + 0x100000);
	cfg_wr(0x04, 2, 0x0006);
	cfg_wr(MSIX_CAP + 2, 2, 0x8000);
	uint64_t b1 = bar1 & ~0xfu;
	wr(&vm.mmio, b1 + 0x0, 4, 0xfee00000);
	wr(&vm.mmio, b1 + 0x8, 4, 0x45);
	wr(&vm.mmio, b1 + 0xc, 4, 0);
	cfg_wr(MSI_CAP + 4, 4, 0xfee00000);
	assert_true(pci_msix_enabled(d));
	assert_int_equal(get32(CFG_OFF + 4) & 0xffff, 0x0006);

	v->can_reset = true;
	inst->ops->reset(inst->dev);
	assert_int_equal(v->resets, 1);
	assert_int_equal(cfg_rd(0x04, 2) & 0x7, 0);
	assert_int_equal(get32(CFG_OFF + 4) & 0xffff, 0); /* the device's too */
	assert_int_equal(cfg_rd(0x10, 4), bar0);
	assert_false(pci_msix_enabled(d));
	assert_int_equal(cfg_rd(MSIX_CAP + 2, 2), NVEC - 1);
	assert_int_equal(cfg_rd(MSI_CAP + 4, 4), 0);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_MSIX_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 0);
	/* the device's own configuration registers are VFIO's reset's */
	assert_int_equal(cfg_rd(0x60, 4), 0xcafef00d);
	/* and it works as before: MSI-X on hands the triggers over again,
	 * every vector masked (the table as created) */
	cfg_wr(0x04, 2, 0x0002);
	assert_int_equal(rd(&vm.mmio, b1 + 0xc, 4), 1);
	assert_int_equal(rd(&vm.mmio, b1 + 0x8, 4), 0);
	cfg_wr(MSIX_CAP + 2, 2, 0x8000);
	assert_int_equal(v->last_irqs.count, NVEC);
	/* no VFIO_DEVICE_RESET on this device: nothing asked, no failure */
	v->can_reset = false;
	inst->ops->reset(inst->dev);
	assert_int_equal(v->resets, 1);
	assert_false(pci_msix_enabled(d));
}

static void test_msi_control(void **state)
{
	(void)state;
	/* 64-bit, one vector, off */
	assert_int_equal(cfg_rd(MSI_CAP + 2, 2), 0x0080);
	cfg_wr(MSI_CAP + 4, 4, 0xfee00000);
	cfg_wr(MSI_CAP + 8, 4, 0);
	cfg_wr(MSI_CAP + 12, 2, 0x41);
	cfg_wr(MSI_CAP + 2, 2, 0x0071); /* enable; more messages asked for: one given */
	assert_int_equal(cfg_rd(MSI_CAP + 2, 2), 0x0081);
	assert_int_equal(cfg_rd(MSI_CAP + 4, 4), 0xfee00000);
	assert_int_equal(cfg_rd(MSI_CAP + 12, 2), 0x41);
	/* none of it reached the device */
	assert_int_equal(get32(CFG_OFF + MSI_CAP + 4), 0);
	assert_int_equal(get32(CFG_OFF + MSI_CAP) >> 16, 0x0080);
	/* its eventfd went to VFIO's MSI index; off again takes it back */
	const struct vfio_dev *v = vfio_pci_dev(&vm.devs, 0);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_MSI_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 1);
	assert_true(v->last_irqs.fd0 >= 0);
	cfg_wr(MSI_CAP + 2, 2, 0x0000);
	assert_int_equal(v->last_irqs.count, 0);
}

/* INTx with the kernel irqchip: the device's pin shows, wired by the swizzle,
 * its trigger handed to VFIO; MSI on takes it back (VFIO has one kind at a
 * time), MSI off gives it again. */
static void test_intx_kernel_irqchip(void **state)
{
	(void)state;
	const struct vfio_dev *v = vfio_pci_dev(&vm.devs, 0);
	assert_int_equal(cfg_rd(0x3d, 1), 1);                      /* INTA, the device's */
	assert_int_equal(cfg_rd(0x3c, 1), 16 + (devfn >> 3) % 4);  /* pci.h's swizzle */
	assert_int_equal(v->last_irqs.index, VFIO_PCI_INTX_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 1);
	assert_true(v->last_irqs.fd0 >= 0);
	cfg_wr(MSI_CAP + 2, 2, 0x0001);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_MSI_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 1);
	cfg_wr(MSI_CAP + 2, 2, 0x0000);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_INTX_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 1);
	cfg_wr(MSIX_CAP + 2, 2, 0x8000);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_MSIX_IRQ_INDEX);
	cfg_wr(MSIX_CAP + 2, 2, 0);
	assert_int_equal(v->last_irqs.index, VFIO_PCI_INTX_IRQ_INDEX);
	assert_int_equal(v->last_irqs.count, 1);
}

/* With the split irqchip there is no resampling: no pin, INTx never on. */
static void test_no_intx_split_irqchip(void **state)
{
	(void)state;
	const struct vfio_dev *v = vfio_pci_dev(&vm.devs, 0);
	assert_int_equal(cfg_rd(0x3d, 1), 0);
	assert_int_equal(v->last_irqs.calls, 0);
}

static void test_hostile(void **state)
{
	(void)state;
	/* out-of-range and odd accesses: all-ones or nothing, never a crash */
	assert_int_equal(pci_config_read(&vm, devfn, 4096, 4), 0xffffffff);
	assert_int_equal(pci_config_read(&vm, devfn, 4094, 4), 0xffffffff);
	assert_int_equal(pci_config_read(&vm, devfn, 1, 3), 0xffffff);
	pci_config_write(&vm, devfn, 4095, 1, 0x5a); /* the last byte: the device's */
	assert_int_equal(cfg_rd(4095, 1), 0x5a);
	/* every byte of the header and capability area, every width */
	for (unsigned off = 0; off < 256; off++)
		for (unsigned size = 1; size <= 4; size <<= 1) {
			if ((off & 3) + size > 4)
				continue;
			(void)cfg_rd(off, size);
			cfg_wr(off, size, 0xffffffff);
		}
	/* what hvmm owns kept its shape (the fake device's own bytes are plain
	 * memory here; VFIO guards the real one's) */
	assert_int_equal(cfg_rd(0x30, 4), 0);
	assert_int_equal(cfg_rd(0x3d, 1), 0);
	assert_int_equal(cfg_rd(MSIX_CAP + 2, 2) & 0x7ff, NVEC - 1);
	assert_int_equal(cfg_rd(0x10, 4), (uint32_t)~(BAR0_SIZE - 1));
	assert_int_equal(cfg_rd(0x20, 4), (uint32_t)~(32u - 1) | 1);
}

int main(void)
{
	util_mark_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_config_forwarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rom_and_pin_hidden, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_forwarded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_mappings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_mappings, setup_sparse, teardown),
		cmocka_unit_test_setup_teardown(test_trapped_bar_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_masking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_kernel_irqchip, setup_intx, teardown),
		cmocka_unit_test_setup_teardown(test_no_intx_split_irqchip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
