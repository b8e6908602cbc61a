/*
 * libFuzzer target for the virtio PCI transport (src/virtio/virtio_pci.c)
 * with two device models behind it: hvmm's virtio-rng and an echo device
 * with two queues and a writable config space. A fake VM without KVM and
 * without an event loop (the transport then acts inline, on the caller's
 * thread: deterministic) gets guard-paged RAM like fuzz_virtqueue's; the
 * input is a driver session: common-config, notify, ISR and device-config
 * accesses of any size at any offset of BAR 0, MSI-X table writes, config
 * space writes, ring and descriptor bytes poked into RAM, plus two macros
 * (a correct set-up, a chain offered and kicked) that take the fuzzer deep.
 *
 * Checked: sanitizers, the guard pages, every buffer a model gets lies in
 * RAM (the echo model checks its iovecs against RAM itself), config-space
 * callbacks stay inside the model's config size, a reset reads back 0 at
 * once (no event loop), and teardown leaves no eventfd behind.
 *
 * Input format: a stream of one-byte operations, see fz_run().
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus.h"
#include "irq.h"
#include "pci.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "fuzz_common.h"

#define FZ_CHECK(c)                                                                            \
	do {                                                                                   \
		if (!(c)) {                                                                    \
			fprintf(stderr, "fuzz_virtio_pci: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                               \
		}                                                                              \
	} while (0)


void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

/* ---- guest RAM: one region at 0, guard pages on both sides ---- */

#define FZ_PAGE 4096ull
#define FZ_RAM (256 * 1024ull)
static uint8_t *fz_map, *fz_ram;

static void fz_ram_init(void)
{
	fz_map = mmap(NULL, FZ_RAM + 2 * FZ_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FZ_CHECK(fz_map != MAP_FAILED);
	fz_ram = fz_map + FZ_PAGE;
	FZ_CHECK(mprotect(fz_ram, FZ_RAM, PROT_READ | PROT_WRITE) == 0);
}

static bool fz_in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)fz_ram, hi = lo + FZ_RAM;
	return a >= lo && a <= hi && len <= hi - a;
}

/* ---- the echo device model ---- */

static struct vq_elem fz_elem;
static uint8_t fz_echo_cfg[12];

static void echo_notify(struct virtio_dev *d, unsigned q)
{
	struct virtqueue *vq = virtio_queue(d, q);
	if (!vq)
		return;
	bool pushed = false;
	for (unsigned n = 0; n < 4096 && virtio_queue_pop(d, q, &fz_elem) > 0; n++) {
		uint64_t in = 0, out = 0;
		for (unsigned i = 0; i < fz_elem.n_out; i++) {
			FZ_CHECK(fz_in_ram(fz_elem.out[i].iov_base, fz_elem.out[i].iov_len));
			out += fz_elem.out[i].iov_len;
		}
		for (unsigned i = 0; i < fz_elem.n_in; i++) {
			FZ_CHECK(fz_in_ram(fz_elem.in[i].iov_base, fz_elem.in[i].iov_len));
			in += fz_elem.in[i].iov_len;
		}
		FZ_CHECK(in == fz_elem.in_len && out == fz_elem.out_len);
		/* copy what the driver sent into what it gave us to write */
		static uint8_t buf[FZ_RAM];
		uint64_t n_copy = vq_iov_to_buf(fz_elem.out, fz_elem.n_out, 0, buf, sizeof(buf));
		uint64_t w = vq_buf_to_iov(fz_elem.in, fz_elem.n_in, 0, buf, n_copy);
		vq_push(vq, fz_elem.head, (uint32_t)w);
		FZ_LOG("echo: queue %u head %u: %lu bytes out, %lu in, %lu echoed\n", q, fz_elem.head, out, in, w);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(d, q);
}

static void echo_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
	(void)d;
	FZ_CHECK(off < sizeof(fz_echo_cfg) && len <= sizeof(fz_echo_cfg) - off);
	memcpy(buf, fz_echo_cfg + off, len);
}

static void echo_config_write(struct virtio_dev *d, unsigned off, const void *buf, unsigned len)
{
	(void)d;
	FZ_CHECK(off < sizeof(fz_echo_cfg) && len <= sizeof(fz_echo_cfg) - off);
	memcpy(fz_echo_cfg + off, buf, len);
	if (fz_echo_cfg[0] & 1)
		virtio_config_changed(d);
}

static const struct virtio_dev_ops echo_ops = {
	.name = "virtio-echo",
	.device_type = VIRTIO_ID_CONSOLE,
	.features = 1ull << 0,
	.nr_queues = 2,
	.queue_max = 64,
	.config_size = sizeof(fz_echo_cfg),
	.config_read = echo_config_read,
	.config_write = echo_config_write,
	.queue_notify = echo_notify,
};

/* ---- the VM ---- */

struct fz_dev {
	unsigned devfn;
	uint64_t bar0, bar2;
	unsigned common, notify, isr, device, mult, devcfg_len;
};

static struct vm fz_vm;
static struct fz_dev fz_devs[2];

static uint32_t fz_cfg_rd(struct fz_dev *f, unsigned off, unsigned size)
{
	return pci_config_read(&fz_vm, f->devfn, off, size);
}

static void fz_find_caps(struct fz_dev *f)
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

