/*
 * Unit tests for the VT-d unit (iommu*.c) and QEMU's edu device (edu.c): the
 * page walk with its faults, context lookup, IRTE decoding and interrupt
 * remapping as pure logic over guest RAM; then the registers, fault
 * recording, queued invalidation, the IOAPIC's remappable entries and edu's
 * registers, DMA and MSI on a fake VM (no KVM), through the same bus paths a
 * vCPU exit takes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iommu.h"
#include "iommu_priv.h"
#include "pci.h"
#include "util.h"
#include "virtio/virtqueue.h"
#include "vm.h"
#include "fake_vm.h"
#include "bus_access.h"

#define RAM (16ull << 20)
#define ROOT 0x100000ull  /* root table */
#define CTX 0x101000ull   /* context table of bus 0 */
#define PT 0x102000ull    /* second-level tables from here, one page each */
#define SID 0x0010        /* 00:02.0 */
#define R 1ull
#define W 2ull
#define PS (1ull << 7)

static struct vm vm;

static uint64_t *q(uint64_t gpa)
{
	uint64_t *p = mem_ptr(&vm.mem, gpa, 8);
	assert_non_null(p);
	return p;
}

static int setup_ram(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	assert_int_equal(mem_init(&vm.mem, RAM), 0);
	return 0;
}

static int teardown_ram(void **state)
{
	(void)state;
	mem_free(&vm.mem);
	return 0;
}

/* Root entry for bus 0, a context entry for SID: translation type tt,
 * address width aw, table at PT; a 3-level map of iova 0x5000 → 0x200000
 * (RW) and 0x6000 → 0x201000 (read-only). */
static void map_basic(unsigned tt, unsigned aw, bool fpd)
{
	memset(mem_ptr(&vm.mem, ROOT, 0x10000), 0, 0x10000);
	*q(ROOT) = CTX | 1;
	q(CTX + 16 * (SID & 0xff))[0] = PT | (uint64_t)tt << 2 | (fpd ? 2 : 0) | 1;
	q(CTX + 16 * (SID & 0xff))[1] = aw | 0x10 << 8; /* domain 0x10 */
	uint64_t l3 = PT, l2 = PT + 0x1000, l1 = PT + 0x2000;
	if (aw == 2) { /* a 4th level on top */
		*q(PT) = (PT + 0x3000) | R | W;
		l3 = PT + 0x3000;
	}
	*q(l3) = l2 | R | W;
	*q(l2) = l1 | R | W;
	*q(l1 + 5 * 8) = 0x200000 | R | W;
	*q(l1 + 6 * 8) = 0x201000 | R;
}

static int walk(uint16_t sid, uint64_t iova, bool write, struct iommu_xlate *x)
{
	return iommu_walk(&vm.mem, ROOT, IOMMU_SAGAW, IOMMU_SLLPS, sid, iova, write, x);
}

static void test_walk(void **state)
{
	(void)state;
	struct iommu_xlate x;
	for (unsigned aw = 1; aw <= 2; aw++) {
		map_basic(0, aw, false);
		assert_int_equal(walk(SID, 0x5123, true, &x), IOMMU_OK);
		assert_int_equal(x.gpa, 0x200123);
		assert_int_equal(x.page_size, 4096);
		assert_int_equal(walk(SID, 0x6008, false, &x), IOMMU_OK);
		assert_int_equal(x.gpa, 0x201008);
		/* permissions: a read-only page refuses writes, an empty one both */
		assert_int_equal(walk(SID, 0x6000, true, &x), IOMMU_FR_WRITE);
		assert_int_equal(walk(SID, 0x7000, false, &x), IOMMU_FR_READ);
		assert_int_equal(walk(SID, 0x7000, true, &x), IOMMU_FR_WRITE);
		/* beyond the width the context entry gives (39 or 48 bits) */
		assert_int_equal(walk(SID, 1ull << (aw == 1 ? 39 : 48), false, &x), IOMMU_FR_ADDR_WIDTH);
	}
	map_basic(0, 1, false);
	/* rights are the AND over the levels: a read-only directory entry */
	*q(PT + 0x1000) &= ~W;
	assert_int_equal(walk(SID, 0x5000, true, &x), IOMMU_FR_WRITE);
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_OK);
	/* a paging entry pointing outside guest RAM */
	*q(PT + 0x1000) = 0x40000000ull | R | W;
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_PTE_ACCESS);
	/* reserved address bits (above the host address width) */
	*q(PT + 0x1000) = (PT + 0x2000) | 1ull << 50 | R | W;
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_PTE_RSVD);
	/* a 2 MiB page at level 2, a 1 GiB page at level 3 */
	*q(PT + 0x1000 + 8) = 0x400000 | PS | R | W;
	assert_int_equal(walk(SID, 0x212345, true, &x), IOMMU_OK);
	assert_int_equal(x.gpa, 0x412345);
	assert_int_equal(x.page_size, 2ull << 20);
	*q(PT + 8) = 0x40000000 | PS | R;
	assert_int_equal(walk(SID, 0x40000010, false, &x), IOMMU_OK);
	assert_int_equal(x.gpa, 0x40000010); /* translated; not RAM: the DMA's problem */
	assert_int_equal(x.page_size, 1ull << 30);
	/* no large pages where CAP.SLLPS has none */
	assert_int_equal(iommu_walk(&vm.mem, ROOT, IOMMU_SAGAW, 0, SID, 0x40000010, false, &x),
			 IOMMU_FR_PTE_RSVD);
}

