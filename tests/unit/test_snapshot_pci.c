/*
 * Snapshots of bus 0 and every PCI device model: two fake VMs (no KVM)
 * built alike — host bridge, virtio-rng, -blk, -net, -console, pci-testdev,
 * edu — where A's devices are driven to a live state by a fake driver
 * (features, queues, MSI-X, requests done, a BAR moved, a vector pending),
 * A's event loop parked as for a snapshot, A's guest RAM copied into B's,
 * and every entry of A's registry saved, loaded into B's and saved again
 * (snapshot_roundtrip: byte-identical). Then what matters: B's configuration
 * space and MSI-X tables read as A's, and B, with its own event loop
 * started as after a restore, takes NEW requests on the restored queues and
 * answers them at the next used index. Also: payloads truncated or with bad
 * values are refused with a one-line reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/devices.h"
#include "evloop.h"
#include "iommu.h"
#include "irq.h"
#include "pci.h"
#include "snapshot.h"
#include "snapshot_priv.h"
#include "util.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "fake_vm.h"
#include "virtio_drivers.h"
#include "fake_devices.h"

#define RAM (16ull << 20)
#define DISK_BYTES (1ull << 20)
#define NET_FEATURES ((1ull << 5) | (1ull << 16) | (1ull << 3)) /* MAC, STATUS, MTU */
#define BLK_F_FLUSH (1ull << 9)

/* ---- the two VMs ---- */

struct world {
	struct vm vm;
	char img[64];
	int peer;      /* the network back end's other end */
	bool loop_on;
};
static struct world A, B;

static int world_up(struct world *w, bool start_loop)
{
	fake_vm_init(&w->vm);
	w->vm.cfg.mem_size = RAM;
	w->vm.cfg.console_virtio = true;
	if (fake_disk_image(w->img, sizeof(w->img), DISK_BYTES))
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	w->peer = sv[1];
	char err[256];
	/* the order is the registry's: both VMs are built from "one command line" */
	if (mem_init(&w->vm.mem, RAM) || evloop_init(&w->vm) || pci_init(&w->vm) ||
	    fake_pci_create(&w->vm, w->img, sv[0], err, sizeof(err)))
		return -1;
	if (start_loop && evloop_start(&w->vm))
		return -1;
	w->loop_on = start_loop;
	return 0;
}

static void world_down(struct world *w)
{
	if (w->loop_on)
		evloop_stop(&w->vm);
	dev_destroy_all(&w->vm.devs); /* as vm_destroy: virtio's too, the last first */
	evloop_destroy(&w->vm);
	pci_destroy(&w->vm);
	irq_destroy(&w->vm);
	fake_vm_free(&w->vm);
	mem_free(&w->vm.mem);
	close(w->peer);
	unlink(w->img);
}

static int setup(void **state)
{
	(void)state;
	if (fake_stdio_up())
		return -1;
	return world_up(&A, true) || world_up(&B, false) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	if (A.loop_on)
		evloop_resume(&A.vm); /* parked by the test */
	world_down(&A);
	world_down(&B);
	fake_stdio_down();
	return 0;
}

/* ---- per-device traffic ---- */

static struct drv rng, blk, net, con;
static unsigned testdev_fn, edu_fn;
static uint64_t testdev_bar, edu_bar;

static void rng_read(void)
{
	uint64_t buf = BUF(&rng, 0, rng.avail[0]);
	memset(gp(&rng, buf, 64), 0, 64);
	post(&rng, 0, &(struct seg){ buf, 64, true }, 1);
	kick(&rng, 0);
	struct vq_used_elem e = take(&rng, 0);
	assert_int_equal(e.len, 64);
}

/* A block request: header, data (written from / read into buf), status. */
static uint8_t blk_req(uint32_t type, uint64_t sector, uint8_t *data, uint32_t len)
{
	uint64_t slot = blk.avail[0] * 3u;
	uint64_t hdr = BUF(&blk, 0, slot), dat = BUF(&blk, 0, slot + 1), st = BUF(&blk, 0, slot + 2);
	uint8_t *h = gp(&blk, hdr, 16);
	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	if (type == 1)
		memcpy(gp(&blk, dat, len), data, len);
	*(uint8_t *)gp(&blk, st, 1) = 0xee;
	struct seg s[3] = { { hdr, 16, false }, { dat, len, type == 0 }, { st, 1, true } };
	post(&blk, 0, s, 3);
	kick(&blk, 0);
	take(&blk, 0);
	if (type == 0)
		memcpy(data, gp(&blk, dat, len), len);
	return *(uint8_t *)gp(&blk, st, 1);
}

