/*
 * vfio_pci: the guest's PCI function for a host device opened by vfio.c
 * (see vfio.h for what is the device's and what hvmm virtualizes).
 *
 * Everything the guest hands us — configuration offsets, BAR offsets and
 * sizes, MSI messages — is checked against the region sizes VFIO reported
 * before it becomes a pread/pwrite offset; pci.c has already bounded each
 * access to its BAR or to one dword of configuration space.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evloop.h"
#include "irq.h"
#include "pci.h"
#include "pci_priv.h"
#include "sandbox.h"
#include "snapshot.h"
#include "util.h"
#include "vfio.h"
#include "device.h"
#include "vm_config.h"

#define VFIO_PAGE 4096ull
#define VFIO_CFG_SNAP 256 /* the header and the capability list */
#define VFIO_CAP_HOPS 48  /* a looping capability list ends here */
#define MSI_CTRL_PVM 0x0100
#define MSI_CTRL_MMC 0x000e

struct vfio_pci;

struct vfio_seg {
	uint64_t off, size; /* in the BAR */
	void *hva;          /* its mapping of the device fd */
	bool live;          /* a KVM memory slot now */
};

struct vfio_pci_bar {
	struct vfio_pci *p;
	unsigned index;
	uint64_t size; /* the region's (the guest's BAR may be rounded up) */
	unsigned nseg;
	struct vfio_seg seg[VFIO_BAR_SEGS];
};

/* An MSI-X vector's other eventfd: its trigger while the guest masks it. */
struct vfio_vec {
	struct vfio_pci *p;
	unsigned index;
	int efd;
	bool masked;
};

struct vfio_pci {
	/* The handles it was created with (struct dev_env's). */
	int vm_fd;           /* BAR slots, irqfds; -1: a fake VM (tests) */
	struct evloop *loop; /* masked MSI-X vectors' eventfds */
	struct dev_msi msi;  /* its MSI's GSI */
	struct vfio_dev dev;
	struct pci_dev *pci;
	unsigned slot_base;
	struct vfio_pci_bar bar[PCI_NUM_BARS];
	unsigned msix_cap, msix_nvec;
	bool msix_on;
	struct vfio_vec vec[PCI_MSIX_MAX_VECTORS];
	unsigned msi_cap, msi_len;
	bool msi_64, msi_on;
	int msi_gsi, msi_efd;
	uint64_t msi_addr;
	uint32_t msi_data;
	bool intx, intx_on;       /* INTx wired (kernel irqchip), and on in VFIO now */
	int intx_efd, intx_rfd;   /* its trigger (an irqfd) and KVM's resample eventfd */
	unsigned intx_gsi;        /* its IOAPIC pin (pci.c's swizzle) */
	struct vfio_pci_stats st; /* under the PCI device lock */
	bool warned;              /* a BAR mapping was refused (said once) */
	bool irq_warned;          /* VFIO refused an interrupt change (said once) */
	bool reset_warned;        /* a reset without VFIO_DEVICE_RESET (said once) */
};

static uint64_t vfio_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* ---- configuration space: the device's, through its config region ---- */

static uint32_t vfio_cfg_read(void *opaque, unsigned off, unsigned size)
{
	struct vfio_pci *p = opaque;
	const struct vfio_region *r = &p->dev.region[VFIO_PCI_CONFIG_REGION_INDEX];
	uint32_t v = 0;
	p->st.cfg_reads++;
	if (!util_range_ok(off, size, r->size) || size > 4 ||
	    pread(p->dev.fd, &v, size, (off_t)(r->offset + off)) != (ssize_t)size)
		return (uint32_t)vfio_ones(size);
	return v; /* little-endian host, little-endian bus */
}

static void vfio_cfg_write(void *opaque, unsigned off, unsigned size, uint32_t val)
{
	struct vfio_pci *p = opaque;
	const struct vfio_region *r = &p->dev.region[VFIO_PCI_CONFIG_REGION_INDEX];
	p->st.cfg_writes++;
	if (!util_range_ok(off, size, r->size) || size > 4)
		return;
	/* A write VFIO refuses (a read-only or virtualized field) is the
	 * device's answer; nothing to tell the guest. */
	if (pwrite(p->dev.fd, &val, size, (off_t)(r->offset + off)) < 0)
		return;
}

static const struct pci_cfg_ops vfio_cfg_ops = {
	.read = vfio_cfg_read,
	.write = vfio_cfg_write,
};

/* ---- BARs: the trapped parts, forwarded ---- */

