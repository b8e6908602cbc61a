/* fuzz_common: what every fuzz target shares — the byte reader its input is
 * decoded with, the FUZZ_DEBUG trace, guard-paged guest RAM, ioctls on the
 * fake VM's fd -1 answered without a syscall, the eventfd pool (FZ_EFD_POOL)
 * and the open-eventfd count that proves a tear-down closed every
 * irqfd/ioeventfd. */
#ifndef HVMM_FUZZ_COMMON_H
#define HVMM_FUZZ_COMMON_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"

/* FUZZ_DEBUG=1 in the environment: trace each operation (for reproducers).
 * -1 until the target reads the environment. */
static int fz_debug = -1;
#define FZ_LOG(...)                                  \
	do {                                         \
		if (fz_debug)                        \
			fprintf(stderr, __VA_ARGS__); \
	} while (0)

/* hvmm's one-line error messages (a guest driver error, a back end gone):
 * every target links with -Wl,--wrap=util_err (fuzz.mk), and they are
 * printed only under FUZZ_DEBUG — millions of runs would otherwise write
 * gigabytes of them. */
void __real_util_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __wrap_util_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __wrap_util_err(const char *fmt, ...)
{
	if (!fz_debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("hvmm: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * ioctl(2) on no fd: the fake VMs have vm_fd = kvm_fd = -1, so every
 * KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_IRQFD... hvmm makes fails with EBADF.
 * Every target links with -Wl,--wrap=ioctl (fuzz.mk), and a negative fd
 * fails here with that same EBADF without entering the kernel: on a host
 * where a syscall is expensive, these ioctls were a large part of
 * fuzz_uart's time (a KVM_IRQ_LINE at nearly every register access). hvmm's code runs exactly as before (same return value and errno);
 * any real fd goes to the real ioctl. A target may set fz_on_ioctl to see
 * (and check) what was asked of the missing VM.
 */
#include <errno.h>
static void (*fz_on_ioctl)(unsigned long request, void *arg);
int __real_ioctl(int fd, unsigned long request, ...);
int __wrap_ioctl(int fd, unsigned long request, ...);
int __wrap_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *); /* every request hvmm makes takes one pointer or int at most */
	va_end(ap);
	if (fd < 0) {
		if (fz_on_ioctl)
			fz_on_ioctl(request, arg);
		errno = EBADF;
		return -1;
	}
	return __real_ioctl(fd, request, arg);
}

/*
 * With FZ_EFD_POOL defined before including this (and -Wl,--wrap=eventfd,
 * --wrap=close,--wrap=write: fuzz.mk's FUZZ_WRAP_EFD), the eventfds hvmm
 * makes (ioeventfds, irqfds, doorbells: always eventfd(0, EFD_NONBLOCK |
 * EFD_CLOEXEC)) come from a pool of real eventfds that close() hands back
 * instead of closing. A device made and destroyed for every input made ~70
 * eventfd2 + close syscalls per input, most of fuzz_pci_config's time.
 * The code under test still gets a real eventfd (poll, read and write on it
 * behave as on a fresh one): one written since it was handed out (a write
 * through this wrapper) is drained with a read when it is handed out again,
 * so its counter starts at 0 like a new one's. (Only for targets without a
 * real epoll loop: a pooled fd "closed" this way would stay in an epoll set.)
 * Stricter than before: a
 * close of a pooled eventfd not handed out (a double close) and a write to
 * one after its close fail at once, and fz_efd_in_use() is an exact,
 * syscall-free leak count.
 */
#ifdef FZ_EFD_POOL
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#define FZ_EFD_MAX_FD 4096
static unsigned char fz_efd_state[FZ_EFD_MAX_FD]; /* 0 not pooled, 1 free, 2 handed out */
static bool fz_efd_dirty[FZ_EFD_MAX_FD];
static int fz_efd_free[FZ_EFD_MAX_FD];
static unsigned fz_efd_nfree, fz_efd_out;

int __real_eventfd(unsigned int initval, int flags);
int __real_close(int fd);
ssize_t __real_write(int fd, const void *buf, size_t n);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_close(int fd);
ssize_t __wrap_write(int fd, const void *buf, size_t n);

static void fz_efd_fail(const char *what, int fd)
{
	fprintf(stderr, "fuzz: eventfd pool: %s (fd %d)\n", what, fd);
	abort();
}

int __wrap_eventfd(unsigned int initval, int flags)
{
	if (initval != 0 || flags != (EFD_NONBLOCK | EFD_CLOEXEC))
		return __real_eventfd(initval, flags); /* not a kind the pool keeps */
	int fd;
	if (fz_efd_nfree) {
		fd = fz_efd_free[--fz_efd_nfree];
		if (fz_efd_dirty[fd]) {
			uint64_t cnt;
			if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
				fz_efd_fail("cannot drain", fd);
			fz_efd_dirty[fd] = false;
		}
	} else {
		fd = __real_eventfd(0, flags);
		if (fd < 0)
			return fd;
		if (fd >= FZ_EFD_MAX_FD)
			return fd; /* beyond the table: an ordinary eventfd */
	}
	fz_efd_state[fd] = 2;
	fz_efd_out++;
	return fd;
}

int __wrap_close(int fd)
{
	if (fd < 0 || fd >= FZ_EFD_MAX_FD || !fz_efd_state[fd])
		return __real_close(fd);
	if (fz_efd_state[fd] != 2)
		fz_efd_fail("closed twice", fd);
	fz_efd_state[fd] = 1;
	fz_efd_free[fz_efd_nfree++] = fd;
	fz_efd_out--;
	return 0;
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	if (fd >= 0 && fd < FZ_EFD_MAX_FD && fz_efd_state[fd]) {
		if (fz_efd_state[fd] != 2)
			fz_efd_fail("written after its close", fd);
		fz_efd_dirty[fd] = true;
	}
	return __real_write(fd, buf, n);
}

/* pooled eventfds handed out and not closed */
static inline unsigned fz_efd_in_use(void)
{
	return fz_efd_out;
}
#endif

/* eventfds open in this process (irqfds, ioeventfds), less those it was
 * started with (`perf record` hands its child one); libFuzzer itself has
 * none. With the pool, its free eventfds are open but not in use. */
static unsigned fz_efd_inherited;
static unsigned fz_eventfds_open(void);
__attribute__((constructor)) static void fz_efd_count_inherited(void)
{
	fz_efd_inherited = fz_eventfds_open();
}

static inline unsigned fz_eventfds(void)
{
	unsigned n = fz_eventfds_open() - fz_efd_inherited;
#ifdef FZ_EFD_POOL
	n -= fz_efd_nfree;
#endif
	return n;
}

static unsigned fz_eventfds_open(void)
{
	unsigned n = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return 0;
	for (struct dirent *e; (e = readdir(dir));) {
		char path[64], link[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = 0;
			n += strstr(link, "eventfd") != NULL;
		}
	}
	closedir(dir);
	return n;
}

struct fz_in {
	const uint8_t *p;
	size_t n;
};

/* The next `bytes` bytes (<= 8) as a little-endian number; zeros once the
 * input runs out, so every input decodes to something. */
static inline uint64_t fz_take(struct fz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t c = 0;
		if (in->n) {
			c = *in->p++;
			in->n--;
		}
		v |= (uint64_t)c << (8 * i);
	}
	return v;
}

/* An access size: 1, 2, 4 or 8. */
static inline unsigned fz_size(struct fz_in *in)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	return sizes[fz_take(in, 1) & 3];
}

/* size bytes of zeroed RAM with a PROT_NONE page right before and after it,
 * so an access just outside faults at once; NULL if the host refuses. */
static inline uint8_t *fz_guarded_map(uint64_t size)
{
	uint8_t *map = mmap(NULL, size + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			    -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map + 4096, size, PROT_READ | PROT_WRITE) < 0)
		return NULL;
	return map + 4096;
}

/* A guest_mem of one region at guest-physical 0 over ram. */
static inline void fz_mem_one(struct guest_mem *m, uint8_t *ram, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->base = ram;
	m->ram_size = size;
	m->nr_regions = 1;
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = size, .hva = ram };
}

#endif
