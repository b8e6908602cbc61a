/*
 * lifecycle: pause/resume and the API's ops (see lifecycle.h).
 *
 * Pausing reuses the parking S3 already needs (vcpu.c's vcpu_park): set
 * `paused`, kick every vCPU out of KVM_RUN, wait until all of them count
 * themselves parked; then the event loop parks between two callbacks
 * (evloop_pause). Requests come from the API thread one at a time, so a
 * pause and a resume never race each other. The guest's clocks are left
 * alone, as Firecracker does: its wall clock stays right, and it sees the
 * pause as time that passed (QEMU instead stops kvmclock while stopped).
 * What Firecracker also does: KVM_KVMCLOCK_CTRL on every vCPU, which tells
 * a guest on kvmclock that it was stopped, so that its soft-lockup watchdog
 * does not take the jump for a hung CPU.
 */
#include "lifecycle.h"

#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "devices/devices.h"
#include "evloop.h"
#include "inject.h"
#include "metrics.h"
#include "migrate.h"
#include "snapshot.h"
#include "stats.h"
#include "util.h"
#include "vcpu.h"
#include "vm.h"


/* Longer than any exit handler should take; a vCPU that does not park
 * within it is reported, and the pause undone. */
#define LIFECYCLE_PARK_LIMIT_NS 1000000000ull

struct lifecycle {
	struct api_ops ops;
	uint64_t pauses;
	uint64_t park_ns_last, park_ns_max; /* request to everything parked */
	uint64_t paused_at_ns, paused_ns_total;
	uint64_t clock_ctrl_errors; /* KVM_KVMCLOCK_CTRL failed other than EINVAL */
};

bool lifecycle_paused(struct vm *vm)
{
	return atomic_load(&vm->paused);
}

/* Wait until every vCPU thread is parked (the one in an S3 sleep counts as
 * parked: it does not run the guest either). */
static bool lifecycle_wait_parked(struct vm *vm, uint64_t deadline)
{
	bool ok = true;
	pthread_mutex_lock(&vm->park_lock);
	while (vm->parked < vm->ncpus - (atomic_load(&vm->suspended) ? 1 : 0) && !vm_stopping(vm)) {
		if (util_now_ns() >= deadline) {
			ok = false;
			break;
		}
		struct timespec ts;
		util_realtime_after(&ts, 1000000);
		pthread_cond_timedwait(&vm->park_cond, &vm->park_lock, &ts);
	}
	pthread_mutex_unlock(&vm->park_lock);
	return ok;
}

static void lifecycle_unpark(struct vm *vm)
{
	pthread_mutex_lock(&vm->park_lock);
	atomic_store(&vm->paused, false);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
	dev_resume_all(&vm->devs); /* the UART: what was typed during the pause */
}

