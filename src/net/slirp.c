/*
 * net_slirp_start/stop: hvmm's side of the slirp helper process (see net.h
 * for why libslirp lives in its own process). The helper is hvmm's child:
 * it exits when its socket reports EOF (hvmm closed it or died), and hvmm
 * reaps it by PID at tear-down.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

extern char **environ;

/* How long the helper may take to bind its ports and say it is ready. */
#define NET_SLIRP_START_MS 10000
/* Socket buffer per direction: several hundred full frames in flight, so a burst from
 * slirp or the guest does not hit EAGAIN at once (unix sockets count each
 * frame's skb against the sender's SO_SNDBUF). */
#define NET_SLIRP_SNDBUF (1 << 20)

static int net_slirp_fail(int r, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int net_slirp_fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* $HVMM_NET_SLIRP, else hvmm-net-slirp in the directory of the running hvmm. */
static int net_slirp_path(char *path, size_t len)
{
	const char *env = getenv("HVMM_NET_SLIRP");
	if (env && *env) {
		if (strlen(env) >= len)
			return -ENAMETOOLONG;
		strcpy(path, env);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	if ((size_t)snprintf(path, len, "%s/%s", self, NET_SLIRP_PROG) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static void net_slirp_reap(pid_t pid, int *status)
{
	/* Up to 1 s for a clean exit (it sees EOF), then SIGKILL this one PID. */
	for (int i = 0; i < 100; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

void net_slirp_stop(int fd, pid_t pid)
{
	if (fd >= 0)
		close(fd);
	if (pid > 0) {
		int status;
		net_slirp_reap(pid, &status);
	}
}

static void net_slirp_describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d%s", WEXITSTATUS(status),
			 WEXITSTATUS(status) == 127 ? " (is libslirp0 installed?)" : "");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status %#x", status);
}

int net_slirp_start(const char *spec, int *fd_out, pid_t *pid_out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r = net_slirp_path(path, sizeof(path));
	if (r < 0)
		return net_slirp_fail(r, err, errlen, "cannot locate %s: %s", NET_SLIRP_PROG, strerror(-r));
	if (access(path, X_OK) < 0) {
		r = -errno;
		return net_slirp_fail(r, err, errlen, "slirp helper %s: %s (it is built with hvmm by make)",
				      path, strerror(-r));
	}

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		return net_slirp_fail(r, err, errlen, "socketpair: %s", strerror(-r));
	}
	/* Past net.core.wmem_max only with CAP_NET_ADMIN (SO_SNDBUFFORCE);
	 * otherwise the kernel caps it, which still works, with earlier drops. */
	int sndbuf = NET_SLIRP_SNDBUF;
	for (int i = 0; i < 2; i++)
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
			setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	/* posix_spawn rather than fork: hvmm may already have threads, and the
	 * child must only exec. Its fd 3 is the socket (dup2 clears CLOEXEC);
	 * every other hvmm fd is close-on-exec. Its stdin is /dev/null, since
	 * hvmm's may be the guest's raw terminal; the signal mask hvmm's threads
	 * block with is cleared and every disposition reset. */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], NET_SLIRP_FD);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *argv[] = { path, (char *)spec, NULL };
	pid_t pid;
	r = -posix_spawn(&pid, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return net_slirp_fail(r, err, errlen, "cannot start %s: %s", path, strerror(-r));
	}

	/* The handshake: "ready" once every hostfwd port is bound, or the
	 * helper's reason for failing. */
	char msg[256];
	struct pollfd p = { .fd = sv[0], .events = POLLIN };
	int n = poll(&p, 1, NET_SLIRP_START_MS);
	ssize_t got = n > 0 ? recv(sv[0], msg, sizeof(msg) - 1, 0) : -1;
	if (got > 0) {
		msg[got] = 0;
		if (strcmp(msg, NET_SLIRP_READY) == 0) {
			int fl = fcntl(sv[0], F_GETFL);
			fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
			*fd_out = sv[0];
			*pid_out = pid;
			return 0;
		}
		size_t pre = strlen(NET_SLIRP_ERROR);
		if (strncmp(msg, NET_SLIRP_ERROR, pre) == 0)
			net_slirp_fail(-EIO, err, errlen, "%s", msg + pre);
		else
			net_slirp_fail(-EPROTO, err, errlen, "%s sent an unexpected first message",
				       NET_SLIRP_PROG);
		close(sv[0]);
		net_slirp_stop(-1, pid);
		return -EIO;
	}
	close(sv[0]);
	int status = 0;
	net_slirp_reap(pid, &status);
	char how[64];
	net_slirp_describe_exit(status, how, sizeof(how));
	if (n == 0)
		return net_slirp_fail(-ETIMEDOUT, err, errlen, "%s did not start within %d s",
				      NET_SLIRP_PROG, NET_SLIRP_START_MS / 1000);
	return net_slirp_fail(-EIO, err, errlen, "%s ended before it was ready (%s)", NET_SLIRP_PROG, how);
}
