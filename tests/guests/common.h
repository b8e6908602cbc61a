/* Macros shared by the tiny test guests (GNU as, AT&T syntax, 32-bit unless noted). */
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

/* Multiboot v1 header, ELF path (flags: page-align modules, want memory info). */
#define MULTIBOOT_HEADER \
	.section .multiboot, "a"; .align 4; \
	.long 0x1BADB002; .long 0x3; .long -(0x1BADB002 + 0x3)

/* The start of every multiboot test guest: header, 32-bit code, a stack. */
#define GUEST_START \
	MULTIBOOT_HEADER; .text; .code32; .globl _start; _start: mov $0x80000, %esp

/* Print the NUL-terminated string at label s on COM1 (clobbers eax, edx, esi). */
.macro PUTS s
	mov $\s, %esi
	call puts32
.endm

/* End the VM: isa-debug-exit with value v (hvmm and QEMU exit (v<<1)|1). */
.macro EXIT v
	mov $DEBUG_EXIT, %dx
	mov $\v, %eax
	outl %eax, %dx
	cli
1:	hlt
	jmp 1b
.endm

/* puts32: body of the serial print routine, polling LSR.THRE like any 8250 driver. */
.macro PUTS32_BODY
puts32:
	movb (%esi), %al
	testb %al, %al
	jz 2f
	mov %al, %ah
	mov $COM1 + 5, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jz 1b
	mov $COM1, %dx
	mov %ah, %al
	outb %al, %dx
	inc %esi
	jmp puts32
2:	ret
.endm
