/* spin: loops forever; only --timeout ends it. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
1:	jmp 1b
