#include "hyperv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "evloop.h"
#include "irq.h"
#include "memory.h"
#include "snapshot.h"
#include "vm.h"

/* Message slot layout (TLFS HV_MESSAGE): the type at 0 (0 = slot free), the
 * payload size at 4, flags at 5 (bit 0: msg_pending), sender at 8, payload
 * from 16. */
#define HYPERV_MSG_TYPE_OFF 0
#define HYPERV_MSG_SIZE_OFF 4
#define HYPERV_MSG_FLAGS_OFF 5
#define HYPERV_MSG_PAYLOAD_OFF 16
#define HYPERV_MSG_PENDING 1u
/* HvPostMessage's input: connection id, reserved, type, size, payload. */
#define HYPERV_POST_INPUT_SIZE (16 + HYPERV_MSG_PAYLOAD_MAX)

/* What KVM_EXIT_HYPERV_SYNIC last said about one vCPU's SynIC. */
struct hyperv_synic {
	uint64_t control, evt_page, msg_page;
};

struct hyperv_route {
	bool used;
	uint32_t vp;
	uint8_t sint;
	int gsi; /* allocated on the slot's first use and kept: GSIs are never freed */
	uint64_t raised;
};

struct hyperv_msg_conn {
	bool used;
	uint32_t id;
	int route;
	bool staged; /* msg waits for its slot to be freed */
	uint8_t msg[HYPERV_MSG_SIZE];
};

struct hyperv_evt_conn {
	bool used;
	uint32_t id;
	int route;
};

struct hyperv {
	struct vm *vm;
	pthread_mutex_t lock; /* everything below */
	int timerfd;          /* the retry timer; -1 without KVM (unit tests) */
	bool timer_armed;
	struct hyperv_synic synic[VM_MAX_CPUS];
	struct hyperv_route routes[HYPERV_MAX_ROUTES];
	struct hyperv_msg_conn msg[HYPERV_MAX_CONNS];
	struct hyperv_evt_conn evt[HYPERV_MAX_CONNS];
};

uint64_t hyperv_synic_page(uint64_t control, uint64_t page_msr)
{
	if (!(control & 1) || !(page_msr & 1))
		return UINT64_MAX;
	return page_msr & ~(uint64_t)(HYPERV_PAGE_SIZE - 1);
}

/* The host address of vCPU vp's message or event-flags page, if it is
 * enabled and wholly in RAM. Called with the lock held. */
static uint8_t *hyperv_page(struct hyperv *h, unsigned vp, bool msg)
{
	if (vp >= VM_MAX_CPUS)
		return NULL;
	const struct hyperv_synic *s = &h->synic[vp];
	uint64_t gpa = hyperv_synic_page(s->control, msg ? s->msg_page : s->evt_page);
	return gpa == UINT64_MAX ? NULL : mem_ptr(&h->vm->mem, gpa, HYPERV_PAGE_SIZE);
}

static void hyperv_timer_set(struct hyperv *h, bool on)
{
	if (h->timerfd < 0 || h->timer_armed == on)
		return;
	const long ns = HYPERV_RETRY_MS * 1000000L;
	struct itimerspec its = { 0 };
	if (on)
		its.it_value.tv_nsec = its.it_interval.tv_nsec = ns;
	if (timerfd_settime(h->timerfd, 0, &its, NULL) == 0)
		h->timer_armed = on;
}

/* ---- SINT routes (lock held) ---- */

static bool hyperv_route_ok(const struct hyperv *h, int route)
{
	return route >= 0 && route < HYPERV_MAX_ROUTES && h->routes[route].used;
}

static int hyperv_route_create_locked(struct hyperv *h, unsigned vp, unsigned sint)
{
	if (vp >= (unsigned)h->vm->cfg.ncpus || vp >= VM_MAX_CPUS || sint >= HYPERV_SINT_COUNT)
		return -EINVAL;
	int i = 0;
	while (i < HYPERV_MAX_ROUTES && h->routes[i].used)
		i++;
	if (i == HYPERV_MAX_ROUTES)
		return -ENOSPC;
	struct hyperv_route *r = &h->routes[i];
	if (r->gsi < 0) {
		int gsi = irq_msi_alloc(h->vm);
		if (gsi < 0)
			return gsi;
		r->gsi = gsi;
	}
	int e = irq_hv_sint_route(h->vm, (unsigned)r->gsi, vp, sint);
	if (e < 0)
		return e;
	r->used = true;
	r->vp = vp;
	r->sint = (uint8_t)sint;
	r->raised = 0;
	return i;
}

