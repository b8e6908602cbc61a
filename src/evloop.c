/*
 * evloop: one epoll thread for every device back end (see evloop.h).
 *
 * Lifetime of a watch: evloop_del() takes the fd out of epoll and marks the
 * watch dead, but an epoll_wait() already under way may still hand it back,
 * so dead watches wait in a graveyard that the loop thread empties after
 * each batch (by then no event of the batch can name them). A callback runs
 * under `dispatch`; evloop_del() from another thread takes it too, so once
 * it returns the callback is neither running nor ever called again and the
 * caller may free the callback's state. (Hence: never call evloop_del()
 * from another thread while holding a lock the callback takes.)
 */
#include "evloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"
#include "vm.h"

#define EVLOOP_BATCH 32

struct evloop_watch {
	int fd;
	uint32_t events;
	evloop_fn fn;
	void *opaque;
	bool dead;
	struct evloop_watch *next;
};

struct evloop {
	int epfd;
	int stopfd; /* eventfd: written by evloop_stop() */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;     /* the lists below */
	pthread_mutex_t dispatch; /* held while a callback runs */
	struct evloop_watch *live, *graveyard;
	/* A pause: `pausefd` wakes the loop, which parks at the top of its next
	 * round while pause_req is set, and says so in `parked`. */
	int pausefd;
	pthread_mutex_t park_mu;
	pthread_cond_t park_cv;
	bool pause_req, parked, stopping;
	struct vm *vm; /* stopped if the loop cannot confine itself */
};

int evloop_init(struct vm *vm)
{
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->stopfd < 0) {
		int e = -errno;
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->stopfd >= 0)
			close(l->stopfd);
		free(l);
		return e;
	}
	/* data.ptr NULL marks the stop fd */
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &ev) < 0) {
		int e = -errno;
		close(l->epfd);
		close(l->stopfd);
		free(l);
		return e;
	}
	l->pausefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event pev = { .events = EPOLLIN, .data.ptr = &l->pausefd };
	if (l->pausefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->pausefd, &pev) < 0) {
		int e = -errno;
		if (l->pausefd >= 0)
			close(l->pausefd);
		close(l->epfd);
		close(l->stopfd);
		free(l);
		return e;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->dispatch, NULL);
	pthread_mutex_init(&l->park_mu, NULL);
	pthread_cond_init(&l->park_cv, NULL);
	l->vm = vm;
	vm->evloop = l;
	return 0;
}

/* Set by the loop thread itself before its first callback: `started` and
 * `thread` are written by the starting thread after pthread_create returns,
 * so a callback that runs before that (a busy host) could not trust them —
 * and an evloop_del() from it would then lock `dispatch` twice and hang. */
static _Thread_local const struct evloop *evloop_self;

static bool evloop_on_thread(const struct evloop *l)
{
	return evloop_self == l;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	if (!l || fd < 0 || !fn)
		return -EINVAL;
	struct evloop_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct evloop_watch){ .fd = fd, .events = events, .fn = fn, .opaque = opaque };
	pthread_mutex_lock(&l->lock);
	struct epoll_event ev = { .events = events, .data.ptr = w };
	int r = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
	if (r == 0) {
		w->next = l->live;
		l->live = w;
	}
	pthread_mutex_unlock(&l->lock);
	if (r < 0)
		free(w);
	return r;
}

