/* outs: exactly N_OUTS OUTs to port 0x402 (no device there in hvmm, QEMU or
 * the raw bench program, so each is one plain user-space I/O exit), then
 * isa-debug-exit with EXIT_VALUE. With -DUSE_CPUID, N_OUTS CPUIDs instead:
 * exits that KVM handles in the kernel and never passes to the VMM.
 * Tests: N_OUTS 1000, EXIT_VALUE 0 (status 1). Bench (bench/bench.mk): N_OUTS
 * 0 ("exits at once") and more, EXIT_VALUE 0x2a (status 85). */
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
#ifdef USE_CPUID
	mov %ecx, %esi
1:	xor %eax, %eax
	xor %ecx, %ecx
	cpuid
	dec %esi
	jnz 1b
#else
1:	outb %al, %dx
	loop 1b
#endif
2:	EXIT EXIT_VALUE
