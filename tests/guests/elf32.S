/* elf32: a plain ELF32 executable (no multiboot header): entered in flat
 * protected mode with paging off. Checks CR0, prints, exits 0x20. */
#include "common.h"
	.text
	.code32
	.globl _start
_start:
	mov $0x80000, %esp
	mov %cr0, %eax
	and $0x80000001, %eax
	cmp $1, %eax          /* PE set, PG clear */
	jne bad
	PUTS msg
	EXIT 0x20
bad:	EXIT 1
	PUTS32_BODY
	.data
msg:	.asciz "protected mode, paging off\n"
