/*
 * The 8254 programmable interval timer (PIT) at 0x40-0x43, and the two bits
 * of port 0x61 (system control port B) that belong to it: channel 2's gate
 * (bit 0, written and read back) and its output (bit 5, read-only), with the
 * speaker-data bit (1) kept as written and the refresh toggle (bit 4) that
 * flips every 15 us as on a PC. The input clock is 1.193182 MHz.
 *
 * Nothing counts inside hvmm: a channel remembers when its count was loaded
 * (and, for a gated channel, how many ticks it had when the gate fell), and
 * every read computes the count and OUT from the host's monotonic clock. So
 * an idle PIT costs nothing, and Linux's calibration loops on channel 2
 * (polling the count or OUT2 through port 0x61) see a counter that moves at
 * the real rate.
 *
 * What the chip does and hvmm models: the six modes' counting and OUT (0
 * interrupt on terminal count, 1 gate-triggered one-shot, 2 rate generator,
 * 3 square wave, 4 software strobe, 5 gate strobe), binary and BCD counting,
 * the LSB/MSB/LSB-then-MSB access modes with their flip-flops, the counter
 * latch command and the read-back command (count and status, any channels).
 * A new count takes effect at once (the chip waits for the end of the
 * current period in modes 2 and 3; nothing a guest relies on sees that).
 *
 * Channel 0's OUT is ISA IRQ 0: the 8259's IRQ 0 and IOAPIC pin 2 (the MP
 * table's and the MADT's override). Only then is a host timer needed: a
 * timerfd on hvmm's event loop, armed while channel 0 counts in a mode that
 * raises OUT — periodic in modes 2 and 3, once in modes 0 and 4 — and
 * disarmed otherwise, so a guest that never programs the PIT (or stops it,
 * as Linux does when its LAPIC timer needs no PIT) costs no host wake-ups.
 * Each expiry is one edge on the line; expiries the event loop was too
 * late for are dropped, not queued (QEMU's lost_tick_policy=discard, which
 * kvm-unit-tests run QEMU with). The host timer's period is at least
 * PIT_MIN_PERIOD_NS, as KVM's in-kernel PIT clamps it: a guest asking for a
 * 1-tick period (1.19 MHz) must not turn into a host interrupt storm; reads
 * of the count still show the programmed rate.
 *
 * Guest input: every port, byte and command is handled; sizes > 1 touch the
 * next port as separate byte accesses; the counter value arithmetic is done
 * in 64 bits (ticks since load; the tick count takes ~490,000 years to wrap).
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../evloop.h"
#include "../util.h"
#include "devices_priv.h"

#define PIT_PORT 0x40
#define PIT_SYSCTL_PORT 0x61
#define PIT_CMD 3
#define PIT_RW_LATCH 0
#define PIT_RW_LSB 1
#define PIT_RW_MSB 2
#define PIT_RW_WORD 3
/* Port 0x61 */
#define PIT_SC_GATE2 0x01
#define PIT_SC_SPEAKER 0x02
#define PIT_SC_KEEP 0x0f /* bits 0-3 are writable, 4-7 read-only status */
#define PIT_SC_REFRESH 0x10
#define PIT_SC_OUT2 0x20
#define PIT_REFRESH_NS 15085ull /* the refresh request toggles every ~15 us */

struct pit_channel {
	uint8_t mode;     /* 0..5 */
	uint8_t rw;       /* PIT_RW_LSB / MSB / WORD */
	bool bcd;
	bool gate;
	bool loaded;      /* a count was written since the control word */
	bool running;     /* counting (gate allows, triggered in modes 1 and 5) */
	bool triggered;   /* modes 1 and 5: the gate rose since the count was loaded */
	uint32_t reload;  /* 1..modulus (a written 0 is the modulus) */
	uint64_t base_ns; /* host time that base_ticks refers to (while running) */
	uint64_t base_ticks;
	/* the data port */
	bool write_msb_next; /* PIT_RW_WORD: the LSB was written */
	uint8_t write_lsb;
	bool read_msb_next;  /* PIT_RW_WORD: the LSB of the live count was read */
	bool count_latched;
	bool latch_msb_next;
	uint16_t latch;
	bool status_latched;
	uint8_t status;
};

