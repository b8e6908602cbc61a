/*
 * ACPI fixed hardware: the PM1a event and control blocks and the power
 * management timer, at ICH9's places (PMBASE 0x600, as QEMU's q35, whose host
 * bridge ids hvmm's PCI bus 0 also wears). The FADT (src/boot/acpi.c) points
 * at them, so an OS — or kvm-unit-tests, which read the FADT's PM_TMR_BLK —
 * finds them as on any PC:
 *
 *   0x600  PM1a_STS (16 bits)  TMR_STS (bit 0), PWRBTN_STS (8), RTC_STS (10),
 *                              WAK_STS (15); write 1 to clear
 *   0x602  PM1a_EN  (16 bits)  TMR_EN, PWRBTN_EN, RTC_EN: kept as written
 *   0x604  PM1a_CNT (16 bits)  SCI_EN (bit 0, always 1: there is no SMM to
 *                              hand ACPI mode over, so the FADT's SMI_CMD is 0),
 *                              SLP_TYP (12:10); SLP_EN (13) reads 0
 *   0x608  PM_TMR   (32 bits)  a free-running 24-bit count at 3.579545 MHz,
 *                              read-only (FADT TMR_VAL_EXT clear, as QEMU's)
 *
 * The timer is computed from the host's monotonic clock on every read rather
 * than counted, so reading it costs one exit and nothing runs in between.
 * TMR_STS is set when bit 23 of the count has flipped since the guest last
 * cleared it, also computed on read. The SCI (IRQ 9, level) is asserted while
 * any enabled status bit is set, evaluated on every register access; nothing
 * sets a status bit on its own between accesses (no timer thread, no power
 * button, no RTC alarm), so a guest waiting for a timer-overflow SCI waits in
 * vain — Linux uses the timer only as a clocksource and never asks for it.
 * A sleep request (SLP_EN) takes QEMU's SLP_TYP values: 0 powers the machine
 * off (hvmm exits with status 0), 1 is S3, suspend to RAM: the vCPUs stop
 * until a wake event — the RTC alarm, when the guest enabled RTC_EN here and
 * AIE in the RTC — and the boot CPU then starts in real mode at the FACS's
 * waking vector (vm.c's vm_sleep_s3), with WAK_STS and RTC_STS set. Other
 * types are counted and ignored. The DSDT offers \_S5 (Linux powers off
 * through it) but no \_S3, so only a guest that writes type 1 itself
 * (kvm-unit-tests' s3 does) sleeps.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../irq.h"
#include "../util.h"
#include "devices_priv.h"

#define PM1_STS_TMR (1u << 0)
#define PM1_STS_PWRBTN (1u << 8)
#define PM1_STS_RTC (1u << 10)
#define PM1_STS_WAK (1u << 15)
#define PM1_STS_MASK (PM1_STS_TMR | PM1_STS_PWRBTN | PM1_STS_RTC | PM1_STS_WAK)
#define PM1_EN_MASK (PM1_STS_TMR | PM1_STS_PWRBTN | PM1_STS_RTC)
#define PM1_CNT_SCI_EN (1u << 0)
#define PM1_CNT_SLP_TYP (7u << 10)
#define PM1_CNT_SLP_EN (1u << 13)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM_SLP_TYP_S3 1

/* The guest-visible registers, plain data (the padding stays 0): a
 * snapshot copies them whole, with the timer beside them. */
struct acpi_pm_regs {
	uint16_t sts, en, cnt;
	uint8_t sci;           /* bool: the level last driven */
	uint8_t pad;
	uint32_t tmr_at_clear; /* the count when TMR_STS was last cleared */
};

struct acpi_pm {
	struct irq_line sci; /* ISA IRQ 9 */
	struct dev_ctl ctl;  /* S5 stops the VM, S3 sleeps it */
	struct bus *pio;
	pthread_mutex_t lock;
	struct acpi_pm_regs r;
	/* Added to the host clock (ns since hvmm started) to give the timer's:
	 * 0 until a restore makes the timer go on from the saved count. It
	 * wraps as a uint64_t; only the sum's low 24 bits of ticks are seen. */
	uint64_t tmr_offset_ns;
	uint64_t sleep_requests;
};

uint32_t acpi_pm_timer_ticks(uint64_t ns)
{
	/* ticks = ns * 3579545 / 1e9 without overflowing 64 bits: split ns into
	 * whole seconds and the rest (each part's product fits). */
	uint64_t s = ns / 1000000000ull, rem = ns % 1000000000ull;
	uint64_t t = s * ACPI_PM_TIMER_HZ + rem * ACPI_PM_TIMER_HZ / 1000000000ull;
	return (uint32_t)(t & ACPI_PM_TIMER_MASK);
}

/* Called with the lock held: fold the timer's MSB flips into TMR_STS. */
static void acpi_pm_update_tmr_sts(struct acpi_pm *p, uint32_t now)
{
	if ((now ^ p->r.tmr_at_clear) & (1u << 23))
		p->r.sts |= PM1_STS_TMR;
}

