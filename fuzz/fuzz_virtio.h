/*
 * fuzz_virtio: the virtio driver harness the virtio targets share — a fake VM
 * (no KVM, no event loop: the transport acts inline, deterministically) with
 * FZ_RAM bytes of guard-paged RAM at guest-physical 0, PCI, the functions'
 * BARs and capabilities, and the generic driver operations (common config,
 * BAR 0, notify, RAM pokes, a correct set-up, a chain offered and kicked,
 * MSI-X, config space, reset) a target decodes from its input.
 *
 * With FZ_FAKE_EVLOOP defined before including it, the target also gets an
 * event loop of its own (evloop_add/mod/del, replacing src/evloop.c): the
 * back-end fds a model watches are polled when the input says so
 * (fz_loop_turn) and their callbacks run on the fuzzing thread, with the
 * events poll(2) really reports, as the loop thread would see them.
 *
 * With FZ_WRAP_VQ, vq_pop and vq_push are wrapped (the target links with
 * -Wl,--wrap=vq_pop,--wrap=vq_push; fuzz.mk's FUZZ_LDFLAGS_name): every
 * chain a model pops must lie in RAM, every chain it returns must be one it
 * popped and not returned yet, with no more bytes written than the chain
 * can hold; the target's fz_on_push(vq, written) checks the rest.
 *
 * Before including: FZ_RAM (bytes) and FZ_CHECK(cond).
 */
#ifndef HVMM_FUZZ_VIRTIO_H
#define HVMM_FUZZ_VIRTIO_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bus.h"
#include "irq.h"
#include "pci.h"
#include "snapshot.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "fuzz_env.h"
#include "fuzz_common.h"

#define FZ_MAX_DEVS 4

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

static struct vm fz_vm;
static uint8_t *fz_ram;

/* Does [p, p+len) lie inside guest RAM? (Independent of mem_ptr.) */
static inline bool fz_in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)fz_ram, hi = lo + FZ_RAM;
	return a >= lo && a <= hi && len <= hi - a;
}

struct fz_dev {
	unsigned devfn;
	uint64_t bar0, bar2;
	unsigned common, notify, isr, device, mult, devcfg_len;
};

static struct fz_dev fz_devs[FZ_MAX_DEVS];
static unsigned fz_ndevs;

static inline uint32_t fz_cfg_rd(struct fz_dev *f, unsigned off, unsigned size)
{
	return pci_config_read(&fz_vm, f->devfn, off, size);
}

static inline void fz_find_caps(struct fz_dev *f)
{
	unsigned seen = 0, found = 0;
	for (unsigned p = fz_cfg_rd(f, 0x34, 1) & ~3u; p && seen++ < 48; p = fz_cfg_rd(f, p + 1, 1) & ~3u) {
		if (fz_cfg_rd(f, p, 1) != 0x09)
			continue;
		unsigned type = fz_cfg_rd(f, p + 3, 1), off = fz_cfg_rd(f, p + 8, 4);
		found |= 1u << (type & 31);
		switch (type) {
		case 1: f->common = off; break;
		case 2: f->notify = off; f->mult = fz_cfg_rd(f, p + 16, 4); break;
		case 3: f->isr = off; break;
		case 4: f->device = off; f->devcfg_len = fz_cfg_rd(f, p + 12, 4); break;
		}
	}
	FZ_CHECK((found & 0xe) == 0xe); /* common, notify, ISR */
}

/* A fresh VM with zeroed RAM and PCI; the target then creates its models
 * and calls fz_virtio_find_devs. */
static inline void fz_virtio_vm_init(void)
{
	if (!fz_ram) {
		fz_ram = fz_guarded_map(FZ_RAM);
		FZ_CHECK(fz_ram != NULL);
	}
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_KERNEL;
	fz_vm.cfg.mem_size = FZ_RAM;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	memset(fz_ram, 0, FZ_RAM);
	fz_mem_one(&fz_vm.mem, fz_ram, FZ_RAM);
	FZ_CHECK(pci_init(&fz_vm) == 0);
	fz_vm_env(&fz_vm, false, false); /* the PCI host; no loop: the transport acts inline */
}

/* BARs and capabilities of every virtio function; memory decoding and bus
 * mastering on. */
static inline void fz_virtio_find_devs(unsigned want)
{
	struct virtio_dev *devs[FZ_MAX_DEVS];
	fz_ndevs = virtio_devices(&fz_vm.devs, devs, FZ_MAX_DEVS);
	FZ_CHECK(fz_ndevs == want);
	for (unsigned i = 0; i < fz_ndevs; i++) {
		struct fz_dev *f = &fz_devs[i];
		memset(f, 0, sizeof(*f));
		f->devfn = virtio_dev_devfn(devs[i]);
		f->bar0 = (fz_cfg_rd(f, 0x10, 4) & ~0xfull) | (uint64_t)fz_cfg_rd(f, 0x14, 4) << 32;
		f->bar2 = (fz_cfg_rd(f, 0x18, 4) & ~0xfull) | (uint64_t)fz_cfg_rd(f, 0x1c, 4) << 32;
		fz_find_caps(f);
		pci_config_write(&fz_vm, f->devfn, 0x04, 2, 0x06); /* memory decoding, bus master */
	}
}

