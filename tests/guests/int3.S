/* int3: a ring-0 int3 with a valid IDT: the CPU delivers it to the guest's
 * own handler without the VMM, which prints and exits 3 (status 7). */
#include "common.h"
GUEST_START
	mov $handler, %eax
	mov %ax, idt + 3*8
	shr $16, %eax
	mov %ax, idt + 3*8 + 6
	mov %cs, %ax
	mov %ax, idt + 3*8 + 2
	movw $0x8e00, idt + 3*8 + 4      /* present, DPL0, 32-bit interrupt gate */
	lidt idtr
	int3
	EXIT 1
handler:
	PUTS msg
	EXIT 3
	PUTS32_BODY
	.data
	.align 8
idt:	.fill 32, 8, 0
idtr:	.word 32*8 - 1
	.long idt
msg:	.asciz "int3 handled in ring 0\n"
