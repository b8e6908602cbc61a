/* fwcfg: reads QEMU's fw_cfg as firmware does — select an item with a 16-bit
 * write to 0x510, read its bytes from 0x511 — and prints the signature (item
 * 0) and the CPU count (item 5, 16-bit little endian, as one digit 1..9). */
#include "common.h"
#define FW_SEL  0x510
#define FW_DATA 0x511
GUEST_START
	mov $FW_SEL, %dx
	xor %ax, %ax                  /* FW_CFG_SIGNATURE */
	outw %ax, %dx
	mov $FW_DATA, %dx
	mov $sig, %edi
	mov $4, %ecx
1:	inb %dx, %al
	mov %al, (%edi)
	inc %edi
	loop 1b
	PUTS sigl
	PUTS sig
	mov $FW_SEL, %dx
	mov $5, %ax                   /* FW_CFG_NB_CPUS */
	outw %ax, %dx
	mov $FW_DATA, %dx
	inb %dx, %al
	add $'0', %al
	mov %al, cpus
	PUTS cpul
	PUTS cpus
	/* the file directory (item 0x19): be32 count, then 64-byte entries
	 * {be32 size, be16 select, be16 reserved, name[56]}; find etc/e820 */
	mov $FW_SEL, %dx
	mov $0x19, %ax
	outw %ax, %dx
	mov $FW_DATA, %dx
	call rd_be32
	mov %eax, %ebp                /* entries left */
3:	test %ebp, %ebp
	jz 6f
	dec %ebp
	call rd_be32
	mov %eax, %ebx                /* size */
	mov $60, %ecx                 /* select, reserved, name */
	mov $ent, %edi
4:	inb %dx, %al
	mov %al, (%edi)
	inc %edi
	loop 4b
	mov $ent + 4, %esi
	mov $e820n, %edi
	mov $9, %ecx                  /* "etc/e820" and its NUL */
	repe cmpsb
	jne 3b
	mov %ebx, %eax                /* 20 bytes per entry */
	xor %edx, %edx
	mov $20, %ecx
	div %ecx
	add $'0', %al
	mov %al, n820
	PUTS e820l
	PUTS n820
6:	PUTS nl
	EXIT 0

rd_be32:                              /* 4 bytes from the data port, big endian */
	xor %eax, %eax
	mov $4, %ecx
5:	shl $8, %eax
	inb %dx, %al
	loop 5b
	ret
	PUTS32_BODY
	.data
sigl:	.asciz "fw_cfg signature: "
sig:	.fill 5, 1, 0
cpul:	.asciz ", cpus: "
cpus:	.fill 2, 1, 0
nl:	.asciz "\n"
e820l:	.asciz ", etc/e820 entries: "
e820n:	.asciz "etc/e820"
n820:	.fill 2, 1, 0
ent:	.fill 64, 1, 0
