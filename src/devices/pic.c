/*
 * The 8259A pair (master 0x20-0x21, slave 0xa0-0xa1, the slave on the
 * master's IRQ 2) and the ELCR (0x4d0-0x4d1) for the split irqchip, where KVM
 * has no PIC. ISA lines reach it beside the IOAPIC (irq.c): IRQ n on pin n,
 * IRQ 0 from the PIT. Its INT output is the boot CPU's LINT0 in virtual-wire
 * mode: the vCPU thread injects the vector the INTA cycle gives
 * (pic_intack) with KVM_INTERRUPT, which KVM accepts only while that
 * LAPIC's LVT0 takes ExtINT (so a guest that masks LINT0 — any guest using
 * the IOAPIC — never sees the PIC, as on hardware).
 *
 * The chip as guests drive it: ICW1-ICW4 (vector base, cascade, auto-EOI,
 * special fully nested), OCW1 (IMR), OCW2 (non-specific, specific and
 * rotating EOIs, set priority, rotate in auto-EOI), OCW3 (IRR/ISR read,
 * poll, special mask), edge and level sensing per the ELCR (IRQ 0, 1, 2, 8
 * and 13 are edge-only on a PIIX), priority rotation, a spurious IRQ 7/15
 * when the request went away before the INTA. Linux's probe (write IMR, read
 * it back) sees a PIC; until a guest programs it, everything is masked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "devices_priv.h"

#define PIC_MASTER 0x20
#define PIC_SLAVE 0xa0
#define PIC_ELCR 0x4d0
#define PIC_CASCADE_IRQ 2

struct pic_chip {
	uint8_t irr, imr, isr;
	uint8_t level;        /* the input lines as last driven */
	uint8_t priority_add; /* the IRQ with the highest priority (rotation) */
	uint8_t vector_base;
	uint8_t icw_step;     /* 0: ready for OCWs; 2..4: next ICW expected */
	bool need_icw4;
	bool single;          /* ICW1.SNGL: no ICW3 */
	bool auto_eoi;
	bool rotate_auto_eoi;
	bool special_nested;  /* ICW4.SFNM (master): the slave may interrupt itself */
	bool special_mask;
	bool read_isr;        /* OCW3: A0=0 reads ISR rather than IRR */
	bool poll;            /* OCW3: the next A0=0 read is a poll */
	uint8_t elcr;
	uint8_t elcr_mask;    /* IRQs that may be level-triggered at all */
};

struct pic {
	pthread_mutex_t lock;
	struct dev_ctl ctl; /* kick_bsp: INT rose, the boot vCPU must look */
	struct bus *pio;
	struct pic_chip chip[2];
	atomic_bool output; /* the master's INT pin, read lock-free by the boot vCPU */
};

/* 0..7 in priority order from priority_add, or 8 for none in mask. */
static unsigned pic_priority(const struct pic_chip *c, uint8_t mask)
{
	for (unsigned p = 0; p < 8; p++)
		if (mask & (1u << ((p + c->priority_add) & 7)))
			return p;
	return 8;
}

/* The IRQ the chip would raise INT for now, or -1. */
static int pic_chip_pending(const struct pic_chip *c, bool master)
{
	unsigned p = pic_priority(c, c->irr & ~c->imr);
	if (p == 8)
		return -1;
	uint8_t in_service = c->isr;
	if (c->special_mask)
		in_service &= ~c->imr; /* masked levels do not block lower ones */
	if (master && c->special_nested)
		in_service &= ~(1u << PIC_CASCADE_IRQ); /* the slave may nest */
	return p < pic_priority(c, in_service) ? (int)((p + c->priority_add) & 7) : -1;
}

static void pic_chip_line(struct pic_chip *c, unsigned irq, bool level)
{
	uint8_t m = (uint8_t)(1u << irq);
	if (c->elcr & m) { /* level: IRR follows the line */
		c->irr = level ? c->irr | m : c->irr & ~m;
	} else if (level && !(c->level & m)) { /* edge: a rising edge latches */
		c->irr |= m;
	}
	c->level = level ? c->level | m : c->level & ~m;
}

