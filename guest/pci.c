/*
 * pci: bus-0 enumeration through configuration mechanism #1, and the ring-0
 * half of SYS_PCI_DEV. Every configuration access is two port exits to the
 * VMM, so the scan runs once and keeps what the drivers need; nothing here
 * touches a device's BARs.
 */
#include "pci.h"

#include "apic.h"
#include "arch.h"
#include "clock.h"
#include "console.h"
#include "layout.h"
#include "mm.h"

#define PCI_MAX_FUNCS USER_PCI_FUNCS

#define CFG_VENDOR 0x00
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_CLASS_REV 0x08
#define CFG_HEADER 0x0e
#define CFG_BAR0 0x10
#define CFG_SUBSYS 0x2c
#define CFG_CAP_PTR 0x34

#define CMD_IO 0x1
#define CMD_MEM 0x2
#define CMD_MASTER 0x4
#define CMD_INTX_OFF 0x400
#define STATUS_CAPS 0x10

#define CAP_MSIX 0x11
#define CAP_VENDOR 0x09
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

static struct pci_udev pci_funcs[PCI_MAX_FUNCS];
static unsigned pci_nfuncs;
static bool pci_scanned;

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void cfg_select(const struct pci_udev *d, unsigned off)
{
	outl(0xcf8, 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
			    (uint32_t)d->fn << 8 | (off & 0xfc));
}

static uint32_t cfg_read32(const struct pci_udev *d, unsigned off)
{
	cfg_select(d, off);
	return inl(0xcfc);
}

static uint16_t cfg_read16(const struct pci_udev *d, unsigned off)
{
	cfg_select(d, off);
	return inw((uint16_t)(0xcfc + (off & 2)));
}

static void cfg_write32(const struct pci_udev *d, unsigned off, uint32_t v)
{
	cfg_select(d, off);
	outl(0xcfc, v);
}

static void cfg_write16(const struct pci_udev *d, unsigned off, uint16_t v)
{
	cfg_select(d, off);
	outw((uint16_t)(0xcfc + (off & 2)), v);
}

/* Sizes BAR i (memory decoding is off meanwhile, so the all-ones probe never
 * decodes); returns the number of BAR slots it used (2 for 64-bit). */
static unsigned pci_size_bar(struct pci_udev *d, unsigned i)
{
	unsigned off = CFG_BAR0 + 4 * i;
	uint32_t lo = cfg_read32(d, off);
	struct pci_ubar *b = &d->bar[i];
	cfg_write32(d, off, 0xffffffffu);
	uint32_t mlo = cfg_read32(d, off);
	cfg_write32(d, off, lo);
	if (lo & 1) {
		uint32_t m = mlo & ~3u;
		b->kind = m ? PCI_BAR_IO : PCI_BAR_NONE;
		b->phys = lo & ~3u;
		b->size = m ? (~m + 1) & 0xffff : 0;
		return 1;
	}
	if (!(mlo & ~0xfu) && !lo) { /* no BAR here (reads back 0) */
		b->kind = PCI_BAR_NONE;
		return 1;
	}
	uint64_t mask = mlo & ~0xfull;
	uint64_t base = lo & ~0xfull;
	unsigned used = 1;
	if (((lo >> 1) & 3) == 2 && i < 5) {
		uint32_t hi = cfg_read32(d, off + 4);
		cfg_write32(d, off + 4, 0xffffffffu);
		uint32_t mhi = cfg_read32(d, off + 4);
		cfg_write32(d, off + 4, hi);
		mask |= (uint64_t)mhi << 32;
		base |= (uint64_t)hi << 32;
		b->kind = PCI_BAR_MEM64;
		used = 2;
	} else {
		mask |= 0xffffffff00000000ull;
		b->kind = PCI_BAR_MEM32;
	}
	if (!(mask & ~0xfull)) {
		b->kind = PCI_BAR_NONE;
		return used;
	}
	b->size = ~mask + 1;
	b->phys = base;
	b->prefetch = (lo >> 3) & 1;
	return used;
}

/* The capability list: the first virtio capability of each type, and MSI-X.
 * Bounded: a looping list ends after 48 entries. */
