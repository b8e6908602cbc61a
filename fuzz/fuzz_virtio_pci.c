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
#define FZ_EFD_POOL /* eventfds from a pool: fuzz_common.h */
#include "fuzz_common.h"

#define FZ_CHECK(c)                                                                            \
	do {                                                                                   \
		if (!(c)) {                                                                    \
			fprintf(stderr, "fuzz_virtio_pci: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                               \
		}                                                                              \
	} while (0)

#define FZ_RAM (256 * 1024ull)
#include "fuzz_virtio.h"

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

static void fz_vm_build(void)
{
	fz_virtio_vm_init();
	FZ_CHECK(virtio_rng_create(&fz_vm.env, NULL) == 0);
	/* the echo model's function, recorded as the registry's create
	 * records one (a console's id: its type), destroyed with the others */
	struct virtio_dev *echo = virtio_pci_create(&fz_vm.env, &echo_ops, NULL);
	FZ_CHECK(echo && dev_registry_add(&fz_vm.devs, &virtio_console_dev_ops, echo) == 0);
	fz_virtio_find_devs(2);
	memset(fz_echo_cfg, 0, sizeof(fz_echo_cfg));
}

static void fz_report(void)
{
	struct virtio_dev *devs[4];
	unsigned n = virtio_devices(&fz_vm.devs, devs, 4);
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
		fz_virtio_op(in, (op & 0x7f) % 10, &fz_devs[dev], dev);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	fz_vm_build();
	struct fz_in in = { data, size };
	fz_run(&in);
	if (fz_debug)
		fz_report();
	fz_virtio_vm_free();
	/* every pooled eventfd handed out was closed again: exact, no syscall */
	FZ_CHECK(fz_efd_in_use() == 0);
	/* and none from elsewhere (/proc: a readlink per open fd; a leak
	 * accumulates, so every 256th input is enough) */
	static unsigned runs;
	if (++runs % 256 == 0)
		FZ_CHECK(fz_eventfds() == 0);
	return 0;
}