struct pit_chip {
	struct pit_channel ch[PIT_CHANNELS];
	uint8_t sysctl; /* port 0x61 bits 0-3 */
	unsigned gen;   /* bumped on every change of channel 0's timing */
};

struct pit {
	pthread_mutex_t lock;
	struct irq_line irq; /* ISA IRQ 0 (IOAPIC pin 2) */
	struct evloop *loop; /* the timerfd's; NULL: IRQ 0 never fires */
	struct bus *pio;
	struct pit_chip chip;
	int tfd;            /* timerfd for channel 0, -1 without one */
	unsigned armed_gen; /* chip.gen the timer was armed for */
	uint64_t fired;     /* IRQ 0 edges raised (tests, statistics) */
};

static uint32_t pit_modulus(const struct pit_channel *c)
{
	return c->bcd ? 10000 : 65536;
}

static uint64_t pit_ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / 1000000000ull);
}

/* The host time at which `ticks` ticks have passed since t0 (rounded up). */
static uint64_t pit_ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * 1000000000ull + PIT_HZ - 1) / PIT_HZ);
}

static uint64_t pit_ticks(const struct pit_channel *c, uint64_t now)
{
	if (!c->running)
		return c->base_ticks;
	return c->base_ticks + (now > c->base_ns ? pit_ns_to_ticks(now - c->base_ns) : 0);
}

/* The counting element's value (16 bits, BCD or binary count) now. */
static uint16_t pit_count(const struct pit_channel *c, uint64_t now)
{
	if (!c->loaded)
		return 0;
	const uint64_t t = pit_ticks(c, now), n = c->reload, m = pit_modulus(c);
	uint64_t v;
	switch (c->mode) {
	case 2: /* n, n-1, ..., 1, reload */
		v = n - t % n;
		break;
	case 3: { /* n, n-2, ..., 2 per half period, OUT flipping between them */
		uint64_t d = t % n;
		v = n - (2 * d) % n;
		break;
	}
	default: /* 0, 1, 4, 5: down from n, wrapping through the modulus */
		v = (n % m + m - t % m) % m;
		break;
	}
	return (uint16_t)(v % m);
}

static bool pit_out(const struct pit_channel *c, uint64_t now)
{
	if (!c->loaded)
		return c->mode != 0; /* after the control word: low in mode 0, else high */
	const uint64_t t = pit_ticks(c, now), n = c->reload;
	switch (c->mode) {
	case 0: /* low until terminal count, then high */
		return t >= n;
	case 1: /* low from the trigger to terminal count */
		return !c->triggered || t >= n;
	case 2: /* low for the one tick before each reload */
		return !c->gate || t % n != n - 1;
	case 3: /* high for the first (larger) half of each period */
		return !c->gate || t % n < (n + 1) / 2;
	case 4: /* low for one tick at terminal count */
		return t != n;
	default: /* 5 */
		return !c->triggered || t != n;
	}
}

static uint16_t pit_to_bcd(uint16_t v)
{
	return (uint16_t)((v % 10) | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000 % 10) << 12);
}

/* Digits above 9 are not BCD; the chip's behaviour then is undefined and any
 * value in range will do. */
static uint32_t pit_from_bcd(uint16_t v)
{
	return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000u;
}

static uint16_t pit_read_value(const struct pit_channel *c, uint64_t now)
{
	uint16_t v = pit_count(c, now);
	return c->bcd ? pit_to_bcd(v) : v;
}

static void pit_restart(struct pit_channel *c, uint64_t now)
{
	c->base_ticks = 0;
	c->base_ns = now;
}

