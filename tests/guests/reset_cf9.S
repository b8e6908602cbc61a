/* reset_cf9: a hard reset through the reset control register at 0xcf9. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $0xcf9, %dx
	mov $0x06, %al
	outb %al, %dx
	EXIT 1