static void test_context(void **state)
{
	(void)state;
	struct iommu_xlate x;
	map_basic(0, 1, true);
	/* bus 1: no root entry; devfn 0x18: no context entry */
	assert_int_equal(walk(0x0110, 0x5000, false, &x), IOMMU_FR_ROOT_NP);
	assert_false(x.fpd); /* no context entry, nothing to disable reporting */
	assert_int_equal(walk(0x0018, 0x5000, false, &x), IOMMU_FR_CTX_NP);
	/* FPD is reported with the fault once the context entry is present */
	assert_int_equal(walk(SID, 0x7000, false, &x), IOMMU_FR_READ);
	assert_true(x.fpd);
	/* pass-through: the address is the address */
	map_basic(2, 1, false);
	assert_int_equal(walk(SID, 0x123456789ull, true, &x), IOMMU_OK);
	assert_int_equal(x.gpa, 0x123456789ull);
	assert_int_equal(x.page_size, 0);
	/* device-TLB translation type and unsupported widths are invalid */
	map_basic(1, 1, false);
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_CTX_INVAL);
	map_basic(0, 3, false);
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_CTX_INVAL);
	map_basic(0, 2, false);
	assert_int_equal(iommu_walk(&vm.mem, ROOT, IOMMU_SAGAW_39, IOMMU_SLLPS, SID, 0x5000, false, &x),
			 IOMMU_FR_CTX_INVAL);
	/* reserved bits in the root and context entries */
	map_basic(0, 1, false);
	q(CTX + 16 * (SID & 0xff))[1] |= 1ull << 40;
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_CTX_RSVD);
	q(ROOT)[1] = 1;
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_ROOT_RSVD);
	/* tables outside guest RAM */
	*q(ROOT) = 0x80000000ull | 1;
	q(ROOT)[1] = 0;
	assert_int_equal(walk(SID, 0x5000, false, &x), IOMMU_FR_CTX_ACCESS);
	assert_int_equal(iommu_walk(&vm.mem, RAM, IOMMU_SAGAW, IOMMU_SLLPS, 0xff00, 0, false, &x),
			 IOMMU_FR_ROOT_ACCESS);
}

/* An IRTE: vector, xAPIC destination, source id with SVT/SQ. */
static void irte(uint64_t gpa, uint8_t vec, uint8_t dest, bool level, uint16_t sid, unsigned svt,
		 unsigned sq)
{
	uint64_t *e = mem_ptr(&vm.mem, gpa, 16);
	assert_non_null(e);
	e[0] = 1 | (level ? 1ull << 4 : 0) | (uint64_t)vec << 16 | (uint64_t)dest << 40;
	e[1] = sid | (uint64_t)sq << 16 | (uint64_t)svt << 18;
}

static void test_irte(void **state)
{
	(void)state;
	uint64_t raw[2] = { 1 | 1ull << 1 | 1ull << 2 | 1ull << 3 | 1ull << 4 | 1ull << 5 | 0xedull << 16 |
				    0x03ull << 40,
			    0x0010 | 2ull << 16 | 1ull << 18 };
	struct iommu_irte e;
	assert_int_equal(iommu_irte_decode(raw, &e), IOMMU_OK);
	assert_true(e.present && e.fpd && e.dest_logical && e.redir_hint && e.level);
	assert_int_equal(e.delivery_mode, 1);
	assert_int_equal(e.vector, 0xed);
	assert_int_equal(e.dest, 3);
	assert_int_equal(e.sid, 0x10);
	assert_int_equal(e.sq, 2);
	assert_int_equal(e.svt, 1);
	uint64_t addr;
	uint32_t data;
	iommu_irte_msi(&e, &addr, &data);
	assert_int_equal(addr, 0xfee0300cull);
	assert_int_equal(data, 0xed | 1 << 8 | 1 << 14 | 1 << 15);
	/* SQ 2 ignores function bits 2:1 */
	assert_true(iommu_irte_sid_ok(&e, 0x0010));
	assert_true(iommu_irte_sid_ok(&e, 0x0016));
	assert_false(iommu_irte_sid_ok(&e, 0x0011));
	assert_false(iommu_irte_sid_ok(&e, 0x0018));
	e.svt = 2; /* bus range: SID 15:8 .. SID 7:0 */
	e.sid = 0x0203;
	assert_true(iommu_irte_sid_ok(&e, 0x0210));
	assert_true(iommu_irte_sid_ok(&e, 0x03ff));
	assert_false(iommu_irte_sid_ok(&e, 0x0110));
	e.svt = 3; /* reserved: nobody passes */
	assert_false(iommu_irte_sid_ok(&e, 0x0203));
	e.svt = 0;
	assert_true(iommu_irte_sid_ok(&e, 0xffff));
	/* reserved bits, posted format */
	uint64_t bad[2] = { raw[0] | 1ull << 13, raw[1] };
	assert_int_equal(iommu_irte_decode(bad, &e), IOMMU_FR_IR_RSVD);
	bad[0] = raw[0] | 1ull << 15;
	assert_int_equal(iommu_irte_decode(bad, &e), IOMMU_FR_IR_RSVD);
	bad[0] = raw[0];
	bad[1] = raw[1] | 1ull << 40;
	assert_int_equal(iommu_irte_decode(bad, &e), IOMMU_FR_IR_RSVD);
	uint64_t np[2] = { 0, ~0ull };
	assert_int_equal(iommu_irte_decode(np, &e), IOMMU_OK);
	assert_false(e.present);
}

#define IRT 0x110000ull

static int lookup(uint16_t sid, bool verify, bool cfi, uint64_t *addr, uint32_t *data)
{
	unsigned index;
	bool fpd;
	return iommu_ir_lookup(&vm.mem, IRT, 3 /* 16 entries */, cfi, sid, verify, addr, data, &index,
			       &fpd);
}

