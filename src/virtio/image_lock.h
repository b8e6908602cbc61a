/*
 * image_lock: one writer or many readers per disk image, among hvmm
 * processes and QEMU processes alike.
 */
#ifndef HVMM_IMAGE_LOCK_H
#define HVMM_IMAGE_LOCK_H

#include <stdbool.h>

/* Lock the image open on fd for reading, or for reading and writing.
 * 0; -EBUSY when another process (hvmm or QEMU) holds it in a conflicting
 * way; 0 too where the file system has no byte-range locks (ENOLCK,
 * EOPNOTSUPP: nothing to exclude with there); else -errno. The lock lives
 * as long as the open file description. */
int image_lock(int fd, bool readonly);
/* Drop every lock image_lock took on fd (a migration hands the image over
 * to the destination, which then takes them). 0 or -errno. */
int image_unlock(int fd);

#endif
