/*
 * libFuzzer target for virtio-net (src/virtio/virtio_net.c) and the net
 * rings (src/net/ring.h) it shares with the slirp helper. Both sides are
 * hostile: the guest drives the device through the virtio PCI transport
 * (fuzz_virtio.h's driver operations), and the back end — played here — is
 * either a frame socket (a tap, or the helper's seqpacket socket) or the
 * shared-memory rings of a compromised helper, which can write any index,
 * flag and slot length at any moment, ring the doorbell or die.
 *
 * The rings are mapped with guard pages on both sides, as is guest RAM; the
 * fake event loop (FZ_FAKE_EVLOOP) delivers the back end's events when the
 * input says so, with the events poll(2) reports.
 *
 * Checked: the sanitizers and guard pages; every frame hvmm puts in the tx
 * ring or on the socket is 14-1518 bytes; the chains the device pops lie in
 * RAM, and it gives back only chains it popped, once, with no more written
 * than they hold (fuzz_virtio.h's FZ_WRAP_VQ): a receive chain 0 bytes or a
 * 12-byte header plus a frame of 14-1518, a transmit chain 0; every watch
 * is gone and no eventfd outlives the device.
 *
 * Input:
 *   u8 mode   bit 0: the rings (else a socket), bit 1: seqpacket semantics
 *             (recv MSG_TRUNC) rather than tap read/write
 *   then operations, the first byte selecting: (op & 0x7f) % 16 below 10 is
 *   a driver operation of fuzz_virtio.h, 10-15 the back end's (fz_run).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define FZ_CHECK(c)                                                                                \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_virtio_net: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define FZ_RAM (256 * 1024ull)
#define FZ_EFD_POOL /* eventfds from a pool: fuzz_common.h */
#define FZ_FAKE_EVLOOP
#define FZ_WRAP_VQ
#include "fuzz_virtio.h"
#include "net/net.h"
#include "net/ring.h"
#include "virtio/virtio_net.h"

static bool fz_ring_mode;
static int fz_peer = -1;              /* our end of the socket (either mode) */
static struct net_shm *fz_shm;        /* ring mode: the shared memory */
static uint8_t *fz_shm_map;           /* ... with its guard pages */
static int fz_txbell = -1, fz_rxbell = -1;
static uint32_t fz_rx_head, fz_tx_tail; /* the helper's private indexes */
static bool fz_tx_lied; /* the helper wrote the tx ring's head or lengths itself */

#define FZ_SHM_MAP (NET_SHM_SIZE + 2 * 4096)

