/*
 * coalesce: KVM's coalesced-I/O ring for the PCI configuration address port.
 *
 * Why only 0xcf8: it is the one hot register whose writes have no effect of
 * their own. Linux's early AGP/GART probe on AMD family 0Fh-15h CPUs reads
 * the class of all 8192 bus/slot pairs through 0xcf8/0xcfc, twice per boot;
 * with the address writes buffered each read is one exit instead of two.
 *
 * The zone has to span 0xcf8-0xcfb for the dword writes to fit, which puts
 * 0xcf9, the reset control register, inside it: a reset written there is
 * buffered too. It is applied at the vCPU's next exit of any kind (Linux
 * reads 0xcf9 first and falls back to other methods, so that comes at once),
 * and, for a guest that writes it and then halts with interrupts off, by the
 * event loop's drain timer within COALESCE_DRAIN_MS.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bus.h"
#include "coalesce.h"
#include "evloop.h"
#include "vcpu.h"
#include "vm.h"

#define COALESCE_PORT 0xcf8
#define COALESCE_LEN 4
#define COALESCE_DRAIN_MS 100

struct coalesce {
	struct kvm_coalesced_mmio_ring *ring;
	uint32_t max;         /* entries the ring page holds */
	pthread_mutex_t lock; /* one consumer at a time, so each write applies once, in order */
	int timer_fd;
	atomic_uint_fast64_t applied;
};

static void coalesce_apply(struct vm *vm, const struct kvm_coalesced_mmio *e)
{
	/* KVM only buffers writes inside the zone registered below; check anyway
	 * before handing a length to a device. */
	if (!e->len || e->len > 8)
		return;
	uint64_t val = 0;
	memcpy(&val, e->data, e->len);
	struct bus *b = e->pio ? &vm->pio : &vm->mmio;
	const struct bus_range *r = bus_find(b, e->phys_addr, e->len);
	if (r)
		r->ops->write(r->opaque, e->phys_addr - r->base, e->len, val);
}

void coalesce_drain(struct vm *vm)
{
	struct coalesce *c = vm->coalesce;
	if (!c)
		return;
	/* KVM publishes an entry before it moves `last` (release); it reuses a
	 * slot only after we move `first` past it. */
	if (__atomic_load_n(&c->ring->first, __ATOMIC_RELAXED) ==
	    __atomic_load_n(&c->ring->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&c->lock);
	uint32_t first = __atomic_load_n(&c->ring->first, __ATOMIC_RELAXED);
	uint32_t last = __atomic_load_n(&c->ring->last, __ATOMIC_ACQUIRE);
	uint64_t n = 0;
	while (first != last && first < c->max && last < c->max) {
		struct kvm_coalesced_mmio e = c->ring->coalesced_mmio[first];
		coalesce_apply(vm, &e);
		first = (first + 1) % c->max;
		__atomic_store_n(&c->ring->first, first, __ATOMIC_RELEASE);
		n++;
	}
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add(&c->applied, n);
}

uint64_t coalesce_count(struct vm *vm)
{
	return vm->coalesce ? atomic_load(&vm->coalesce->applied) : 0;
}

static void coalesce_timer(void *opaque, uint32_t events)
{
	(void)events;
	struct vm *vm = opaque;
	struct coalesce *c = vm->coalesce;
	uint64_t ticks;
	if (read(c->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* EAGAIN: nothing expired after all */
	}
	coalesce_drain(vm);
}

int coalesce_init(struct vm *vm)
{
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 || vm->ncpus < 1)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	int off = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	if (page <= 0 || off <= 0 || (long)(off + 1) * page > vm->vcpu_mmap_size)
		return 0;
	struct coalesce *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* The same page of every vCPU's mapping: vCPU 0's serves all. */
	c->ring = (struct kvm_coalesced_mmio_ring *)((char *)vm->vcpus[0]->run +
						      (size_t)off * (size_t)page);
	c->max = (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) /
			    sizeof(struct kvm_coalesced_mmio));
	pthread_mutex_init(&c->lock, NULL);
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->timer_fd < 0) {
		int e = errno;
		free(c);
		return -e;
	}
	struct itimerspec its = { .it_interval = { 0, COALESCE_DRAIN_MS * 1000000L },
				  .it_value = { 0, COALESCE_DRAIN_MS * 1000000L } };
	struct kvm_coalesced_mmio_zone z = { .addr = COALESCE_PORT, .size = COALESCE_LEN, .pio = 1 };
	if (ioctl(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) < 0) {
		/* Only an optimisation: without it every write exits, as before. */
		close(c->timer_fd);
		free(c);
		return 0;
	}
	int r = timerfd_settime(c->timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
	vm->coalesce = c;
	if (!r)
		r = evloop_add(vm->evloop, c->timer_fd, EPOLLIN, coalesce_timer, vm);
	if (r < 0) {
		coalesce_destroy(vm);
		return r;
	}
	return 0;
}

void coalesce_destroy(struct vm *vm)
{
	struct coalesce *c = vm->coalesce;
	if (!c)
		return;
	evloop_del(vm->evloop, c->timer_fd);
	close(c->timer_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
	vm->coalesce = NULL;
}
