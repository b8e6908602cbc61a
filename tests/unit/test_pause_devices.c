/*
 * Pause → resume against every device: the companion of the snapshot tests'
 * save → load → compare. One fake VM (no KVM, no vCPUs) with every legacy,
 * PCI and virtio device the two snapshot tests build, its event loop thread
 * running, every device brought to a live state by a fake driver. Then,
 * over the device registry:
 *   1. lifecycle_pause (vm->ncpus is 0: only its device side runs), with
 *      virtio-blk writes in flight in io_uring: their completions arrive
 *      but reach no used ring while paused (checked before the first save,
 *      whose quiesce answers them: a snapshot holds nothing in flight);
 *   2. every entry saved, with the snapshot clock pinned;
 *   3. while paused, host-side things happen that would change what the
 *      guest sees if a device acted on them: input typed to the UART,
 *      requests posted and notified on rng, blk, net's and the console's
 *      transmit queues, a frame and console input from the back ends, the
 *      PIT's periods passing;
 *   4. every entry saved again: byte for byte the first save, the failure
 *      naming the device and the first differing byte; nothing reached
 *      guest RAM or raised an interrupt either;
 *   5. lifecycle_resume: everything held back happens now (pausing lost
 *      nothing).
 * Every registry entry must have a row in pause_cases, which says what the
 * test makes happen to it (or why nothing host-side can): a device added
 * later without one fails the test with its name.
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
#include "lifecycle.h"
#include "pci.h"
#include "snapshot.h"
#include "snapshot_priv.h"
#include "util.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "fake_vm.h"
#include "bus_access.h"
#include "virtio_drivers.h"
#include "fake_devices.h"

#define RAM (16ull << 20)
#define DISK_BYTES (1ull << 20)
#define NET_FEATURES ((1ull << 5) | (1ull << 16) | (1ull << 3)) /* MAC, STATUS, MTU */
#define BLK_F_FLUSH (1ull << 9)
#define PIT_COUNT 11932 /* channel 0: 10 ms periods */
#define PAUSED_MS 80    /* long enough for 8 PIT periods and every completion */

static struct vm vm;
static char img[64];
static int peer = -1; /* the network back end's other end */

/* ---- the VM: every device of test_snapshot_legacy and test_snapshot_pci ---- */

static int setup(void **state)
{
	(void)state;
	if (fake_stdio_up())
		return -1;
	fake_vm_init(&vm);
	fake_irq_hook = fake_irq_split; /* ISA lines reach the PIC and the IOAPIC */
	vm.cfg.mem_size = RAM;
	vm.cfg.console_virtio = true;
	if (fake_disk_image(img, sizeof(img), DISK_BYTES))
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	peer = sv[1];
	char err[256];
	/* both snapshot tests' devices (fake_devices.h), and test_snapshot_pci's
	 * intel-iommu (it builds one in VMs of its own): created before the
	 * devices behind it and the IOAPIC, as vm_create_devices does */
	if (mem_init(&vm.mem, RAM) || evloop_init(&vm) || pci_init(&vm) || !fake_iommu(&vm, true) ||
	    fake_legacy_create(&vm) || fake_pci_create(&vm, img, sv[0], err, sizeof(err)) ||
	    lifecycle_init(&vm) || evloop_start(&vm))
		return -1;
	/* pci.c's INTx goes through irq.c to the same chips */
	irq_attach(&vm, dev_find(&vm.devs, "pic", 0), dev_find(&vm.devs, "ioapic", 0));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char err[256];
	devices_snap_clock_pin(false);
	lifecycle_resume(&vm, err, sizeof(err)); /* a failed test may leave it paused */
	lifecycle_destroy(&vm);
	evloop_stop(&vm);
	dev_destroy_all(&vm.devs); /* as vm_destroy: virtio's and the IOMMU too */
	evloop_destroy(&vm);
	pci_destroy(&vm);
	irq_destroy(&vm);
	fake_vm_free(&vm);
	mem_free(&vm.mem);
	close(peer);
	unlink(img);
	fake_stdio_down();
	return 0;
}

/* ---- the devices, live ---- */

static struct drv rng, blk, net, con;

