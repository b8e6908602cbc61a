/*
 * Event injection. An IRQ needs no vCPU: an MSI to the vCPU's APIC ID puts the
 * vector in its LAPIC (KVM's, in either irqchip mode), and KVM injects it at
 * the next entry where the guest takes interrupts. An NMI and an exception
 * are vCPU state (KVM_NMI, KVM_SET_VCPU_EVENTS), which only the vCPU's own
 * thread may change between two KVM_RUNs: the event loop marks them due and
 * kicks vCPU 0, whose thread applies them before it enters again.
 */
#include "inject.h"

#include <errno.h>
#include <pthread.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "evloop.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"

struct inject;

/* The event loop's handle on one request's timer. */
struct inject_slot {
	struct inject *in;
	int i;
};

/* The API's NMIs and exceptions waiting for vCPU 0's thread. */
#define INJECT_QUEUE 16
#define INJECT_DUE_API (1u << 31) /* in `due`: the queue has some */

struct inject {
	struct vm *vm;
	int n;
	int tfd[INJECT_MAX];
	struct inject_slot slot[INJECT_MAX];
	struct inject_result res[INJECT_MAX];
	atomic_uint due; /* bit i: request i waits for vCPU 0's thread */
	bool exceptions; /* KVM_CAP_EXCEPTION_PAYLOAD is on */
	pthread_mutex_t q_lock;
	struct inject_req q[INJECT_QUEUE];
	unsigned q_head, q_len;
	_Atomic uint64_t now_done[3]; /* inject_now events delivered, by kind */
};

static int inject_number(const char *s, const char *end, unsigned long max, unsigned long *out)
{
	if (s == end)
		return -1;
	char buf[24];
	if ((size_t)(end - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(end - s));
	buf[end - s] = '\0';
	char *e;
	errno = 0;
	unsigned long v = strtoul(buf, &e, 0);
	if (*e || errno || v > max || buf[0] == '-')
		return -1;
	*out = v;
	return 0;
}

int inject_parse(struct inject_req *reqs, int *n, const char *spec, char *err, size_t errlen)
{
	if (*n >= INJECT_MAX) {
		snprintf(err, errlen, "more than %d injections", INJECT_MAX);
		return -1;
	}
	struct inject_req r = { 0 };
	const char *at = strrchr(spec, '@');
	unsigned long v;
	if (!at || inject_number(at + 1, at + 1 + strlen(at + 1), 3600000, &v) < 0)
		goto bad;
	r.at_ms = (uint32_t)v;
	size_t kl = strcspn(spec, ":@");
	const char *rest = spec + kl;
	if (kl == 3 && !strncmp(spec, "nmi", 3) && rest == at) {
		r.kind = INJECT_NMI;
	} else if (kl == 3 && !strncmp(spec, "irq", 3) && *rest == ':') {
		/* vectors below 16 are exceptions' and not valid for a fixed MSI */
		if (inject_number(rest + 1, at, 255, &v) < 0 || v < 16)
			goto bad;
		r.kind = INJECT_IRQ;
		r.vector = (uint8_t)v;
	} else if (kl == 9 && !strncmp(spec, "exception", 9) && *rest == ':') {
		const char *colon = memchr(rest + 1, ':', (size_t)(at - rest - 1));
		if (inject_number(rest + 1, colon ? colon : at, 31, &v) < 0 || v == 2)
			goto bad; /* 0..31, and vector 2 is the NMI: nmi@MS */
		r.kind = INJECT_EXCEPTION;
		r.vector = (uint8_t)v;
		if (colon) {
			if (inject_number(colon + 1, at, UINT32_MAX, &v) < 0)
				goto bad;
			r.has_error_code = true;
			r.error_code = (uint32_t)v;
		}
		/* The CPU pushes an error code for these vectors and no others; a
		 * guest handler written for the architecture reads the stack so. */
		bool arch_err = r.vector == 8 || (r.vector >= 10 && r.vector <= 14) || r.vector == 17 ||
				r.vector == 21 || r.vector == 29 || r.vector == 30;
		if (arch_err != r.has_error_code) {
			snprintf(err, errlen, arch_err ? "'%s': exception %u takes an error code (exception:%u:ERRCODE@MS)"
						       : "'%s': exception %u has no error code (exception:%u@MS)",
				 spec, r.vector, r.vector);
			return -1;
		}
	} else {
		goto bad;
	}
	reqs[(*n)++] = r;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not irq:VECTOR@MS (16-255), nmi@MS or exception:VECTOR[:ERRCODE]@MS (0-31)",
		 spec);
	return -1;
}

