/*
 * 16550A UART (COM1: 0x3f8, IRQ 4), complete enough for Linux's 8250 driver
 * (probe, FIFO detection, THRE test, interrupt-driven TX/RX) and for guests
 * that poll LSR.
 *
 * Transmission is instantaneous: a THR byte goes straight to the output, so
 * THR and the shift register are always empty (LSR.THRE|TEMT always set) and
 * the TX FIFO never holds anything. Reception goes through a 16-byte FIFO fed
 * by the I/O thread from stdin (SERIAL_STDIO) or by MCR loopback.
 *
 * Threads: vCPUs (register accesses) and the I/O thread (stdin, delayed
 * output flush) share the state under u->lock. Input that does not fit in
 * the FIFO waits in a host-side queue, so nothing is dropped when the guest
 * is slow, and Ctrl-A x still works while the guest reads nothing at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "../sandbox.h"
#include "../term.h"
#include "../util.h"
#include "devices_priv.h"

#define UART_NPORTS 8

/* register offsets */
#define UART_RBR 0 /* read, DLAB=0 (THR on write) */
#define UART_IER 1 /* DLAB=0 */
#define UART_IIR 2 /* read (FCR on write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01  /* received data available */
#define UART_IER_THRI 0x02 /* THR empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI 0x08  /* modem status */

#define UART_IIR_NONE 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_FIFO 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08 /* gates the IRQ line on PCs */
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS 0x1e /* OE, PE, FE, BI: cleared by reading LSR */

#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80
#define UART_MSR_DELTAS 0x0f

#define UART_FIFO 16
#define UART_PENDING 4096  /* host-side input queue behind the FIFO */
#define UART_OBUF 512
#define UART_FLUSH_NS 5000000ull /* a partial line reaches the output within 5 ms */


/*
 * The guest-visible state, plain data (no padding: bytes only) so that a
 * snapshot copies it whole and a field added here is saved with the rest.
 */
struct uart_regs {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	uint8_t lsr_errors;   /* OE (and friends) until LSR is read */
	uint8_t msr_deltas;   /* until MSR is read */
	uint8_t msr_lines;    /* CTS/DSR/RI/DCD as last computed */
	uint8_t thre_pending; /* bool: the THR-empty interrupt condition */
	uint8_t irq_level;    /* bool: what we last told irq_set_line */
	uint8_t rx[UART_FIFO];
	uint8_t rx_head, rx_count; /* the receive FIFO, a ring */
	uint8_t last_rx;
};

_Static_assert(sizeof(struct uart_regs) == 31, "uart_regs is bytes only: no padding");

struct uart {
	struct irq_line irq; /* COM1's ISA IRQ 4 */
	struct dev_ctl ctl;  /* Ctrl-A x stops the VM; stopping and paused are read */
	struct bus *pio;
	pthread_mutex_t lock;

	struct uart_regs r; /* the guest's: what a snapshot saves */

	/* input not yet in the FIFO */
	uint8_t pend[UART_PENDING];
	unsigned pend_head, pend_count;
	struct term_escape escape;

	/* output */
	enum serial_mode mode;
	int out_fd;
	bool out_own;
	uint64_t out_limit;   /* 0: none */
	uint64_t out_written; /* bytes handed to out_fd */
	uint64_t out_dropped; /* bytes past out_limit */
	char obuf[UART_OBUF];
	size_t olen;
	uint64_t obuf_since; /* when the oldest unflushed byte arrived */

	/* I/O thread */
	pthread_t thread;
	bool thread_running;
	bool stop;
	bool in_open; /* still reading stdin */
	bool console_virtio; /* --console virtio: stdin is virtio-console's */
	int wake_fd;
};

/* ---- output ---- */

/* A stalled reader stalls the guest's transmitter (this runs with the lock
 * held, on a vCPU or the I/O thread), but never a VM stop: once the VM is
 * stopping, what cannot go out is dropped. A gone output (closed pipe, full
 * disk) drops it too, and the guest runs on. */
