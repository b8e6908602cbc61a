/*
 * pci: bus 0 — the host bridge, configuration space through mechanism #1
 * and ECAM, BAR placement and decoding (see pci.h). MSI-X and INTx live in
 * pci_msix.c.
 *
 * Configuration space is a 4 KiB byte array per function plus two masks:
 * wmask (bits the guest may write) and w1c (bits a write of 1 clears). A
 * write goes through the masks byte by byte, so read-only ids, BAR flag
 * bits, BAR sizing (a BAR's wmask is its size mask: writing all-ones reads
 * back ~(size - 1) | flags) and the capability chain need no special case;
 * afterwards the command register and BARs are re-evaluated for decoding.
 */
#include "pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu.h"
#include "pci_priv.h"
#include "util.h"
#include "vm.h"

/* The host bridge: q35's MCH ids, so guests that know QEMU know it too. */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x29c0
#define PCI_CLASS_HOST_BRIDGE 0x060000

/* CONFIG_ADDRESS: enable, bus, device, function, dword register. */
#define PCI_CA_ENABLE 0x80000000u
#define PCI_CA_MASK 0x80fffffcu
#define PCI_CF8_RANGE 8 /* 0xcf8..0xcff */
#define PCI_RESET_OFF 1 /* 0xcf9 */

static uint64_t pci_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* ---- configuration space ---- */

static struct pci_dev *pci_find(struct vm *vm, unsigned devfn)
{
	struct pci_host *h = vm->pci;
	if (!h || devfn > 0xff || (devfn & 7))
		return NULL; /* single-function devices only */
	return h->slot[devfn >> 3];
}

/* The base BAR `i` is programmed with, by its type. */
static uint64_t pci_bar_base(const struct pci_dev *d, unsigned i)
{
	uint32_t lo = pci_cfg32(d, PCI_BAR0 + 4 * i);
	switch (d->bar[i].type) {
	case PCI_BAR_TYPE_IO:
		return lo & ~0x3ull;
	case PCI_BAR_TYPE_MEM32:
		return lo & ~0xfull;
	case PCI_BAR_TYPE_MEM64:
		break;
	}
	return (lo & ~0xfull) | (uint64_t)pci_cfg32(d, PCI_BAR0 + 4 * (i + 1)) << 32;
}

/* Re-evaluate where each BAR decodes; tell the device's hook what changed. */
void pci_update_bars(struct pci_dev *d)
{
	bool mem = pci_cfg16(d, PCI_COMMAND) & PCI_CMD_MEM;
	bool io = pci_cfg16(d, PCI_COMMAND) & PCI_CMD_IO;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		if (!b->size)
			continue;
		uint64_t addr = pci_bar_base(d, i);
		bool on;
		if (b->type == PCI_BAR_TYPE_IO)
			on = io && addr >= PCI_IO_BASE && addr <= PCI_IO_END && b->size <= PCI_IO_END - addr;
		else
			on = mem && addr >= PCI_MMIO_BASE && addr <= PCI_MMIO_END &&
			     b->size <= PCI_MMIO_END - addr;
		atomic_store(&b->decode, on ? addr : 0);
		if (on == b->hook_on && (!on || addr == b->hook_addr))
			continue;
		b->hook_on = on;
		b->hook_addr = addr;
		if (d->bar_hook)
			d->bar_hook(d->bar_hook_opaque, i, addr, on);
	}
}

/* Any access that stays inside one dword of the 4 KiB space is valid. */
static bool pci_cfg_access_ok(unsigned off, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) && off < PCI_CFG_SIZE && (off & 3) + size <= 4;
}

static bool pci_cfg_ours(const struct pci_dev *d, unsigned off)
{
	return !d->cfg_ops || d->cfg_owner[off] != PCI_CFG_DEVICE;
}

