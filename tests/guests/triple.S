/* triple: an IDT with no entries, then #UD: the CPU cannot deliver it, nor
 * the #DF that follows — a triple fault, which resets a PC. */
#include "common.h"
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
	lidt idt0
	ud2
	.data
idt0:	.word 0
	.long 0
