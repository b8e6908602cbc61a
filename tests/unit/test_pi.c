/*
 * Unit tests for the posted-interrupt descriptor (src/pi.c): the lecture's
 * table — what a post does to a running, a ready and a halted vCPU, and
 * what each state change does to SN and NV — PIR draining, the one
 * interleaving of a post and a drain that leaves ON set with PIR empty
 * (step by step), and a race of posters against a vCPU that runs, exits,
 * halts and wakes: no interrupt lost, none taken twice, no halted vCPU left
 * asleep with something posted.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "pi.h"

static void test_init(void **state)
{
	(void)state;
	struct pi_desc d;
	pi_desc_init(&d, 3);
	assert_false(pi_on(&d));
	assert_true(pi_sn(&d)); /* not running yet: nothing to notify */
	assert_int_equal(pi_nv(&d), PI_NV_ACTIVE);
	assert_int_equal(pi_ndst(&d), 3);
	assert_false(pi_pending(&d));
}

/* "PID update": the fields each state sets. */
static void test_state_updates(void **state)
{
	(void)state;
	struct pi_desc d;
	pi_desc_init(&d, 1);
	pi_set_state(&d, PI_RUNNING);
	assert_false(pi_sn(&d));
	assert_int_equal(pi_nv(&d), PI_NV_ACTIVE);
	pi_set_state(&d, PI_READY);
	assert_true(pi_sn(&d));
	assert_int_equal(pi_nv(&d), PI_NV_ACTIVE); /* SN alone changes */
	pi_set_state(&d, PI_HALTED);
	assert_false(pi_sn(&d));
	assert_int_equal(pi_nv(&d), PI_NV_WAKEUP);
	pi_set_state(&d, PI_READY);
	assert_true(pi_sn(&d));
	assert_int_equal(pi_nv(&d), PI_NV_WAKEUP);
	pi_set_state(&d, PI_RUNNING);
	assert_false(pi_sn(&d));
	assert_int_equal(pi_nv(&d), PI_NV_ACTIVE);
	assert_int_equal(pi_ndst(&d), 1); /* never touched */
	assert_false(pi_on(&d));          /* nor ON */
	assert_string_equal(pi_state_name(PI_HALTED), "halted");
}

/* "Interrupt delivery": PIR always; then per SN and NV. */
static void test_post_per_state(void **state)
{
	(void)state;
	struct pi_desc d;
	uint32_t irr[8];

	/* running: the active notification, once */
	pi_desc_init(&d, 0);
	pi_set_state(&d, PI_RUNNING);
	assert_int_equal(pi_post(&d, 0x31), PI_NOTIFY_ACTIVE);
	assert_true(pi_on(&d));
	assert_int_equal(pi_post(&d, 0x32), PI_NOTIFY_OUTSTANDING);
	assert_int_equal(pi_post(&d, 0x31), PI_NOTIFY_OUTSTANDING);
	memset(irr, 0, sizeof(irr));
	assert_int_equal(pi_drain(&d, irr), 2);
	assert_int_equal(irr[1], (1u << 0x11) | (1u << 0x12));
	assert_false(pi_on(&d));
	assert_false(pi_pending(&d));
	assert_int_equal(pi_post(&d, 0x33), PI_NOTIFY_ACTIVE); /* notifies again */

	/* ready: posted only */
	pi_desc_init(&d, 0);
	pi_set_state(&d, PI_READY);
	assert_int_equal(pi_post(&d, 0x40), PI_NOTIFY_SUPPRESSED);
	assert_int_equal(pi_post(&d, 0xff), PI_NOTIFY_SUPPRESSED);
	assert_false(pi_on(&d));
	assert_true(pi_pending(&d));
	/* scheduled in: the VMM looks at PIR and delivers what waited */
	pi_set_state(&d, PI_RUNNING);
	memset(irr, 0, sizeof(irr));
	assert_int_equal(pi_drain(&d, irr), 2);
	assert_int_equal(irr[2], 1u);
	assert_int_equal(irr[7], 1u << 31);

	/* halted: the wake-up notification */
	pi_desc_init(&d, 0);
	pi_set_state(&d, PI_HALTED);
	assert_int_equal(pi_post(&d, 0x20), PI_NOTIFY_WAKEUP);
	assert_true(pi_on(&d));
	assert_int_equal(pi_post(&d, 0x21), PI_NOTIFY_OUTSTANDING);
	/* it wakes: ready, then running, and takes both */
	pi_set_state(&d, PI_READY);
	assert_int_equal(pi_post(&d, 0x22), PI_NOTIFY_SUPPRESSED);
	pi_set_state(&d, PI_RUNNING);
	memset(irr, 0, sizeof(irr));
	assert_int_equal(pi_drain(&d, irr), 3);
	assert_int_equal(irr[1], 7u);
	assert_false(pi_on(&d));
}

