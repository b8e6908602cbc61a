/*
 * The 8259A pair (master 0x20-0x21, slave 0xa0-0xa1) and the ELCR
 * (0x4d0-0x4d1) for the split irqchip, where KVM has no PIC and hvmm does
 * not emulate one: every interrupt goes through the IOAPIC (ioapic.c) as an
 * MSI route. The PIC only has to look present and stay silent:
 *
 *  - guests run the ICW1..ICW4 init sequence and write OCWs: accepted;
 *  - Linux decides whether a PIC exists by writing IMR and reading it back
 *    (probe_8259A), so IMR reads back what was written;
 *  - IRR/ISR read 0 and no interrupt is ever delivered: an 8259 here would
 *    need an ExtINT path into KVM's LAPIC that the split irqchip lacks, and
 *    guests that find an IOAPIC (MP table / MADT) mask the PIC anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../util.h"
#include "../vm.h"
#include "devices_priv.h"

#define PIC_MASTER 0x20
#define PIC_SLAVE 0xa0
#define PIC_ELCR 0x4d0

struct pic_chip {
	uint8_t imr;
	uint8_t icw_step; /* 0: ready for OCWs; 2..4: next ICW expected */
	bool need_icw4;
	bool single;      /* ICW1.SNGL: no ICW3 */
	uint8_t vector_base;
	uint8_t elcr;
	uint8_t elcr_mask; /* IRQs that may be level-triggered at all */
};

struct pic {
	pthread_mutex_t lock;
	struct pic_chip chip[2];
};

static void pic_chip_write(struct pic_chip *c, unsigned a0, uint8_t v)
{
	if (a0 == 0) {
		if (v & 0x10) { /* ICW1: starts initialisation, clears IMR */
			c->icw_step = 2;
			c->need_icw4 = v & 0x01;
			c->single = v & 0x02;
			c->imr = 0;
		}
		/* else OCW2 (EOI, rotation) or OCW3 (read select, special
		 * mask): nothing is ever in service, so nothing to do */
		return;
	}
	switch (c->icw_step) {
	case 2: /* ICW2: vector base */
		c->vector_base = v & 0xf8;
		c->icw_step = c->single ? (c->need_icw4 ? 4 : 0) : 3;
		break;
	case 3: /* ICW3: cascade wiring */
		c->icw_step = c->need_icw4 ? 4 : 0;
		break;
	case 4: /* ICW4: mode */
		c->icw_step = 0;
		break;
	default: /* OCW1: the interrupt mask */
		c->imr = v;
		break;
	}
}

/* Byte-wide ports: a 2-byte access touches both, low byte first. */
static uint64_t pic_chip_read(struct pic *p, unsigned idx, uint64_t offset, unsigned size)
{
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		/* A0=0: IRR or ISR per OCW3 — both always empty here */
		if (offset + i == 1)
			v |= (uint64_t)p->chip[idx].imr << (8 * i);
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void pic_chip_access(struct pic *p, unsigned idx, uint64_t offset, unsigned size,
			    uint64_t value)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		pic_chip_write(&p->chip[idx], (unsigned)(offset + i), (uint8_t)(value >> (8 * i)));
	pthread_mutex_unlock(&p->lock);
}

static uint64_t pic_master_read(void *opaque, uint64_t offset, unsigned size)
{
	return pic_chip_read(opaque, 0, offset, size);
}

static void pic_master_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pic_chip_access(opaque, 0, offset, size, value);
}

static uint64_t pic_slave_read(void *opaque, uint64_t offset, unsigned size)
{
	return pic_chip_read(opaque, 1, offset, size);
}

static void pic_slave_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	pic_chip_access(opaque, 1, offset, size, value);
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
	}
	pthread_mutex_unlock(&p->lock);
}

static const struct bus_ops pic_master_ops = { .read = pic_master_read, .write = pic_master_write };
static const struct bus_ops pic_slave_ops = { .read = pic_slave_read, .write = pic_slave_write };
static const struct bus_ops pic_elcr_ops = { .read = pic_elcr_read, .write = pic_elcr_write };

static void pic_free(void *opaque)
{
	struct pic *p = opaque;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int pic_create(struct vm *vm)
{
	struct pic *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	/* Everything masked until the guest says otherwise: nothing is wired. */
	p->chip[0].imr = p->chip[1].imr = 0xff;
	/* IRQ 0, 1, 2, 8 and 13 are edge-only on a PIIX. */
	p->chip[0].elcr_mask = 0xf8;
	p->chip[1].elcr_mask = 0xde;
	int r = bus_register(&vm->pio, PIC_MASTER, 2, &pic_master_ops, p, "pic master");
	if (r < 0) {
		pic_free(p);
		return r;
	}
	/* From here a failure leaves p reachable from the bus: pic_destroy frees it. */
	r = bus_register(&vm->pio, PIC_SLAVE, 2, &pic_slave_ops, p, "pic slave");
	if (r == 0)
		r = bus_register(&vm->pio, PIC_ELCR, 2, &pic_elcr_ops, p, "elcr");
	return r;
}

void pic_destroy(struct vm *vm)
{
	/* The three ranges share p: whichever walk finds it first frees it
	 * and clears it from all of them (a failed create may lack some). */
	devices_free_opaque(&vm->pio, &pic_master_ops, pic_free);
	devices_free_opaque(&vm->pio, &pic_slave_ops, pic_free);
	devices_free_opaque(&vm->pio, &pic_elcr_ops, pic_free);
}
