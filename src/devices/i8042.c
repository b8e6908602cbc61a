/*
 * i8042 keyboard controller with nothing plugged in: enough for Linux's probe
 * (self test, command byte, interface tests answered, no device ever
 * answers) and for the reset paths guests use — command 0xFE (pulse the
 * reset line) and bit 0 of the output port written through 0xD1.
 *
 * Like the real part it interrupts whenever its output buffer is full and
 * the command byte enables that source: IRQ 1 for keyboard-side bytes,
 * IRQ 12 for mouse-side ones (the aux loopback, 0xD3). Linux checks that
 * IRQ 12 arrives after a loopback before it uses the aux port, and waits
 * 250 ms of boot for it when it does not.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "devices_priv.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

/* status register */
#define I8042_STR_OBF 0x01     /* output buffer full */
#define I8042_STR_SYS 0x04     /* system flag: POST passed */
#define I8042_STR_CMD 0x08     /* last write went to 0x64 */
#define I8042_STR_UNLOCK 0x10  /* keyboard not inhibited */
#define I8042_STR_AUXDATA 0x20 /* output buffer holds mouse data */

/* command byte */
#define I8042_CTR_KBDINT 0x01 /* interrupt on keyboard-side output */
#define I8042_CTR_AUXINT 0x02 /* interrupt on aux-side output */

#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

#define I8042_OUTQ 8

/* The guest-visible state, plain bytes: a snapshot copies it whole. */
struct i8042_regs {
	uint8_t cmd_byte;
	uint8_t outport;
	uint8_t pending;  /* command waiting for its data byte on 0x60, or 0 */
	uint8_t last_cmd; /* bool: last write was to the command port */
	/* responses, oldest first; aux[] (bools) tells which came "from the mouse" */
	uint8_t outq[I8042_OUTQ];
	uint8_t aux[I8042_OUTQ];
	uint8_t head, count;
	uint8_t last_data; /* what 0x60 reads when the buffer is empty */
	uint8_t kbd_irq, aux_irq; /* bools: what we last told irq_set_line */
};

_Static_assert(sizeof(struct i8042_regs) == 9 + 2 * I8042_OUTQ, "i8042_regs without padding");

struct i8042 {
	struct irq_line kbd_line, aux_line; /* ISA IRQ 1 and 12 */
	struct dev_ctl ctl;                 /* 0xFE to 0x64: a reset request */
	struct bus *pio;
	pthread_mutex_t lock;
	struct i8042_regs r;
};

/* The two lines follow "output buffer full, from this side, interrupt
 * enabled"; reading 0x60 drops them, the next byte raises one again. */
static void i8042_update_irq(struct i8042 *k)
{
	bool full = k->r.count != 0, aux = full && k->r.aux[k->r.head];
	bool kbd_level = full && !aux && (k->r.cmd_byte & I8042_CTR_KBDINT);
	bool aux_level = aux && (k->r.cmd_byte & I8042_CTR_AUXINT);
	if (kbd_level != k->r.kbd_irq) {
		k->r.kbd_irq = kbd_level;
		irq_line_set(&k->kbd_line, kbd_level);
	}
	if (aux_level != k->r.aux_irq) {
		k->r.aux_irq = aux_level;
		irq_line_set(&k->aux_line, aux_level);
	}
}

static void i8042_push(struct i8042 *k, uint8_t v, bool aux)
{
	if (k->r.count == I8042_OUTQ)
		return; /* a guest spamming commands without reading loses answers */
	unsigned i = (k->r.head + k->r.count) % I8042_OUTQ;
	k->r.outq[i] = v;
	k->r.aux[i] = aux;
	k->r.count++;
}