static void net_tx(uint8_t tag)
{
	uint64_t buf = BUF(&net, 1, net.avail[1]);
	uint8_t *p = gp(&net, buf, 12 + 64);
	memset(p, 0, 12);
	memset(p + 12, tag, 64);
	post(&net, 1, &(struct seg){ buf, 12 + 64, false }, 1);
	kick(&net, 1);
	take(&net, 1);
	uint8_t f[128];
	ssize_t r = -1;
	for (int i = 0; i < 2000 && r < 0; i++) {
		r = recv(net.vm == &A.vm ? A.peer : B.peer, f, sizeof(f), MSG_DONTWAIT);
		if (r < 0)
			usleep(1000);
	}
	assert_int_equal(r, 64);
	assert_int_equal(f[0], tag);
}

static void net_rx(uint8_t tag)
{
	uint8_t f[64];
	memset(f, tag, sizeof(f));
	assert_int_equal(send(net.vm == &A.vm ? A.peer : B.peer, f, sizeof(f), 0), 64);
	uint16_t slot = net.used[0];
	struct vq_used_elem e = take(&net, 0);
	assert_int_equal(e.len, 12 + 64);
	assert_int_equal(((uint8_t *)gp(&net, BUF(&net, 0, slot), 13))[12], tag);
}

static void con_post(const char *s)
{
	size_t n = strlen(s);
	uint64_t buf = BUF(&con, 1, con.avail[1]);
	memcpy(gp(&con, buf, n), s, n);
	post(&con, 1, &(struct seg){ buf, (uint32_t)n, false }, 1);
	kick(&con, 1);
}

/* Exactly s on the consoles' stdout (2 s at most). */
static void con_expect(const char *s)
{
	size_t n = strlen(s);
	char got[64];
	size_t have = 0;
	for (int i = 0; i < 2000 && have < n; i++) {
		ssize_t r = read(out_r, got + have, n - have);
		if (r > 0)
			have += (size_t)r;
		else
			usleep(1000);
	}
	assert_int_equal(have, n);
	assert_memory_equal(got, s, n);
}

static void con_write(const char *s)
{
	con_post(s);
	take(&con, 1);
	con_expect(s);
}