static struct evloop_watch *evloop_find(struct evloop *l, int fd, struct evloop_watch ***link)
{
	for (struct evloop_watch **p = &l->live; *p; p = &(*p)->next)
		if ((*p)->fd == fd) {
			if (link)
				*link = p;
			return *p;
		}
	return NULL;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	if (!l)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	struct evloop_watch *w = evloop_find(l, fd, NULL);
	int r = -ENOENT;
	if (w) {
		struct epoll_event ev = { .events = events, .data.ptr = w };
		r = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
		if (r == 0)
			w->events = events;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

int evloop_del(struct evloop *l, int fd)
{
	if (!l)
		return -EINVAL;
	/* Off the loop thread: wait out a callback that may be running now. */
	bool other = !evloop_on_thread(l);
	if (other)
		pthread_mutex_lock(&l->dispatch);
	pthread_mutex_lock(&l->lock);
	struct evloop_watch **link, *w = evloop_find(l, fd, &link);
	int r = -ENOENT;
	if (w) {
		/* The fd may already be closed (and epoll forgot it): still drop the watch. */
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		*link = w->next;
		w->dead = true;
		w->next = l->graveyard;
		l->graveyard = w;
		r = 0;
	}
	pthread_mutex_unlock(&l->lock);
	if (other)
		pthread_mutex_unlock(&l->dispatch);
	return r;
}

static void evloop_free_list(struct evloop_watch *w)
{
	while (w) {
		struct evloop_watch *n = w->next;
		free(w);
		w = n;
	}
}

/* Where a pause holds the loop: after epoll_wait, before any callback. */
static void evloop_park_point(struct evloop *l)
{
	pthread_mutex_lock(&l->park_mu);
	while (l->pause_req && !l->stopping) {
		l->parked = true;
		pthread_cond_broadcast(&l->park_cv);
		pthread_cond_wait(&l->park_cv, &l->park_mu);
	}
	l->parked = false;
	pthread_mutex_unlock(&l->park_mu);
}

int evloop_pause(struct vm *vm)
{
	struct evloop *l = vm->evloop;
	if (!l || !l->started)
		return 0;
	pthread_mutex_lock(&l->park_mu);
	l->pause_req = true;
	pthread_mutex_unlock(&l->park_mu);
	uint64_t one = 1;
	if (write(l->pausefd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
		int e = -errno;
		evloop_resume(vm);
		return e;
	}
	pthread_mutex_lock(&l->park_mu);
	while (!l->parked && !l->stopping)
		pthread_cond_wait(&l->park_cv, &l->park_mu);
	pthread_mutex_unlock(&l->park_mu);
	return 0;
}

void evloop_resume(struct vm *vm)
{
	struct evloop *l = vm->evloop;
	if (!l)
		return;
	pthread_mutex_lock(&l->park_mu);
	l->pause_req = false;
	pthread_cond_broadcast(&l->park_cv);
	pthread_mutex_unlock(&l->park_mu);
}

static void *evloop_thread(void *arg)
{
	struct evloop *l = arg;
	pthread_setname_np(pthread_self(), "hvmm-evloop");
	evloop_self = l;
	int sr = sandbox_enter(SANDBOX_EVLOOP, NULL);
	if (sr < 0) {
		vm_stop(l->vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "event loop: seccomp: %s", strerror(-sr));
		return NULL;
	}
	struct epoll_event ev[EVLOOP_BATCH];
	for (;;) {
		int n = epoll_wait(l->epfd, ev, EVLOOP_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			util_err("event loop: epoll_wait: %s", strerror(errno));
			break;
		}
		evloop_park_point(l);
		/* Migrated: the guest's devices run in another process now; a
		 * kick still pending here must not be served on this side. */
		if (atomic_load(&l->vm->handed_over))
			break;
		bool stop = false;
		for (int i = 0; i < n; i++) {
			struct evloop_watch *w = ev[i].data.ptr;
			if (!w) {
				stop = true;
				continue;
			}
			if ((void *)w == &l->pausefd) { /* its work is done: the loop came round */
				uint64_t v;
				if (read(l->pausefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					util_err("event loop: pause eventfd: %s", strerror(errno));
				continue;
			}
			pthread_mutex_lock(&l->dispatch);
			if (!w->dead)
				w->fn(w->opaque, ev[i].events);
			pthread_mutex_unlock(&l->dispatch);
		}
		pthread_mutex_lock(&l->lock);
		struct evloop_watch *dead = l->graveyard;
		l->graveyard = NULL;
		pthread_mutex_unlock(&l->lock);
		evloop_free_list(dead);
		if (stop)
			break;
	}
	return NULL;
}

int evloop_start(struct vm *vm)
{
	struct evloop *l = vm->evloop;
	if (!l)
		return -EINVAL;
	if (l->started)
		return 0;
	/* The loop must not take the signals the main thread waits for: the
	 * caller (vm_run) has blocked them already, and threads inherit that. */
	int r = pthread_create(&l->thread, NULL, evloop_thread, l);
	if (r)
		return -r;
	l->started = true;
	return 0;
}

void evloop_stop(struct vm *vm)
{
	struct evloop *l = vm->evloop;
	if (!l || !l->started)
		return;
	pthread_mutex_lock(&l->park_mu);
	l->stopping = true; /* a parked loop goes on, to its end */
	pthread_cond_broadcast(&l->park_cv);
	pthread_mutex_unlock(&l->park_mu);
	uint64_t one = 1;
	if (write(l->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		util_err("event loop: cannot signal stop: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	l->started = false;
}

void evloop_destroy(struct vm *vm)
{
	struct evloop *l = vm->evloop;
	if (!l)
		return;
	evloop_stop(vm);
	evloop_free_list(l->live);
	evloop_free_list(l->graveyard);
	close(l->epfd);
	close(l->stopfd);
	close(l->pausefd);
	pthread_mutex_destroy(&l->park_mu);
	pthread_cond_destroy(&l->park_cv);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->dispatch);
	free(l);
	vm->evloop = NULL;
}