/* Vectors 0-15 are exceptions, not interrupts: never posted. Draining ORs
 * into what IRR has. */
static void test_reserved_vectors_and_or(void **state)
{
	(void)state;
	struct pi_desc d;
	pi_desc_init(&d, 0);
	pi_set_state(&d, PI_RUNNING);
	for (unsigned v = 0; v < 16; v++)
		assert_int_equal(pi_post(&d, (uint8_t)v), PI_NOTIFY_NONE);
	assert_false(pi_pending(&d));
	assert_false(pi_on(&d));
	uint32_t irr[8] = { 0 };
	irr[3] = 0x5;
	pi_post(&d, 0x61);
	assert_int_equal(pi_drain(&d, irr), 1);
	assert_int_equal(irr[3], 0x7);
	assert_int_equal(pi_drain(&d, irr), 0);
}

/* The interleaving a post can have with a drain: the poster sets the PIR
 * bit, the vCPU drains (ON cleared, the bit taken), then the poster's CAS
 * sets ON. ON is then set with PIR empty, and every later post sees ON and
 * notifies nobody: a vCPU about to halt must not sleep on that ON. */
static void test_on_after_drain(void **state)
{
	(void)state;
	struct pi_desc d;
	uint32_t irr[8] = { 0 };
	pi_desc_init(&d, 0);
	pi_set_state(&d, PI_RUNNING);
	atomic_fetch_or(&d.pir[1], 1ull << 2);       /* the poster's PIR bit (0x42) */
	assert_int_equal(pi_drain(&d, irr), 1);      /* the vCPU takes it */
	atomic_fetch_or(&d.ctl, PI_CTL_ON);          /* the poster's CAS lands now */
	pi_set_state(&d, PI_READY);
	pi_set_state(&d, PI_HALTED);
	assert_true(pi_pending(&d)); /* the last look before sleeping: stay up */
	assert_int_equal(pi_post(&d, 0x43), PI_NOTIFY_OUTSTANDING); /* as said: no wake-up */
	pi_set_state(&d, PI_READY);
	pi_set_state(&d, PI_RUNNING);
	assert_int_equal(pi_drain(&d, irr), 1);
	assert_false(pi_pending(&d));
	pi_set_state(&d, PI_READY);
	pi_set_state(&d, PI_HALTED);
	assert_int_equal(pi_post(&d, 0x44), PI_NOTIFY_WAKEUP); /* notifications again */
}

/* ---- the race ---- */

#define RACE_POSTERS 3
#define RACE_MS 700

static struct pi_desc race_pid;
static atomic_int race_outstanding[256]; /* posted, not yet drained */
static atomic_ulong race_posted, race_drained, race_kicks, race_wakeups;
static atomic_bool race_stop, race_kick;
static sem_t race_wake;
static atomic_int race_errors;

static uint64_t race_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void race_take(void)
{
	uint32_t irr[8] = { 0 };
	pi_drain(&race_pid, irr);
	for (unsigned v = 0; v < 256; v++) {
		if (!(irr[v / 32] & (1u << (v % 32))))
			continue;
		/* a vector taken that nobody posted since it was last taken:
		 * taken twice */
		if (atomic_exchange(&race_outstanding[v], 0) != 1)
			atomic_fetch_add(&race_errors, 1);
		atomic_fetch_add(&race_drained, 1);
	}
}

static void *race_poster(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (uintptr_t)arg + 1;
	/* each poster its own vectors, so "outstanding" is exact */
	unsigned base = 32 + 64 * (unsigned)(uintptr_t)arg;
	while (!atomic_load(&race_stop)) {
		unsigned v = base + (unsigned)(race_rand(&s) % 64);
		if (v > 255)
			continue;
		int zero = 0;
		if (!atomic_compare_exchange_strong(&race_outstanding[v], &zero, 1))
			continue; /* still waiting to be taken: like a level held */
		atomic_fetch_add(&race_posted, 1);
		switch (pi_post(&race_pid, (uint8_t)v)) {
		case PI_NOTIFY_ACTIVE:
			atomic_fetch_add(&race_kicks, 1);
			atomic_store(&race_kick, true);
			break;
		case PI_NOTIFY_WAKEUP:
			atomic_fetch_add(&race_wakeups, 1);
			sem_post(&race_wake);
			break;
		default:
			break;
		}
	}
	return NULL;
}