/* A's devices, live: every queue has done work, interrupts programmed. */
static void drive_a(void)
{
	struct vm *vm = &A.vm;
	/* the host bridge: a CONFIG_ADDRESS left selected */
	const struct bus_range *r = bus_find(&vm->pio, 0xcf8, 4);
	r->ops->write(r->opaque, 0, 4, 0x80000810u);

	attach(&rng, vm, vdev(vm, "virtio-rng"), 0x100000, 16);
	msix_on(&rng, 1, 0x40);
	bring_up(&rng, F_V1, 1); /* no EVENT_IDX: an interrupt per batch */
	for (int i = 0; i < 3; i++)
		rng_read();
	/* one interrupt left pending: the queue's vector masked, then used */
	mm_wr(vm, rng.bar2 + 16 + 12, 4, 1);
	efd_count(msix_fd(vm, &rng, 1));
	rng_read();
	assert_int_equal(efd_count(msix_fd(vm, &rng, 1)), 0);
	assert_int_equal(mm_rd(vm, rng.bar2 + 0x800, 4) & 2, 2); /* PBA */

	attach(&blk, vm, vdev(vm, "virtio-blk"), 0x200000, 64);
	msix_on(&blk, 1, 0x50);
	bring_up(&blk, F_V1 | F_EVIDX | BLK_F_FLUSH, 1);
	uint8_t w[512], rb[512];
	memset(w, 0x5a, sizeof(w));
	assert_int_equal(blk_req(1, 8, w, 512), 0);
	assert_int_equal(blk_req(0, 8, rb, 512), 0);
	assert_memory_equal(w, rb, 512);

	attach(&net, vm, vdev(vm, "virtio-net"), 0x300000, 32);
	msix_on(&net, 2, 0x60);
	bring_up(&net, F_V1 | F_EVIDX | NET_FEATURES, 2);
	for (unsigned i = 0; i < 8; i++)
		post(&net, 0, &(struct seg){ BUF(&net, 0, i), 12 + 1514, true }, 1);
	kick(&net, 0);
	net_tx(0x11);
	net_tx(0x12);
	net_rx(0x21);

	attach(&con, vm, vdev(vm, "virtio-console"), 0x400000, 8);
	msix_on(&con, 2, 0x70);
	bring_up(&con, F_V1 | F_EVIDX, 2);
	con_write("before ");

	/* pci-testdev: its memory BAR moved, a test selected, one write counted */
	testdev_fn = find_fn(vm, 0x1b36, 0x0005);
	testdev_bar = PCI_MMIO_BASE + 0x1000000;
	pci_config_write(vm, testdev_fn, 0x10, 4, (uint32_t)testdev_bar);
	pci_config_write(vm, testdev_fn, 0x04, 2, 0x03);
	mm_wr(vm, testdev_bar, 1, 0);
	mm_wr(vm, testdev_bar + 2048, 1, 0xfa);
	assert_int_equal(mm_rd(vm, testdev_bar + 12, 4), 1);

	/* edu: registers written, MSI on, an interrupt raised */
	edu_fn = find_fn(vm, 0x1234, 0x11e8);
	edu_bar = pci_config_read(vm, edu_fn, 0x10, 4) & ~0xfu;
	unsigned msi = pci_config_read(vm, edu_fn, 0x34, 1);
	assert_int_equal(pci_config_read(vm, edu_fn, msi, 1), 0x05);
	pci_config_write(vm, edu_fn, msi + 4, 4, 0xfee01000u);
	pci_config_write(vm, edu_fn, msi + 12, 2, 0x66);
	pci_config_write(vm, edu_fn, msi + 2, 2, 1);
	pci_config_write(vm, edu_fn, 0x04, 2, 0x06);
	mm_wr(vm, edu_bar + 0x04, 4, 0x12345678);
	mm_wr(vm, edu_bar + 0x08, 4, 5);
	mm_wr(vm, edu_bar + 0x60, 4, 0x4);
	assert_int_equal(mm_rd(vm, edu_bar + 0x08, 4), 120);
}

/* B's configuration space, every function, reads as A's; so do the MSI-X
 * tables and PBAs. */
static void compare_config(void)
{
	for (unsigned s = 0; s < 32; s++)
		for (unsigned off = 0; off < 256; off += 4)
			assert_int_equal(pci_config_read(&B.vm, s << 3, off, 4),
					 pci_config_read(&A.vm, s << 3, off, 4));
	struct drv *all[] = { &rng, &blk, &net, &con };
	for (unsigned i = 0; i < 4; i++)
		for (unsigned off = 0; off < 16 * 3; off += 4) {
			assert_int_equal(mm_rd(&B.vm, all[i]->bar2 + off, 4), mm_rd(&A.vm, all[i]->bar2 + off, 4));
			assert_int_equal(mm_rd(&B.vm, all[i]->bar2 + 0x800, 4),
					 mm_rd(&A.vm, all[i]->bar2 + 0x800, 4));
		}
}

