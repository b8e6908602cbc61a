/*
 * edu: QEMU's "educational" PCI device (1234:11e8, class "other", revision
 * 0x10), which kvm-unit-tests' intel_iommu test drives to make DMA and
 * interrupts that go through the IOMMU. Its register interface, BAR 0
 * (1 MiB, 32-bit memory):
 *
 *   0x00 RO  identification 0x010000ed (version 1.0, 0xed)
 *   0x04 RW  liveness: reads the bitwise NOT of the last value written
 *   0x08 RW  factorial: a write starts computing n! (mod 2^32), a read gives it
 *   0x20 RW  status: bit 0 computing (RO), bit 7 raise interrupt 0x001 when a
 *            factorial is done
 *   0x24 RO  interrupt status: the OR of the raised values
 *   0x60 WO  interrupt raise: ORs the value into interrupt status, interrupts
 *   0x64 WO  interrupt acknowledge: clears those bits; INTx drops at zero
 *   0x80 RW  DMA source, 0x88 DMA destination, 0x90 DMA count (64-bit)
 *   0x98 RW  DMA command: bit 0 start (reads 1 while running), bit 1
 *            direction (0: guest RAM → device buffer, 1: buffer → RAM),
 *            bit 2 raise interrupt 0x100 when done
 *
 * The device's buffer is 4 KiB at device address 0x40000; one end of every
 * transfer must lie wholly inside it, the other is a bus address (28 bits:
 * QEMU's default dma_mask clamps it), translated by the IOMMU when there is
 * one. Registers below 0x80 take 32-bit accesses only, the DMA registers 32-
 * or 64-bit ones; anything else reads all-ones and is ignored.
 *
 * Interrupts: MSI when the guest enabled it (one vector), else INTA.
 *
 * Unlike QEMU, which computes in a thread and runs DMA from a 100 ms timer,
 * hvmm does both at once, in the register write (on the vCPU thread, the PCI
 * device lock held): a guest polling the busy bits sees them clear on its
 * next read, which the device's contract allows. A transfer that is not
 * possible (range outside the buffer, bus mastering off, an IOMMU fault,
 * an address outside guest RAM) is a device error: one line on stderr, the
 * transfer skipped, the command still completes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pci.h"
#include "../snapshot.h"
#include "../util.h"
#include "devices_priv.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_REVISION 0x10
#define EDU_CLASS 0x00ff00 /* "other" base class 0xff, as QEMU's PCI_CLASS_OTHERS */
#define EDU_BAR 0
#define EDU_BAR_SIZE (1ull << 20)

#define EDU_ID 0x010000edu
#define EDU_REG_ID 0x00
#define EDU_REG_ALIVE 0x04
#define EDU_REG_FACT 0x08
#define EDU_REG_STATUS 0x20
#define EDU_REG_IRQ_STATUS 0x24
#define EDU_REG_IRQ_RAISE 0x60
#define EDU_REG_IRQ_ACK 0x64
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_CNT 0x90
#define EDU_REG_DMA_CMD 0x98

#define EDU_STATUS_COMPUTING 0x01
#define EDU_STATUS_IRQFACT 0x80
#define EDU_FACT_IRQ 0x001
#define EDU_DMA_IRQ 0x100
#define EDU_DMA_RUN 0x1
#define EDU_DMA_TO_RAM 0x2
#define EDU_DMA_RAISE 0x4
#define EDU_DMA_BUF 0x40000ull
#define EDU_DMA_SIZE 4096ull
#define EDU_DMA_MASK ((1ull << 28) - 1)

struct edu {
	struct pci_dev *pci;
	/* all under the PCI device lock, which pci.c holds around BAR accesses */
	uint32_t alive, fact, status, irq_status;
	uint64_t dma_src, dma_dst, dma_cnt, dma_cmd;
	uint8_t buf[EDU_DMA_SIZE];
	bool warned;
};

uint32_t edu_factorial(uint32_t n)
{
	/* 34! and up have at least 32 factors of 2: zero modulo 2^32, so a
	 * hostile n costs no more than 33 multiplications. */
	if (n >= 34)
		return 0;
	uint32_t r = 1;
	while (n > 1)
		r *= n--;
	return r;
}

static void edu_raise(struct edu *e, uint32_t val)
{
	e->irq_status |= val;
	if (!e->irq_status)
		return;
	if (pci_msi_enabled(e->pci))
		pci_msi_notify(e->pci);
	else
		pci_intx_set(e->pci, true);
}

static void edu_lower(struct edu *e, uint32_t val)
{
	e->irq_status &= ~val;
	if (!e->irq_status && !pci_msi_enabled(e->pci))
		pci_intx_set(e->pci, false);
}

