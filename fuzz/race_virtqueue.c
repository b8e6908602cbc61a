/*
 * race_virtqueue: the virtqueue parser against a guest that rewrites its
 * rings *while* the device walks them (another vCPU does exactly that). One
 * thread plays the device — vq_pop / vq_push in a loop, restarting the queue
 * after every error — while another scribbles over descriptors, indirect
 * tables, avail entries and avail->idx as fast as it can, field by field.
 *
 * A time-of-check/time-of-use slip (a length or address re-read after it was
 * checked) shows up as an iovec outside RAM, caught by the independent check
 * below or by the PROT_NONE guard pages around RAM, or by ASan/UBSan. Not a
 * libFuzzer target: the interleaving is the input. Built by fuzz/fuzz.mk,
 * run for a few seconds by tests/cases_fuzz.py.
 *
 * usage: race_virtqueue SECONDS
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "memory.h"
#include "virtio/virtqueue.h"

#define RQ_PAGE 4096ull
#define RQ_RAM (256 * 1024ull)
#define RQ_SIZE 64
#define RQ_DESC 0x0ull
#define RQ_AVAIL 0x1000ull
#define RQ_USED 0x2000ull
#define RQ_TABLES 0x4000ull /* indirect tables: 0x4000..0x8000 */
#define RQ_BUFS 0x8000ull

static uint8_t *rq_ram;
static struct guest_mem rq_mem;
static atomic_bool rq_stop;

#define RQ_CHECK(c)                                                                          \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "race_virtqueue: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                             \
		}                                                                            \
	} while (0)