static void test_ir_lookup(void **state)
{
	(void)state;
	memset(mem_ptr(&vm.mem, IRT, 4096), 0, 4096);
	irte(IRT + 2 * 16, 0xee, 1, false, SID, 1, 0);
	irte(IRT + 5 * 16, 0x40, 2, true, SID, 0, 0);
	/* remappable format: handle 2 in address bits 19:5, format bit 4 */
	uint64_t addr = 0xfee00000 | 2 << 5 | 1 << 4;
	uint32_t data = 0;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_OK);
	assert_int_equal(addr, 0xfee01000ull);
	assert_int_equal(data, 0xee | 1 << 14);
	/* SHV: handle 2 + subhandle 3 = entry 5 */
	addr = 0xfee00000 | 2 << 5 | 1 << 4 | 1 << 3;
	data = 3;
	assert_int_equal(lookup(0x1234, true, false, &addr, &data), IOMMU_OK);
	assert_int_equal(addr, 0xfee02000ull);
	assert_int_equal(data, 0x40 | 1 << 14 | 1 << 15);
	/* source-id verification, and the IOAPIC's unverified path */
	addr = 0xfee00000 | 2 << 5 | 1 << 4;
	assert_int_equal(lookup(0x0018, true, false, &addr, &data), IOMMU_FR_IR_SID);
	assert_int_equal(lookup(0x0018, false, false, &addr, &data), IOMMU_OK);
	/* not present; beyond the table (16 entries); handle bit 15 */
	addr = 0xfee00000 | 3 << 5 | 1 << 4;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_FR_IR_NP);
	addr = 0xfee00000 | 16 << 5 | 1 << 4;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_FR_IR_INDEX);
	addr = 0xfee00000 | 1 << 2 | 1 << 4;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_FR_IR_INDEX);
	addr = 0xfee00000 | 1 << 4 | 1 << 3; /* subhandle 0xffff: out of range, no wrap */
	data = 0xffff;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_FR_IR_INDEX);
	/* compatibility format: blocked unless CFI */
	addr = 0xfee01000;
	data = 0x31;
	assert_int_equal(lookup(SID, true, false, &addr, &data), IOMMU_FR_IR_COMPAT);
	assert_int_equal(lookup(SID, true, true, &addr, &data), IOMMU_OK);
	assert_int_equal(addr, 0xfee01000);
	assert_int_equal(data, 0x31);
	/* a table outside RAM */
	unsigned index;
	bool fpd;
	addr = 0xfee00000 | 1 << 4;
	assert_int_equal(iommu_ir_lookup(&vm.mem, RAM, 3, false, SID, true, &addr, &data, &index,
					 &fpd),
			 IOMMU_FR_IR_ACCESS);
}

/* ---- the unit on a fake VM ---- */

static uint64_t reg(unsigned off, unsigned size)
{
	return rd(&vm.mmio, IOMMU_BASE + off, size);
}

static void setreg(unsigned off, unsigned size, uint64_t v)
{
	wr(&vm.mmio, IOMMU_BASE + off, size, v);
}

/* What vm.c does when interrupt remapping changes. */
static void routes_changed(void *ctx)
{
	struct vm *v = ctx;
	ioapic_reroute_all(dev_find(&v->devs, "ioapic", 0));
	pci_msix_reroute_all(v);
}

/* The IOAPIC's routing handle as vm.c makes it: through the IOMMU, then
 * irq.c's bookkeeping (no KVM). */
static int env_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_route_msi(ctx, gsi, addr, data);
}

static int env_remap(void *ctx, uint16_t sid, bool verify, uint64_t *addr, uint32_t *data)
{
	return iommu_remap_msi(((struct vm *)ctx)->iommu, sid, verify, addr, data);
}

static void env_fault(void *ctx, uint16_t sid, uint64_t addr, int reason)
{
	iommu_ir_fault(((struct vm *)ctx)->iommu, sid, addr, reason);
}

static int setup_vm(void **state)
{
	setup_ram(state);
	vm.env.msi = (struct dev_msi){ .ctx = &vm, .route = env_route, .remap = env_remap, .fault = env_fault };
	assert_non_null(fake_dev_create(&vm, &ioapic_dev_ops));
	irq_attach(&vm, NULL, dev_find(&vm.devs, "ioapic", 0));
	assert_true(irq_msi_alloc(&vm) >= 0);
	assert_int_equal(pci_init(&vm), 0);
	assert_non_null(fake_iommu(&vm, true));
	iommu_set_routes_hook(vm.iommu, routes_changed, &vm);
	struct dev_msi msi = vm.env.msi;
	fake_vm_env(&vm); /* the PCI host */
	vm.env.msi = msi;
	assert_non_null(fake_dev_create(&vm, &edu_dev_ops));
	return 0;
}

static int teardown_vm(void **state)
{
	fake_vm_free(&vm); /* edu (and the registry's host bridge and IOMMU entries) */
	pci_destroy(&vm);
	irq_destroy(&vm);
	return teardown_ram(state);
}

/* GCMD as kvm-unit-tests write it: the status with one command bit more. */
static void gcmd(uint32_t bit)
{
	setreg(IOMMU_GCMD, 4, (uint32_t)reg(IOMMU_GSTS, 4) | bit);
}

static void test_registers(void **state)
{
	(void)state;
	assert_int_equal(reg(IOMMU_VER, 4), 0x10);
	uint64_t cap = reg(IOMMU_CAP, 8), ecap = reg(IOMMU_ECAP, 8);
	assert_int_equal((cap >> 8) & 0x1f, 0x6);          /* SAGAW: 39 and 48 bits */
	assert_int_equal((cap >> 34) & 0xf, 0x3);          /* 2 MiB and 1 GiB pages */
	assert_int_equal(((cap >> 24) & 0x3ff) * 16, 0x220); /* FRO */
	assert_int_equal(((cap >> 40) & 0xff) + 1, IOMMU_NFR);
	assert_int_equal(((ecap >> 8) & 0x3ff) * 16, IOMMU_IVA);
	assert_true(ecap & (1 << 1)); /* QI */
	assert_true(ecap & (1 << 3)); /* IR */
	assert_false(ecap & (1 << 4)); /* no EIM */
	assert_int_equal(reg(IOMMU_CAP + 4, 4), cap >> 32);
	/* odd sizes and misaligned accesses read all-ones and do nothing */
	assert_int_equal(reg(IOMMU_CAP, 2), 0xffff);
	assert_int_equal(reg(IOMMU_CAP + 4, 8), ~0ull);
	/* the global commands kvm-unit-tests give */
	assert_int_equal(reg(IOMMU_GSTS, 4), 0);
	gcmd(IOMMU_G_QIE);
	assert_int_equal(reg(IOMMU_GSTS, 4), IOMMU_G_QIE);
	setreg(IOMMU_RTADDR, 8, ROOT | 0xfff);
	assert_int_equal(reg(IOMMU_RTADDR, 8), ROOT | 0xc00); /* TTM reads back, 9:0 do not */
	gcmd(IOMMU_G_SRTP);
	setreg(IOMMU_IRTA, 8, IRT | 0xf);
	gcmd(IOMMU_G_SIRTP);
	gcmd(IOMMU_G_TE);
	gcmd(IOMMU_G_IRE);
	assert_int_equal(reg(IOMMU_GSTS, 4), IOMMU_G_QIE | IOMMU_G_SRTP | IOMMU_G_SIRTP | IOMMU_G_TE |
						     IOMMU_G_IRE);
	assert_int_equal(vm.iommu->root, ROOT);
	assert_int_equal(vm.iommu->irt, IRT | 0xf);
	/* GCMD reads 0; a write without TE turns translation off */
	assert_int_equal(reg(IOMMU_GCMD, 4), 0);
	setreg(IOMMU_GCMD, 4, IOMMU_G_QIE | IOMMU_G_IRE);
	assert_int_equal(reg(IOMMU_GSTS, 4) & IOMMU_G_TE, 0);
	/* register-based invalidation completes at once with the granularity asked */
	setreg(IOMMU_CCMD, 8, 1ull << 63 | 1ull << 61);
	assert_int_equal(reg(IOMMU_CCMD, 8) >> 59, 1 << 2 | 1); /* ICC clear, CIRG = CAIG = 1 */
	setreg(IOMMU_IOTLB, 8, 1ull << 63 | 2ull << 60);
	assert_int_equal(reg(IOMMU_IOTLB, 8) >> 57, 2 << 3 | 2); /* IVT clear, IIRG = IAIG = 2 */
}

