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
	PUTS nl
	EXIT 0
	PUTS32_BODY
	.data
sigl:	.asciz "fw_cfg signature: "
sig:	.fill 5, 1, 0
cpul:	.asciz ", cpus: "
cpus:	.fill 2, 1, 0
nl:	.asciz "\n"
