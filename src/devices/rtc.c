/*
 * MC146818 real-time clock and CMOS RAM at ports 0x70 (index) / 0x71 (data),
 * as on every PC. The clock is the host's UTC plus an offset the guest sets by
 * writing the time registers; nothing ticks inside hvmm: every register is
 * computed from the host clock when the guest reads it, so an idle RTC costs
 * nothing.
 *
 *   0x00-0x09  seconds, alarm seconds, minutes, alarm minutes, hours, alarm
 *              hours, day of week, day, month, year: BCD unless register B's
 *              DM bit says binary, hours 24h unless B's 24/12 bit is clear
 *   0x0a (A)   UIP (bit 7, read-only) is set during the last 244 us before
 *              each second, as the chip's update cycle; the divider bits are kept
 *   0x0b (B)   SET stops the clock (writes of the time registers then take
 *              effect when SET clears), PIE/AIE/UIE, DM, 24/12
 *   0x0c (C)   IRQF, PF, AF, UF: AF when a second passed since the last read
 *              that matched the alarm (fields >= 0xc0 match anything), UF when
 *              any second passed; reading clears them
 *   0x0d (D)   VRT: the battery is fine
 *   0x0e-0x7f  CMOS RAM, kept as written (the century byte 0x32 included)
 *
 * What needs a timer is not here: the RTC raises no IRQ 8 by itself
 * (periodic, alarm and update interrupts), so the FADT keeps saying "no CMOS
 * RTC" and Linux does not drive it. Its one asynchronous job is waking the
 * machine from S3 at the alarm (ACPI's RTC wake, src/devices/acpi_pm.c), for
 * which rtc_alarm_due() answers the sleeping VM's question "has the alarm
 * fired yet?".
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util.h"
#include "devices_priv.h"

#define RTC_PORT 0x70
#define RTC_REGS 128
#define RTC_SEC 0x00
#define RTC_SEC_ALARM 0x01
#define RTC_MIN 0x02
#define RTC_MIN_ALARM 0x03
#define RTC_HOUR 0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_WDAY 0x06
#define RTC_MDAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_A 0x0a
#define RTC_B 0x0b
#define RTC_C 0x0c
#define RTC_D 0x0d
#define RTC_CENTURY 0x32

#define RTC_A_UIP 0x80
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_DM 0x04 /* binary, not BCD */
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80
#define RTC_DONT_CARE 0xc0
/* the update cycle: UIP rises 244 us before the second ends */
#define RTC_UIP_NS 244000ull
/* how far back a read of C looks for an alarm match (one day covers every
 * alarm: hours, minutes and seconds repeat daily) */
#define RTC_MAX_SCAN 86400

struct rtc {
	pthread_mutex_t lock;
	struct bus *pio;
	uint8_t index;
	uint8_t cmos[RTC_REGS];
	int64_t offset;      /* guest seconds - host UTC seconds */
	int64_t frozen;      /* the guest time while SET is on */
	int64_t checked;     /* guest second up to which C's flags were computed */
	uint8_t flags;       /* C's AF/UF/PF collected since the last read */
};

static uint8_t rtc_to_bcd(const struct rtc *r, unsigned v)
{
	return (r->cmos[RTC_B] & RTC_B_DM) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static unsigned rtc_from_bcd(const struct rtc *r, uint8_t v)
{
	return (r->cmos[RTC_B] & RTC_B_DM) ? v : (unsigned)(v >> 4) * 10 + (v & 0xf);
}

static uint8_t rtc_hour_out(const struct rtc *r, unsigned h)
{
	if (r->cmos[RTC_B] & RTC_B_24H)
		return rtc_to_bcd(r, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(rtc_to_bcd(r, h12) | (h >= 12 ? 0x80 : 0));
}

static unsigned rtc_hour_in(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_B] & RTC_B_24H)
		return rtc_from_bcd(r, v) % 24;
	unsigned h = rtc_from_bcd(r, v & 0x7f) % 12; /* 12 AM is 0 */
	return (v & 0x80) ? h + 12 : h;
}

