/* outs: exactly 1000 OUTs to port 0x402 (no device there), then exit 0. */
#include "common.h"
#define N_OUTS 1000
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $N_OUTS, %ecx
	mov $0x402, %dx
1:	outb %al, %dx
	loop 1b
	EXIT 0