static void i8042_reset_request(struct i8042 *k, const char *how)
{
	dev_ctl_stop(&k->ctl, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest reset via i8042 (%s)", how);
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read command byte */
		i8042_push(k, k->r.cmd_byte, false);
		break;
	case 0x60: /* write command byte: next data byte */
	case 0xD1: /* write output port: next data byte */
	case 0xD2: /* write keyboard output buffer: next data byte */
	case 0xD3: /* write aux output buffer: next data byte */
	case 0xD4: /* write to the aux device: next data byte (no device) */
		k->r.pending = cmd;
		break;
	case 0xA7: /* disable aux */
		k->r.cmd_byte |= 0x20;
		break;
	case 0xA8: /* enable aux */
		k->r.cmd_byte &= (uint8_t)~0x20;
		break;
	case 0xA9: /* aux interface test: 0 = OK */
	case 0xAB: /* keyboard interface test: 0 = OK */
		i8042_push(k, 0x00, false);
		break;
	case 0xAA: /* controller self test */
		i8042_push(k, 0x55, false);
		break;
	case 0xAD: /* disable keyboard */
		k->r.cmd_byte |= 0x10;
		break;
	case 0xAE: /* enable keyboard */
		k->r.cmd_byte &= (uint8_t)~0x10;
		break;
	case 0xC0: /* read input port */
		i8042_push(k, 0x00, false);
		break;
	case 0xD0: /* read output port */
		i8042_push(k, k->r.outport, false);
		break;
	default:
		/* 0xF0-0xFF pulse output port lines for 6 us; bit 0 low pulses
		 * the CPU reset line. 0xFE is the classic reset. */
		if (cmd >= 0xF0 && !(cmd & 0x01))
			i8042_reset_request(k, cmd == 0xFE ? "0x64 <- 0xfe" : "pulse output port");
		/* anything else is ignored, as an unknown command */
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->r.pending;
	k->r.pending = 0;
	switch (cmd) {
	case 0x60:
		k->r.cmd_byte = v;
		break;
	case 0xD1:
		k->r.outport = v;
		if (!(v & 0x01))
			i8042_reset_request(k, "output port bit 0 cleared");
		break;
	case 0xD2:
		i8042_push(k, v, false);
		break;
	case 0xD3:
		i8042_push(k, v, true);
		break;
	default:
		/* 0xD4 or a byte for the keyboard: no device is there to answer */
		break;
	}
}

static uint64_t i8042_read(struct i8042 *k, unsigned port)
{
	uint64_t v;
	pthread_mutex_lock(&k->lock);
	if (port == I8042_DATA_PORT) {
		if (k->r.count) {
			k->r.last_data = k->r.outq[k->r.head];
			k->r.head = (k->r.head + 1) % I8042_OUTQ;
			k->r.count--;
		}
		v = k->r.last_data; /* an empty buffer reads stale, like hardware */
		i8042_update_irq(k);
	} else {
		v = I8042_STR_SYS | I8042_STR_UNLOCK;
		if (k->r.last_cmd)
			v |= I8042_STR_CMD;
		if (k->r.count) {
			v |= I8042_STR_OBF;
			if (k->r.aux[k->r.head])
				v |= I8042_STR_AUXDATA;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void i8042_write(struct i8042 *k, unsigned port, uint8_t value)
{
	pthread_mutex_lock(&k->lock);
	if (port == I8042_DATA_PORT) {
		k->r.last_cmd = false;
		i8042_data(k, value);
	} else {
		k->r.last_cmd = true;
		k->r.pending = 0; /* a new command aborts a half-written one */
		i8042_command(k, value);
	}
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

/* ---- snapshot: the controller's registers and output queue, whole ---- */

static int i8042_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct i8042 *k = dev;
	(void)err, (void)n;
	pthread_mutex_lock(&k->lock);
	struct i8042_regs w = k->r;
	pthread_mutex_unlock(&k->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *i8042_snap_check(const struct i8042_regs *w)
{
	bool bools = devices_snap_is_bool(w->last_cmd) && devices_snap_is_bool(w->kbd_irq) &&
		     devices_snap_is_bool(w->aux_irq);
	for (unsigned i = 0; i < I8042_OUTQ; i++)
		bools = bools && devices_snap_is_bool(w->aux[i]);
	if (!bools)
		return "a flag is neither 0 nor 1";
	if (w->head >= I8042_OUTQ || w->count > I8042_OUTQ)
		return "output queue head or count out of range";
	if (!(w->pending == 0 || w->pending == 0x60 || (w->pending >= 0xD1 && w->pending <= 0xD4)))
		return "pending command unknown";
	/* The levels are restored as recorded, not driven (the IOAPIC and PIC,
	 * or KVM's irqchip, restore the lines' state themselves, and a call
	 * would be an interrupt the snapshot does not hold); they must be what
	 * the queue implies, or the next update would drive a wrong edge. */
	bool full = w->count != 0, aux = full && w->aux[w->head];
	if (w->kbd_irq != (full && !aux && (w->cmd_byte & I8042_CTR_KBDINT)) ||
	    w->aux_irq != (aux && (w->cmd_byte & I8042_CTR_AUXINT)))
		return "IRQ levels disagree with the output buffer";
	return NULL;
}

static int i8042_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct i8042 *k = dev;
	struct i8042_regs w;
	if (devices_snap_version("i8042", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("i8042", c, err, n) < 0)
		return -1;
	const char *why = i8042_snap_check(&w);
	if (why) {
		snprintf(err, n, "i8042: %s", why);
		return -1;
	}
	pthread_mutex_lock(&k->lock);
	k->r = w;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* Two 1-byte ranges (0x61-0x63 belong to others), so two sets of ops. */
static uint64_t i8042_data_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset;
	(void)size;
	return i8042_read(opaque, I8042_DATA_PORT);
}

static void i8042_data_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	i8042_write(opaque, I8042_DATA_PORT, (uint8_t)value);
}

static uint64_t i8042_cmd_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)offset;
	(void)size;
	return i8042_read(opaque, I8042_CMD_PORT);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	i8042_write(opaque, I8042_CMD_PORT, (uint8_t)value);
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

/* What firmware leaves: keyboard interrupt enabled, system flag,
 * translation; the reset line not asserted. */
static void i8042_regs_init(struct i8042_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->cmd_byte = 0x45;
	r->outport = 0x01;
}

static void i8042_destroy(void *dev)
{
	struct i8042 *k = dev;
	devices_bus_forget(k->pio, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int i8042_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->kbd_line = dev_env_line(env, I8042_KBD_IRQ);
	k->aux_line = dev_env_line(env, I8042_AUX_IRQ);
	k->ctl = env->ctl;
	k->pio = env->pio;
	pthread_mutex_init(&k->lock, NULL);
	i8042_regs_init(&k->r);
	int r = bus_register(env->pio, I8042_DATA_PORT, 1, &i8042_data_ops, k, "i8042 data");
	if (r == 0)
		r = bus_register(env->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k, "i8042 command");
	if (r < 0) {
		i8042_destroy(k);
		return r;
	}
	*dev = k;
	return 0;
}

/* The lines go low with the buffer: a reset controller asserts nothing. */
static void i8042_reset(void *dev)
{
	struct i8042 *k = dev;
	pthread_mutex_lock(&k->lock);
	i8042_regs_init(&k->r);
	irq_line_set(&k->kbd_line, false);
	irq_line_set(&k->aux_line, false);
	pthread_mutex_unlock(&k->lock);
}

const struct dev_ops i8042_dev_ops = {
	.name = "i8042",
	.desc = "i8042",
	.create = i8042_create,
	.reset = i8042_reset,
	.snap = { .name = "i8042", .version = 1, .save = i8042_snap_save, .load = i8042_snap_load },
	.destroy = i8042_destroy,
};