static void test_roundtrip_live(void **state)
{
	(void)state;
	drive_a();
	/* A console chain waiting for stdout: the pipe is full. */
	assert_int_equal(fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 4096), 4096);
	fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);
	static char fill[4096];
	memset(fill, 'x', sizeof(fill));
	assert_int_equal(write(STDOUT_FILENO, fill, sizeof(fill)), (ssize_t)sizeof(fill));
	con_post("held by stdout");
	usleep(50000);
	assert_int_equal(used_idx(&con, 1), con.used[1]); /* not answered: it waits */

	/* virtio-blk requests popped by A's loop and probably still in flight
	 * in io_uring at the pause: 64 KiB writes and a flush (ext4: slow) */
	uint16_t blk_first = blk.avail[0];
	for (unsigned i = 0; i < 5; i++) {
		uint64_t hdr = BUF(&blk, 0, 50 + i), st = BUF(&blk, 0, 56 + i);
		uint64_t dat = blk.base + 0x60000 + 0x10000ull * i;
		uint32_t type = i < 4 ? 1 : 4;
		uint64_t sector = 128ull * i;
		uint8_t *h = gp(&blk, hdr, 16);
		memset(h, 0, 16);
		memcpy(h, &type, 4);
		memcpy(h + 8, &sector, 8);
		memset(gp(&blk, dat, 0x10000), 0x30 + (int)i, 0x10000);
		*(uint8_t *)gp(&blk, st, 1) = 0xee;
		struct seg w[3] = { { hdr, 16, false }, { dat, 0x10000, false }, { st, 1, true } };
		struct seg f[2] = { { hdr, 16, false }, { st, 1, true } };
		if (i < 4)
			post(&blk, 0, w, 3);
		else
			post(&blk, 0, f, 2);
	}
	kick(&blk, 0);
	/* EVENT_IDX: avail_event follows the device's pops */
	uint16_t *avail_event = gp(&blk, RING(&blk, 0) + 0x2000 + 4 + 8ull * blk.qsz, 2);
	for (int i = 0; i < 2000 && __atomic_load_n(avail_event, __ATOMIC_ACQUIRE) != blk.avail[0]; i++)
		usleep(1000);

	/* a snapshot: A paused; the devices saved first (what they finish in
	 * flight lands in guest RAM), then RAM copied (the memory file) */
	assert_int_equal(evloop_pause(&A.vm), 0);
	bool blk_in_flight = used_idx(&blk, 0) != blk.avail[0];
	const struct dev_registry *ra = &A.vm.devs, *rb = &B.vm.devs;
	for (int i = 0; i < ra->nr; i++) {
		struct snap_buf sb = { 0 };
		char err[256] = "";
		if (ra->v[i].ops->snap.save(ra->v[i].dev, &sb, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ra->v[i].ops->name, err);
		snap_buf_free(&sb);
	}
	/* nothing in flight any more: every request answered, in A's RAM */
	assert_int_equal(used_idx(&blk, 0), blk.avail[0]);
	if (!blk_in_flight)
		print_message("note: no virtio-blk request was in flight at the pause this time\n");
	memcpy(mem_ptr(&B.vm.mem, 0, RAM), mem_ptr(&A.vm.mem, 0, RAM), RAM);

	assert_non_null(ra);
	assert_non_null(rb);
	assert_null(ra->unsupported);
	assert_int_equal(ra->nr, rb->nr);
	static const char *const kinds[] = { "pci-host", "virtio-rng", "virtio-blk", "virtio-net",
					     "virtio-console", "pci-testdev", "edu" };
	bool seen[ARRAY_SIZE(kinds)] = { false };
	for (int i = 0; i < ra->nr; i++) {
		const struct snap_ops *ops = &ra->v[i].ops->snap;
		assert_string_equal(rb->v[i].ops->name, ops->name);
		assert_int_equal(ops->version, 1);
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
			seen[k] |= !strcmp(ops->name, kinds[k]);
		char err[256] = "";
		int rc = snapshot_roundtrip(ops, ra->v[i].dev, rb->v[i].dev, err, sizeof(err));
		if (rc != 0)
			fail_msg("%s: %s", ops->name, err);
	}
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		if (!seen[k])
			fail_msg("no snapshot section for %s", kinds[k]);
	compare_config();
	/* the load raised nothing: no MSI-X message went out in B */
	struct drv *all[] = { &rng, &blk, &net, &con };
	for (unsigned i = 0; i < 4; i++)
		for (unsigned v = 0; v < 3; v++) {
			int fd = msix_fd(&B.vm, all[i], v);
			if (fd >= 0)
				assert_int_equal(efd_count(fd), 0);
		}

	/* B runs, as after a restore: its loop starts, the driver goes on.
	 * stdout has room again: B writes the held chain, once, whole. */
	char sink[4096];
	while (read(out_r, sink, sizeof(sink)) > 0)
		;
	assert_int_equal(evloop_start(&B.vm), 0);
	B.loop_on = true;
	rng.vm = blk.vm = net.vm = con.vm = &B.vm;

	/* blk: the requests finished by the save are in B's used ring */
	assert_int_equal((uint16_t)(blk.avail[0] - blk_first), 5);
	while (blk.used[0] != blk.avail[0])
		take(&blk, 0);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(*(uint8_t *)gp(&blk, BUF(&blk, 0, 56 + i), 1), 0);

	/* rng: the next request at the next used index; the vector that was
	 * pending fires when the driver unmasks it, in B */
	uint16_t before = rng.used[0];
	assert_int_equal(used_idx(&rng, 0), before);
	efd_count(msix_fd(&B.vm, &rng, 1));
	mm_wr(&B.vm, rng.bar2 + 16 + 12, 4, 0);
	assert_int_equal(efd_count(msix_fd(&B.vm, &rng, 1)), 1);
	rng_read();
	assert_int_equal(used_idx(&rng, 0), (uint16_t)(before + 1));
	assert_int_equal(efd_count(msix_fd(&B.vm, &rng, 1)), 1);

	/* blk: a write and a read on B's disk, through the restored queue */
	uint8_t w[512], r[512];
	memset(w, 0xc3, sizeof(w));
	before = blk.used[0];
	assert_int_equal(blk_req(1, 16, w, 512), 0);
	assert_int_equal(blk_req(0, 16, r, 512), 0);
	assert_memory_equal(w, r, 512);
	assert_int_equal(used_idx(&blk, 0), (uint16_t)(before + 2));

	/* net: both directions on the restored rings (rx buffers posted in A) */
	before = net.used[0];
	net_tx(0x13);
	net_rx(0x22);
	assert_int_equal(used_idx(&net, 0), (uint16_t)(before + 1));

	take(&con, 1);
	con_expect("held by stdout");
	con_write("after");

	/* pci-testdev at its moved BAR, its count kept; edu's registers */
	assert_int_equal(mm_rd(&B.vm, testdev_bar + 12, 4), 1);
	mm_wr(&B.vm, testdev_bar + 2048, 1, 0xfa);
	assert_int_equal(mm_rd(&B.vm, testdev_bar + 12, 4), 2);
	assert_int_equal(mm_rd(&B.vm, edu_bar + 0x04, 4), ~0x12345678u);
	assert_int_equal(mm_rd(&B.vm, edu_bar + 0x08, 4), 120);
	assert_int_equal(mm_rd(&B.vm, edu_bar + 0x24, 4), 0x4);
}

