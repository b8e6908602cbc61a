/* hello: prints a line on COM1 and exits through isa-debug-exit with 0 (status 1). */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	mov $0x80000, %esp
	PUTS msg
	EXIT 0
	PUTS32_BODY
	.data
msg:	.asciz "Hello from an hvmm test guest!\n"