static void ioapic_rte(unsigned pin, uint32_t hi, uint32_t lo)
{
	wr(&vm.mmio, IRQ_IOAPIC_ADDR, 4, 0x10 + 2 * pin + 1);
	wr(&vm.mmio, IRQ_IOAPIC_ADDR + 0x10, 4, hi);
	wr(&vm.mmio, IRQ_IOAPIC_ADDR, 4, 0x10 + 2 * pin);
	wr(&vm.mmio, IRQ_IOAPIC_ADDR + 0x10, 4, lo);
}

/* Wait (2 s at most) until IOAPIC pin `pin` has delivered more than `than`. */
static uint64_t wait_delivered(unsigned pin, uint64_t than)
{
	for (int i = 0; i < 2000 && ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), pin) <= than; i++)
		usleep(1000);
	uint64_t n = ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), pin);
	if (n <= than)
		fail_msg("IOAPIC pin %u: nothing delivered", pin);
	return n;
}

/* Messages sent on d's MSI-X vector vec so far (pci's count: the vector's
 * eventfd is KVM's irqfd, read by nobody here but the test). */
static uint64_t msix_sent(struct drv *d, unsigned vec)
{
	struct pci_irt_entry e[64];
	unsigned n = pci_irt_snapshot(&vm, e, 64);
	for (unsigned i = 0; i < n; i++)
		if (e[i].devfn == d->devfn && e[i].vector == vec)
			return e[i].sent;
	return 0;
}

/* Wait (2 s at most) for a message on d's MSI-X vector vec. */
static void wait_msix(struct drv *d, unsigned vec)
{
	for (int i = 0; i < 2000; i++) {
		if (efd_count(msix_fd(&vm, d, vec)))
			return;
		usleep(1000);
	}
	fail_msg("MSI-X vector %u of %02x.%x: no message (sent %llu)", vec, d->devfn >> 3, d->devfn & 7,
		 (unsigned long long)msix_sent(d, vec));
}

static void rng_read(void)
{
	uint64_t buf = BUF(&rng, 0, rng.avail[0]);
	post(&rng, 0, &(struct seg){ buf, 64, true }, 1);
	kick(&rng, 0);
	assert_int_equal(take(&rng, 0).len, 64);
}

/* A block request (header, data, status) posted, not kicked. */
static void blk_post(uint32_t type, uint64_t sector, uint64_t dat, uint32_t len, uint64_t hdr, uint64_t st)
{
	uint8_t *h = gp(&blk, hdr, 16);
	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*(uint8_t *)gp(&blk, st, 1) = 0xee;
	struct seg s[3] = { { hdr, 16, false }, { dat, len, type == 0 }, { st, 1, true } };
	if (len)
		post(&blk, 0, s, 3);
	else
		post(&blk, 0, (struct seg[2]){ s[0], s[2] }, 2);
}

static uint8_t blk_req(uint32_t type, uint64_t sector, uint8_t *data, uint32_t len)
{
	uint64_t slot = blk.avail[0] * 3u;
	uint64_t hdr = BUF(&blk, 0, slot), dat = BUF(&blk, 0, slot + 1), st = BUF(&blk, 0, slot + 2);
	if (type == 1)
		memcpy(gp(&blk, dat, len), data, len);
	blk_post(type, sector, dat, len, hdr, st);
	kick(&blk, 0);
	take(&blk, 0);
	if (type == 0)
		memcpy(data, gp(&blk, dat, len), len);
	return *(uint8_t *)gp(&blk, st, 1);
}

static void net_tx(uint8_t tag, bool wait)
{
	uint64_t buf = BUF(&net, 1, net.avail[1]);
	uint8_t *p = gp(&net, buf, 12 + 64);
	memset(p, 0, 12);
	memset(p + 12, tag, 64);
	post(&net, 1, &(struct seg){ buf, 12 + 64, false }, 1);
	kick(&net, 1);
	if (wait)
		take(&net, 1);
}

static void net_peer_expect(uint8_t tag)
{
	uint8_t f[128];
	ssize_t r = -1;
	for (int i = 0; i < 2000 && r < 0; i++) {
		r = recv(peer, f, sizeof(f), MSG_DONTWAIT);
		if (r < 0)
			usleep(1000);
	}
	assert_int_equal(r, 64);
	assert_int_equal(f[0], tag);
}

