/* flat16: a flat binary entered in real mode at CS=0x1000, IP=0 (hvmm's flat
 * loader, like kvmtool). Checks CR0.PE=0 and CS=0x1000, prints, exits 0x10. */
	.code16
	.text
	.globl _start
_start:
	smsw %ax
	test $1, %ax
	jnz bad
	mov %cs, %ax
	cmp $0x1000, %ax
	jne bad
	mov %ax, %ds
	mov $msg, %si
	call puts16
	mov $0xf4, %dx
	mov $0x10, %ax
	outw %ax, %dx
	hlt
bad:	mov $0xf4, %dx
	mov $1, %ax
	outw %ax, %dx
	hlt
puts16:
	lodsb
	test %al, %al
	jz 2f
	mov %al, %ah
	mov $0x3fd, %dx
1:	inb %dx, %al
	test $0x20, %al
	jz 1b
	mov $0x3f8, %dx
	mov %ah, %al
	outb %al, %dx
	jmp puts16
2:	ret
msg:	.asciz "real mode at 1000:0000\n"
