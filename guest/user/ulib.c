/*
 * ulib: the task entry, syscall helpers, and the mem* functions the compiler
 * may call. These live in user pages, so the kernel uses them too (no SMEP).
 */
#include <stddef.h>
#include <stdint.h>

#include "usys.h"

volatile int u_entry = U_ENTRY_INT3;
volatile uint64_t u_tsc_khz = 1000000;
const char *const u_entry_names[U_ENTRY_COUNT] = { "int80", "syscall", "int3" };
static volatile int u_marked;

void u_task_main(long (*fn)(long), long arg)
{
	if (!u_marked) {
		/* Boot-timer marker: first ring-3 instruction (after this check). */
		*(volatile uint32_t *)USER_MARKER_VA = BOOT_MARK_USER;
		u_marked = 1;
	}
	u_exit(fn(arg));
}

unsigned long u_strlen(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

long u_write(const char *s, unsigned long n)
{
	return u_sys(SYS_WRITE, (long)s, (long)n, 0);
}

long u_puts(const char *s)
{
	return u_write(s, u_strlen(s));
}

void u_exit(long code)
{
	u_sys(SYS_EXIT, code, 0, 0);
	for (;;) /* not reached: exit does not return */
		;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	if (p < q) {
		while (n--)
			*p++ = *q++;
	} else {
		while (n--)
			p[n] = q[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}
