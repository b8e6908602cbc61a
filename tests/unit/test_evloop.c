/*
 * Unit tests for evloop.c: callbacks run on the loop thread for readable fds,
 * add/mod/del from other threads, del waits out a running callback, stop
 * joins the thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evloop.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"

static struct vm vm;

struct counter {
	int fd;
	_Atomic unsigned calls;
	_Atomic uint64_t total;
	pthread_t thread;
	_Atomic bool slow; /* sleep inside the callback */
	_Atomic bool in_cb;
};

static void on_event(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	/* (no cmocka asserts here: this is the loop thread) */
	if (!(events & EPOLLIN))
		return;
	c->in_cb = true;
	c->thread = pthread_self();
	uint64_t n;
	if (read(c->fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		c->total += n;
	if (c->slow)
		usleep(50000);
	c->calls++;
	c->in_cb = false;
}

static void kick(int fd, uint64_t n)
{
	assert_int_equal(write(fd, &n, sizeof(n)), sizeof(n));
}

/* Wait (up to 2 s) until cond holds. */
#define WAIT_FOR(cond)                                                        \
	do {                                                                  \
		for (int _i = 0; _i < 2000 && !(cond); _i++)                  \
			usleep(1000);                                         \
		assert_true(cond);                                            \
	} while (0)

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	assert_int_equal(evloop_init(&vm), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	evloop_destroy(&vm);
	assert_null(vm.evloop);
	fake_vm_free(&vm);
	return 0;
}

static void test_callbacks_on_loop_thread(void **state)
{
	(void)state;
	struct counter a = { .fd = eventfd(0, EFD_NONBLOCK) }, b = { .fd = eventfd(0, EFD_NONBLOCK) };
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, on_event, &a), 0);
	kick(a.fd, 3); /* before the start: delivered once it runs */
	assert_int_equal(evloop_start(&vm), 0);
	WAIT_FOR(a.total == 3);
	assert_false(pthread_equal(a.thread, pthread_self()));
	/* added while running, from this thread */
	assert_int_equal(evloop_add(vm.evloop, b.fd, EPOLLIN, on_event, &b), 0);
	kick(b.fd, 5);
	kick(a.fd, 1);
	WAIT_FOR(b.total == 5 && a.total == 4);
	assert_true(pthread_equal(a.thread, b.thread));
	/* mod: stop listening, events stay queued in the fd */
	assert_int_equal(evloop_mod(vm.evloop, a.fd, 0), 0);
	unsigned calls = a.calls;
	kick(a.fd, 7);
	usleep(20000);
	assert_int_equal(a.calls, calls);
	assert_int_equal(evloop_mod(vm.evloop, a.fd, EPOLLIN), 0);
	WAIT_FOR(a.total == 11);
	/* del: no more callbacks */
	assert_int_equal(evloop_del(vm.evloop, b.fd), 0);
	calls = b.calls;
	kick(b.fd, 1);
	usleep(20000);
	assert_int_equal(b.calls, calls);
	evloop_stop(&vm);
	evloop_stop(&vm); /* twice is fine */
	assert_int_equal(evloop_del(vm.evloop, a.fd), 0);
	close(a.fd);
	close(b.fd);
}

static void test_errors(void **state)
{
	(void)state;
	struct counter a = { .fd = eventfd(0, EFD_NONBLOCK) };
	assert_int_equal(evloop_add(vm.evloop, -1, EPOLLIN, on_event, &a), -EINVAL);
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, NULL, &a), -EINVAL);
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, on_event, &a), 0);
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, on_event, &a), -EEXIST);
	assert_int_equal(evloop_mod(vm.evloop, 12345, EPOLLIN), -ENOENT);
	assert_int_equal(evloop_del(vm.evloop, 12345), -ENOENT);
	assert_int_equal(evloop_del(vm.evloop, a.fd), 0);
	assert_int_equal(evloop_del(vm.evloop, a.fd), -ENOENT);
	close(a.fd);
	/* no loop at all */
	struct vm none;
	fake_vm_init(&none);
	assert_int_equal(evloop_add(none.evloop, 0, EPOLLIN, on_event, &a), -EINVAL);
	assert_int_equal(evloop_start(&none), -EINVAL);
	evloop_stop(&none);
	evloop_destroy(&none);
	fake_vm_free(&none);
}

/* A callback deleting itself and another watch from the loop thread. */
struct pair {
	struct counter c[2];
};

static void on_event_del_both(void *opaque, uint32_t events)
{
	struct pair *p = opaque;
	(void)events;
	p->c[0].calls++;
	evloop_del(vm.evloop, p->c[0].fd);
	evloop_del(vm.evloop, p->c[1].fd);
}

static void test_del_from_callback(void **state)
{
	(void)state;
	static struct pair p;
	memset(&p, 0, sizeof(p));
	p.c[0].fd = eventfd(0, EFD_NONBLOCK);
	p.c[1].fd = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(evloop_add(vm.evloop, p.c[0].fd, EPOLLIN, on_event_del_both, &p), 0);
	assert_int_equal(evloop_add(vm.evloop, p.c[1].fd, EPOLLIN, on_event, &p.c[1]), 0);
	/* both ready in the same batch: whichever runs first deletes the other */
	kick(p.c[0].fd, 1);
	kick(p.c[1].fd, 1);
	assert_int_equal(evloop_start(&vm), 0);
	WAIT_FOR(p.c[0].calls == 1);
	usleep(20000);
	/* level-triggered and never read, yet not called again: it is gone */
	assert_int_equal(p.c[0].calls, 1);
	assert_true(p.c[1].calls <= 1);
	evloop_stop(&vm);
	close(p.c[0].fd);
	close(p.c[1].fd);
}

static void test_del_waits_for_callback(void **state)
{
	(void)state;
	struct counter a = { .fd = eventfd(0, EFD_NONBLOCK) };
	a.slow = true;
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, on_event, &a), 0);
	assert_int_equal(evloop_start(&vm), 0);
	kick(a.fd, 1);
	WAIT_FOR(a.in_cb);
	/* the callback sleeps 50 ms; del must not return while it runs */
	assert_int_equal(evloop_del(vm.evloop, a.fd), 0);
	assert_false(a.in_cb);
	assert_int_equal(a.calls, 1);
	evloop_stop(&vm);
	close(a.fd);
}

static void test_stop_without_start(void **state)
{
	(void)state;
	evloop_stop(&vm); /* never started: nothing to join */
	struct counter a = { .fd = eventfd(0, EFD_NONBLOCK) };
	assert_int_equal(evloop_add(vm.evloop, a.fd, EPOLLIN, on_event, &a), 0);
	/* destroy (teardown) frees the live watch */
	close(a.fd);
}

int main(void)
{
	util_mark_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_callbacks_on_loop_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_waits_for_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_without_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
