/*
 * pci-testdev: QEMU's PCI test device (1b36:0005, class "other"), which
 * kvm-unit-tests find on bus 0 (the vmexit test checks its BARs and times
 * writes to it; lib/pci-testdev.c walks its tests). It exists to measure
 * ioeventfd: a guest write that KVM turns into an eventfd signal never leaves
 * the kernel, one that KVM does not know about exits to the VMM.
 *
 * BAR 0 is 4 KiB of 32-bit memory, BAR 1 256 I/O ports, no interrupt pin.
 * Both BARs show the header of the test selected now:
 *
 *   +0  test    (byte)  writing v < 3 here selects test v of this BAR's
 *                       kind (memory: 0-2, I/O: 3-5); anything else
 *                       deselects
 *   +1  width   (byte)  1: the test writes bytes
 *   +4  offset  (le32)  where the test's writes go, in the same BAR:
 *                       2048 + n for memory test n, 128 + n for I/O test n
 *   +8  data    (byte)  the value a matching write carries: 0xfa, or 0xce
 *                       for the wildcard test (any value)
 *   +12 count   (le32)  writes at `offset` that reached hvmm since the test
 *                       was selected (and matched `data`, unless wildcard)
 *   +16 name            NUL-terminated: "mmio-no-eventfd", ...
 *
 * Three tests per kind: "no-eventfd" (every write exits to hvmm and counts),
 * "wildcard-eventfd" (a KVM ioeventfd at `offset` for any value: the writes
 * never reach hvmm, count stays 0) and "datamatch-eventfd" (an ioeventfd
 * only for writes of `data`). A guest checks that count is either 0 (KVM
 * took them) or the number of writes (hvmm did). Reads drain the test's
 * eventfd, as QEMU's device does.
 *
 * Like QEMU's, the device works in bytes: a wider access is split into byte
 * accesses at consecutive offsets, and a read of the header's last byte or
 * beyond reads 0. While a test is selected its ioeventfd sits at its BAR's
 * current base + offset; moving the BAR (or turning decoding off) moves (or
 * drops) it. All state is under the PCI device's lock, which pci.c holds
 * around every BAR access and BAR hook.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../pci.h"
#include "../snapshot.h"
#include "../util.h"
#include "devices_priv.h"

#define PCI_TESTDEV_VENDOR 0x1b36 /* Red Hat, QEMU's vendor id for its own devices */
#define PCI_TESTDEV_DEVICE 0x0005
#define PCI_TESTDEV_CLASS 0xff0000 /* "device does not fit any defined class" */
#define PCI_TESTDEV_MEM_BAR 0
#define PCI_TESTDEV_IO_BAR 1
#define PCI_TESTDEV_MEM_SIZE 4096
#define PCI_TESTDEV_IO_SIZE 256
/* the first offset tests write to: the second half of each BAR */
#define PCI_TESTDEV_MEM_TEST_OFF 2048
#define PCI_TESTDEV_IO_TEST_OFF 128
#define PCI_TESTDEV_KINDS 3 /* no-eventfd, wildcard-eventfd, datamatch-eventfd */
#define PCI_TESTDEV_TESTS (2 * PCI_TESTDEV_KINDS)
#define PCI_TESTDEV_DATAMATCH 0xfa
#define PCI_TESTDEV_NOMATCH 0xce
#define PCI_TESTDEV_HDR_NAME 16
#define PCI_TESTDEV_HDR_MAX 48

enum { PCI_TESTDEV_NO_EVENTFD, PCI_TESTDEV_WILDCARD, PCI_TESTDEV_DATAMATCH_KIND };

struct pci_testdev_test {
	uint8_t hdr[PCI_TESTDEV_HDR_MAX];
	unsigned len;    /* header bytes, the name's NUL included */
	bool io;         /* an I/O BAR test */
	bool match_data; /* only writes of hdr data count / signal */
	int efd;         /* -1: no eventfd (the no-eventfd tests) */
};