static void net_rx_expect(uint8_t tag)
{
	uint16_t slot = net.used[0];
	struct vq_used_elem e = take(&net, 0);
	assert_int_equal(e.len, 12 + 64);
	assert_int_equal(((uint8_t *)gp(&net, BUF(&net, 0, slot), 13))[12], tag);
}

static void peer_send(uint8_t tag)
{
	uint8_t f[64];
	memset(f, tag, sizeof(f));
	assert_int_equal(send(peer, f, sizeof(f), 0), 64);
}

static void con_post(const char *s)
{
	size_t n = strlen(s);
	uint64_t buf = BUF(&con, 1, con.avail[1]);
	memcpy(gp(&con, buf, n), s, n);
	post(&con, 1, &(struct seg){ buf, (uint32_t)n, false }, 1);
	kick(&con, 1);
}

/* Exactly s on the console's stdout (2 s at most). */
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

/* Host input to the console, taken by the guest from receiveq 0. */
static void con_typed_expect(const char *s)
{
	size_t n = strlen(s), have = 0;
	char got[64];
	while (have < n) {
		uint16_t slot = con.used[0];
		struct vq_used_elem e = take(&con, 0);
		assert_true(e.len > 0 && have + e.len <= n);
		memcpy(got + have, gp(&con, BUF(&con, 0, slot), e.len), e.len);
		have += e.len;
	}
	assert_memory_equal(got, s, n);
}

static void drive_legacy(void)
{
	struct bus *pio = &vm.pio;
	pic_firmware_init(dev_find(&vm.devs, "pic", 0));
	wr(pio, 0x21, 1, 0xe0); /* master: IRQ 0-4 unmasked */
	wr(pio, 0xa1, 1, 0xfb); /* slave: IRQ 10 unmasked */
	ioapic_rte(2, 0x01000000, 0x30);  /* PIT: edge, vector 0x30 */
	ioapic_rte(4, 0x01000000, 0x34);  /* COM1: edge, vector 0x34 */
	ioapic_rte(10, 0x02000000, 0x8000 | 0x3a); /* level, vector 0x3a */
	wr(pio, PC_TESTDEV_IRQ_PORT + 10, 1, 1); /* pin 10 fires, awaits its EOI */
	wr(pio, PC_TESTDEV_SCRATCH_PORT, 4, 0xdeadbeef);

	/* UART: 8N1, FIFO, RX interrupt through OUT2; two bytes in and read */
	wr(pio, UART_COM1_BASE + 3, 1, 0x83);
	wr(pio, UART_COM1_BASE + 0, 1, 0x03);
	wr(pio, UART_COM1_BASE + 1, 1, 0x00);
	wr(pio, UART_COM1_BASE + 3, 1, 0x03);
	wr(pio, UART_COM1_BASE + 2, 1, 0x07);
	wr(pio, UART_COM1_BASE + 1, 1, 0x01);
	wr(pio, UART_COM1_BASE + 4, 1, 0x0b);
	uint64_t com = ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 4);
	uart_receive(dev_find(&vm.devs, "uart", 0), (const uint8_t *)"hi", 2);
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 4), com + 1);
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 'h');
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 'i');
	assert_int_equal(rd(pio, UART_COM1_BASE + 2, 1) & 0x01, 0x01); /* nothing pending */

	wr(pio, 0x64, 1, 0xaa); /* i8042 self test: 0x55 waiting */
	wr(pio, 0xcf9, 1, 0x02);
	wr(pio, BOOT_TIMER_PORT, 4, 7);
	wr(pio, FW_CFG_PORT_SEL, 2, 0x00); /* the signature, 2 bytes read */
	rd(pio, FW_CFG_PORT_DATA, 1);
	rd(pio, FW_CFG_PORT_DATA, 1);
	wr(pio, ACPI_PM_BASE + 2, 2, 0x0101); /* TMR_EN, PWRBTN_EN */
	wr(pio, 0x70, 1, 0x40);
	wr(pio, 0x71, 1, 0xab);

	/* PIT: channel 0 rate generator, 10 ms: its timer armed and firing */
	wr(pio, 0x43, 1, 0x34);
	wr(pio, 0x40, 1, PIT_COUNT & 0xff);
	wr(pio, 0x40, 1, PIT_COUNT >> 8);
	wr(pio, 0x61, 1, 0x01); /* channel 2 gated on */
	wait_delivered(2, ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 2));
}

