/*
 * uring_restrict: a locked-down ring runs the opcodes and flags it was given
 * and refuses every other opcode, flag and register operation with EACCES —
 * the io_uring counterpart of a seccomp allow-list, which io_uring
 * operations bypass.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/uring_restrict.h"

struct fixture {
	struct io_uring ring;
	int fd; /* a pipe's read end holding "hvmm" */
	int wfd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };
	assert_int_equal(io_uring_queue_init_params(8, &f->ring, &p), 0);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	f->fd = fds[0];
	f->wfd = fds[1];
	assert_int_equal(write(f->wfd, "hvmm", 4), 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	io_uring_queue_exit(&f->ring);
	close(f->fd);
	close(f->wfd);
	free(f);
	return 0;
}

/* Submit one prepared SQE and return its result: the CQE's res, or the
 * submission's own error where the kernel refuses it at submit time. */
static int run_one(struct io_uring *ring)
{
	int r = io_uring_submit(ring);
	if (r < 0)
		return r;
	assert_int_equal(r, 1);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static int submit_readv(struct fixture *f, uint8_t flags)
{
	static char buf[4];
	static struct iovec iov = { buf, sizeof(buf) };
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	assert_non_null(sqe);
	io_uring_prep_readv(sqe, f->fd, &iov, 1, 0);
	sqe->flags |= flags;
	return run_one(&f->ring);
}

static const uint8_t ops_readv[] = { IORING_OP_READV };

static void test_allowed_op_runs(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(uring_restrict(&f->ring, ops_readv, 1, 0), 0);
	assert_int_equal(submit_readv(f, 0), 4);
}

static void test_other_op_refused(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(uring_restrict(&f->ring, ops_readv, 1, 0), 0);
	/* Opening a file is what a compromised thread would want the ring for. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	assert_int_equal(run_one(&f->ring), -EACCES);
	sqe = io_uring_get_sqe(&f->ring);
	io_uring_prep_writev(sqe, f->wfd, &(struct iovec){ "x", 1 }, 1, 0);
	assert_int_equal(run_one(&f->ring), -EACCES);
	/* ... and the ring still works for what it is allowed. */
	assert_int_equal(submit_readv(f, 0), 4);
}

static void test_flags(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(uring_restrict(&f->ring, ops_readv, 1, IOSQE_ASYNC), 0);
	assert_int_equal(submit_readv(f, IOSQE_ASYNC), 4);
	assert_int_equal(write(f->wfd, "hvmm", 4), 4);
	assert_int_equal(submit_readv(f, IOSQE_IO_DRAIN), -EACCES);
}

static void test_no_flags_by_default(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(uring_restrict(&f->ring, ops_readv, 1, 0), 0);
	assert_int_equal(submit_readv(f, IOSQE_ASYNC), -EACCES);
}

static void test_no_register_after(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(uring_restrict(&f->ring, ops_readv, 1, 0), 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(io_uring_register_eventfd(&f->ring, efd), -EACCES);
	assert_int_equal(io_uring_register_files(&f->ring, &f->fd, 1), -EACCES);
	close(efd);
}

static void test_too_many_ops(void **state)
{
	struct fixture *f = *state;
	uint8_t ops[IORING_OP_LAST + 1] = { 0 };
	assert_int_equal(uring_restrict(&f->ring, ops, sizeof(ops), 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_allowed_op_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_op_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_flags_by_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_register_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_ops, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