struct pci_testdev {
	int vm_fd; /* KVM_IOEVENTFD; -1: no KVM (unit tests) */
	struct pci_dev *pci;
	struct pci_testdev_test t[PCI_TESTDEV_TESTS];
	int current;             /* selected test, -1: none */
	bool ioeventfd_on;       /* current's ioeventfd is registered at: */
	uint64_t ioeventfd_addr;
	unsigned ioeventfd_len;
	uint64_t bar_base[2];    /* where each BAR decodes now */
	bool bar_on[2];
	bool any_length;         /* KVM_CAP_IOEVENTFD_ANY_LENGTH */
	bool warned;
};

static uint32_t pci_testdev_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void pci_testdev_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int pci_testdev_ioeventfd(struct pci_testdev *d, const struct pci_testdev_test *t,
				 uint64_t addr, unsigned len, bool assign)
{
	if (d->vm_fd < 0)
		return 0; /* a fake VM (unit tests): nothing to tell KVM */
	struct kvm_ioeventfd io = {
		.datamatch = t->hdr[8],
		.addr = addr,
		.len = len,
		.fd = t->efd,
		.flags = (t->io ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (t->match_data ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(d->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void pci_testdev_ioeventfd_off(struct pci_testdev *d)
{
	if (!d->ioeventfd_on)
		return;
	pci_testdev_ioeventfd(d, &d->t[d->current], d->ioeventfd_addr, d->ioeventfd_len, false);
	d->ioeventfd_on = false;
}

/* Put the selected test's ioeventfd where its BAR decodes now (if it does). */
static void pci_testdev_ioeventfd_on(struct pci_testdev *d)
{
	pci_testdev_ioeventfd_off(d);
	if (d->current < 0)
		return;
	struct pci_testdev_test *t = &d->t[d->current];
	unsigned b = t->io ? PCI_TESTDEV_IO_BAR : PCI_TESTDEV_MEM_BAR;
	if (t->efd < 0 || !d->bar_on[b])
		return;
	uint64_t addr = d->bar_base[b] + pci_testdev_le32(t->hdr + 4);
	/* A wildcard MMIO ioeventfd catches writes of any width where KVM can
	 * (QEMU's "fast MMIO"); everything else matches byte writes. */
	unsigned len = !t->io && !t->match_data && d->any_length ? 0 : 1;
	int r = pci_testdev_ioeventfd(d, t, addr, len, true);
	if (r < 0) {
		/* e.g. the guest moved the BAR over another ioeventfd: the writes
		 * then exit and count, which the guest accepts as well */
		if (!d->warned)
			util_err("pci-testdev: KVM_IOEVENTFD at %#llx: %s; its writes exit to hvmm",
				 (unsigned long long)addr, strerror(-r));
		d->warned = true;
		return;
	}
	d->ioeventfd_on = true;
	d->ioeventfd_addr = addr;
	d->ioeventfd_len = len;
}

static void pci_testdev_drain(const struct pci_testdev_test *t)
{
	uint64_t n;
	if (t->efd >= 0 && read(t->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing was signalled */
	}
}

/* One byte written at offset `off` of a BAR of kind io. */
static void pci_testdev_write_byte(struct pci_testdev *d, bool io, uint64_t off, uint8_t v)
{
	if (off == 0) {
		pci_testdev_ioeventfd_off(d);
		d->current = -1;
		if (v >= PCI_TESTDEV_KINDS)
			return;
		d->current = (io ? PCI_TESTDEV_KINDS : 0) + v;
		struct pci_testdev_test *t = &d->t[d->current];
		pci_testdev_put32(t->hdr + 12, 0);
		pci_testdev_drain(t);
		pci_testdev_ioeventfd_on(d);
		return;
	}
	if (d->current < 0)
		return;
	struct pci_testdev_test *t = &d->t[d->current];
	if (off != pci_testdev_le32(t->hdr + 4) || (t->match_data && v != t->hdr[8]))
		return;
	pci_testdev_put32(t->hdr + 12, pci_testdev_le32(t->hdr + 12) + 1);
}

static uint8_t pci_testdev_read_byte(struct pci_testdev *d, uint64_t off)
{
	if (d->current < 0)
		return 0;
	const struct pci_testdev_test *t = &d->t[d->current];
	pci_testdev_drain(t);
	/* QEMU's rule: the header's last byte (the name's NUL) and beyond read 0 */
	return off + 1 < t->len ? t->hdr[off] : 0;
}

static uint64_t pci_testdev_read(struct pci_testdev *d, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)pci_testdev_read_byte(d, off + i) << (8 * i);
	return v;
}

static void pci_testdev_write(struct pci_testdev *d, bool io, uint64_t off, unsigned size,
			      uint64_t val)
{
	for (unsigned i = 0; i < size && i < 8; i++)
		pci_testdev_write_byte(d, io, off + i, (uint8_t)(val >> (8 * i)));
}

static uint64_t pci_testdev_mem_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_testdev_read(opaque, off, size);
}

static void pci_testdev_mem_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_testdev_write(opaque, false, off, size, val);
}

static uint64_t pci_testdev_io_read(void *opaque, uint64_t off, unsigned size)
{
	return pci_testdev_read(opaque, off, size);
}

static void pci_testdev_io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	pci_testdev_write(opaque, true, off, size, val);
}

static const struct bus_ops pci_testdev_mem_ops = {
	.read = pci_testdev_mem_read,
	.write = pci_testdev_mem_write,
};

static const struct bus_ops pci_testdev_io_ops = {
	.read = pci_testdev_io_read,
	.write = pci_testdev_io_write,
};

/* pci.c: a BAR moved or started/stopped decoding (device lock held). */
static void pci_testdev_bar_hook(void *opaque, unsigned bar, uint64_t addr, bool decoding)
{
	struct pci_testdev *d = opaque;
	if (bar > PCI_TESTDEV_IO_BAR)
		return;
	d->bar_base[bar] = addr;
	d->bar_on[bar] = decoding;
	if (d->current >= 0 && d->t[d->current].io == (bar == PCI_TESTDEV_IO_BAR))
		pci_testdev_ioeventfd_on(d);
}

static void pci_testdev_free(struct pci_testdev *d)
{
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++)
		if (d->t[i].efd >= 0)
			close(d->t[i].efd);
	free(d);
}

/* ---- snapshots ---- */

/*
 * The PCI function, the selected test and each test's count: the rest of a
 * header never changes. The eventfds' counters are not guest-visible (a
 * read only drains them). On load the selected test's ioeventfd goes where
 * its BAR decodes, as when the guest selects it.
 */
struct pci_testdev_snap {
	int32_t current;
	uint32_t count[PCI_TESTDEV_TESTS];
};
_Static_assert(sizeof(struct pci_testdev_snap) == 4 + 4 * PCI_TESTDEV_TESTS, "file layout");

static int pci_testdev_snap_save(void *opaque, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct pci_testdev *d = opaque;
	pci_dev_snap_save(d->pci, b);
	struct pci_testdev_snap s;
	memset(&s, 0, sizeof(s));
	pci_dev_lock(d->pci);
	s.current = d->current;
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++)
		s.count[i] = pci_testdev_le32(d->t[i].hdr + 12);
	pci_dev_unlock(d->pci);
	snap_put(b, &s, sizeof(s));
	return 0;
}

