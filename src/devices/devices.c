/* What every device shares: tear-down from the buses and the snapshot
 * clocks and checks (see devices_priv.h). */
#include "devices.h"

#include <stdio.h>
#include <time.h>

#include "../util.h"
#include "devices_priv.h"

void devices_bus_forget(struct bus *b, const void *opaque)
{
	for (size_t i = 0; b && i < b->nr; i++)
		if (b->ranges[i].opaque == opaque)
			b->ranges[i].opaque = NULL;
}

/* Pinned values, read by the snapshot thread only (tests pin from the one
 * thread they run on). */
static bool devices_clock_pinned;
static uint64_t devices_pinned_mono, devices_pinned_since;
static int64_t devices_pinned_real;

static int64_t devices_real_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t devices_snap_mono_ns(void)
{
	return devices_clock_pinned ? devices_pinned_mono : util_now_ns();
}

uint64_t devices_snap_since_start_ns(void)
{
	return devices_clock_pinned ? devices_pinned_since : util_since_start_ns();
}

int64_t devices_snap_real_s(void)
{
	return devices_clock_pinned ? devices_pinned_real : devices_real_s();
}

void devices_snap_clock_pin(bool pin)
{
	devices_pinned_mono = util_now_ns();
	devices_pinned_since = util_since_start_ns();
	devices_pinned_real = devices_real_s();
	devices_clock_pinned = pin;
}

int devices_snap_version(const char *name, uint32_t version, char *err, size_t n)
{
	if (version == 1)
		return 0;
	snprintf(err, n, "%s: unknown payload version %u", name, version);
	return -1;
}

int devices_snap_truncated(const char *name, const struct snap_cur *c, char *err, size_t n)
{
	if (!c->bad)
		return 0;
	snprintf(err, n, "%s: payload truncated", name);
	return -1;
}
