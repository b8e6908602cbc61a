/*
 * pci_snap: snapshots of bus 0 — the host bridge's own section ("pci-host":
 * CONFIG_ADDRESS and the bridge's configuration space) and the generic half
 * of every function, which each device model puts at the start of its own
 * payload (pci_dev_snap_save / pci_dev_snap_load, see pci.h).
 *
 * What is saved is what the guest can see and set: the first 256 bytes of
 * configuration space (the header and the capability chain; nothing of the
 * extended space is writable), the INTx output, and each MSI-X vector's table
 * entry and pending bit. Not saved: GSIs and eventfds (the new process has
 * its own, made when the device was created), the routes (recomputed from
 * the entries), counters.
 *
 * A load goes through the masks the guest's writes go through: bytes the
 * guest cannot write must equal the new function's (else the snapshot is of
 * another configuration), and then the same re-evaluation as after a
 * configuration write runs — pci_update_bars (decoding, the BAR hook, so
 * ioeventfds follow), INTx disable, MSI and MSI-X control (each unmasked
 * vector's route is set). Nothing is sent: a pending bit is only valid on a
 * masked vector (an unmasked one would have sent it), so none goes out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"
#include "pci_priv.h"
#include "snapshot.h"
#include "util.h"
#include "vm.h"

#define PCI_SNAP_CFG 256 /* capabilities live below 256 (pci_cap_add) */

struct pci_snap_fn {
	uint8_t cfg[PCI_SNAP_CFG];
	uint8_t intx_level;
	uint8_t pad[3];
	uint32_t nvec; /* MSI-X vectors that follow, 0: no MSI-X */
};
_Static_assert(sizeof(struct pci_snap_fn) == 264, "file layout: no hidden padding");

struct pci_snap_vec {
	uint32_t addr_lo, addr_hi, data, ctrl;
	uint8_t pending;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct pci_snap_vec) == 20, "file layout: no hidden padding");

void pci_dev_snap_save(struct pci_dev *d, struct snap_buf *b)
{
	struct pci_snap_fn f;
	memset(&f, 0, sizeof(f));
	pci_dev_lock(d);
	memcpy(f.cfg, d->cfg, PCI_SNAP_CFG);
	f.intx_level = atomic_load(&d->intx_level);
	f.nvec = d->msix ? d->msix->nvec : 0;
	snap_put(b, &f, sizeof(f));
	if (d->msix) {
		pthread_mutex_lock(&d->msix->lock);
		for (unsigned i = 0; i < d->msix->nvec; i++) {
			const struct pci_msix_vec *v = &d->msix->v[i];
			struct pci_snap_vec s;
			memset(&s, 0, sizeof(s));
			s = (struct pci_snap_vec){ v->addr_lo, v->addr_hi, v->data, v->ctrl, v->pending, { 0 } };
			snap_put(b, &s, sizeof(s));
		}
		pthread_mutex_unlock(&d->msix->lock);
	}
	pci_dev_unlock(d);
}

