/*
 * pci_msix: MSI-X (PCI Local Bus 3.0 section 6.8.2) and INTx for pci.c's
 * devices, and the view of the interrupt remapping table for statistics.
 *
 * Every vector owns a KVM GSI from irq.c for its whole life, and (unless
 * --no-irqfd) an eventfd bound to that GSI with KVM_IRQFD, both made when
 * the device is created — before the vCPUs start, because each vCPU thread
 * has a private copy of the fd table (vcpu.c) and may deliver a pending
 * vector itself when the guest unmasks it. When the guest unmasks a vector
 * (vector mask, function mask and enable all allowing it), the entry's
 * message becomes the GSI's MSI route; from then on a notify is one eventfd
 * write and KVM posts the interrupt with hvmm off the path. While the vector
 * is masked a notify only sets its pending bit (PBA), and the message goes
 * out when the guest unmasks.
 *
 * Locking: d->msix->lock covers the vectors and is taken inside the device
 * lock (table and configuration writes) or alone (pci_msix_notify), so a
 * device may notify with or without its lock held.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommu.h"
#include "irq.h"
#include "pci.h"
#include "pci_priv.h"
#include "util.h"
#include "vm.h"

/* MSI address: 0xFEExxxxx, destination APIC ID in bits 19:12. */
#define MSI_ADDR_DEST_SHIFT 12
#define MSI_DATA_VECTOR 0xff

static bool msix_masked(const struct pci_msix *m, const struct pci_msix_vec *v)
{
	return !m->enabled || m->fmask || (v->ctrl & PCI_MSIX_ENTRY_MASKED);
}

static uint64_t msix_addr(const struct pci_msix_vec *v)
{
	return (uint64_t)v->addr_hi << 32 | v->addr_lo;
}

/* Send the vector's message now. m->lock held. */
static void msix_send(struct pci_dev *d, struct pci_msix_vec *v)
{
	struct vm *vm = d->vm;
	if (v->ir_fault) {
		/* blocked by interrupt remapping: recorded when raised */
		v->blocked++;
		iommu_ir_fault(vm->iommu, pci_dev_sid(d), msix_addr(v), v->ir_fault);
		return;
	}
	v->sent++;
	if (v->efd >= 0) {
		uint64_t one = 1;
		/* Fails only when the counter is about to overflow: KVM has not
		 * consumed 2^64-2 notifies yet, so an interrupt is due anyway. */
		if (write(v->efd, &one, sizeof(one)) < 0)
			v->sent--;
		return;
	}
	irq_signal_msi(vm, v->msg_addr, v->msg_data); /* KVM_SIGNAL_MSI, or hvmm's APICs */
}

/*
 * Bring vector i in line with its entry and masks: while it is unmasked its
 * message is the GSI's route (the IRT entry) and a pending message goes out.
 * The route stays when the vector is masked again; a masked vector never
 * fires, so a stale route is harmless, and re-unmasking an unchanged entry
 * costs no ioctl. m->lock held.
 */
static void msix_vec_update(struct pci_dev *d, unsigned i)
{
	struct pci_msix *m = d->msix;
	struct pci_msix_vec *v = &m->v[i];
	if (msix_masked(m, v)) {
		if (m->mask_hook && !v->hook_masked)
			m->mask_hook(m->mask_opaque, i, true);
		v->hook_masked = true;
		return;
	}
	/* Through the IOMMU's interrupt remapping when there is one: the route
	 * is the message the IRTE describes (re-read when the guest changes
	 * the remapping state or invalidates the entry cache). */
	v->msg_addr = msix_addr(v);
	v->msg_data = v->data;
	v->ir_fault = iommu_remap_msi(d->vm->iommu, pci_dev_sid(d), true, &v->msg_addr, &v->msg_data);
	if (v->gsi >= 0 && !v->ir_fault)
		irq_msi_route(d->vm, (unsigned)v->gsi, v->msg_addr, v->msg_data);
	if (v->pending) {
		v->pending = false;
		v->pending_sent++;
		msix_send(d, v);
	}
	if (m->mask_hook && v->hook_masked)
		m->mask_hook(m->mask_opaque, i, false);
	v->hook_masked = false;
}