static void pci_walk_caps(struct pci_udev *d)
{
	if (!(cfg_read16(d, CFG_STATUS) & STATUS_CAPS))
		return;
	unsigned p = cfg_read32(d, CFG_CAP_PTR) & 0xfc;
	for (unsigned n = 0; p >= 0x40 && n < 48; n++) {
		uint32_t h = cfg_read32(d, p);
		uint8_t id = (uint8_t)h;
		if (id == CAP_MSIX && !d->msix_size) {
			uint32_t t = cfg_read32(d, p + 4), pba = cfg_read32(d, p + 8);
			d->msix_cap = (uint16_t)p;
			d->msix_ctrl = (uint16_t)(h >> 16);
			d->msix_size = (uint16_t)((d->msix_ctrl & 0x7ff) + 1);
			d->msix_table_bar = t & 7;
			d->msix_table_off = t & ~7u;
			d->msix_pba_bar = pba & 7;
			d->msix_pba_off = pba & ~7u;
		} else if (id == CAP_VENDOR && d->vendor == 0x1af4 && ((h >> 16) & 0xff) >= 16) {
			/* virtio_pci_cap: len, cfg_type, bar, id, pad, offset, length */
			uint32_t w1 = cfg_read32(d, p + 4);
			unsigned type = (h >> 24) & 0xff, bar = w1 & 0xff;
			if (type >= 1 && type <= PCI_VIRTIO_CAPS && bar < 6 && !d->vcap[type - 1].present) {
				struct pci_uvcap *c = &d->vcap[type - 1];
				c->present = 1;
				c->bar = (uint8_t)bar;
				c->off = cfg_read32(d, p + 8);
				c->len = cfg_read32(d, p + 12);
				if (type == PCI_VIRTIO_NOTIFY)
					d->notify_mult = cfg_read32(d, p + 16);
			}
		}
		p = (h >> 8) & 0xfc;
	}
}

static void pci_add(uint8_t dev, uint8_t fn, uint32_t id)
{
	struct pci_udev *d = &pci_funcs[pci_nfuncs++];
	d->bus = 0;
	d->dev = dev;
	d->fn = fn;
	d->vendor = (uint16_t)id;
	d->device = (uint16_t)(id >> 16);
	uint32_t cr = cfg_read32(d, CFG_CLASS_REV);
	d->revision = (uint8_t)cr;
	d->class_code = cr >> 8;
	d->header = (uint8_t)(cfg_read32(d, CFG_HEADER & 0xfc) >> 16) & 0x7f;
	if (d->header != 0)
		return; /* bridges: not ours to drive */
	uint32_t ss = cfg_read32(d, CFG_SUBSYS);
	d->subsys_vendor = (uint16_t)ss;
	d->subsys = (uint16_t)(ss >> 16);
	uint16_t cmd = cfg_read16(d, CFG_COMMAND);
	/* Decoding off while sizing: an all-ones BAR must never decode. */
	cfg_write16(d, CFG_COMMAND, cmd & (uint16_t) ~(CMD_IO | CMD_MEM));
	for (unsigned i = 0; i < 6;)
		i += pci_size_bar(d, i);
	cfg_write16(d, CFG_COMMAND, cmd);
	d->command = cmd;
	pci_walk_caps(d);
}

static const char *const bar_kind[] = { "none", "mem32", "mem64", "io" };

static void pci_print(const struct pci_udev *d)
{
	kprintf("# pci %02x:%02x.%u %04x:%04x class %06x", d->bus, d->dev, d->fn, d->vendor, d->device,
		d->class_code);
	for (unsigned i = 0; i < 6; i++)
		if (d->bar[i].kind != PCI_BAR_NONE)
			kprintf(" bar%u %s 0x%lx+0x%lx", i, bar_kind[d->bar[i].kind], d->bar[i].phys,
				d->bar[i].size);
	if (d->msix_size)
		kprintf(" msix %u@bar%u+0x%x", d->msix_size, d->msix_table_bar, d->msix_table_off);
	for (unsigned t = 0; t < PCI_VIRTIO_CAPS; t++)
		if (d->vcap[t].present)
			kprintf(" vcap%u bar%u+0x%x/0x%x", t + 1, d->vcap[t].bar, d->vcap[t].off, d->vcap[t].len);
	kprintf("\n");
}

unsigned pci_scan(bool verbose)
{
	if (pci_scanned)
		return pci_nfuncs;
	pci_scanned = true;
	for (uint8_t dev = 0; dev < 32 && pci_nfuncs < PCI_MAX_FUNCS; dev++) {
		struct pci_udev probe = { .dev = dev };
		uint32_t id = cfg_read32(&probe, CFG_VENDOR);
		if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
			continue;
		bool multi = (cfg_read32(&probe, CFG_HEADER & 0xfc) >> 16) & 0x80;
		pci_add(dev, 0, id);
		for (uint8_t fn = 1; multi && fn < 8 && pci_nfuncs < PCI_MAX_FUNCS; fn++) {
			probe.fn = fn;
			id = cfg_read32(&probe, CFG_VENDOR);
			if ((id & 0xffff) != 0xffff && (id & 0xffff) != 0)
				pci_add(dev, fn, id);
		}
	}
	if (verbose)
		for (unsigned i = 0; i < pci_nfuncs; i++)
			pci_print(&pci_funcs[i]);
	return pci_nfuncs;
}

