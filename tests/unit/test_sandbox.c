/*
 * sandbox: each thread kind's filter, installed in a child process (a filter
 * cannot be taken off again), lets the calls its kind needs through and traps
 * a call it does not: the child then ends with the chosen status and one line
 * naming the kind and the system call. No KVM needed: an ioctl's request is
 * checked before the kernel looks at the fd, so a bad fd shows "allowed"
 * (EBADF) apart from "forbidden" (SIGSYS).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

#define TEST_STATUS 10
#define TEST_ALLOWED_OK 0   /* every allowed call returned */
#define TEST_ALLOWED_BAD 77 /* an allowed call failed in an unexpected way */

/* What the child does once confined: 0 if the allowed calls behaved, else
 * TEST_ALLOWED_BAD; then the forbidden one, if any, which must not return. */
typedef int (*test_body)(void);

struct test_result {
	int status; /* exit status, or 128 + signal */
	char err[512];
};

/* The raw call: a sanitizer's _exit() would run its leak check first, and
 * that needs calls no list allows. */
static void test_exit(int status)
{
	syscall(SYS_exit_group, status);
	_exit(status);
}

static struct test_result test_confined(enum sandbox_kind kind, const struct sandbox_main_opts *mo,
					test_body allowed, test_body forbidden)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		if (sandbox_init(true, "test", TEST_STATUS, NULL) < 0 || sandbox_enter(kind, mo) < 0)
			test_exit(99);
		if (allowed && allowed() != 0)
			test_exit(TEST_ALLOWED_BAD);
		if (forbidden)
			forbidden();
		test_exit(TEST_ALLOWED_OK);
	}
	close(pfd[1]);
	struct test_result r = { .status = -1 };
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(r.err) - 1 && (n = read(pfd[0], r.err + got, sizeof(r.err) - 1 - got)) > 0)
		got += (size_t)n;
	r.err[got] = 0;
	close(pfd[0]);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	return r;
}

/* The line must name the kind and the call, once, and nothing else. */
static void test_expect_trap(const struct test_result *r, const char *kind, const char *call)
{
	char want[128];
	snprintf(want, sizeof(want), "test: seccomp: the %s thread made a forbidden system call: %s (nr ",
		 kind, call);
	if (r->status != TEST_STATUS || strncmp(r->err, want, strlen(want)) != 0 ||
	    strchr(r->err, '\n') != r->err + strlen(r->err) - 1)
		fail_msg("status %d, stderr '%s', wanted status %d and '%s...'", r->status, r->err,
			 TEST_STATUS, want);
}

static void test_expect_ok(const struct test_result *r)
{
	if (r->status != TEST_ALLOWED_OK)
		fail_msg("allowed calls: status %d, stderr '%s'", r->status, r->err);
}

/* ---- bodies ---- */

static int body_personality(void)
{
	return (int)syscall(SYS_personality, 0xffffffffUL);
}

static int body_ptrace(void)
{
	return (int)syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
}

static int body_open_read(void)
{
	return open("/etc/hostname", O_RDONLY);
}

static int body_socket_unix(void)
{
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int body_tiocsti(void)
{
	char c = 'x';
	return ioctl(-1, TIOCSTI, &c);
}

static int body_kvm_create_vm(void)
{
	return ioctl(-1, KVM_CREATE_VM, 0);
}

static int body_exec_mapping(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}

/* Requests a vCPU thread makes: the filter passes them, the bad fd fails. */
static int body_vcpu_allowed(void)
{
	static const unsigned long reqs[] = { KVM_RUN, KVM_IRQ_LINE, KVM_SIGNAL_MSI,
					      KVM_SET_GSI_ROUTING, KVM_GET_REGS, TCGETS };
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		if (ioctl(-1, reqs[i], 0) != -1 || errno != EBADF)
			return 1;
	void *p = malloc(1 << 20); /* the heap: mmap without PROT_EXEC */
	free(p);
	return p ? 0 : 1;
}

static int body_evloop_allowed(void)
{
	char b;
	if (getrandom(&b, 1, 0) != 1) /* virtio-rng */
		return 1;
	if (syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0) != -1 || errno != EBADF)
		return 1;
	return ioctl(-1, KVM_IRQFD, 0) == -1 && errno == EBADF ? 0 : 1;
}

static int body_main_mkstemp(void)
{
	/* the --stats-json file: created for writing, nothing else */
	char path[] = "/tmp/hvmm-test-sandbox-XXXXXX";
	int fd = mkstemp(path); /* O_RDWR|O_CREAT|O_EXCL: not on the list */
	(void)fd;
	return 0;
}