/* The checks and state both kinds of MSI-X share; d->msix set on success. */
static int msix_alloc(struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off, uint32_t pba_off)
{
	if (d->msix)
		return -EEXIST;
	if (nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS || !d->bar[bar].size)
		return -EINVAL;
	uint64_t size = d->bar[bar].size;
	uint64_t tlen = (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE, plen = (nvec + 63) / 64 * 8;
	/* BIR lives in the offsets' low 3 bits: both must be 8-byte aligned. */
	if ((table_off & 7) || (pba_off & 7) || !util_range_ok(table_off, tlen, size) ||
	    !util_range_ok(pba_off, plen, size) ||
	    (table_off < pba_off + plen && pba_off < table_off + tlen))
		return -EINVAL;
	struct pci_msix *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->nvec = nvec;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++)
		m->v[i] = (struct pci_msix_vec){ .gsi = -1, .efd = -1, .ctrl = PCI_MSIX_ENTRY_MASKED,
						 .hook_masked = true };
	d->msix = m; /* from here on pci_msix_free() undoes whatever is done */
	return 0;
}

/* Each vector's GSI and irqfd. */
static int msix_vectors(struct pci_dev *d)
{
	struct pci_msix *m = d->msix;
	struct vm *vm = d->vm;
	for (unsigned i = 0; i < m->nvec; i++) {
		struct pci_msix_vec *v = &m->v[i];
		int gsi = irq_msi_alloc(vm);
		if (gsi < 0) {
			pci_msix_free(d);
			return gsi;
		}
		v->gsi = gsi;
		if (vm->cfg.no_irqfd)
			continue;
		v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->efd < 0) {
			int e = -errno;
			pci_msix_free(d);
			return e;
		}
		struct kvm_irqfd irqfd = { .fd = (uint32_t)v->efd, .gsi = (uint32_t)gsi };
		if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			int e = -errno;
			close(v->efd);
			v->efd = -1;
			pci_msix_free(d);
			return e;
		}
	}
	return 0;
}