/* ---- bad payloads ---- */

static struct dev_inst *reg_entry(struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->devs.nr; i++)
		if (!strcmp(vm->devs.v[i].ops->name, name))
			return &vm->devs.v[i];
	fail_msg("no %s in the registry", name);
	return NULL;
}

/* Load `len` bytes of p (version v) into B's `name`: must fail, mentioning needle. */
static void expect_bad(const char *name, const uint8_t *p, size_t len, uint32_t v, const char *needle)
{
	struct dev_inst *e = reg_entry(&B.vm, name);
	struct snap_cur c = { .p = p, .left = len };
	char err[256] = "";
	int rc = e->ops->snap.load(e->dev, &c, v, err, sizeof(err));
	if (rc != -1)
		fail_msg("%s: loaded, expected an error mentioning \"%s\"", name, needle);
	if (!err[0] || strchr(err, '\n') || !strstr(err, needle) || !strstr(err, name))
		fail_msg("%s: error \"%s\" should name the device and mention \"%s\"", name, err, needle);
}

static void save_a(const char *name, struct snap_buf *b)
{
	struct dev_inst *e = reg_entry(&A.vm, name);
	char err[256] = "";
	assert_int_equal(e->ops->snap.save(e->dev, b, err, sizeof(err)), 0);
	assert_false(b->failed);
}

/* Offsets in a virtio payload: the PCI function (264 bytes and 20 per
 * MSI-X vector), then the transport (48), then 80 per queue. */
#define PCI_PART(nvec) (264u + 20u * (nvec))
#define TR_HOST_F 0
#define TR_FEATURES 16
#define TR_STATUS 38
#define Q_SIZE 24
#define Q_VQ_LAST_AVAIL 32 + 26