/* Named by the test before it confines the body, which cannot remove the
 * file (its unlink is the call that must trap): the test does afterwards. */
static char main_json_path[64];

static int body_main_json(void)
{
	const char *path = main_json_path;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	unlink(path); /* not on the list either: must trap, after the open worked */
	return 0;
}

static int body_helper_allowed(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return 1;
	close(s);
	/* resolv.conf, for the DNS relay: allowed by the seccomp list and by
	 * the helper's Landlock rule (test_landlock.c checks the rest of it) */
	int fd = open("/etc/resolv.conf", O_RDONLY);
	if (fd >= 0)
		close(fd);
	else if (errno != ENOENT)
		return 1;
	return 0;
}

/* ---- tests ---- */

static void test_vcpu(void **state)
{
	(void)state;
	struct test_result r = test_confined(SANDBOX_VCPU, NULL, body_vcpu_allowed, NULL);
	test_expect_ok(&r);
	r = test_confined(SANDBOX_VCPU, NULL, NULL, body_tiocsti);
	test_expect_trap(&r, "vcpu", "ioctl");
	r = test_confined(SANDBOX_VCPU, NULL, NULL, body_kvm_create_vm);
	test_expect_trap(&r, "vcpu", "ioctl");
	r = test_confined(SANDBOX_VCPU, NULL, NULL, body_open_read);
	test_expect_trap(&r, "vcpu", "openat");
	r = test_confined(SANDBOX_VCPU, NULL, NULL, body_exec_mapping);
	test_expect_trap(&r, "vcpu", "mmap");
}

static void test_evloop(void **state)
{
	(void)state;
	struct test_result r = test_confined(SANDBOX_EVLOOP, NULL, body_evloop_allowed, NULL);
	test_expect_ok(&r);
	r = test_confined(SANDBOX_EVLOOP, NULL, NULL, body_socket_unix);
	test_expect_trap(&r, "evloop", "socket");
	r = test_confined(SANDBOX_EVLOOP, NULL, NULL, body_kvm_create_vm);
	test_expect_trap(&r, "evloop", "ioctl");
}

static void test_serial(void **state)
{
	(void)state;
	struct test_result r = test_confined(SANDBOX_SERIAL, NULL, NULL, body_ptrace);
	test_expect_trap(&r, "serial", "ptrace");
	r = test_confined(SANDBOX_SERIAL, NULL, NULL, body_open_read);
	test_expect_trap(&r, "serial", "openat");
}

static void test_main(void **state)
{
	(void)state;
	struct sandbox_main_opts json = { .stats_json = true }, none = { 0 };
	struct test_result r = test_confined(SANDBOX_MAIN, &json, NULL, body_main_mkstemp);
	test_expect_trap(&r, "main", "openat");
	snprintf(main_json_path, sizeof(main_json_path), "/tmp/hvmm-test-sandbox-%d.json", (int)getpid());
	r = test_confined(SANDBOX_MAIN, &json, NULL, body_main_json);
	unlink(main_json_path);
	test_expect_trap(&r, "main", "unlink");
	r = test_confined(SANDBOX_MAIN, &none, NULL, body_main_json);
	unlink(main_json_path);
	test_expect_trap(&r, "main", "openat");
	r = test_confined(SANDBOX_MAIN, &json, NULL, body_personality);
	test_expect_trap(&r, "main", "personality");
}

static void test_net_helper(void **state)
{
	(void)state;
	struct test_result r = test_confined(SANDBOX_NET_HELPER, NULL, body_helper_allowed, NULL);
	test_expect_ok(&r);
	r = test_confined(SANDBOX_NET_HELPER, NULL, NULL, body_socket_unix);
	test_expect_trap(&r, "net-helper", "socket");
	r = test_confined(SANDBOX_NET_HELPER, NULL, NULL, body_tiocsti);
	test_expect_trap(&r, "net-helper", "ioctl");
}

/* Off: nothing is installed, the same call goes through. */
static void test_off(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_init(false, "test", TEST_STATUS, NULL) < 0 || sandbox_enter(SANDBOX_VCPU, NULL) < 0)
			_exit(99);
		_exit(body_personality() >= 0 ? 0 : 1);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vcpu),
		cmocka_unit_test(test_evloop),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_main),
		cmocka_unit_test(test_net_helper),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
