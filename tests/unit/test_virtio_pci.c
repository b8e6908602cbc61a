/*
 * Unit tests for the virtio PCI transport on a fake VM (no KVM): the guest's
 * view through configuration space and BAR 0/2 accesses, a test device model
 * with two queues, feature negotiation, the status machine, queue set-up
 * with bad values, reset, interrupts (INTx/ISR and MSI-X) and notifies
 * before DRIVER_OK. Most tests run without an event loop (the transport
 * then acts inline); the last ones start the real loop thread and check the
 * asynchronous reset against a queue_notify in progress.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evloop.h"
#include "pci.h"
#include "util.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "fake_vm.h"

#define RAM (16ull << 20)
#define QMAX 16
#define DEV_FEATURE_BIT 5 /* the test model offers feature 5 */


static struct vm vm;
static struct virtio_dev *dev;
#include "virtio_driver.h"

/* ---- the test device model ---- */

static struct {
	atomic_int notify[2], driver_ok, reset, destroy, config_writes;
	atomic_int in_notify;      /* queue_notify running now */
	atomic_int reset_overlap;  /* reset ran while queue_notify did */
	atomic_int slow_ms;        /* queue_notify sleeps this long */
	atomic_int processed;
	uint8_t config[8];
} model;

static struct vq_elem elem;

static void m_queue_notify(struct virtio_dev *d, unsigned q)
{
	atomic_fetch_add(&model.in_notify, 1);
	atomic_fetch_add(&model.notify[q], 1);
	if (atomic_load(&model.slow_ms))
		usleep((useconds_t)atomic_load(&model.slow_ms) * 1000);
	struct virtqueue *vq = virtio_queue(d, q);
	bool pushed = false;
	while (vq && virtio_queue_pop(d, q, &elem) > 0) {
		/* echo: write 0xab into every writable byte */
		for (unsigned i = 0; i < elem.n_in; i++)
			memset(elem.in[i].iov_base, 0xab, elem.in[i].iov_len);
		vq_push(vq, elem.head, (uint32_t)elem.in_len);
		atomic_fetch_add(&model.processed, 1);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(d, q);
	atomic_fetch_sub(&model.in_notify, 1);
}

static void m_driver_ok(struct virtio_dev *d)
{
	(void)d;
	atomic_fetch_add(&model.driver_ok, 1);
}

static void m_reset(struct virtio_dev *d)
{
	(void)d;
	if (atomic_load(&model.in_notify))
		atomic_fetch_add(&model.reset_overlap, 1);
	atomic_fetch_add(&model.reset, 1);
}

static void m_destroy(struct virtio_dev *d)
{
	(void)d;
	atomic_fetch_add(&model.destroy, 1);
}

static void m_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
	(void)d;
	memcpy(buf, model.config + off, len);
}

static void m_config_write(struct virtio_dev *d, unsigned off, const void *buf, unsigned len)
{
	(void)d;
	memcpy(model.config + off, buf, len);
	atomic_fetch_add(&model.config_writes, 1);
}

static const struct virtio_dev_ops m_ops = {
	.name = "virtio-test",
	.device_type = VIRTIO_ID_CONSOLE,
	.features = 1ull << DEV_FEATURE_BIT,
	.nr_queues = 2,
	.queue_max = QMAX,
	.config_size = sizeof(model.config),
	.config_read = m_config_read,
	.config_write = m_config_write,
	.queue_notify = m_queue_notify,
	.driver_ok = m_driver_ok,
	.reset = m_reset,
	.destroy = m_destroy,
};

static struct virtio_dev_stats stats(void)
{
	struct virtio_dev_stats st;
	virtio_dev_get_stats(dev, &st);
	return st;
}

static void reset_dev(void)
{
	cc_wr(STATUS, 1, 0);
	wait_status(0);
}

/* ---- harness ---- */

