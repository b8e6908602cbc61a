/* halt: HLT with interrupts off: a vCPU that never wakes; --timeout ends it. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	cli
1:	hlt
	jmp 1b
