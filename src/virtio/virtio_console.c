/*
 * virtio-console (§5.3) on hvmm's stdin/stdout (--console virtio): the
 * guest's hvc0. One port, no MULTIPORT: receiveq0 (host → guest) and
 * transmitq0 (guest → host). Config (cols, rows, max_nr_ports, emerg_wr)
 * reads as zeros, since no feature that gives it meaning is offered.
 *
 * Input: stdin is watched by the event loop; bytes go through the Ctrl-A
 * escapes (Ctrl-A x stops hvmm, as with the UART console) into a bounded
 * buffer, and from there into whatever receive buffers the driver has
 * posted. While the buffer is full stdin is not read (the writer blocks,
 * nothing is dropped). Output: each transmit chain is written to stdout as
 * far as stdout takes it without blocking; while it takes no more, the
 * chain stays with the device (the guest's own buffer, nothing copied), the
 * queue is not read further, and the loop watches stdout for room — so a
 * stalled reader holds back only this device's output, never the event
 * loop and the other devices on it. Everything runs on the event-loop
 * thread, so no lock is needed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../evloop.h"
#include "../snapshot.h"
#include "../term.h"
#include "../device.h"
#include "../util.h"
#include "../vm_config.h"
#include "virtio.h"

#define CON_RX 0
#define CON_TX 1
#define CON_QUEUE_MAX 128
#define CON_INBUF 4096 /* input held while the guest posts no receive buffers */
#define CON_CONFIG_SIZE 12 /* le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr */

struct virtio_console {
	struct evloop *loop; /* NULL: no input, output written at once */
	struct dev_ctl ctl;  /* Ctrl-A x; giving up on stdout while stopping */
	bool stats;          /* --stats: a stalled stdout is worth a line */
	struct virtio_dev *dev;
	struct term_escape esc;
	bool in_watched; /* stdin registered with the loop */
	bool in_paused;  /* ... but not polled: the buffer is full */
	bool in_hup;     /* hung up while full: read the rest as room appears */
	uint8_t in[CON_INBUF];
	unsigned in_head, in_count;
	struct vq_elem elem;   /* the transmit chain being written */
	/* A receive chain, being filled. Its own: a transmit chain can wait in
	 * elem for stdout across callbacks while input is delivered. */
	struct vq_elem rx_elem;
	bool out_pending;      /* elem popped and not all written yet */
	size_t out_done;       /* ... its bytes written so far */
	bool out_watched;      /* stdout registered with the loop for room */
	uint64_t out_stalls;   /* times stdout took no more */
};

/* ---- guest → host ---- */

#define CON_OUT_CHUNK 4096 /* POLLOUT promises room for a pipe's PIPE_BUF, not for more */

/* Write what stdout takes now of the pending chain, from out_done on:
 * 1 all of it, 0 stdout is full (out_done says how far it got), -1 stdout
 * is gone (the rest is dropped, as when the reader of a pipe exits). */
static int con_write_some(struct virtio_console *c)
{
	size_t skip = c->out_done;
	for (unsigned i = 0; i < c->elem.n_out; i++) {
		const uint8_t *base = c->elem.out[i].iov_base;
		size_t len = c->elem.out[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		for (size_t off = skip; off < len;) {
			struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };
			int n = poll(&pfd, 1, 0);
			if (n < 0 && errno != EINTR)
				return -1;
			if (n <= 0)
				return 0;
			if (pfd.revents & (POLLERR | POLLNVAL))
				return -1;
			size_t want = len - off < CON_OUT_CHUNK ? len - off : CON_OUT_CHUNK;
			ssize_t r = write(STDOUT_FILENO, base + off, want);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				return 0;
			if (r <= 0)
				return -1;
			off += (size_t)r;
			c->out_done += (size_t)r;
		}
		skip = 0;
	}
	return 1;
}

static void con_transmit(struct virtio_console *c);

static void con_stdout_cb(void *opaque, uint32_t events)
{
	(void)events; /* room or an error: con_write_some tells them apart */
	struct virtio_console *c = opaque;
	evloop_del(c->loop, STDOUT_FILENO); /* level-triggered: only while waiting */
	c->out_watched = false;
	con_transmit(c);
}

/* stdout took no more of the pending chain: wake up when it has room. A
 * stdout epoll cannot watch (a regular file, /dev/null) always has room
 * for poll(2), so this is reached only for pipes, sockets and terminals;
 * should the loop refuse it anyway, the rest is written blocking, as far
 * as a VM stop allows. False when the chain is done with after all. */