static void test_bad_payloads(void **state)
{
	(void)state;
	drive_a();
	assert_int_equal(evloop_pause(&A.vm), 0);
	memcpy(mem_ptr(&B.vm.mem, 0, RAM), mem_ptr(&A.vm.mem, 0, RAM), RAM);

	struct snap_buf b = { 0 };
	save_a("virtio-rng", &b);
	const unsigned tr = PCI_PART(2), q0 = tr + 48;
	assert_int_equal(b.len, q0 + 80);
	uint8_t *p = malloc(b.len);
	assert_non_null(p);

	expect_bad("virtio-rng", b.data, b.len, 2, "version");
	expect_bad("virtio-rng", b.data, b.len - 1, 1, "truncated");
	expect_bad("virtio-rng", b.data, 100, 1, "truncated");
	/* a read-only byte of configuration space: the vendor id */
	memcpy(p, b.data, b.len);
	p[0] ^= 1;
	expect_bad("virtio-rng", p, b.len, 1, "config byte 0x00");
	/* an MSI-X vector pending while unmasked (vector 0 is unmasked) */
	memcpy(p, b.data, b.len);
	p[264 + 16] = 1;
	expect_bad("virtio-rng", p, b.len, 1, "pending while unmasked");
	/* features: not what this device offers / accepted ones not offered */
	memcpy(p, b.data, b.len);
	p[tr + TR_HOST_F] ^= 0x40;
	expect_bad("virtio-rng", p, b.len, 1, "offered features");
	memcpy(p, b.data, b.len);
	p[tr + TR_FEATURES + 1] |= 0x80;
	expect_bad("virtio-rng", p, b.len, 1, "not offered");
	/* DRIVER_OK without FEATURES_OK */
	memcpy(p, b.data, b.len);
	p[tr + TR_STATUS] &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	expect_bad("virtio-rng", p, b.len, 1, "features");
	/* a queue size that is not a power of two */
	memcpy(p, b.data, b.len);
	p[q0 + Q_SIZE] = 3;
	expect_bad("virtio-rng", p, b.len, 1, "queue 0: size");
	/* the ring popped further than it can have (more than size in flight) */
	memcpy(p, b.data, b.len);
	p[q0 + Q_VQ_LAST_AVAIL] = (uint8_t)(p[q0 + Q_VQ_LAST_AVAIL] + 40);
	expect_bad("virtio-rng", p, b.len, 1, "queue 0");
	/* a config vector beyond the table */
	memcpy(p, b.data, b.len);
	p[tr + 32] = 9;
	expect_bad("virtio-rng", p, b.len, 1, "config msix vector");
	/* padding a save leaves zero: after the INTx level, after a vector's
	 * pending bit (fuzz_snapshot: both loaded, and saved back as zeros) */
	memcpy(p, b.data, b.len);
	p[258] = 0xe5;
	expect_bad("virtio-rng", p, b.len, 1, "padding");
	memcpy(p, b.data, b.len);
	p[264 + 20 + 19] = 1;
	expect_bad("virtio-rng", p, b.len, 1, "msix vector 1: bad entry");
	/* ... in the transport's part, and in a queue's ring state (pad after
	 * notify_off, pad2 after broken) */
	memcpy(p, b.data, b.len);
	p[tr + 41] = 0x10;
	expect_bad("virtio-rng", p, b.len, 1, "padding");
	memcpy(p, b.data, b.len);
	p[q0 + 32 + 37] = 1;
	expect_bad("virtio-rng", p, b.len, 1, "queue 0");
	memcpy(p, b.data, b.len);
	p[q0 + 32 + 47] = 0x80;
	expect_bad("virtio-rng", p, b.len, 1, "queue 0");
	free(p);
	snap_buf_free(&b);

	/* a disk of another size */
	save_a("virtio-blk", &b);
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	p[b.len - 16] ^= 1; /* capacity, first field of the model's part */
	expect_bad("virtio-blk", p, b.len, 1, "capacity");
	memcpy(p, b.data, b.len);
	p[b.len - 1] = 1; /* the model part's padding */
	expect_bad("virtio-blk", p, b.len, 1, "padding");
	free(p);
	snap_buf_free(&b);

	/* virtio-console's part: padding after out_pending and after out_head */
	save_a("virtio-console", &b);
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	p[b.len - 15] = 1;
	expect_bad("virtio-console", p, b.len, 1, "padding");
	memcpy(p, b.data, b.len);
	p[b.len - 9] = 1;
	expect_bad("virtio-console", p, b.len, 1, "padding");
	free(p);
	snap_buf_free(&b);

	/* the host bridge, the testdev, edu */
	save_a("pci-host", &b);
	expect_bad("pci-host", b.data, b.len - 4, 1, "truncated");
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	p[0] |= 3; /* CONFIG_ADDRESS bits 1:0 read as 0 */
	expect_bad("pci-host", p, b.len, 1, "config address");
	free(p);
	snap_buf_free(&b);

	save_a("pci-testdev", &b);
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	p[PCI_PART(0)] = 6; /* selected test */
	expect_bad("pci-testdev", p, b.len, 1, "selected test");
	free(p);
	snap_buf_free(&b);

	save_a("edu", &b);
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	p[PCI_PART(0) + 40] = 1; /* dma command: running */
	expect_bad("edu", p, b.len, 1, "dma command");
	free(p);
	snap_buf_free(&b);
}

