/*
 * Boot-time marker: the guest writes to a port (or, from ring 3, which cannot
 * do port I/O on this host, to an MMIO word) when it reaches a milestone, and
 * hvmm records when. The first BOOT_TIMER_MAX_MARKS writes are kept; later
 * ones are only counted, so a guest that writes in a loop cannot grow memory.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "devices_priv.h"

#define BOOT_TIMER_LEN 4

struct boot_timer {
	pthread_mutex_t lock;
	struct bus *pio, *mmio;
	unsigned count; /* all writes, kept or not */
	struct boot_timer_mark marks[BOOT_TIMER_MAX_MARKS];
};

static void boot_timer_record(struct boot_timer *t, uint64_t value, bool mmio)
{
	/* Take the time first: the lock must not be part of what is measured. */
	uint64_t ns = util_since_start_ns();
	pthread_mutex_lock(&t->lock);
	if (t->count < BOOT_TIMER_MAX_MARKS)
		t->marks[t->count] = (struct boot_timer_mark){ ns, (uint32_t)value, mmio };
	if (t->count < UINT32_MAX)
		t->count++;
	pthread_mutex_unlock(&t->lock);
}

static uint64_t boot_timer_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

static void boot_timer_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	boot_timer_record(opaque, value, false);
}

static void boot_timer_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)offset;
	(void)size;
	boot_timer_record(opaque, value, true);
}

static const struct bus_ops boot_timer_pio_ops = {
	.read = boot_timer_read,
	.write = boot_timer_pio_write,
};

static const struct bus_ops boot_timer_mmio_ops = {
	.read = boot_timer_read,
	.write = boot_timer_mmio_write,
};

/*
 * ---- snapshot: the marks ----
 *
 * A mark's time is a host clock reading (ns since this hvmm started), so it
 * travels as its age at the save and comes back as that long before the
 * load: a restore in a later process keeps the marks' spacing and their
 * distance from "now" as the guest saw it. A mark older than the restoring
 * process itself (the usual case for a restore long after boot) cannot be
 * expressed that way and reads 0, "at or before this process started".
 */
struct boot_timer_snap_mark {
	uint64_t age_ns;
	uint32_t value;
	uint8_t mmio;
	uint8_t pad[3];
};

struct boot_timer_snap {
	uint32_t count;
	uint32_t pad;
	struct boot_timer_snap_mark marks[BOOT_TIMER_MAX_MARKS];
};

_Static_assert(sizeof(struct boot_timer_snap) == 8 + 16 * BOOT_TIMER_MAX_MARKS,
	       "boot-timer payload without implicit padding");

static int boot_timer_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct boot_timer *t = dev;
	(void)err, (void)n;
	struct boot_timer_snap w;
	memset(&w, 0, sizeof(w));
	uint64_t now = devices_snap_since_start_ns();
	pthread_mutex_lock(&t->lock);
	w.count = t->count;
	unsigned kept = t->count < BOOT_TIMER_MAX_MARKS ? t->count : BOOT_TIMER_MAX_MARKS;
	for (unsigned i = 0; i < kept; i++) {
		const struct boot_timer_mark *m = &t->marks[i];
		w.marks[i].age_ns = now > m->ns ? now - m->ns : 0;
		w.marks[i].value = m->value;
		w.marks[i].mmio = m->mmio;
	}
	pthread_mutex_unlock(&t->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static int boot_timer_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct boot_timer *t = dev;
	struct boot_timer_snap w;
	if (devices_snap_version("boot-timer", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("boot-timer", c, err, n) < 0)
		return -1;
	/* The padding too: a save writes zeros there, and a byte the load
	 * would drop is a file this hvmm did not write. */
	if (w.pad) {
		snprintf(err, n, "boot-timer: malformed padding");
		return -1;
	}
	unsigned kept = w.count < BOOT_TIMER_MAX_MARKS ? w.count : BOOT_TIMER_MAX_MARKS;
	for (unsigned i = 0; i < BOOT_TIMER_MAX_MARKS; i++) {
		const struct boot_timer_snap_mark *m = &w.marks[i];
		if (!devices_snap_is_bool(m->mmio) || m->pad[0] || m->pad[1] || m->pad[2] ||
		    (i >= kept && (m->age_ns || m->value || m->mmio))) {
			snprintf(err, n, "boot-timer: mark %u is malformed", i);
			return -1;
		}
	}
	uint64_t now = devices_snap_since_start_ns();
	pthread_mutex_lock(&t->lock);
	memset(t->marks, 0, sizeof(t->marks));
	t->count = w.count;
	for (unsigned i = 0; i < kept; i++)
		t->marks[i] = (struct boot_timer_mark){
			.ns = now > w.marks[i].age_ns ? now - w.marks[i].age_ns : 0,
			.value = w.marks[i].value,
			.mmio = w.marks[i].mmio,
		};
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void boot_timer_destroy(void *dev)
{
	struct boot_timer *t = dev;
	devices_bus_forget(t->pio, t);
	devices_bus_forget(t->mmio, t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int boot_timer_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct boot_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->pio = env->pio;
	t->mmio = env->mmio;
	int r = bus_register(env->pio, BOOT_TIMER_PORT, BOOT_TIMER_LEN, &boot_timer_pio_ops, t,
			     "boot timer");
	if (r == 0)
		r = bus_register(env->mmio, BOOT_TIMER_MMIO, BOOT_TIMER_LEN, &boot_timer_mmio_ops, t,
				 "boot timer");
	if (r < 0) {
		boot_timer_destroy(t);
		return r;
	}
	*dev = t;
	return 0;
}

/* No marks: the next boot's are its own. */
static void boot_timer_reset(void *dev)
{
	struct boot_timer *t = dev;
	pthread_mutex_lock(&t->lock);
	t->count = 0;
	memset(t->marks, 0, sizeof(t->marks));
	pthread_mutex_unlock(&t->lock);
}

static void boot_timer_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "marks", json_object_new_uint64(boot_timer_marks(dev, NULL, 0)));
}

const struct dev_ops boot_timer_dev_ops = {
	.name = "boot-timer",
	.desc = "boot timer",
	.create = boot_timer_create,
	.reset = boot_timer_reset,
	.snap = { .name = "boot-timer", .version = 1, .save = boot_timer_snap_save,
		  .load = boot_timer_snap_load },
	.stats = boot_timer_stats,
	.destroy = boot_timer_destroy,
};

unsigned boot_timer_marks(struct boot_timer *t, struct boot_timer_mark *out, unsigned max)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	unsigned n = t->count;
	unsigned kept = n < BOOT_TIMER_MAX_MARKS ? n : BOOT_TIMER_MAX_MARKS;
	if (out)
		memcpy(out, t->marks, (kept < max ? kept : max) * sizeof(*out));
	pthread_mutex_unlock(&t->lock);
	return n;
}
