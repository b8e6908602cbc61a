/*
 * libFuzzer target for PCI configuration space and the BAR window (src/pci.c):
 * a fake VM without KVM (vm_fd = -1) gets the host bridge and two functions
 * shaped like virtio devices (memory BARs, a capability list, MSI-X with the
 * table in its own BAR or sharing one with device registers, INTx), then the
 * input is replayed as the accesses a guest can make: CF8/CFC port I/O of any
 * size and offset, ECAM reads and writes, BAR and MSI-X table/PBA accesses
 * at the BARs' current addresses, device interrupts.
 *
 * Besides the sanitizers, checked here:
 *  - device BAR handlers see only offsets and sizes inside their BAR, never
 *    an MSI-X table/PBA access, and only while memory decoding is on;
 *  - vendor/device IDs read back unchanged whatever was written, absent
 *    functions read as all-ones;
 *  - memory BARs keep their type bits (64-bit memory) and natural alignment.
 *
 * A third function is a passed-through device (vfio_pci.c) whose "device
 * fd" is a memfd: its configuration space forwarded there except the bytes
 * hvmm owns, its BARs mmap'ed or forwarded, MSI and MSI-X intercepted.
 * Checked for it: every forwarded access stays inside the memfd's regions
 * (the memfd never grows), the ROM BAR and interrupt pin read 0.
 *
 * Input format: see fuzz/gen_seeds.py (pci_seeds).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "evloop.h"
#include "pci.h"
#include "snapshot.h"
#include "vfio.h"
#include "vm.h"
#include "fuzz_env.h"
#define FZ_EFD_POOL /* eventfds from a pool: fuzz_common.h */
#include "fuzz_common.h"