static uint32_t pci_dev_cfg_read(struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0, dev = 0;
	bool any_dev = false;
	for (unsigned i = 0; i < size; i++)
		any_dev |= !pci_cfg_ours(d, off + i);
	if (any_dev) /* one read of the whole access: it stays inside a dword */
		dev = d->cfg_ops->read(d->cfg_opaque, off, size);
	for (unsigned i = 0; i < size; i++) {
		if (!pci_cfg_ours(d, off + i)) {
			v |= dev & (0xffu << (8 * i));
			continue;
		}
		uint8_t b = d->cfg[off + i];
		if (off + i == PCI_STATUS && atomic_load(&d->intx_level))
			b |= PCI_STATUS_INTX;
		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

/* The bytes of a write that reach a passed-through device, in runs of
 * bytes that go there. */
static void pci_dev_cfg_forward(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	unsigned i = 0;
	while (i < size) {
		if (d->cfg_owner[off + i] == PCI_CFG_HVMM) {
			i++;
			continue;
		}
		unsigned n = 1;
		while (i + n < size && d->cfg_owner[off + i + n] != PCI_CFG_HVMM)
			n++;
		if (n == 3) /* no 3-byte accesses: a word and a byte */
			n = 2;
		uint32_t part = (val >> (8 * i)) & (uint32_t)((1ull << (8 * n)) - 1);
		d->cfg_ops->write(d->cfg_opaque, off + i, n, part);
		i += n;
	}
}

static void pci_dev_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	uint16_t old_cmd = pci_cfg16(d, PCI_COMMAND);
	if (d->cfg_ops)
		pci_dev_cfg_forward(d, off, size, val);
	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t v = (uint8_t)(val >> (8 * i));
		if (!pci_cfg_ours(d, o))
			continue; /* the device's byte: d->cfg keeps its snapshot */
		d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (v & d->wmask[o]));
		d->cfg[o] &= (uint8_t)~(v & d->w1c[o]);
	}
	unsigned end = off + size;
	if ((off < PCI_COMMAND + 2 && end > PCI_COMMAND) ||
	    (off < PCI_BAR0 + 4 * PCI_NUM_BARS && end > PCI_BAR0))
		pci_update_bars(d);
	if ((old_cmd ^ pci_cfg16(d, PCI_COMMAND)) & PCI_CMD_INTX_DISABLE) {
		atomic_store(&d->intx_disabled, pci_cfg16(d, PCI_COMMAND) & PCI_CMD_INTX_DISABLE);
		pci_intx_update(d);
	}
	if (d->msix && off < d->msix->cap + 4 && end > d->msix->cap + 2)
		pci_msix_config_written(d);
	if (d->msi_cap && off < d->msi_cap + 4 && end > d->msi_cap + 2)
		pci_msi_config_written(d);
	if (off >= PCI_HEADER_END && d->config_hook)
		d->config_hook(d->config_hook_opaque, off, size, val);
}

uint32_t pci_config_read(struct vm *vm, unsigned devfn, unsigned off, unsigned size)
{
	struct pci_dev *d = pci_find(vm, devfn);
	if (!d || !pci_cfg_access_ok(off, size))
		return (uint32_t)pci_ones(size);
	pci_dev_lock(d);
	uint32_t v = pci_dev_cfg_read(d, off, size);
	pci_dev_unlock(d);
	return v;
}

void pci_config_write(struct vm *vm, unsigned devfn, unsigned off, unsigned size, uint32_t val)
{
	struct pci_dev *d = pci_find(vm, devfn);
	if (!d || !pci_cfg_access_ok(off, size))
		return;
	pci_dev_lock(d);
	pci_dev_cfg_write(d, off, size, val);
	pci_dev_unlock(d);
}

/* ---- mechanism #1: 0xcf8..0xcff ---- */

static uint64_t pci_cf8_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		uint32_t v = h->config_address;
		pthread_mutex_unlock(&h->lock);
		return v;
	}
	if (off == PCI_RESET_OFF && size == 1)
		return sysreset_io_read(dev_find(&h->vm->devs, "sysreset", 0));
	if (off < 4)
		return pci_ones(size); /* non-dword CONFIG_ADDRESS: nothing there */
	pthread_mutex_lock(&h->lock);
	uint32_t ca = h->config_address, low = h->config_low;
	pthread_mutex_unlock(&h->lock);
	if (!(ca & PCI_CA_ENABLE) || ((ca >> 16) & 0xff) != 0)
		return pci_ones(size);
	return pci_config_read(h->vm, (ca >> 8) & 0xff, (ca & 0xfc) | low | (unsigned)(off - 4), size);
}

