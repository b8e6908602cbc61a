/* fuzz_common: what every fuzz target shares — the byte reader its input is
 * decoded with, the FUZZ_DEBUG trace, guard-paged guest RAM, and the
 * open-eventfd count that proves a tear-down closed every irqfd/ioeventfd. */
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
 * where a syscall is expensive, these ioctls were most of some targets'
 * time. hvmm's code runs exactly as before (same return value and errno);
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

/* eventfds open in this process (irqfds, ioeventfds); libFuzzer itself has none */
static inline unsigned fz_eventfds(void)
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