static void find_caps(void)
{
	cap_common = cap_notify = cap_isr = cap_device = notify_mult = cap_msix = 0;
	assert_true(cfg_rd(0x06, 2) & 0x10); /* capability list */
	unsigned seen = 0;
	for (unsigned p = cfg_rd(0x34, 1) & ~3u; p; p = cfg_rd(p + 1, 1) & ~3u) {
		assert_true(++seen < 48);
		unsigned id = cfg_rd(p, 1);
		if (id == 0x11) {
			cap_msix = p;
			continue;
		}
		if (id != 0x09)
			continue;
		unsigned type = cfg_rd(p + 3, 1), bar = cfg_rd(p + 4, 1);
		unsigned off = cfg_rd(p + 8, 4), len = cfg_rd(p + 12, 4);
		assert_int_equal(bar, 0);
		assert_true(len > 0 && off + len <= 0x4000);
		switch (type) {
		case 1: cap_common = off; assert_true(len >= 0x38); break;
		case 2:
			assert_int_equal(cfg_rd(p + 2, 1), 20);
			cap_notify = off;
			notify_mult = cfg_rd(p + 16, 4);
			assert_true(len >= 2 * notify_mult);
			break;
		case 3: cap_isr = off; break;
		case 4: cap_device = off; assert_int_equal(len, 8); break;
		default: fail_msg("unexpected virtio cap type %u", type);
		}
	}
	assert_true(cap_notify && cap_isr && cap_device && cap_msix);
	assert_int_equal(notify_mult, 4);
}

static int setup_common(bool with_loop)
{
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	memset(&model, 0, sizeof(model));
	if (mem_init(&vm.mem, RAM) || pci_init(&vm))
		return -1;
	if (with_loop && (evloop_init(&vm) || evloop_start(&vm)))
		return -1;
	fake_vm_env(&vm); /* the PCI host, the loop */
	dev = virtio_pci_create(&vm.env, &m_ops, &model);
	/* recorded as the registry's create records a model's function: the
	 * teardown destroys it through the type's destroy */
	if (!dev || dev_registry_add(&vm.devs, &virtio_console_dev_ops, dev))
		return -1;
	drv_attach(dev);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_common(false);
}

static int setup_loop(void **state)
{
	(void)state;
	return setup_common(true);
}

static int teardown(void **state)
{
	(void)state;
	evloop_stop(&vm);
	dev_destroy_all(&vm.devs); /* the function: the model's reset and destroy */
	assert_int_equal(atomic_load(&model.destroy), 1);
	evloop_destroy(&vm);
	pci_destroy(&vm);
	irq_destroy(&vm); /* the MSI GSIs pci allocated */
	fake_vm_free(&vm);
	mem_free(&vm.mem);
	return 0;
}

/* ---- tests ---- */

static void test_identity(void **state)
{
	(void)state;
	find_caps();
	assert_int_equal(cfg_rd(0x00, 2), 0x1af4);
	assert_int_equal(cfg_rd(0x02, 2), 0x1040 + VIRTIO_ID_CONSOLE);
	assert_int_equal(cfg_rd(0x08, 1), 1); /* revision */
	assert_int_equal(cfg_rd(0x08, 4) >> 8, 0x078000); /* class 0x0780, prog-if 0 */
	assert_int_equal(cfg_rd(0x2c, 2), 0x1af4);
	assert_int_equal(cfg_rd(0x3d, 1), 1); /* INTA */
	assert_int_equal(cfg_rd(0x10, 4) & 0x7, 0x4); /* 64-bit memory BAR */
	assert_true(bar0 >= PCI_MMIO_BASE && bar0 < PCI_MMIO_END && !(bar0 & 0x3fff));
	assert_true(bar2 >= PCI_MMIO_BASE && bar2 < PCI_MMIO_END);
	/* MSI-X: nr_queues + 1 vectors, table and PBA in BAR 2 */
	assert_int_equal((cfg_rd(cap_msix + 2, 2) & 0x7ff) + 1, 3);
	assert_int_equal(cfg_rd(cap_msix + 4, 4) & 7, 2);
	assert_int_equal(cfg_rd(cap_msix + 8, 4) & 7, 2);
	assert_int_equal(cc_rd(NUM_QUEUES, 2), 2);
	assert_string_equal(virtio_dev_name(dev), "virtio-test");
	struct virtio_dev *all[4];
	assert_int_equal(virtio_devices(&vm.devs, all, 4), 1);
	assert_ptr_equal(all[0], dev);
	assert_int_equal(status(), 0);
}