/* Recompute the cascade and INT; called with p->lock held after any change.
 * A rising INT wakes the boot vCPU, which may be halted in KVM_RUN. */
static void pic_update(struct pic *p)
{
	pic_chip_line(&p->chip[0], PIC_CASCADE_IRQ, pic_chip_pending(&p->chip[1], false) >= 0);
	bool out = pic_chip_pending(&p->chip[0], true) >= 0;
	bool was = atomic_exchange(&p->output, out);
	if (out && !was && p->ctl.kick_bsp)
		p->ctl.kick_bsp(p->ctl.ctx); /* its loop looks at the output before KVM_RUN */
}

/* The INTA cycle's effect on one chip for irq. */
static void pic_chip_ack(struct pic_chip *c, unsigned irq)
{
	uint8_t m = (uint8_t)(1u << irq);
	if (c->auto_eoi) {
		if (c->rotate_auto_eoi)
			c->priority_add = (uint8_t)((irq + 1) & 7);
	} else {
		c->isr |= m;
	}
	if (!(c->elcr & m))
		c->irr &= ~m; /* edge: consumed; level: stays while the line is high */
}

/* With the lock held: the vector the INTA cycle returns. */
static int pic_ack_locked(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq = pic_chip_pending(m, true);
	int vector;
	if (irq < 0) {
		vector = m->vector_base + 7; /* the request vanished: spurious IRQ 7 */
	} else {
		pic_chip_ack(m, (unsigned)irq);
		if (irq == PIC_CASCADE_IRQ) {
			int irq2 = pic_chip_pending(s, false);
			if (irq2 >= 0)
				pic_chip_ack(s, (unsigned)irq2);
			else
				irq2 = 7; /* spurious IRQ 15 */
			vector = s->vector_base + irq2;
		} else {
			vector = m->vector_base + irq;
		}
	}
	pic_update(p);
	return vector;
}

static void pic_eoi(struct pic_chip *c, uint8_t v)
{
	unsigned irq = v & 7;
	switch (v >> 5) {
	case 0: /* rotate in auto-EOI mode: clear */
	case 4: /* set */
		c->rotate_auto_eoi = v >> 7;
		break;
	case 1: /* non-specific EOI */
	case 5: { /* ... and rotate */
		unsigned pr = pic_priority(c, c->isr);
		if (pr == 8)
			break;
		irq = (pr + c->priority_add) & 7;
		c->isr &= (uint8_t)~(1u << irq);
		if (v >> 5 == 5)
			c->priority_add = (uint8_t)((irq + 1) & 7);
		break;
	}
	case 3: /* specific EOI */
		c->isr &= (uint8_t)~(1u << irq);
		break;
	case 7: /* rotate on specific EOI */
		c->isr &= (uint8_t)~(1u << irq);
		c->priority_add = (uint8_t)((irq + 1) & 7);
		break;
	case 6: /* set priority: irq becomes the lowest */
		c->priority_add = (uint8_t)((irq + 1) & 7);
		break;
	default: /* 2: no operation */
		break;
	}
}

