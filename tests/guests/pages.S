/* pages: count.S with memory to show diff snapshots: it first fills 32 MiB
 * at 16 MiB (every word of page p holds p + 1), then counts like count.S,
 * each count also written into every word of page (count mod 8192) of that
 * block. So a full snapshot holds 32 MiB of data and a diff taken a few
 * counts later only the pages those counts wrote (and the counter's and
 * the stack's). Only --timeout or a signal ends it. */
#include "common.h"
#define BLOCK 0x1000000
#define NPAGES 8192
GUEST_START
	cld
	mov $BLOCK, %edi
	xor %ebx, %ebx
0:	lea 1(%ebx), %eax
	mov $1024, %ecx
	rep stosl
	inc %ebx
	cmp $NPAGES, %ebx
	jb 0b
1:	incl counter
	mov counter, %ebx
	mov %ebx, %edi
	and $(NPAGES - 1), %edi
	shl $12, %edi
	add $BLOCK, %edi
	mov %ebx, %eax
	mov $1024, %ecx
	rep stosl
	mov $line + 6, %edi  /* the 8 hex digits after "count " */
	mov $8, %ecx
2:	rol $4, %ebx
	mov %ebx, %eax
	and $0xf, %eax
	movb hex(%eax), %al
	movb %al, (%edi)
	inc %edi
	loop 2b
	PUTS line
	mov $0x400000, %ecx
3:	pause
	loop 3b
	jmp 1b
	PUTS32_BODY
	.data
counter: .long 0
hex:	.ascii "0123456789abcdef"
line:	.asciz "count 00000000\n"