static void drive_pci(void)
{
	/* the host bridge: a CONFIG_ADDRESS left selected */
	wr(&vm.pio, 0xcf8, 4, 0x80000810u);
	/* pci-testdev: a write counted; edu: a factorial and its MSI */
	unsigned fn = 0;
	for (unsigned s = 1; s < 32 && !fn; s++)
		if (pci_config_read(&vm, s << 3, 0, 4) == 0x11e81234u)
			fn = s << 3;
	assert_int_not_equal(fn, 0);
	uint64_t edu_bar = pci_config_read(&vm, fn, 0x10, 4) & ~0xfu;
	unsigned msi = pci_config_read(&vm, fn, 0x34, 1);
	pci_config_write(&vm, fn, msi + 4, 4, 0xfee01000u);
	pci_config_write(&vm, fn, msi + 12, 2, 0x66);
	pci_config_write(&vm, fn, msi + 2, 2, 1);
	pci_config_write(&vm, fn, 0x04, 2, 0x06);
	mm_wr(&vm, edu_bar + 0x08, 4, 5);
	assert_int_equal(mm_rd(&vm, edu_bar + 0x08, 4), 120);

	attach(&rng, &vm, vdev(&vm, "virtio-rng"), 0x100000, 16);
	msix_on(&rng, 1, 0x40);
	bring_up(&rng, F_V1, 1); /* no EVENT_IDX: an interrupt per batch */
	rng_read();

	attach(&blk, &vm, vdev(&vm, "virtio-blk"), 0x200000, 64);
	msix_on(&blk, 1, 0x50);
	bring_up(&blk, F_V1 | F_EVIDX | BLK_F_FLUSH, 1);
	uint8_t w[512], r[512];
	memset(w, 0x5a, sizeof(w));
	assert_int_equal(blk_req(1, 8, w, 512), 0);
	assert_int_equal(blk_req(0, 8, r, 512), 0);
	assert_memory_equal(w, r, 512);

	attach(&net, &vm, vdev(&vm, "virtio-net"), 0x300000, 32);
	msix_on(&net, 2, 0x60);
	bring_up(&net, F_V1 | F_EVIDX | NET_FEATURES, 2);
	for (unsigned i = 0; i < 8; i++)
		post(&net, 0, &(struct seg){ BUF(&net, 0, i), 12 + 1514, true }, 1);
	kick(&net, 0);
	net_tx(0x11, true);
	net_peer_expect(0x11);
	peer_send(0x21);
	net_rx_expect(0x21);

	attach(&con, &vm, vdev(&vm, "virtio-console"), 0x400000, 8);
	msix_on(&con, 2, 0x70);
	bring_up(&con, F_V1 | F_EVIDX, 2);
	for (unsigned i = 0; i < 4; i++)
		post(&con, 0, &(struct seg){ BUF(&con, 0, i), 64, true }, 1);
	kick(&con, 0);
	con_post("before ");
	take(&con, 1);
	con_expect("before ");
	assert_int_equal(write(in_w, "ab", 2), 2);
	con_typed_expect("ab");
}

/* virtio-blk requests popped by the loop, likely still in flight in
 * io_uring when the pause comes: 64 KiB writes and a flush. */
static void blk_in_flight(void)
{
	for (unsigned i = 0; i < 5; i++) {
		uint64_t dat = blk.base + 0x60000 + 0x10000ull * i;
		memset(gp(&blk, dat, 0x10000), 0x30 + (int)i, 0x10000);
		blk_post(i < 4 ? 1 : 4, 128ull * i, dat, i < 4 ? 0x10000 : 0, BUF(&blk, 0, 50 + i),
			 BUF(&blk, 0, 56 + i));
	}
	/* EVENT_IDX: the driver wants an interrupt only past these five, at
	 * the request blk_during posts while paused: one message, after the
	 * resume, whichever of the five the loop or the save's quiesce answers */
	struct vq_avail *a = gp(&blk, RING(&blk, 0) + 0x1000, 6 + 2ull * blk.qsz + 2);
	a->ring[blk.qsz] = blk.avail[0];
	kick(&blk, 0);
	/* EVENT_IDX: avail_event follows the device's pops */
	uint16_t *avail_event = gp(&blk, RING(&blk, 0) + 0x2000 + 4 + 8ull * blk.qsz, 2);
	for (int i = 0; i < 2000 && __atomic_load_n(avail_event, __ATOMIC_ACQUIRE) != blk.avail[0]; i++)
		usleep(1000);
}