static uint64_t rq_next(uint64_t *s)
{
	/* xorshift64*: fast, and good enough to pick fields */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* An address a hostile driver would use: mostly good ones, so chains get
 * far enough to be rewritten under the walk. */
static uint64_t rq_addr(uint64_t r)
{
	switch (r & 7) {
	case 0: return RQ_RAM - (r >> 8 & 0xff);
	case 1: return ~0ull - (r >> 8 & 0xfff);
	case 2: return RQ_TABLES + (r >> 8 & 0x3ff0);
	default: return RQ_BUFS + (r >> 8) % (RQ_RAM - RQ_BUFS);
	}
}

static uint32_t rq_len(uint64_t r)
{
	switch (r >> 3 & 7) {
	case 0: return 0xffffffffu;
	case 1: return (uint32_t)RQ_RAM;
	case 2: return (uint32_t)(r >> 32) & 0x3ff0; /* indirect table sizes */
	default: return (uint32_t)(r >> 32) & 0xfff;
	}
}

static void *rq_guest(void *arg)
{
	(void)arg;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	while (!atomic_load_explicit(&rq_stop, memory_order_relaxed)) {
		uint64_t r = rq_next(&s);
		struct vq_desc *t;
		unsigned n;
		if (r & 1) { /* the ring's own table */
			t = (struct vq_desc *)(rq_ram + RQ_DESC);
			n = RQ_SIZE;
		} else {     /* one of the indirect tables area's slots */
			t = (struct vq_desc *)(rq_ram + RQ_TABLES);
			n = (unsigned)((0x8000 - RQ_TABLES) / 16);
		}
		struct vq_desc *d = &t[(r >> 1) % n];
		uint64_t v = rq_next(&s);
		/* one field at a time, each a single store: torn descriptors */
		switch (r >> 20 & 7) {
		case 0: __atomic_store_n(&d->addr, rq_addr(v), __ATOMIC_RELAXED); break;
		case 1: __atomic_store_n(&d->len, rq_len(v), __ATOMIC_RELAXED); break;
		case 2: __atomic_store_n(&d->flags, (uint16_t)(v & 7), __ATOMIC_RELAXED); break;
		case 3: __atomic_store_n(&d->next, (uint16_t)(v % (RQ_SIZE + 4)), __ATOMIC_RELAXED); break;
		case 4:
		case 5: { /* offer a head */
			uint16_t *avail = (uint16_t *)(rq_ram + RQ_AVAIL);
			uint16_t idx = __atomic_load_n(&avail[1], __ATOMIC_RELAXED);
			__atomic_store_n(&avail[2 + idx % RQ_SIZE], (uint16_t)(v % (RQ_SIZE + 2)), __ATOMIC_RELAXED);
			__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
			break;
		}
		case 6: { /* rewrite an already offered entry */
			uint16_t *avail = (uint16_t *)(rq_ram + RQ_AVAIL);
			__atomic_store_n(&avail[2 + v % RQ_SIZE], (uint16_t)(v >> 16), __ATOMIC_RELAXED);
			break;
		}
		default: /* a whole sane descriptor, so some chains do get popped */
			__atomic_store_n(&d->addr, RQ_BUFS + (v & 0xfff0), __ATOMIC_RELAXED);
			__atomic_store_n(&d->len, (uint32_t)(v >> 16) & 0xfff, __ATOMIC_RELAXED);
			__atomic_store_n(&d->flags, (uint16_t)(v >> 40 & 3), __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

static bool rq_in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)rq_ram, hi = lo + RQ_RAM;
	return a >= lo && a <= hi && len <= hi - a;
}

static void rq_check(const struct iovec *iov, unsigned n, uint64_t total)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++) {
		RQ_CHECK(iov[i].iov_len > 0);
		RQ_CHECK(rq_in_ram(iov[i].iov_base, iov[i].iov_len));
		volatile uint8_t *b = iov[i].iov_base;
		(void)b[0];
		(void)b[iov[i].iov_len - 1];
		sum += iov[i].iov_len;
	}
	RQ_CHECK(sum == total);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	uint8_t *map = mmap(NULL, RQ_RAM + 2 * RQ_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	RQ_CHECK(map != MAP_FAILED);
	rq_ram = map + RQ_PAGE;
	RQ_CHECK(mprotect(rq_ram, RQ_RAM, PROT_READ | PROT_WRITE) == 0);
	rq_mem = (struct guest_mem){ .base = rq_ram, .ram_size = RQ_RAM, .nr_regions = 1 };
	rq_mem.regions[0] = (struct mem_region){ .gpa = 0, .size = RQ_RAM, .hva = rq_ram };

	static struct virtqueue vq;
	static struct vq_elem e;
	RQ_CHECK(vq_start(&vq, &rq_mem, RQ_SIZE, RQ_DESC, RQ_AVAIL, RQ_USED, true, true) == VQ_OK);
	pthread_t guest;
	RQ_CHECK(pthread_create(&guest, NULL, rq_guest, NULL) == 0);

	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t pops = 0, errs = 0, empty = 0, loops = 0;
	for (;; loops++) {
		if ((loops & 1023) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
			/* the time asked for, and on until both paths were
			 * reached (a busy machine may starve the guest thread
			 * for a while), at most ten times as long */
			if (el > seconds && ((pops > 0 && errs > 0) || el > 10 * seconds))
				break;
		}
		int r = vq_pop(&vq, &e);
		if (r < 0) {
			errs++;
			/* the driver notices NEEDS_RESET, resets and starts over */
			__atomic_store_n((uint16_t *)(rq_ram + RQ_AVAIL + 2), 0, __ATOMIC_RELAXED);
			RQ_CHECK(vq_start(&vq, &rq_mem, RQ_SIZE, RQ_DESC, RQ_AVAIL, RQ_USED, loops & 1,
					  !(loops & 2)) == VQ_OK);
			continue;
		}
		if (r == 0) {
			empty++;
			continue;
		}
		pops++;
		RQ_CHECK(e.head < RQ_SIZE && e.n_in + e.n_out <= VQ_MAX_SEGS);
		rq_check(e.out, e.n_out, e.out_len);
		rq_check(e.in, e.n_in, e.in_len);
		vq_push(&vq, e.head, (uint32_t)(e.in_len > 16 ? 16 : e.in_len));
		(void)vq_need_interrupt(&vq);
	}
	atomic_store(&rq_stop, true);
	pthread_join(guest, NULL);
	printf("race_virtqueue: %.0f s, %lu chains popped, %lu errors (queue restarted), %lu empty polls\n",
	       seconds, (unsigned long)pops, (unsigned long)errs, (unsigned long)empty);
	RQ_CHECK(pops > 0 && errs > 0); /* both paths were reached */
	return 0;
}
