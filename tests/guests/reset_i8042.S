/* reset_i8042: pulses the reset line through the keyboard controller. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $0xfe, %al
	outb %al, $0x64
	EXIT 1
