/*
 * usys: syscall wrappers for ring 3. Every caller-saved register is declared
 * clobbered, which lets the kernel entries skip saving them.
 */
#ifndef GUEST_USYS_H
#define GUEST_USYS_H

#include "../layout.h"
#include "user.h"

#define U_SYS_CLOBBERS "rcx", "r8", "r9", "r10", "r11", "memory", "cc"

static inline long u_sys_int80(long nr, long a, long b, long c)
{
	__asm__ volatile("int $0x80" : "+a"(nr), "+D"(a), "+S"(b), "+d"(c) : : U_SYS_CLOBBERS);
	return nr;
}
static inline long u_sys_syscall(long nr, long a, long b, long c)
{
	__asm__ volatile("syscall" : "+a"(nr), "+D"(a), "+S"(b), "+d"(c) : : U_SYS_CLOBBERS);
	return nr;
}
static inline long u_sys_int3(long nr, long a, long b, long c)
{
	__asm__ volatile("int3" : "+a"(nr), "+D"(a), "+S"(b), "+d"(c) : : U_SYS_CLOBBERS);
	return nr;
}
static inline long u_sys(long nr, long a, long b, long c)
{
	switch (u_entry) {
	case U_ENTRY_INT80:
		return u_sys_int80(nr, a, b, c);
	case U_ENTRY_SYSCALL:
		return u_sys_syscall(nr, a, b, c);
	default:
		return u_sys_int3(nr, a, b, c);
	}
}

long u_write(const char *s, unsigned long n);
long u_puts(const char *s);
__attribute__((noreturn)) void u_exit(long code);
unsigned long u_strlen(const char *s);

#endif
