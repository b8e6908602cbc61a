/*
 * vsched: at most M vCPUs in the guest at once, first come first served,
 * with time slices (see vsched.h).
 */
#include "vsched.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util.h"

int vsched_init(struct vsched *s, int slots, uint64_t slice_ns, void (*kick)(void *ctx, int id),
	       bool (*give_up)(void *ctx), void *ctx)
{
	if (slots < 1)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->slots = slots;
	s->slice_ns = slice_ns ? slice_ns : VSCHED_DEFAULT_SLICE_NS;
	s->kick = kick;
	s->give_up = give_up;
	for (int i = 0; i < VSCHED_MAX_VCPUS; i++) {
		atomic_init(&s->preempt[i], false);
		vsched_bind(s, i, ctx, i);
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void vsched_bind(struct vsched *s, int id, void *ctx, int local)
{
	if (id < 0 || id >= VSCHED_MAX_VCPUS)
		return;
	s->owner[id] = ctx;
	s->local[id] = local;
}

void vsched_destroy(struct vsched *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

static void vsched_dequeue(struct vsched *s, int id)
{
	for (int i = 0; i < s->queued; i++)
		if (s->queue[i] == id) {
			memmove(&s->queue[i], &s->queue[i + 1], (size_t)(s->queued - i - 1) * sizeof(s->queue[0]));
			s->queued--;
			return;
		}
}

/* The holder whose slice ends first, and when; -2 while one preempted
 * already has not given its slot back (one slot is all the first waiter
 * needs). Lock held. */
static int vsched_first_expiry(struct vsched *s, uint64_t *when)
{
	int who = -1;
	for (int i = 0; i < VSCHED_MAX_VCPUS; i++) {
		if (!s->holding[i])
			continue;
		if (atomic_load(&s->preempt[i]))
			return -2;
		if (who < 0 || s->slice_end[i] < *when) {
			who = i;
			*when = s->slice_end[i];
		}
	}
	return who;
}

bool vsched_acquire(struct vsched *s, int id)
{
	if (id < 0 || id >= VSCHED_MAX_VCPUS)
		return true; /* not scheduled: never happens with --pcpus' checks */
	pthread_mutex_lock(&s->lock);
	if (s->holding[id]) {
		pthread_mutex_unlock(&s->lock);
		return true;
	}
	uint64_t t0 = util_now_ns();
	bool waited = false;
	s->queue[s->queued++] = id;
	for (;;) {
		if (s->queue[0] == id && s->used < s->slots)
			break;
		if (s->give_up && s->give_up(s->owner[id])) {
			vsched_dequeue(s, id);
			pthread_cond_broadcast(&s->cond); /* the next in line may go */
			pthread_mutex_unlock(&s->lock);
			return false;
		}
		waited = true;
		uint64_t now = util_now_ns(), until = now + 100000000ull; /* see give_up at least this often */
		if (s->queue[0] == id) {
			/* first in line, every slot taken: the earliest slice to
			 * end is preempted when it ends */
			uint64_t when = 0;
			int victim = vsched_first_expiry(s, &when);
			if (victim >= 0 && when <= now) {
				atomic_store(&s->preempt[victim], true);
				s->st[victim].preempted++;
				if (s->kick)
					s->kick(s->owner[victim], s->local[victim]);
				continue; /* its exit gives the slot back */
			}
			if (victim >= 0 && when < until)
				until = when;
		}
		struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	vsched_dequeue(s, id);
	s->used++;
	s->holding[id] = true;
	atomic_store(&s->preempt[id], false);
	uint64_t now = util_now_ns();
	s->slice_end[id] = now + s->slice_ns;
	s->st[id].slices++;
	if (waited) {
		s->st[id].waits++;
		s->st[id].wait_ns += now - t0;
	}
	pthread_cond_broadcast(&s->cond); /* the next in line may have a slot too */
	pthread_mutex_unlock(&s->lock);
	return true;
}

void vsched_release(struct vsched *s, int id)
{
	if (id < 0 || id >= VSCHED_MAX_VCPUS)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->holding[id]) {
		s->holding[id] = false;
		s->used--;
		atomic_store(&s->preempt[id], false);
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
}

bool vsched_exit(struct vsched *s, int id)
{
	if (id < 0 || id >= VSCHED_MAX_VCPUS || !atomic_load(&s->preempt[id]))
		return false;
	vsched_release(s, id);
	return true;
}

bool vsched_holds(struct vsched *s, int id)
{
	if (id < 0 || id >= VSCHED_MAX_VCPUS)
		return false;
	pthread_mutex_lock(&s->lock);
	bool h = s->holding[id];
	pthread_mutex_unlock(&s->lock);
	return h;
}

struct vsched_vcpu_stats vsched_stats(struct vsched *s, int id)
{
	struct vsched_vcpu_stats st = { 0 };
	if (id < 0 || id >= VSCHED_MAX_VCPUS)
		return st;
	pthread_mutex_lock(&s->lock);
	st = s->st[id];
	pthread_mutex_unlock(&s->lock);
	return st;
}