static uint64_t vfio_bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct vfio_pci_bar *b = opaque;
	const struct vfio_region *r = &b->p->dev.region[b->index];
	uint64_t v = 0;
	b->p->st.bar_reads++;
	if (size > 8 || !util_range_ok(off, size, b->size) ||
	    pread(b->p->dev.fd, &v, size, (off_t)(r->offset + off)) != (ssize_t)size)
		return vfio_ones(size);
	return v;
}

static void vfio_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct vfio_pci_bar *b = opaque;
	const struct vfio_region *r = &b->p->dev.region[b->index];
	b->p->st.bar_writes++;
	if (size > 8 || !util_range_ok(off, size, b->size))
		return;
	if (pwrite(b->p->dev.fd, &val, size, (off_t)(r->offset + off)) < 0)
		return; /* as a device that ignores the write */
}

static const struct bus_ops vfio_bar_ops = {
	.read = vfio_bar_read,
	.write = vfio_bar_write,
};

/* ---- BARs: the mapped parts, as KVM memory slots ---- */

/* Install (size > 0) or delete one BAR slot. A guest can make KVM refuse
 * one (two BARs programmed to overlap): that piece then reads all-ones, as
 * an unclaimed address would, and hvmm says so once. */
static bool vfio_slot(struct vfio_pci *p, unsigned slot, uint64_t gpa, uint64_t size, void *hva)
{
	if (p->vm_fd < 0)
		return true; /* a fake VM: the bookkeeping is the test */
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) == 0)
		return true;
	if (size && !p->warned)
		util_err("%s: BAR mapping at %#llx (%llu bytes): KVM_SET_USER_MEMORY_REGION: %s "
			 "(overlapping BARs?)", pci_dev_name(p->pci), (unsigned long long)gpa,
			 (unsigned long long)size, strerror(errno));
	p->warned = true;
	return false;
}

/* pci.c: where BAR `bar` decodes changed (vCPU thread, device lock held).
 * A moved BAR's slots are deleted first: KVM refuses overlapping slots. */
static void vfio_bar_hook(void *opaque, unsigned bar, uint64_t addr, bool decoding)
{
	struct vfio_pci *p = opaque;
	struct vfio_pci_bar *b = &p->bar[bar];
	for (unsigned s = 0; s < b->nseg; s++) {
		struct vfio_seg *g = &b->seg[s];
		unsigned slot = p->slot_base + bar * VFIO_BAR_SEGS + s;
		if (g->live) {
			vfio_slot(p, slot, 0, 0, g->hva);
			g->live = false;
			p->st.unmaps++;
		}
		if (decoding && vfio_slot(p, slot, addr + g->off, g->size, g->hva)) {
			g->live = true;
			p->st.maps++;
		}
	}
}

/*
 * The pieces of [0, size) that may be mapped: the region's mmap areas (all
 * of it without a sparse list) minus the pages of [trap_a, trap_b) ranges,
 * page-aligned. Returns how many (<= VFIO_BAR_SEGS).
 */
static unsigned vfio_segments(const struct vfio_region *r, const uint64_t trap[][2], unsigned ntrap,
			      struct vfio_seg *out)
{
	uint64_t piece[VFIO_MAX_AREAS + 4][2];
	unsigned n = 0;
	if (r->sparse) {
		for (unsigned i = 0; i < r->nr_areas; i++)
			if (util_range_ok(r->areas[i].offset, r->areas[i].size, r->size)) {
				piece[n][0] = r->areas[i].offset;
				piece[n][1] = r->areas[i].offset + r->areas[i].size;
				n++;
			}
	} else {
		piece[0][0] = 0;
		piece[0][1] = r->size;
		n = 1;
	}
	for (unsigned t = 0; t < ntrap; t++) {
		uint64_t a = trap[t][0] & ~(VFIO_PAGE - 1), b = (trap[t][1] + VFIO_PAGE - 1) & ~(VFIO_PAGE - 1);
		unsigned m = n;
		for (unsigned i = 0; i < m; i++) {
			uint64_t lo = piece[i][0], hi = piece[i][1];
			if (hi <= a || lo >= b)
				continue;
			piece[i][1] = lo < a ? a : lo; /* the part below (may be empty) */
			if (hi > b && n < ARRAY_SIZE(piece)) {
				piece[n][0] = b;
				piece[n][1] = hi;
				n++;
			}
		}
	}
	unsigned k = 0;
	for (unsigned i = 0; i < n && k < VFIO_BAR_SEGS; i++) {
		uint64_t lo = (piece[i][0] + VFIO_PAGE - 1) & ~(VFIO_PAGE - 1), hi = piece[i][1] & ~(VFIO_PAGE - 1);
		if (hi > lo)
			out[k++] = (struct vfio_seg){ .off = lo, .size = hi - lo };
	}
	return k;
}

