/* Bench guest: exactly N_OUTS OUTs to port 0x402 (no device there in any of the
 * VMMs compared, so each is one plain user-space I/O exit), then isa-debug-exit
 * with 0x2a, so every VMM must end with status (0x2a<<1)|1 = 85.
 * Built with -DN_OUTS=0 (the "exits at once" guest) and -DN_OUTS=200000. */
#include "common.h"
#ifndef N_OUTS
#error "build with -DN_OUTS=<count>"
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
2:	EXIT 0x2a
