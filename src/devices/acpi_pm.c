/*
 * ACPI fixed hardware (ACPI 6.x chapter 4.8), the registers a full — not
 * hardware-reduced — FADT promises, at the ports q35's ICH9 uses:
 *
 *   0x600  PM1a_EVT_BLK  PM1_STS (16 bits, write 1 to clear), PM1_EN (16 bits)
 *   0x604  PM1a_CNT_BLK  PM1_CNT: SCI_EN (always set: there is no SMI mode to
 *                        leave), SLP_TYP and SLP_EN
 *   0x608  PM_TMR_BLK    the 24-bit ACPI PM timer, 3.579545 MHz
 *
 * Why not hardware-reduced ACPI: Linux on a reduced platform without EFI
 * restarts through EFI and then the BIOS's real-mode reset vector (neither
 * exists here) instead of the FADT's reset register, and treats the ISA
 * IRQs as absent, so the 8250 UART driver could not get IRQ 4 and user space
 * wrote to a console whose interrupts never came. A full FADT with these
 * three blocks is what PCs have and what every OS handles.
 *
 * Power-off: the DSDT's \_S5 package names SLP_TYP ACPI_PM_SLP_TYP_S5; a
 * write of SLP_EN with that type ends the VM, status 0 — the guest is done.
 * Other sleep states are not offered (no \_S1-\_S4), so other types are
 * ignored: the guest keeps running, as on a board that does not support them.
 *
 * The SCI (IRQ 9) is never raised: the only event sources a PC has here,
 * timer overflow and the power button, are not enabled by hvmm, and TMR_STS
 * is computed when read instead of by a timer thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../util.h"
#include "../vm.h"
#include "devices.h"
#include "devices_priv.h"

#define PM1_STS_TMR 0x0001u
#define PM1_STS_MASK 0x8d31u /* TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK */
#define PM1_EN_MASK 0x0521u  /* TMR, GBL, PWRBTN, SLPBTN, RTC */
#define PM1_CNT_SCI_EN 0x0001u
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN 0x2000u
#define PM1_CNT_RW 0x1c06u /* BM_RLD, GBL_RLS, SLP_TYP; SCI_EN reads 1 */
#define PM_TMR_HZ 3579545ull
#define PM_TMR_BITS 24

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint64_t t0_ns;       /* the timer counts from here */
	uint16_t sts, en, cnt;
	uint64_t tmr_epoch;   /* counter >> 23 when TMR_STS was last cleared */
};

/* Ticks since creation: split so that ns * 3.58 MHz cannot overflow. */
static uint64_t acpi_pm_ticks(const struct acpi_pm *p)
{
	uint64_t ns = util_now_ns() - p->t0_ns;
	return ns / 1000000000ull * PM_TMR_HZ + ns % 1000000000ull * PM_TMR_HZ / 1000000000ull;
}

/* The 12 bytes of the three blocks as the guest reads them, all at the
 * instant ticks. Lock held. */
static uint8_t acpi_pm_byte(struct acpi_pm *p, unsigned off, uint64_t ticks)
{
	uint16_t sts = p->sts;
	/* TMR_STS: the counter's top bit changed since it was last cleared. */
	if ((ticks >> (PM_TMR_BITS - 1)) != p->tmr_epoch)
		sts |= PM1_STS_TMR;
	uint32_t tmr = (uint32_t)(ticks & ((1u << PM_TMR_BITS) - 1));
	uint16_t cnt = p->cnt | PM1_CNT_SCI_EN;
	switch (off) {
	case 0: return (uint8_t)sts;
	case 1: return (uint8_t)(sts >> 8);
	case 2: return (uint8_t)p->en;
	case 3: return (uint8_t)(p->en >> 8);
	case 4: return (uint8_t)cnt;
	case 5: return (uint8_t)(cnt >> 8);
	case 8: case 9: case 10: case 11:
		return (uint8_t)(tmr >> (8 * (off - 8)));
	default: return 0; /* 6, 7: between the blocks */
	}
}

static uint64_t acpi_pm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *p = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	/* One clock reading per access: a 32-bit timer read built from bytes
	 * of different instants could carry wrongly and run backwards. */
	uint64_t ticks = acpi_pm_ticks(p);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++)
		v |= (uint64_t)acpi_pm_byte(p, (unsigned)offset + i, ticks) << (8 * i);
	pthread_mutex_unlock(&p->lock);
	return v;
}

/* Merge byte b at byte index i (0 or 1) of a 16-bit register. */
static uint16_t acpi_pm_merge(uint16_t reg, unsigned i, uint8_t b)
{
	return i ? (uint16_t)((reg & 0x00ff) | b << 8) : (uint16_t)((reg & 0xff00) | b);
}

static void acpi_pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *p = opaque;
	bool sleep = false;
	unsigned slp_typ = 0;
	pthread_mutex_lock(&p->lock);
	uint16_t sts_clear = 0, cnt = p->cnt;
	bool cnt_written = false;
	for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++) {
		unsigned off = (unsigned)offset + i;
		uint8_t b = (uint8_t)(value >> (8 * i));
		if (off < 2)
			sts_clear |= (uint16_t)(b << (8 * off));
		else if (off < 4)
			p->en = acpi_pm_merge(p->en, off - 2, b) & PM1_EN_MASK;
		else if (off < 6) {
			cnt = acpi_pm_merge(cnt, off - 4, b);
			cnt_written = true;
		}
		/* 6..11: reserved and the read-only timer */
	}
	sts_clear &= PM1_STS_MASK;
	if (sts_clear & PM1_STS_TMR)
		p->tmr_epoch = acpi_pm_ticks(p) >> (PM_TMR_BITS - 1);
	p->sts &= (uint16_t)~sts_clear;
	if (cnt_written) {
		p->cnt = cnt & PM1_CNT_RW;
		if (cnt & PM1_CNT_SLP_EN) { /* SLP_EN is write-only: never stored */
			sleep = true;
			slp_typ = (cnt & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (sleep && slp_typ == ACPI_PM_SLP_TYP_S5)
		vm_stop(p->vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest powered off (ACPI S5)");
}

static const struct bus_ops acpi_pm_ops = {
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

int acpi_pm_create(struct vm *vm)
{
	struct acpi_pm *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->vm = vm;
	pthread_mutex_init(&p->lock, NULL);
	p->t0_ns = util_now_ns();
	int r = bus_register(&vm->pio, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_ops, p, "ACPI PM (PM1, timer)");
	if (r < 0) {
		pthread_mutex_destroy(&p->lock);
		free(p);
	}
	return r;
}

static void acpi_pm_free(void *opaque)
{
	struct acpi_pm *p = opaque;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void acpi_pm_destroy(struct vm *vm)
{
	devices_free_opaque(&vm->pio, &acpi_pm_ops, acpi_pm_free);
}