static void hyperv_route_destroy_locked(struct hyperv *h, int route)
{
	if (!hyperv_route_ok(h, route))
		return;
	irq_msi_unroute(h->vm, (unsigned)h->routes[route].gsi);
	h->routes[route].used = false;
}

static int hyperv_route_raise_locked(struct hyperv *h, int route)
{
	if (!hyperv_route_ok(h, route))
		return -EINVAL;
	h->routes[route].raised++;
	return irq_gsi_raise(h->vm, (unsigned)h->routes[route].gsi);
}

int hyperv_route_create(struct hyperv *h, unsigned vp, unsigned sint)
{
	if (!h)
		return -ENODEV;
	pthread_mutex_lock(&h->lock);
	int r = hyperv_route_create_locked(h, vp, sint);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void hyperv_route_destroy(struct hyperv *h, int route)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	hyperv_route_destroy_locked(h, route);
	pthread_mutex_unlock(&h->lock);
}

int hyperv_route_raise(struct hyperv *h, int route)
{
	if (!h)
		return -ENODEV;
	pthread_mutex_lock(&h->lock);
	int r = hyperv_route_raise_locked(h, route);
	pthread_mutex_unlock(&h->lock);
	return r;
}

uint64_t hyperv_route_raised(struct hyperv *h, int route)
{
	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	uint64_t n = hyperv_route_ok(h, route) ? h->routes[route].raised : 0;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* ---- messages (lock held) ---- */

/*
 * Put c's message into its slot: 0 (written, SINT raised), -EAGAIN (the
 * guest still owns the slot: msg_pending is set so it writes EOM once it
 * has emptied it) or -ENXIO (no message page in RAM). The guest frees a slot
 * by zeroing its type, so the type is read before and written after the
 * rest: the guest never sees a typed slot with a half-written body.
 */
static int hyperv_msg_deliver(struct hyperv *h, struct hyperv_msg_conn *c)
{
	const struct hyperv_route *r = &h->routes[c->route];
	uint8_t *page = hyperv_page(h, r->vp, true);
	if (!page)
		return -ENXIO;
	uint8_t *slot = page + (size_t)r->sint * HYPERV_MSG_SIZE;
	uint32_t *type = (uint32_t *)(slot + HYPERV_MSG_TYPE_OFF);
	if (__atomic_load_n(type, __ATOMIC_ACQUIRE) != 0) {
		__atomic_fetch_or(slot + HYPERV_MSG_FLAGS_OFF, HYPERV_MSG_PENDING, __ATOMIC_SEQ_CST);
		return -EAGAIN;
	}
	memcpy(slot + 4, c->msg + 4, HYPERV_MSG_SIZE - 4);
	uint32_t t;
	memcpy(&t, c->msg + HYPERV_MSG_TYPE_OFF, 4);
	__atomic_store_n(type, t, __ATOMIC_RELEASE);
	hyperv_route_raise_locked(h, c->route);
	return 0;
}

static struct hyperv_msg_conn *hyperv_msg_find(struct hyperv *h, uint32_t id)
{
	for (int i = 0; i < HYPERV_MAX_CONNS; i++)
		if (h->msg[i].used && h->msg[i].id == id)
			return &h->msg[i];
	return NULL;
}

static struct hyperv_evt_conn *hyperv_evt_find(struct hyperv *h, uint32_t id)
{
	for (int i = 0; i < HYPERV_MAX_CONNS; i++)
		if (h->evt[i].used && h->evt[i].id == id)
			return &h->evt[i];
	return NULL;
}

unsigned hyperv_retry(struct vm *vm)
{
	struct hyperv *h = vm->hyperv;
	if (!h)
		return 0;
	unsigned waiting = 0;
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < HYPERV_MAX_CONNS; i++) {
		struct hyperv_msg_conn *c = &h->msg[i];
		if (!c->used || !c->staged)
			continue;
		/* -ENXIO: the guest took its message page away; the message has
		 * nowhere to go, as on Hyper-V. */
		if (hyperv_msg_deliver(h, c) == -EAGAIN)
			waiting++;
		else
			c->staged = false;
	}
	hyperv_timer_set(h, waiting > 0);
	pthread_mutex_unlock(&h->lock);
	return waiting;
}

/*
 * Why a timer: KVM tells user space that the guest wrote EOM (it has freed a
 * slot with msg_pending set) only through a resampling irqfd on the SINT's
 * GSI, and KVM refuses those with the split irqchip, hvmm's default. So a
 * waiting message is offered again every HYPERV_RETRY_MS until it is taken.
 */