static void inject_fire(void *opaque, uint32_t events)
{
	(void)events;
	struct inject_slot *sl = opaque;
	struct inject *in = sl->in;
	uint64_t expirations;
	if (read(in->tfd[sl->i], &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* not due yet (a spurious wake-up) */
	struct inject_result *r = &in->res[sl->i];
	if (r->req.kind == INJECT_IRQ) {
		/* Fixed delivery, edge, physical destination: APIC ID 0 (vCPU 0). */
		/* The time first: the guest may take the interrupt on another CPU
		 * before the ioctl returns here. */
		r->injected_ns = util_since_start_ns();
		int e = irq_signal_msi(in->vm, 0xfee00000u, r->req.vector);
		if (e < 0) {
			util_err("--inject irq:%u: KVM_SIGNAL_MSI: %s", r->req.vector, strerror(-e));
			r->injected_ns = 0;
		}
		return;
	}
	atomic_fetch_or(&in->due, 1u << sl->i);
	vcpu_kick(in->vm->vcpus[0]);
}

int inject_init(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	if (!cfg->nr_inject && !cfg->api_sock)
		return 0;
	struct inject *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	vm->inject = in;
	in->vm = vm;
	pthread_mutex_init(&in->q_lock, NULL);
	/* Exceptions go in as pending (queued as if the instruction raised
	 * them, and a reason for a halted vCPU to run): the original ABI's
	 * "injected" is an event whose delivery was interrupted, which KVM does
	 * not count as a wake-up, and a halted guest never saw it. */
	bool exc = false;
	for (int i = 0; i < cfg->nr_inject; i++)
		exc = exc || cfg->inject[i].kind == INJECT_EXCEPTION;
	if (exc || cfg->api_sock) {
		struct kvm_enable_cap c = { .cap = KVM_CAP_EXCEPTION_PAYLOAD, .args[0] = 1 };
		in->exceptions = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_EXCEPTION_PAYLOAD) > 0 &&
				 ioctl(vm->vm_fd, KVM_ENABLE_CAP, &c) == 0;
		/* --inject needs them; the API says so when asked for one */
		if (exc && !in->exceptions)
			return -ENOTSUP;
	}
	for (int i = 0; i < INJECT_MAX; i++)
		in->tfd[i] = -1;
	for (int i = 0; i < cfg->nr_inject; i++) {
		in->res[i].req = cfg->inject[i];
		in->slot[i] = (struct inject_slot){ in, i };
		in->tfd[i] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (in->tfd[i] < 0)
			return -errno;
		in->n = i + 1;
		int r = evloop_add(vm->evloop, in->tfd[i], EPOLLIN, inject_fire, &in->slot[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void inject_arm(struct vm *vm)
{
	struct inject *in = vm->inject;
	for (int i = 0; in && i < in->n; i++) {
		uint64_t ns = (uint64_t)in->res[i].req.at_ms * 1000000u;
		/* 0 would disarm: at_ms 0 means at once, i.e. 1 ns */
		struct itimerspec t = { .it_value = { .tv_sec = (time_t)(ns / 1000000000u),
						      .tv_nsec = (long)(ns % 1000000000u) + (ns ? 0 : 1) } };
		if (timerfd_settime(in->tfd[i], 0, &t, NULL) < 0)
			util_err("--inject: timerfd_settime: %s", strerror(errno));
	}
}

/* An NMI or an exception into v, on its own thread. 0 done, -EAGAIN an
 * event is already under way (try at the next exit), -1 failed (said). */
static int inject_apply(struct vcpu *v, const struct inject_req *req)
{
	if (req->kind == INJECT_NMI) {
		if (ioctl(v->fd, KVM_NMI) < 0) {
			util_err("inject nmi: KVM_NMI: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	/* Pending: delivered through the guest's IDT, with its error code, at
	 * the next entry (no payload: not a #PF or #DB). */
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
		util_err("inject exception: KVM_GET_VCPU_EVENTS: %s", strerror(errno));
		return -1;
	}
	if (ev.exception.injected || ev.exception.pending || ev.interrupt.injected)
		return -EAGAIN; /* one event at a time */
	ev.flags = KVM_VCPUEVENT_VALID_PAYLOAD; /* NMI, SIPI, shadow, SMM as read */
	ev.exception.pending = 1;
	ev.exception_has_payload = 0;
	ev.exception.nr = req->vector;
	ev.exception.has_error_code = req->has_error_code;
	ev.exception.error_code = req->error_code;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		util_err("inject exception:%u: KVM_SET_VCPU_EVENTS: %s", req->vector, strerror(errno));
		return -1;
	}
	return 0;
}

/* The API's queue, in order; an event that must wait keeps its place. */
static void inject_vcpu_queue(struct vcpu *v, struct inject *in)
{
	pthread_mutex_lock(&in->q_lock);
	while (in->q_len) {
		const struct inject_req *req = &in->q[in->q_head];
		int r = inject_apply(v, req);
		if (r == -EAGAIN) {
			atomic_fetch_or(&in->due, INJECT_DUE_API);
			break;
		}
		if (r == 0)
			atomic_fetch_add(&in->now_done[req->kind], 1);
		in->q_head = (in->q_head + 1) % INJECT_QUEUE;
		in->q_len--;
	}
	pthread_mutex_unlock(&in->q_lock);
}

bool inject_pending(struct vm *vm)
{
	return vm->inject && atomic_load(&vm->inject->due) != 0;
}

void inject_vcpu(struct vcpu *v)
{
	struct inject *in = v->vm->inject;
	unsigned due = atomic_exchange(&in->due, 0);
	for (int i = 0; due && i < in->n; i++) {
		if (!(due & (1u << i)))
			continue;
		struct inject_result *r = &in->res[i];
		uint64_t t = util_since_start_ns();
		int rc = inject_apply(v, &r->req);
		if (rc == -EAGAIN)
			atomic_fetch_or(&in->due, 1u << i); /* again at the next exit */
		else if (rc == 0)
			r->injected_ns = t;
	}
	if (due & INJECT_DUE_API)
		inject_vcpu_queue(v, in);
}

int inject_now(struct vm *vm, const char *spec, char *err, size_t n)
{
	struct inject *in = vm->inject;
	char full[64];
	struct inject_req req[1];
	int cnt = 0;
	if (!in) {
		snprintf(err, n, "this VM takes no injections");
		return -1;
	}
	if (strlen(spec) > 40 || strchr(spec, '@')) {
		snprintf(err, n, "'%.40s' is not irq:VECTOR (16-255), nmi or exception:VECTOR[:ERRCODE] (0-31)",
			 spec);
		return -1;
	}
	snprintf(full, sizeof(full), "%s@0", spec);
	char perr[200];
	if (inject_parse(req, &cnt, full, perr, sizeof(perr)) < 0) {
		/* inject_parse speaks of --inject's "@MS": the API has none */
		snprintf(err, n, "'%.40s' is not irq:VECTOR (16-255), nmi or exception:VECTOR[:ERRCODE] (0-31)%s",
			 spec, strstr(perr, "error code") ? ": that exception's error code is wrong" : "");
		return -1;
	}
	if (req[0].kind == INJECT_IRQ) {
		int e = irq_signal_msi(vm, 0xfee00000u, req[0].vector);
		if (e < 0) {
			snprintf(err, n, "KVM_SIGNAL_MSI: %s", strerror(-e));
			return -1;
		}
		atomic_fetch_add(&in->now_done[INJECT_IRQ], 1);
		return 0;
	}
	if (req[0].kind == INJECT_EXCEPTION && !in->exceptions) {
		snprintf(err, n, "this KVM cannot queue exceptions (no KVM_CAP_EXCEPTION_PAYLOAD)");
		return -1;
	}
	pthread_mutex_lock(&in->q_lock);
	bool full_q = in->q_len == INJECT_QUEUE;
	if (!full_q) {
		in->q[(in->q_head + in->q_len) % INJECT_QUEUE] = req[0];
		in->q_len++;
	}
	pthread_mutex_unlock(&in->q_lock);
	if (full_q) {
		snprintf(err, n, "%d events already wait for vCPU 0", INJECT_QUEUE);
		return -1;
	}
	atomic_fetch_or(&in->due, INJECT_DUE_API);
	if (vm->ncpus > 0)
		vcpu_kick(vm->vcpus[0]);
	return 0;
}

void inject_now_counts(struct vm *vm, uint64_t out[3])
{
	struct inject *in = vm->inject;
	for (int k = 0; k < 3; k++)
		out[k] = in ? atomic_load(&in->now_done[k]) : 0;
}

unsigned inject_results(struct vm *vm, struct inject_result *out, unsigned max)
{
	struct inject *in = vm->inject;
	unsigned n = 0;
	for (int i = 0; in && i < in->n && n < max; i++)
		out[n++] = in->res[i];
	return n;
}

void inject_destroy(struct vm *vm)
{
	struct inject *in = vm->inject;
	if (!in)
		return;
	for (int i = 0; i < in->n; i++)
		if (in->tfd[i] >= 0) {
			evloop_del(vm->evloop, in->tfd[i]);
			close(in->tfd[i]);
		}
	pthread_mutex_destroy(&in->q_lock);
	free(in);
	vm->inject = NULL;
}