static void test_features(void **state)
{
	(void)state;
	find_caps();
	cc_wr(DFSELECT, 4, 0);
	uint32_t lo = (uint32_t)cc_rd(DF, 4);
	cc_wr(DFSELECT, 4, 1);
	uint32_t hi = (uint32_t)cc_rd(DF, 4);
	cc_wr(DFSELECT, 4, 2);
	assert_int_equal(cc_rd(DF, 4), 0);
	assert_int_equal(cc_rd(DFSELECT, 4), 2);
	assert_int_equal(lo, (1u << VIRTIO_F_EVENT_IDX) | (1u << VIRTIO_F_INDIRECT_DESC) |
				     (1u << DEV_FEATURE_BIT));
	assert_int_equal(hi, 1); /* VERSION_1 */

	/* without VERSION_1: FEATURES_OK is refused */
	negotiate(1ull << VIRTIO_F_EVENT_IDX);
	assert_false(status() & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(stats().refused, 1);
	reset_dev();
	/* a feature not offered: refused */
	negotiate(F_STD | (1ull << 40));
	assert_false(status() & VIRTIO_STATUS_FEATURES_OK);
	reset_dev();
	/* accepted, and read back */
	negotiate(F_STD | (1ull << DEV_FEATURE_BIT));
	assert_true(status() & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(virtio_dev_features(dev), F_STD | (1ull << DEV_FEATURE_BIT));
	cc_wr(GFSELECT, 4, 0);
	assert_int_equal(cc_rd(GF, 4), (uint32_t)(F_STD | (1ull << DEV_FEATURE_BIT)));
	/* frozen after FEATURES_OK */
	cc_wr(GF, 4, 0);
	assert_int_equal(virtio_dev_features(dev), F_STD | (1ull << DEV_FEATURE_BIT));
	assert_int_equal(stats().refused, 2);
}

static void test_status_machine(void **state)
{
	(void)state;
	find_caps();
	cc_wr(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(), VIRTIO_STATUS_ACKNOWLEDGE);
	/* bits are only added: writing DRIVER alone keeps ACKNOWLEDGE */
	cc_wr(STATUS, 1, VIRTIO_STATUS_DRIVER);
	assert_int_equal(status(), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* the driver cannot set NEEDS_RESET */
	cc_wr(STATUS, 1, VIRTIO_STATUS_NEEDS_RESET);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* DRIVER_OK without FEATURES_OK: a driver bug → DEVICE_NEEDS_RESET */
	cc_wr(STATUS, 1, status() | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status() & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET),
			 VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(atomic_load(&model.driver_ok), 0);
	assert_int_equal(stats().needs_reset, 1);
	/* the config interrupt went out (INTx: MSI-X is off) */
	assert_true(intx());
	assert_int_equal(isr_read(), 2);
	assert_false(intx());
	assert_int_equal(isr_read(), 0);
	/* reset clears everything, the model hears of it */
	reset_dev();
	assert_int_equal(atomic_load(&model.reset), 1);
	assert_int_equal(stats().resets, 1);
	/* a proper bring-up */
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	assert_int_equal(status(), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(atomic_load(&model.driver_ok), 1);
	assert_non_null(virtio_queue(dev, 0));
	assert_null(virtio_queue(dev, 1)); /* never enabled */
	assert_null(virtio_queue(dev, 7));
	/* FAILED is just recorded */
	cc_wr(STATUS, 1, status() | VIRTIO_STATUS_FAILED);
	assert_true(status() & VIRTIO_STATUS_FAILED);
	reset_dev();
	assert_null(virtio_queue(dev, 0));
	assert_int_equal(stats().resets, 2);
}

static void test_queue_setup(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	cc_wr(Q_SELECT, 2, 1);
	assert_int_equal(cc_rd(Q_SIZE, 2), QMAX);
	assert_int_equal(cc_rd(Q_NOFF, 2), 1);
	assert_int_equal(cc_rd(Q_MSIX, 2), VIRTIO_NO_VECTOR);
	/* bad sizes are refused: the driver reads back the size in force */
	const uint16_t bad[] = { 0, 3, 12, QMAX * 2, 0xffff };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cc_wr(Q_SIZE, 2, bad[i]);
		assert_int_equal(cc_rd(Q_SIZE, 2), QMAX);
	}
	assert_int_equal(stats().refused, ARRAY_SIZE(bad));
	cc_wr(Q_SIZE, 2, 4);
	assert_int_equal(cc_rd(Q_SIZE, 2), 4);
	/* an address written in pieces, bytes included */
	cc_wr(Q_DESC, 4, 0x12345670);
	cc_wr(Q_DESC + 4, 4, 0x9);
	cc_wr(Q_DESC + 1, 1, 0xab);
	assert_int_equal(cc_rd(Q_DESC, 8), 0x91234ab70ull);
	assert_int_equal(cc_rd(Q_DESC + 4, 4), 0x9);
	/* MSI-X vector out of range: NO_VECTOR */
	cc_wr(Q_MSIX, 2, 3);
	assert_int_equal(cc_rd(Q_MSIX, 2), VIRTIO_NO_VECTOR);
	cc_wr(Q_MSIX, 2, 2);
	assert_int_equal(cc_rd(Q_MSIX, 2), 2);
	cc_wr(MSIX_CONFIG, 2, 99);
	assert_int_equal(cc_rd(MSIX_CONFIG, 2), VIRTIO_NO_VECTOR);
	/* a queue that does not exist reads size 0 and ignores writes */
	cc_wr(Q_SELECT, 2, 2);
	assert_int_equal(cc_rd(Q_SIZE, 2), 0);
	cc_wr(Q_SIZE, 2, 4);
	cc_wr(Q_ENABLE, 2, 1);
	assert_int_equal(cc_rd(Q_SIZE, 2), 0);
	assert_int_equal(cc_rd(Q_ENABLE, 2), 0);
	/* enabling queue 1 with its descriptor table outside RAM: NEEDS_RESET */
	cc_wr(Q_SELECT, 2, 1);
	cc_wr(Q_DESC, 8, RAM - 16);
	cc_wr(Q_DRIVER, 8, 0x20000);
	cc_wr(Q_DEVICE, 8, 0x21000);
	cc_wr(Q_ENABLE, 2, 1);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(stats().needs_reset, 1);
	/* the set-up of an enabled queue is frozen */
	cc_wr(Q_SIZE, 2, 8);
	cc_wr(Q_DESC, 8, 0x30000);
	assert_int_equal(cc_rd(Q_SIZE, 2), 4);
	assert_int_equal(cc_rd(Q_DESC, 8), RAM - 16);
	/* the guest cannot write the read-only fields */
	cc_wr(NUM_QUEUES, 2, 7);
	cc_wr(Q_NOFF, 2, 7);
	cc_wr(CFG_GEN, 1, 7);
	assert_int_equal(cc_rd(NUM_QUEUES, 2), 2);
	assert_int_equal(cc_rd(Q_NOFF, 2), 1);
	assert_int_equal(cc_rd(CFG_GEN, 1), 0);
	reset_dev();
	assert_int_equal(cc_rd(Q_SELECT, 2), 0);
	cc_wr(Q_SELECT, 2, 1);
	assert_int_equal(cc_rd(Q_SIZE, 2), QMAX);
	assert_int_equal(cc_rd(Q_ENABLE, 2), 0);
	assert_int_equal(cc_rd(Q_DESC, 8), 0);
	assert_int_equal(cc_rd(Q_MSIX, 2), VIRTIO_NO_VECTOR);

	/* enabling a queue before FEATURES_OK is a driver bug too */
	cc_wr(STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	setup_queue(0, 8);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(stats().needs_reset, 2);
}

static void test_early_notify(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	setup_queue(0, 8);
	post_buffer(0, 8, 64, NULL);
	/* a kick before DRIVER_OK: counted, ignored */
	notify(0);
	notify(0);
	assert_int_equal(stats().early_notifies, 2);
	assert_int_equal(atomic_load(&model.notify[0]), 0);
	assert_int_equal(used_idx(0), 0);
	/* a kick of a queue that does not exist: nothing */
	notify(5);
	mmio_wr(bar0 + cap_notify + 0x800, 4, 0);
	assert_int_equal(stats().early_notifies, 2);
	/* DRIVER_OK: the model starts and sees every live queue once, so the
	 * buffer posted before is used now */
	driver_ok();
	assert_int_equal(atomic_load(&model.driver_ok), 1);
	assert_int_equal(atomic_load(&model.notify[0]), 1);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(*(uint8_t *)mem_ptr(&vm.mem, BUF_GPA(0, 0), 1), 0xab);
	/* from now on kicks count as notifies */
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_int_equal(atomic_load(&model.notify[0]), 2);
	assert_int_equal(used_idx(0), 2);
	assert_int_equal(stats().notifies, 1);
	assert_int_equal(stats().early_notifies, 2);
}

static void test_intx_interrupts(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	assert_false(intx());
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_int_equal(used_idx(0), 1);
	/* first interrupt always goes: ISR bit 0 and INTx */
	assert_true(intx());
	assert_int_equal(stats().interrupts, 1);
	assert_int_equal(isr_read(), 1);
	assert_false(intx());
	/* EVENT_IDX: the driver asks for no interrupt until used idx passes 5 */
	uint16_t *used_event = mem_ptr(&vm.mem, AVAIL_GPA(0) + 4 + 2 * 8, 2);
	*used_event = 5;
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_false(intx());
	assert_int_equal(stats().suppressed, 1);
	/* config change: generation bumped, ISR bit 1 */
	virtio_config_changed(dev);
	assert_int_equal(cc_rd(CFG_GEN, 1), 1);
	assert_true(intx());
	assert_int_equal(isr_read(), 2);
	assert_false(intx());
}

static uint64_t irt_sent(unsigned vec)
{
	struct pci_irt_entry e[16];
	unsigned n = pci_irt_snapshot(&vm, e, 16);
	for (unsigned i = 0; i < n; i++)
		if (e[i].devfn == devfn && e[i].vector == vec)
			return e[i].sent;
	return 0;
}

static void test_msix_interrupts(void **state)
{
	(void)state;
	find_caps();
	/* program vectors 0 (config) and 1 (queue 0), unmasked; enable MSI-X */
	for (unsigned v = 0; v < 2; v++) {
		mmio_wr(bar2 + 16 * v + 0, 4, 0xfee00000);
		mmio_wr(bar2 + 16 * v + 4, 4, 0);
		mmio_wr(bar2 + 16 * v + 8, 4, 0x40 + v);
		mmio_wr(bar2 + 16 * v + 12, 4, 0);
	}
	cfg_wr(cap_msix + 2, 2, 0x8000);
	negotiate(F_STD);
	cc_wr(MSIX_CONFIG, 2, 0);
	assert_int_equal(cc_rd(MSIX_CONFIG, 2), 0);
	cc_wr(Q_SELECT, 2, 0);
	cc_wr(Q_MSIX, 2, 1);
	setup_queue(0, 8);
	driver_ok();
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(irt_sent(1), 1);
	assert_false(intx());
	assert_int_equal(isr_read(), 0); /* no ISR bit for queue interrupts with MSI-X */
	virtio_config_changed(dev);
	assert_int_equal(irt_sent(0), 1);
	assert_int_equal(isr_read(), 2); /* the config bit is set all the same */
	/* NO_VECTOR: no message */
	cc_wr(STATUS, 1, 0);
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	drv_avail[0] = 0;
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_int_equal(used_idx(0), 1);
	assert_int_equal(irt_sent(1), 1);
}

static void test_device_config(void **state)
{
	(void)state;
	find_caps();
	memcpy(model.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(mmio_rd(bar0 + cap_device, 4), 0x04030201);
	assert_int_equal(mmio_rd(bar0 + cap_device + 6, 2), 0x0807);
	assert_int_equal(mmio_rd(bar0 + cap_device, 8), 0x0807060504030201ull);
	/* beyond config_size: zeros, writes dropped */
	assert_int_equal(mmio_rd(bar0 + cap_device + 6, 4), 0);
	assert_int_equal(mmio_rd(bar0 + cap_device + 0x100, 4), 0);
	mmio_wr(bar0 + cap_device + 7, 2, 0xffff);
	assert_int_equal(atomic_load(&model.config_writes), 0);
	mmio_wr(bar0 + cap_device + 2, 2, 0xbeef);
	assert_int_equal(atomic_load(&model.config_writes), 1);
	assert_int_equal(mmio_rd(bar0 + cap_device, 4), 0xbeef0201);
	/* reads of gaps and the notify region are 0; ISR writes ignored */
	assert_int_equal(mmio_rd(bar0 + 0x800, 4), 0);
	assert_int_equal(mmio_rd(bar0 + cap_notify, 2), 0);
	mmio_wr(bar0 + cap_isr, 1, 0xff);
	assert_int_equal(isr_read(), 0);
	/* an odd-sized read across common fields */
	assert_int_equal(cc_rd(NUM_QUEUES, 4), 2); /* num_queues | status 0 | gen 0 */
}

static void test_queue_after_driver_ok_frozen(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	struct virtqueue *vq = virtio_queue(dev, 0);
	assert_non_null(vq);
	/* a hostile driver re-programs queue 1 and 0 after DRIVER_OK: ignored */
	cc_wr(Q_SELECT, 2, 1);
	cc_wr(Q_DESC, 8, 0x40000);
	cc_wr(Q_ENABLE, 2, 1);
	assert_int_equal(cc_rd(Q_ENABLE, 2), 0);
	assert_null(virtio_queue(dev, 1));
	cc_wr(Q_SELECT, 2, 0);
	cc_wr(Q_ENABLE, 2, 0);
	assert_int_equal(cc_rd(Q_ENABLE, 2), 1);
	assert_int_equal(vq->desc_gpa, DESC_GPA(0));
	/* a malformed chain: NEEDS_RESET, counted, queue dead until reset */
	struct vq_avail *a = mem_ptr(&vm.mem, AVAIL_GPA(0), 6 + 16);
	a->ring[0] = 200; /* head out of range */
	a->idx = 1;
	notify(0);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(stats().bad_chains, 1);
	assert_int_equal(stats().needs_reset, 1);
	assert_null(virtio_queue(dev, 0));
	notify(0);
	assert_int_equal(atomic_load(&model.notify[0]), 2); /* driver_ok's, then the bad one */
	reset_dev();
	assert_int_equal(stats().bad_chains, 1); /* statistics survive the reset */
	/* and the device works again */
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	drv_avail[0] = 0;
	post_buffer(0, 8, 16, NULL);
	notify(0);
	assert_int_equal(used_idx(0), 1);
}

/* ---- with the event-loop thread ---- */

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 2000 && atomic_load(v) < want; i++)
		usleep(1000);
	assert_true(atomic_load(v) >= want);
}

static void test_loop_notify_and_reset(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	setup_queue(0, 8);
	post_buffer(0, 8, 16, NULL);
	notify(0); /* early: the loop counts and ignores it */
	for (int i = 0; i < 2000 && stats().early_notifies < 1; i++)
		usleep(1000);
	assert_int_equal(stats().early_notifies, 1);
	driver_ok();
	wait_for(&model.processed, 1);
	assert_int_equal(atomic_load(&model.driver_ok), 1);
	post_buffer(0, 8, 16, NULL);
	notify(0);
	wait_for(&model.processed, 2);
	assert_int_equal(used_idx(0), 2);

	/* a reset while queue_notify runs: it waits for the loop */
	atomic_store(&model.slow_ms, 200);
	post_buffer(0, 8, 16, NULL);
	notify(0);
	for (int i = 0; i < 20000 && !atomic_load(&model.in_notify); i++)
		usleep(500); /* up to 10 s on a loaded host */
	assert_int_equal(atomic_load(&model.in_notify), 1);
	uint64_t t0 = util_now_ns();
	cc_wr(STATUS, 1, 0);
	/* the vCPU waited for the loop: reset done when the write returns */
	assert_true(util_now_ns() - t0 > 50 * 1000000ull);
	assert_int_equal(status(), 0);
	assert_int_equal(atomic_load(&model.reset), 1);
	assert_int_equal(atomic_load(&model.reset_overlap), 0);
	assert_int_equal(stats().resets, 1);
	atomic_store(&model.slow_ms, 0);
	/* stale kicks of the old driver do not count as early notifies */
	assert_int_equal(stats().early_notifies, 1);
	/* up again */
	negotiate(F_STD);
	setup_queue(0, 8);
	drv_avail[0] = 0;
	post_buffer(0, 8, 16, NULL);
	driver_ok();
	wait_for(&model.driver_ok, 2);
	for (int i = 0; i < 2000 && used_idx(0) < 1; i++)
		usleep(1000);
	assert_int_equal(used_idx(0), 1);
}

/* The loop busy for longer than a vCPU waits: the status write returns with
 * the reset still pending (status unchanged, writes ignored), and the loop
 * finishes it later. */
static void test_loop_slow_reset(void **state)
{
	(void)state;
	find_caps();
	negotiate(F_STD);
	setup_queue(0, 8);
	driver_ok();
	wait_for(&model.driver_ok, 1);
	atomic_store(&model.slow_ms, 2600);
	post_buffer(0, 8, 16, NULL);
	notify(0);
	/* Up to 10 s for the loop to start: on a loaded host (the nested KVM
	 * host's TCG beside other work) 1 s was seen not to be enough. */
	for (int i = 0; i < 20000 && !atomic_load(&model.in_notify); i++)
		usleep(500);
	assert_int_equal(atomic_load(&model.in_notify), 1); /* the loop is busy */
	cc_wr(STATUS, 1, 0);
	uint8_t s = status();
	assert_int_not_equal(s, 0); /* still resetting */
	cc_wr(STATUS, 1, 0);        /* ignored while pending: no second wait */
	cc_wr(Q_SELECT, 2, 1);
	assert_int_equal(cc_rd(Q_SELECT, 2), 0);
	assert_int_equal(status(), s);
	wait_status(0);
	assert_int_equal(atomic_load(&model.reset), 1);
	assert_int_equal(atomic_load(&model.reset_overlap), 0);
	assert_int_equal(stats().resets, 1);
	atomic_store(&model.slow_ms, 0);
}

/* Something else keeps the loop busy while the driver says DRIVER_OK and
 * then resets: both requests reach the loop in one control word. The
 * DRIVER_OK belongs to the session being reset and must not be acted on
 * after it (it once was: the loop walked the queues the vCPU was clearing,
 * and the device stayed running into the next session, serving it before
 * its DRIVER_OK and never telling the model about it). */
static atomic_int blocker_in;

static void blocker_cb(void *opaque, uint32_t events)
{
	(void)events;
	uint64_t n;
	ssize_t r = read(*(int *)opaque, &n, sizeof(n));
	(void)r;
	atomic_store(&blocker_in, 1);
	usleep(200 * 1000);
	atomic_store(&blocker_in, 0);
}

static void test_loop_driver_ok_then_reset(void **state)
{
	(void)state;
	find_caps();
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(evloop_add(vm.evloop, efd, EPOLLIN, blocker_cb, &efd), 0);
	/* several rounds: with the defect the loop usually won the race */
	for (int round = 0; round < 5; round++) {
		atomic_store(&model.driver_ok, 0);
		atomic_store(&model.processed, 0);
		int resets = atomic_load(&model.reset);
		negotiate(F_STD);
		setup_queue(0, 8);
		drv_avail[0] = 0;
		post_buffer(0, 8, 16, NULL);
		uint64_t one = 1;
		assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
		for (int i = 0; i < 20000 && !atomic_load(&blocker_in); i++)
			usleep(500); /* up to 10 s on a loaded host */
		assert_int_equal(atomic_load(&blocker_in), 1);
		driver_ok();
		cc_wr(STATUS, 1, 0); /* waits for the loop (< VIRTIO_RESET_WAIT_S) */
		assert_int_equal(status(), 0);
		usleep(50 * 1000); /* whatever the loop does next, it has done */
		assert_int_equal(atomic_load(&model.driver_ok), 0);
		assert_int_equal(atomic_load(&model.processed), 0);
		assert_int_equal(atomic_load(&model.reset), resets + 1);
		/* the next session is not served before its DRIVER_OK ... */
		uint64_t early = stats().early_notifies;
		negotiate(F_STD);
		setup_queue(0, 8);
		drv_avail[0] = 0;
		post_buffer(0, 8, 16, NULL);
		notify(0);
		for (int i = 0; i < 2000 && stats().early_notifies == early; i++)
			usleep(1000);
		assert_int_equal(stats().early_notifies, early + 1);
		assert_int_equal(atomic_load(&model.processed), 0);
		/* ... and is once the driver says so */
		driver_ok();
		wait_for(&model.driver_ok, 1);
		wait_for(&model.processed, 1);
		assert_int_equal(used_idx(0), 1);
		reset_dev();
	}
	assert_int_equal(evloop_del(vm.evloop, efd), 0);
	close(efd);
}

/* ---- with a real KVM VM fd: the ioeventfds follow BAR 0 ---- */

static int kvm_fd = -1, kvm_vm_fd = -1;

static int setup_kvm(void **state)
{
	(void)state;
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	kvm_vm_fd = kvm_fd >= 0 ? ioctl(kvm_fd, KVM_CREATE_VM, 0) : -1;
	fake_vm_init(&vm);
	vm.kvm_fd = kvm_fd;
	vm.vm_fd = kvm_vm_fd;
	vm.cfg.no_irqfd = true; /* no irqchip in this VM: no KVM_IRQFD */
	vm.cfg.mem_size = RAM;
	memset(&model, 0, sizeof(model));
	if (kvm_vm_fd < 0)
		return 0; /* the test skips */
	if (mem_init(&vm.mem, RAM) || pci_init(&vm) || evloop_init(&vm))
		return -1;
	fake_vm_env(&vm); /* the PCI host, the loop, KVM's VM fd */
	dev = virtio_pci_create(&vm.env, &m_ops, &model);
	if (!dev || dev_registry_add(&vm.devs, &virtio_console_dev_ops, dev))
		return -1;
	drv_attach(dev);
	return 0;
}

static int teardown_kvm(void **state)
{
	if (kvm_vm_fd >= 0)
		teardown(state);
	if (kvm_vm_fd >= 0)
		close(kvm_vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
	kvm_fd = kvm_vm_fd = -1;
	return 0;
}

/* Is a 2-byte MMIO ioeventfd at addr taken? (KVM refuses a second one at
 * the same address with EEXIST; a free address is assigned and released.) */
static bool ioeventfd_taken(uint64_t addr)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	assert_true(fd >= 0);
	struct kvm_ioeventfd io = { .addr = addr, .len = 2, .fd = fd };
	int r = ioctl(kvm_vm_fd, KVM_IOEVENTFD, &io);
	int e = errno;
	if (r == 0) {
		io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
		assert_int_equal(ioctl(kvm_vm_fd, KVM_IOEVENTFD, &io), 0);
	}
	close(fd);
	if (r < 0)
		assert_int_equal(e, EEXIST);
	return r < 0;
}

static void test_ioeventfd_follows_bar(void **state)
{
	(void)state;
	if (kvm_vm_fd < 0) {
		print_message("no /dev/kvm: ioeventfd registration not tested\n");
		skip();
	}
	uint64_t a = bar0 + cap_notify;
	/* memory decoding is on (drv_attach): one per queue */
	assert_true(ioeventfd_taken(a));
	assert_true(ioeventfd_taken(a + notify_mult));
	/* decoding off: gone */
	cfg_wr(0x04, 2, 0);
	assert_false(ioeventfd_taken(a));
	cfg_wr(0x04, 2, 0x06);
	assert_true(ioeventfd_taken(a));
	/* the guest moves BAR 0: they move with it */
	uint64_t nb = 0xd0000000ull;
	cfg_wr(0x10, 4, (uint32_t)nb);
	cfg_wr(0x14, 4, 0);
	assert_false(ioeventfd_taken(a));
	assert_true(ioeventfd_taken(nb + cap_notify));
	assert_true(ioeventfd_taken(nb + cap_notify + notify_mult));
	/* and the transport still works there */
	bar0 = nb;
	assert_int_equal(cc_rd(NUM_QUEUES, 2), 2);
	/* a move onto an address KVM refuses (taken): kicks exit to hvmm there,
	 * and the next move registers again */
	uint64_t taken = 0xd8000000ull;
	int fd = eventfd(0, EFD_CLOEXEC);
	struct kvm_ioeventfd io = { .addr = taken + cap_notify + notify_mult, .len = 2, .fd = fd };
	assert_int_equal(ioctl(kvm_vm_fd, KVM_IOEVENTFD, &io), 0);
	cfg_wr(0x10, 4, (uint32_t)taken);
	assert_false(ioeventfd_taken(nb + cap_notify));
	assert_false(ioeventfd_taken(taken + cap_notify)); /* queue 0's was undone */
	io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
	assert_int_equal(ioctl(kvm_vm_fd, KVM_IOEVENTFD, &io), 0);
	close(fd);
	cfg_wr(0x10, 4, (uint32_t)nb);
	assert_true(ioeventfd_taken(nb + cap_notify));
	assert_true(ioeventfd_taken(nb + cap_notify + notify_mult));
	/* --no-ioeventfd devices register none: covered by virtio_pci_create's
	 * ioeventfd_off; tear-down unregisters (teardown_kvm closes the VM) */
	dev_destroy_all(&vm.devs);
	assert_false(ioeventfd_taken(nb + cap_notify));
	/* a device created with --no-ioeventfd registers nothing */
	vm.cfg.no_ioeventfd = true;
	memset(&model, 0, sizeof(model));
	dev = virtio_pci_create(&vm.env, &m_ops, &model);
	assert_non_null(dev);
	assert_int_equal(dev_registry_add(&vm.devs, &virtio_console_dev_ops, dev), 0);
	drv_attach(dev);
	assert_false(ioeventfd_taken(bar0 + cap_notify));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_setup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_early_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_after_driver_ok_frozen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_notify_and_reset, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(test_loop_slow_reset, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(test_loop_driver_ok_then_reset, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(test_ioeventfd_follows_bar, setup_kvm, teardown_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