/* A whole count has been written: the counting element starts from it. */
static void pit_load(struct pit_channel *c, uint16_t raw, uint64_t now)
{
	uint32_t v = c->bcd ? pit_from_bcd(raw) : raw;
	uint32_t m = pit_modulus(c);
	c->reload = v == 0 || v > m ? m : v;
	c->loaded = true;
	pit_restart(c, now);
	if (c->mode == 1 || c->mode == 5) {
		c->triggered = false; /* wait for the gate's rising edge */
		c->running = false;
	} else {
		c->running = c->gate;
	}
}

static void pit_set_gate(struct pit_channel *c, bool gate, uint64_t now)
{
	if (gate == c->gate)
		return;
	if (c->loaded) {
		switch (c->mode) {
		case 0:
		case 4: /* the gate suspends counting and resumes it */
			if (!gate)
				c->base_ticks = pit_ticks(c, now);
			c->base_ns = now;
			c->running = gate;
			break;
		case 2:
		case 3: /* low stops; the rising edge reloads */
			if (gate)
				pit_restart(c, now);
			c->running = gate;
			break;
		default: /* 1, 5: the rising edge (re)triggers */
			if (gate) {
				pit_restart(c, now);
				c->triggered = true;
				c->running = true;
			}
			break;
		}
	}
	c->gate = gate;
}

static uint8_t pit_status(const struct pit_channel *c, uint64_t now)
{
	return (uint8_t)((pit_out(c, now) ? 0x80 : 0) | (c->loaded ? 0 : 0x40) | c->rw << 4 |
			 c->mode << 1 | (c->bcd ? 1 : 0));
}

static void pit_latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->count_latched)
		return; /* a second latch before the first is read is ignored */
	c->latch = pit_read_value(c, now);
	c->count_latched = true;
	c->latch_msb_next = false;
}

static void pit_command(struct pit_chip *p, uint8_t v, uint64_t now)
{
	unsigned sc = v >> 6, rw = (v >> 4) & 3;
	if (sc == 3) { /* read-back: bits 1-3 select channels 0-2; 5 and 4 are active low */
		for (unsigned i = 0; i < PIT_CHANNELS; i++) {
			struct pit_channel *c = &p->ch[i];
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20))
				pit_latch_count(c, now);
			if (!(v & 0x10) && !c->status_latched) {
				c->status = pit_status(c, now);
				c->status_latched = true;
			}
		}
		return;
	}
	struct pit_channel *c = &p->ch[sc];
	if (rw == PIT_RW_LATCH) {
		pit_latch_count(c, now);
		return;
	}
	uint8_t mode = (v >> 1) & 7;
	if (mode > 5)
		mode -= 4; /* 6 and 7 are 2 and 3 */
	/* A control word stops the channel until its count is written. */
	*c = (struct pit_channel){ .mode = mode, .rw = (uint8_t)rw, .bcd = v & 1, .gate = c->gate };
	if (sc == 0)
		p->gen++;
}

void pit_chip_write(struct pit_chip *p, unsigned port, uint8_t v, uint64_t now)
{
	if (port == PIT_CMD) {
		pit_command(p, v, now);
		return;
	}
	if (port == PIT_PORT_SYSCTL) {
		p->sysctl = v & PIT_SC_KEEP;
		pit_set_gate(&p->ch[2], v & PIT_SC_GATE2, now);
		return;
	}
	if (port >= PIT_CHANNELS)
		return;
	struct pit_channel *c = &p->ch[port];
	switch (c->rw) {
	case PIT_RW_LSB:
		pit_load(c, v, now);
		break;
	case PIT_RW_MSB:
		pit_load(c, (uint16_t)(v << 8), now);
		break;
	case PIT_RW_WORD:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
			if (c->mode == 0) /* mode 0: writing the LSB stops the count */
				c->loaded = false;
			return;
		}
		c->write_msb_next = false;
		pit_load(c, (uint16_t)(c->write_lsb | v << 8), now);
		break;
	default: /* no control word yet: the chip's access mode is undefined */
		return;
	}
	if (port == 0)
		p->gen++;
}

