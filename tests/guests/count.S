/* count: prints "count XXXXXXXX" (hex, from a counter kept in RAM) on COM1
 * about every 2^22 loop turns, forever; only --timeout or a signal ends it.
 * Used by the snapshot cases: a restored copy must go on from its count,
 * not start again at 0 — the counter lives in guest RAM, the loop's place
 * in the vCPU's registers. */
#include "common.h"
GUEST_START
1:	incl counter
	mov counter, %ebx
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
