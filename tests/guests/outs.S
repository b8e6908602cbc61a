/* outs: exactly N_OUTS OUTs to port 0x402 (no device there in hvmm, QEMU or
 * the raw bench program, so each is one plain user-space I/O exit), then
 * isa-debug-exit with EXIT_VALUE.
 * Tests: N_OUTS 1000, EXIT_VALUE 0 (status 1). Bench (bench/bench.mk): N_OUTS
 * 0 ("exits at once") and 200000, EXIT_VALUE 0x2a (status 85). */
#include "common.h"
#ifndef N_OUTS
#define N_OUTS 1000
#endif
#ifndef EXIT_VALUE
#define EXIT_VALUE 0
#endif
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $N_OUTS, %ecx
	mov $0x402, %dx
	/* `loop` with ECX=0 would run 2^32 times: skip the loop for N_OUTS=0. */
	jecxz 2f
1:	outb %al, %dx
	loop 1b
2:	EXIT EXIT_VALUE