/* The guest's clock now, in whole seconds (and the host ns within it). */
static int64_t rtc_now(const struct rtc *r, uint64_t *ns_in_second)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ns_in_second)
		*ns_in_second = (uint64_t)ts.tv_nsec;
	if (r->cmos[RTC_B] & RTC_B_SET)
		return r->frozen;
	return (int64_t)ts.tv_sec + r->offset;
}

bool rtc_alarm_match(const uint8_t alarm[3], const uint8_t now[3])
{
	for (int i = 0; i < 3; i++)
		if ((alarm[i] & RTC_DONT_CARE) != RTC_DONT_CARE && alarm[i] != now[i])
			return false;
	return true;
}

/* Second t as the guest's registers would hold it: sec, min, hour. */
static void rtc_hms(const struct rtc *r, int64_t t, uint8_t out[3])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	out[0] = rtc_to_bcd(r, (unsigned)tm.tm_sec);
	out[1] = rtc_to_bcd(r, (unsigned)tm.tm_min);
	out[2] = rtc_hour_out(r, (unsigned)tm.tm_hour);
}

/* Fold the seconds since the last look into C's flags. Lock held. */
static void rtc_collect(struct rtc *r, int64_t now)
{
	if (now <= r->checked) {
		r->checked = now; /* the guest set the clock back */
		return;
	}
	int64_t from = r->checked + 1;
	if (now - from >= RTC_MAX_SCAN)
		from = now - RTC_MAX_SCAN + 1;
	const uint8_t alarm[3] = { r->cmos[RTC_SEC_ALARM], r->cmos[RTC_MIN_ALARM],
				   r->cmos[RTC_HOUR_ALARM] };
	r->flags |= RTC_C_UF;
	for (int64_t t = from; t <= now && !(r->flags & RTC_C_AF); t++) {
		uint8_t hms[3];
		rtc_hms(r, t, hms);
		if (rtc_alarm_match(alarm, hms))
			r->flags |= RTC_C_AF;
	}
	r->checked = now;
}

static uint8_t rtc_read_reg(struct rtc *r, uint8_t reg)
{
	uint64_t ns;
	int64_t now = rtc_now(r, &ns);
	time_t tt = (time_t)now;
	struct tm tm;
	gmtime_r(&tt, &tm);
	switch (reg) {
	case RTC_SEC:
		return rtc_to_bcd(r, (unsigned)tm.tm_sec);
	case RTC_MIN:
		return rtc_to_bcd(r, (unsigned)tm.tm_min);
	case RTC_HOUR:
		return rtc_hour_out(r, (unsigned)tm.tm_hour);
	case RTC_WDAY:
		return rtc_to_bcd(r, (unsigned)tm.tm_wday + 1);
	case RTC_MDAY:
		return rtc_to_bcd(r, (unsigned)tm.tm_mday);
	case RTC_MONTH:
		return rtc_to_bcd(r, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR:
		return rtc_to_bcd(r, (unsigned)(tm.tm_year % 100));
	case RTC_CENTURY:
		return rtc_to_bcd(r, (unsigned)(1900 + tm.tm_year) / 100);
	case RTC_A: {
		bool uip = !(r->cmos[RTC_B] & RTC_B_SET) && ns >= 1000000000ull - RTC_UIP_NS;
		return (uint8_t)((r->cmos[RTC_A] & ~RTC_A_UIP) | (uip ? RTC_A_UIP : 0));
	}
	case RTC_C: {
		if (!(r->cmos[RTC_B] & RTC_B_SET))
			rtc_collect(r, now);
		uint8_t c = r->flags;
		uint8_t en = r->cmos[RTC_B] & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE);
		if (c & en) /* B's enable bits are C's flag bits */
			c |= RTC_C_IRQF;
		r->flags = 0;
		return c;
	}
	case RTC_D:
		return RTC_D_VRT;
	default:
		return r->cmos[reg];
	}
}

