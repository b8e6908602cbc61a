/* boot: options from the multiboot command line. */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#include <stdbool.h>
#include <stdint.h>

struct boot_options {
	const char *test;    /* test=NAME (default all) */
	const char *syscall; /* syscall=int80|syscall|int3|auto */
	bool no_x2apic;      /* apic=xapic */
	uint64_t iters;      /* iters=N: syscall round trips per entry */
	const char *extra[16]; /* other key=value words, for the tests to read */
	unsigned nextra;
};

extern struct boot_options boot_opts;

#endif
