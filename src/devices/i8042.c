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
#include "../vm.h"
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

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t cmd_byte;
	uint8_t outport;
	uint8_t pending;  /* command waiting for its data byte on 0x60, or 0 */
	bool last_cmd;    /* last write was to the command port */
	/* responses, oldest first; aux[] tells which came "from the mouse" */
	uint8_t outq[I8042_OUTQ];
	bool aux[I8042_OUTQ];
	unsigned head, count;
	uint8_t last_data; /* what 0x60 reads when the buffer is empty */
	bool kbd_irq, aux_irq; /* what we last told irq_set_line */
};

/* The two lines follow "output buffer full, from this side, interrupt
 * enabled"; reading 0x60 drops them, the next byte raises one again. */
static void i8042_update_irq(struct i8042 *k)
{
	bool full = k->count != 0, aux = full && k->aux[k->head];
	bool kbd_level = full && !aux && (k->cmd_byte & I8042_CTR_KBDINT);
	bool aux_level = aux && (k->cmd_byte & I8042_CTR_AUXINT);
	if (kbd_level != k->kbd_irq) {
		k->kbd_irq = kbd_level;
		irq_set_line(k->vm, I8042_KBD_IRQ, kbd_level);
	}
	if (aux_level != k->aux_irq) {
		k->aux_irq = aux_level;
		irq_set_line(k->vm, I8042_AUX_IRQ, aux_level);
	}
}

static void i8042_push(struct i8042 *k, uint8_t v, bool aux)
{
	if (k->count == I8042_OUTQ)
		return; /* a guest spamming commands without reading loses answers */
	unsigned i = (k->head + k->count) % I8042_OUTQ;
	k->outq[i] = v;
	k->aux[i] = aux;
	k->count++;
}