static void test_faults(void **state)
{
	(void)state;
	map_basic(0, 1, false);
	setreg(IOMMU_RTADDR, 8, ROOT);
	gcmd(IOMMU_G_SRTP);
	gcmd(IOMMU_G_TE);
	uint64_t gpa, avail;
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x5010, true, &gpa, &avail), IOMMU_OK);
	assert_int_equal(gpa, 0x200010);
	assert_int_equal(avail, 0xff0);
	assert_int_equal(reg(IOMMU_FSTS, 4), 0);
	/* a write to a read-only page: recorded in register 0 */
	setreg(IOMMU_FEADDR, 4, 0xfee00000);
	setreg(IOMMU_FEDATA, 4, 0x55);
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x6abc, true, &gpa, &avail), IOMMU_FR_WRITE);
	uint32_t fsts = (uint32_t)reg(IOMMU_FSTS, 4);
	assert_true(fsts & IOMMU_FSTS_PPF);
	assert_int_equal(fsts >> 8 & 0xff, 0); /* FRI: the register of the first pending fault */
	assert_int_equal(reg(IOMMU_FRCD, 8), 0x6000);
	uint64_t hi = reg(IOMMU_FRCD + 8, 8);
	assert_true(hi & IOMMU_FRCD_F);
	assert_false(hi & IOMMU_FRCD_T_READ);
	assert_int_equal((hi >> 32) & 0xff, IOMMU_FR_WRITE);
	assert_int_equal(hi & 0xffff, SID);
	/* the event was masked (IM at reset): pending */
	assert_int_equal(reg(IOMMU_FECTL, 4), IOMMU_CTL_IM | IOMMU_CTL_IP);
	assert_int_equal(vm.iommu->events, 0);
	setreg(IOMMU_FECTL, 4, 0); /* unmask: the pending event goes out */
	assert_int_equal(vm.iommu->events, 1);
	assert_int_equal(reg(IOMMU_FECTL, 4), 0);
	/* a read of a page that is not there: register 1, T says read; no
	 * new event while a fault is pending */
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x7000, false, &gpa, &avail), IOMMU_FR_READ);
	assert_true(reg(IOMMU_FRCD + 16 + 8, 8) & IOMMU_FRCD_T_READ);
	assert_int_equal(vm.iommu->events, 1);
	/* FRI stays on the oldest pending record (Linux reads from FRI on) */
	assert_int_equal(reg(IOMMU_FSTS, 4) >> 8 & 0xff, 0);
	/* fill the rest, then overflow */
	for (int i = 0; i < IOMMU_NFR - 2; i++)
		iommu_translate(vm.iommu, 0x0110, 0, false, &gpa, &avail);
	assert_int_equal((reg(IOMMU_FRCD + 16 * (IOMMU_NFR - 1) + 8, 8) >> 32) & 0xff, IOMMU_FR_ROOT_NP);
	assert_false(reg(IOMMU_FSTS, 4) & IOMMU_FSTS_PFO);
	iommu_translate(vm.iommu, 0x0110, 0, false, &gpa, &avail);
	assert_true(reg(IOMMU_FSTS, 4) & IOMMU_FSTS_PFO);
	assert_int_equal(iommu_faults(vm.iommu), IOMMU_NFR + 1);
	/* software clears each F (write 1 to bit 127) and PFO */
	for (int i = 0; i < IOMMU_NFR; i++) {
		/* cleared oldest first: FRI follows to the next pending one */
		assert_int_equal(reg(IOMMU_FSTS, 4) >> 8 & 0xff, i);
		setreg(IOMMU_FRCD + 16 * i + 12, 4, 0x80000000u);
	}
	setreg(IOMMU_FSTS, 4, IOMMU_FSTS_PFO);
	assert_int_equal(reg(IOMMU_FSTS, 4) & 0xff, 0);
	/* a context entry with FPD: the DMA fails, nothing is recorded */
	map_basic(0, 1, true);
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x7000, false, &gpa, &avail), IOMMU_FR_READ);
	assert_int_equal(iommu_faults(vm.iommu), IOMMU_NFR + 1);
	/* DMA through the unit: across pages, and stopped by a fault */
	uint8_t buf[8] = "abcdefg";
	map_basic(0, 1, false);
	assert_int_equal(iommu_dma_rw(vm.iommu, &vm.mem, SID, 0x5ffc, buf, 4, true), 0);
	assert_memory_equal(mem_ptr(&vm.mem, 0x200ffc, 4), "abcd", 4);
	assert_int_equal(iommu_dma_rw(vm.iommu, &vm.mem, SID, 0x5ffc, buf, 8, true), -EFAULT); /* 0x6000: RO */
	assert_int_equal(iommu_dma_rw(vm.iommu, &vm.mem, SID, 0x5ffc, buf, 8, false), 0);
	/* translation off: DMA addresses are guest-physical, checked against RAM */
	setreg(IOMMU_GCMD, 4, 0);
	assert_int_equal(iommu_dma_rw(vm.iommu, &vm.mem, SID, 0x300000, buf, 8, true), 0);
	assert_memory_equal(mem_ptr(&vm.mem, 0x300000, 8), buf, 8);
	assert_int_equal(iommu_dma_rw(vm.iommu, &vm.mem, SID, RAM - 4, buf, 8, true), -EFAULT);
}