static void edu_error(struct edu *e, const char *what, uint64_t addr, uint64_t len)
{
	if (!e->warned)
		util_err("edu: DMA %s (address %#llx, %llu bytes): transfer skipped", what,
			 (unsigned long long)addr, (unsigned long long)len);
	e->warned = true;
}

/* Is [addr, addr + len) inside the device buffer? */
static bool edu_in_buf(uint64_t addr, uint64_t len)
{
	return addr >= EDU_DMA_BUF && util_range_ok(addr - EDU_DMA_BUF, len, EDU_DMA_SIZE);
}

static void edu_dma(struct edu *e)
{
	bool to_ram = e->dma_cmd & EDU_DMA_TO_RAM;
	uint64_t dev = to_ram ? e->dma_src : e->dma_dst;
	uint64_t bus = (to_ram ? e->dma_dst : e->dma_src) & EDU_DMA_MASK;
	uint64_t len = e->dma_cnt;
	if (!edu_in_buf(dev, len)) {
		edu_error(e, "outside the device buffer 0x40000-0x40fff", dev, len);
	} else {
		int r = pci_dma_rw(e->pci, bus, e->buf + (dev - EDU_DMA_BUF), len, to_ram);
		if (r == -EPERM)
			edu_error(e, "with bus mastering off", bus, len);
		else if (r < 0)
			edu_error(e, "faulted (IOMMU) or left guest RAM", bus, len);
	}
	e->dma_cmd &= ~(uint64_t)EDU_DMA_RUN;
	if (e->dma_cmd & EDU_DMA_RAISE)
		edu_raise(e, EDU_DMA_IRQ);
}

static bool edu_size_ok(uint64_t off, unsigned size)
{
	return off < EDU_REG_DMA_SRC ? size == 4 : size == 4 || size == 8;
}

static uint64_t edu_read(void *opaque, uint64_t off, unsigned size)
{
	struct edu *e = opaque;
	if (!edu_size_ok(off, size))
		return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	switch (off) {
	case EDU_REG_ID: return EDU_ID;
	case EDU_REG_ALIVE: return e->alive;
	case EDU_REG_FACT: return e->fact;
	case EDU_REG_STATUS: return e->status;
	case EDU_REG_IRQ_STATUS: return e->irq_status;
	case EDU_REG_DMA_SRC: return e->dma_src;
	case EDU_REG_DMA_DST: return e->dma_dst;
	case EDU_REG_DMA_CNT: return e->dma_cnt;
	case EDU_REG_DMA_CMD: return e->dma_cmd;
	default: return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	}
}

static void edu_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct edu *e = opaque;
	if (!edu_size_ok(off, size))
		return;
	/* QEMU ignores DMA register writes while a transfer runs; here none is
	 * ever running between two accesses, so every write lands. */
	switch (off) {
	case EDU_REG_ALIVE:
		e->alive = ~(uint32_t)val;
		break;
	case EDU_REG_FACT:
		e->fact = edu_factorial((uint32_t)val);
		if (e->status & EDU_STATUS_IRQFACT)
			edu_raise(e, EDU_FACT_IRQ);
		break;
	case EDU_REG_STATUS:
		e->status = (e->status & ~EDU_STATUS_IRQFACT) | ((uint32_t)val & EDU_STATUS_IRQFACT);
		break;
	case EDU_REG_IRQ_RAISE:
		edu_raise(e, (uint32_t)val);
		break;
	case EDU_REG_IRQ_ACK:
		edu_lower(e, (uint32_t)val);
		break;
	case EDU_REG_DMA_SRC:
		e->dma_src = val;
		break;
	case EDU_REG_DMA_DST:
		e->dma_dst = val;
		break;
	case EDU_REG_DMA_CNT:
		e->dma_cnt = val;
		break;
	case EDU_REG_DMA_CMD:
		/* QEMU's rule: a command without the start bit is ignored */
		if (!(val & EDU_DMA_RUN))
			break;
		e->dma_cmd = val;
		edu_dma(e);
		break;
	default:
		break;
	}
}

static const struct bus_ops edu_ops = {
	.read = edu_read,
	.write = edu_write,
};

/* ---- snapshots ---- */

/*
 * Everything the guest can read back: the PCI function (with MSI), the
 * registers and the DMA buffer. Nothing is ever running between two
 * accesses here (factorial and DMA finish inside the register write, see
 * above), so there is no timer or transfer to save: a snapshot with the
 * busy bits set is refused. An interrupt that was raised is in irq_status,
 * and with INTx in the PCI function's line level, which pci restores.
 */