static void pic_chip_write(struct pic_chip *c, unsigned a0, uint8_t v)
{
	if (a0 == 0) {
		if (v & 0x10) { /* ICW1: starts initialisation */
			uint8_t elcr = c->elcr, elcr_mask = c->elcr_mask;
			*c = (struct pic_chip){ .icw_step = 2, .need_icw4 = v & 0x01,
						.single = v & 0x02, .elcr = elcr,
						.elcr_mask = elcr_mask };
		} else if (v & 0x08) { /* OCW3 */
			if (v & 0x04)
				c->poll = true;
			if (v & 0x02)
				c->read_isr = v & 0x01;
			if (v & 0x40)
				c->special_mask = (v >> 5) & 1;
		} else { /* OCW2 */
			pic_eoi(c, v);
		}
		return;
	}
	switch (c->icw_step) {
	case 2: /* ICW2: vector base */
		c->vector_base = v & 0xf8;
		c->icw_step = c->single ? (c->need_icw4 ? 4 : 0) : 3;
		break;
	case 3: /* ICW3: cascade wiring (fixed on a PC) */
		c->icw_step = c->need_icw4 ? 4 : 0;
		break;
	case 4: /* ICW4: mode */
		c->auto_eoi = v & 0x02;
		c->special_nested = v & 0x10;
		c->icw_step = 0;
		break;
	default: /* OCW1: the interrupt mask */
		c->imr = v;
		break;
	}
}

static uint8_t pic_chip_read(struct pic *p, unsigned idx, unsigned a0)
{
	struct pic_chip *c = &p->chip[idx];
	if (a0)
		return c->imr;
	if (c->poll) { /* poll: acknowledge the highest request, as INTA would */
		c->poll = false;
		int irq = pic_chip_pending(c, idx == 0);
		if (irq < 0)
			return 0;
		pic_chip_ack(c, (unsigned)irq);
		return (uint8_t)(0x80 | irq);
	}
	return c->read_isr ? c->isr : c->irr;
}

/* Byte-wide ports: a 2-byte access touches both, low byte first. */
static uint64_t pic_read(struct pic *p, unsigned idx, uint64_t offset, unsigned size)
{
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		v |= (uint64_t)pic_chip_read(p, idx, (unsigned)(offset + i)) << (8 * i);
	pic_update(p);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pic_write(struct pic *p, unsigned idx, uint64_t offset, unsigned size, uint64_t value)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		pic_chip_write(&p->chip[idx], (unsigned)(offset + i), (uint8_t)(value >> (8 * i)));
	pic_update(p);
	pthread_mutex_unlock(&p->lock);
}

static uint64_t pic_master_read(void *opaque, uint64_t offset, unsigned size)
{
	return pic_read(opaque, 0, offset, size);
}

static void pic_master_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pic_write(opaque, 0, offset, size, value);
}

static uint64_t pic_slave_read(void *opaque, uint64_t offset, unsigned size)
{
	return pic_read(opaque, 1, offset, size);
}

static void pic_slave_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pic_write(opaque, 1, offset, size, value);
}

/* ELCR: one byte per chip; a 2-byte access covers both. */
static uint64_t pic_elcr_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pic *p = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		v |= (uint64_t)p->chip[offset + i].elcr << (8 * i);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pic_elcr_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pic *p = opaque;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++) {
		struct pic_chip *c = &p->chip[offset + i];
		c->elcr = (uint8_t)(value >> (8 * i)) & c->elcr_mask;
		/* a line switched to level sensing requests while it is high */
		c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->level & c->elcr));
	}
	pic_update(p);
	pthread_mutex_unlock(&p->lock);
}

static const struct bus_ops pic_master_ops = { .read = pic_master_read, .write = pic_master_write };
static const struct bus_ops pic_slave_ops = { .read = pic_slave_read, .write = pic_slave_write };
static const struct bus_ops pic_elcr_ops = { .read = pic_elcr_read, .write = pic_elcr_write };

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
	if (!p || irq >= 16 || irq == PIC_CASCADE_IRQ)
		return; /* IRQ 2 is the cascade: nothing else drives it */
	pthread_mutex_lock(&p->lock);
	pic_chip_line(&p->chip[irq >> 3], irq & 7, level);
	pic_update(p);
	pthread_mutex_unlock(&p->lock);
}

bool pic_output(struct pic *p)
{
	return p && atomic_load(&p->output);
}

int pic_intack(struct pic *p)
{
	if (!p)
		return -1;
	pthread_mutex_lock(&p->lock);
	int v = pic_ack_locked(p);
	pthread_mutex_unlock(&p->lock);
	return v;
}

