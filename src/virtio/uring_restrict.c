/*
 * uring_restrict: see uring_restrict.h.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uring_restrict.h"

/* The system call itself: Debian's liburing 2.3 has
 * io_uring_register_restrictions and io_uring_enable_rings in its static
 * library but does not export them from the shared one. */
static int uring_register(int fd, unsigned op, void *arg, unsigned nr)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
}

int uring_restrict(struct io_uring *ring, const uint8_t *ops, size_t nops, uint8_t sqe_flags)
{
	/* One entry per opcode, plus one for the flags; IORING_OP_LAST bounds
	 * the opcode space, so a list longer than that is a caller's bug. */
	struct io_uring_restriction res[IORING_OP_LAST + 1] = { 0 };
	if (nops > IORING_OP_LAST)
		return -EINVAL;
	size_t n = 0;
	for (size_t i = 0; i < nops; i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	/* Without an SQE_FLAGS_ALLOWED entry every flag would be refused:
	 * that is the wanted default when sqe_flags is 0. */
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = sqe_flags;
	/* No IORING_RESTRICTION_REGISTER_OP entry: once enabled, the ring
	 * takes no register operation at all (no new files, buffers,
	 * eventfds or personalities). */
	if (uring_register(ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res, (unsigned)n) < 0 ||
	    uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}