static void fz_backend_ring(void)
{
	fz_shm_map = mmap(NULL, FZ_SHM_MAP, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FZ_CHECK(fz_shm_map != MAP_FAILED);
	fz_shm = (struct net_shm *)(fz_shm_map + 4096);
	FZ_CHECK(mprotect(fz_shm, NET_SHM_SIZE, PROT_READ | PROT_WRITE) == 0);
	fz_shm->magic = NET_RING_MAGIC;
	fz_shm->version = NET_RING_VERSION;
	fz_shm->slots = NET_RING_SLOTS;
	atomic_store(&fz_shm->ctl[NET_RING_RX].sleeping, 1);
	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	struct net_slirp s = {
		.ctl = sv[0],
		.shm = fz_shm,
		.txbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
		.rxbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
		.pid = 0, /* no process to reap */
	};
	FZ_CHECK(s.txbell >= 0 && s.rxbell >= 0);
	fz_peer = sv[1];
	fz_txbell = s.txbell;
	fz_rxbell = s.rxbell;
	char err[256];
	FZ_CHECK(virtio_net_attach_slirp(&fz_vm.env, &s, err, sizeof(err)) == 0);
}

static void fz_backend_socket(bool seqpacket)
{
	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	fz_peer = sv[1];
	char err[256];
	FZ_CHECK(virtio_net_attach_fd(&fz_vm.env, sv[0], seqpacket, err, sizeof(err)) == 0);
}

/* The helper publishes an rx frame of len bytes (any length: a hostile one). */
static void fz_ring_rx(uint32_t len, uint8_t fill)
{
	struct net_ring_slot *s = &fz_shm->slot[NET_RING_RX][fz_rx_head & (NET_RING_SLOTS - 1)];
	memset(s->data, fill, len < sizeof(s->data) ? len : sizeof(s->data));
	atomic_store(&s->len, len);
	fz_rx_head++;
	atomic_store(&fz_shm->ctl[NET_RING_RX].head, fz_rx_head);
}

/* The helper takes what hvmm published in the tx ring: each a real frame. */
static void fz_ring_tx_drain(void)
{
	uint32_t head = atomic_load(&fz_shm->ctl[NET_RING_TX].head);
	for (unsigned n = 0; fz_tx_tail != head && n < NET_RING_SLOTS; n++) {
		uint32_t len = atomic_load(&fz_shm->slot[NET_RING_TX][fz_tx_tail & (NET_RING_SLOTS - 1)].len);
		/* what it wrote there itself proves nothing about hvmm */
		FZ_CHECK(fz_tx_lied || (len >= NET_MIN_FRAME && len <= NET_MAX_FRAME));
		fz_tx_tail++;
	}
	atomic_store(&fz_shm->ctl[NET_RING_TX].tail, fz_tx_tail);
}

static void fz_socket_drain(void)
{
	static uint8_t buf[65536];
	while (fz_peer >= 0) { /* a dead back end takes nothing */
		ssize_t r = recv(fz_peer, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (r <= 0)
			break;
		FZ_CHECK(r >= NET_MIN_FRAME && r <= NET_MAX_FRAME);
	}
}

/* A chain given back: receive chains hold a header and a frame or nothing,
 * transmit chains nothing. */
static void fz_on_push(struct virtqueue *vq, uint32_t written, const struct fz_popped *chain)
{
	(void)chain;
	struct virtio_dev *d;
	FZ_CHECK(virtio_devices(&fz_vm.devs, &d, 1) == 1);
	if (vq == virtio_queue(d, VIRTIO_NET_TXQ))
		FZ_CHECK(written == 0);
	else
		FZ_CHECK(written == 0 || (written >= VIRTIO_NET_HDR_LEN + NET_MIN_FRAME &&
					  written <= VIRTIO_NET_HDR_LEN + NET_MAX_FRAME));
}

static void fz_backend_op(struct fz_in *in, unsigned op)
{
	switch (op) {
	case 10: { /* a frame from the back end: usually a sane length */
		uint32_t len = (uint32_t)fz_take(in, 2);
		uint8_t fill = (uint8_t)fz_take(in, 1);
		if (!(fill & 1))
			len = NET_MIN_FRAME + len % (NET_MAX_FRAME - NET_MIN_FRAME + 1);
		if (fz_ring_mode) {
			fz_ring_rx(len, fill);
		} else {
			static uint8_t frame[4096];
			len %= sizeof(frame);
			memset(frame, fill, len);
			if (fz_peer >= 0) /* a dead back end sends nothing */
				(void)!send(fz_peer, frame, len, MSG_DONTWAIT);
		}
		break;
	}
	case 11: /* the back end takes what hvmm sent */
		if (fz_ring_mode)
			fz_ring_tx_drain();
		else
			fz_socket_drain();
		break;
	case 12: { /* a compromised helper writes any ring field */
		if (!fz_ring_mode)
			break;
		unsigned which = (unsigned)fz_take(in, 1);
		uint32_t v = (uint32_t)fz_take(in, 4);
		struct net_ring_ctl *c = &fz_shm->ctl[which & 1];
		unsigned field = (which >> 1) & 7;
		fz_tx_lied |= (which & 1) == NET_RING_TX && (field == 0 || field == 4 || field == 5);
		switch (field) {
		case 0: atomic_store(&c->head, v); break;
		case 1: atomic_store(&c->tail, v); break;
		case 2: atomic_store(&c->sleeping, v & 1); break;
		case 3: atomic_store(&c->waiting, v & 1); break;
		case 4: /* a slot length, later */
			atomic_store(&fz_shm->slot[which & 1][(v >> 16) & (NET_RING_SLOTS - 1)].len, v & 0xffff);
			break;
		case 5: /* a near-plausible head: a few frames ahead or behind */
			atomic_store(&c->head, atomic_load(&c->head) + (int8_t)v);
			break;
		default: /* the helper's own index jumps (it believes its lie) */
			fz_rx_head += (int8_t)v;
			break;
		}
		break;
	}
	case 13: /* the event loop turns */
		fz_loop_turn();
		break;
	case 14: /* the helper rings hvmm's doorbell or reads its own (rings), then a loop turn */
		if (fz_take(in, 1) & 1 && fz_ring_mode) {
			uint64_t one = 1;
			(void)!write(fz_rxbell, &one, sizeof(one));
		} else if (fz_ring_mode) {
			uint64_t v;
			(void)!read(fz_txbell, &v, sizeof(v));
		}
		fz_loop_turn();
		break;
	case 15: /* the back end dies (or, rarely, says something) */
		if (fz_take(in, 1) & 1) {
			if (fz_peer >= 0) /* once dead it says nothing: no send(-1) syscall */
				(void)!send(fz_peer, "x", 1, MSG_DONTWAIT);
		} else if (fz_peer >= 0) {
			close(fz_peer);
			fz_peer = -1;
		}
		fz_loop_turn();
		break;
	}
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		unsigned op = ((unsigned)fz_take(in, 1) & 0x7f) % 16;
		if (op < 10)
			fz_virtio_op(in, op, &fz_devs[0], 0);
		else
			fz_backend_op(in, op);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	struct fz_in in = { data, size };
	uint8_t mode = (uint8_t)fz_take(&in, 1);
	fz_virtio_vm_init();
	fz_ring_mode = mode & 1;
	fz_rx_head = fz_tx_tail = 0;
	fz_tx_lied = false;
	fz_npopped = 0;
	if (fz_ring_mode)
		fz_backend_ring();
	else
		fz_backend_socket(mode & 2);
	fz_virtio_find_devs(1);
	fz_run(&in);
	if (fz_debug) {
		struct virtio_dev *d;
		struct virtio_net_stats st;
		if (virtio_devices(&fz_vm.devs, &d, 1) == 1 && virtio_net_get_stats(d, &st) == 0)
			FZ_LOG("net: rx %lu (too big %lu, bad %lu, stalls %lu) tx %lu (bad %lu, errors %lu, "
			       "blocked %lu) gone %lu\n", st.rx_frames, st.rx_too_big, st.rx_bad, st.rx_stalls,
			       st.tx_frames, st.tx_bad, st.tx_errors, st.tx_blocked, st.backend_gone);
	}
	fz_virtio_vm_free(); /* unmaps the rings, closes the bells and hvmm's socket */
	FZ_CHECK(fz_nwatches == 0);
	if (fz_peer >= 0)
		close(fz_peer);
	fz_peer = -1;
	if (fz_ring_mode)
		munmap(fz_shm_map, FZ_SHM_MAP); /* the guard pages (the middle is gone) */
	/* every pooled eventfd handed out was closed again: exact, no syscall */
	FZ_CHECK(fz_efd_in_use() == 0);
	/* and none from elsewhere (/proc: a readlink per open fd; a leak
	 * accumulates, so every 256th input is enough) */
	static unsigned runs;
	if (++runs % 256 == 0)
		FZ_CHECK(fz_eventfds() == 0);
	return 0;
}