static void uart_flush(struct uart *u)
{
	size_t n = u->olen;
	u->olen = 0;
	if (u->out_limit) {
		uint64_t room = u->out_limit > u->out_written ? u->out_limit - u->out_written : 0;
		if (n > room) {
			/* The guest chooses the volume; the log's size is the user's. */
			if (room)
				util_write_out(u->out_fd, u->obuf, (size_t)room, u->ctl.stopping);
			if (!u->out_dropped) {
				char note[128];
				int len = snprintf(note, sizeof(note),
						   "\n[hvmm: serial output limit of %llu bytes reached; the rest is dropped]\n",
						   (unsigned long long)u->out_limit);
				util_write_out(u->out_fd, note, (size_t)len, u->ctl.stopping);
			}
			u->out_written += room;
			u->out_dropped += n - room;
			return;
		}
	}
	util_write_out(u->out_fd, u->obuf, n, u->ctl.stopping);
	u->out_written += n;
}

uint64_t uart_dropped(struct uart *u)
{
	if (!u)
		return 0;
	pthread_mutex_lock(&u->lock);
	uint64_t d = u->out_dropped;
	pthread_mutex_unlock(&u->lock);
	return d;
}

static void uart_wake(struct uart *u)
{
	if (u->wake_fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(u->wake_fd, &one, sizeof(one));
		(void)r; /* a full eventfd already means "wake up" */
	}
}

static void uart_out(struct uart *u, uint8_t c)
{
	if (u->mode == SERIAL_NONE)
		return;
	if (u->olen == 0) {
		u->obuf_since = util_now_ns();
		if (u->thread_running)
			uart_wake(u); /* arm the I/O thread's flush deadline */
	}
	u->obuf[u->olen++] = (char)c;
	/* Whole lines go out at once; a partial one within UART_FLUSH_NS (I/O
	 * thread) or at uart_stop. Per-byte write(2) would cost a syscall for
	 * every character of a chatty guest. */
	if (c == '\n' || u->olen == sizeof(u->obuf))
		uart_flush(u);
}

/* ---- interrupt state ---- */

static unsigned uart_fifo_cap(const struct uart *u)
{
	return (u->r.fcr & UART_FCR_ENABLE) ? UART_FIFO : 1;
}

/* The highest-priority pending interrupt, as IIR bits 3:0. */
static uint8_t uart_iir_id(const struct uart *u)
{
	if ((u->r.ier & UART_IER_RLSI) && (u->r.lsr_errors & UART_LSR_ERRORS))
		return UART_IIR_RLSI;
	/* "Character timeout" (0x0c) is reported as plain data available: the
	 * FIFO is drained at once, so the distinction carries nothing. */
	if ((u->r.ier & UART_IER_RDI) && u->r.rx_count)
		return UART_IIR_RDI;
	if ((u->r.ier & UART_IER_THRI) && u->r.thre_pending)
		return UART_IIR_THRI;
	if ((u->r.ier & UART_IER_MSI) && (u->r.msr_deltas & UART_MSR_DELTAS))
		return UART_IIR_MSI;
	return UART_IIR_NONE;
}