static void hyperv_timer_cb(void *opaque, uint32_t events)
{
	struct hyperv *h = opaque;
	(void)events;
	uint64_t n;
	if (read(h->timerfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	hyperv_retry(h->vm);
}

/* HvPostMessage: the input is 256 bytes at an 8-byte aligned GPA. */
static uint64_t hyperv_post_message(struct hyperv *h, uint64_t gpa)
{
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	const uint8_t *p = mem_ptr(&h->vm->mem, gpa, HYPERV_POST_INPUT_SIZE);
	if (!p)
		return HV_STATUS_INVALID_PARAMETER;
	/* One copy: the guest may rewrite its input while we look at it. */
	uint8_t in[HYPERV_POST_INPUT_SIZE];
	memcpy(in, p, sizeof(in));
	uint32_t conn_id, type, size;
	memcpy(&conn_id, in, 4);
	memcpy(&type, in + 8, 4);
	memcpy(&size, in + 12, 4);
	if (size > HYPERV_MSG_PAYLOAD_MAX)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	/* 0 would be a free slot; the high half belongs to the hypervisor. */
	if (type == 0 || (type & 0x80000000u))
		return HV_STATUS_INVALID_PARAMETER;

	uint64_t status;
	pthread_mutex_lock(&h->lock);
	struct hyperv_msg_conn *c = hyperv_msg_find(h, conn_id & HYPERV_CONN_ID_MASK);
	if (!c) {
		status = HV_STATUS_INVALID_CONNECTION_ID;
	} else if (c->staged) {
		status = HV_STATUS_INSUFFICIENT_BUFFERS; /* the last one still waits */
	} else {
		memset(c->msg, 0, sizeof(c->msg));
		memcpy(c->msg + HYPERV_MSG_TYPE_OFF, &type, 4);
		c->msg[HYPERV_MSG_SIZE_OFF] = (uint8_t)size;
		memcpy(c->msg + HYPERV_MSG_PAYLOAD_OFF, in + 16, size);
		int r = hyperv_msg_deliver(h, c);
		if (r == -EAGAIN) {
			c->staged = true; /* taken: it goes in when the slot is free */
			hyperv_timer_set(h, true);
		}
		status = r == -ENXIO ? HV_STATUS_INVALID_HYPERCALL_INPUT : HV_STATUS_SUCCESS;
	}
	pthread_mutex_unlock(&h->lock);
	return status;
}

/* HvSignalEvent: flag number = the connection id, in the event connection's
 * SINT slot of its vCPU's event-flags page. */
static uint64_t hyperv_signal_event(struct hyperv *h, uint64_t param, bool fast)
{
	if (!fast) {
		if (param & 7)
			return HV_STATUS_INVALID_ALIGNMENT;
		if (mem_read(&h->vm->mem, param, &param, sizeof(param)) < 0)
			return HV_STATUS_INVALID_PARAMETER;
	}
	if (param & 0xffff00000000ull) /* a flag number hvmm's connections do not use */
		return HV_STATUS_INVALID_PORT_ID;
	if (param & ~(uint64_t)HYPERV_CONN_ID_MASK)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	uint64_t status = HV_STATUS_SUCCESS;
	pthread_mutex_lock(&h->lock);
	struct hyperv_evt_conn *c = hyperv_evt_find(h, (uint32_t)param);
	if (!c) {
		status = HV_STATUS_INVALID_CONNECTION_ID;
	} else {
		const struct hyperv_route *r = &h->routes[c->route];
		uint8_t *page = hyperv_page(h, r->vp, false);
		/* No event page: the flag has nowhere to go (signals are not
		 * answered, so the call itself succeeds, as through KVM's eventfds). */
		if (page) {
			uint64_t *word = (uint64_t *)(page + (size_t)r->sint * (HYPERV_EVENT_FLAGS / 8)) +
					 c->id / 64;
			uint64_t bit = 1ull << (c->id % 64);
			if (!(__atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST) & bit))
				hyperv_route_raise_locked(h, c->route);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return status;
}

uint64_t hyperv_hcall(struct vm *vm, uint64_t control, uint64_t in_param)
{
	struct hyperv *h = vm->hyperv;
	if (!h)
		return HV_STATUS_INVALID_HYPERCALL_CODE;
	const bool fast = control & HV_HCALL_FAST;
	switch (control & 0xffff) {
	case HV_HCALL_POST_MESSAGE:
		return fast ? HV_STATUS_INVALID_HYPERCALL_CODE : hyperv_post_message(h, in_param);
	case HV_HCALL_SIGNAL_EVENT:
		return hyperv_signal_event(h, in_param, fast);
	default:
		return HV_STATUS_INVALID_HYPERCALL_CODE;
	}
}

void hyperv_synic_exit(struct vm *vm, unsigned vp, uint64_t control, uint64_t evt_page,
		       uint64_t msg_page)
{
	struct hyperv *h = vm->hyperv;
	if (!h || vp >= VM_MAX_CPUS)
		return;
	pthread_mutex_lock(&h->lock);
	h->synic[vp] = (struct hyperv_synic){ control, evt_page, msg_page };
	pthread_mutex_unlock(&h->lock);
}

/* ---- connections ---- */

/* Message and event connection ids are two name spaces, as the two
 * hypercalls that name them. A new connection's free slot (0..MAX-1) with
 * its SINT route made in *route, or -errno with nothing made. Lock held. */
static int hyperv_conn_slot_locked(struct hyperv *h, uint32_t conn_id, bool msg, unsigned vp,
				   unsigned sint, int *route)
{
	if (conn_id & ~(uint32_t)HYPERV_CONN_ID_MASK)
		return -EINVAL;
	if (msg ? (void *)hyperv_msg_find(h, conn_id) : (void *)hyperv_evt_find(h, conn_id))
		return -EEXIST;
	int i = 0;
	while (i < HYPERV_MAX_CONNS && (msg ? h->msg[i].used : h->evt[i].used))
		i++;
	if (i == HYPERV_MAX_CONNS)
		return -ENOSPC;
	*route = hyperv_route_create_locked(h, vp, sint);
	return *route < 0 ? *route : i;
}

int hyperv_msg_conn_create(struct hyperv *h, uint32_t conn_id, unsigned vp, unsigned sint)
{
	if (!h)
		return -ENODEV;
	pthread_mutex_lock(&h->lock);
	int route, i = hyperv_conn_slot_locked(h, conn_id, true, vp, sint, &route);
	if (i >= 0)
		h->msg[i] = (struct hyperv_msg_conn){ .used = true, .id = conn_id, .route = route };
	pthread_mutex_unlock(&h->lock);
	return i < 0 ? i : 0;
}

int hyperv_msg_conn_destroy(struct hyperv *h, uint32_t conn_id)
{
	if (!h)
		return -ENODEV;
	pthread_mutex_lock(&h->lock);
	struct hyperv_msg_conn *c = hyperv_msg_find(h, conn_id);
	if (c) {
		hyperv_route_destroy_locked(h, c->route);
		c->used = c->staged = false; /* a waiting message goes with it */
	}
	pthread_mutex_unlock(&h->lock);
	return c ? 0 : -ENOENT;
}

int hyperv_evt_conn_create(struct hyperv *h, uint32_t conn_id, unsigned vp, unsigned sint)
{
	if (!h)
		return -ENODEV;
	if (conn_id >= HYPERV_EVENT_FLAGS) /* the id is also the flag number */
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	int route, i = hyperv_conn_slot_locked(h, conn_id, false, vp, sint, &route);
	if (i >= 0)
		h->evt[i] = (struct hyperv_evt_conn){ .used = true, .id = conn_id, .route = route };
	pthread_mutex_unlock(&h->lock);
	return i < 0 ? i : 0;
}

int hyperv_evt_conn_destroy(struct hyperv *h, uint32_t conn_id)
{
	if (!h)
		return -ENODEV;
	pthread_mutex_lock(&h->lock);
	struct hyperv_evt_conn *c = hyperv_evt_find(h, conn_id);
	if (c) {
		hyperv_route_destroy_locked(h, c->route);
		c->used = false;
	}
	pthread_mutex_unlock(&h->lock);
	return c ? 0 : -ENOENT;
}

/* ---- life cycle ---- */

int hyperv_create(struct vm *vm)
{
	struct hyperv *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm = vm;
	h->timerfd = -1;
	pthread_mutex_init(&h->lock, NULL);
	for (int i = 0; i < HYPERV_MAX_ROUTES; i++)
		h->routes[i].gsi = -1;
	vm->hyperv = h;
	/* Not saved: the SynIC's message and event pages, the stimers (armed
	 * on a host timer) and the connections are state of their own. */
	dev_registry_unsupported(&vm->devs, "--hyperv");
	/* The timer fd is made now, before the vCPU threads copy the fd table. */
	if (vm->vm_fd >= 0 && vm->evloop) {
		h->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (h->timerfd < 0)
			return -errno;
		int r = evloop_add(vm->evloop, h->timerfd, EPOLLIN, hyperv_timer_cb, h);
		if (r < 0) {
			close(h->timerfd);
			h->timerfd = -1;
			return r;
		}
	}
	return 0;
}

void hyperv_destroy(struct vm *vm)
{
	struct hyperv *h = vm->hyperv;
	if (!h)
		return;
	if (h->timerfd >= 0) {
		if (vm->evloop)
			evloop_del(vm->evloop, h->timerfd);
		close(h->timerfd);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->hyperv = NULL;
}
