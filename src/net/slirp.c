/*
 * net_slirp_start/stop: hvmm's side of the slirp helper process (see net.h
 * for why libslirp lives in its own process). The helper is hvmm's child:
 * it exits when its socket reports EOF (hvmm closed it or died), and hvmm
 * reaps it by PID at tear-down. With keep= (net.h) it may outlive hvmm after
 * a snapshot; net_slirp_attach is a restored hvmm's way back to it.
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "ring.h"

extern char **environ;

/* How long the helper may take to bind its ports and say it is ready. */
#define NET_SLIRP_START_MS 10000

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

static void net_slirp_close(struct net_slirp *s)
{
	if (s->ctl >= 0)
		close(s->ctl);
	if (s->shm)
		munmap(s->shm, NET_SHM_SIZE);
	if (s->txbell >= 0)
		close(s->txbell);
	if (s->rxbell >= 0)
		close(s->rxbell);
	s->ctl = s->txbell = s->rxbell = -1;
	s->shm = NULL;
}

void net_slirp_stop(struct net_slirp *s)
{
	if (s->ctl >= 0)
		close(s->ctl); /* EOF: the helper exits, or (kept) waits for a restore */
	s->ctl = -1;
	/* A kept helper is not waited for, let alone killed: outliving us is
	 * its job now. (If the VM ran on after the snapshot it exits at once,
	 * and whoever reaps orphans reaps it once hvmm is gone.) */
	if (s->pid > 0 && !s->kept) {
		int status;
		net_slirp_reap(s->pid, &status);
	}
	s->pid = 0;
	net_slirp_close(s);
}

/* The rings: a memfd sealed at its size, so the helper can neither shrink it
 * (a SIGBUS in hvmm) nor grow it; initialised before the helper sees it. */
static int net_slirp_rings(struct net_slirp *s, int *memfd)
{
	int fd = memfd_create("hvmm-net-rings", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)NET_SHM_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	void *p = mmap(NULL, NET_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return -e;
	}
	s->shm = p;
	s->shm->magic = NET_RING_MAGIC;
	s->shm->version = NET_RING_VERSION;
	s->shm->slots = NET_RING_SLOTS;
	/* hvmm starts asleep on rx: the helper rings for the first frame */
	atomic_store(&s->shm->ctl[NET_RING_RX].sleeping, 1);
	s->txbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->rxbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->txbell < 0 || s->rxbell < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*memfd = fd;
	return 0;
}

/* The ready message: NET_SLIRP_READY, with keep= " NAME". 0, or -1 for
 * anything else (an error message, a malformed name). */