static void pci_cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_host *h = opaque;
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		h->config_address = (uint32_t)val & PCI_CA_MASK;
		/* Bits 1:0 read as 0, but QEMU adds them to the data port's
		 * offset, and kvm-unit-tests rely on it: their pci_config_readw
		 * puts register 2 (the device id) in CONFIG_ADDRESS and reads
		 * 0xCFC. */
		h->config_low = (uint32_t)val & 3;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (off == PCI_RESET_OFF && size == 1) {
		sysreset_io_write(dev_find(&h->vm->devs, "sysreset", 0), (uint8_t)val);
		return;
	}
	if (off < 4)
		return;
	pthread_mutex_lock(&h->lock);
	uint32_t ca = h->config_address, low = h->config_low;
	pthread_mutex_unlock(&h->lock);
	if (!(ca & PCI_CA_ENABLE) || ((ca >> 16) & 0xff) != 0)
		return;
	pci_config_write(h->vm, (ca >> 8) & 0xff, (ca & 0xfc) | low | (unsigned)(off - 4), size,
			 (uint32_t)val);
}

static const struct bus_ops pci_cf8_ops = {
	.read = pci_cf8_read,
	.write = pci_cf8_write,
};

/* ---- ECAM: bus 0, devfn << 12 | register ---- */

static uint64_t pci_ecam_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	if (size == 8) /* two dwords, as a CPU splitting a quadword would */
		return pci_ecam_read(h, off, 4) | pci_ecam_read(h, off + 4, 4) << 32;
	return pci_config_read(h->vm, (unsigned)(off >> 12), (unsigned)(off & 0xfff), size);
}

static void pci_ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_host *h = opaque;
	if (size == 8) {
		pci_ecam_write(h, off, 4, (uint32_t)val);
		pci_ecam_write(h, off + 4, 4, val >> 32);
		return;
	}
	pci_config_write(h->vm, (unsigned)(off >> 12), (unsigned)(off & 0xfff), size, (uint32_t)val);
}

static const struct bus_ops pci_ecam_ops = {
	.read = pci_ecam_read,
	.write = pci_ecam_write,
};

/* ---- the BAR window ---- */

/* The device and BAR decoding [addr, addr+size) now in memory or I/O space,
 * device lock taken; NULL if none. */
static struct pci_dev *pci_decode(struct pci_host *h, bool io, uint64_t addr, unsigned size,
				  unsigned *bar, uint64_t *off)
{
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slot[s];
		if (!d)
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bar[i];
			uint64_t base = atomic_load(&b->decode);
			if (!base || (b->type == PCI_BAR_TYPE_IO) != io || addr < base ||
			    addr - base >= b->size || size > b->size - (addr - base))
				continue;
			pci_dev_lock(d);
			/* The guest may have moved it meanwhile (another vCPU). */
			if (atomic_load(&b->decode) == base) {
				*bar = i;
				*off = addr - base;
				return d;
			}
			pci_dev_unlock(d);
		}
	}
	return NULL;
}

/* One access to whichever BAR decodes addr, in memory or port space: the
 * MSI-X table and PBA (memory BARs only) first, else the device's own ops.
 * Reads of nothing read all ones. */
static uint64_t pci_window_access(struct pci_host *h, bool io, uint64_t addr, unsigned size,
				  bool write, uint64_t val)
{
	unsigned bar;
	uint64_t boff;
	if (!write)
		val = pci_ones(size);
	struct pci_dev *d = pci_decode(h, io, addr, size, &bar, &boff);
	if (!d)
		return val;
	if (io || !pci_msix_bar_access(d, bar, boff, size, write, &val)) {
		const struct bus_ops *ops = d->bar[bar].ops;
		if (write && ops->write)
			ops->write(d->bar[bar].opaque, boff, size, val);
		else if (!write && ops->read)
			val = ops->read(d->bar[bar].opaque, boff, size);
	}
	pci_dev_unlock(d);
	return val;
}