static int pci_testdev_snap_load(void *opaque, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct pci_testdev *d = opaque;
	if (version != 1) {
		snprintf(err, n, "pci-testdev: version %u unknown", version);
		return -1;
	}
	if (pci_dev_snap_load(d->pci, c, err, n) < 0)
		return -1;
	struct pci_testdev_snap s;
	snap_get(c, &s, sizeof(s));
	if (c->bad) {
		snprintf(err, n, "pci-testdev: truncated");
		return -1;
	}
	if (s.current < -1 || s.current >= PCI_TESTDEV_TESTS) {
		snprintf(err, n, "pci-testdev: selected test %d", s.current);
		return -1;
	}
	pci_dev_lock(d->pci);
	pci_testdev_ioeventfd_off(d);
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++)
		pci_testdev_put32(d->t[i].hdr + 12, s.count[i]);
	d->current = s.current;
	pci_testdev_ioeventfd_on(d); /* the BAR hook told us where the BARs decode */
	pci_dev_unlock(d->pci);
	return 0;
}

static int pci_testdev_create(const struct dev_env *env, int idx, void **dev, char *err, size_t errn)
{
	(void)idx, (void)err, (void)errn;
	struct pci_testdev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm_fd = env->vm_fd;
	d->current = -1;
	/* KVM answers KVM_CHECK_EXTENSION on a VM fd as on /dev/kvm */
	d->any_length = env->vm_fd >= 0 &&
			ioctl(env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
	static const char *const kinds[] = { "no-eventfd", "wildcard-eventfd", "datamatch-eventfd" };
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++)
		d->t[i].efd = -1;
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++) {
		struct pci_testdev_test *t = &d->t[i];
		unsigned kind = i % PCI_TESTDEV_KINDS;
		t->io = i >= PCI_TESTDEV_KINDS;
		t->match_data = kind != PCI_TESTDEV_WILDCARD;
		t->hdr[0] = (uint8_t)i;
		t->hdr[1] = 1; /* width */
		pci_testdev_put32(t->hdr + 4,
				  (t->io ? PCI_TESTDEV_IO_TEST_OFF : PCI_TESTDEV_MEM_TEST_OFF) + i);
		t->hdr[8] = t->match_data ? PCI_TESTDEV_DATAMATCH : PCI_TESTDEV_NOMATCH;
		int n = snprintf((char *)t->hdr + PCI_TESTDEV_HDR_NAME,
				 PCI_TESTDEV_HDR_MAX - PCI_TESTDEV_HDR_NAME, "%s-%s",
				 t->io ? "portio" : "mmio", kinds[kind]);
		t->len = PCI_TESTDEV_HDR_NAME + (unsigned)n + 1;
		if (kind != PCI_TESTDEV_NO_EVENTFD) {
			t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (t->efd < 0) {
				int e = errno;
				pci_testdev_free(d);
				return -e;
			}
		}
	}
	const struct pci_dev_info info = {
		.vendor_id = PCI_TESTDEV_VENDOR,
		.device_id = PCI_TESTDEV_DEVICE,
		/* QEMU's default subsystem ids (Red Hat/Qumranet, 0x1100) */
		.subsys_vendor_id = 0x1af4,
		.subsys_id = 0x1100,
		.class_code = PCI_TESTDEV_CLASS,
		.intx_pin = 0,
		.name = "pci-testdev",
	};
	d->pci = pci_dev_add(env->pci, &info);
	if (!d->pci) {
		int e = errno;
		pci_testdev_free(d);
		return -e;
	}
	/* From here the function is on the bus (pci.c has no removal): a
	 * failure keeps d, which the BARs point at, and says so. */
	pci_dev_set_bar_hook(d->pci, pci_testdev_bar_hook, d);
	*dev = d;
	if (!pci_bar_add_type(d->pci, PCI_TESTDEV_MEM_BAR, PCI_BAR_TYPE_MEM32, PCI_TESTDEV_MEM_SIZE,
			      &pci_testdev_mem_ops, d) ||
	    !pci_bar_add_type(d->pci, PCI_TESTDEV_IO_BAR, PCI_BAR_TYPE_IO, PCI_TESTDEV_IO_SIZE,
			      &pci_testdev_io_ops, d))
		return -errno;
	return pci_dev_reset_mark(d->pci);
}