static inline void fz_virtio_vm_free(void)
{
	dev_destroy_all(&fz_vm.devs); /* the devices (the last first) and the host bridge's entry */
	pci_destroy(&fz_vm);
	irq_destroy(&fz_vm);
	snapshot_registry_free(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

/* ---- driver accesses ---- */

static inline uint64_t fz_mmio(uint64_t addr, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(&fz_vm.mmio, addr, size);
	if (!r)
		return ~0ull;
	FZ_LOG("mmio %s 0x%lx/%u%s", write ? "write" : "read", addr, size, write ? " = " : "");
	if (write) {
		FZ_LOG("0x%lx\n", v);
		r->ops->write(r->opaque, addr - r->base, size, size == 8 ? v : v & ((1ull << (8 * size)) - 1));
		return 0;
	}
	v = r->ops->read(r->opaque, addr - r->base, size);
	FZ_LOG(" -> 0x%lx\n", v);
	return v;
}

static inline void fz_cc(struct fz_dev *f, unsigned off, unsigned size, uint64_t v)
{
	fz_mmio(f->bar0 + f->common + off, size, true, v);
}

/* The guest may turn memory decoding off: BAR 0 then reads all-ones. */
static inline bool fz_decoding(struct fz_dev *f)
{
	return fz_cfg_rd(f, 0x04, 2) & 2;
}

static inline uint8_t fz_status(struct fz_dev *f)
{
	return (uint8_t)fz_mmio(f->bar0 + f->common + 0x14, 1, false, 0);
}

/* Ring placement used by the macros: queue q of device i at a fixed place. */
static inline uint64_t fz_ring(unsigned dev, unsigned q)
{
	return 0x4000ull * (1 + 2 * dev + q); /* desc +0, avail +0x1000, used +0x2000 */
}

/*
 * Macro: a correct driver's set-up of queues 0 and 1, sizes from the input.
 * Feature byte: bit 0 accept the device's own low 24 feature bits (what it
 * offers), bit 1 INDIRECT_DESC, bit 2 EVENT_IDX, bit 3 drop VERSION_1 (so
 * FEATURES_OK is refused), bit 4 ask for bit 0 as well (offered by some
 * models, a refusal for the others).
 */
static inline void fz_setup(struct fz_in *in, struct fz_dev *f, unsigned dev)
{
	uint64_t features = fz_take(in, 1);
	fz_cc(f, 0x14, 1, 0); /* reset */
	FZ_CHECK(!fz_decoding(f) || fz_status(f) == 0); /* inline: done when the write returns */
	fz_cc(f, 0x14, 1, 1);
	fz_cc(f, 0x14, 1, 3);
	fz_cc(f, 0x00, 4, 0);
	uint32_t offered = (uint32_t)fz_mmio(f->bar0 + f->common + 0x04, 4, false, 0);
	fz_cc(f, 0x08, 4, 0);
	fz_cc(f, 0x0c, 4, (features & 1 ? offered & 0xffffffu : 0) | (features & 0x10 ? 1u : 0) |
				  (features & 2 ? 1u << VIRTIO_F_INDIRECT_DESC : 0) |
				  (features & 4 ? 1u << VIRTIO_F_EVENT_IDX : 0));
	fz_cc(f, 0x08, 4, 1);
	fz_cc(f, 0x0c, 4, features & 8 ? 0 : 1); /* VERSION_1, unless the input drops it */
	fz_cc(f, 0x14, 1, 0xb);
	for (unsigned q = 0; q < 2; q++) {
		uint16_t size = (uint16_t)(1u << (fz_take(in, 1) % 9));
		fz_cc(f, 0x16, 2, q);
		fz_cc(f, 0x18, 2, size);
		fz_cc(f, 0x1a, 2, q);
		fz_cc(f, 0x20, 8, fz_ring(dev, q));
		fz_cc(f, 0x28, 8, fz_ring(dev, q) + 0x1000);
		fz_cc(f, 0x30, 8, fz_ring(dev, q) + 0x2000);
		fz_cc(f, 0x1c, 2, 1);
	}
	fz_cc(f, 0x14, 1, 0xf);
}

/* Macro: descriptor i of queue q (table at the macro's place), avail entry,
 * kick. Address byte bit 0: a 3-byte address (often in RAM), else 8 bytes. */
static inline void fz_offer(struct fz_in *in, struct fz_dev *f, unsigned dev)
{
	unsigned q = (unsigned)fz_take(in, 1) & 1;
	uint16_t i = (uint16_t)fz_take(in, 1);
	struct vq_desc d = {
		.addr = fz_take(in, 1) & 1 ? fz_take(in, 3) : fz_take(in, 8),
		.len = (uint32_t)fz_take(in, 3),
		.flags = (uint16_t)(fz_take(in, 1) & 7),
		.next = (uint16_t)fz_take(in, 1),
	};
	fz_cc(f, 0x16, 2, q);
	uint16_t size = (uint16_t)fz_mmio(f->bar0 + f->common + 0x18, 2, false, 0);
	if (!size)
		return;
	uint64_t ring = fz_ring(dev, q);
	memcpy(fz_ram + ring + 16ull * (i % size), &d, sizeof(d));
	uint16_t *avail = (uint16_t *)(fz_ram + ring + 0x1000);
	avail[2 + avail[1] % size] = i % size;
	avail[1]++;
	fz_mmio(f->bar0 + f->notify + q * f->mult, 2, true, q);
}

/*
 * The generic driver operations, op 0-9 (their arguments: gen_seeds.py, the
 * fuzz_virtio_pci section): 0/1 common config write/read, 2 anywhere in BAR 0,
 * 3 notify, 4 poke RAM, 5 set-up macro, 6 offer macro, 7 MSI-X table/PBA,
 * 8 configuration space, 9 reset (must complete at once).
 */
static inline void fz_virtio_op(struct fz_in *in, unsigned op, struct fz_dev *f, unsigned dev)
{
	switch (op) {
	case 0: /* common config write */
	case 1: { /* common config read */
		unsigned off = (unsigned)fz_take(in, 1) % 0x40, size = fz_size(in);
		if (op == 0)
			fz_cc(f, off, size, fz_take(in, 8));
		else
			fz_mmio(f->bar0 + f->common + off, size, false, 0);
		break;
	}
	case 2: { /* anywhere in BAR 0 (notify, ISR, device config, gaps) */
		unsigned off = (unsigned)fz_take(in, 2) % 0x4000, size = fz_size(in);
		bool write = fz_take(in, 1) & 1;
		fz_mmio(f->bar0 + off, size, write, write ? fz_take(in, 8) : 0);
		break;
	}
	case 3: /* notify queue n (also ones that do not exist) */
		fz_mmio(f->bar0 + f->notify + (fz_take(in, 1) % 4) * f->mult, 2, true, fz_take(in, 2));
		break;
	case 4: { /* poke RAM */
		uint64_t gpa = fz_take(in, 3) % FZ_RAM;
		unsigned n = (unsigned)fz_take(in, 1) + 1;
		for (unsigned i = 0; i < n && gpa + i < FZ_RAM; i++)
			fz_ram[gpa + i] = (uint8_t)fz_take(in, 1);
		break;
	}
	case 5:
		fz_setup(in, f, dev);
		break;
	case 6:
		fz_offer(in, f, dev);
		break;
	case 7: { /* MSI-X table / PBA in BAR 2 */
		unsigned off = (unsigned)fz_take(in, 2) % 0x1000, size = fz_size(in);
		bool write = fz_take(in, 1) & 1;
		fz_mmio(f->bar2 + off, size, write, write ? fz_take(in, 8) : 0);
		break;
	}
	case 8: { /* configuration space (MSI-X enable, command, BARs) */
		unsigned off = (unsigned)fz_take(in, 1), size = 1u << (fz_take(in, 1) % 3);
		uint32_t v = (uint32_t)fz_take(in, 4);
		if (off >= 0x10 && off < 0x28)
			break; /* BARs stay put: the harness keeps their addresses */
		pci_config_write(&fz_vm, f->devfn, off & ~(size - 1), size, v);
		break;
	}
	case 9: /* a reset must always complete at once without an event loop */
		fz_cc(f, 0x14, 1, 0);
		FZ_CHECK(!fz_decoding(f) || fz_status(f) == 0);
		break;
	}
}

#ifdef FZ_WRAP_VQ
/* ---- every chain a model takes and gives back ---- */

#include "virtio/virtqueue.h"

int __real_vq_pop(struct virtqueue *vq, struct vq_elem *e);
void __real_vq_push(struct virtqueue *vq, uint16_t head, uint32_t written);
void __real_vq_push_elem(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);
int __wrap_vq_pop(struct virtqueue *vq, struct vq_elem *e);
void __wrap_vq_push(struct virtqueue *vq, uint16_t head, uint32_t written);
void __wrap_vq_push_elem(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);
struct fz_popped {
	struct virtqueue *vq;
	uint16_t head;
	uint64_t in_len, out_len;
	const struct vq_elem *e; /* the model's: valid until it pops into it again */
};
static void fz_on_push(struct virtqueue *vq, uint32_t written, const struct fz_popped *chain);
static struct fz_popped fz_popped[2 * 1024];
static unsigned fz_npopped;

int __wrap_vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	int r = __real_vq_pop(vq, e);
	if (r <= 0)
		return r;
	uint64_t in = 0, out = 0;
	for (unsigned i = 0; i < e->n_out; i++) {
		FZ_CHECK(fz_in_ram(e->out[i].iov_base, e->out[i].iov_len));
		out += e->out[i].iov_len;
	}
	for (unsigned i = 0; i < e->n_in; i++) {
		FZ_CHECK(fz_in_ram(e->in[i].iov_base, e->in[i].iov_len));
		in += e->in[i].iov_len;
	}
	FZ_CHECK(in == e->in_len && out == e->out_len);
	FZ_CHECK(fz_npopped < sizeof(fz_popped) / sizeof(fz_popped[0]));
	fz_popped[fz_npopped++] = (struct fz_popped){ vq, e->head, e->in_len, e->out_len, e };
	return r;
}

/* A chain given back, by vq_push or by vq_push_elem (which marks the
 * buffers for migration and calls vq_push inside virtqueue.c, where --wrap
 * does not reach: both entries are wrapped, and a nested call is counted
 * once). */
static bool fz_in_push_elem;

static void fz_given_back(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	unsigned i = fz_npopped;
	while (i > 0 && !(fz_popped[i - 1].vq == vq && fz_popped[i - 1].head == head))
		i--;
	FZ_CHECK(i > 0); /* a chain the device never took, or gave back twice */
	FZ_CHECK(written <= fz_popped[i - 1].in_len);
	struct fz_popped chain = fz_popped[i - 1];
	fz_popped[i - 1] = fz_popped[--fz_npopped];
	fz_on_push(vq, written, &chain);
}

void __wrap_vq_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	if (!fz_in_push_elem)
		fz_given_back(vq, head, written);
	__real_vq_push(vq, head, written);
}