static void test_queued_invalidation(void **state)
{
	(void)state;
	const uint64_t iq = 0x120000, status = 0x121000;
	memset(mem_ptr(&vm.mem, iq, 0x2000), 0, 0x2000);
	setreg(IOMMU_IQA, 8, iq); /* one page: 256 descriptors */
	gcmd(IOMMU_G_QIE);
	assert_int_equal(reg(IOMMU_IQH, 8), 0);
	/* context-cache, IOTLB, IEC, then a wait that writes status and interrupts */
	q(iq)[0] = 1 | 3 << 4;
	q(iq + 16)[0] = 2 | 1ull << 4;
	q(iq + 32)[0] = 4;
	q(iq + 48)[0] = 5 | 1 << 4 | 1 << 5 | 0x1234ull << 32;
	q(iq + 48)[1] = status;
	setreg(IOMMU_IECTL, 4, 0);
	setreg(IOMMU_IQT, 8, 4 << 4);
	assert_int_equal(reg(IOMMU_IQH, 8), 4 << 4);
	assert_int_equal(*(uint32_t *)mem_ptr(&vm.mem, status, 4), 0x1234);
	assert_int_equal(reg(IOMMU_ICS, 4), 1);
	assert_int_equal(vm.iommu->events, 1);
	setreg(IOMMU_ICS, 4, 1);
	assert_int_equal(reg(IOMMU_ICS, 4), 0);
	/* an unknown descriptor type stops the queue on it with IQE */
	q(iq + 64)[0] = 0xf;
	q(iq + 80)[0] = 1;
	setreg(IOMMU_IQT, 8, 6 << 4);
	assert_int_equal(reg(IOMMU_IQH, 8), 4 << 4);
	assert_true(reg(IOMMU_FSTS, 4) & IOMMU_FSTS_IQE);
	/* a wait whose status address is not RAM is an error too */
	setreg(IOMMU_FSTS, 4, IOMMU_FSTS_IQE);
	q(iq + 64)[0] = 5 | 1 << 5;
	q(iq + 64)[1] = RAM;
	setreg(IOMMU_IQT, 8, 6 << 4);
	assert_int_equal(reg(IOMMU_IQH, 8), 4 << 4);
	assert_true(reg(IOMMU_FSTS, 4) & IOMMU_FSTS_IQE);
	/* a tail beyond the queue */
	setreg(IOMMU_FSTS, 4, IOMMU_FSTS_IQE);
	setreg(IOMMU_IQT, 8, 300 << 4);
	assert_true(reg(IOMMU_FSTS, 4) & IOMMU_FSTS_IQE);
}

/* IOAPIC pin 5 in remappable format (VT-d 5.1.5.1): index in 63:49 and 11. */
static void test_ioapic_remap(void **state)
{
	(void)state;
	memset(mem_ptr(&vm.mem, IRT, 4096), 0, 4096);
	irte(IRT + 3 * 16, 0x61, 0, false, SID, 1, 0); /* another requester's id: not checked */
	setreg(IOMMU_IRTA, 8, IRT | 3);
	gcmd(IOMMU_G_SIRTP);
	gcmd(IOMMU_G_IRE);
	const struct bus_range *r = bus_find(&vm.mmio, IRQ_IOAPIC_ADDR, 4);
	assert_non_null(r);
	r->ops->write(r->opaque, 0x00, 4, 0x10 + 2 * 5 + 1);
	r->ops->write(r->opaque, 0x10, 4, 1u << 16 | 3u << 17); /* format bit 48, index 3 */
	r->ops->write(r->opaque, 0x00, 4, 0x10 + 2 * 5);
	r->ops->write(r->opaque, 0x10, 4, 0x61);
	irq_set_line(&vm, 5, true);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 5), 1);
	assert_int_equal(iommu_faults(vm.iommu), 0);
	/* a compatibility-format entry is blocked while IR is on: fault 0x25 */
	irq_set_line(&vm, 5, false);
	r->ops->write(r->opaque, 0x00, 4, 0x10 + 2 * 5 + 1);
	r->ops->write(r->opaque, 0x10, 4, 0);
	irq_set_line(&vm, 5, true);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 5), 1);
	assert_int_equal(iommu_faults(vm.iommu), 1);
	assert_int_equal((reg(IOMMU_FRCD + 8, 8) >> 32) & 0xff, IOMMU_FR_IR_COMPAT);
	assert_int_equal(reg(IOMMU_FRCD + 8, 8) & 0xffff, IOMMU_IOAPIC_SID);
	/* IR off again: the route is recomputed and the pin delivers */
	irq_set_line(&vm, 5, false);
	setreg(IOMMU_GCMD, 4, 0);
	irq_set_line(&vm, 5, true);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 5), 2);
}

/* ---- edu ---- */

static unsigned edu_devfn(void)
{
	for (unsigned d = 8; d < 256; d += 8)
		if (pci_config_read(&vm, d, 0, 4) == 0x11e81234)
			return d;
	fail_msg("no edu");
	return 0;
}

static void test_edu_logic(void **state)
{
	(void)state;
	assert_int_equal(edu_factorial(0), 1);
	assert_int_equal(edu_factorial(1), 1);
	assert_int_equal(edu_factorial(5), 120);
	assert_int_equal(edu_factorial(12), 479001600);
	assert_int_equal(edu_factorial(13), 1932053504u); /* 13! mod 2^32 */
	assert_int_equal(edu_factorial(33), 2147483648u);
	assert_int_equal(edu_factorial(34), 0);
	assert_int_equal(edu_factorial(0xffffffffu), 0);
}

