/*
 * Unit tests for hvmm's vCPU scheduler (src/sched.c, --pcpus): never more
 * vCPUs in the guest than slots, waiters served first come first, a slice
 * preempted (the holder kicked) when it is over and someone waits, a
 * waiter that gives up leaves the queue, and every vCPU gets its turn.
 * The "vCPUs" are plain threads that spin while "in the guest".
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vsched.h"
#include "util.h"

static struct vsched s;
static atomic_bool kicked[VSCHED_MAX_VCPUS];
static atomic_int kicks;
static atomic_int kick_count[VSCHED_MAX_VCPUS];
static atomic_bool stop;
static atomic_int in_guest, max_in_guest;

/* Several VMs share one scheduler: each id is bound to its VM (ctx) and
 * the VM's own number for it; NULL ctx (one VM) numbers them as given. */
struct fake_vm {
	int base;
};

static void kick(void *ctx, int id)
{
	int global = ctx ? ((struct fake_vm *)ctx)->base + id : id;
	atomic_store(&kicked[global], true);
	atomic_fetch_add(&kick_count[global], 1);
	atomic_fetch_add(&kicks, 1);
}

static bool give_up(void *ctx)
{
	(void)ctx;
	return atomic_load(&stop);
}

static void setup_sched(int slots, uint64_t slice_ns)
{
	assert_int_equal(vsched_init(&s, slots, slice_ns, kick, give_up, NULL), 0);
	for (int i = 0; i < VSCHED_MAX_VCPUS; i++) {
		atomic_store(&kicked[i], false);
		atomic_store(&kick_count[i], 0);
	}
	atomic_store(&kicks, 0);
	atomic_store(&stop, false);
	atomic_store(&in_guest, 0);
	atomic_store(&max_in_guest, 0);
}

static void sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

/* A vCPU that never halts: in the guest until kicked, then an exit. */
static void *busy_vcpu(void *arg)
{
	int id = (int)(intptr_t)arg;
	while (!atomic_load(&stop)) {
		if (!vsched_acquire(&s, id))
			break;
		int n = atomic_fetch_add(&in_guest, 1) + 1;
		int m = atomic_load(&max_in_guest);
		while (n > m && !atomic_compare_exchange_weak(&max_in_guest, &m, n))
			;
		uint64_t end = util_now_ns() + 20000000ull; /* an exit at least every 20 ms */
		while (!atomic_load(&kicked[id]) && !atomic_load(&stop) && util_now_ns() < end)
			;
		atomic_store(&kicked[id], false);
		atomic_fetch_sub(&in_guest, 1);
		vsched_exit(&s, id);
	}
	vsched_release(&s, id);
	return NULL;
}

static void run_busy(int nvcpus, int ms)
{
	pthread_t t[8];
	for (int i = 0; i < nvcpus; i++)
		assert_int_equal(pthread_create(&t[i], NULL, busy_vcpu, (void *)(intptr_t)i), 0);
	sleep_ms(ms);
	atomic_store(&stop, true);
	for (int i = 0; i < nvcpus; i++)
		pthread_join(t[i], NULL);
}

/* Three vCPUs that never halt on one slot: one in the guest at a time,
 * each preempted in turn when its slice ends, each getting its turns. */
static void test_one_slot_three_vcpus(void **state)
{
	(void)state;
	setup_sched(1, 2000000ull); /* 2 ms */
	run_busy(3, 300);
	assert_int_equal(atomic_load(&max_in_guest), 1);
	uint64_t slices = 0;
	for (int i = 0; i < 3; i++) {
		struct vsched_vcpu_stats st = vsched_stats(&s, i);
		print_message("      vcpu%d: %llu slices, %llu waits (%.1f ms), %llu preempted\n", i,
			      (unsigned long long)st.slices, (unsigned long long)st.waits, (double)st.wait_ns / 1e6,
			      (unsigned long long)st.preempted);
		/* 300 ms of 2 ms slices among three: each had many */
		assert_true(st.slices >= 10);
		assert_true(st.waits >= 5 && st.wait_ns > 0);
		assert_true(st.preempted >= 5);
		slices += st.slices;
	}
	assert_true(atomic_load(&kicks) > 0);
	/* nothing held once they all ended */
	for (int i = 0; i < 3; i++)
		assert_false(vsched_holds(&s, i));
	assert_int_equal(s.used, 0);
	assert_int_equal(s.queued, 0);
	vsched_destroy(&s);
}