void __wrap_vq_push_elem(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	fz_given_back(vq, e->head, written);
	fz_in_push_elem = true;
	__real_vq_push_elem(vq, e, written);
	fz_in_push_elem = false;
}
#endif

#ifdef FZ_FAKE_EVLOOP
/* ---- the fake event loop ---- */

#include <sys/epoll.h>
#include "evloop.h"

#define FZ_WATCHES 8
struct fz_watch {
	int fd;
	uint32_t events;
	evloop_fn fn;
	void *opaque;
};
static struct fz_watch fz_watches[FZ_WATCHES];
static unsigned fz_nwatches;

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	(void)l;
	if (fd < 0 || !fn)
		return -22;
	for (unsigned i = 0; i < fz_nwatches; i++)
		FZ_CHECK(fz_watches[i].fd != fd); /* epoll: EEXIST, a bug in the caller */
	FZ_CHECK(fz_nwatches < FZ_WATCHES);
	fz_watches[fz_nwatches++] = (struct fz_watch){ fd, events, fn, opaque };
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	(void)l;
	for (unsigned i = 0; i < fz_nwatches; i++)
		if (fz_watches[i].fd == fd) {
			fz_watches[i].events = events;
			return 0;
		}
	return -2;
}

int evloop_del(struct evloop *l, int fd)
{
	(void)l;
	for (unsigned i = 0; i < fz_nwatches; i++)
		if (fz_watches[i].fd == fd) {
			fz_watches[i] = fz_watches[--fz_nwatches];
			return 0;
		}
	return -2;
}

/* One round of the loop, as src/evloop.c's thread makes it: every watched
 * fd polled at once (its epoll_wait: one syscall, not one poll per watch),
 * then the ready ones' callbacks in order, each with the events of that
 * batch even if an earlier callback changed them (a callback may delete
 * watches, its own included: a deleted one is skipped, like a dead watch). */
static inline void fz_loop_turn(void)
{
	struct fz_watch snap[FZ_WATCHES];
	struct pollfd p[FZ_WATCHES];
	unsigned n = fz_nwatches;
	memcpy(snap, fz_watches, sizeof(snap));
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = snap[i].fd, .events = (short)snap[i].events };
	if (n == 0 || poll(p, n, 0) <= 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		bool live = false;
		for (unsigned k = 0; k < fz_nwatches; k++)
			live |= fz_watches[k].fd == snap[i].fd && fz_watches[k].fn == snap[i].fn;
		if (!live)
			continue;
		FZ_LOG("loop: fd %d events %#x\n", p[i].fd, (unsigned)p[i].revents);
		snap[i].fn(snap[i].opaque, (uint32_t)p[i].revents);
	}
}
#endif

#endif