/* Is everything in f and vec[] something the guest could have set on d? */
/* own: the bytes are pci_dev_reset_mark's, from this very function. */
static int pci_snap_check(struct pci_dev *d, const struct pci_snap_fn *f, const struct pci_snap_vec *vec,
			  bool own, char *err, size_t n)
{
	/* A passed-through function's state is mostly the device's: only its
	 * own reset state, hvmm's part of it, goes back in. */
	if (d->cfg_ops && !own) {
		snprintf(err, n, "%s: a passed-through function cannot be restored", d->name);
		return -1;
	}
	for (unsigned i = 0; i < PCI_SNAP_CFG; i++) {
		if ((f->cfg[i] ^ d->cfg[i]) & ~d->wmask[i]) {
			snprintf(err, n, "%s: config byte 0x%02x: 0x%02x has read-only bits the device has as 0x%02x",
				 d->name, i, f->cfg[i], d->cfg[i]);
			return -1;
		}
	}
	if (f->intx_level > 1 || (f->intx_level && !d->info.intx_pin)) {
		snprintf(err, n, "%s: intx level %u", d->name, f->intx_level);
		return -1;
	}
	/* Padding is zero in every save: a byte there the load would drop
	 * is a payload this hvmm did not write. */
	if (f->pad[0] || f->pad[1] || f->pad[2]) {
		snprintf(err, n, "%s: malformed padding after the intx level", d->name);
		return -1;
	}
	unsigned nvec = d->msix ? d->msix->nvec : 0;
	if (f->nvec != nvec) {
		snprintf(err, n, "%s: msix vectors: %u, the device has %u", d->name, f->nvec, nvec);
		return -1;
	}
	if (!nvec)
		return 0;
	uint16_t ctrl = (uint16_t)(f->cfg[d->msix->cap + 2] | f->cfg[d->msix->cap + 3] << 8);
	bool all_masked = !(ctrl & PCI_MSIX_CTRL_ENABLE) || (ctrl & PCI_MSIX_CTRL_FMASK);
	for (unsigned i = 0; i < nvec; i++) {
		const struct pci_snap_vec *v = &vec[i];
		if ((v->addr_lo & 3) || (v->ctrl & ~(uint32_t)PCI_MSIX_ENTRY_MASKED) || v->pending > 1 ||
		    v->pad[0] || v->pad[1] || v->pad[2]) {
			snprintf(err, n, "%s: msix vector %u: bad entry", d->name, i);
			return -1;
		}
		/* an unmasked vector sends at once: it cannot hold a pending bit */
		if (v->pending && !all_masked && !(v->ctrl & PCI_MSIX_ENTRY_MASKED)) {
			snprintf(err, n, "%s: msix vector %u: pending while unmasked", d->name, i);
			return -1;
		}
	}
	return 0;
}

static int pci_snap_load(struct pci_dev *d, struct snap_cur *c, bool own, char *err, size_t n)
{
	struct pci_snap_fn f;
	struct pci_snap_vec vec[PCI_MSIX_MAX_VECTORS];
	snap_get(c, &f, sizeof(f));
	if (f.nvec > PCI_MSIX_MAX_VECTORS) {
		snprintf(err, n, "%s: msix vectors: %u", d->name, f.nvec);
		return -1;
	}
	snap_get(c, vec, f.nvec * sizeof(vec[0]));
	if (c->bad) {
		snprintf(err, n, "%s: pci state truncated", d->name);
		return -1;
	}
	pci_dev_lock(d);
	if (pci_snap_check(d, &f, vec, own, err, n) < 0) {
		pci_dev_unlock(d);
		return -1;
	}
	for (unsigned i = 0; i < PCI_SNAP_CFG; i++)
		d->cfg[i] = (uint8_t)((d->cfg[i] & ~d->wmask[i]) | (f.cfg[i] & d->wmask[i]));
	atomic_store(&d->intx_disabled, pci_cfg16(d, PCI_COMMAND) & PCI_CMD_INTX_DISABLE);
	/* as after a guest's write of the command register and BARs */
	pci_update_bars(d);
	if (d->msix) {
		pthread_mutex_lock(&d->msix->lock);
		for (unsigned i = 0; i < f.nvec; i++) {
			struct pci_msix_vec *v = &d->msix->v[i];
			v->addr_lo = vec[i].addr_lo;
			v->addr_hi = vec[i].addr_hi;
			v->data = vec[i].data;
			v->ctrl = vec[i].ctrl;
			v->pending = vec[i].pending;
		}
		pthread_mutex_unlock(&d->msix->lock);
		pci_msix_config_written(d); /* enable/mask from control, every route */
	}
	if (d->msi_cap)
		pci_msi_config_written(d);
	/* A line that was high stays high: the interrupt controller's state
	 * (restored apart) has it asserted too. A low one is low already. */
	atomic_store(&d->intx_level, f.intx_level);
	if (f.intx_level)
		pci_intx_update(d);
	pci_dev_unlock(d);
	return 0;
}

