/*
 * landlock: after landlock_restrict_to_reading(files), a process reads those
 * files and nothing else — no other file, no write to them, no new file, no
 * directory listing — and, where the kernel has scopes, cannot signal a
 * process outside its domain. Each case runs in a child process: a Landlock
 * domain cannot be left again.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "landlock.h"

static char dir[] = "/tmp/hvmm-landlock-XXXXXX";
static char allowed[64], other[64];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(allowed, sizeof(allowed), "%s/allowed", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	for (const char *p = allowed; p; p = p == allowed ? other : NULL) {
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, "x", 1) != 1)
			return -1;
		close(fd);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char path[96];
	snprintf(path, sizeof(path), "%s/new", dir);
	unlink(path);
	unlink(allowed);
	unlink(other);
	rmdir(dir);
	return 0;
}

/* errno of open(path, flags) (0: it opened). */
static int open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* Child: confine, then check; exit status 0 when every check held, else the
 * number of the first check that failed. */
static int child_checks(void)
{
	const char *files[] = { allowed, "/nonexistent/is-skipped" };
	int abi = landlock_restrict_to_reading(files, 2);
	if (abi < 1)
		return 100;
	if (open_errno(allowed, O_RDONLY) != 0)
		return 1;
	if (open_errno(other, O_RDONLY) != EACCES)
		return 2;
	if (open_errno(allowed, O_WRONLY) != EACCES)
		return 3;
	char path[96];
	snprintf(path, sizeof(path), "%s/new", dir);
	if (open_errno(path, O_WRONLY | O_CREAT) != EACCES)
		return 4;
	if (open_errno(dir, O_RDONLY | O_DIRECTORY) != EACCES)
		return 5;
	if (unlink(other) == 0 || errno != EACCES)
		return 6;
	if (open_errno("/etc/passwd", O_RDONLY) != EACCES)
		return 7;
	/* Scopes (ABI 6): the parent is outside the domain. */
	if (abi >= 6 && (kill(getppid(), 0) == 0 || errno != EPERM))
		return 8;
	return 0;
}

static void test_reads_only_what_it_was_given(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The parent is not confined. */
	assert_int_equal(open_errno(other, O_RDONLY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_only_what_it_was_given),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