/* The vCPU: enter (running, take PIR), run until kicked or a while, exit
 * (ready), sometimes halt: asleep until the wake-up notification. */
static void *race_vcpu(void *arg)
{
	(void)arg;
	uint64_t s = 12345;
	while (!atomic_load(&race_stop)) {
		pi_set_state(&race_pid, PI_RUNNING);
		atomic_store(&race_kick, false);
		race_take();
		/* "in the guest" until kicked, mostly briefly (exits in quick
		 * succession race the posters hardest), now and then up to 50 us
		 * (posts then meet a running vCPU: active notifications) */
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		long run_ns = (long)(race_rand(&s) % 4 ? race_rand(&s) % 1000 : race_rand(&s) % 50000);
		do {
			__asm__ volatile("pause");
			clock_gettime(CLOCK_MONOTONIC, &t1);
		} while (!atomic_load(&race_kick) &&
			 (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < run_ns);
		pi_set_state(&race_pid, PI_READY);
		if (race_rand(&s) % 4)
			continue;
		/* HLT: halted first, then the last look, then sleep */
		pi_set_state(&race_pid, PI_HALTED);
		if (pi_pending(&race_pid))
			continue;
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 200 * 1000000L; /* far longer than a poster takes */
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		int r;
		while ((r = sem_timedwait(&race_wake, &t)) < 0 && errno == EINTR)
			;
		if (r < 0 && pi_pending(&race_pid)) {
			/* asleep with something posted and no wake-up: lost,
			 * unless its poster is between pi_post and sem_post */
			struct timespec grace = { 0, 20 * 1000000L };
			nanosleep(&grace, NULL);
			if (sem_trywait(&race_wake) < 0)
				atomic_fetch_add(&race_errors, 1000);
		}
	}
	pi_set_state(&race_pid, PI_RUNNING);
	race_take();
	return NULL;
}

static void test_race(void **state)
{
	(void)state;
	pi_desc_init(&race_pid, 0);
	assert_int_equal(sem_init(&race_wake, 0, 0), 0);
	pthread_t vcpu, posters[RACE_POSTERS];
	assert_int_equal(pthread_create(&vcpu, NULL, race_vcpu, NULL), 0);
	for (uintptr_t i = 0; i < RACE_POSTERS; i++)
		assert_int_equal(pthread_create(&posters[i], NULL, race_poster, (void *)i), 0);
	/* RACE_MS at least, and on until every path was taken (on a loaded
	 * machine the threads may get the CPU in turns rather than at once),
	 * at most 10 s */
	for (int ms = 0; ms < 10000; ms += 10) {
		struct timespec t = { 0, 10 * 1000000L };
		nanosleep(&t, NULL);
		if (ms >= RACE_MS && race_posted > 1000 && race_kicks > 0 && race_wakeups > 0)
			break;
	}
	atomic_store(&race_stop, true);
	for (int i = 0; i < RACE_POSTERS; i++)
		pthread_join(posters[i], NULL);
	sem_post(&race_wake); /* a vCPU asleep at the end */
	pthread_join(vcpu, NULL);
	race_take();
	sem_destroy(&race_wake);
	print_message("      race: %lu posted, %lu taken, %lu active and %lu wake-up notifications\n",
		      (unsigned long)race_posted, (unsigned long)race_drained, (unsigned long)race_kicks,
		      (unsigned long)race_wakeups);
	assert_int_equal(atomic_load(&race_errors), 0);
	assert_int_equal(race_posted, race_drained);
	for (unsigned v = 0; v < 256; v++)
		assert_int_equal(atomic_load(&race_outstanding[v]), 0);
	/* the run exercised what it is for */
	assert_true(race_posted > 1000);
	assert_true(race_kicks > 0);
	assert_true(race_wakeups > 0);
	assert_true(race_kicks < race_posted); /* notifications coalesced */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_state_updates),
		cmocka_unit_test(test_post_per_state),
		cmocka_unit_test(test_reserved_vectors_and_or),
		cmocka_unit_test(test_on_after_drain),
		cmocka_unit_test(test_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