uint8_t pit_chip_read(struct pit_chip *p, unsigned port, uint64_t now)
{
	if (port == PIT_PORT_SYSCTL) {
		struct pit_channel *c2 = &p->ch[2];
		return (uint8_t)(p->sysctl | ((now / PIT_REFRESH_NS) & 1 ? PIT_SC_REFRESH : 0) |
				 (pit_out(c2, now) ? PIT_SC_OUT2 : 0));
	}
	if (port >= PIT_CHANNELS)
		return 0xff; /* the control word register cannot be read */
	struct pit_channel *c = &p->ch[port];
	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	uint16_t v;
	bool msb;
	if (c->count_latched) {
		v = c->latch;
		if (c->rw == PIT_RW_WORD) {
			msb = c->latch_msb_next;
			c->latch_msb_next = !msb;
			c->count_latched = !msb; /* released after its second byte */
		} else {
			msb = c->rw == PIT_RW_MSB;
			c->count_latched = false;
		}
	} else {
		v = pit_read_value(c, now);
		if (c->rw == PIT_RW_WORD) {
			msb = c->read_msb_next;
			c->read_msb_next = !msb;
		} else {
			msb = c->rw == PIT_RW_MSB;
		}
	}
	return (uint8_t)(msb ? v >> 8 : v);
}

bool pit_chip_out(const struct pit_chip *p, unsigned channel, uint64_t now)
{
	return channel < PIT_CHANNELS && pit_out(&p->ch[channel], now);
}

bool pit_chip_timer(const struct pit_chip *p, uint64_t now, uint64_t *first_ns, uint64_t *period_ns)
{
	const struct pit_channel *c = &p->ch[0];
	if (!c->loaded || !c->running)
		return false;
	const uint64_t t = pit_ticks(c, now), n = c->reload;
	uint64_t next; /* the tick at which OUT next rises */
	switch (c->mode) {
	case 2:
	case 3:
		next = (t / n + 1) * n;
		*period_ns = pit_ticks_to_ns(n);
		break;
	case 0:
	case 4:
		if (t >= n)
			return false; /* already past terminal count: no more edges */
		next = n;
		*period_ns = 0;
		break;
	default: /* 1, 5: channel 0's gate is tied high, so never triggered */
		return false;
	}
	*first_ns = c->base_ns + pit_ticks_to_ns(next - c->base_ticks);
	return true;
}

static void pit_chip_reset(struct pit_chip *p)
{
	memset(p, 0, sizeof(*p));
	/* Channels 0 and 1 have their gates tied high on a PC; channel 2's is
	 * port 0x61 bit 0, low at power-on. */
	p->ch[0].gate = p->ch[1].gate = true;
}

struct pit_chip *pit_chip_new(void)
{
	struct pit_chip *p = malloc(sizeof(*p));
	if (p)
		pit_chip_reset(p);
	return p;
}

void pit_chip_free(struct pit_chip *p)
{
	free(p);
}

/* ---- the device: ports, the host timer, IRQ 0 ---- */

/* (Re)arm the timerfd for channel 0's next edge(s); with p->lock held. */
static void pit_arm(struct pit *p)
{
	if (p->tfd < 0 || p->armed_gen == p->chip.gen)
		return;
	p->armed_gen = p->chip.gen;
	struct itimerspec its = { 0 };
	uint64_t first, period;
	if (pit_chip_timer(&p->chip, util_now_ns(), &first, &period)) {
		if (period && period < PIT_MIN_PERIOD_NS)
			period = PIT_MIN_PERIOD_NS;
		if (first == 0)
			first = 1; /* 0 would disarm */
		its.it_value = (struct timespec){ (time_t)(first / 1000000000ull),
						  (long)(first % 1000000000ull) };
		its.it_interval = (struct timespec){ (time_t)(period / 1000000000ull),
						     (long)(period % 1000000000ull) };
	}
	/* CLOCK_MONOTONIC absolute, the clock util_now_ns() reads */
	if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		static bool said;
		if (!said) {
			said = true;
			util_err("PIT: timerfd_settime: %s; IRQ 0 will not fire", strerror(errno));
		}
	}
}

