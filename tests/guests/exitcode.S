/* exitcode: writes 0x2a to isa-debug-exit; hvmm and QEMU must exit (0x2a<<1)|1 = 85. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	EXIT 0x2a