static uint64_t pci_window_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_window_access(opaque, false, PCI_MMIO_BASE + off, size, false, 0);
}

static void pci_window_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_window_access(opaque, false, PCI_MMIO_BASE + off, size, true, val);
}

static const struct bus_ops pci_window_ops = {
	.read = pci_window_read,
	.write = pci_window_write,
};

/* The I/O BAR window: the same dispatch in port space (no MSI-X there). */
static uint64_t pci_io_window_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_window_access(opaque, true, PCI_IO_BASE + off, size, false, 0);
}

static void pci_io_window_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_window_access(opaque, true, PCI_IO_BASE + off, size, true, val);
}

static const struct bus_ops pci_io_window_ops = {
	.read = pci_io_window_read,
	.write = pci_io_window_write,
};

/* ---- devices ---- */

static struct pci_dev *pci_dev_new(struct pci_host *h, unsigned slot, const struct pci_dev_info *info)
{
	struct pci_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->vm = h->vm;
	d->devfn = slot << 3;
	d->info = *info;
	snprintf(d->name, sizeof(d->name), "%s", info->name ? info->name : "pci");
	d->info.name = d->name;
	pthread_mutex_init(&d->lock, NULL);
	pci_set16(d->cfg + PCI_VENDOR_ID, info->vendor_id);
	pci_set16(d->cfg + PCI_DEVICE_ID, info->device_id);
	d->cfg[PCI_REVISION] = info->revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)info->class_code;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(info->class_code >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(info->class_code >> 16);
	pci_set16(d->cfg + PCI_SUBSYS_VENDOR, info->subsys_vendor_id);
	pci_set16(d->cfg + PCI_SUBSYS_ID, info->subsys_id);
	pci_set16(d->wmask + PCI_COMMAND, PCI_CMD_WRITABLE);
	pci_set16(d->w1c + PCI_STATUS, PCI_STATUS_RW1C);
	d->wmask[PCI_CACHE_LINE] = 0xff;
	d->wmask[PCI_LATENCY] = 0xff;
	d->wmask[PCI_INT_LINE] = 0xff;
	d->cap_end = PCI_HEADER_END;
	if (info->intx_pin >= 1 && info->intx_pin <= 4) {
		d->cfg[PCI_INT_PIN] = info->intx_pin;
		/* the swizzle documented in pci.h */
		d->intx_ioapic_pin = PCI_INTX_FIRST_PIN + (slot + info->intx_pin - 1) % 4;
		d->cfg[PCI_INT_LINE] = (uint8_t)d->intx_ioapic_pin;
	} else {
		d->info.intx_pin = 0;
		d->cfg[PCI_INT_LINE] = 0xff; /* "unknown / not connected" */
	}
	return d;
}

int pci_init(struct vm *vm)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm = vm;
	h->next_mmio = PCI_MMIO_BASE;
	h->next_io = PCI_IO_BASE;
	pthread_mutex_init(&h->lock, NULL);
	const struct pci_dev_info host = {
		.vendor_id = PCI_HOST_VENDOR,
		.device_id = PCI_HOST_DEVICE,
		.class_code = PCI_CLASS_HOST_BRIDGE,
		.name = "host bridge",
	};
	h->slot[0] = pci_dev_new(h, 0, &host);
	if (!h->slot[0]) {
		free(h);
		return -ENOMEM;
	}
	vm->pci = h;
	int r;
	if ((r = pci_dev_reset_mark(h->slot[0])) < 0 || (r = pci_host_snap_register(vm)) < 0 ||
	    (r = bus_register(&vm->pio, PCI_CONFIG_ADDRESS, PCI_CF8_RANGE, &pci_cf8_ops, h,
			      "pci config")) < 0 ||
	    (r = bus_register(&vm->mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, &pci_ecam_ops, h, "pci ecam")) < 0 ||
	    (r = bus_register(&vm->mmio, PCI_MMIO_BASE, PCI_MMIO_END - PCI_MMIO_BASE, &pci_window_ops, h,
			      "pci bars")) < 0 ||
	    (r = bus_register(&vm->pio, PCI_IO_BASE, PCI_IO_END - PCI_IO_BASE, &pci_io_window_ops, h,
			      "pci io bars")) < 0) {
		pci_destroy(vm);
		return r;
	}
	return 0;
}

