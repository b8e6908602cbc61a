/*
 * libFuzzer target for the 16550A UART (src/devices/uart.c): all 8 registers
 * read and written at any offset with any access size (a wide access walks
 * consecutive registers), DLAB, FIFO control, loopback, with host input
 * arriving between accesses (Ctrl-A escapes included) and an output limit
 * (--serial FILE --serial-limit) from the input. A fake VM without KVM;
 * the output goes to a memfd opened by path, as --serial FILE is.
 *
 * Checked against a model of what the guest wrote: the output file holds
 * exactly the bytes the guest transmitted outside loopback — all of them, or
 * with a limit the first `limit` bytes and then the one-line notice — and
 * uart_dropped() counts the rest; LCR, MCR, IER, SCR and the divisor read
 * back as written; LSR always shows THRE|TEMT; IIR reads a valid
 * identification with FIFO bits matching FCR.
 *
 * Input:
 *   u8  limit   0: no limit, else the limit is limit * 37 bytes
 *   then operations, the first byte selecting (see fz_run); numbers
 *   little-endian, zeros once the input runs out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "bus.h"
#include "devices/devices.h"
#include "snapshot.h"
#include "vm.h"
#include "fuzz_common.h"
#include "fuzz_env.h"

#define FZ_CHECK(c)                                                                          \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "fuzz_uart: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define FZ_OUT_MAX (2u << 20) /* more than 2048 operations can send */

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

static struct vm fz_vm;
static int fz_memfd = -1;

/* the model: registers as written, and the bytes transmitted */
static uint8_t fz_lcr, fz_mcr, fz_ier, fz_scr, fz_dll, fz_dlm, fz_fcr;
static uint8_t fz_out[FZ_OUT_MAX];
static size_t fz_out_len;

/* COM1's interrupt line as the UART last drove it: with the fake VM's
 * kernel irqchip each change is a KVM_IRQ_LINE on fd -1, which fuzz_common's
 * ioctl wrapper hands to fz_irq_line instead of the kernel. */
static bool fz_line;

static void fz_irq_line(unsigned long request, void *arg)
{
	if (request != KVM_IRQ_LINE)
		return;
	const struct kvm_irq_level *l = arg;
	FZ_CHECK(l->irq == UART_COM1_IRQ);
	/* uart.c drives the line only when its level changes */
	FZ_CHECK(!!l->level != fz_line);
	fz_line = l->level;
}

static uint64_t fz_pio(unsigned off, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(&fz_vm.pio, UART_COM1_BASE + off, 1);
	FZ_CHECK(r != NULL);
	FZ_LOG("uart %s +%u/%u %#lx\n", write ? "write" : "read", off, size, v);
	uint64_t port = UART_COM1_BASE + off - r->base;
	if (write) {
		r->ops->write(r->opaque, port, size, v);
		return 0;
	}
	bool line = fz_line;
	v = r->ops->read(r->opaque, port, size);
	/* An IIR read (first byte, before any other register's side effect)
	 * shows whether an interrupt was pending: the line must have said the
	 * same, gated by MCR.OUT2 as on a PC. */
	if (off == 2)
		FZ_CHECK(line == (((v & 0x0f) != 1) && (fz_mcr & 0x08)));
	return v;
}

static void fz_model_write(unsigned off, uint8_t v)
{
	bool dlab = fz_lcr & 0x80;
	switch (off) {
	case 0:
		if (dlab)
			fz_dll = v;
		else if (!(fz_mcr & 0x10) && fz_out_len < FZ_OUT_MAX)
			fz_out[fz_out_len++] = v;
		break;
	case 1:
		if (dlab)
			fz_dlm = v;
		else
			fz_ier = v & 0x0f;
		break;
	case 2: fz_fcr = v & (uint8_t)~6; break;
	case 3: fz_lcr = v; break;
	case 4: fz_mcr = v & 0x1f; break;
	case 7: fz_scr = v; break;
	}
}