static void vfio_bar_map(struct vfio_pci *p, struct vfio_pci_bar *b)
{
	const struct vfio_region *r = &p->dev.region[b->index];
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP))
		return;
	uint64_t trap[2][2];
	unsigned ntrap = 0;
	struct pci_msix *m = p->pci->msix;
	/* The table and PBA pages stay trapped even when VFIO would let us map
	 * them (MSIX_MAPPABLE): the guest's table is hvmm's, not the device's. */
	if (m && m->bar == b->index) {
		trap[ntrap][0] = m->table_off;
		trap[ntrap++][1] = m->table_off + (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE;
		trap[ntrap][0] = m->pba_off;
		trap[ntrap++][1] = m->pba_off + (m->nvec + 63) / 64 * 8;
	}
	struct vfio_seg seg[VFIO_BAR_SEGS];
	unsigned n = vfio_segments(r, trap, ntrap, seg);
	int prot = (r->flags & VFIO_REGION_INFO_FLAG_READ ? PROT_READ : 0) |
		   (r->flags & VFIO_REGION_INFO_FLAG_WRITE ? PROT_WRITE : 0);
	for (unsigned i = 0; i < n; i++) {
		void *hva = mmap(NULL, seg[i].size, prot, MAP_SHARED, p->dev.fd, (off_t)(r->offset + seg[i].off));
		if (hva == MAP_FAILED)
			continue; /* that piece stays trapped: slower, still right */
		seg[i].hva = hva;
		b->seg[b->nseg++] = seg[i];
		p->st.mapped_bytes += seg[i].size;
	}
}

static int vfio_bars(struct vfio_pci *p, const uint8_t *snap, char *err, size_t errlen)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct vfio_region *r = &p->dev.region[i];
		uint32_t raw = (uint32_t)snap[PCI_BAR0 + 4 * i] | (uint32_t)snap[PCI_BAR0 + 4 * i + 1] << 8;
		if (!r->size)
			continue;
		struct vfio_pci_bar *b = &p->bar[i];
		*b = (struct vfio_pci_bar){ .p = p, .index = i, .size = r->size };
		enum pci_bar_type type;
		uint64_t size = r->size;
		if (raw & PCI_BAR_SPACE_IO) {
			type = PCI_BAR_TYPE_IO;
			if (size > 256) {
				snprintf(err, errlen, "BAR %u: an I/O BAR of %llu bytes (hvmm places up to 256)", i,
					 (unsigned long long)size);
				return -ENOSPC;
			}
			size = size < 4 ? 4 : size;
		} else {
			type = (raw & 0x6) == PCI_BAR_MEM64 ? PCI_BAR_TYPE_MEM64 : PCI_BAR_TYPE_MEM32;
			if (type == PCI_BAR_TYPE_MEM64 && i == PCI_NUM_BARS - 1) {
				snprintf(err, errlen, "BAR %u: a 64-bit BAR in the last slot", i);
				return -EINVAL;
			}
			size = size < VFIO_PAGE ? VFIO_PAGE : size;
		}
		while (size & (size - 1)) /* BARs are powers of two; a region may not say so */
			size += size & -size;
		if (!pci_bar_add_type(p->pci, i, type, size, &vfio_bar_ops, b)) {
			snprintf(err, errlen, "BAR %u (%llu bytes): %s", i, (unsigned long long)size,
				 errno == ENOSPC ? "does not fit hvmm's 512 MiB PCI window" : strerror(errno));
			return -errno;
		}
		if (type != PCI_BAR_TYPE_IO)
			p->pci->cfg[PCI_BAR0 + 4 * i] |= (uint8_t)(raw & 0x8); /* prefetchable, as the device says */
		if (type == PCI_BAR_TYPE_MEM64)
			i++;
	}
	return 0;
}

/* ---- capabilities ---- */