static void pci_unregister(struct bus *b, struct pci_host *h)
{
	/* The bus has no unregister: leave the ranges pointing nowhere. */
	for (size_t i = 0; i < b->nr; i++)
		if (b->ranges[i].opaque == h)
			b->ranges[i].opaque = NULL;
}

void pci_destroy(struct vm *vm)
{
	struct pci_host *h = vm->pci;
	if (!h)
		return;
	pci_unregister(&vm->pio, h);
	pci_unregister(&vm->mmio, h);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slot[s];
		if (!d)
			continue;
		pci_msix_free(d);
		pci_dev_reset_forget(d);
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->pci = NULL;
}

struct pci_dev *pci_dev_add(struct pci_host *h, const struct pci_dev_info *info)
{
	if (!h || !info) {
		errno = EINVAL;
		return NULL;
	}
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		if (h->slot[s])
			continue;
		struct pci_dev *d = pci_dev_new(h, s, info);
		if (!d) {
			errno = ENOMEM;
			return NULL;
		}
		h->slot[s] = d;
		return d;
	}
	errno = ENOSPC;
	return NULL;
}

struct pci_dev *pci_dev_at(struct vm *vm, unsigned devfn)
{
	return pci_find(vm, devfn);
}

unsigned pci_dev_devfn(const struct pci_dev *d)
{
	return d->devfn;
}

uint64_t pci_bar_add_type(struct pci_dev *d, unsigned bar, enum pci_bar_type type, uint64_t size,
			  const struct bus_ops *ops, void *opaque)
{
	struct pci_host *h = d->vm->pci;
	bool io = type == PCI_BAR_TYPE_IO, wide = type == PCI_BAR_TYPE_MEM64;
	uint64_t min = io ? 4 : 4096, max = io ? 256 : PCI_MMIO_END - PCI_MMIO_BASE;
	if (bar >= PCI_NUM_BARS || (wide && bar + 1 >= PCI_NUM_BARS) || size < min || size > max ||
	    (size & (size - 1)) || !ops || d->bar[bar].size || d->bar[bar].upper ||
	    (wide && (d->bar[bar + 1].size || d->bar[bar + 1].upper)) || type > PCI_BAR_TYPE_IO) {
		errno = EINVAL;
		return 0;
	}
	uint64_t *cursor = io ? &h->next_io : &h->next_mmio;
	uint64_t end = io ? PCI_IO_END : PCI_MMIO_END;
	uint64_t base = (*cursor + size - 1) & ~(size - 1);
	if (base < *cursor || base > end || size > end - base) {
		errno = ENOSPC;
		return 0;
	}
	*cursor = base + size;
	d->bar[bar] = (struct pci_bar){ .size = size, .type = type, .ops = ops, .opaque = opaque,
					.hook_addr = base };
	unsigned o = PCI_BAR0 + 4 * bar;
	/* The size mask is the writable part: sizing reads back ~(size - 1)
	 * and the flag bits. */
	if (io) {
		pci_set32(d->cfg + o, (uint32_t)base | PCI_BAR_SPACE_IO);
		pci_set32(d->wmask + o, (uint32_t)~(size - 1) & ~0x3u);
		pci_set16(d->wmask + PCI_COMMAND, pci_cfg16_mask(d, PCI_COMMAND) | PCI_CMD_IO);
	} else if (!wide) {
		pci_set32(d->cfg + o, (uint32_t)base);
		pci_set32(d->wmask + o, (uint32_t)~(size - 1) & ~0xfu);
	} else {
		d->bar[bar + 1].upper = true;
		pci_set32(d->cfg + o, (uint32_t)base | PCI_BAR_MEM64);
		pci_set32(d->cfg + o + 4, (uint32_t)(base >> 32));
		pci_set32(d->wmask + o, (uint32_t)~(size - 1) & ~0xfu);
		pci_set32(d->wmask + o + 4, (uint32_t)(~(size - 1) >> 32));
	}
	return base;
}