static void i8042_reset_request(struct i8042 *k, const char *how)
{
	vm_stop(k->vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest reset via i8042 (%s)", how);
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read command byte */
		i8042_push(k, k->cmd_byte, false);
		break;
	case 0x60: /* write command byte: next data byte */
	case 0xD1: /* write output port: next data byte */
	case 0xD2: /* write keyboard output buffer: next data byte */
	case 0xD3: /* write aux output buffer: next data byte */
	case 0xD4: /* write to the aux device: next data byte (no device) */
		k->pending = cmd;
		break;
	case 0xA7: /* disable aux */
		k->cmd_byte |= 0x20;
		break;
	case 0xA8: /* enable aux */
		k->cmd_byte &= (uint8_t)~0x20;
		break;
	case 0xA9: /* aux interface test: 0 = OK */
	case 0xAB: /* keyboard interface test: 0 = OK */
		i8042_push(k, 0x00, false);
		break;
	case 0xAA: /* controller self test */
		i8042_push(k, 0x55, false);
		break;
	case 0xAD: /* disable keyboard */
		k->cmd_byte |= 0x10;
		break;
	case 0xAE: /* enable keyboard */
		k->cmd_byte &= (uint8_t)~0x10;
		break;
	case 0xC0: /* read input port */
		i8042_push(k, 0x00, false);
		break;
	case 0xD0: /* read output port */
		i8042_push(k, k->outport, false);
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
	uint8_t cmd = k->pending;
	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->cmd_byte = v;
		break;
	case 0xD1:
		k->outport = v;
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
		if (k->count) {
			k->last_data = k->outq[k->head];
			k->head = (k->head + 1) % I8042_OUTQ;
			k->count--;
		}
		v = k->last_data; /* an empty buffer reads stale, like hardware */
		i8042_update_irq(k);
	} else {
		v = I8042_STR_SYS | I8042_STR_UNLOCK;
		if (k->last_cmd)
			v |= I8042_STR_CMD;
		if (k->count) {
			v |= I8042_STR_OBF;
			if (k->aux[k->head])
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
		k->last_cmd = false;
		i8042_data(k, value);
	} else {
		k->last_cmd = true;
		k->pending = 0; /* a new command aborts a half-written one */
		i8042_command(k, value);
	}
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

/* ---- snapshot: the controller's registers and its output queue ---- */

struct i8042_snap {
	uint8_t cmd_byte, outport, pending, last_cmd;
	uint8_t outq[I8042_OUTQ];
	uint8_t aux[I8042_OUTQ];
	uint8_t head, count, last_data;
	uint8_t kbd_irq, aux_irq; /* the lines' levels: the controllers hold them too */
};

static int i8042_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct i8042 *k = dev;
	(void)err, (void)n;
	struct i8042_snap w;
	memset(&w, 0, sizeof(w));
	pthread_mutex_lock(&k->lock);
	w.cmd_byte = k->cmd_byte;
	w.outport = k->outport;
	w.pending = k->pending;
	w.last_cmd = k->last_cmd;
	for (unsigned i = 0; i < I8042_OUTQ; i++) {
		w.outq[i] = k->outq[i];
		w.aux[i] = k->aux[i];
	}
	w.head = (uint8_t)k->head;
	w.count = (uint8_t)k->count;
	w.last_data = k->last_data;
	w.kbd_irq = k->kbd_irq;
	w.aux_irq = k->aux_irq;
	pthread_mutex_unlock(&k->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static bool i8042_snap_pending_ok(uint8_t cmd)
{
	return cmd == 0 || cmd == 0x60 || (cmd >= 0xD1 && cmd <= 0xD4);
}

static int i8042_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct i8042 *k = dev;
	struct i8042_snap w;
	if (devices_snap_version("i8042", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("i8042", c, err, n) < 0)
		return -1;
	bool bools = devices_snap_is_bool(w.last_cmd) && devices_snap_is_bool(w.kbd_irq) &&
		     devices_snap_is_bool(w.aux_irq);
	for (unsigned i = 0; i < I8042_OUTQ; i++)
		bools = bools && devices_snap_is_bool(w.aux[i]);
	if (!bools) {
		snprintf(err, n, "i8042: a flag is neither 0 nor 1");
		return -1;
	}
	if (w.head >= I8042_OUTQ || w.count > I8042_OUTQ) {
		snprintf(err, n, "i8042: output queue head %u count %u out of range", w.head, w.count);
		return -1;
	}
	if (!i8042_snap_pending_ok(w.pending)) {
		snprintf(err, n, "i8042: pending command 0x%02x unknown", w.pending);
		return -1;
	}
	pthread_mutex_lock(&k->lock);
	k->cmd_byte = w.cmd_byte;
	k->outport = w.outport;
	k->pending = w.pending;
	k->last_cmd = w.last_cmd;
	for (unsigned i = 0; i < I8042_OUTQ; i++) {
		k->outq[i] = w.outq[i];
		k->aux[i] = w.aux[i];
	}
	k->head = w.head;
	k->count = w.count;
	k->last_data = w.last_data;
	/* The recorded levels, not irq_set_line: the IOAPIC and PIC (or KVM's
	 * irqchip) restore the lines' state themselves, and a call here would
	 * be an interrupt the snapshot does not hold. They must match what the
	 * queue implies, or the next update would drive a wrong edge. */
	k->kbd_irq = w.kbd_irq;
	k->aux_irq = w.aux_irq;
	bool full = k->count != 0, aux = full && k->aux[k->head];
	bool ok = k->kbd_irq == (full && !aux && (k->cmd_byte & I8042_CTR_KBDINT)) &&
		  k->aux_irq == (aux && (k->cmd_byte & I8042_CTR_AUXINT));
	pthread_mutex_unlock(&k->lock);
	if (!ok) {
		snprintf(err, n, "i8042: IRQ levels disagree with the output buffer");
		return -1;
	}
	return 0;
}

static const struct snap_ops i8042_snap_ops = {
	.name = "i8042",
	.version = 1,
	.save = i8042_snap_save,
	.load = i8042_snap_load,
};

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

static void i8042_free(void *opaque)
{
	struct i8042 *k = opaque;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_create(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	pthread_mutex_init(&k->lock, NULL);
	/* keyboard interrupt enabled, system flag, translation: what firmware leaves */
	k->cmd_byte = 0x45;
	k->outport = 0x01; /* reset line not asserted */
	int r = bus_register(&vm->pio, I8042_DATA_PORT, 1, &i8042_data_ops, k, "i8042 data");
	if (r < 0) {
		i8042_free(k);
		return r;
	}
	/* On failure the data range still points at k: i8042_destroy frees it. */
	r = bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k, "i8042 command");
	return r < 0 ? r : snapshot_register(vm, &i8042_snap_ops, k);
}

void i8042_destroy(struct vm *vm)
{
	devices_free_opaque(&vm->pio, &i8042_data_ops, i8042_free);
	devices_free_opaque(&vm->pio, &i8042_cmd_ops, i8042_free);
}