/* Event loop: channel 0's OUT rose (once per batch of expiries: the rest
 * are lost ticks, dropped). */
static void pit_timer_cb(void *opaque, uint32_t events)
{
	(void)events;
	struct pit *p = opaque;
	uint64_t n;
	if (read(p->tfd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return; /* spurious wake-up, or re-armed in between: nothing expired */
	pthread_mutex_lock(&p->lock);
	p->fired++;
	pthread_mutex_unlock(&p->lock);
	/* An edge: the 8259 latches it in IRR, the IOAPIC delivers it once. */
	irq_line_set(&p->irq, true);
	irq_line_set(&p->irq, false);
}

static uint64_t pit_io_read(void *opaque, uint64_t offset, unsigned size, unsigned base)
{
	struct pit *p = opaque;
	uint64_t v = 0, now = util_now_ns();
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)pit_chip_read(&p->chip, base + (unsigned)offset + i, now) << (8 * i);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pit_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value, unsigned base)
{
	struct pit *p = opaque;
	uint64_t now = util_now_ns();
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		pit_chip_write(&p->chip, base + (unsigned)offset + i, (uint8_t)(value >> (8 * i)), now);
	pit_arm(p);
	pthread_mutex_unlock(&p->lock);
}

/* 0x40-0x43 are chip ports 0-3; a wide access past 0x43 is clipped. */
static uint64_t pit_main_read(void *opaque, uint64_t offset, unsigned size)
{
	return pit_io_read(opaque, offset, offset + size > 4 ? 4 - (unsigned)offset : size, 0);
}

static void pit_main_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pit_io_write(opaque, offset, offset + size > 4 ? 4 - (unsigned)offset : size, value, 0);
}

/* 0x61 is one byte: its chip port is PIT_PORT_SYSCTL. */
static uint64_t pit_sysctl_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset;
	(void)size;
	return pit_io_read(opaque, 0, 1, PIT_PORT_SYSCTL);
}

static void pit_sysctl_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	pit_io_write(opaque, 0, 1, value, PIT_PORT_SYSCTL);
}

static const struct bus_ops pit_main_ops = { .read = pit_main_read, .write = pit_main_write };
static const struct bus_ops pit_sysctl_ops = { .read = pit_sysctl_read, .write = pit_sysctl_write };

