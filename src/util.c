#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t start_ns;

void util_realtime_after(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

uint64_t util_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void util_mark_start(void)
{
	start_ns = util_now_ns();
}

uint64_t util_since_start_ns(void)
{
	return util_now_ns() - start_ns;
}

int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int util_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: return -1;
	}
	/* Accept the suffix alone, or followed by "B" / "iB" (2G, 2GB, 2GiB). */
	if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The calling thread's last message (the API's pre-boot start reports
 * what stopped a VM from being built). */
static __thread char util_last[256];
/* What the calling thread's messages are about (several VMs: which). */
static __thread const char *util_prefix;

void util_err_prefix(const char *what)
{
	util_prefix = what;
}

void util_verr(const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	vsnprintf(util_last, sizeof(util_last), fmt, copy);
	va_end(copy);
	fputs("hvmm: ", stderr);
	if (util_prefix)
		fprintf(stderr, "%s: ", util_prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

const char *util_last_err(void)
{
	return util_last;
}

void util_clear_last_err(void)
{
	util_last[0] = 0;
}

void util_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	util_verr(fmt, ap);
	va_end(ap);
}

int util_open_input(const char *path, uint64_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int e = fstat(fd, &st) < 0 ? -errno : 0;
	if (!e && !S_ISREG(st.st_mode)) /* a directory, device or FIFO is no image */
		e = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (!e && (uint64_t)st.st_size > max) /* cannot fit where it goes: refuse before the heap grows */
		e = -EFBIG;
	if (e) {
		close(fd);
		return e;
	}
	*len = (size_t)st.st_size;
	return fd;
}

int util_read_file(const char *path, uint8_t **buf, size_t *len, uint64_t max)
{
	size_t n;
	int fd = util_open_input(path, max, &n);
	if (fd < 0)
		return fd;
	uint8_t *b = malloc(n ? n : 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? -errno : -EIO;
			free(b);
			close(fd);
			return e;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

bool util_write_out(int fd, const void *buf, size_t len, const atomic_bool *give_up)
{
	const uint8_t *p = buf;
	while (len) {
		/* Wait until fd takes more, checking now and then whether to go
		 * on: a blocked write() could only be ended by a signal, and the
		 * one a stop sends may come just before the write starts. */
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int n = poll(&pfd, 1, UTIL_OUT_POLL_MS);
		if (n < 0 && errno != EINTR)
			return false;
		if (n <= 0) {
			if (atomic_load(give_up))
				return false;
			continue;
		}
		if (pfd.revents & (POLLERR | POLLNVAL))
			return false;
		/* A small piece: POLLOUT promises room, not room for everything. */
		ssize_t r = write(fd, p, len < UTIL_OUT_CHUNK ? len : UTIL_OUT_CHUNK);
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (atomic_load(give_up))
				return false;
			continue;
		}
		if (r <= 0)
			return false;
		p += r;
		len -= (size_t)r;
	}
	return true;
}

int util_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