static void test_edu(void **state)
{
	(void)state;
	unsigned d = edu_devfn();
	assert_int_equal(pci_config_read(&vm, d, 0x08, 4) >> 8, 0x00ff00);
	assert_int_equal(pci_config_read(&vm, d, 0x3d, 1), 1); /* INTA */
	/* memory decoding on from the start, as SeaBIOS leaves it */
	assert_int_equal(pci_config_read(&vm, d, 0x04, 2) & 2, 2);
	uint64_t bar = pci_config_read(&vm, d, 0x10, 4);
	assert_int_equal(bar & 0xf, 0); /* 32-bit memory */
	pci_config_write(&vm, d, 0x10, 4, 0xffffffff);
	assert_int_equal(pci_config_read(&vm, d, 0x10, 4), 0xfff00000); /* 1 MiB */
	pci_config_write(&vm, d, 0x10, 4, (uint32_t)bar);
	/* the MSI capability: 64-bit, one vector */
	unsigned cap = pci_config_read(&vm, d, 0x34, 1);
	assert_int_equal(pci_config_read(&vm, d, cap, 1), 0x05);
	assert_int_equal(pci_config_read(&vm, d, cap + 2, 2), 0x80);
	/* CONFIG_ADDRESS bits 1:0 select the bytes of the data port, as in QEMU:
	 * kvm-unit-tests read the device id that way (register 2 at 0xcfc) */
	wr(&vm.pio, 0xcf8, 4, 0x80000000u | d << 8 | 2);
	assert_int_equal(rd(&vm.pio, 0xcfc, 2), 0x11e8);
	assert_int_equal(rd(&vm.pio, 0xcf8, 4), 0x80000000u | d << 8); /* reads back as 0 */
	/* registers */
	assert_int_equal(rd(&vm.mmio, bar, 4), 0x010000ed);
	wr(&vm.mmio, bar + 4, 4, 0x12345678);
	assert_int_equal(rd(&vm.mmio, bar + 4, 4), 0xedcba987);
	wr(&vm.mmio, bar + 8, 4, 10);
	assert_int_equal(rd(&vm.mmio, bar + 8, 4), 3628800);
	assert_int_equal(rd(&vm.mmio, bar + 0x20, 4) & 1, 0); /* done at once */
	assert_int_equal(rd(&vm.mmio, bar, 2), 0xffff);     /* 32-bit only below 0x80 */
	wr(&vm.mmio, bar + 4, 8, 0);
	assert_int_equal(rd(&vm.mmio, bar + 4, 4), 0xedcba987);
	/* INTx: pin 16 + (slot + 0) % 4, edge-programmed in the IOAPIC */
	unsigned pin = pci_config_read(&vm, d, 0x3c, 1);
	const struct bus_range *io = bus_find(&vm.mmio, IRQ_IOAPIC_ADDR, 4);
	io->ops->write(io->opaque, 0x00, 4, 0x10 + 2 * pin);
	io->ops->write(io->opaque, 0x10, 4, 0x50);
	wr(&vm.mmio, bar + 0x60, 4, 0x3);
	assert_int_equal(rd(&vm.mmio, bar + 0x24, 4), 0x3);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), pin), 1);
	assert_true(pci_config_read(&vm, d, 0x06, 2) & 0x8); /* INTx status */
	wr(&vm.mmio, bar + 0x64, 4, 0x1);
	assert_true(pci_config_read(&vm, d, 0x06, 2) & 0x8);
	wr(&vm.mmio, bar + 0x64, 4, 0x2);
	assert_false(pci_config_read(&vm, d, 0x06, 2) & 0x8);
	/* factorial with its interrupt */
	wr(&vm.mmio, bar + 0x20, 4, 0x80);
	wr(&vm.mmio, bar + 0x08, 4, 3);
	assert_int_equal(rd(&vm.mmio, bar + 0x24, 4), 0x1);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), pin), 2);
	wr(&vm.mmio, bar + 0x64, 4, 0x1);
	/* MSI through interrupt remapping: IRTE 2 for this device */
	memset(mem_ptr(&vm.mem, IRT, 4096), 0, 4096);
	irte(IRT + 2 * 16, 0xee, 1, false, (uint16_t)d, 1, 0);
	setreg(IOMMU_IRTA, 8, IRT | 3);
	gcmd(IOMMU_G_SIRTP);
	gcmd(IOMMU_G_IRE);
	pci_config_write(&vm, d, cap + 4, 4, 0xfee00000 | 2 << 5 | 1 << 4);
	pci_config_write(&vm, d, cap + 8, 4, 0);
	pci_config_write(&vm, d, cap + 12, 4, 0);
	pci_config_write(&vm, d, cap + 2, 2, 1);
	wr(&vm.mmio, bar + 0x60, 4, 0x4);
	uint64_t addr;
	uint32_t data;
	struct pci_dev *pd = pci_dev_at(&vm, d);
	assert_non_null(pd);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), pin), 2); /* not INTx any more */
	assert_int_equal(pci_msi_last(pd, &addr, &data), 1);
	assert_int_equal(addr, 0xfee01000ull);
	assert_int_equal(data, 0xee | 1 << 14);
	/* an IRTE naming another requester blocks it, with a fault record */
	uint64_t faults = iommu_faults(vm.iommu);
	irte(IRT + 2 * 16, 0xee, 1, false, (uint16_t)(d + 8), 1, 0);
	wr(&vm.mmio, bar + 0x60, 4, 0x8);
	assert_int_equal(pci_msi_last(pd, &addr, &data), 1);
	assert_int_equal(iommu_faults(vm.iommu), faults + 1);
	wr(&vm.mmio, bar + 0x64, 4, 0xf);
	/* DMA: RAM → buffer → RAM through a 3-level map with the unit on */
	map_basic(0, 1, false);
	q(CTX + 16 * (d & 0xff))[0] = q(CTX + 16 * (SID & 0xff))[0];
	q(CTX + 16 * (d & 0xff))[1] = q(CTX + 16 * (SID & 0xff))[1];
	setreg(IOMMU_RTADDR, 8, ROOT);
	gcmd(IOMMU_G_SRTP);
	gcmd(IOMMU_G_TE);
	memcpy(mem_ptr(&vm.mem, 0x200000, 4), "\x78\x56\x34\x12", 4);
	pci_config_write(&vm, d, 0x04, 2, 0x6); /* bus master */
	wr(&vm.mmio, bar + 0x80, 8, 0x5000);
	wr(&vm.mmio, bar + 0x88, 8, 0x40000);
	wr(&vm.mmio, bar + 0x90, 8, 4);
	wr(&vm.mmio, bar + 0x98, 4, 1);
	assert_int_equal(rd(&vm.mmio, bar + 0x98, 4) & 1, 0);
	wr(&vm.mmio, bar + 0x80, 8, 0x40000);
	wr(&vm.mmio, bar + 0x88, 8, 0x5004);
	wr(&vm.mmio, bar + 0x98, 4, 1 | 2 | 4); /* to RAM, interrupt when done */
	assert_memory_equal(mem_ptr(&vm.mem, 0x200004, 4), "\x78\x56\x34\x12", 4);
	assert_int_equal(rd(&vm.mmio, bar + 0x24, 4), 0x100);
	/* a DMA into a read-only page faults in the unit and writes nothing */
	faults = iommu_faults(vm.iommu);
	wr(&vm.mmio, bar + 0x88, 8, 0x6000);
	wr(&vm.mmio, bar + 0x98, 4, 1 | 2);
	assert_int_equal(iommu_faults(vm.iommu), faults + 1);
	assert_int_equal(*(uint32_t *)mem_ptr(&vm.mem, 0x201000, 4), 0);
	/* hostile: a device range outside the buffer, bus mastering off */
	wr(&vm.mmio, bar + 0x80, 8, 0x40000 + 4093);
	wr(&vm.mmio, bar + 0x88, 8, 0x5000);
	wr(&vm.mmio, bar + 0x98, 4, 1 | 2);
	assert_memory_equal(mem_ptr(&vm.mem, 0x200000, 4), "\x78\x56\x34\x12", 4);
	wr(&vm.mmio, bar + 0x90, 8, ~0ull);
	wr(&vm.mmio, bar + 0x80, 8, 0x40000);
	wr(&vm.mmio, bar + 0x98, 4, 1 | 2);
	assert_int_equal(rd(&vm.mmio, bar + 0x98, 4) & 1, 0);
	pci_config_write(&vm, d, 0x04, 2, 0x2);
	wr(&vm.mmio, bar + 0x90, 8, 4);
	wr(&vm.mmio, bar + 0x80, 8, 0x40000);
	wr(&vm.mmio, bar + 0x88, 8, 0x5008);
	wr(&vm.mmio, bar + 0x98, 4, 1 | 2);
	assert_int_equal(*(uint32_t *)mem_ptr(&vm.mem, 0x200008, 4), 0);
	/* what --stats shows */
	struct iommu_stats st;
	assert_true(iommu_get_stats(vm.iommu, &st));
	assert_int_equal(st.gsts & (IOMMU_G_TE | IOMMU_G_IRE), IOMMU_G_TE | IOMMU_G_IRE);
	assert_int_equal(st.translations, 3); /* 2 DMAs and the faulting one; the refused ones never ask */
	assert_int_equal(st.blocked, 2); /* MSIs through the IRTE of another requester: raise, DMA done */
	assert_true(st.remapped >= 1);
	assert_int_equal(st.faults, faults + 1);
}