/* Called with the lock held; returns whether the SCI level changed and to what. */
static bool acpi_pm_sci_level(struct acpi_pm *p, bool *level)
{
	bool l = (p->r.sts & p->r.en & PM1_EN_MASK) && (p->r.cnt & PM1_CNT_SCI_EN);
	if (l == p->r.sci)
		return false;
	p->r.sci = l;
	*level = l;
	return true;
}

static uint64_t acpi_pm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *p = opaque;
	uint64_t ns = util_since_start_ns();
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	uint32_t now = acpi_pm_timer_ticks(ns + p->tmr_offset_ns);
	acpi_pm_update_tmr_sts(p, now);
	/* The block as bytes, so any access size at any offset reads what a
	 * byte-wise view of the registers holds (the timer's four bytes are
	 * one snapshot). */
	uint8_t regs[ACPI_PM_LEN] = {
		(uint8_t)p->r.sts, (uint8_t)(p->r.sts >> 8), (uint8_t)p->r.en, (uint8_t)(p->r.en >> 8),
		(uint8_t)p->r.cnt, (uint8_t)(p->r.cnt >> 8), 0, 0,
		(uint8_t)now, (uint8_t)(now >> 8), (uint8_t)(now >> 16), (uint8_t)(now >> 24),
	};
	bool level, changed = acpi_pm_sci_level(p, &level);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++)
		v |= (uint64_t)regs[offset + i] << (8 * i);
	if (changed)
		irq_line_set(&p->sci, level);
	return v;
}

uint16_t acpi_pm_sts_write(uint16_t sts, uint16_t value)
{
	return sts & (uint16_t)~(value & PM1_STS_MASK); /* write 1 to clear */
}

static void acpi_pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *p = opaque;
	uint64_t ns = util_since_start_ns();
	int sleep_typ = -1;
	pthread_mutex_lock(&p->lock);
	uint32_t now = acpi_pm_timer_ticks(ns + p->tmr_offset_ns);
	acpi_pm_update_tmr_sts(p, now);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++) {
		unsigned reg = (unsigned)(offset + i);
		uint16_t b = (uint16_t)((value >> (8 * i)) & 0xff);
		uint16_t shifted = (uint16_t)(b << (8 * (reg & 1)));
		switch (reg) {
		case 0:
		case 1:
			if (shifted & PM1_STS_TMR)
				p->r.tmr_at_clear = now;
			p->r.sts = acpi_pm_sts_write(p->r.sts, shifted);
			break;
		case 2:
		case 3: {
			uint16_t keep = reg == 2 ? 0xff00 : 0x00ff;
			p->r.en = (uint16_t)((p->r.en & keep) | (shifted & PM1_EN_MASK & ~keep));
			break;
		}
		case 4:
		case 5: {
			uint16_t keep = reg == 4 ? 0xff00 : 0x00ff;
			uint16_t c = (uint16_t)((p->r.cnt & keep) | (shifted & ~keep));
			if (c & PM1_CNT_SLP_EN) {
				p->sleep_requests++;
				sleep_typ = (c & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;
			}
			/* SCI_EN stays set (no SMM), SLP_EN is write-only */
			p->r.cnt = (uint16_t)((c & PM1_CNT_SLP_TYP) | PM1_CNT_SCI_EN);
			break;
		}
		default:
			break; /* the timer is read-only; 6-7 are reserved */
		}
	}
	bool level, changed = acpi_pm_sci_level(p, &level);
	pthread_mutex_unlock(&p->lock);
	if (changed)
		irq_line_set(&p->sci, level);
	/* Sleep last, without the lock: S3 returns only once the machine woke. */
	if (sleep_typ == ACPI_PM_SLP_TYP_S5)
		dev_ctl_stop(&p->ctl, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest powered off (ACPI S5)");
	else if (sleep_typ == PM_SLP_TYP_S3 && p->ctl.sleep_s3)
		p->ctl.sleep_s3(p->ctl.ctx);
}

bool acpi_pm_rtc_wake_enabled(struct acpi_pm *p)
{
	if (!p)
		return false;
	pthread_mutex_lock(&p->lock);
	bool en = p->r.en & PM1_STS_RTC;
	pthread_mutex_unlock(&p->lock);
	return en;
}

void acpi_pm_woke(struct acpi_pm *p, bool by_rtc)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->r.sts |= PM1_STS_WAK | (by_rtc ? PM1_STS_RTC : 0);
	p->r.cnt &= (uint16_t)~PM1_CNT_SLP_TYP; /* back in S0 */
	bool level, changed = acpi_pm_sci_level(p, &level);
	pthread_mutex_unlock(&p->lock);
	if (changed)
		irq_line_set(&p->sci, level);
}