/* ---- what happens to each device while paused, and after ---- */

static struct drv *const virtio_drvs[] = { &rng, &blk, &net, &con };
static const char *const virtio_names[] = { "virtio-rng", "virtio-blk", "virtio-net", "virtio-console" };
static uint64_t pit_at_pause, com_at_pause;
static uint16_t blk_read_head;

static void uart_during(void)
{
	com_at_pause = ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 4);
	uart_receive(dev_find(&vm.devs, "uart", 0), (const uint8_t *)"p!", 2);
}

static void uart_held(void)
{
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 4), com_at_pause);
}

static void uart_after(void)
{
	struct bus *pio = &vm.pio;
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 4), com_at_pause + 1); /* its line rose */
	assert_int_equal(rd(pio, UART_COM1_BASE + 2, 1), 0xc4);	      /* FIFO, RX data */
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), 'p');
	assert_int_equal(rd(pio, UART_COM1_BASE + 0, 1), '!');
	assert_int_equal(rd(pio, UART_COM1_BASE + 5, 1) & 0x01, 0);
}

/* The PIT's timer runs on: its periods pass during the pause (PAUSED_MS). */
static void pit_during(void)
{
	pit_at_pause = ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 2);
}

static void pit_held(void)
{
	assert_int_equal(ioapic_delivered(dev_find(&vm.devs, "ioapic", 0), 2), pit_at_pause);
}

static void pit_after(void)
{
	wait_delivered(2, pit_at_pause);
	/* the 8259 latched it too: IRR bit 0 */
	wr(&vm.pio, 0x20, 1, 0x0a);
	assert_int_equal(rd(&vm.pio, 0x20, 1) & 0x01, 0x01);
}

static void rng_during(void)
{
	post(&rng, 0, &(struct seg){ BUF(&rng, 0, rng.avail[0]), 64, true }, 1);
	kick(&rng, 0);
}

static void rng_after(void)
{
	assert_int_equal(take(&rng, 0).len, 64);
	assert_int_equal(used_idx(&rng, 0), rng.avail[0]);
	wait_msix(&rng, 1);
}

static void blk_during(void)
{
	uint64_t slot = 40;
	uint64_t hdr = BUF(&blk, 0, slot), dat = BUF(&blk, 0, slot + 1), st = BUF(&blk, 0, slot + 2);
	memset(gp(&blk, dat, 512), 0, 512);
	blk_read_head = blk.next_desc[0];
	blk_post(0, 8, dat, 512, hdr, st);
	kick(&blk, 0);
}

static void blk_after(void)
{
	/* the requests quiesced by the save come first, then the read at the
	 * next used index */
	struct vq_used_elem e = { 0 };
	while (blk.used[0] != blk.avail[0])
		e = take(&blk, 0);
	assert_int_equal(e.id, blk_read_head);
	assert_int_equal(used_idx(&blk, 0), blk.avail[0]);
	assert_int_equal(*(uint8_t *)gp(&blk, BUF(&blk, 0, 42), 1), 0);
	uint8_t want[512];
	memset(want, 0x30, sizeof(want)); /* blk_in_flight's first write covers sector 8 */
	assert_memory_equal(gp(&blk, BUF(&blk, 0, 41), 512), want, 512);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(*(uint8_t *)gp(&blk, BUF(&blk, 0, 56 + i), 1), 0);
	wait_msix(&blk, 1); /* the read's (see blk_in_flight) */
}

static void net_during(void)
{
	peer_send(0x33);
	net_tx(0x44, false);
}

static void net_held(void)
{
	uint8_t f[128];
	assert_int_equal(recv(peer, f, sizeof(f), MSG_DONTWAIT), -1);
}

