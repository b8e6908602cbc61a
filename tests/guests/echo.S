/* echo: polls COM1 for input and echoes every byte back until it reads '.',
 * then exits 0. Exercises the UART receive path fed from hvmm's stdin. */
#include "common.h"
GUEST_START
	PUTS ready
1:	mov $(COM1 + 5), %dx       /* LSR.DR: a byte is waiting */
2:	inb %dx, %al
	testb $1, %al
	jz 2b
	mov $COM1, %dx
	inb %dx, %al
	cmp $'.', %al
	je 3f
	mov %al, %ah
	mov $(COM1 + 5), %dx
4:	inb %dx, %al
	testb $0x20, %al
	jz 4b
	mov $COM1, %dx
	mov %ah, %al
	outb %al, %dx
	jmp 1b
3:	PUTS bye
	EXIT 0
	PUTS32_BODY
	.data
ready:	.asciz "ready\n"
bye:	.asciz "\nbye\n"