/* The guest wrote a time field: the clock jumps so that field reads v. */
static void rtc_set_field(struct rtc *r, uint8_t reg, uint8_t v)
{
	int64_t now = rtc_now(r, NULL);
	time_t tt = (time_t)now;
	struct tm tm;
	gmtime_r(&tt, &tm);
	unsigned x = reg == RTC_HOUR ? rtc_hour_in(r, v) : rtc_from_bcd(r, v);
	switch (reg) {
	case RTC_SEC:
		tm.tm_sec = (int)(x % 60);
		break;
	case RTC_MIN:
		tm.tm_min = (int)(x % 60);
		break;
	case RTC_HOUR:
		tm.tm_hour = (int)x;
		break;
	case RTC_MDAY:
		tm.tm_mday = x >= 1 && x <= 31 ? (int)x : tm.tm_mday;
		break;
	case RTC_MONTH:
		tm.tm_mon = x >= 1 && x <= 12 ? (int)x - 1 : tm.tm_mon;
		break;
	case RTC_YEAR:
		tm.tm_year = (tm.tm_year / 100) * 100 + (int)(x % 100);
		break;
	case RTC_CENTURY:
		tm.tm_year = (int)(x % 100) * 100 + tm.tm_year % 100 - 1900;
		break;
	default:
		return; /* day of week follows the date */
	}
	int64_t t = (int64_t)timegm(&tm);
	if (r->cmos[RTC_B] & RTC_B_SET)
		r->frozen = t;
	else
		r->offset += t - now;
	r->checked = t; /* a jump is not a run of seconds to scan */
}

static void rtc_write_reg(struct rtc *r, uint8_t reg, uint8_t v)
{
	switch (reg) {
	case RTC_SEC:
	case RTC_MIN:
	case RTC_HOUR:
	case RTC_WDAY:
	case RTC_MDAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		rtc_set_field(r, reg, v);
		if (reg == RTC_CENTURY)
			r->cmos[reg] = v;
		break;
	case RTC_A:
		r->cmos[RTC_A] = v & ~RTC_A_UIP;
		break;
	case RTC_B: {
		bool was_set = r->cmos[RTC_B] & RTC_B_SET;
		if (!was_set && (v & RTC_B_SET))
			r->frozen = rtc_now(r, NULL); /* stop the clock where it is */
		if (was_set && !(v & RTC_B_SET)) { /* run again from the time the guest set */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			r->offset = r->frozen - (int64_t)ts.tv_sec;
			r->checked = r->frozen;
		}
		r->cmos[RTC_B] = v;
		break;
	}
	case RTC_C:
	case RTC_D:
		break; /* read-only */
	default:
		r->cmos[reg] = v;
	}
}

static uint64_t rtc_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc *r = opaque;
	(void)size;
	pthread_mutex_lock(&r->lock);
	uint8_t v = offset == 0 ? 0xff : rtc_read_reg(r, r->index); /* the index port is write-only */
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rtc_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	(void)size;
	pthread_mutex_lock(&r->lock);
	if (offset == 0)
		r->index = (uint8_t)value & 0x7f; /* bit 7 is the NMI mask, not an index bit */
	else
		rtc_write_reg(r, r->index, (uint8_t)value);
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops rtc_ops = {
	.read = rtc_pio_read,
	.write = rtc_pio_write,
};

/*
 * ---- snapshot ----
 *
 * The index register, the 128 bytes of registers and CMOS RAM (the time
 * registers there are unused: the time is computed), C's collected flags,
 * and the guest's clock: the second it showed at the save (running), the
 * time it was stopped at (SET) and the second up to which C's flags were
 * collected, all in guest seconds. The load makes the running clock go on
 * from the saved second, so the time spent saved is not seen by the guest,
 * as with every other timer here. Whole seconds: where the host's second
 * boundary falls moves the guest's by under a second, as it does at boot.
 */
struct rtc_snap {
	uint8_t index;
	uint8_t flags;
	uint8_t pad[6];
	uint8_t cmos[RTC_REGS];
	int64_t guest_s;
	int64_t frozen;
	int64_t checked;
};

_Static_assert(sizeof(struct rtc_snap) == 8 + RTC_REGS + 24, "rtc payload without implicit padding");

/* Year 0 to year 9999: what the BCD year and century registers can set
 * (gmtime_r must be able to take every value the load lets in). */
#define RTC_SNAP_MIN_S (-62167219200ll)
#define RTC_SNAP_MAX_S 253402300799ll

