/*
 * landlock: take away a process's file system, except a few files it may read.
 *
 * seccomp decides which system calls a thread may make, not which files an
 * allowed openat() may reach. Landlock (Linux 5.13+, unprivileged) does: a
 * ruleset that handles every file system right the running kernel knows,
 * with READ_FILE granted on the listed files alone, leaves the process
 * unable to read, write, create, remove or execute anything else — whatever
 * its uid could. Where the kernel also knows scopes (Linux 6.12+), signals
 * and abstract unix sockets leaving the domain are refused too.
 */
#ifndef HVMM_LANDLOCK_H
#define HVMM_LANDLOCK_H

#include <stddef.h>

/* Restrict the calling thread (and what it later creates) to reading the
 * files in paths[0..n) (each resolved now; a missing one is skipped).
 * Needs PR_SET_NO_NEW_PRIVS (set here). The Landlock ABI version it ran
 * with (>= 1), or a negative errno: -EOPNOTSUPP where the kernel has no
 * Landlock or has it disabled. */
int landlock_restrict_to_reading(const char *const *paths, size_t n);

#endif