/*
 * ---- snapshot ----
 *
 * The registers (struct acpi_pm_regs: PM1 status, enable and control, the
 * timer's count when TMR_STS was last cleared, the SCI level), then the
 * timer as the ns its clock has counted at the save; the load sets the
 * offset so that it reads on from there. (There are no GPE blocks: the FADT
 * declares none.) The count of sleep requests is the old process's.
 */
struct acpi_pm_snap {
	struct acpi_pm_regs r;
	uint32_t pad; /* explicit: no byte of a payload is left unspecified */
	uint64_t tmr_ns;
};
_Static_assert(sizeof(struct acpi_pm_regs) == 12 && sizeof(struct acpi_pm_snap) == 24,
	       "acpi-pm payload without implicit padding");

static int acpi_pm_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct acpi_pm *p = dev;
	(void)err, (void)n;
	struct acpi_pm_snap w;
	memset(&w, 0, sizeof(w));
	uint64_t ns = devices_snap_since_start_ns();
	pthread_mutex_lock(&p->lock);
	w.r = p->r;
	w.tmr_ns = ns + p->tmr_offset_ns;
	pthread_mutex_unlock(&p->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *acpi_pm_snap_check(const struct acpi_pm_regs *w)
{
	if (w->sts & ~PM1_STS_MASK)
		return "PM1_STS has unknown bits set";
	if (w->en & ~PM1_EN_MASK)
		return "PM1_EN has unknown bits set";
	if (w->cnt & ~(PM1_CNT_SLP_TYP | PM1_CNT_SCI_EN) || !(w->cnt & PM1_CNT_SCI_EN))
		return "PM1_CNT holds bits the register cannot";
	if (w->tmr_at_clear & ~ACPI_PM_TIMER_MASK)
		return "timer count wider than 24 bits";
	if (!devices_snap_is_bool(w->sci) || w->pad)
		return "malformed SCI level";
	/* Restored as recorded, not driven: the IOAPIC and PIC (or KVM's
	 * irqchip) hold the line's state; it must be what the registers say. */
	bool level = (w->sts & w->en & PM1_EN_MASK) && (w->cnt & PM1_CNT_SCI_EN);
	if (level != (bool)w->sci)
		return "SCI level disagrees with PM1 status and enable";
	return NULL;
}

static int acpi_pm_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct acpi_pm *p = dev;
	struct acpi_pm_snap w;
	if (devices_snap_version("acpi-pm", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("acpi-pm", c, err, n) < 0)
		return -1;
	const char *why = w.pad ? "malformed" : acpi_pm_snap_check(&w.r);
	if (why) {
		snprintf(err, n, "acpi-pm: %s", why);
		return -1;
	}
	uint64_t ns = devices_snap_since_start_ns();
	pthread_mutex_lock(&p->lock);
	p->r = w.r;
	p->tmr_offset_ns = w.tmr_ns - ns; /* modular: see tmr_offset_ns */
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static const struct bus_ops acpi_pm_ops = {
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

static void acpi_pm_destroy(void *dev)
{
	struct acpi_pm *p = dev;
	devices_bus_forget(p->pio, p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int acpi_pm_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct acpi_pm *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->sci = dev_env_line(env, ACPI_PM_SCI_IRQ);
	p->ctl = env->ctl;
	p->pio = env->pio;
	p->r.cnt = PM1_CNT_SCI_EN;
	pthread_mutex_init(&p->lock, NULL);
	int r = bus_register(env->pio, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_ops, p, "acpi-pm");
	if (r < 0) {
		acpi_pm_destroy(p);
		return r;
	}
	*dev = p;
	return 0;
}

/* Power-on: only SCI_EN (no SMM to hand over from), the timer from the
 * host clock again, SCI low. */
static void acpi_pm_reset(void *dev)
{
	struct acpi_pm *p = dev;
	pthread_mutex_lock(&p->lock);
	bool sci = p->r.sci;
	memset(&p->r, 0, sizeof(p->r));
	p->r.cnt = PM1_CNT_SCI_EN;
	p->tmr_offset_ns = 0;
	pthread_mutex_unlock(&p->lock);
	if (sci)
		irq_line_set(&p->sci, false);
}

static void acpi_pm_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "sleep_requests", json_object_new_uint64(acpi_pm_sleep_requests(dev)));
}

const struct dev_ops acpi_pm_dev_ops = {
	.name = "acpi-pm",
	.desc = "ACPI PM registers",
	.create = acpi_pm_create,
	.reset = acpi_pm_reset,
	.snap = { .name = "acpi-pm", .version = 1, .save = acpi_pm_snap_save, .load = acpi_pm_snap_load },
	.stats = acpi_pm_stats,
	.destroy = acpi_pm_destroy,
};

uint64_t acpi_pm_sleep_requests(struct acpi_pm *p)
{
	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->sleep_requests;
	pthread_mutex_unlock(&p->lock);
	return n;
}