static bool con_wait_stdout(struct virtio_console *c)
{
	c->out_stalls++;
	if (c->out_watched)
		return true;
	if (evloop_add(c->loop, STDOUT_FILENO, EPOLLOUT, con_stdout_cb, c) == 0) {
		c->out_watched = true;
		return true;
	}
	size_t skip = c->out_done;
	for (unsigned i = 0; i < c->elem.n_out; i++) {
		size_t len = c->elem.out[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		if (!util_write_out(STDOUT_FILENO, (const uint8_t *)c->elem.out[i].iov_base + skip,
				    len - skip, c->ctl.stopping))
			break;
		skip = 0;
	}
	return false;
}

static void con_transmit(struct virtio_console *c)
{
	struct virtqueue *vq = virtio_queue(c->dev, CON_TX);
	if (!vq)
		return;
	bool pushed = false;
	for (;;) {
		if (!c->out_pending) {
			if (virtio_queue_pop(c->dev, CON_TX, &c->elem) <= 0)
				break;
			c->out_pending = true;
			c->out_done = 0;
		}
		if (con_write_some(c) == 0 && con_wait_stdout(c))
			break; /* the chain waits, unanswered, for stdout to take more */
		vq_push_elem(vq, &c->elem, 0);
		c->out_pending = false;
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(c->dev, CON_TX);
}

/* ---- host → guest ---- */

static void con_pause_input(struct virtio_console *c, bool pause)
{
	if (!c->in_watched || c->in_paused == pause)
		return;
	if (evloop_mod(c->loop, STDIN_FILENO, pause ? 0 : EPOLLIN) == 0)
		c->in_paused = pause;
}

static bool con_read_stdin(struct virtio_console *c);

/* Move buffered input into the driver's receive buffers. */
static void con_deliver(struct virtio_console *c)
{
	struct virtqueue *vq = virtio_queue(c->dev, CON_RX);
	if (!vq)
		return;
	bool pushed = false;
	while (c->in_count && virtio_queue_pop(c->dev, CON_RX, &c->rx_elem) > 0) {
		uint64_t done = 0;
		/* the buffered bytes are at most two runs of the ring */
		while (c->in_count && done < c->rx_elem.in_len) {
			unsigned run = CON_INBUF - c->in_head;
			if (run > c->in_count)
				run = c->in_count;
			uint64_t n = vq_buf_to_iov(c->rx_elem.in, c->rx_elem.n_in, done, c->in + c->in_head, run);
			if (!n)
				break;
			done += n;
			c->in_head = (unsigned)((c->in_head + n) % CON_INBUF);
			c->in_count -= (unsigned)n;
		}
		vq_push_elem(vq, &c->rx_elem, (uint32_t)done);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(c->dev, CON_RX);
	if (c->in_count < CON_INBUF)
		con_pause_input(c, false);
	/* stdin hung up while we were full: its rest can be read without blocking */
	if (c->in_hup && c->in_count < CON_INBUF) {
		if (!con_read_stdin(c))
			c->in_hup = false;
		else if (c->in_count)
			con_deliver(c); /* recursion ends: each round needs new guest buffers */
	}
}

/* One read of stdin into the buffer (room > 0). False at EOF or error. */
static bool con_read_stdin(struct virtio_console *c)
{
	uint8_t buf[256];
	size_t room = CON_INBUF - c->in_count;
	ssize_t r = read(STDIN_FILENO, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (r <= 0)
		return false;
	bool quit = false;
	size_t n = term_escape_filter(&c->esc, buf, (size_t)r, &quit);
	for (size_t i = 0; i < n; i++) /* n <= room */
		c->in[(c->in_head + c->in_count++) % CON_INBUF] = buf[i];
	if (quit)
		dev_ctl_stop(&c->ctl, VM_STOP_USER, HVMM_EXIT_OK, "terminated by Ctrl-A x");
	return true;
}

static void con_unwatch(struct virtio_console *c)
{
	/* on the loop thread, so evloop_del does not wait for ourselves */
	if (c->in_watched)
		evloop_del(c->loop, STDIN_FILENO);
	c->in_watched = false;
}

static void con_stdin_cb(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;
	if (c->in_count == CON_INBUF) {
		/* Paused, yet epoll still reports a hang-up: stop watching, and
		 * read what is left once the guest makes room (con_deliver). */
		if (events & (EPOLLHUP | EPOLLERR)) {
			con_unwatch(c);
			c->in_hup = true;
		} else {
			con_pause_input(c, true);
		}
		return;
	}
	if (!con_read_stdin(c)) {
		con_unwatch(c); /* EOF or a dead stdin */
		return;
	}
	con_deliver(c);
	if (c->in_count == CON_INBUF)
		con_pause_input(c, true);
}

/* ---- the model ---- */

static void con_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_console *c = virtio_dev_opaque(d);
	if (q == CON_RX)
		con_deliver(c); /* new receive buffers */
	else
		con_transmit(c);
}

static void con_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
	(void)d, (void)off;
	memset(buf, 0, len);
}

/* The guest reset the device (or tear-down): a chain still waiting for
 * stdout belongs to the old queue and is dropped, unanswered. */
static void con_reset(struct virtio_dev *d)
{
	struct virtio_console *c = virtio_dev_opaque(d);
	c->out_pending = false;
	if (c->out_watched)
		evloop_del(c->loop, STDOUT_FILENO);
	c->out_watched = false;
}

static void con_destroy(struct virtio_dev *d)
{
	struct virtio_console *c = virtio_dev_opaque(d);
	if (c->out_stalls && c->stats)
		fprintf(stderr, "virtio-console: stdout took no more output %llu times (the guest's output "
			"waited, the other devices did not)\n", (unsigned long long)c->out_stalls);
	con_unwatch(c);
	term_raw_restore();
	free(c);
}

/* ---- snapshots ---- */

/*
 * Output: a transmit chain stdout had not taken all of (out_pending) is
 * saved as its head and the bytes already written; the restored device
 * walks the same chain again (its descriptors are in the snapshot's RAM)
 * and writes the rest, so no byte the guest queued is lost or written
 * twice. Chains still in the avail ring are the restored device's to pop.
 * Input: bytes read from stdin and not yet given to the guest (in[]) are
 * dropped, as is the escape state: they were typed at the old process's
 * terminal, and the restored VM reads its own stdin.
 */
struct con_snap {
	uint8_t out_pending;
	uint8_t pad;
	uint16_t out_head;
	uint32_t pad2;
	uint64_t out_done;
};
_Static_assert(sizeof(struct con_snap) == 16, "file layout: no hidden padding");

static int con_snap_save(struct virtio_dev *d, struct snap_buf *b, char *err, size_t n)
{
	(void)err, (void)n;
	struct virtio_console *c = virtio_dev_opaque(d);
	struct con_snap s;
	memset(&s, 0, sizeof(s));
	/* a chain of a queue that is not live any more is the next reset's to drop */
	if (c->out_pending && virtio_queue(d, CON_TX)) {
		s.out_pending = 1;
		s.out_head = c->elem.head;
		s.out_done = c->out_done;
	}
	snap_put(b, &s, sizeof(s));
	return 0;
}

static int con_snap_load(struct virtio_dev *d, struct snap_cur *cur, char *err, size_t n)
{
	struct virtio_console *c = virtio_dev_opaque(d);
	struct con_snap s;
	snap_get(cur, &s, sizeof(s));
	if (cur->bad) {
		snprintf(err, n, "virtio-console: truncated");
		return -1;
	}
	if (s.pad || s.pad2) { /* zero in every save */
		snprintf(err, n, "virtio-console: malformed padding");
		return -1;
	}
	if (s.out_pending > 1 || (!s.out_pending && (s.out_head || s.out_done))) {
		snprintf(err, n, "virtio-console: out_pending %u", s.out_pending);
		return -1;
	}
	c->out_pending = false;
	if (!s.out_pending)
		return 0;
	struct virtqueue *vq = virtio_queue(d, CON_TX);
	if (!vq) {
		snprintf(err, n, "virtio-console: an output chain pending on a transmit queue not live");
		return -1;
	}
	int r = vq_rewalk(vq, s.out_head, &c->elem);
	if (r != VQ_OK || s.out_done > c->elem.out_len) {
		snprintf(err, n, "virtio-console: pending output chain %u: %s", s.out_head,
			 r != VQ_OK ? vq_err_str(r) : "more bytes written than it has");
		return -1;
	}
	c->out_pending = true;
	c->out_done = (size_t)s.out_done;
	return 0;
}

static const struct virtio_dev_ops con_ops = {
	.name = "virtio-console",
	.device_type = VIRTIO_ID_CONSOLE,
	.features = 0, /* no SIZE, no MULTIPORT, no EMERG_WRITE */
	.nr_queues = 2,
	.queue_max = CON_QUEUE_MAX,
	.config_size = CON_CONFIG_SIZE,
	.config_read = con_config_read,
	.queue_notify = con_queue_notify,
	.reset = con_reset,
	.destroy = con_destroy,
	.snap_save = con_snap_save,
	.snap_load = con_snap_load,
};

int virtio_console_create(const struct dev_env *env, struct virtio_dev **out)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = env->loop;
	c->ctl = env->ctl;
	c->stats = env->cfg && env->cfg->stats;
	c->dev = virtio_pci_create(env, &con_ops, c);
	if (!c->dev) {
		int e = errno ? -errno : -ENOMEM;
		free(c);
		return e;
	}
	/* stdin that epoll cannot watch (a regular file, /dev/null) gives no
	 * input; anything else is read from the start, so that Ctrl-A x works
	 * before the guest's driver is up. From here c is freed by con_destroy.
	 * Without an event loop (unit tests) evloop_add refuses: no input. */
	if (evloop_add(c->loop, STDIN_FILENO, EPOLLIN, con_stdin_cb, c) == 0)
		c->in_watched = true;
	term_raw_enter();
	return virtio_model_done(env, c->dev, out);
}
