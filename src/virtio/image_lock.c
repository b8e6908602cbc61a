/*
 * Disk image locks that QEMU understands.
 *
 * flock() alone excluded only other hvmm processes: QEMU locks images with
 * open-file-description (OFD) byte-range locks, which flock never sees, so
 * a QEMU and an hvmm could both write one image and corrupt it. We take the
 * same locks QEMU does (its file-posix driver, as /proc/locks shows them for
 * a running QEMU), so each side sees the other:
 *
 *   byte 100 + p  a shared lock while holding permission p
 *   byte 200 + p  a shared lock while not letting others hold p
 *
 * with p = 0 for reading a consistent image, 1 for writing. A writer holds
 * 100, 101 and 201; a reader 100 and 201 (like a read-only QEMU drive, it
 * does not let anyone write under it). Then a conflict is an exclusive lock
 * we could not take: on 200 + p for each p we hold (someone refuses it to
 * us) and on 100 + p for each p we refuse (someone holds it). Locks first,
 * test second, as QEMU does, so of two starting at once at least one sees
 * the other. Our own locks never conflict with our tests: OFD locks of one
 * open file description do not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>

#include "image_lock.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define PERM_READ 0
#define PERM_WRITE 1

/* One byte at off, for fcntl's OFD lock commands (l_pid must be 0). */
static struct flock image_lock_fl(short type, unsigned off)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = off;
	fl.l_len = 1;
	return fl;
}

static int image_lock_byte(int fd, unsigned off)
{
	struct flock fl = image_lock_fl(F_RDLCK, off);
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 when another open file description holds a lock on byte off. */
static int image_lock_taken(int fd, unsigned off)
{
	struct flock fl = image_lock_fl(F_WRLCK, off);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

int image_lock(int fd, bool readonly)
{
	unsigned held[3], n_held = 0;
	held[n_held++] = LOCK_PERM_BASE + PERM_READ;
	if (!readonly)
		held[n_held++] = LOCK_PERM_BASE + PERM_WRITE;
	held[n_held++] = LOCK_SHARED_BASE + PERM_WRITE; /* nobody writes under us */
	for (unsigned i = 0; i < n_held; i++) {
		int r = image_lock_byte(fd, held[i]);
		if (r == -EAGAIN || r == -EACCES)
			return -EBUSY; /* an exclusive lock there: not QEMU's or ours */
		if (r == -ENOLCK || r == -EOPNOTSUPP)
			return 0;
		if (r < 0)
			return r;
	}
	unsigned test[3], n_test = 0;
	test[n_test++] = LOCK_SHARED_BASE + PERM_READ; /* someone refuses consistent reads */
	if (!readonly)
		test[n_test++] = LOCK_SHARED_BASE + PERM_WRITE; /* someone refuses writers */
	test[n_test++] = LOCK_PERM_BASE + PERM_WRITE;           /* someone writes */
	for (unsigned i = 0; i < n_test; i++) {
		int r = image_lock_taken(fd, test[i]);
		if (r < 0)
			return r;
		if (r)
			return -EBUSY;
	}
	return 0;
}

int image_unlock(int fd)
{
	/* bytes 100..201: every byte image_lock may have taken */
	struct flock fl = image_lock_fl(F_UNLCK, LOCK_PERM_BASE);
	fl.l_len = LOCK_SHARED_BASE + PERM_WRITE - LOCK_PERM_BASE + 1;
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}