static void pit_free(void *opaque)
{
	struct pit *p = opaque;
	/* Off the loop first (stopped by now: no callback can be running). */
	if (p->tfd >= 0) {
		evloop_del(p->loop, p->tfd);
		close(p->tfd);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/*
 * ---- snapshot ----
 *
 * Per channel everything above (mode, access mode, BCD, gate, the count and
 * its state, the data port's flip-flops and latches) and port 0x61's bits.
 * Time goes as ticks, not host ns: a running channel's ticks since its count
 * was loaded at the save, plus the ns since the last whole tick (less than
 * one tick), and the load puts base_ns that far before its own "now". So
 * the count goes on from where it stood, in any later process, and a save
 * of the loaded state is the same bytes (the form is normal: base_ticks is
 * the whole count and base_ns within a tick of now).
 */
struct pit_snap_channel {
	uint8_t mode, rw, bcd, gate;
	uint8_t loaded, running, triggered, write_msb_next;
	uint8_t write_lsb, read_msb_next, count_latched, latch_msb_next;
	uint8_t status_latched, status;
	uint16_t latch;
	uint32_t reload;
	uint32_t sub_tick_ns; /* ns since the last whole tick (running) */
	uint64_t ticks;       /* ticks counted since the count was loaded */
};

struct pit_snap {
	struct pit_snap_channel ch[PIT_CHANNELS];
	uint8_t sysctl;
	uint8_t pad[7];
};

_Static_assert(sizeof(struct pit_snap) == 32 * PIT_CHANNELS + 8, "pit payload without implicit padding");

/* A tick is 838.1 ns; what sub_tick_ns may hold. */
#define PIT_SNAP_TICK_NS (1000000000ull / PIT_HZ + 1)

static void pit_snap_channel_save(const struct pit_channel *c, uint64_t now,
				  struct pit_snap_channel *w)
{
	*w = (struct pit_snap_channel){
		.mode = c->mode, .rw = c->rw, .bcd = c->bcd, .gate = c->gate,
		.loaded = c->loaded, .running = c->running, .triggered = c->triggered,
		.write_msb_next = c->write_msb_next, .write_lsb = c->write_lsb,
		.read_msb_next = c->read_msb_next, .count_latched = c->count_latched,
		.latch_msb_next = c->latch_msb_next, .status_latched = c->status_latched,
		.status = c->status, .latch = c->latch, .reload = c->reload,
		.ticks = c->base_ticks,
	};
	if (c->running && now > c->base_ns) {
		uint64_t whole = pit_ns_to_ticks(now - c->base_ns);
		w->ticks = c->base_ticks + whole;
		/* pit_ticks_to_ns rounds up, so this is < one tick, >= 0 */
		w->sub_tick_ns = (uint32_t)(now - c->base_ns - pit_ticks_to_ns(whole));
	}
}

static int pit_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct pit *p = dev;
	(void)err, (void)n;
	struct pit_snap w;
	memset(&w, 0, sizeof(w));
	uint64_t now = devices_snap_mono_ns();
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < PIT_CHANNELS; i++)
		pit_snap_channel_save(&p->chip.ch[i], now, &w.ch[i]);
	w.sysctl = p->chip.sysctl;
	pthread_mutex_unlock(&p->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *pit_snap_check_channel(const struct pit_snap_channel *w, unsigned i, char *buf,
					  size_t len)
{
	const uint8_t flags[] = { w->bcd, w->gate, w->loaded, w->running, w->triggered,
				  w->write_msb_next, w->read_msb_next, w->count_latched,
				  w->latch_msb_next, w->status_latched };
	for (unsigned k = 0; k < sizeof(flags); k++)
		if (!devices_snap_is_bool(flags[k]))
			return "a flag is neither 0 nor 1";
	if (w->mode > 5) {
		snprintf(buf, len, "mode %u out of range", w->mode);
		return buf;
	}
	if (w->rw > PIT_RW_WORD)
		return "access mode out of range";
	uint32_t m = w->bcd ? 10000 : 65536;
	/* pit_count and pit_out divide by the reload of a loaded channel */
	if (w->reload > m || (w->loaded && w->reload == 0)) {
		snprintf(buf, len, "reload %u out of range", w->reload);
		return buf;
	}
	if (i < 2 && !w->gate)
		return "gate low on a channel whose gate is tied high";
	if (w->sub_tick_ns >= PIT_SNAP_TICK_NS || (!w->running && w->sub_tick_ns))
		return "sub-tick time out of range";
	return NULL;
}

static int pit_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct pit *p = dev;
	struct pit_snap w;
	if (devices_snap_version("pit", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("pit", c, err, n) < 0)
		return -1;
	char buf[64];
	for (unsigned i = 0; i < PIT_CHANNELS; i++) {
		const char *why = pit_snap_check_channel(&w.ch[i], i, buf, sizeof(buf));
		if (why) {
			snprintf(err, n, "pit: channel %u %s", i, why);
			return -1;
		}
	}
	if (w.sysctl & ~PIT_SC_KEEP || (bool)(w.sysctl & PIT_SC_GATE2) != (bool)w.ch[2].gate) {
		snprintf(err, n, "pit: port 0x61 bits 0x%02x disagree with channel 2's gate", w.sysctl);
		return -1;
	}
	for (unsigned i = 0; i < sizeof(w.pad); i++) {
		if (w.pad[i]) {
			snprintf(err, n, "pit: malformed padding");
			return -1;
		}
	}
	uint64_t now = devices_snap_mono_ns();
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < PIT_CHANNELS; i++) {
		const struct pit_snap_channel *s = &w.ch[i];
		p->chip.ch[i] = (struct pit_channel){
			.mode = s->mode, .rw = s->rw, .bcd = s->bcd, .gate = s->gate,
			.loaded = s->loaded, .running = s->running, .triggered = s->triggered,
			.reload = s->reload,
			.base_ns = now - s->sub_tick_ns, /* now >> one tick: the monotonic clock */
			.base_ticks = s->ticks,
			.write_msb_next = s->write_msb_next, .write_lsb = s->write_lsb,
			.read_msb_next = s->read_msb_next, .count_latched = s->count_latched,
			.latch_msb_next = s->latch_msb_next, .latch = s->latch,
			.status_latched = s->status_latched, .status = s->status,
		};
	}
	p->chip.sysctl = w.sysctl;
	/* Channel 0's host timer follows the loaded state: a new generation
	 * makes pit_arm program it (the next edge is computed from now, so an
	 * edge the old process had not raised yet comes once, none twice). */
	p->chip.gen++;
	pit_arm(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pit_destroy(void *dev)
{
	struct pit *p = dev;
	devices_bus_forget(p->pio, p);
	pit_free(p);
}

static int pit_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct pit *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->irq = dev_env_line(env, PIT_IRQ_PIN);
	p->loop = env->loop;
	p->pio = env->pio;
	pit_chip_reset(&p->chip);
	p->tfd = -1;
	int r = 0;
	/* Without an event loop (unit tests) the chip works and IRQ 0 never fires. */
	if (p->loop) {
		int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		r = fd < 0 ? -errno : evloop_add(p->loop, fd, EPOLLIN, pit_timer_cb, p);
		if (r == 0)
			p->tfd = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (r == 0)
		r = bus_register(env->pio, PIT_PORT, 4, &pit_main_ops, p, "pit");
	if (r == 0)
		r = bus_register(env->pio, PIT_SYSCTL_PORT, 1, &pit_sysctl_ops, p, "pit port 0x61");
	if (r < 0) {
		pit_destroy(p);
		return r;
	}
	*dev = p;
	return 0;
}

/* The chip as at power-on, and its host timer disarmed (pit_arm sees the
 * new generation). */
static void pit_reset(void *dev)
{
	struct pit *p = dev;
	pthread_mutex_lock(&p->lock);
	unsigned gen = p->chip.gen;
	pit_chip_reset(&p->chip);
	p->chip.gen = gen + 1;
	pit_arm(p);
	pthread_mutex_unlock(&p->lock);
}

static void pit_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "irqs", json_object_new_uint64(pit_irqs(dev)));
}

static int pit_dev_count(const struct vm_config *cfg)
{
	return irq_user_ioapic(cfg->irqchip);
}

const struct dev_ops pit_dev_ops = {
	.name = "pit",
	.desc = "PIT",
	.count = pit_dev_count,
	.create = pit_create,
	.reset = pit_reset,
	.snap = { .name = "pit", .version = 1, .save = pit_snap_save, .load = pit_snap_load },
	.stats = pit_stats,
	.destroy = pit_destroy,
};

void pit_firmware_init(struct pit *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	/* A PC BIOS's timer: channel 0, LSB then MSB, mode 2, count 0 (65536):
	 * IRQ 0 at 18.2 Hz, the BIOS tick. */
	uint64_t now = util_now_ns();
	pit_chip_write(&p->chip, PIT_CMD, 0x34, now);
	pit_chip_write(&p->chip, 0, 0, now);
	pit_chip_write(&p->chip, 0, 0, now);
	pit_arm(p);
	pthread_mutex_unlock(&p->lock);
}

uint64_t pit_irqs(struct pit *p)
{
	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->fired;
	pthread_mutex_unlock(&p->lock);
	return n;
}
