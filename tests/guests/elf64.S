/* elf64: an ELF64 executable: entered in long mode with identity-mapped
 * paging. Checks EFER.LMA and 64-bit arithmetic, prints, exits 0x30. */
	.text
	.code64
	.globl _start
_start:
	mov $0x80000, %rsp
	mov $0xc0000080, %ecx
	rdmsr
	test $0x400, %eax      /* EFER.LMA */
	jz bad
	mov $0x123456789, %rax /* only a 64-bit CPU keeps bit 32 */
	shr $32, %rax
	cmp $1, %rax
	jne bad
	lea msg(%rip), %rsi
1:	movb (%rsi), %al
	test %al, %al
	jz 3f
	mov %al, %ah
	mov $0x3fd, %dx
2:	inb %dx, %al
	test $0x20, %al
	jz 2b
	mov $0x3f8, %dx
	mov %ah, %al
	outb %al, %dx
	inc %rsi
	jmp 1b
3:	mov $0xf4, %dx
	mov $0x30, %eax
	outl %eax, %dx
	hlt
bad:	mov $0xf4, %dx
	mov $1, %eax
	outl %eax, %dx
	hlt
	.data
msg:	.asciz "long mode, 64-bit\n"