int lifecycle_pause(struct vm *vm, char *err, size_t n)
{
	struct lifecycle *l = vm->life;
	if (vm_stopping(vm)) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	if (atomic_load(&vm->paused))
		return 0;
	uint64_t t0 = util_now_ns();
	atomic_store(&vm->paused, true);
	/* Host-side activity outside the event loop: the UART's input thread
	 * raises no interrupt from here on. */
	dev_pause_all(&vm->devs);
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	if (!lifecycle_wait_parked(vm, t0 + LIFECYCLE_PARK_LIMIT_NS)) {
		lifecycle_unpark(vm);
		snprintf(err, n, "a vCPU did not stop within 1 s: the VM goes on running");
		return -1;
	}
	if (vm_stopping(vm)) { /* the wait ended for the stop, not for the pause */
		lifecycle_unpark(vm);
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	for (int i = 0; i < vm->ncpus; i++) {
		/* EINVAL: this guest does not use kvmclock; nothing to tell */
		if (ioctl(vm->vcpus[i]->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			l->clock_ctrl_errors++;
	}
	int r = evloop_pause(vm);
	if (r < 0) {
		lifecycle_unpark(vm);
		snprintf(err, n, "the device loop did not stop: %s", strerror(-r));
		return -1;
	}
	uint64_t t1 = util_now_ns();
	l->pauses++;
	l->park_ns_last = t1 - t0;
	if (l->park_ns_last > l->park_ns_max)
		l->park_ns_max = l->park_ns_last;
	l->paused_at_ns = t1;
	return 0;
}

int lifecycle_resume(struct vm *vm, char *err, size_t n)
{
	struct lifecycle *l = vm->life;
	if (!atomic_load(&vm->paused))
		return 0;
	if (vm_stopping(vm)) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	evloop_resume(vm);
	l->paused_ns_total += util_now_ns() - l->paused_at_ns;
	lifecycle_unpark(vm);
	return 0;
}

/* ---- the API's view ---- */

static const char *lifecycle_api_state(void *o)
{
	return lifecycle_paused(o) ? "Paused" : "Running";
}

static int lifecycle_api_pause(void *o, char *err, size_t n)
{
	return lifecycle_pause(o, err, n);
}

static int lifecycle_api_resume(void *o, char *err, size_t n)
{
	return lifecycle_resume(o, err, n);
}

static json_object *lifecycle_api_machine(void *o)
{
	struct vm *vm = o;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "vcpu_count", json_object_new_int(vm->ncpus));
	json_object_object_add(j, "mem_size_mib", json_object_new_uint64(vm->cfg.mem_size >> 20));
	json_object_object_add(j, "smt", json_object_new_boolean(0));
	json_object_object_add(j, "track_dirty_pages", json_object_new_boolean(vm->cfg.track_dirty_pages || vm->cfg.dirty_log_ms > 0));
	return j;
}

/* Live statistics. The vCPUs' registers only while paused: reading them
 * from a running vCPU would wait for it to leave KVM_RUN. */
static json_object *lifecycle_api_stats(void *o)
{
	struct vm *vm = o;
	return stats_json(vm, lifecycle_paused(vm));
}

static json_object *lifecycle_api_irt(void *o)
{
	return stats_irt_json(o);
}

static int lifecycle_api_snapshot(void *o, const char *state, const char *mem, bool diff, char *err, size_t n)
{
	return snapshot_create(o, state, mem, diff, err, n);
}

static int lifecycle_api_flush(void *o, char *err, size_t n)
{
	return metrics_flush(o, "flush", err, (unsigned)n);
}

static int lifecycle_api_migrate(void *o, const char *dest, uint32_t downtime_ms, char *err, size_t n)
{
	return migrate_out(o, dest, downtime_ms, err, n);
}

static int lifecycle_api_inject(void *o, const char *spec, char *err, size_t n)
{
	return inject_now(o, spec, err, n);
}

int lifecycle_init(struct vm *vm)
{
	struct lifecycle *l = calloc(1, sizeof(*l));
	if (!l) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	vm->life = l;
	l->ops = (struct api_ops){
		.opaque = vm,
		.state = lifecycle_api_state,
		.pause = lifecycle_api_pause,
		.resume = lifecycle_api_resume,
		.machine_config = lifecycle_api_machine,
		.stats = lifecycle_api_stats,
		.irt = lifecycle_api_irt,
		.inject = lifecycle_api_inject,
		.snapshot_create = lifecycle_api_snapshot,
		.flush_metrics = lifecycle_api_flush,
		.migrate = lifecycle_api_migrate,
		.id = vm->cfg.id ? vm->cfg.id : "anonymous-instance",
		.version = HVMM_VERSION,
	};
	if (vm->cfg.api_server) {
		vm->api = vm->cfg.api_server; /* serving since before the VM: it is ours now */
	} else if (vm->cfg.api_sock) {
		char err[300];
		vm->api = api_open(vm->cfg.api_sock, err, sizeof(err));
		if (!vm->api) {
			util_err("%s", err);
			return HVMM_EXIT_USAGE;
		}
	}
	return 0;
}

int lifecycle_start(struct vm *vm)
{
	if (vm->cfg.start_paused) {
		/* Before any vCPU thread exists: each parks before its first
		 * KVM_RUN, and the device loop before its first callback. */
		atomic_store(&vm->paused, true);
		int r = evloop_pause(vm);
		if (r < 0)
			return r;
		vm->life->pauses++;
		vm->life->paused_at_ns = util_now_ns();
	}
	if (vm->api && vm->cfg.api_server && vm->cfg.api_ready) {
		/* The pre-boot request that built the VM waits for its answer
		 * inside its handler: the VM's handlers first, then the answer,
		 * so that the client's next request finds them. */
		api_set_ops_waiting(vm->api, &vm->life->ops);
		vm->cfg.api_ready(vm->cfg.api_ready_arg);
		return 0;
	}
	if (vm->api && vm->cfg.api_server) {
		api_set_ops(vm->api, &vm->life->ops); /* from the pre-boot handlers */
		return 0;
	}
	return vm->api ? api_start(vm->api, &vm->life->ops) : 0;
}

void lifecycle_stop(struct vm *vm)
{
	api_close(vm->api);
	vm->api = NULL;
	/* A VM stopped while paused: nothing may stay parked on the way out.
	 * (After a migration the vCPUs see the stop and end without entering
	 * the guest, and the loop ends at its park point, vm.h.) */
	if (vm->life && atomic_load(&vm->paused)) {
		evloop_resume(vm);
		lifecycle_unpark(vm);
	}
}

void lifecycle_destroy(struct vm *vm)
{
	lifecycle_stop(vm);
	free(vm->life);
	vm->life = NULL;
}

void lifecycle_print(struct vm *vm, FILE *f)
{
	struct lifecycle *l = vm->life;
	if (!l || !l->pauses)
		return;
	fprintf(f, "paused %llu time%s: everything parked in %.1f us (last), %.1f us (max); %.1f ms paused in all\n",
		(unsigned long long)l->pauses, l->pauses == 1 ? "" : "s", (double)l->park_ns_last / 1e3,
		(double)l->park_ns_max / 1e3, (double)l->paused_ns_total / 1e6);
}

json_object *lifecycle_json(struct vm *vm)
{
	struct lifecycle *l = vm->life;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(lifecycle_paused(vm) ? "Paused" : "Running"));
	json_object_object_add(o, "pauses", json_object_new_uint64(l ? l->pauses : 0));
	json_object_object_add(o, "park_ns_last", json_object_new_uint64(l ? l->park_ns_last : 0));
	json_object_object_add(o, "park_ns_max", json_object_new_uint64(l ? l->park_ns_max : 0));
	json_object_object_add(o, "paused_ns_total", json_object_new_uint64(l ? l->paused_ns_total : 0));
	json_object_object_add(o, "kvmclock_ctrl_errors", json_object_new_uint64(l ? l->clock_ctrl_errors : 0));
	return o;
}