static void net_after(void)
{
	net_rx_expect(0x33);
	take(&net, 1);
	net_peer_expect(0x44);
}

static void con_during(void)
{
	assert_int_equal(write(in_w, "typed", 5), 5);
	con_post("out");
}

static void con_held(void)
{
	char c;
	assert_int_equal(read(out_r, &c, 1), -1);
}

static void con_after(void)
{
	con_typed_expect("typed");
	take(&con, 1);
	con_expect("out");
}

/*
 * One row per kind of registry entry: what the host does to it while the
 * VM is paused (during), what must not have happened yet (held: beyond its
 * payload, which the two saves compare), what must happen after the resume
 * (after). A device that nothing on the host side drives says why instead.
 */
struct pause_case {
	const char *name;
	void (*during)(void), (*held)(void), (*after)(void);
	const char *none; /* with no `during`: why nothing host-side reaches it */
	bool seen;
};

static struct pause_case pause_cases[] = {
	{ "pci-host", .none = "guest-driven only (CONFIG_ADDRESS)" },
	{ "intel-iommu", .none = "guest-driven only: invalidations run in the register write" },
	{ "uart", uart_during, uart_held, uart_after, NULL, false },
	{ "debug-exit", .none = "no state: a write stops the VM at once" },
	{ "i8042", .none = "no host keyboard or mouse: guest commands only" },
	{ "sysreset", .none = "guest-driven only" },
	{ "boot-timer", .none = "guest-driven only (its marks' times: pinned clock)" },
	{ "fw_cfg", .none = "guest-driven only (DMA runs in the register write)" },
	{ "acpi-pm", .none = "its timer reads the clock, pinned for both saves; its one host-side event, "
			     "the RTC's wake from S3, comes from a sleeping vCPU, which a pause keeps asleep" },
	{ "rtc", .none = "its time reads the clock, pinned for both saves; no host timer (a sleeping "
			 "vCPU polls its alarm)" },
	{ "ioapic", .none = "its lines are driven by the UART and PIT rows (their held checks)" },
	{ "pic", .none = "its lines are driven by the UART and PIT rows (IRR in its payload)" },
	{ "pit", pit_during, pit_held, pit_after, NULL, false },
	{ "pc-testdev", .none = "guest-driven only" },
	{ "pci-testdev", .none = "guest-driven only" },
	{ "edu", .none = "computes and DMAs in the register write: no thread or timer" },
	{ "virtio-rng", rng_during, NULL, rng_after, NULL, false },
	{ "virtio-console", con_during, con_held, con_after, NULL, false },
	{ "virtio-blk", blk_during, NULL, blk_after, NULL, false },
	{ "virtio-net", net_during, net_held, net_after, NULL, false },
};

static struct pause_case *case_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(pause_cases); i++)
		if (!strcmp(pause_cases[i].name, name))
			return &pause_cases[i];
	return NULL;
}

/* Every registry entry's payload, in registry order (empty: no state). */
static void save_all(struct snap_buf *bufs)
{
	const struct dev_registry *r = &vm.devs;
	for (int i = 0; i < r->nr; i++) {
		char err[256] = "";
		const struct dev_inst *d = &r->v[i];
		bufs[i] = (struct snap_buf){ 0 };
		if (d->ops->snap.name &&
		    (d->ops->snap.save(d->dev, &bufs[i], err, sizeof(err)) != 0 || bufs[i].failed))
			fail_msg("%s#%d: save while paused: %s", d->ops->name, d->index, err);
	}
}

static void compare_saves(const struct snap_buf *a, const struct snap_buf *b)
{
	const struct dev_registry *r = &vm.devs;
	for (int i = 0; i < r->nr; i++) {
		const char *name = r->v[i].ops->name;
		unsigned inst = (unsigned)r->v[i].index;
		if (a[i].len != b[i].len)
			fail_msg("%s#%u changed while paused: payload %zu bytes, then %zu", name, inst, a[i].len,
				 b[i].len);
		for (size_t k = 0; k < a[i].len; k++)
			if (a[i].data[k] != b[i].data[k])
				fail_msg("%s#%u changed while paused: byte %zu of %zu was %#04x, then %#04x", name,
					 inst, k, a[i].len, a[i].data[k], b[i].data[k]);
	}
}