/* Check a read of register off against the model, where it knows the value. */
static void fz_model_check_read(unsigned off, uint8_t v)
{
	bool dlab = fz_lcr & 0x80;
	switch (off) {
	case 0:
		if (dlab)
			FZ_CHECK(v == fz_dll);
		break;
	case 1: FZ_CHECK(v == (dlab ? fz_dlm : fz_ier)); break;
	case 2: {
		uint8_t id = v & 0x0f;
		FZ_CHECK(id == 1 || id == 0 || id == 2 || id == 4 || id == 6);
		FZ_CHECK((v & 0x30) == 0 && (v & 0xc0) == ((fz_fcr & 1) ? 0xc0 : 0));
		break;
	}
	case 3: FZ_CHECK(v == fz_lcr); break;
	case 4: FZ_CHECK(v == fz_mcr); break;
	case 5: FZ_CHECK((v & 0x60) == 0x60); break;
	case 7: FZ_CHECK(v == fz_scr); break;
	}
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 2048) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		switch (op % 6) {
		case 0: /* write a register */
		case 1: { /* read a register */
			unsigned off = (op >> 3) & 7, size = (op & 0x40) ? fz_size(in) : 1;
			if (op % 6 == 0) {
				uint64_t v = fz_take(in, size);
				fz_pio(off, size, true, v);
				for (unsigned i = 0; i < size && off + i < 8; i++)
					fz_model_write(off + i, (uint8_t)(v >> (8 * i)));
			} else {
				uint64_t v = fz_pio(off, size, false, 0);
				for (unsigned i = 0; i < size && off + i < 8; i++)
					fz_model_check_read(off + i, (uint8_t)(v >> (8 * i)));
				if (off + size > 8)
					FZ_CHECK(v >> (8 * (8 - off)) == 0); /* past the last port */
			}
			break;
		}
		case 2: { /* host input arrives: up to 64 bytes */
			uint8_t buf[64];
			unsigned n = ((op >> 3) & 31) + 1;
			for (unsigned i = 0; i < n; i++)
				buf[i] = (uint8_t)fz_take(in, 1);
			uart_receive(dev_find(&fz_vm.devs, "uart", 0), buf, n);
			break;
		}
		case 3: { /* a burst of output: a run of one byte, sometimes a newline */
			unsigned n = (unsigned)fz_take(in, 2) % 512;
			uint8_t c = (uint8_t)fz_take(in, 1);
			/* THR's range looked up once for the burst, not per byte:
			 * the ports do not move during a run */
			const struct bus_range *r = bus_find(&fz_vm.pio, UART_COM1_BASE, 1);
			FZ_CHECK(r != NULL);
			for (unsigned i = 0; i < n; i++) {
				uint8_t b = (i % 80 == 79) ? '\n' : c;
				FZ_LOG("uart write +0/1 %#x\n", b);
				r->ops->write(r->opaque, UART_COM1_BASE - r->base, 1, b);
				fz_model_write(0, b);
			}
			break;
		}
		case 4: { /* a set-up as Linux's 8250 driver makes it */
			static const uint8_t seq[][2] = {
				{ 3, 0x80 }, { 0, 0x01 }, { 1, 0x00 }, { 3, 0x03 }, { 2, 0xc7 },
				{ 4, 0x0b }, { 1, 0x0f },
			};
			for (unsigned i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
				fz_pio(seq[i][0], 1, true, seq[i][1]);
				fz_model_write(seq[i][0], seq[i][1]);
			}
			break;
		}
		case 5: { /* drain: read LSR and RBR until no data, then IIR and MSR */
			for (unsigned i = 0; i < 32; i++) {
				uint8_t lsr = (uint8_t)fz_pio(5, 1, false, 0);
				fz_model_check_read(5, lsr);
				if (!(lsr & 1))
					break;
				fz_model_check_read(0, (uint8_t)fz_pio(0, 1, false, 0));
			}
			fz_model_check_read(2, (uint8_t)fz_pio(2, 1, false, 0));
			(void)fz_pio(6, 1, false, 0);
			break;
		}
		}
	}
}

static const char fz_note_fmt[] = "\n[hvmm: serial output limit of %llu bytes reached; the rest is dropped]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0) {
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
		fz_memfd = memfd_create("fuzz-serial", MFD_CLOEXEC);
		FZ_CHECK(fz_memfd >= 0);
		fz_on_ioctl = fz_irq_line;
	}
	struct fz_in in = { data, size };
	uint64_t limit = fz_take(&in, 1) * 37;

	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.irqchip = IRQCHIP_KERNEL; /* KVM_IRQ_LINE on no fd: the line goes nowhere */
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fz_memfd);
	fz_vm.cfg.serial = SERIAL_FILE;
	fz_vm.cfg.serial_path = path;
	fz_vm.cfg.serial_limit = limit;
	fz_vm_env(&fz_vm, false, false);
	FZ_CHECK(fz_dev(&fz_vm, &uart_dev_ops));
	fz_lcr = fz_mcr = fz_ier = fz_scr = fz_dlm = fz_fcr = 0;
	fz_dll = 1;
	fz_out_len = 0;
	fz_line = false; /* a new UART's line is low */

	fz_run(&in);

	uart_stop(dev_find(&fz_vm.devs, "uart", 0)); /* flushes what is buffered */
	uint64_t dropped = uart_dropped(dev_find(&fz_vm.devs, "uart", 0));
	dev_destroy_all(&fz_vm.devs);
	snapshot_registry_free(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);

	/* the output file against the model */
	static uint8_t got[FZ_OUT_MAX + 256];
	ssize_t n = pread(fz_memfd, got, sizeof(got), 0);
	FZ_CHECK(n >= 0);
	if (!limit || fz_out_len <= limit) {
		FZ_CHECK((size_t)n == fz_out_len && memcmp(got, fz_out, fz_out_len) == 0);
		FZ_CHECK(dropped == 0);
	} else {
		char note[160];
		int nl = snprintf(note, sizeof(note), fz_note_fmt, (unsigned long long)limit);
		FZ_CHECK((size_t)n == limit + (size_t)nl);
		FZ_CHECK(memcmp(got, fz_out, limit) == 0 && memcmp(got + limit, note, (size_t)nl) == 0);
		FZ_CHECK(dropped == fz_out_len - limit);
	}
	return 0;
}