/* intel-iommu: its register file through a round trip, read back alike;
 * a unit with other capabilities (intremap=) refuses the state. */
static void iommu_vm(struct vm *vm, bool intremap)
{
	fake_vm_init(vm);
	assert_int_equal(mem_init(&vm->mem, 1ull << 20), 0);
	assert_non_null(fake_iommu(vm, intremap));
}

static void test_iommu(void **state)
{
	(void)state;
	static struct vm a, b, c;
	iommu_vm(&a, true);
	iommu_vm(&b, true);
	iommu_vm(&c, false);
	/* root table latched, queued invalidation on with its tail moved (an
	 * empty queue page: descriptors of type 0 are invalid, so the head
	 * stops with IQE set), the event registers, a remapping table */
	mm_wr(&a, IOMMU_BASE + 0x20, 8, 0x5000);
	mm_wr(&a, IOMMU_BASE + 0x18, 4, 1u << 30);
	mm_wr(&a, IOMMU_BASE + 0x90, 8, 0x8000);
	mm_wr(&a, IOMMU_BASE + 0x18, 4, 1u << 26);
	mm_wr(&a, IOMMU_BASE + 0x88, 8, 0x20);
	mm_wr(&a, IOMMU_BASE + 0x3c, 4, 0x41);
	mm_wr(&a, IOMMU_BASE + 0x40, 4, 0xfee00000u);
	mm_wr(&a, IOMMU_BASE + 0xb8, 8, 0x9007);
	mm_wr(&a, IOMMU_BASE + 0x18, 4, (1u << 26) | (1u << 24));
	assert_int_equal(mm_rd(&a, IOMMU_BASE + 0x34, 4) & 0x10, 0x10); /* IQE */

	struct dev_inst *ea = &a.devs.v[0], *eb = &b.devs.v[0];
	assert_string_equal(ea->ops->name, "intel-iommu");
	char err[256] = "";
	if (snapshot_roundtrip(&ea->ops->snap, ea->dev, eb->dev, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	for (uint64_t off = 0; off < 0x100; off += 4)
		assert_int_equal(mm_rd(&b, IOMMU_BASE + off, 4), mm_rd(&a, IOMMU_BASE + off, 4));
	for (uint64_t off = 0x220; off < 0x260; off += 4)
		assert_int_equal(mm_rd(&b, IOMMU_BASE + off, 4), mm_rd(&a, IOMMU_BASE + off, 4));

	struct snap_buf sb = { 0 };
	assert_int_equal(ea->ops->snap.save(ea->dev, &sb, err, sizeof(err)), 0);
	struct snap_cur cur = { .p = sb.data, .left = sb.len };
	err[0] = 0;
	assert_int_equal(c.devs.v[0].ops->snap.load(c.devs.v[0].dev, &cur, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "intel-iommu: capabilities"));
	cur = (struct snap_cur){ .p = sb.data, .left = sb.len - 8 };
	assert_int_equal(eb->ops->snap.load(eb->dev, &cur, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	snap_buf_free(&sb);

	/* reset: A saves as a fresh unit (D) does, its registers read alike */
	static struct vm d;
	iommu_vm(&d, true);
	assert_non_null(ea->ops->reset);
	ea->ops->reset(ea->dev);
	struct snap_buf sa = { 0 }, sd = { 0 };
	assert_int_equal(ea->ops->snap.save(ea->dev, &sa, err, sizeof(err)), 0);
	assert_int_equal(d.devs.v[0].ops->snap.save(d.devs.v[0].dev, &sd, err, sizeof(err)), 0);
	assert_int_equal(sa.len, sd.len);
	assert_memory_equal(sa.data, sd.data, sa.len);
	snap_buf_free(&sa);
	snap_buf_free(&sd);
	for (uint64_t off = 0; off < 0x100; off += 4)
		assert_int_equal(mm_rd(&a, IOMMU_BASE + off, 4), mm_rd(&d, IOMMU_BASE + off, 4));

	struct vm *all[] = { &a, &b, &c, &d };
	for (unsigned i = 0; i < 4; i++) {
		fake_vm_free(all[i]);
		mem_free(&all[i]->mem);
	}
}

/*
 * Every device's reset (the registry's, run by the host with the loop
 * parked): each one A drove — the host bridge, the four virtio functions,
 * pci-testdev, edu — then saves as B's fresh one does; the virtio ones read
 * status 0 with no queue live; pci-testdev's moved BAR decodes no more and
 * edu's registers read as created. A type with state and no reset fails
 * here by name. And the functions work again when a driver brings them up
 * anew.
 */
static void test_reset_equals_fresh(void **state)
{
	(void)state;
	drive_a();
	assert_int_equal(evloop_pause(&A.vm), 0);
	const struct dev_registry *ra = &A.vm.devs, *rb = &B.vm.devs;
	assert_int_equal(ra->nr, rb->nr);
	int checked = 0, virtio = 0;
	for (int i = 0; i < ra->nr; i++) {
		const struct dev_ops *ops = ra->v[i].ops;
		assert_ptr_equal(rb->v[i].ops, ops);
		if (!ops->snap.name)
			continue;
		if (!ops->reset)
			fail_msg("%s has guest-visible state and no reset", ops->name);
		if (virtio_is_type(ops))
			assert_true(virtio_dev_status(ra->v[i].dev) & VIRTIO_STATUS_DRIVER_OK);
		ops->reset(ra->v[i].dev);
		if (virtio_is_type(ops)) {
			assert_int_equal(virtio_dev_status(ra->v[i].dev), 0);
			for (unsigned q = 0; q < 2; q++)
				assert_null(virtio_queue(ra->v[i].dev, q));
			virtio++;
		}
		struct snap_buf sa = { 0 }, sb = { 0 };
		char err[256] = "";
		assert_int_equal(ops->snap.save(ra->v[i].dev, &sa, err, sizeof(err)), 0);
		assert_int_equal(ops->snap.save(rb->v[i].dev, &sb, err, sizeof(err)), 0);
		if (sa.len != sb.len || memcmp(sa.data, sb.data, sa.len))
			fail_msg("%s: reset state differs from a fresh device's", ops->name);
		snap_buf_free(&sa);
		snap_buf_free(&sb);
		checked++;
	}
	assert_int_equal(virtio, 4); /* rng, console, blk, net */
	assert_int_equal(checked, 7); /* and the host bridge, pci-testdev, edu */
	evloop_resume(&A.vm);
	struct vm *vm = &A.vm;
	/* the bridge's CONFIG_ADDRESS latch is clear */
	const struct bus_range *r = bus_find(&vm->pio, 0xcf8, 4);
	assert_int_equal(r->ops->read(r->opaque, 0, 4), 0);
	/* pci-testdev: decoding off, its BAR back where firmware put it */
	assert_int_equal(pci_config_read(vm, testdev_fn, 0x04, 2) & 0x3, 0);
	assert_int_not_equal(pci_config_read(vm, testdev_fn, 0x10, 4), (uint32_t)testdev_bar);
	/* edu: memory decoding on (firmware's), MSI off, registers as created */
	unsigned msi = pci_config_read(vm, edu_fn, 0x34, 1);
	assert_int_equal(pci_config_read(vm, edu_fn, msi + 2, 2) & 1, 0);
	assert_int_equal(pci_config_read(vm, edu_fn, 0x10, 4) & ~0xfu, (uint32_t)edu_bar);
	assert_int_equal(mm_rd(vm, edu_bar + 0x04, 4), 0);
	assert_int_equal(mm_rd(vm, edu_bar + 0x08, 4), 0);
	assert_int_equal(mm_rd(vm, edu_bar + 0x24, 4), 0);
	mm_wr(vm, edu_bar + 0x08, 4, 4);
	assert_int_equal(mm_rd(vm, edu_bar + 0x08, 4), 24);
	/* a new driver session on the reset disk: it serves requests again */
	attach(&blk, vm, vdev(vm, "virtio-blk"), 0x200000, 64);
	bring_up(&blk, F_V1 | F_EVIDX | BLK_F_FLUSH, 1);
	uint8_t w[512], rb2[512];
	memset(w, 0x3c, sizeof(w));
	assert_int_equal(blk_req(1, 16, w, 512), 0);
	assert_int_equal(blk_req(0, 16, rb2, 512), 0);
	assert_memory_equal(w, rb2, 512);
}

/* A device that cannot be saved makes the VM refuse, naming it. */
static void test_unsupported(void **state)
{
	(void)state;
	assert_null(A.vm.devs.unsupported);
	dev_registry_unsupported(&A.vm.devs, "--device vfio");
	assert_string_equal(A.vm.devs.unsupported, "--device vfio");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_payloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_equals_fresh, setup, teardown),
		cmocka_unit_test(test_iommu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