#define FZ_CHECK(c)                                                                        \
	do {                                                                               \
		if (!(c)) {                                                                \
			fprintf(stderr, "fuzz_pci_config: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                           \
		}                                                                          \
	} while (0)


/* The library's vm_stop() would pull in the whole VM; a device may call it. */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

/* ---- the fake devices ------------------------------------------------------ */

#define FZ_NDEV 2

struct fz_bar {
	uint64_t size;
	bool msix;                 /* MSI-X table and PBA live in this BAR */
	uint32_t table, pba;       /* their offsets */
	uint8_t regs[16384];
};

struct fz_dev {
	struct pci_dev *pci;
	uint16_t vendor, device;
	struct fz_bar bar[PCI_NUM_BARS];
	unsigned nvec;
	unsigned slot;
};

static struct fz_dev fz_devs[FZ_NDEV];

static bool fz_size_ok(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}


static void fz_bar_check(struct fz_bar *b, struct fz_dev *d, uint64_t off, unsigned size)
{
	FZ_CHECK(fz_size_ok(size));
	FZ_CHECK(off < b->size && size <= b->size - off);
	if (b->msix) { /* table and PBA accesses are pci.c's */
		uint64_t tlen = 16ull * d->nvec, plen = 8ull * ((d->nvec + 63) / 64);
		FZ_CHECK(!(off < b->table + tlen && off + size > b->table));
		FZ_CHECK(!(off < b->pba + plen && off + size > b->pba));
	}
	FZ_CHECK(pci_dev_mem_enabled(d->pci));
}

#define FZ_BAR_OPS(n)                                                                     \
	static uint64_t fz_bar##n##_read(void *opaque, uint64_t off, unsigned size)       \
	{                                                                                 \
		struct fz_dev *d = opaque;                                                \
		fz_bar_check(&d->bar[n], d, off, size);                                   \
		uint64_t v = 0;                                                           \
		memcpy(&v, d->bar[n].regs + (off % sizeof(d->bar[n].regs)),              \
		       size <= sizeof(d->bar[n].regs) - off % sizeof(d->bar[n].regs) ? size : 0); \
		return v;                                                                 \
	}                                                                                 \
	static void fz_bar##n##_write(void *opaque, uint64_t off, unsigned size, uint64_t v) \
	{                                                                                 \
		struct fz_dev *d = opaque;                                                \
		fz_bar_check(&d->bar[n], d, off, size);                                   \
		if (size <= sizeof(d->bar[n].regs) - off % sizeof(d->bar[n].regs))       \
			memcpy(d->bar[n].regs + (off % sizeof(d->bar[n].regs)), &v, size); \
	}                                                                                 \
	static const struct bus_ops fz_bar##n##_ops = { fz_bar##n##_read, fz_bar##n##_write };

FZ_BAR_OPS(0)
FZ_BAR_OPS(2)

static unsigned fz_hook_calls;

static void fz_config_hook(void *opaque, unsigned off, unsigned size, uint32_t val)
{
	(void)opaque, (void)val;
	FZ_CHECK(size == 1 || size == 2 || size == 4);
	FZ_CHECK(off < PCI_CFG_SIZE && size <= PCI_CFG_SIZE - off);
	fz_hook_calls++;
}

static struct vm fz_vm;

/* The passed-through function: config at 0, BAR 0 (16 KiB, mmap) at 64 KiB,
 * BAR 1 (8 KiB, MSI-X table 0 / PBA 0x800) at 128 KiB, BAR 4 (I/O, 28 bytes)
 * at 192 KiB; the memfd is exactly that long. */
#define FZ_VFIO_FILE 0x30100
static int fz_vfio_fd = -1;
static unsigned fz_vfio_slot;

static void fz_put32(int fd, uint64_t off, uint32_t v)
{
	FZ_CHECK(pwrite(fd, &v, 4, (off_t)off) == 4);
}

static void fz_vfio_build(void)
{
	int fd = memfd_create("fuzz-vfio", MFD_CLOEXEC);
	FZ_CHECK(fd >= 0 && ftruncate(fd, FZ_VFIO_FILE) == 0);
	fz_put32(fd, 0x00, 0x11e81234);
	fz_put32(fd, 0x04, 0x00100000);
	fz_put32(fd, 0x18, 0x0000000c);
	fz_put32(fd, 0x20, 0x00000001);
	fz_put32(fd, 0x30, 0xfffe0001);
	fz_put32(fd, 0x34, 0x40);
	fz_put32(fd, 0x40, 3u << 16 | 0x50 << 8 | 0x11);
	fz_put32(fd, 0x44, 1);
	fz_put32(fd, 0x48, 0x800 | 1);
	fz_put32(fd, 0x50, 0x0180u << 16 | 0x05); /* MSI, 64-bit, per-vector masking */
	struct vfio_dev v;
	memset(&v, 0, sizeof(v));
	snprintf(v.bdf, sizeof(v.bdf), "0000:00:10.0");
	v.fd = fz_vfio_fd = fd;
	v.group = v.container = -1;
	const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	v.region[VFIO_PCI_CONFIG_REGION_INDEX] = (struct vfio_region){ 0, 4096, rw };
	v.region[0] = (struct vfio_region){ 0x10000, 0x4000, rw | VFIO_REGION_INFO_FLAG_MMAP };
	v.region[1] = (struct vfio_region){ 0x20000, 0x2000, rw | VFIO_REGION_INFO_FLAG_MMAP };
	v.region[4] = (struct vfio_region){ 0x30000, 28, rw };
	char err[256];
	fz_vm_env(&fz_vm, false, false); /* the PCI host, the loop, the MSI GSIs */
	struct vfio_pci *p;
	if (vfio_pci_create(&fz_vm.env, 0, &v, &p, err, sizeof(err)) < 0 ||
	    dev_registry_add(&fz_vm.devs, &vfio_dev_ops, p) < 0) {
		fprintf(stderr, "fuzz_pci_config: vfio_pci_create: %s\n", err);
		abort();
	}
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = pci_dev_at(&fz_vm, s << 3);
		if (d && strncmp(pci_dev_name(d), "vfio", 4) == 0)
			fz_vfio_slot = s;
	}
	FZ_CHECK(fz_vfio_slot);
}

static int fz_vm_build(void)
{
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_KERNEL; /* INTx: KVM_IRQ_LINE on fd -1, harmless */
	fz_vm.cfg.mem_size = 128ull << 20;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	if (evloop_init(&fz_vm) || pci_init(&fz_vm)) {
		fprintf(stderr, "fuzz_pci_config: evloop_init or pci_init failed\n");
		abort();
	}

	/* Device 0: virtio-like, registers in BAR 0, MSI-X table+PBA alone in BAR 2. */
	static const struct pci_dev_info info0 = {
		.vendor_id = 0x1af4, .device_id = 0x1041, .subsys_vendor_id = 0x1af4, .subsys_id = 1,
		.class_code = 0x020000, .intx_pin = 1, .name = "fuzz-a",
	};
	/* Device 1: 64 vectors, table and PBA sharing BAR 0 with registers; many caps. */
	static const struct pci_dev_info info1 = {
		.vendor_id = 0x1af4, .device_id = 0x1042, .subsys_vendor_id = 0x1af4, .subsys_id = 2,
		.revision = 1, .class_code = 0x010000, .intx_pin = 0, .name = "fuzz-b",
	};
	const struct pci_dev_info *infos[FZ_NDEV] = { &info0, &info1 };
	for (unsigned i = 0; i < FZ_NDEV; i++) {
		struct fz_dev *d = &fz_devs[i];
		/* Only regs[0, size) of a BAR with a size was ever written
		 * (fz_bar_check fails any access beyond): zero that, not all
		 * 196 KiB of both devices' register files, for every input. */
		for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
			uint64_t used = d->bar[bar].size < sizeof(d->bar[bar].regs) ? d->bar[bar].size
										  : sizeof(d->bar[bar].regs);
			memset(d->bar[bar].regs, 0, used);
			d->bar[bar].size = 0;
			d->bar[bar].msix = false;
			d->bar[bar].table = d->bar[bar].pba = 0;
		}
		d->pci = pci_dev_add(fz_vm.pci, infos[i]);
		FZ_CHECK(d->pci);
		d->vendor = infos[i]->vendor_id;
		d->device = infos[i]->device_id;
		d->slot = pci_dev_devfn(d->pci) >> 3;
		FZ_CHECK((pci_dev_devfn(d->pci) & 7) == 0 && d->slot > 0 && d->slot < PCI_MAX_SLOTS);
		pci_dev_set_config_hook(d->pci, fz_config_hook, d);
	}
	struct fz_dev *a = &fz_devs[0], *b = &fz_devs[1];

	a->bar[0].size = 16384;
	FZ_CHECK(pci_bar_add(a->pci, 0, a->bar[0].size, &fz_bar0_ops, a));
	a->bar[2].size = 8192;
	FZ_CHECK(pci_bar_add(a->pci, 2, a->bar[2].size, &fz_bar2_ops, a));
	/* a virtio-style vendor capability (cfg_type, bar, offset, length), the
	 * last bytes guest-writable like virtio's pci_cfg window */
	uint8_t body[14] = { 14, 1, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0 };
	uint8_t wmask[14] = { 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	FZ_CHECK(pci_cap_add(a->pci, 0x09, 16, body, wmask) >= 0x40);
	FZ_CHECK(pci_cap_add(a->pci, 0x09, 20, NULL, NULL) >= 0x40);
	a->nvec = 5;
	FZ_CHECK(pci_msix_init(a->pci, a->nvec, 2, 0, 0x800) == 0);
	a->bar[2].msix = true;
	a->bar[2].table = 0;
	a->bar[2].pba = 0x800;

	b->bar[0].size = 4096;
	FZ_CHECK(pci_bar_add(b->pci, 0, b->bar[0].size, &fz_bar0_ops, b));
	b->nvec = PCI_MSIX_MAX_VECTORS;
	FZ_CHECK(pci_msix_init(b->pci, b->nvec, 0, 0x800, 0xc00) == 0);
	b->bar[0].msix = true;
	b->bar[0].table = 0x800;
	b->bar[0].pba = 0xc00;
	/* fill configuration space until pci_cap_add says it is full */
	unsigned n = 0;
	while (n < 200 && pci_cap_add(b->pci, (uint8_t)(0x09 + (n & 1)), 24, NULL, NULL))
		n++;
	FZ_CHECK(n < 200); /* 256 bytes of legacy space cannot hold 200 capabilities */
	fz_vfio_build();
	return 0;
}

static void fz_vm_free(void)
{
	/* forwarded accesses never wrote past the device's regions */
	struct stat st;
	FZ_CHECK(fstat(fz_vfio_fd, &st) == 0 && st.st_size == FZ_VFIO_FILE);
	dev_destroy_all(&fz_vm.devs); /* vfio (its loop watches), and pci_init's host bridge entry */
	evloop_destroy(&fz_vm);
	pci_destroy(&fz_vm);
	irq_destroy(&fz_vm);
	snapshot_registry_free(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

/* ---- input ------------------------------------------------------------------ */

static uint64_t fz_mask(unsigned size)
{
	return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* ---- accesses as a vCPU makes them ------------------------------------------ */

static bool fz_access(struct bus *b, uint64_t addr, unsigned size, bool write, uint64_t *val)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (!r)
		return false;
	FZ_LOG("%s %s 0x%lx/%u%s", b->name, write ? "write" : "read", addr, size, write ? " = " : "");
	if (write)
		FZ_LOG("0x%lx", *val & fz_mask(size));
	if (write)
		r->ops->write(r->opaque, addr - r->base, size, *val & fz_mask(size));
	else
		*val = r->ops->read(r->opaque, addr - r->base, size);
	FZ_LOG("%s0x%lx\n", write ? " ok " : " -> ", write ? 0 : *val);
	return true;
}

static uint32_t fz_cf8; /* what the guest last wrote to CONFIG_ADDRESS */

/* The function a configuration read at (slot, fn, reg) reaches, for checks. */
static struct fz_dev *fz_dev_at(unsigned slot, unsigned fn)
{
	for (unsigned i = 0; i < FZ_NDEV; i++)
		if (fn == 0 && fz_devs[i].slot == slot)
			return &fz_devs[i];
	return NULL;
}

static void fz_check_cfg_read(unsigned slot, unsigned fn, unsigned reg, unsigned size, uint64_t v)
{
	v &= fz_mask(size);
	if (slot == 0 && fn == 0)
		return; /* the host bridge: its IDs are pci.c's choice */
	if (slot == fz_vfio_slot && fn == 0) {
		/* the device's bytes are the memfd's, whatever the input wrote
		 * there; hvmm's ROM BAR and interrupt pin stay 0 */
		for (unsigned i = 0; i < size; i++)
			if ((reg + i >= 0x30 && reg + i < 0x34) || reg + i == 0x3d)
				FZ_CHECK((uint8_t)(v >> (8 * i)) == 0);
		return;
	}
	struct fz_dev *d = fz_dev_at(slot, fn);
	if (!d) {
		FZ_CHECK(v == fz_mask(size)); /* no function: master abort, all ones */
		return;
	}
	uint32_t ids = d->vendor | (uint32_t)d->device << 16;
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;
		uint8_t byte = (uint8_t)(v >> (8 * i));
		if (r < 4)
			FZ_CHECK(byte == (uint8_t)(ids >> (8 * r)));
		if (r == 0x10 && d->bar[0].size)
			FZ_CHECK((byte & 0xf) == 0x4); /* 64-bit memory, not prefetchable */
		if (r == 0x18 && d->bar[2].size)
			FZ_CHECK((byte & 0xf) == 0x4);
	}
}

/* Current guest-physical base of a device's BAR (as programmed). */
static uint64_t fz_bar_base(struct fz_dev *d, unsigned bar)
{
	return pci_dev_bar_addr(d->pci, bar);
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 2048) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		uint64_t v = 0;
		switch ((op & 0x7f) % 10) {
		case 0: /* CONFIG_ADDRESS: a 4-byte write latches it (byte writes go elsewhere) */
			v = fz_take(in, 4);
			if (fz_access(&fz_vm.pio, PCI_CONFIG_ADDRESS, 4, true, &v))
				fz_cf8 = (uint32_t)v;
			break;
		case 1:
		case 2: { /* CONFIG_DATA, any byte lane and size */
			unsigned lane = (unsigned)fz_take(in, 1) & 3;
			unsigned size = fz_size(in);
			if (size == 8)
				size = 4;
			bool write = (op & 0x7f) % 10 == 2;
			if (write)
				v = fz_take(in, 4);
			if (!fz_access(&fz_vm.pio, PCI_CONFIG_DATA + lane, size, write, &v) || write)
				break;
			/* CONFIG_ADDRESS bits 1:0 select bytes too, OR'ed with the
			 * port's lane, as in QEMU (pci.c) */
			unsigned byte = (fz_cf8 & 3) | lane;
			if ((fz_cf8 & 0x80000000u) && !(fz_cf8 >> 16 & 0xff) && byte + size <= 4)
				fz_check_cfg_read(fz_cf8 >> 11 & 31, fz_cf8 >> 8 & 7, (fz_cf8 & 0xfc) + byte,
						  size, v);
			break;
		}
		case 3:
		case 4: { /* ECAM, a little past its end too */
			uint64_t off = fz_take(in, 4) % (PCI_ECAM_SIZE + 0x100);
			unsigned size = fz_size(in);
			bool write = (op & 0x7f) % 10 == 4;
			if (write)
				v = fz_take(in, 8);
			if (!fz_access(&fz_vm.mmio, PCI_ECAM_BASE + off, size, write, &v) || write)
				break;
			unsigned reg = off & 0xfff;
			if (off < PCI_ECAM_SIZE && (reg & ~3u) == ((reg + size - 1) & ~3u))
				fz_check_cfg_read((unsigned)(off >> 15) & 31, (unsigned)(off >> 12) & 7, reg, size, v);
			break;
		}
		case 5:
		case 6: { /* a BAR where the guest put it (registers, MSI-X table, PBA) */
			struct fz_dev *d = &fz_devs[fz_take(in, 1) % FZ_NDEV];
			unsigned bar = (unsigned)fz_take(in, 1) & 2;
			uint64_t off = fz_take(in, 4) % 20000;
			unsigned size = fz_size(in);
			bool write = (op & 0x7f) % 10 == 6;
			if (write)
				v = fz_take(in, 8);
			if (op & 0x80) { /* the passed-through function's BARs instead */
				struct pci_dev *p = pci_dev_at(&fz_vm, fz_vfio_slot << 3);
				unsigned pb = bar ? 1 : (off & 1 ? 4 : 0);
				uint64_t base = pci_dev_bar_addr(p, pb);
				fz_access(pb == 4 ? &fz_vm.pio : &fz_vm.mmio, base + off % 0x2100, size > 4 && pb == 4 ? 4 : size, write, &v);
				break;
			}
			fz_access(&fz_vm.mmio, fz_bar_base(d, bar) + off, size, write, &v);
			break;
		}
		case 7: { /* the device raises a vector (event-loop side) */
			struct fz_dev *d = &fz_devs[fz_take(in, 1) % FZ_NDEV];
			unsigned vec = (unsigned)fz_take(in, 1);
			bool sent = pci_msix_notify(d->pci, vec % (d->nvec + 2)); /* a few past the end */
			FZ_LOG("notify dev %ld vec %u -> %d\n", d - fz_devs, vec % (d->nvec + 2), sent);
			(void)pci_msix_enabled(d->pci);
			break;
		}
		case 8: {
			struct fz_dev *d = &fz_devs[fz_take(in, 1) % FZ_NDEV];
			pci_intx_set(d->pci, fz_take(in, 1) & 1);
			break;
		}
		case 9: { /* anywhere in the PCI window or the hole around ECAM */
			uint64_t addr = PCI_MMIO_BASE + fz_take(in, 4) % (PCI_ECAM_BASE + PCI_ECAM_SIZE + 0x1000 - PCI_MMIO_BASE);
			unsigned size = fz_size(in);
			bool write = op & 0x80;
			if (write)
				v = fz_take(in, 8);
			fz_access(&fz_vm.mmio, addr, size, write, &v);
			break;
		}
		}
	}
	/* BARs stay naturally aligned inside the window whatever the guest wrote
	 * (all-ones sizing leaves the size mask there, which is aligned too). */
	for (unsigned i = 0; i < FZ_NDEV; i++)
		for (unsigned bar = 0; bar < PCI_NUM_BARS; bar += 2)
			if (fz_devs[i].bar[bar].size)
				FZ_CHECK(!(fz_bar_base(&fz_devs[i], bar) & (fz_devs[i].bar[bar].size - 1)));
	struct pci_irt_entry irt[2 * PCI_MSIX_MAX_VECTORS];
	unsigned n = pci_irt_snapshot(&fz_vm, irt, 2 * PCI_MSIX_MAX_VECTORS);
	FZ_CHECK(n <= 2 * PCI_MSIX_MAX_VECTORS);
	for (unsigned i = 0; i < n; i++)
		FZ_CHECK(irt[i].device && irt[i].vector < PCI_MSIX_MAX_VECTORS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	fz_vm_build();
	fz_cf8 = 0;
	fz_hook_calls = 0;
	struct fz_in in = { data, size };
	fz_run(&in);
	fz_vm_free();
	/* every pooled eventfd handed out was closed again: exact, no syscall */
	FZ_CHECK(fz_efd_in_use() == 0);
	/* pci_destroy closed every irqfd eventfd: any eventfd not from the
	 * pool, counted in /proc (a leak accumulates, so every 256th input is
	 * enough: the scan reads a link per open fd, the ~70 pooled ones too) */
	static unsigned runs;
	if (++runs % 256 == 0)
		FZ_CHECK(fz_eventfds() == 0);
	return 0;
}