int pci_dev_snap_load(struct pci_dev *d, struct snap_cur *c, char *err, size_t n)
{
	return pci_snap_load(d, c, false, err, n);
}

/* ---- function-level reset ---- */

int pci_dev_reset_mark(struct pci_dev *d)
{
	struct snap_buf *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pci_dev_snap_save(d, b);
	if (b->failed || !b->data) {
		snap_buf_free(b);
		free(b);
		return -ENOMEM;
	}
	pci_dev_reset_forget(d);
	d->reset_state = b;
	return 0;
}

void pci_dev_reset_forget(struct pci_dev *d)
{
	if (!d->reset_state)
		return;
	snap_buf_free(d->reset_state);
	free(d->reset_state);
	d->reset_state = NULL;
}

void pci_dev_reset(struct pci_dev *d)
{
	if (!d->reset_state)
		return; /* a model that never marked: a bug, caught by its reset test */
	/* The line first: a load only raises a line its state has high, it
	 * never lowers one (after a restore the interrupt controller's state
	 * agrees; after a reset it must be told). */
	pci_intx_set(d, false);
	struct snap_cur c = { .p = d->reset_state->data, .left = d->reset_state->len };
	char err[160];
	/* our own bytes, loaded into the function they came from: only a bug
	 * makes this fail */
	if (pci_snap_load(d, &c, true, err, sizeof(err)) < 0)
		util_err("%s: function-level reset: %s", d->name, err);
}

/* ---- the host bridge ---- */

struct pci_snap_host {
	uint32_t config_address, config_low;
};

static int pci_host_save(void *opaque, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct pci_host *h = opaque;
	struct pci_snap_host s;
	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&h->lock);
	s.config_address = h->config_address;
	s.config_low = h->config_low;
	pthread_mutex_unlock(&h->lock);
	snap_put(b, &s, sizeof(s));
	pci_dev_snap_save(h->slot[0], b);
	return 0;
}

static int pci_host_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct pci_host *h = opaque;
	if (version != 1) {
		snprintf(err, n, "pci-host: version %u unknown", version);
		return -1;
	}
	struct pci_snap_host s;
	snap_get(c, &s, sizeof(s));
	if (!c->bad && ((s.config_address & ~0x80fffffcu) || s.config_low > 3)) {
		snprintf(err, n, "pci-host: config address 0x%08x/%u", s.config_address, s.config_low);
		return -1;
	}
	char why[200];
	if (pci_dev_snap_load(h->slot[0], c, why, sizeof(why)) < 0) {
		snprintf(err, n, "pci-host: %s", why); /* the section's name first, as every device's */
		return -1;
	}
	if (c->bad) {
		snprintf(err, n, "pci-host: truncated");
		return -1;
	}
	pthread_mutex_lock(&h->lock);
	h->config_address = s.config_address;
	h->config_low = s.config_low;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* As pci_init leaves it: no configuration address latched, the bridge's
 * own function as created. */
static void pci_host_reset(void *opaque)
{
	struct pci_host *h = opaque;
	pthread_mutex_lock(&h->lock);
	h->config_address = 0;
	h->config_low = 0;
	pthread_mutex_unlock(&h->lock);
	pci_dev_reset(h->slot[0]);
}

/* The host bridge is pci.c's (pci_init builds it, pci_destroy frees it):
 * in the registry for its place among the snapshot sections and to be
 * reset with the rest. */
const struct dev_ops pci_host_dev_ops = {
	.name = "pci-host",
	.desc = "PCI host bridge",
	.reset = pci_host_reset,
	.snap = { .name = "pci-host", .version = 1, .save = pci_host_save, .load = pci_host_load },
};

int pci_host_snap_register(struct vm *vm)
{
	return dev_registry_add(&vm->devs, &pci_host_dev_ops, vm->pci);
}