/* Two slots, four vCPUs: never more than two in, all of them progress. */
static void test_two_slots(void **state)
{
	(void)state;
	setup_sched(2, 1000000ull);
	run_busy(4, 200);
	assert_true(atomic_load(&max_in_guest) <= 2);
	assert_int_equal(atomic_load(&max_in_guest), 2);
	for (int i = 0; i < 4; i++)
		assert_true(vsched_stats(&s, i).slices >= 5);
	vsched_destroy(&s);
}

/* As many slots as vCPUs: nobody waits, nobody is preempted. */
static void test_enough_slots(void **state)
{
	(void)state;
	setup_sched(3, 1000000ull);
	run_busy(3, 100);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vsched_stats(&s, i).waits, 0);
		assert_int_equal(vsched_stats(&s, i).preempted, 0);
	}
	assert_int_equal(atomic_load(&kicks), 0);
	vsched_destroy(&s);
}

/* A slot kept across exits when nobody waits; a release (halt) gives it
 * to the first waiter; a waiter that gives up (the VM stops) leaves the
 * queue so the next one is not stuck behind it. */
static atomic_int got;
static void *waiter(void *arg)
{
	int id = (int)(intptr_t)arg;
	if (vsched_acquire(&s, id)) {
		atomic_store(&got, id);
		vsched_release(&s, id);
	} else {
		atomic_store(&got, -id);
	}
	return NULL;
}

static void test_hold_release_give_up(void **state)
{
	(void)state;
	setup_sched(1, 1000000000ull); /* a slice longer than the test */
	assert_true(vsched_acquire(&s, 0));
	assert_true(vsched_acquire(&s, 0)); /* held: at once */
	assert_false(vsched_exit(&s, 0));   /* not preempted: kept */
	assert_true(vsched_holds(&s, 0));
	pthread_t t;
	atomic_store(&got, 0);
	assert_int_equal(pthread_create(&t, NULL, waiter, (void *)(intptr_t)1), 0);
	sleep_ms(30);
	assert_int_equal(atomic_load(&got), 0); /* waiting: slot taken, slice not over */
	assert_int_equal(s.queued, 1);
	vsched_release(&s, 0); /* vCPU 0 halts */
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&got), 1);
	assert_int_equal(vsched_stats(&s, 1).waits, 1);

	/* give up: vCPU 2 waits behind 0, the VM stops */
	assert_true(vsched_acquire(&s, 0));
	assert_int_equal(pthread_create(&t, NULL, waiter, (void *)(intptr_t)2), 0);
	sleep_ms(30);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&got), -2);
	assert_int_equal(s.queued, 0);
	atomic_store(&stop, false);
	vsched_release(&s, 0);
	assert_true(vsched_acquire(&s, 3)); /* nothing stale in the way */
	vsched_release(&s, 3);
	vsched_destroy(&s);
}

/* Two VMs of two vCPUs on one slot set, bound as multivm.c binds them:
 * each preemption kicks the right VM under its own number (kick() maps it
 * back to the id: one kick per preemption, on the preempted one), and
 * every vCPU of both VMs gets turns. */
static void test_two_vms_share_slots(void **state)
{
	(void)state;
	static struct fake_vm vms[2] = { { 0 }, { 2 } };
	setup_sched(1, 2000000ull);
	for (int v = 0; v < 2; v++)
		for (int i = 0; i < 2; i++)
			vsched_bind(&s, vms[v].base + i, &vms[v], i);
	run_busy(4, 300);
	assert_int_equal(atomic_load(&max_in_guest), 1);
	for (int i = 0; i < 4; i++) {
		struct vsched_vcpu_stats st = vsched_stats(&s, i);
		assert_true(st.slices >= 5);
		assert_true(st.preempted >= 2);
		assert_int_equal(atomic_load(&kick_count[i]), st.preempted);
	}
	vsched_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_vms_share_slots),
		cmocka_unit_test(test_one_slot_three_vcpus),
		cmocka_unit_test(test_two_slots),
		cmocka_unit_test(test_enough_slots),
		cmocka_unit_test(test_hold_release_give_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