static void uart_update_irq(struct uart *u)
{
	/* On a PC, OUT2 gates the UART's interrupt output onto the ISA line. */
	bool level = uart_iir_id(u) != UART_IIR_NONE && (u->r.mcr & UART_MCR_OUT2);
	if (level != u->r.irq_level) {
		u->r.irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* ---- modem lines ---- */

static uint8_t uart_msr_lines(const struct uart *u)
{
	if (!(u->r.mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS; /* a modem that is always there */
	/* loopback: the outputs feed the inputs */
	uint8_t v = 0;
	if (u->r.mcr & UART_MCR_RTS)
		v |= UART_MSR_CTS;
	if (u->r.mcr & UART_MCR_DTR)
		v |= UART_MSR_DSR;
	if (u->r.mcr & UART_MCR_OUT1)
		v |= UART_MSR_RI;
	if (u->r.mcr & UART_MCR_OUT2)
		v |= UART_MSR_DCD;
	return v;
}

static void uart_update_msr(struct uart *u)
{
	uint8_t now = uart_msr_lines(u);
	uint8_t changed = now ^ u->r.msr_lines;
	if (changed & UART_MSR_CTS)
		u->r.msr_deltas |= 0x01;
	if (changed & UART_MSR_DSR)
		u->r.msr_deltas |= 0x02;
	if ((changed & UART_MSR_RI) && !(now & UART_MSR_RI))
		u->r.msr_deltas |= 0x04; /* trailing edge of RI only */
	if (changed & UART_MSR_DCD)
		u->r.msr_deltas |= 0x08;
	u->r.msr_lines = now;
}

/* ---- receive ---- */

static void uart_rx_clear(struct uart *u)
{
	u->r.rx_head = u->r.rx_count = 0;
}

/* Move queued input into the FIFO while it has room (not in loopback, where
 * the receiver hears only the transmitter). */
static void uart_rx_refill(struct uart *u)
{
	bool was_full = u->pend_count == UART_PENDING;
	while (!(u->r.mcr & UART_MCR_LOOP) && u->pend_count && u->r.rx_count < uart_fifo_cap(u)) {
		u->r.rx[(u->r.rx_head + u->r.rx_count) % UART_FIFO] = u->pend[u->pend_head];
		u->r.rx_count++;
		u->pend_head = (u->pend_head + 1) % UART_PENDING;
		u->pend_count--;
	}
	if (was_full && u->pend_count < UART_PENDING && u->thread_running)
		uart_wake(u); /* the I/O thread may read stdin again */
}

/* A byte arriving on the wire (loopback): overrun when the FIFO is full. */
static void uart_rx_wire(struct uart *u, uint8_t c)
{
	if (u->r.rx_count >= uart_fifo_cap(u)) {
		u->r.lsr_errors |= UART_LSR_OE;
		return;
	}
	u->r.rx[(u->r.rx_head + u->r.rx_count) % UART_FIFO] = c;
	u->r.rx_count++;
}

static uint8_t uart_rx_pop(struct uart *u)
{
	if (u->r.rx_count) {
		u->r.last_rx = u->r.rx[u->r.rx_head];
		u->r.rx_head = (u->r.rx_head + 1) % UART_FIFO;
		u->r.rx_count--;
		uart_rx_refill(u);
	}
	return u->r.last_rx; /* an empty RBR reads the last byte again */
}

/* Bytes from the host side, with QEMU's Ctrl-A escapes (term.c). Lock held.
 * Returns true when the user asked to quit. */
static bool uart_input_locked(struct uart *u, const uint8_t *buf, size_t len)
{
	bool quit = false;
	uint8_t tmp[256];
	while (len) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
		memcpy(tmp, buf, n);
		buf += n;
		len -= n;
		n = term_escape_filter(&u->escape, tmp, n, &quit);
		for (size_t i = 0; i < n; i++) {
			if (u->pend_count == UART_PENDING)
				break; /* callers never give more than there is room for */
			u->pend[(u->pend_head + u->pend_count) % UART_PENDING] = tmp[i];
			u->pend_count++;
		}
	}
	/* A paused VM's devices change nothing the guest can see (a snapshot
	 * may be reading them): typed input waits in pend until the resume. */
	if (!(u->ctl.paused && atomic_load(u->ctl.paused))) {
		uart_rx_refill(u);
		uart_update_irq(u);
	}
	return quit;
}

static void uart_pause_barrier(void *dev)
{
	struct uart *u = dev;
	/* `paused` is set: an input thread that read it clear before is done
	 * once it has let go of the lock, and every later one sees it set. */
	pthread_mutex_lock(&u->lock);
	pthread_mutex_unlock(&u->lock);
}

static void uart_resume(void *dev)
{
	struct uart *u = dev;
	pthread_mutex_lock(&u->lock);
	uart_rx_refill(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

void uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	bool quit = uart_input_locked(u, buf, len);
	pthread_mutex_unlock(&u->lock);
	if (quit)
		dev_ctl_stop(&u->ctl, VM_STOP_USER, HVMM_EXIT_OK, "terminated by Ctrl-A x");
}

/* ---- registers ---- */

static uint8_t uart_read_reg(struct uart *u, unsigned off)
{
	uint8_t v;
	bool dlab = u->r.lcr & UART_LCR_DLAB;
	switch (off) {
	case UART_RBR:
		if (dlab)
			return u->r.dll;
		v = uart_rx_pop(u);
		uart_update_irq(u);
		return v;
	case UART_IER:
		return dlab ? u->r.dlm : u->r.ier;
	case UART_IIR:
		v = uart_iir_id(u);
		/* Reading IIR acknowledges THRE when that is what it reports. */
		if (v == UART_IIR_THRI) {
			u->r.thre_pending = false;
			uart_update_irq(u);
		}
		return v | ((u->r.fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0);
	case UART_LCR:
		return u->r.lcr;
	case UART_MCR:
		return u->r.mcr;
	case UART_LSR:
		v = UART_LSR_THRE | UART_LSR_TEMT | u->r.lsr_errors | (u->r.rx_count ? UART_LSR_DR : 0);
		if (u->r.lsr_errors) {
			u->r.lsr_errors = 0;
			uart_update_irq(u);
		}
		return v;
	case UART_MSR:
		v = u->r.msr_lines | u->r.msr_deltas;
		if (u->r.msr_deltas) {
			u->r.msr_deltas = 0;
			uart_update_irq(u);
		}
		return v;
	default: /* UART_SCR */
		return u->r.scr;
	}
}

static void uart_write_reg(struct uart *u, unsigned off, uint8_t v)
{
	bool dlab = u->r.lcr & UART_LCR_DLAB;
	switch (off) {
	case UART_RBR: /* THR */
		if (dlab) {
			u->r.dll = v;
			return;
		}
		/* Writing THR clears the THRE interrupt; the byte leaves at once,
		 * THR is empty again and THRE is raised anew: a new edge for a
		 * guest whose handler writes THR without reading IIR. */
		u->r.thre_pending = false;
		uart_update_irq(u);
		if (u->r.mcr & UART_MCR_LOOP)
			uart_rx_wire(u, v);
		else
			uart_out(u, v);
		u->r.thre_pending = true;
		uart_update_irq(u);
		return;
	case UART_IER:
		if (dlab) {
			u->r.dlm = v;
			return;
		}
		/* Enabling THRI while THR is empty raises THRE (Linux's startup
		 * THRE test and Windows both rely on it). */
		if ((v & UART_IER_THRI) && !(u->r.ier & UART_IER_THRI))
			u->r.thre_pending = true;
		u->r.ier = v & 0x0f;
		uart_update_irq(u);
		return;
	case UART_IIR: /* FCR */
		if ((v ^ u->r.fcr) & UART_FCR_ENABLE)
			uart_rx_clear(u); /* switching FIFO mode resets the FIFOs */
		if (v & UART_FCR_CLEAR_RX)
			uart_rx_clear(u);
		/* TX FIFO is always empty: nothing to clear */
		u->r.fcr = v & (uint8_t)~(UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
		uart_rx_refill(u);
		uart_update_irq(u);
		return;
	case UART_LCR:
		u->r.lcr = v;
		return;
	case UART_MCR:
		u->r.mcr = v & 0x1f;
		uart_update_msr(u);
		uart_rx_refill(u); /* leaving loopback reconnects the input */
		uart_update_irq(u);
		return;
	case UART_LSR:
	case UART_MSR:
		return; /* factory test registers: writes ignored */
	default: /* UART_SCR */
		u->r.scr = v;
		return;
	}
}

/* The UART is a byte-wide ISA device: a wider access touches consecutive
 * registers, one byte each, as the ISA bus would split it. */
static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
	struct uart *u = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size && offset + i < UART_NPORTS; i++)
		v |= (uint64_t)uart_read_reg(u, (unsigned)offset + i) << (8 * i);
	pthread_mutex_unlock(&u->lock);
	return v;
}

static void uart_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct uart *u = opaque;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size && offset + i < UART_NPORTS; i++)
		uart_write_reg(u, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
	pthread_mutex_unlock(&u->lock);
}

static const struct bus_ops uart_ops = {
	.read = uart_read,
	.write = uart_write,
};

/*
 * ---- snapshot ----
 *
 * The registers and the receive FIFO (struct uart_regs, whole): bytes the
 * UART accepted are the guest's. The host side is not: input still queued
 * behind the FIFO (it was typed into the old process's terminal), the
 * Ctrl-A escape state, and output not yet flushed (already the old
 * process's; a restore writes to its own --serial).
 */
static int uart_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct uart *u = dev;
	(void)err, (void)n;
	pthread_mutex_lock(&u->lock);
	struct uart_regs w = u->r;
	pthread_mutex_unlock(&u->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *uart_snap_check(const struct uart_regs *w)
{
	if (!devices_snap_is_bool(w->thre_pending) || !devices_snap_is_bool(w->irq_level))
		return "a flag is neither 0 nor 1";
	if (w->ier & ~0x0f)
		return "IER has reserved bits set";
	if (w->mcr & ~0x1f)
		return "MCR has reserved bits set";
	if (w->fcr & (UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX))
		return "FCR holds a self-clearing bit";
	if (w->lsr_errors & ~UART_LSR_ERRORS)
		return "LSR error bits out of range";
	if (w->msr_deltas & ~UART_MSR_DELTAS)
		return "MSR delta bits out of range";
	unsigned cap = (w->fcr & UART_FCR_ENABLE) ? UART_FIFO : 1;
	if (w->rx_head >= UART_FIFO || w->rx_count > cap)
		return "receive FIFO head or count out of range";
	return NULL;
}

static int uart_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct uart *u = dev;
	struct uart_regs w;
	if (devices_snap_version("uart", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("uart", c, err, n) < 0)
		return -1;
	const char *why = uart_snap_check(&w);
	if (why) {
		snprintf(err, n, "uart: %s", why);
		return -1;
	}
	pthread_mutex_lock(&u->lock);
	struct uart_regs old = u->r;
	u->r = w;
	/* The level as recorded, without irq_set_line: the interrupt
	 * controllers restore their own view of the line (a call here would be
	 * a new edge), but it must be the level the registers imply. */
	bool level = uart_iir_id(u) != UART_IIR_NONE && (u->r.mcr & UART_MCR_OUT2);
	if (level != (bool)w.irq_level)
		why = "IRQ level disagrees with the registers";
	else if (u->r.msr_lines != uart_msr_lines(u))
		why = "MSR lines disagree with MCR";
	if (why)
		u->r = old;
	pthread_mutex_unlock(&u->lock);
	if (why) {
		snprintf(err, n, "uart: %s", why);
		return -1;
	}
	return 0;
}

/* ---- I/O thread ---- */

static void *uart_thread(void *arg)
{
	struct uart *u = arg;
	uint8_t buf[256];
	int sr = sandbox_enter(SANDBOX_SERIAL, NULL);
	if (sr < 0) {
		dev_ctl_stop(&u->ctl, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "serial input: seccomp: %s",
			     strerror(-sr));
		return NULL;
	}
	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		/* Only this thread adds to pend, so room can only grow meanwhile. */
		size_t room = UART_PENDING - u->pend_count;
		if (room > sizeof(buf))
			room = sizeof(buf);
		bool want_in = u->in_open && room > 0;
		int timeout = -1;
		if (u->olen) {
			uint64_t now = util_now_ns(), due = u->obuf_since + UART_FLUSH_NS;
			timeout = now >= due ? 0 : (int)((due - now + 999999) / 1000000);
		}
		pthread_mutex_unlock(&u->lock);

		struct pollfd pfd[2] = {
			{ .fd = u->wake_fd, .events = POLLIN },
			{ .fd = want_in ? STDIN_FILENO : -1, .events = POLLIN },
		};
		int n = poll(pfd, 2, timeout);
		ssize_t got = 0;
		int err = 0;
		if (n > 0 && pfd[0].revents) {
			uint64_t cnt;
			ssize_t r = read(u->wake_fd, &cnt, sizeof(cnt));
			(void)r;
		}
		if (n > 0 && pfd[1].revents) {
			got = read(STDIN_FILENO, buf, room);
			err = errno;
		}

		pthread_mutex_lock(&u->lock);
		if (u->olen && util_now_ns() >= u->obuf_since + UART_FLUSH_NS)
			uart_flush(u);
		if (n > 0 && pfd[1].revents) {
			if (got > 0) {
				if (uart_input_locked(u, buf, (size_t)got)) {
					pthread_mutex_unlock(&u->lock);
					dev_ctl_stop(&u->ctl, VM_STOP_USER, HVMM_EXIT_OK, "terminated by Ctrl-A x");
					pthread_mutex_lock(&u->lock);
				}
			} else if (got == 0 || (err != EINTR && err != EAGAIN)) {
				u->in_open = false; /* EOF or a dead stdin: stop reading */
			}
		}
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int uart_start(struct uart *u)
{
	if (!u || u->mode == SERIAL_NONE || u->thread_running)
		return 0;
	u->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->wake_fd < 0)
		return -errno;
	/* With --console virtio, stdin belongs to virtio-console (which sets
	 * the terminal up itself); COM1 keeps its output. */
	if (u->mode == SERIAL_STDIO && !u->console_virtio) {
		term_raw_enter();
		u->in_open = true;
	}
	pthread_mutex_lock(&u->lock);
	u->stop = false;
	int r = pthread_create(&u->thread, NULL, uart_thread, u);
	if (r == 0)
		u->thread_running = true;
	pthread_mutex_unlock(&u->lock);
	if (r != 0) {
		close(u->wake_fd);
		u->wake_fd = -1;
		term_raw_restore();
		errno = r;
		return -r;
	}
	return 0;
}

void uart_stop(struct uart *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	bool running = u->thread_running;
	u->stop = true;
	pthread_mutex_unlock(&u->lock);
	if (running) {
		uart_wake(u);
		pthread_join(u->thread, NULL);
		pthread_mutex_lock(&u->lock);
		u->thread_running = false;
		pthread_mutex_unlock(&u->lock);
	}
	if (u->wake_fd >= 0) {
		close(u->wake_fd);
		u->wake_fd = -1;
	}
	pthread_mutex_lock(&u->lock);
	uart_flush(u);
	pthread_mutex_unlock(&u->lock);
	term_raw_restore();
}

/* Reset state: THR empty, modem lines up, IRQ gated off (OUT2 = 0), and
 * 115200 baud (no firmware runs to pick one). */
static void uart_regs_init(struct uart *u)
{
	memset(&u->r, 0, sizeof(u->r));
	u->r.msr_lines = uart_msr_lines(u);
	u->r.dll = 0x01;
}

static void uart_destroy(void *dev)
{
	struct uart *u = dev;
	uart_stop(u);
	devices_bus_forget(u->pio, u);
	if (u->out_own)
		close(u->out_fd);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* The output as --serial asks: stdout, a file (--serial-limit caps what
 * it gets), or nothing. */
static int uart_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i;
	const struct vm_config *cfg = env->cfg;
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->irq = dev_env_line(env, UART_COM1_IRQ);
	u->ctl = env->ctl;
	u->pio = env->pio;
	u->mode = cfg->serial;
	u->out_limit = cfg->serial_limit;
	u->console_virtio = cfg->console_virtio;
	u->wake_fd = -1;
	u->out_fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	if (u->mode == SERIAL_STDIO) {
		u->out_fd = STDOUT_FILENO;
	} else if (u->mode == SERIAL_FILE) {
		u->out_fd = cfg->serial_path ? open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
		if (u->out_fd < 0) {
			/* the user's file: their mistake to fix, not the host's */
			snprintf(err, n, "cannot open serial output %s: %s",
				 cfg->serial_path ? cfg->serial_path : "(none)",
				 strerror(cfg->serial_path ? errno : EINVAL));
			pthread_mutex_destroy(&u->lock);
			free(u);
			return DEV_ERR_USAGE;
		}
		u->out_own = true;
	}
	uart_regs_init(u);
	int r = bus_register(env->pio, UART_COM1_BASE, UART_NPORTS, &uart_ops, u, "uart");
	if (r < 0) {
		snprintf(err, n, "serial port: %s", strerror(-r));
		uart_destroy(u);
		return r;
	}
	*dev = u;
	return 0;
}

/* The registers; host-side input still queued stays (it is the host's). */
static void uart_reset(void *dev)
{
	struct uart *u = dev;
	pthread_mutex_lock(&u->lock);
	bool level = u->r.irq_level;
	uart_regs_init(u);
	if (level)
		irq_line_set(&u->irq, false);
	pthread_mutex_unlock(&u->lock);
}

static void uart_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "dropped", json_object_new_uint64(uart_dropped(dev)));
}

const struct dev_ops uart_dev_ops = {
	.name = "uart",
	.desc = "serial port",
	.create = uart_create,
	.reset = uart_reset,
	.pause = uart_pause_barrier,
	.resume = uart_resume,
	.snap = { .name = "uart", .version = 1, .save = uart_snap_save, .load = uart_snap_load },
	.stats = uart_stats,
	.destroy = uart_destroy,
};
