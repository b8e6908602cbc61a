/*
 * The seccomp filters' price per system call, without KVM: a child process
 * makes N ioctl(-1, KVM_RUN) calls (the vCPU's one call per exit; the bad fd
 * fails with EBADF after the filter let it through) and N read(-1) calls,
 * unconfined and under the vCPU thread's list (src/sandbox.c), and prints
 * nanoseconds per call for each. Usage: seccomp_syscall [N]
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

static double bench_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* In a child: the filter cannot be taken off again. Prints "ioctl read". */
static void bench_child(long n, int confine)
{
	if (confine && (sandbox_init(true, "bench", 10, NULL) < 0 ||
			sandbox_enter(SANDBOX_VCPU, NULL) < 0)) {
		fprintf(stderr, "seccomp_syscall: cannot install the filter\n");
		syscall(SYS_exit_group, 1);
	}
	char c;
	double t0 = bench_ns();
	for (long i = 0; i < n; i++)
		if (ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
			syscall(SYS_exit_group, 2);
	double t1 = bench_ns();
	for (long i = 0; i < n; i++)
		if (read(-1, &c, 1) != -1)
			syscall(SYS_exit_group, 2);
	double t2 = bench_ns();
	printf("%.1f %.1f\n", (t1 - t0) / (double)n, (t2 - t1) / (double)n);
	fflush(stdout);
	syscall(SYS_exit_group, 0);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	if (n <= 0) {
		fprintf(stderr, "usage: seccomp_syscall [N]\n");
		return 2;
	}
	puts("mode ioctl(KVM_RUN)_ns read_ns");
	for (int round = 0; round < 3; round++) {
		for (int confine = 0; confine < 2; confine++) {
			printf("%s ", confine ? "filtered" : "unconfined");
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0)
				bench_child(n, confine);
			int ws;
			if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws))
				return 1;
		}
	}
	return 0;
}