/* No test selected, every count 0, then the function as created (its
 * BARs stop decoding: the BAR hook hears it). */
static void pci_testdev_reset(void *dev)
{
	struct pci_testdev *d = dev;
	pci_dev_lock(d->pci);
	pci_testdev_ioeventfd_off(d);
	d->current = -1;
	for (unsigned i = 0; i < PCI_TESTDEV_TESTS; i++) {
		pci_testdev_put32(d->t[i].hdr + 12, 0);
		pci_testdev_drain(&d->t[i]);
	}
	pci_dev_unlock(d->pci);
	pci_dev_reset(d->pci);
}

/* The VM (and with it every ioeventfd) goes away after this: only the
 * eventfds and the state are ours to free. */
static void pci_testdev_destroy(void *dev)
{
	pci_testdev_free(dev);
}

static int pci_testdev_count(const struct vm_config *cfg)
{
	return cfg->pci_testdev;
}

const struct dev_ops pci_testdev_dev_ops = {
	.name = "pci-testdev",
	.desc = "pci-testdev",
	.count = pci_testdev_count,
	.create = pci_testdev_create,
	.reset = pci_testdev_reset,
	.snap = { .name = "pci-testdev", .version = 1, .save = pci_testdev_snap_save,
		  .load = pci_testdev_snap_load },
	.destroy = pci_testdev_destroy,
};