static void test_pause_every_device(void **state)
{
	(void)state;
	char err[256] = "";
	const struct dev_registry *r = &vm.devs;
	assert_null(r->unsupported);

	/* 5. coverage first: every entry has its row, every row an entry */
	for (int i = 0; i < r->nr; i++) {
		struct pause_case *c = case_of(r->v[i].ops->name);
		if (!c)
			fail_msg("%s: no row in pause_cases (what does the host do to it while paused?)",
				 r->v[i].ops->name);
		assert_true(c->during || c->none);
		c->seen = true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(pause_cases); i++)
		if (!pause_cases[i].seen)
			fail_msg("%s: in pause_cases but not built (or not registered)", pause_cases[i].name);

	drive_legacy();
	drive_pci();
	blk_in_flight();

	/* 1. paused as the API pauses (no vCPUs here: ncpus is 0) */
	assert_int_equal(vm.ncpus, 0);
	uint16_t blk_used = used_idx(&blk, 0);
	bool blk_pending = blk_used != blk.avail[0];
	if (lifecycle_pause(&vm, err, sizeof(err)) != 0)
		fail_msg("lifecycle_pause: %s", err);
	assert_true(lifecycle_paused(&vm));
	for (unsigned i = 0; i < ARRAY_SIZE(virtio_drvs); i++)
		for (unsigned v = 0; v < 3; v++)
			efd_count(msix_fd(&vm, virtio_drvs[i], v));
	/* what io_uring completes now is not answered into the used ring:
	 * the loop is parked (only a save's quiesce may finish it) */
	blk_used = used_idx(&blk, 0);
	usleep(30000);
	assert_int_equal(used_idx(&blk, 0), blk_used);
	if (!blk_pending)
		fprintf(stderr, "note: no virtio-blk request was in flight at the pause this time\n"); /* stdout is the console's pipe */

	/* 2. the first save */
	struct snap_buf *first = calloc((size_t)r->nr, sizeof(*first));
	struct snap_buf *second = calloc((size_t)r->nr, sizeof(*second));
	assert_non_null(first);
	assert_non_null(second);
	devices_snap_clock_pin(true);
	save_all(first);
	assert_int_equal(used_idx(&blk, 0), blk.avail[0]); /* quiesced: nothing in flight */
	uint16_t used_at_save[ARRAY_SIZE(virtio_drvs)][2];
	for (unsigned i = 0; i < ARRAY_SIZE(virtio_drvs); i++)
		for (unsigned q = 0; q < 2; q++)
			used_at_save[i][q] = used_idx(virtio_drvs[i], q);

	/* 3. the host goes on while the guest is paused */
	for (size_t i = 0; i < ARRAY_SIZE(pause_cases); i++)
		if (pause_cases[i].during)
			pause_cases[i].during();
	usleep(PAUSED_MS * 1000);

	/* 4. nothing guest-visible changed: payloads, used rings, interrupts */
	save_all(second);
	devices_snap_clock_pin(false);
	compare_saves(first, second);
	for (int i = 0; i < r->nr; i++) {
		snap_buf_free(&first[i]);
		snap_buf_free(&second[i]);
	}
	free(first);
	free(second);
	for (unsigned i = 0; i < ARRAY_SIZE(virtio_drvs); i++) {
		for (unsigned q = 0; q < 2; q++)
			assert_int_equal(used_idx(virtio_drvs[i], q), used_at_save[i][q]);
		for (unsigned v = 0; v < 3; v++)
			if (efd_count(msix_fd(&vm, virtio_drvs[i], v)))
				fail_msg("%s: MSI-X vector %u sent while paused", virtio_names[i], v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(pause_cases); i++)
		if (pause_cases[i].held)
			pause_cases[i].held();

	/* 5. resumed: what was held back happens now */
	if (lifecycle_resume(&vm, err, sizeof(err)) != 0)
		fail_msg("lifecycle_resume: %s", err);
	assert_false(lifecycle_paused(&vm));
	for (size_t i = 0; i < ARRAY_SIZE(pause_cases); i++)
		if (pause_cases[i].after)
			pause_cases[i].after();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_every_device, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
