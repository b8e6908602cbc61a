/*
 * api_server: the control API's socket and thread (see api.h). One thread
 * polls the listening socket, a stop eventfd and up to API_MAX_CONNS
 * clients; each request is answered in order on its connection. Sockets are
 * non-blocking and answers wait in a per-connection buffer, so a client that
 * does not read stalls only itself (and is dropped past API_MAX_PENDING).
 */
#include "api.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

/* Answers a client has not read yet; past it the client is dropped. */
#define API_MAX_PENDING (4u << 20)

struct api_client {
	int fd;
	struct api_conn *conn;
	char *out;
	size_t out_len, out_off;
	bool closing; /* close once out is written */
};

struct api_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int stop_fd;
	pthread_t thread;
	bool started;
	/* The handlers, a copy every connection points at: api_set_ops replaces
	 * them (the pre-boot ones by the running VM's) between two requests,
	 * which `lock` keeps apart. */
	struct api_ops ops;
	pthread_mutex_t lock;
	struct api_client clients[API_MAX_CONNS];
};

struct api_server *api_open(const char *path, char *err, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, n, "--api-sock: '%.200s' is empty or longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return NULL;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		/* Firecracker's rule too: never take over a path that exists (a
		 * live VM's socket, or a stale one the user should remove). */
		snprintf(err, n, "--api-sock: %.200s exists (another VM's socket, or a stale one: remove it)",
			 path);
		return NULL;
	}
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, n, "--api-sock: out of memory");
		return NULL;
	}
	for (int i = 0; i < API_MAX_CONNS; i++)
		s->clients[i].fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	strcpy(s->path, path);
	strcpy(sa.sun_path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->listen_fd < 0 || s->stop_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, n, "--api-sock: %.200s: %s", path, strerror(errno));
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		if (s->stop_fd >= 0)
			close(s->stop_fd);
		free(s);
		return NULL;
	}
	if (listen(s->listen_fd, API_MAX_CONNS) < 0) {
		snprintf(err, n, "--api-sock: listen on %.200s: %s", path, strerror(errno));
		unlink(path);
		close(s->listen_fd);
		close(s->stop_fd);
		free(s);
		return NULL;
	}
	return s;
}

static void api_drop(struct api_client *c)
{
	close(c->fd);
	api_conn_free(c->conn);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void api_accept(struct api_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct api_client *c = &s->clients[i];
		if (c->fd >= 0)
			continue;
		c->conn = api_conn_new(&s->ops);
		if (!c->conn)
			break;
		c->fd = fd;
		return;
	}
	/* Every slot taken: say so, and close. */
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nServer: hvmm\r\nConnection: close\r\n"
				   "Content-Type: application/json\r\nContent-Length: 56\r\n\r\n"
				   "{\"fault_message\":\"too many connections to the API (16)\"}";
	_Static_assert(sizeof("{\"fault_message\":\"too many connections to the API (16)\"}") - 1 == 56,
		       "Content-Length");
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
}

static void api_read(struct api_server *s, struct api_client *c)
{
	char buf[4096];
	/* At most 64 KiB per round: a client that never stops sending must
	 * not keep the thread from the others. */
	for (int round = 0; round < 16; round++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* the client is gone (or closed its side): answer what is left, then close */
			c->closing = true;
			return;
		}
		pthread_mutex_lock(&s->lock);
		int fr = api_conn_feed(c->conn, buf, (size_t)n, &c->out, &c->out_len);
		pthread_mutex_unlock(&s->lock);
		if (fr < 0) {
			c->closing = true;
			return;
		}
		if (c->out_len - c->out_off > API_MAX_PENDING) {
			c->closing = true;
			c->out_len = c->out_off; /* nothing more for a client that does not read */
			return;
		}
	}
}

static void api_write(struct api_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			c->closing = true;
			c->out_off = c->out_len;
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
}

static void api_serve(struct api_server *s)
{
	for (;;) {
		struct pollfd pf[API_MAX_CONNS + 2];
		int idx[API_MAX_CONNS + 2];
		int n = 0;
		pf[n] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		idx[n++] = -1;
		pf[n] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		idx[n++] = -2;
		for (int i = 0; i < API_MAX_CONNS; i++) {
			struct api_client *c = &s->clients[i];
			if (c->fd < 0)
				continue;
			short ev = c->out_off < c->out_len ? POLLOUT : 0;
			if (!c->closing)
				ev |= POLLIN;
			pf[n] = (struct pollfd){ .fd = c->fd, .events = ev };
			idx[n++] = i;
		}
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			util_err("api: poll: %s", strerror(errno));
			return;
		}
		if (pf[0].revents)
			return;
		if (pf[1].revents & POLLIN)
			api_accept(s);
		for (int k = 2; k < n; k++) {
			struct api_client *c = &s->clients[idx[k]];
			if (pf[k].revents & (POLLIN | POLLHUP | POLLERR))
				api_read(s, c);
			if (c->out_off < c->out_len)
				api_write(c);
			if (c->closing && c->out_off >= c->out_len)
				api_drop(c);
		}
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	pthread_setname_np(pthread_self(), "hvmm-api");
	/* This thread's first allocation picks its malloc arena, which may
	 * look at the CPUs (sched_getaffinity): before the filter. */
	void *volatile first = malloc(64);
	free(first);
	int sr = sandbox_enter(SANDBOX_API, NULL);
	if (sr < 0)
		util_err("api: seccomp: %s (the API is closed)", strerror(-sr));
	else
		api_serve(s);
	/* The socket file goes here, not in api_close: the main thread's
	 * seccomp list has no unlink by then. */
	unlink(s->path);
	return NULL;
}

void api_set_ops(struct api_server *s, const struct api_ops *ops)
{
	pthread_mutex_lock(&s->lock);
	s->ops = *ops;
	pthread_mutex_unlock(&s->lock);
}

void api_set_ops_waiting(struct api_server *s, const struct api_ops *ops)
{
	s->ops = *ops; /* the answer's mutex orders this before the thread's next read */
}

int api_start(struct api_server *s, const struct api_ops *ops)
{
	s->ops = *ops;
	int r = pthread_create(&s->thread, NULL, api_thread, s);
	if (r)
		return -r;
	s->started = true;
	return 0;
}

void api_close(struct api_server *s)
{
	if (!s)
		return;
	if (s->started) {
		uint64_t one = 1;
		if (write(s->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			util_err("api: cannot signal stop: %s", strerror(errno));
		pthread_join(s->thread, NULL);
	}
	for (int i = 0; i < API_MAX_CONNS; i++)
		if (s->clients[i].fd >= 0)
			api_drop(&s->clients[i]);
	close(s->listen_fd);
	close(s->stop_fd);
	if (!s->started)
		unlink(s->path); /* else its thread did */
	free(s);
}