static int net_slirp_ready(const char *msg, char name[NET_SLIRP_NAME_LEN])
{
	size_t n = strlen(NET_SLIRP_READY);
	name[0] = 0;
	if (strncmp(msg, NET_SLIRP_READY, n) != 0)
		return -1;
	if (msg[n] == 0)
		return 0;
	if (msg[n] != ' ' || !net_slirp_name_ok(msg + n + 1))
		return -1;
	strcpy(name, msg + n + 1); /* net_slirp_name_ok: it fits */
	return 0;
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

int net_slirp_start(const char *spec, struct net_slirp *out, char *err, size_t errlen)
{
	struct net_slirp s = { .ctl = -1, .txbell = -1, .rxbell = -1 };
	char path[PATH_MAX];
	int r = net_slirp_path(path, sizeof(path));
	if (r < 0)
		return net_slirp_fail(r, err, errlen, "cannot locate %s: %s", NET_SLIRP_PROG, strerror(-r));
	if (access(path, X_OK) < 0) {
		r = -errno;
		return net_slirp_fail(r, err, errlen, "slirp helper %s: %s (it is built with hvmm by make)",
				      path, strerror(-r));
	}

	int memfd = -1;
	r = net_slirp_rings(&s, &memfd);
	if (r < 0) {
		net_slirp_close(&s);
		return net_slirp_fail(r, err, errlen, "net rings: %s", strerror(-r));
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		close(memfd);
		net_slirp_close(&s);
		return net_slirp_fail(r, err, errlen, "socketpair: %s", strerror(-r));
	}
	s.ctl = sv[0];

	/* The child's fds 3-6, first copied above 16 so that no dup2 below
	 * overwrites a source still to be copied (any of them could be fd 3-6). */
	int src[4] = { sv[1], memfd, s.txbell, s.rxbell };
	int dst[4] = { NET_SLIRP_FD, NET_RING_SHM_FD, NET_RING_TXBELL_FD, NET_RING_RXBELL_FD };
	int high[4] = { -1, -1, -1, -1 };
	for (int i = 0; i < 4 && r == 0; i++)
		if ((high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 16)) < 0)
			r = -errno;
	close(sv[1]);
	close(memfd);

	/* posix_spawn rather than fork: hvmm may already have threads, and the
	 * child must only exec. Its fds 3-6 are the socket, the memfd and the
	 * doorbells (dup2 clears CLOEXEC); every other hvmm fd is close-on-exec.
	 * Its stdin is /dev/null, since hvmm's may be the guest's raw terminal;
	 * the signal mask hvmm's threads block with is cleared and every
	 * disposition reset. */
	pid_t pid = 0;
	if (r == 0) {
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t attr;
		sigset_t none, all;
		sigemptyset(&none);
		sigfillset(&all);
		posix_spawn_file_actions_init(&fa);
		for (int i = 0; i < 4; i++)
			posix_spawn_file_actions_adddup2(&fa, high[i], dst[i]);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawnattr_init(&attr);
		posix_spawnattr_setsigmask(&attr, &none);
		posix_spawnattr_setsigdefault(&attr, &all);
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
		char *argv[] = { path, NET_RING_ARG, (char *)spec, NULL };
		r = -posix_spawn(&pid, path, &fa, &attr, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
	}
	for (int i = 0; i < 4; i++)
		if (high[i] >= 0)
			close(high[i]);
	if (r < 0) {
		net_slirp_close(&s);
		return net_slirp_fail(r, err, errlen, "cannot start %s: %s", path, strerror(-r));
	}
	s.pid = pid;

	/* The handshake: "ready" once every hostfwd port is bound, or the
	 * helper's reason for failing. */
	char msg[256];
	struct pollfd p = { .fd = s.ctl, .events = POLLIN };
	int n = poll(&p, 1, NET_SLIRP_START_MS);
	ssize_t got = n > 0 ? recv(s.ctl, msg, sizeof(msg) - 1, 0) : -1;
	if (got > 0) {
		msg[got] = 0;
		if (net_slirp_ready(msg, s.name) == 0) {
			int fl = fcntl(s.ctl, F_GETFL);
			fcntl(s.ctl, F_SETFL, fl | O_NONBLOCK);
			*out = s;
			return 0;
		}
		size_t pre = strlen(NET_SLIRP_ERROR);
		if (strncmp(msg, NET_SLIRP_ERROR, pre) == 0)
			net_slirp_fail(-EIO, err, errlen, "%s", msg + pre);
		else
			net_slirp_fail(-EPROTO, err, errlen, "%s sent an unexpected first message",
				       NET_SLIRP_PROG);
		net_slirp_stop(&s);
		return -EIO;
	}
	close(s.ctl);
	s.ctl = -1;
	int status = 0;
	net_slirp_reap(pid, &status);
	net_slirp_close(&s);
	char how[64];
	net_slirp_describe_exit(status, how, sizeof(how));
	if (n == 0)
		return net_slirp_fail(-ETIMEDOUT, err, errlen, "%s did not start within %d s",
				      NET_SLIRP_PROG, NET_SLIRP_START_MS / 1000);
	return net_slirp_fail(-EIO, err, errlen, "%s ended before it was ready (%s)", NET_SLIRP_PROG, how);
}

/* ---- keep= ---- */

int net_slirp_keep(struct net_slirp *s)
{
	if (!s->name[0] || s->ctl < 0)
		return -EINVAL;
	/* The helper reads it before hvmm can end: the socket keeps the
	 * message after our close, and EOF comes only behind it. */
	if (send(s->ctl, NET_SLIRP_KEEP, strlen(NET_SLIRP_KEEP), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	s->kept = true;
	return 0;
}

int net_slirp_unkeep(struct net_slirp *s)
{
	if (!s->kept || s->ctl < 0)
		return 0;
	if (send(s->ctl, NET_SLIRP_UNKEEP, strlen(NET_SLIRP_UNKEEP), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	s->kept = false;
	return 0;
}

static socklen_t net_slirp_addr(const char *name, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(a->sun_path + 1, name, n); /* sun_path[0] = 0: the abstract namespace */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int net_slirp_attach(const char *name, struct net_slirp *out, char *err, size_t errlen)
{
	struct net_slirp s = { .ctl = -1, .txbell = -1, .rxbell = -1 };
	if (!net_slirp_name_ok(name))
		return net_slirp_fail(-EINVAL, err, errlen, "'%.60s' is not a slirp helper's name", name);
	struct sockaddr_un a;
	socklen_t alen = net_slirp_addr(name, &a);
	s.ctl = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s.ctl < 0)
		return net_slirp_fail(-errno, err, errlen, "socket: %s", strerror(errno));
	if (connect(s.ctl, (struct sockaddr *)&a, alen) < 0) {
		int e = errno;
		close(s.ctl);
		if (e == ECONNREFUSED || e == ENOENT)
			return net_slirp_fail(-ENOENT, err, errlen, "the slirp helper kept at the snapshot (%s) is "
					      "gone: its keep= time ran out, or it ended", name);
		return net_slirp_fail(-e, err, errlen, "cannot reach the slirp helper %s: %s", name, strerror(e));
	}
	/* Its user must be ours: an abstract name is no file with an owner. */
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(s.ctl, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != getuid()) {
		close(s.ctl);
		return net_slirp_fail(-EPERM, err, errlen, "the slirp helper %s belongs to another user", name);
	}
	int memfd = -1;
	int r = net_slirp_rings(&s, &memfd);
	if (r < 0) {
		net_slirp_close(&s);
		return net_slirp_fail(r, err, errlen, "net rings: %s", strerror(-r));
	}
	int fds[3] = { memfd, s.txbell, s.rxbell };
	union { char buf[CMSG_SPACE(sizeof(fds))]; struct cmsghdr align; } cb;
	memset(&cb, 0, sizeof(cb));
	struct iovec iov = { .iov_base = (void *)NET_SLIRP_ATTACH, .iov_len = strlen(NET_SLIRP_ATTACH) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	ssize_t sent = sendmsg(s.ctl, &m, MSG_NOSIGNAL);
	int se = errno;
	close(memfd);
	/* A helper that refuses (its hvmm still runs) answers at once and
	 * hangs up: if our message found it gone, its reason is still to be read. */
	char msg[256];
	struct pollfd p = { .fd = s.ctl, .events = POLLIN };
	int n = poll(&p, 1, sent < 0 ? 0 : NET_SLIRP_START_MS);
	ssize_t got = n > 0 ? recv(s.ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT) : -1;
	if (sent < 0 && got <= 0) {
		net_slirp_close(&s);
		return net_slirp_fail(-se, err, errlen, "handing the rings to the slirp helper %s: %s", name,
				      strerror(se));
	}
	if (got > 0) {
		msg[got] = 0;
		size_t pre = strlen(NET_SLIRP_ERROR);
		if (net_slirp_ready(msg, s.name) == 0 && strcmp(s.name, name) == 0) {
			int fl = fcntl(s.ctl, F_GETFL);
			fcntl(s.ctl, F_SETFL, fl | O_NONBLOCK);
			*out = s;
			return 0;
		}
		if (strncmp(msg, NET_SLIRP_ERROR, pre) == 0)
			r = net_slirp_fail(strstr(msg, "still runs") ? -EBUSY : -EIO, err, errlen,
					   "slirp helper %s: %s", name, msg + pre);
		else
			r = net_slirp_fail(-EPROTO, err, errlen, "slirp helper %s sent an unexpected answer", name);
	} else if (n == 0) {
		r = net_slirp_fail(-ETIMEDOUT, err, errlen, "the slirp helper %s did not answer within %d s", name,
				   NET_SLIRP_START_MS / 1000);
	} else {
		r = net_slirp_fail(-EIO, err, errlen, "the slirp helper %s hung up without an answer%s%s", name,
				   got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
	}
	net_slirp_close(&s);
	return r;
}
