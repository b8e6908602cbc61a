/*
 * Boot-time marker: the guest writes to a port (or, from ring 3, which cannot
 * do port I/O on this host, to an MMIO word) when it reaches a milestone, and
 * hvmm records when. The first BOOT_TIMER_MAX_MARKS writes are kept; later
 * ones are only counted, so a guest that writes in a loop cannot grow memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "../vm.h"
#include "devices_priv.h"

#define BOOT_TIMER_LEN 4

struct boot_timer {
	pthread_mutex_t lock;
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

int boot_timer_create(struct vm *vm)
{
	struct boot_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	/* Owned by vm->boot_timer from here on: boot_timer_destroy frees it
	 * even when a registration below fails. */
	vm->boot_timer = t;
	int r = bus_register(&vm->pio, BOOT_TIMER_PORT, BOOT_TIMER_LEN, &boot_timer_pio_ops, t,
			     "boot timer");
	if (r == 0)
		r = bus_register(&vm->mmio, BOOT_TIMER_MMIO, BOOT_TIMER_LEN, &boot_timer_mmio_ops, t,
				 "boot timer");
	return r;
}

unsigned boot_timer_marks(struct vm *vm, struct boot_timer_mark *out, unsigned max)
{
	struct boot_timer *t = vm->boot_timer;
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

void boot_timer_destroy(struct vm *vm)
{
	struct boot_timer *t = vm->boot_timer;
	if (!t)
		return;
	vm->boot_timer = NULL;
	pthread_mutex_destroy(&t->lock);
	free(t);
}
