/* Shared by the device files only: tear-down helpers. */
#ifndef HVMM_DEVICES_PRIV_H
#define HVMM_DEVICES_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bus.h"
#include "../device.h"
#include "../irq.h"
#include "../memory.h"
#include "../snapshot.h"
#include "../vm_config.h"

/*
 * Snapshot loads (devices.c): the checks every payload gets, each writing
 * its one-line reason to err as "<name>: ...". Version 1 is the only layout
 * so far; the cursor's bad flag is checked once, after the last get.
 */
int devices_snap_version(const char *name, uint32_t version, char *err, size_t n);
int devices_snap_truncated(const char *name, const struct snap_cur *c, char *err, size_t n);
/* Bools travel as bytes; anything but 0 and 1 is a corrupt file. */
static inline bool devices_snap_is_bool(uint8_t v)
{
	return v <= 1;
}

/*
 * The bus has no unregister: a device's destroy clears opaque from every
 * range of b that holds it, so that nothing can reach the freed state (a
 * test that goes on using its buses). b NULL: nothing.
 */
void devices_bus_forget(struct bus *b, const void *opaque);

#endif