static int rtc_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct rtc *r = dev;
	(void)err, (void)n;
	struct rtc_snap w;
	memset(&w, 0, sizeof(w));
	int64_t host = devices_snap_real_s();
	pthread_mutex_lock(&r->lock);
	w.index = r->index;
	w.flags = r->flags;
	memcpy(w.cmos, r->cmos, sizeof(w.cmos));
	/* While SET is on the offset is stale (clearing SET recomputes it from
	 * frozen); save the guest time it would give anyway. */
	w.guest_s = host + r->offset;
	w.frozen = r->frozen;
	w.checked = r->checked;
	pthread_mutex_unlock(&r->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *rtc_snap_check(const struct rtc_snap *w)
{
	if (w->index >= RTC_REGS)
		return "index out of range";
	if (w->flags & ~(RTC_C_PF | RTC_C_AF | RTC_C_UF))
		return "register C flags out of range";
	if (w->cmos[RTC_A] & RTC_A_UIP)
		return "register A holds UIP";
	if (w->cmos[RTC_C] || w->cmos[RTC_D])
		return "registers C and D are not stored";
	for (unsigned i = 0; i < sizeof(w->pad); i++)
		if (w->pad[i])
			return "malformed";
	const int64_t t[3] = { w->guest_s, w->frozen, w->checked };
	for (unsigned i = 0; i < 3; i++)
		if (t[i] < RTC_SNAP_MIN_S || t[i] > RTC_SNAP_MAX_S)
			return "time out of range";
	return NULL;
}

static int rtc_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct rtc *r = dev;
	struct rtc_snap w;
	if (devices_snap_version("rtc", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("rtc", c, err, n) < 0)
		return -1;
	const char *why = rtc_snap_check(&w);
	if (why) {
		snprintf(err, n, "rtc: %s", why);
		return -1;
	}
	int64_t host = devices_snap_real_s();
	pthread_mutex_lock(&r->lock);
	r->index = w.index;
	r->flags = w.flags;
	memcpy(r->cmos, w.cmos, sizeof(r->cmos));
	r->offset = w.guest_s - host;
	r->frozen = w.frozen;
	r->checked = w.checked;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* As a fresh create leaves it: 32.768 kHz time base and 1024 Hz rate (the
 * power-on value of A), 24-hour mode, CMOS RAM clear, the host's time. */
static void rtc_power_on(struct rtc *r)
{
	r->index = 0;
	memset(r->cmos, 0, sizeof(r->cmos));
	r->cmos[RTC_A] = 0x26;
	r->cmos[RTC_B] = RTC_B_24H;
	r->offset = r->frozen = 0;
	r->flags = 0;
	r->checked = rtc_now(r, NULL);
}

static void rtc_destroy(void *dev)
{
	struct rtc *r = dev;
	devices_bus_forget(r->pio, r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int rtc_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->pio = env->pio;
	rtc_power_on(r);
	/* glibc's gmtime_r and timegm read the time zone (/etc/localtime) on
	 * their first use: make that use now, at set-up, since the vCPU thread
	 * that later reads the clock may open no file (its seccomp list). */
	tzset();
	int e = bus_register(env->pio, RTC_PORT, 2, &rtc_ops, r, "rtc");
	if (e < 0) {
		rtc_destroy(r);
		return e;
	}
	*dev = r;
	return 0;
}

/* Everything, CMOS RAM included: the reset a fresh create gives (on a PC
 * the battery keeps RAM; hvmm has no firmware that would read it back). */
static void rtc_reset(void *dev)
{
	struct rtc *r = dev;
	pthread_mutex_lock(&r->lock);
	rtc_power_on(r);
	pthread_mutex_unlock(&r->lock);
}

const struct dev_ops rtc_dev_ops = {
	.name = "rtc",
	.desc = "RTC",
	.create = rtc_create,
	.reset = rtc_reset,
	.snap = { .name = "rtc", .version = 1, .save = rtc_snap_save, .load = rtc_snap_load },
	.destroy = rtc_destroy,
};

bool rtc_alarm_due(struct rtc *r)
{
	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	bool due = false;
	if (!(r->cmos[RTC_B] & RTC_B_SET)) {
		rtc_collect(r, rtc_now(r, NULL));
		due = (r->flags & RTC_C_AF) && (r->cmos[RTC_B] & RTC_B_AIE);
	}
	pthread_mutex_unlock(&r->lock);
	return due;
}
