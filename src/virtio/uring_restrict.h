/*
 * uring_restrict: lock an io_uring down to the operations its owner needs.
 *
 * io_uring operations run in the kernel without passing through seccomp: a
 * thread allowed io_uring_enter could open files, connect sockets or read
 * arbitrary fds through its ring, whatever its seccomp list says. Linux lets
 * a ring created disabled (IORING_SETUP_R_DISABLED) carry a list of allowed
 * submission opcodes, submission flags and register operations, fixed once
 * the ring is enabled. hvmm's rings are locked down this way before their
 * first submission.
 */
#ifndef HVMM_URING_RESTRICT_H
#define HVMM_URING_RESTRICT_H

#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

/* Allow exactly the submission opcodes ops[0..nops) with any of the
 * submission flags in sqe_flags, and no register operation; then enable
 * the ring. The ring must have been set up with IORING_SETUP_R_DISABLED,
 * and anything to register (an eventfd, files) registered before. 0, or a
 * negative errno (the ring stays disabled: the caller tears it down). */
int uring_restrict(struct io_uring *ring, const uint8_t *ops, size_t nops, uint8_t sqe_flags);

#endif