uint64_t pci_bar_add(struct pci_dev *d, unsigned bar, uint64_t size, const struct bus_ops *ops,
		     void *opaque)
{
	return pci_bar_add_type(d, bar, PCI_BAR_TYPE_MEM64, size, ops, opaque);
}

unsigned pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len, const void *body, const void *wmask)
{
	/* dword-aligned, inside the 256-byte PCI space (the chain lives there) */
	unsigned off = (d->cap_end + 3) & ~3u;
	if (len < 2 || off + len > 256)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (body)
		memcpy(d->cfg + off + 2, body, len - 2);
	if (wmask)
		memcpy(d->wmask + off + 2, wmask, len - 2);
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	d->cap_last = off;
	d->cap_end = off + len;
	pci_set16(d->cfg + PCI_STATUS, pci_cfg16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	return off;
}

uint8_t *pci_dev_config(struct pci_dev *d)
{
	return d->cfg;
}

void pci_dev_lock(struct pci_dev *d)
{
	pthread_mutex_lock(&d->lock);
}

void pci_dev_unlock(struct pci_dev *d)
{
	pthread_mutex_unlock(&d->lock);
}

bool pci_dev_io_enabled(struct pci_dev *d)
{
	return pci_cfg16(d, PCI_COMMAND) & PCI_CMD_IO;
}

bool pci_dev_mem_enabled(struct pci_dev *d)
{
	return pci_cfg16(d, PCI_COMMAND) & PCI_CMD_MEM;
}

bool pci_dev_bus_master(struct pci_dev *d)
{
	return pci_cfg16(d, PCI_COMMAND) & PCI_CMD_MASTER;
}

uint16_t pci_dev_sid(const struct pci_dev *d)
{
	return (uint16_t)d->devfn; /* bus 0 */
}

int pci_dma_rw(struct pci_dev *d, uint64_t addr, void *buf, uint64_t len, bool write)
{
	if (!pci_dev_bus_master(d))
		return -EPERM;
	return iommu_dma_rw(d->vm->iommu, &d->vm->mem, pci_dev_sid(d), addr, buf, len, write);
}

void pci_dev_firmware_enable(struct pci_dev *d)
{
	uint16_t cmd = pci_cfg16(d, PCI_COMMAND) | PCI_CMD_MEM;
	if (pci_cfg16_mask(d, PCI_COMMAND) & PCI_CMD_IO)
		cmd |= PCI_CMD_IO;
	pci_set16(d->cfg + PCI_COMMAND, cmd);
	pci_update_bars(d);
}

void pci_dev_set_config_hook(struct pci_dev *d,
			     void (*hook)(void *opaque, unsigned off, unsigned size, uint32_t val),
			     void *opaque)
{
	d->config_hook = hook;
	d->config_hook_opaque = opaque;
}

void pci_dev_set_bar_hook(struct pci_dev *d,
			  void (*hook)(void *opaque, unsigned bar, uint64_t addr, bool decoding),
			  void *opaque)
{
	d->bar_hook = hook;
	d->bar_hook_opaque = opaque;
}

void pci_dev_set_config_passthrough(struct pci_dev *d, const struct pci_cfg_ops *ops, void *opaque)
{
	memset(d->cfg_owner, PCI_CFG_DEVICE, sizeof(d->cfg_owner));
	d->cfg_ops = ops;
	d->cfg_opaque = opaque;
}

void pci_dev_cfg_own(struct pci_dev *d, unsigned off, unsigned len, enum pci_cfg_owner owner)
{
	if (off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return;
	memset(d->cfg_owner + off, owner, len);
}

uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned bar)
{
	if (bar >= PCI_NUM_BARS || !d->bar[bar].size)
		return 0;
	return pci_bar_base(d, bar);
}

struct vm *pci_dev_vm(struct pci_dev *d)
{
	return d->vm;
}

const char *pci_dev_name(const struct pci_dev *d)
{
	return d->name;
}