int pci_msix_init(struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off, uint32_t pba_off)
{
	int r = msix_alloc(d, nvec, bar, table_off, pba_off);
	if (r < 0)
		return r;
	struct pci_msix *m = d->msix;
	uint8_t body[10] = { 0 }, wmask[10] = { 0 };
	pci_set16(body, (uint16_t)(nvec - 1));
	pci_set32(body + 2, table_off | bar);
	pci_set32(body + 6, pba_off | bar);
	pci_set16(wmask, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	m->cap = pci_cap_add(d, PCI_CAP_ID_MSIX, 12, body, wmask);
	if (!m->cap) {
		pci_msix_free(d);
		return -ENOSPC;
	}
	return msix_vectors(d);
}

int pci_msix_init_at(struct pci_dev *d, unsigned cap, unsigned nvec, unsigned bar, uint32_t table_off,
		     uint32_t pba_off)
{
	if (cap < PCI_HEADER_END || cap > 256 - 12)
		return -EINVAL;
	int r = msix_alloc(d, nvec, bar, table_off, pba_off);
	if (r < 0)
		return r;
	d->msix->cap = cap;
	/* Disabled, unmasked, nvec entries: the state after reset, with the
	 * table size hvmm emulates (a device with more shows fewer). */
	pci_set16(d->cfg + cap + 2, (uint16_t)(nvec - 1));
	pci_set16(d->wmask + cap + 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	return msix_vectors(d);
}

void pci_msix_set_mask_hook(struct pci_dev *d, void (*hook)(void *opaque, unsigned vec, bool masked),
			    void *opaque)
{
	if (!d->msix)
		return;
	pthread_mutex_lock(&d->msix->lock);
	d->msix->mask_hook = hook;
	d->msix->mask_opaque = opaque;
	pthread_mutex_unlock(&d->msix->lock);
}

int pci_msix_vector_fd(struct pci_dev *d, unsigned vec)
{
	if (!d->msix || vec >= d->msix->nvec)
		return -1;
	return d->msix->v[vec].efd;
}

void pci_msix_free(struct pci_dev *d)
{
	struct pci_msix *m = d->msix;
	if (!m)
		return;
	struct vm *vm = d->vm;
	for (unsigned i = 0; i < PCI_MSIX_MAX_VECTORS; i++) {
		struct pci_msix_vec *v = &m->v[i];
		if (v->efd >= 0) {
			struct kvm_irqfd irqfd = { .fd = (uint32_t)v->efd, .gsi = (uint32_t)v->gsi,
						   .flags = KVM_IRQFD_FLAG_DEASSIGN };
			if (vm->vm_fd >= 0)
				ioctl(vm->vm_fd, KVM_IRQFD, &irqfd);
			close(v->efd);
		}
		if (v->gsi >= 0)
			irq_msi_unroute(vm, (unsigned)v->gsi);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
	d->msix = NULL;
}

void pci_msix_config_written(struct pci_dev *d)
{
	struct pci_msix *m = d->msix;
	uint16_t ctrl = pci_cfg16(d, m->cap + 2);
	pthread_mutex_lock(&m->lock);
	bool was = m->enabled;
	m->enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
	m->fmask = ctrl & PCI_MSIX_CTRL_FMASK;
	for (unsigned i = 0; i < m->nvec; i++)
		msix_vec_update(d, i);
	pthread_mutex_unlock(&m->lock);
	/* MSI-X enabled: the device must not use INTx (6.8.2). */
	if (was != m->enabled)
		pci_intx_update(d);
}

static uint32_t msix_table_read32(const struct pci_msix *m, uint64_t off)
{
	const struct pci_msix_vec *v = &m->v[off / PCI_MSIX_ENTRY_SIZE];
	switch (off % PCI_MSIX_ENTRY_SIZE) {
	case 0: return v->addr_lo;
	case 4: return v->addr_hi;
	case 8: return v->data;
	default: return v->ctrl;
	}
}

static void msix_table_write32(struct pci_dev *d, uint64_t off, uint32_t val)
{
	struct pci_msix *m = d->msix;
	unsigned i = (unsigned)(off / PCI_MSIX_ENTRY_SIZE);
	struct pci_msix_vec *v = &m->v[i];
	switch (off % PCI_MSIX_ENTRY_SIZE) {
	case 0: v->addr_lo = val & ~3u; break; /* dword-aligned message address */
	case 4: v->addr_hi = val; break;
	case 8: v->data = val; break;
	default: v->ctrl = val & PCI_MSIX_ENTRY_MASKED; break; /* other bits reserved */
	}
	/* A changed message while unmasked is re-routed too: the spec leaves it
	 * undefined; following the guest is the least surprising. */
	msix_vec_update(d, i);
}

static uint32_t msix_pba_read32(const struct pci_msix *m, uint64_t off)
{
	uint32_t v = 0;
	unsigned first = (unsigned)(off * 8);
	for (unsigned b = 0; b < 32 && first + b < m->nvec; b++)
		if (m->v[first + b].pending)
			v |= 1u << b;
	return v;
}

/*
 * A BAR access that may hit the MSI-X table or PBA. Device lock held.
 * Returns false when it is not theirs (the device's own ops serve it).
 * Dword and aligned qword accesses as the spec requires; smaller reads are
 * served from the dword, smaller writes ignored.
 */
bool pci_msix_bar_access(struct pci_dev *d, unsigned bar, uint64_t off, unsigned size, bool write,
			 uint64_t *val)
{
	struct pci_msix *m = d->msix;
	if (!m || bar != m->bar)
		return false;
	uint64_t tlen = (uint64_t)m->nvec * PCI_MSIX_ENTRY_SIZE, plen = (m->nvec + 63) / 64 * 8;
	/* Any access touching a byte of the table or PBA is theirs, so the
	 * device never sees one; one that straddles their edge is malformed. */
	bool table = off < m->table_off + tlen && off + size > m->table_off;
	bool pba = off < m->pba_off + plen && off + size > m->pba_off;
	if (!table && !pba)
		return false;
	uint64_t start = table ? m->table_off : m->pba_off, len = table ? tlen : plen;
	uint64_t rel = off - start; /* wraps when the access starts before: refused below */
	bool ok = off >= start && util_range_ok(rel, size, len) &&
		  (size == 8 ? (rel & 7) == 0 : (rel & 3) + size <= 4);
	pthread_mutex_lock(&m->lock);
	if (!write) {
		uint64_t v = ~0ull;
		if (ok) {
			uint64_t a = rel & ~3ull;
			v = table ? msix_table_read32(m, a) : msix_pba_read32(m, a);
			if (size == 8)
				v |= (uint64_t)(table ? msix_table_read32(m, a + 4) : msix_pba_read32(m, a + 4))
				     << 32;
			else
				v = (v >> (8 * (rel & 3))) & ((1ull << (8 * size)) - 1);
		} else {
			v = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
		}
		*val = v;
	} else if (ok && table && (size == 4 || size == 8)) {
		msix_table_write32(d, rel, (uint32_t)*val);
		if (size == 8)
			msix_table_write32(d, rel + 4, (uint32_t)(*val >> 32));
	} /* PBA is read-only; partial table writes are ignored */
	pthread_mutex_unlock(&m->lock);
	return true;
}

bool pci_msix_notify(struct pci_dev *d, unsigned vec)
{
	struct pci_msix *m = d->msix;
	if (!m || vec >= m->nvec)
		return false;
	pthread_mutex_lock(&m->lock);
	struct pci_msix_vec *v = &m->v[vec];
	bool now = !msix_masked(m, v);
	if (now)
		msix_send(d, v);
	else
		v->pending = true;
	pthread_mutex_unlock(&m->lock);
	return now;
}

void pci_msix_reroute_all(struct vm *vm)
{
	struct pci_host *h = vm->pci;
	if (!h)
		return;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slot[s];
		if (!d || !d->msix)
			continue;
		pthread_mutex_lock(&d->msix->lock);
		for (unsigned i = 0; i < d->msix->nvec; i++)
			msix_vec_update(d, i);
		pthread_mutex_unlock(&d->msix->lock);
	}
}

bool pci_msix_enabled(struct pci_dev *d)
{
	struct pci_msix *m = d->msix;
	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	bool on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

/* ---- INTx ---- */

/* Drive the IOAPIC pin from the device's output, INTx disable, MSI-X and MSI
 * (either enabled keeps the device off INTx, 6.8). */
void pci_intx_update(struct pci_dev *d)
{
	if (!d->info.intx_pin)
		return;
	bool level = atomic_load(&d->intx_level) && !atomic_load(&d->intx_disabled) &&
		     !pci_msix_enabled(d) && !atomic_load(&d->msi_enabled);
	irq_set_line(d->vm, d->intx_ioapic_pin, level);
}

void pci_intx_set(struct pci_dev *d, bool level)
{
	if (!d->info.intx_pin)
		return;
	if (atomic_exchange(&d->intx_level, level) == level)
		return;
	pci_intx_update(d);
}

/* ---- statistics ---- */

unsigned pci_irt_snapshot(struct vm *vm, struct pci_irt_entry *out, unsigned max)
{
	struct pci_host *h = vm->pci;
	unsigned n = 0;
	if (!h)
		return 0;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slot[s];
		if (!d || !d->msix)
			continue;
		struct pci_msix *m = d->msix;
		pthread_mutex_lock(&m->lock);
		for (unsigned i = 0; i < m->nvec && n < max; i++) {
			const struct pci_msix_vec *v = &m->v[i];
			/* live: the guest has written a message or one was sent */
			if (!v->addr_lo && !v->addr_hi && !v->data && !v->sent)
				continue;
			out[n++] = (struct pci_irt_entry){
				.device = d->name,
				.devfn = d->devfn,
				.vector = i,
				.gsi = v->gsi >= 0 ? (unsigned)v->gsi : 0,
				/* the route (after remapping) once there is one */
				.dest_apic_id = ((v->msg_addr ? v->msg_addr : v->addr_lo) >>
						 MSI_ADDR_DEST_SHIFT) & 0xff,
				.guest_vector = (v->msg_addr ? v->msg_data : v->data) & MSI_DATA_VECTOR,
				.masked = msix_masked(m, v),
				.irqfd = v->efd >= 0,
				.sent = v->sent,
				.pending_sent = v->pending_sent,
			};
		}
		pthread_mutex_unlock(&m->lock);
	}
	return n;
}
