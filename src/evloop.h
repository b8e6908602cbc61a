/*
 * evloop: the device back ends' thread. One epoll loop owns every device fd
 * (ioeventfds, io_uring completions, network sockets, console input), so a
 * virtqueue is processed here and never on a vCPU thread: a guest notify
 * costs the vCPU at most the eventfd write, and with ioeventfd not even an
 * exit to hvmm.
 */
#ifndef HVMM_EVLOOP_H
#define HVMM_EVLOOP_H

#include <stdint.h>

struct vm;
struct evloop;

/* events: EPOLLIN/EPOLLOUT... as returned by epoll. */
typedef void (*evloop_fn)(void *opaque, uint32_t events);

/* Before devices are created. 0 or -errno. */
int evloop_init(struct vm *vm);
/* Watch fd (level-triggered) for `events`; fn runs on the loop thread. Any
 * time, any thread. 0 or -errno (-EINVAL without a loop: l NULL). The loop
 * is a device's handle (dev_env's loop): it never needs the VM. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque);
int evloop_mod(struct evloop *l, int fd, uint32_t events);
int evloop_del(struct evloop *l, int fd);
/* Start the thread (vm_run, before the vCPUs). 0 or -errno. */
int evloop_start(struct vm *vm);
/* Park the thread between two callbacks and return once it is parked (a
 * pause: no device touches guest memory until evloop_resume). Another
 * thread only. 0 or -errno. */
int evloop_pause(struct vm *vm);
void evloop_resume(struct vm *vm);
/* Stop and join the thread (after the vCPUs are joined); free. */
void evloop_stop(struct vm *vm);
void evloop_destroy(struct vm *vm);

#endif