static void fz_vm_build(void)
{
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_KERNEL;
	fz_vm.cfg.mem_size = FZ_RAM;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	memset(fz_ram, 0, FZ_RAM);
	fz_vm.mem.base = fz_ram;
	fz_vm.mem.ram_size = FZ_RAM;
	fz_vm.mem.nr_regions = 1;
	fz_vm.mem.regions[0] = (struct mem_region){ .gpa = 0, .size = FZ_RAM, .hva = fz_ram };
	FZ_CHECK(pci_init(&fz_vm) == 0);
	FZ_CHECK(virtio_rng_create(&fz_vm) == 0);
	FZ_CHECK(virtio_pci_create(&fz_vm, &echo_ops, NULL) != NULL);
	struct virtio_dev *devs[4];
	FZ_CHECK(virtio_devices(&fz_vm, devs, 4) == 2);
	for (unsigned i = 0; i < 2; i++) {
		struct fz_dev *f = &fz_devs[i];
		memset(f, 0, sizeof(*f));
		f->devfn = virtio_dev_devfn(devs[i]);
		f->bar0 = (fz_cfg_rd(f, 0x10, 4) & ~0xfull) | (uint64_t)fz_cfg_rd(f, 0x14, 4) << 32;
		f->bar2 = (fz_cfg_rd(f, 0x18, 4) & ~0xfull) | (uint64_t)fz_cfg_rd(f, 0x1c, 4) << 32;
		fz_find_caps(f);
		pci_config_write(&fz_vm, f->devfn, 0x04, 2, 0x06); /* memory decoding, bus master */
	}
	memset(fz_echo_cfg, 0, sizeof(fz_echo_cfg));
}

static void fz_vm_free(void)
{
	virtio_destroy_all(&fz_vm);
	pci_destroy(&fz_vm);
	irq_destroy(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

/* ---- input and accesses ---- */

static uint64_t fz_mmio(uint64_t addr, unsigned size, bool write, uint64_t v)
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

static void fz_cc(struct fz_dev *f, unsigned off, unsigned size, uint64_t v)
{
	fz_mmio(f->bar0 + f->common + off, size, true, v);
}

/* The guest may turn memory decoding off (op 8): BAR 0 then reads all-ones. */
static bool fz_decoding(struct fz_dev *f)
{
	return fz_cfg_rd(f, 0x04, 2) & 2;
}

static uint8_t fz_status(struct fz_dev *f)
{
	return (uint8_t)fz_mmio(f->bar0 + f->common + 0x14, 1, false, 0);
}

/* Ring placement used by the macros: queue q of device i at a fixed place. */
static uint64_t fz_ring(unsigned dev, unsigned q)
{
	return 0x4000ull * (1 + 2 * dev + q); /* desc +0, avail +0x1000, used +0x2000 */
}

/* Macro: a correct driver's set-up of every queue, sizes from the input. */
static void fz_setup(struct fz_in *in, struct fz_dev *f, unsigned dev)
{
	uint64_t features = fz_take(in, 1);
	fz_cc(f, 0x14, 1, 0); /* reset */
	FZ_CHECK(!fz_decoding(f) || fz_status(f) == 0); /* inline: done when the write returns */
	fz_cc(f, 0x14, 1, 1);
	fz_cc(f, 0x14, 1, 3);
	fz_cc(f, 0x08, 4, 0);
	fz_cc(f, 0x0c, 4, (features & 1) | (features & 2 ? 1u << VIRTIO_F_INDIRECT_DESC : 0) |
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

/* Macro: descriptor i of queue q (table at the macro's place), avail entry, kick. */
static void fz_offer(struct fz_in *in, struct fz_dev *f, unsigned dev)
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

static void fz_report(void)
{
	struct virtio_dev *devs[4];
	unsigned n = virtio_devices(&fz_vm, devs, 4);
	for (unsigned i = 0; i < n; i++) {
		struct virtio_dev_stats st;
		virtio_dev_get_stats(devs[i], &st);
		FZ_LOG("%s: status 0x%x notifies %lu interrupts %lu bad_chains %lu needs_reset %lu early %lu\n",
		       virtio_dev_name(devs[i]), fz_status(&fz_devs[i]), st.notifies, st.interrupts,
		       st.bad_chains, st.needs_reset, st.early_notifies);
	}
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		unsigned dev = (op >> 7) & 1;
		struct fz_dev *f = &fz_devs[dev];
		switch ((op & 0x7f) % 10) {
		case 0: /* common config write */
		case 1: { /* common config read */
			unsigned off = (unsigned)fz_take(in, 1) % 0x40, size = fz_size(in);
			if ((op & 0x7f) % 10 == 0)
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
		case 9: { /* a reset must always complete at once without an event loop */
			fz_cc(f, 0x14, 1, 0);
			FZ_CHECK(!fz_decoding(f) || fz_status(f) == 0);
			break;
		}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	if (!fz_map)
		fz_ram_init();
	fz_vm_build();
	struct fz_in in = { data, size };
	fz_run(&in);
	if (fz_debug)
		fz_report();
	fz_vm_free();
	static unsigned runs; /* a leak accumulates: every 16th input is enough */
	if (++runs % 16 == 0)
		FZ_CHECK(fz_eventfds() == 0);
	return 0;
}