void pic_firmware_init(struct pic *p)
{
	/* What a PC BIOS leaves: master at vectors 0x08-0x0f, slave at
	 * 0x70-0x77, cascade on IRQ 2, 8086 mode; only the timer (IRQ 0) and
	 * the cascade unmasked (SeaBIOS unmasks more for devices hvmm lacks). */
	static const uint8_t seq[2][5] = { { 0x11, 0x08, 0x04, 0x01, 0xfa },
					   { 0x11, 0x70, 0x02, 0x01, 0xff } };
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < 2; i++)
		for (unsigned j = 0; j < 5; j++)
			pic_chip_write(&p->chip[i], j != 0, seq[i][j]);
	pic_update(p);
	pthread_mutex_unlock(&p->lock);
}

/*
 * ---- snapshot ----
 *
 * Both chips whole: IRR, ISR, IMR, the input levels, the rotation, the
 * vector base, where the ICW sequence stands and the mode bits, the OCW3
 * read/poll/special-mask state and the ELCR; and the INT output. The ELCR
 * masks are the board's wiring, fixed at create, and are checked against.
 */
struct pic_snap_chip {
	uint8_t irr, imr, isr, level;
	uint8_t priority_add, vector_base, icw_step, need_icw4;
	uint8_t single, auto_eoi, rotate_auto_eoi, special_nested;
	uint8_t special_mask, read_isr, poll, elcr;
};

struct pic_snap {
	struct pic_snap_chip chip[2];
	uint8_t output;
	uint8_t pad[3];
};

_Static_assert(sizeof(struct pic_snap) == 36, "pic payload without implicit padding");