struct edu_snap {
	uint32_t alive, fact, status, irq_status;
	uint64_t dma_src, dma_dst, dma_cnt, dma_cmd;
	uint8_t buf[EDU_DMA_SIZE];
};
_Static_assert(sizeof(struct edu_snap) == 48 + EDU_DMA_SIZE, "file layout: no hidden padding");

static int edu_snap_save(void *opaque, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct edu *e = opaque;
	pci_dev_snap_save(e->pci, b);
	struct edu_snap s;
	memset(&s, 0, sizeof(s));
	pci_dev_lock(e->pci);
	s.alive = e->alive;
	s.fact = e->fact;
	s.status = e->status;
	s.irq_status = e->irq_status;
	s.dma_src = e->dma_src;
	s.dma_dst = e->dma_dst;
	s.dma_cnt = e->dma_cnt;
	s.dma_cmd = e->dma_cmd;
	memcpy(s.buf, e->buf, sizeof(s.buf));
	pci_dev_unlock(e->pci);
	snap_put(b, &s, sizeof(s));
	return 0;
}

static int edu_snap_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct edu *e = opaque;
	if (version != 1) {
		snprintf(err, n, "edu: version %u unknown", version);
		return -1;
	}
	if (pci_dev_snap_load(e->pci, c, err, n) < 0)
		return -1;
	struct edu_snap s;
	snap_get(c, &s, sizeof(s));
	if (c->bad) {
		snprintf(err, n, "edu: truncated");
		return -1;
	}
	if (s.status & ~(uint32_t)EDU_STATUS_IRQFACT) {
		snprintf(err, n, "edu: status %#x", s.status);
		return -1;
	}
	if (s.dma_cmd & EDU_DMA_RUN) {
		snprintf(err, n, "edu: dma command %#llx: a transfer running", (unsigned long long)s.dma_cmd);
		return -1;
	}
	pci_dev_lock(e->pci);
	e->alive = s.alive;
	e->fact = s.fact;
	e->status = s.status;
	e->irq_status = s.irq_status;
	e->dma_src = s.dma_src;
	e->dma_dst = s.dma_dst;
	e->dma_cnt = s.dma_cnt;
	e->dma_cmd = s.dma_cmd;
	memcpy(e->buf, s.buf, sizeof(e->buf));
	pci_dev_unlock(e->pci);
	return 0;
}

static int edu_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct edu *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	const struct pci_dev_info info = {
		.vendor_id = EDU_VENDOR,
		.device_id = EDU_DEVICE,
		.subsys_vendor_id = 0x1af4, /* QEMU's default subsystem ids */
		.subsys_id = 0x1100,
		.revision = EDU_REVISION,
		.class_code = EDU_CLASS,
		.intx_pin = 1,
		.name = "edu",
	};
	e->pci = pci_dev_add(env->pci, &info);
	if (!e->pci) {
		int r = -errno;
		free(e);
		return r;
	}
	/* From here the function is on the bus, its BAR pointing at e: kept
	 * (and destroyed) also when a step below fails. */
	*dev = e;
	int r;
	if (!pci_bar_add_type(e->pci, EDU_BAR, PCI_BAR_TYPE_MEM32, EDU_BAR_SIZE, &edu_ops, e))
		return -errno;
	if ((r = pci_msi_init(e->pci)) < 0)
		return r;
	/* kvm-unit-tests' edu library never turns memory decoding on: it
	 * relies on the BIOS having done it, as SeaBIOS does under QEMU. */
	pci_dev_firmware_enable(e->pci);
	return pci_dev_reset_mark(e->pci);
}

/* Registers and buffer as created (all zero), then the function: INTx
 * low, MSI off, memory decoding as firmware left it. */
static void edu_reset(void *dev)
{
	struct edu *e = dev;
	pci_dev_lock(e->pci);
	e->alive = e->fact = e->status = e->irq_status = 0;
	e->dma_src = e->dma_dst = e->dma_cnt = e->dma_cmd = 0;
	memset(e->buf, 0, sizeof(e->buf));
	e->warned = false;
	pci_dev_unlock(e->pci);
	pci_dev_reset(e->pci);
}

static void edu_destroy(void *dev)
{
	free(dev);
}

static int edu_count(const struct vm_config *cfg)
{
	return cfg->edu;
}

const struct dev_ops edu_dev_ops = {
	.name = "edu",
	.desc = "edu",
	.count = edu_count,
	.create = edu_create,
	.reset = edu_reset,
	.snap = { .name = "edu", .version = 1, .save = edu_snap_save, .load = edu_snap_load },
	.destroy = edu_destroy,
};
