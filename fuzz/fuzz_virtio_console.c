/*
 * libFuzzer target for virtio-console (src/virtio/virtio_console.c): a
 * driver session on its PCI function (fuzz_virtio.h's operations) while
 * host input arrives on its stdin — here a socket this target writes to,
 * with Ctrl-A escapes, bursts that fill the device's buffer, and hang-ups —
 * and its output goes to stdout, here a memfd. The fake event loop
 * (FZ_FAKE_EVLOOP) runs the stdin callback when the input says so, with the
 * events poll(2) reports.
 *
 * Checked against a model: the bytes the device puts in receive chains are,
 * in order, exactly the host input after the Ctrl-A filter (term.c's rules:
 * ^A x quits, ^A ^A is one ^A, ^A anything else is swallowed), never more
 * than a chain holds; stdout receives exactly the bytes of every transmit
 * chain; transmit chains say 0 bytes written. Every chain popped lies in RAM
 * and is returned once (FZ_WRAP_VQ). No eventfd or watch outlives the device.
 *
 * Input: operations, the first byte selecting: (op & 0x7f) % 14 below 10 is
 * a driver operation of fuzz_virtio.h, 10-13 the host side's (fz_run).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_CHECK(c)                                                                                    \
	do {                                                                                           \
		if (!(c)) {                                                                            \
			fprintf(stderr, "fuzz_virtio_console: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                                       \
		}                                                                                      \
	} while (0)

#define FZ_RAM (256 * 1024ull)
#define FZ_EFD_POOL /* eventfds from a pool: fuzz_common.h */
#define FZ_FAKE_EVLOOP
#define FZ_WRAP_VQ
#include "fuzz_virtio.h"

#define FZ_STREAM (1u << 20)

static int fz_peer = -1; /* our end of the console's stdin */

/* the model: host input after the escape filter, and how much of it the guest got */
static uint8_t fz_stream[FZ_STREAM];
static size_t fz_stream_len, fz_delivered;
static bool fz_esc_pending;
static uint64_t fz_out_expected;

static void fz_model_input(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (fz_esc_pending) {
			fz_esc_pending = false;
			if (c != 1)
				continue; /* ^A x quits, ^A other is swallowed */
		} else if (c == 1) {
			fz_esc_pending = true;
			continue;
		}
		FZ_CHECK(fz_stream_len < FZ_STREAM);
		fz_stream[fz_stream_len++] = c;
	}
}

static bool fz_disjoint(const struct vq_elem *e)
{
	for (unsigned i = 0; i < e->n_in; i++)
		for (unsigned k = i + 1; k < e->n_in; k++) {
			uintptr_t a = (uintptr_t)e->in[i].iov_base, b = (uintptr_t)e->in[k].iov_base;
			if (a < b + e->in[k].iov_len && b < a + e->in[i].iov_len)
				return false;
		}
	return true;
}

static void fz_on_push(struct virtqueue *vq, uint32_t written, const struct fz_popped *chain)
{
	struct virtio_dev *d;
	FZ_CHECK(virtio_devices(&fz_vm.devs, &d, 1) == 1);
	if (vq == virtio_queue(d, 1)) { /* transmitq0: the chain went to stdout */
		FZ_CHECK(written == 0);
		fz_out_expected += chain->out_len;
		return;
	}
	/* receiveq0: the next `written` bytes of the stream, in the chain's order */
	FZ_CHECK(fz_delivered + written <= fz_stream_len);
	const struct vq_elem *e = chain->e;
	if (fz_disjoint(e)) { /* overlapping buffers (a hostile driver) overwrite each other */
		uint64_t done = 0;
		for (unsigned i = 0; i < e->n_in && done < written; i++) {
			uint64_t n = e->in[i].iov_len < written - done ? e->in[i].iov_len : written - done;
			FZ_CHECK(memcmp(e->in[i].iov_base, fz_stream + fz_delivered + done, n) == 0);
			done += n;
		}
	}
	fz_delivered += written;
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		unsigned op = ((unsigned)fz_take(in, 1) & 0x7f) % 14;
		if (op < 10) {
			fz_virtio_op(in, op, &fz_devs[0], 0);
			continue;
		}
		switch (op) {
		case 10: { /* host input: a few bytes, or a burst of one byte */
			uint8_t buf[4096];
			unsigned n = (unsigned)fz_take(in, 1);
			if (n & 0x80) {
				n = (n & 0x7f) * 32 + 1;
				memset(buf, (int)fz_take(in, 1), n);
			} else {
				n = n % 32 + 1;
				for (unsigned i = 0; i < n; i++)
					buf[i] = (uint8_t)fz_take(in, 1);
			}
			if (fz_peer < 0)
				break;
			ssize_t r = send(fz_peer, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0)
				fz_model_input(buf, (size_t)r);
			break;
		}
		case 11: /* the event loop turns */
			fz_loop_turn();
			break;
		case 12: /* the host side hangs up */
			if (fz_peer >= 0) {
				close(fz_peer);
				fz_peer = -1;
			}
			fz_loop_turn();
			break;
		case 13: { /* several turns: a burst drains through the guest's buffers */
			unsigned n = (unsigned)fz_take(in, 1) % 8 + 1;
			for (unsigned i = 0; i < n; i++)
				fz_loop_turn();
			break;
		}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0) {
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
		/* stdout: a memfd, checked and emptied after every input */
		int out = memfd_create("fuzz-console-out", MFD_CLOEXEC);
		FZ_CHECK(out >= 0 && dup2(out, STDOUT_FILENO) == STDOUT_FILENO);
		close(out);
	}
	/* Empty it unless the last input left it empty (its size was checked
	 * then; nothing written means the offset is still 0): two syscalls
	 * fewer for most inputs. */
	static bool out_empty;
	if (!out_empty)
		FZ_CHECK(ftruncate(STDOUT_FILENO, 0) == 0 && lseek(STDOUT_FILENO, 0, SEEK_SET) == 0);
	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FZ_CHECK(dup2(sv[0], STDIN_FILENO) == STDIN_FILENO);
	close(sv[0]);
	fz_peer = sv[1];
	fz_stream_len = fz_delivered = 0;
	fz_esc_pending = false;
	fz_out_expected = 0;
	fz_npopped = 0;

	fz_virtio_vm_init();
	FZ_CHECK(virtio_console_create(&fz_vm.env, NULL) == 0);
	fz_virtio_find_devs(1);
	struct fz_in in = { data, size };
	fz_run(&in);
	fz_virtio_vm_free();
	FZ_CHECK(fz_nwatches == 0);

	struct stat st;
	FZ_CHECK(fstat(STDOUT_FILENO, &st) == 0);
	FZ_CHECK((uint64_t)st.st_size == fz_out_expected);
	out_empty = st.st_size == 0;
	if (fz_peer >= 0)
		close(fz_peer);
	fz_peer = -1;
	/* every pooled eventfd handed out was closed again: exact, no syscall */
	FZ_CHECK(fz_efd_in_use() == 0);
	/* and none from elsewhere (/proc: a readlink per open fd; a leak
	 * accumulates, so every 256th input is enough) */
	static unsigned runs;
	if (++runs % 256 == 0)
		FZ_CHECK(fz_eventfds() == 0);
	return 0;
}