static int pic_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct pic *p = dev;
	(void)err, (void)n;
	struct pic_snap w;
	memset(&w, 0, sizeof(w));
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < 2; i++) {
		const struct pic_chip *c = &p->chip[i];
		w.chip[i] = (struct pic_snap_chip){
			.irr = c->irr, .imr = c->imr, .isr = c->isr, .level = c->level,
			.priority_add = c->priority_add, .vector_base = c->vector_base,
			.icw_step = c->icw_step, .need_icw4 = c->need_icw4, .single = c->single,
			.auto_eoi = c->auto_eoi, .rotate_auto_eoi = c->rotate_auto_eoi,
			.special_nested = c->special_nested, .special_mask = c->special_mask,
			.read_isr = c->read_isr, .poll = c->poll, .elcr = c->elcr,
		};
	}
	w.output = atomic_load(&p->output);
	pthread_mutex_unlock(&p->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *pic_snap_check_chip(const struct pic_snap_chip *w, uint8_t elcr_mask)
{
	const uint8_t flags[] = { w->need_icw4, w->single, w->auto_eoi, w->rotate_auto_eoi,
				  w->special_nested, w->special_mask, w->read_isr, w->poll };
	for (unsigned i = 0; i < sizeof(flags); i++)
		if (!devices_snap_is_bool(flags[i]))
			return "a flag is neither 0 nor 1";
	if (w->icw_step == 1 || w->icw_step > 4)
		return "ICW step out of range";
	if (w->priority_add > 7)
		return "priority rotation out of range";
	if (w->vector_base & 7)
		return "vector base not a multiple of 8";
	if (w->elcr & ~elcr_mask)
		return "ELCR sets an edge-only IRQ to level";
	return NULL;
}

static void pic_snap_to_chip(struct pic_chip *c, const struct pic_snap_chip *w)
{
	c->irr = w->irr;
	c->imr = w->imr;
	c->isr = w->isr;
	c->level = w->level;
	c->priority_add = w->priority_add;
	c->vector_base = w->vector_base;
	c->icw_step = w->icw_step;
	c->need_icw4 = w->need_icw4;
	c->single = w->single;
	c->auto_eoi = w->auto_eoi;
	c->rotate_auto_eoi = w->rotate_auto_eoi;
	c->special_nested = w->special_nested;
	c->special_mask = w->special_mask;
	c->read_isr = w->read_isr;
	c->poll = w->poll;
	c->elcr = w->elcr;
}

static int pic_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct pic *p = dev;
	struct pic_snap w;
	if (devices_snap_version("pic", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("pic", c, err, n) < 0)
		return -1;
	if (!devices_snap_is_bool(w.output) || w.pad[0] || w.pad[1] || w.pad[2]) {
		snprintf(err, n, "pic: malformed output level");
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	const char *why = NULL;
	unsigned bad = 0;
	for (unsigned i = 0; i < 2 && !why; i++)
		if ((why = pic_snap_check_chip(&w.chip[i], p->chip[i].elcr_mask)))
			bad = i;
	struct pic_chip chip[2] = { p->chip[0], p->chip[1] };
	if (!why) {
		pic_snap_to_chip(&chip[0], &w.chip[0]);
		pic_snap_to_chip(&chip[1], &w.chip[1]);
		/* pic_update keeps these two in step after every change; a file
		 * where they are not would make the next update an edge that no
		 * line caused. */
		bool cascade = pic_chip_pending(&chip[1], false) >= 0;
		if (cascade != (bool)(chip[0].level & (1u << PIC_CASCADE_IRQ)))
			why = "cascade level disagrees with the slave";
		else if ((pic_chip_pending(&chip[0], true) >= 0) != (bool)w.output)
			why = "INT output disagrees with the master";
	}
	if (!why) {
		p->chip[0] = chip[0];
		p->chip[1] = chip[1];
		/* Stored, not raised: no kick_bsp. The boot vCPU looks at the
		 * output before its first KVM_RUN. */
		atomic_store(&p->output, (bool)w.output);
	}
	pthread_mutex_unlock(&p->lock);
	if (why) {
		snprintf(err, n, "pic: %s%s", bad ? "slave: " : "", why);
		return -1;
	}
	return 0;
}

static void pic_destroy(void *dev)
{
	struct pic *p = dev;
	devices_bus_forget(p->pio, p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Power-on: everything masked until the guest (or pic_firmware_init) says
 * otherwise; IRQ 0, 1, 2, 8 and 13 are edge-only on a PIIX. */
static void pic_chips_init(struct pic *p)
{
	memset(p->chip, 0, sizeof(p->chip));
	p->chip[0].imr = p->chip[1].imr = 0xff;
	p->chip[0].elcr_mask = 0xf8;
	p->chip[1].elcr_mask = 0xde;
	atomic_store(&p->output, false);
}

static int pic_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct pic *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->ctl = env->ctl;
	p->pio = env->pio;
	atomic_init(&p->output, false);
	pic_chips_init(p);
	int r = bus_register(env->pio, PIC_MASTER, 2, &pic_master_ops, p, "pic master");
	if (r == 0)
		r = bus_register(env->pio, PIC_SLAVE, 2, &pic_slave_ops, p, "pic slave");
	if (r == 0)
		r = bus_register(env->pio, PIC_ELCR, 2, &pic_elcr_ops, p, "elcr");
	if (r < 0) {
		pic_destroy(p);
		return r;
	}
	*dev = p;
	return 0;
}

static void pic_reset(void *dev)
{
	struct pic *p = dev;
	pthread_mutex_lock(&p->lock);
	pic_chips_init(p);
	pthread_mutex_unlock(&p->lock);
}

static int pic_count(const struct vm_config *cfg)
{
	return irq_user_ioapic(cfg->irqchip);
}

const struct dev_ops pic_dev_ops = {
	.name = "pic",
	.desc = "PIC",
	.count = pic_count,
	.create = pic_create,
	.reset = pic_reset,
	.snap = { .name = "pic", .version = 1, .save = pic_snap_save, .load = pic_snap_load },
	.destroy = pic_destroy,
};