/* ---- the IOTLB, and a virtqueue whose addresses are IOVAs ---- */

static void translation_on(void)
{
	setreg(IOMMU_RTADDR, 8, ROOT);
	gcmd(IOMMU_G_SRTP);
	gcmd(IOMMU_G_TE);
}

static void test_iotlb(void **state)
{
	(void)state;
	map_basic(0, 1, false);
	translation_on();
	uint64_t gpa, avail, flushes = vm.iommu->iotlb_flushes, gen = iommu_generation(vm.iommu);
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x5010, false, &gpa, &avail), IOMMU_OK);
	assert_int_equal(gpa, 0x200010);
	assert_int_equal(vm.iommu->iotlb_misses, 1);
	/* The guest remaps the page without invalidating: the cached
	 * translation may (and here does) still be used... */
	*q(PT + 0x2000 + 5 * 8) = 0x300000 | R | W;
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x5020, false, &gpa, &avail), IOMMU_OK);
	assert_int_equal(gpa, 0x200020);
	assert_int_equal(avail, 0xfe0);
	assert_int_equal(vm.iommu->iotlb_hits, 1);
	/* ...another requester's lookup of the same IOVA does not hit it */
	assert_int_equal(iommu_translate(vm.iommu, SID + 1, 0x5020, false, &gpa, &avail), IOMMU_FR_CTX_NP);
	/* ...and a register-based IOTLB invalidation drops it */
	setreg(IOMMU_IOTLB, 8, 1ull << 63 | 1ull << 60);
	assert_int_equal(vm.iommu->iotlb_flushes, flushes + 1);
	assert_true(iommu_generation(vm.iommu) != gen);
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x5020, false, &gpa, &avail), IOMMU_OK);
	assert_int_equal(gpa, 0x300020);
	/* a read-only entry in the IOTLB does not let a write through */
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x6000, false, &gpa, &avail), IOMMU_OK);
	assert_int_equal(iommu_translate(vm.iommu, SID, 0x6000, true, &gpa, &avail), IOMMU_FR_WRITE);
	/* a context-cache invalidation and a new root table flush too */
	gen = iommu_generation(vm.iommu);
	setreg(IOMMU_CCMD, 8, 1ull << 63 | 1ull << 61);
	assert_true(iommu_generation(vm.iommu) != gen);
	gen = iommu_generation(vm.iommu);
	gcmd(IOMMU_G_SRTP);
	assert_true(iommu_generation(vm.iommu) != gen);
}

static int vq_xlate(void *opaque, uint64_t iova, bool write, uint64_t *gpa, uint64_t *avail)
{
	return iommu_translate(((struct vm *)opaque)->iommu, SID, iova, write, gpa, avail);
}

