/* util: small helpers shared by every module — time, sizes, logging, exit codes. */
#ifndef HVMM_UTIL_H
#define HVMM_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HVMM_VERSION "0.1.0"

/*
 * hvmm's process exit status. Odd values belong to the guest: a write of v to
 * the isa-debug-exit port ends hvmm with (v << 1) | 1, exactly as QEMU does, so
 * every status hvmm chooses itself is even and can never be confused with one.
 */
enum hvmm_exit {
	HVMM_EXIT_OK = 0,          /* guest shut down or reset cleanly */
	HVMM_EXIT_USAGE = 2,       /* bad command line */
	HVMM_EXIT_IMAGE = 4,       /* image or module could not be loaded */
	HVMM_EXIT_HOST = 6,        /* /dev/kvm, a KVM ioctl or the host failed */
	HVMM_EXIT_GUEST_CRASH = 8, /* triple fault, emulation failure, bad exit */
	HVMM_EXIT_SECCOMP = 10,    /* a thread made a system call its seccomp filter forbids */
	HVMM_EXIT_MIGRATE = 12,    /* --incoming: the stream broke or was malformed; no guest ran */
	HVMM_EXIT_TIMEOUT = 124,   /* --timeout expired (same value as timeout(1)) */
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KIB(x) ((uint64_t)(x) << 10)
#define MIB(x) ((uint64_t)(x) << 20)
#define GIB(x) ((uint64_t)(x) << 30)

/* Monotonic nanoseconds; vDSO-backed, cheap enough for the exit hot path. */
uint64_t util_now_ns(void);
struct timespec;
/* CLOCK_REALTIME plus ns (< 1 s): the deadline pthread_cond_timedwait takes. */
void util_realtime_after(struct timespec *ts, long ns);
/* Nanoseconds since hvmm started (util_mark_start() is called first in main). */
void util_mark_start(void);
uint64_t util_since_start_ns(void);

/* Parse "128M", "2G", "4096", "1k", "512MiB": bytes into *out. 0 or -1. */
int util_parse_size(const char *s, uint64_t *out);
/* Parse a non-negative decimal integer that must fit in [min, max]. */
int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "hvmm: <msg>" on stderr; the one-line error style for users. */
void util_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void util_verr(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* The calling thread's messages say "hvmm: WHAT: ..." from now on (NULL:
 * plain again); WHAT must stay valid meanwhile. */
void util_err_prefix(const char *what);
/* The last message util_err printed on this thread ("" after clearing). */
const char *util_last_err(void);
void util_clear_last_err(void);
/* Open an input file for reading: a regular file (else -EISDIR/-EINVAL) of
 * at most max bytes (else -EFBIG). The fd (close-on-exec) with its size in
 * *len, or -errno. */
int util_open_input(const char *path, uint64_t max, size_t *len);
/* Read a whole file into a malloc'd buffer. 0, or -errno as util_open_input
 * says (-EFBIG before any allocation). */
int util_read_file(const char *path, uint8_t **buf, size_t *len, uint64_t max);

/* Write all len bytes of buf to a file (a blocking fd): 0 or -errno. */
int util_write_all(int fd, const void *buf, size_t len);

/* Write all of buf to fd (the guest's output: a terminal, pipe or file that
 * may stall), unless *give_up is set (a VM's `stopping`): it is looked at
 * whenever fd has not taken more for UTIL_OUT_POLL_MS, and after a signal.
 * So a reader that stops reading stalls the writer, but never past a VM
 * stop. Returns false if the output was given up or is gone (closed pipe,
 * full disk). */
#define UTIL_OUT_POLL_MS 100
#define UTIL_OUT_CHUNK 512
bool util_write_out(int fd, const void *buf, size_t len, const atomic_bool *give_up);

static inline bool util_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	/* off + len <= size without overflow */
	return off <= size && len <= size - off;
}

#endif
