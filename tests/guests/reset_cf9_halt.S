/* reset_cf9_halt: a reset through 0xcf9, then halt with interrupts off. KVM
 * may buffer the write (0xcf9 shares the coalesced zone of 0xcf8), and after
 * it this guest never exits to hvmm again: the reset must still happen. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $0xcf9, %dx
	mov $0x06, %al
	outb %al, %dx
	cli
1:	hlt
	jmp 1b