static uint64_t vq_gen(void *opaque)
{
	return iommu_generation(((struct vm *)opaque)->iommu);
}

/* A chain of one descriptor at slot `slot` of the ring, made available. */
static void vq_offer(uint64_t desc_gpa, uint64_t avail_gpa, uint16_t slot, uint64_t addr,
		     uint32_t len, uint16_t flags)
{
	struct vq_desc *d = mem_ptr(&vm.mem, desc_gpa + 16 * slot, 16);
	*d = (struct vq_desc){ addr, len, flags, 0 };
	uint16_t *a = mem_ptr(&vm.mem, avail_gpa, 8);
	a[2 + slot] = slot;
	a[1] = slot + 1;
}

static void test_virtqueue_iova(void **state)
{
	(void)state;
	map_basic(0, 1, false);
	/* IOVA 0x10000-0x14fff: 0x10000-0x13fff → 0x400000-0x403fff, but
	 * 0x14000 → 0x500000: a buffer across 0x14000 is two pieces. */
	uint64_t l1 = PT + 0x2000;
	for (unsigned i = 0; i < 4; i++)
		*q(l1 + (16 + i) * 8) = (0x400000 + 0x1000ull * i) | R | W;
	*q(l1 + 20 * 8) = 0x500000 | R | W;
	translation_on();
	const struct vq_dma dma = { vq_xlate, vq_gen, &vm };
	struct virtqueue vq = { 0 };
	/* desc, avail, used at IOVAs 0x10000, 0x11000, 0x12000 */
	assert_int_equal(vq_start_dma(&vq, &vm.mem, &dma, 4, 0x10000, 0x11000, 0x12000, false, false),
			 VQ_OK);
	assert_ptr_equal(vq.desc, mem_ptr(&vm.mem, 0x400000, 64));
	assert_ptr_equal(vq.used, mem_ptr(&vm.mem, 0x402000, 38));
	static struct vq_elem e;
	vq_offer(0x400000, 0x401000, 0, 0x13800, 0x1000, VQ_DESC_F_WRITE);
	assert_int_equal(vq_pop(&vq, &e), 1);
	assert_int_equal(e.n_in, 2);
	assert_int_equal(e.in_len, 0x1000);
	assert_ptr_equal(e.in[0].iov_base, mem_ptr(&vm.mem, 0x403800, 1));
	assert_int_equal(e.in[0].iov_len, 0x800);
	assert_ptr_equal(e.in[1].iov_base, mem_ptr(&vm.mem, 0x500000, 1));
	assert_int_equal(e.in[1].iov_len, 0x800);
	vq_push(&vq, e.head, 0x1000);
	assert_int_equal(*(uint16_t *)mem_ptr(&vm.mem, 0x402002, 2), 1); /* used idx, via the IOVA */
	/* Contiguous pages merge into one iovec. */
	vq_offer(0x400000, 0x401000, 1, 0x10800, 0x2000, 0);
	assert_int_equal(vq_pop(&vq, &e), 1);
	assert_int_equal(e.n_out, 1);
	assert_int_equal(e.out[0].iov_len, 0x2000);
	/* An invalidation: the rings are translated again at the next use. */
	setreg(IOMMU_IOTLB, 8, 1ull << 63 | 1ull << 60);
	assert_int_equal(vq_pop(&vq, &e), 0);
	assert_int_equal(vq.dma_retranslations, 1);
	/* A device-writable buffer on a read-only page: a DMA fault, recorded
	 * with the requester and the page, and the queue is broken. */
	uint64_t faults = iommu_faults(vm.iommu);
	vq_offer(0x400000, 0x401000, 2, 0x6000, 16, VQ_DESC_F_WRITE);
	assert_int_equal(vq_pop(&vq, &e), VQ_ERR_DMA);
	assert_int_equal(iommu_faults(vm.iommu), faults + 1);
	uint64_t hi = reg(IOMMU_FRCD + 8, 8);
	assert_true(hi & IOMMU_FRCD_F);
	assert_int_equal(hi & 0xffff, SID);
	assert_int_equal((hi >> 32) & 0xff, IOMMU_FR_WRITE);
	assert_int_equal(reg(IOMMU_FRCD, 8), 0x6000);
	assert_int_equal(vq_pop(&vq, &e), VQ_ERR_DMA);
	/* A ring at an unmapped IOVA cannot be started; nor a ring whose
	 * pages are scattered (0x14000 and 0x13000 are not adjacent). */
	assert_int_equal(vq_start_dma(&vq, &vm.mem, &dma, 4, 0x30000, 0x11000, 0x12000, false, false),
			 VQ_ERR_DMA);
	assert_int_equal(vq_start_dma(&vq, &vm.mem, &dma, 512, 0x13000, 0x11000, 0x12000, false, false),
			 VQ_ERR_DMA);
	/* Without a translator the same numbers are guest-physical. */
	assert_int_equal(vq_start_dma(&vq, &vm.mem, NULL, 4, 0x10000, 0x11000, 0x12000, false, false),
			 VQ_OK);
	assert_ptr_equal(vq.desc, mem_ptr(&vm.mem, 0x10000, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk, setup_ram, teardown_ram),
		cmocka_unit_test_setup_teardown(test_context, setup_ram, teardown_ram),
		cmocka_unit_test(test_irte),
		cmocka_unit_test_setup_teardown(test_ir_lookup, setup_ram, teardown_ram),
		cmocka_unit_test_setup_teardown(test_registers, setup_vm, teardown_vm),
		cmocka_unit_test_setup_teardown(test_faults, setup_vm, teardown_vm),
		cmocka_unit_test_setup_teardown(test_queued_invalidation, setup_vm, teardown_vm),
		cmocka_unit_test_setup_teardown(test_iotlb, setup_vm, teardown_vm),
		cmocka_unit_test_setup_teardown(test_virtqueue_iova, setup_vm, teardown_vm),
		cmocka_unit_test_setup_teardown(test_ioapic_remap, setup_vm, teardown_vm),
		cmocka_unit_test(test_edu_logic),
		cmocka_unit_test_setup_teardown(test_edu, setup_vm, teardown_vm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