/* Offset of capability id in the snapshot's list, 0 if none. */
static unsigned vfio_find_cap(const uint8_t *snap, uint8_t id)
{
	if (!(snap[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return 0;
	unsigned off = snap[PCI_CAP_PTR] & ~3u;
	for (unsigned hops = 0; off >= PCI_HEADER_END && off < VFIO_CFG_SNAP - 1 && hops < VFIO_CAP_HOPS; hops++) {
		if (snap[off] == id)
			return off;
		off = snap[off + 1] & ~3u;
	}
	return 0;
}

/* A guest can make VFIO refuse interrupt changes (MSI and MSI-X on at
 * once): say so the first time only, so it cannot fill the host's log. */
static bool vfio_irq_warn(struct vfio_pci *p)
{
	bool first = !p->irq_warned;
	p->irq_warned = true;
	return first;
}

/* INTx on or off in VFIO (it takes one kind of interrupt at a time). */
static void vfio_intx_set(struct vfio_pci *p, bool on)
{
	if (!p->intx || on == p->intx_on)
		return;
	int r = vfio_set_irqs(&p->dev, VFIO_PCI_INTX_IRQ_INDEX, 0, on ? 1 : 0, &p->intx_efd);
	if (!r && on)
		r = vfio_set_irq_unmask_fd(&p->dev, VFIO_PCI_INTX_IRQ_INDEX, p->intx_rfd);
	if (r < 0 && vfio_irq_warn(p))
		util_err("%s: INTx %s: VFIO_DEVICE_SET_IRQS: %s", pci_dev_name(p->pci), on ? "on" : "off",
			 strerror(-r));
	p->intx_on = on;
}

/* The trigger vector i should have now: its irqfd, or while masked the
 * eventfd hvmm reads. */
static int vfio_vec_fd(struct vfio_pci *p, unsigned i)
{
	return p->vec[i].masked ? p->vec[i].efd : pci_msix_vector_fd(p->pci, i);
}

/* The guest turned MSI-X on or off: hand the vectors' eventfds to the
 * device, or take them back. */
static void vfio_msix_update(struct vfio_pci *p)
{
	bool on = pci_cfg16(p->pci, p->msix_cap + 2) & PCI_MSIX_CTRL_ENABLE;
	if (on == p->msix_on)
		return;
	int fds[PCI_MSIX_MAX_VECTORS];
	for (unsigned i = 0; i < p->msix_nvec; i++)
		fds[i] = vfio_vec_fd(p, i);
	if (on)
		vfio_intx_set(p, false);
	int r = vfio_set_irqs(&p->dev, VFIO_PCI_MSIX_IRQ_INDEX, 0, on ? p->msix_nvec : 0, fds);
	if (r < 0 && vfio_irq_warn(p))
		util_err("%s: MSI-X %s: VFIO_DEVICE_SET_IRQS: %s", pci_dev_name(p->pci), on ? "on" : "off",
			 strerror(-r));
	p->msix_on = on;
	if (!p->msi_on && !p->msix_on)
		vfio_intx_set(p, true);
}

/* pci_msix.c: vector vec was masked or unmasked (vCPU thread, MSI-X lock
 * held). While MSI-X is on, swap that vector's trigger. */
static void vfio_mask_hook(void *opaque, unsigned vec, bool masked)
{
	struct vfio_pci *p = opaque;
	if (vec >= p->msix_nvec)
		return;
	p->vec[vec].masked = masked;
	if (!p->msix_on)
		return; /* vfio_msix_update hands over the current choice */
	int fd = vfio_vec_fd(p, vec);
	int r = vfio_set_irqs(&p->dev, VFIO_PCI_MSIX_IRQ_INDEX, vec, 1, &fd);
	if (r < 0 && vfio_irq_warn(p))
		util_err("%s: MSI-X vector %u %s: VFIO_DEVICE_SET_IRQS: %s", pci_dev_name(p->pci), vec,
			 masked ? "masked" : "unmasked", strerror(-r));
}

/* Event loop: the device raised a vector the guest has masked. pci_msix
 * sets its pending bit (or, if the guest unmasked it meanwhile, sends it). */
static void vfio_masked_event(void *opaque, uint32_t events)
{
	(void)events;
	struct vfio_vec *v = opaque;
	uint64_t n;
	if (read(v->efd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		pci_msix_notify(v->p->pci, v->index);
}

static int vfio_msix_setup(struct vfio_pci *p, const uint8_t *snap, char *err, size_t errlen)
{
	unsigned cap = vfio_find_cap(snap, PCI_CAP_ID_MSIX);
	if (!cap || cap > VFIO_CFG_SNAP - 12)
		return 0;
	uint16_t ctrl = (uint16_t)(snap[cap + 2] | snap[cap + 3] << 8);
	uint32_t t = (uint32_t)snap[cap + 4] | (uint32_t)snap[cap + 5] << 8 | (uint32_t)snap[cap + 6] << 16 |
		     (uint32_t)snap[cap + 7] << 24;
	uint32_t b = (uint32_t)snap[cap + 8] | (uint32_t)snap[cap + 9] << 8 | (uint32_t)snap[cap + 10] << 16 |
		     (uint32_t)snap[cap + 11] << 24;
	unsigned nvec = (ctrl & 0x7ffu) + 1;
	if (nvec > PCI_MSIX_MAX_VECTORS)
		nvec = PCI_MSIX_MAX_VECTORS; /* the guest sees fewer; the rest never fire */
	if ((t & 7) != (b & 7)) {
		snprintf(err, errlen, "MSI-X table and PBA in different BARs (%u, %u): not supported", t & 7,
			 b & 7);
		return -ENOTSUP;
	}
	memcpy(p->pci->cfg + cap, snap + cap, 12);
	pci_dev_cfg_own(p->pci, cap, 12, PCI_CFG_HVMM);
	int r = pci_msix_init_at(p->pci, cap, nvec, t & 7, t & ~7u, b & ~7u);
	if (r < 0) {
		snprintf(err, errlen, "MSI-X (%u vectors, table %#x, PBA %#x in BAR %u): %s", nvec, t & ~7u,
			 b & ~7u, t & 7, strerror(-r));
		return r;
	}
	p->msix_cap = cap;
	p->msix_nvec = nvec;
	for (unsigned i = 0; i < nvec; i++) {
		struct vfio_vec *v = &p->vec[i];
		v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->efd < 0 || (r = evloop_add(p->loop, v->efd, EPOLLIN, vfio_masked_event, v)) < 0) {
			snprintf(err, errlen, "MSI-X vector %u: %s", i, strerror(v->efd < 0 ? errno : -r));
			return v->efd < 0 ? -errno : r;
		}
	}
	pci_msix_set_mask_hook(p->pci, vfio_mask_hook, p);
	return 0;
}

static int vfio_msi_setup(struct vfio_pci *p, const uint8_t *snap, char *err, size_t errlen)
{
	unsigned cap = vfio_find_cap(snap, PCI_CAP_ID_MSI);
	if (!cap)
		return 0;
	uint16_t ctrl = (uint16_t)(snap[cap + 2] | snap[cap + 3] << 8);
	p->msi_64 = ctrl & PCI_MSI_CTRL_64BIT;
	/* id, next, control, address (4 or 8), data (2) and, with per-vector
	 * masking, reserved (2), mask (4), pending (4): hvmm owns all of it
	 * and shows no masking (the mask bits read 0). */
	unsigned base = p->msi_64 ? 14 : 10;
	p->msi_len = ctrl & MSI_CTRL_PVM ? base + 10 : base;
	if (cap + p->msi_len > VFIO_CFG_SNAP)
		return 0;
	p->msi_cap = cap;
	uint8_t *c = p->pci->cfg + cap, *w = p->pci->wmask + cap;
	memcpy(c, snap + cap, base);
	memset(c + base, 0, p->msi_len - base);
	/* One vector (MMC 0), disabled, no per-vector masking. */
	pci_set16(c + 2, ctrl & PCI_MSI_CTRL_64BIT);
	pci_set16(w + 2, PCI_MSI_CTRL_ENABLE);
	pci_set32(w + 4, 0xfffffffcu);
	if (p->msi_64)
		pci_set32(w + 8, 0xffffffffu);
	pci_set16(w + (p->msi_64 ? 12 : 8), 0xffff);
	pci_dev_cfg_own(p->pci, cap, p->msi_len, PCI_CFG_HVMM);
	/* Its GSI and irqfd now, before the vCPU threads (each has a private
	 * fd table) — as pci_msix.c does for its vectors. */
	int gsi = p->msi.gsi_alloc && p->msi.gsi_route ? p->msi.gsi_alloc(p->msi.ctx) : -ENOSYS;
	if (gsi < 0) {
		snprintf(err, errlen, "MSI: no GSI: %s", strerror(-gsi));
		return gsi;
	}
	p->msi_gsi = gsi;
	p->msi_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->msi_efd < 0) {
		snprintf(err, errlen, "MSI: eventfd: %s", strerror(errno));
		return -errno;
	}
	struct kvm_irqfd irqfd = { .fd = (uint32_t)p->msi_efd, .gsi = (uint32_t)gsi };
	if (p->vm_fd >= 0 && ioctl(p->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		snprintf(err, errlen, "MSI: KVM_IRQFD: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* The guest wrote the MSI capability: follow its enable bit and message. */
static void vfio_msi_update(struct vfio_pci *p)
{
	const uint8_t *c = p->pci->cfg + p->msi_cap;
	bool on = (c[2] & PCI_MSI_CTRL_ENABLE) != 0;
	uint64_t addr = pci_cfg32(p->pci, p->msi_cap + 4);
	if (p->msi_64)
		addr |= (uint64_t)pci_cfg32(p->pci, p->msi_cap + 8) << 32;
	uint32_t data = pci_cfg16(p->pci, p->msi_cap + (p->msi_64 ? 12 : 8));
	if (on && (!p->msi_on || addr != p->msi_addr || data != p->msi_data))
		p->msi.gsi_route(p->msi.ctx, (unsigned)p->msi_gsi, addr, data);
	p->msi_addr = addr;
	p->msi_data = data;
	if (on == p->msi_on)
		return;
	if (on)
		vfio_intx_set(p, false);
	int r = vfio_set_irqs(&p->dev, VFIO_PCI_MSI_IRQ_INDEX, 0, on ? 1 : 0, &p->msi_efd);
	if (r < 0 && vfio_irq_warn(p))
		util_err("%s: MSI %s: VFIO_DEVICE_SET_IRQS: %s", pci_dev_name(p->pci), on ? "on" : "off",
			 strerror(-r));
	p->msi_on = on;
	if (!p->msi_on && !p->msix_on)
		vfio_intx_set(p, true);
}

/* pci.c: a configuration write at 0x40 and above (device lock held). */
static void vfio_config_hook(void *opaque, unsigned off, unsigned size, uint32_t val)
{
	(void)val;
	struct vfio_pci *p = opaque;
	unsigned end = off + size;
	if (p->msix_cap && off < p->msix_cap + 4 && end > p->msix_cap + 2)
		vfio_msix_update(p);
	if (p->msi_cap && off < p->msi_cap + p->msi_len && end > p->msi_cap)
		vfio_msi_update(p);
}

/* INTx through KVM's in-kernel IOAPIC: an irqfd with a resample eventfd on
 * the pin pci.c wired the function to. Before the vCPUs start (fd tables). */
static int vfio_intx_setup(struct vfio_pci *p, char *err, size_t errlen)
{
	if (!p->intx)
		return 0;
	p->intx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->intx_rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->intx_efd < 0 || p->intx_rfd < 0) {
		snprintf(err, errlen, "INTx: eventfd: %s", strerror(errno));
		return -errno;
	}
	p->intx_gsi = p->pci->intx_ioapic_pin;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)p->intx_efd, .gsi = p->intx_gsi,
				   .flags = KVM_IRQFD_FLAG_RESAMPLE, .resamplefd = (uint32_t)p->intx_rfd };
	if (p->vm_fd >= 0 && ioctl(p->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		snprintf(err, errlen, "INTx: KVM_IRQFD with resample: %s", strerror(errno));
		return -errno;
	}
	vfio_intx_set(p, true);
	return 0;
}

/* ---- the function ---- */

static void vfio_pci_free(struct vfio_pci *p)
{
	/* The function stays on bus 0 (pci.c has no unplug) until the host is
	 * freed: no hook of it may reach p from here. Its BARs' and config
	 * space's ops still name p, but only a vCPU reaches those, and the
	 * vCPUs are gone before the devices. */
	if (p->pci) {
		pci_dev_lock(p->pci);
		pci_dev_set_bar_hook(p->pci, NULL, NULL);
		pci_dev_set_config_hook(p->pci, NULL, NULL);
		pci_msix_set_mask_hook(p->pci, NULL, NULL);
		pci_dev_unlock(p->pci);
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		for (unsigned s = 0; s < p->bar[i].nseg; s++)
			munmap(p->bar[i].seg[s].hva, p->bar[i].seg[s].size);
	for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++)
		if (p->vec[i].efd >= 0) {
			if (p->loop)
				evloop_del(p->loop, p->vec[i].efd); /* the loop is stopped */
			close(p->vec[i].efd);
		}
	if (p->intx_efd >= 0) {
		struct kvm_irqfd irqfd = { .fd = (uint32_t)p->intx_efd, .gsi = p->intx_gsi,
					   .flags = KVM_IRQFD_FLAG_DEASSIGN };
		if (p->vm_fd >= 0)
			ioctl(p->vm_fd, KVM_IRQFD, &irqfd);
		close(p->intx_efd);
	}
	if (p->intx_rfd >= 0)
		close(p->intx_rfd);
	if (p->msi_efd >= 0) {
		struct kvm_irqfd irqfd = { .fd = (uint32_t)p->msi_efd, .gsi = (uint32_t)p->msi_gsi,
					   .flags = KVM_IRQFD_FLAG_DEASSIGN };
		if (p->vm_fd >= 0)
			ioctl(p->vm_fd, KVM_IRQFD, &irqfd);
		close(p->msi_efd);
	}
	vfio_close(&p->dev);
	free(p);
}

/* Everything but the registry record; p freed on failure. */
static int vfio_pci_build(struct vfio_pci *p, const struct dev_env *env, char *err, size_t errlen)
{
	uint8_t snap[VFIO_CFG_SNAP];
	const struct vfio_region *cr = &p->dev.region[VFIO_PCI_CONFIG_REGION_INDEX];
	if (cr->size < VFIO_CFG_SNAP ||
	    pread(p->dev.fd, snap, sizeof(snap), (off_t)cr->offset) != (ssize_t)sizeof(snap)) {
		snprintf(err, errlen, "cannot read its configuration space");
		return -EIO;
	}
	if ((snap[PCI_HEADER_TYPE] & 0x7f) != 0) {
		snprintf(err, errlen, "header type %u (a bridge?): only endpoints can be passed through",
			 snap[PCI_HEADER_TYPE] & 0x7f);
		return -ENOTSUP;
	}
	char name[32];
	snprintf(name, sizeof(name), "vfio %s", p->dev.bdf);
	p->intx = env->cfg && env->cfg->irqchip == IRQCHIP_KERNEL && p->dev.irq_count[VFIO_PCI_INTX_IRQ_INDEX] &&
		  snap[PCI_INT_PIN] >= 1 && snap[PCI_INT_PIN] <= 4;
	const struct pci_dev_info info = {
		.vendor_id = (uint16_t)(snap[0] | snap[1] << 8),
		.device_id = (uint16_t)(snap[2] | snap[3] << 8),
		.subsys_vendor_id = (uint16_t)(snap[PCI_SUBSYS_VENDOR] | snap[PCI_SUBSYS_VENDOR + 1] << 8),
		.subsys_id = (uint16_t)(snap[PCI_SUBSYS_ID] | snap[PCI_SUBSYS_ID + 1] << 8),
		.revision = snap[PCI_REVISION],
		.class_code = (uint32_t)snap[9] | (uint32_t)snap[10] << 8 | (uint32_t)snap[11] << 16,
		/* INTx needs KVM's resampling, which only its own IOAPIC has */
		.intx_pin = p->intx ? snap[PCI_INT_PIN] : 0,
		.name = name,
	};
	p->pci = pci_dev_add(env->pci, &info);
	if (!p->pci) {
		snprintf(err, errlen, "no PCI slot left: %s", strerror(errno));
		return -errno;
	}
	/* Everything is the device's but what hvmm must see or place. */
	pci_dev_set_config_passthrough(p->pci, &vfio_cfg_ops, p);
	pci_dev_cfg_own(p->pci, PCI_COMMAND, 2, PCI_CFG_HVMM_FWD);
	pci_dev_cfg_own(p->pci, PCI_BAR0, 4 * PCI_NUM_BARS, PCI_CFG_HVMM);
	pci_dev_cfg_own(p->pci, PCI_ROM_BAR, 4, PCI_CFG_HVMM); /* no ROM: reads 0, takes no writes */
	pci_dev_cfg_own(p->pci, PCI_INT_LINE, 2, PCI_CFG_HVMM);
	int r;
	if ((r = vfio_bars(p, snap, err, errlen)) < 0 || (r = vfio_msix_setup(p, snap, err, errlen)) < 0 ||
	    (r = vfio_msi_setup(p, snap, err, errlen)) < 0 || (r = vfio_intx_setup(p, err, errlen)) < 0)
		return r;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (p->bar[i].size && !(p->pci->bar[i].type == PCI_BAR_TYPE_IO))
			vfio_bar_map(p, &p->bar[i]);
	/* Decoding and bus mastering off until the guest turns them on: the
	 * device's command register follows hvmm's from here. */
	vfio_cfg_write(p, PCI_COMMAND, 2, 0);
	pci_dev_set_bar_hook(p->pci, vfio_bar_hook, p);
	pci_dev_set_config_hook(p->pci, vfio_config_hook, p);
	if ((r = pci_dev_reset_mark(p->pci)) < 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	sandbox_allow_passthrough();
	return 0;
}

int vfio_pci_create(const struct dev_env *env, unsigned index, struct vfio_dev *v, struct vfio_pci **out,
		    char *err, size_t errlen)
{
	struct vfio_pci *p = index < VFIO_MAX_DEVICES ? calloc(1, sizeof(*p)) : NULL;
	if (!p) {
		vfio_close(v);
		snprintf(err, errlen, index < VFIO_MAX_DEVICES ? "out of memory" : "at most %d passed-through devices",
			 VFIO_MAX_DEVICES);
		return index < VFIO_MAX_DEVICES ? -ENOMEM : -ENOSPC;
	}
	p->vm_fd = env->vm_fd;
	p->loop = env->loop;
	p->msi = env->msi;
	p->dev = *v;
	p->msi_efd = -1;
	p->msi_gsi = -1;
	p->intx_efd = p->intx_rfd = -1;
	for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++)
		p->vec[i] = (struct vfio_vec){ .p = p, .index = i, .efd = -1, .masked = true };
	/* the n-th --device vfio's KVM memory slots */
	p->slot_base = VFIO_SLOT_BASE + index * VFIO_SLOTS_PER_DEV;
	int r = vfio_pci_build(p, env, err, errlen);
	if (r < 0) {
		vfio_pci_free(p);
		return r;
	}
	/* A real device's state (its registers, DMA in progress, its own
	 * firmware) cannot be read out and put back: no snapshot while it is
	 * there. */
	dev_registry_unsupported(env->reg, "--device vfio");
	*out = p;
	return 0;
}

void vfio_pci_destroy(struct vfio_pci *p)
{
	if (p)
		vfio_pci_free(p);
}

bool vfio_pci_stats(const struct dev_registry *r, unsigned i, struct vfio_pci_stats *out, const char **bdf)
{
	struct vfio_pci *p = dev_find(r, vfio_dev_ops.name, (int)i);
	if (!p)
		return false;
	pci_dev_lock(p->pci);
	*out = p->st;
	pci_dev_unlock(p->pci);
	*bdf = p->dev.bdf;
	return true;
}

const struct vfio_dev *vfio_pci_dev(const struct dev_registry *r, unsigned i)
{
	struct vfio_pci *p = dev_find(r, vfio_dev_ops.name, (int)i);
	return p ? &p->dev : NULL;
}

/* ---- the registry's type ---- */

static int vfio_count(const struct vm_config *cfg)
{
	return cfg->nr_vfio;
}

/* The host not set up for passthrough, or a function hvmm cannot offer
 * (no slot, an unsupported kind): the user's to fix; the rest the host's. */
static int vfio_dev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	const char *bdf = env->cfg->vfio[i];
	char why[256] = "no PCI host";
	struct vfio_dev v;
	int r = env->pci && env->mem ? vfio_open(&v, bdf, env->mem, why, sizeof(why)) : HVMM_EXIT_HOST;
	if (r) {
		snprintf(err, n, "--device vfio,host=%s: %s", bdf, why);
		return r == HVMM_EXIT_USAGE ? DEV_ERR_USAGE : -EIO;
	}
	if ((r = vfio_pci_create(env, (unsigned)i, &v, (struct vfio_pci **)dev, why, sizeof(why))) < 0) {
		snprintf(err, n, "--device vfio,host=%s: %s", bdf, why);
		return r == -ENOSPC || r == -ENOTSUP ? DEV_ERR_USAGE : r;
	}
	return 0;
}

static void vfio_dev_destroy(void *dev)
{
	vfio_pci_free(dev);
}

/*
 * A host reset of the function: what hvmm virtualizes back to how it was
 * created (BARs unmapped, MSI and MSI-X off with every vector masked, the
 * interrupts taken back from the device, decoding and bus mastering off in
 * the device too), then the device's own registers by VFIO_DEVICE_RESET
 * where the kernel offers one (FLR, a PM or bus reset). A function with no
 * reset keeps its registers, as under QEMU: said once.
 */
static void vfio_dev_reset(void *dev)
{
	struct vfio_pci *p = dev;
	pci_dev_reset(p->pci);
	pci_dev_lock(p->pci);
	if (p->msix_cap)
		vfio_msix_update(p);
	if (p->msi_cap)
		vfio_msi_update(p);
	vfio_cfg_write(p, PCI_COMMAND, 2, 0);
	pci_dev_unlock(p->pci);
	int r = vfio_reset(&p->dev);
	if (r == -ENOTSUP && !p->reset_warned)
		util_err("%s: the host offers no reset for it (VFIO_DEVICE_FLAGS_RESET unset): its "
			 "registers keep their state", pci_dev_name(p->pci));
	else if (r < 0 && r != -ENOTSUP)
		util_err("%s: VFIO_DEVICE_RESET: %s", pci_dev_name(p->pci), strerror(-r));
	p->reset_warned |= r == -ENOTSUP;
}

/* No snapshot (refused by name: vfio_pci_create marks the registry). */
const struct dev_ops vfio_dev_ops = {
	.name = "vfio",
	.desc = "--device vfio",
	.count = vfio_count,
	.create = vfio_dev_create,
	.reset = vfio_dev_reset,
	.destroy = vfio_dev_destroy,
};
