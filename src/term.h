/*
 * term: hvmm's stdin as a console — the raw terminal mode and QEMU's Ctrl-A
 * escapes — shared by whichever device reads stdin (the UART, or
 * virtio-console with --console virtio).
 */
#ifndef HVMM_TERM_H
#define HVMM_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERM_CTRL_A 0x01

/*
 * Put stdin (when it is a terminal) in raw mode, output processing kept, so
 * every key reaches the guest. Restored by term_raw_restore(), which is
 * also registered with atexit() so every exit() path restores it. Both are
 * idempotent and thread-safe.
 */
void term_raw_enter(void);
void term_raw_restore(void);
/* The same from a signal handler that ends the process (no lock taken). */
void term_raw_restore_async(void);

/* QEMU's escapes: Ctrl-A x quits, Ctrl-A Ctrl-A is a literal Ctrl-A, any
 * other Ctrl-A sequence is swallowed. The state spans calls. */
struct term_escape {
	bool pending; /* Ctrl-A seen, waiting for the next byte */
};
/* Filters buf[0..len) in place; returns the bytes left for the guest and
 * sets *quit when Ctrl-A x was among them (bytes after it are kept). */
size_t term_escape_filter(struct term_escape *e, uint8_t *buf, size_t len, bool *quit);

#endif
