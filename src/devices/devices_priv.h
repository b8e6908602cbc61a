/* Shared by the device files only: tear-down helpers. */
#ifndef HVMM_DEVICES_PRIV_H
#define HVMM_DEVICES_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bus.h"
#include "../snapshot.h"

struct vm;

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
 * The bus has no unregister, and struct vm has no slot for every device, so
 * tear-down finds a device's state through its own ranges: for each range of
 * bus served by ops, call fn(opaque) once per distinct opaque and clear it.
 */
void devices_free_opaque(struct bus *b, const struct bus_ops *ops, void (*fn)(void *));

void uart_destroy(struct vm *vm);
void debug_exit_destroy(struct vm *vm);
void i8042_destroy(struct vm *vm);
void sysreset_destroy(struct vm *vm);
void boot_timer_destroy(struct vm *vm);
void ioapic_destroy(struct vm *vm);
void pic_destroy(struct vm *vm);
void pit_destroy(struct vm *vm);
void pc_testdev_destroy(struct vm *vm);
void acpi_pm_destroy(struct vm *vm);
void rtc_destroy(struct vm *vm);

#endif