/* Enables the function for a ring-3 driver: memory decoding and bus mastering
 * on, INTx off (the drivers use MSI-X), MSI-X enabled with the function mask
 * clear (every vector stays masked in the table until the driver unmasks it),
 * and each assigned memory BAR mapped uncached at its fixed user address. */
static long pci_open(unsigned i)
{
	struct pci_udev *d = &pci_funcs[i];
	bool any = false;
	for (unsigned b = 0; b < 6; b++) {
		struct pci_ubar *bar = &d->bar[b];
		if ((bar->kind != PCI_BAR_MEM32 && bar->kind != PCI_BAR_MEM64) || !bar->phys)
			continue; /* unassigned: refused */
		uint64_t va = USER_PCI_BASE + (uint64_t)i * USER_PCI_SLOT + (uint64_t)b * USER_PCI_BAR_MAX;
		uint64_t n = bar->size < USER_PCI_BAR_MAX ? bar->size : USER_PCI_BAR_MAX;
		n = (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		if (!d->opened)
			for (uint64_t o = 0; o < n; o += PAGE_SIZE)
				if (!mm_map_user(va + o, (bar->phys & ~(PAGE_SIZE - 1)) + o,
						 PTE_W | PTE_U | PTE_PCD | PTE_PWT | PTE_NX))
					return -12; /* ENOMEM */
		bar->va = va + (bar->phys & (PAGE_SIZE - 1));
		bar->mapped = n;
		any = true;
	}
	if (!any)
		return -6; /* ENXIO */
	uint16_t cmd = cfg_read16(d, CFG_COMMAND);
	cmd |= CMD_MEM | CMD_MASTER | CMD_INTX_OFF;
	cfg_write16(d, CFG_COMMAND, cmd);
	d->command = cfg_read16(d, CFG_COMMAND);
	if (d->msix_size) {
		uint16_t ctl = cfg_read16(d, d->msix_cap + 2);
		ctl = (uint16_t)((ctl | MSIX_ENABLE) & ~MSIX_MASKALL);
		cfg_write16(d, d->msix_cap + 2, ctl);
		d->msix_ctrl = cfg_read16(d, d->msix_cap + 2);
	}
	d->opened = 1;
	return 0;
}

const struct pci_udev *pci_find(uint16_t vendor, uint16_t device)
{
	pci_scan(false);
	for (unsigned i = 0; i < pci_nfuncs; i++)
		if (pci_funcs[i].vendor == vendor && pci_funcs[i].device == device)
			return &pci_funcs[i];
	return 0;
}

uint32_t pci_cfg_read(const struct pci_udev *d, unsigned off) { return cfg_read32(d, off); }

void pci_cfg_write(const struct pci_udev *d, unsigned off, uint32_t v) { cfg_write32(d, off, v); }

/* Interrupts are off in the caller (a syscall entry or the kernel's tests)
 * and sti;hlt is atomic, so an MSI cannot slip in between the check and the
 * HLT. */
long pci_msi_wait(long i, long seen, long timeout_ns)
{
	if (i < 0 || i >= MSI_VECTORS)
		return -22; /* EINVAL */
	uint64_t end = clock_ns() + (uint64_t)(timeout_ns > 0 ? timeout_ns : 0);
	while (u_msi_count[i] <= (uint64_t)seen) {
		uint64_t now = clock_ns();
		if (now >= end)
			break;
		/* at most 1 s per arming: the LAPIC count stays in range */
		apic_timer_oneshot_ns(end - now < 1000000000ull ? end - now : 1000000000ull);
		irq_wait();
	}
	return (long)u_msi_count[i];
}

long pci_udev_get(unsigned i, struct pci_udev *out, unsigned flags)
{
	pci_scan(false);
	if (i >= pci_nfuncs)
		return -19; /* ENODEV */
	long r = 0;
	if (flags & PCI_DEV_OPEN)
		r = pci_open(i);
	struct pci_udev *d = &pci_funcs[i];
	/* Physical destination mode, this CPU's APIC ID (8 bits: no remapping). */
	d->msi_addr = 0xfee00000ull | (uint64_t)(apic_id() & 0xff) << 12;
	d->msi_data_base = VEC_MSI_BASE;
	d->msi_count = MSI_VECTORS;
	/* One instruction instead of a byte loop (out was checked by sys.c). */
	uint64_t n = sizeof(*d);
	void *dst = out;
	const void *src = d;
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
	return r;
}
