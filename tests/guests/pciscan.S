/* pciscan: scans PCI bus 0 with configuration mechanism #1 (a dword to
 * CONFIG_ADDRESS 0xcf8, then a dword from CONFIG_DATA 0xcfc), function 0 of
 * each of the 32 slots, and prints one line per device present:
 * "00:SS.0 VVVV:DDDD class CCCCCC". Absent slots read all-ones. */
#include "common.h"
GUEST_START
	xor %ebx, %ebx                /* slot */
1:	xor %ecx, %ecx
	call cf8rd
	cmp $0xffffffff, %eax
	je 2f
	mov %eax, ids
	mov $8, %ecx                  /* revision and class */
	call cf8rd
	shr $8, %eax
	mov %eax, cls
	mov $line, %edi
	mov $pfx, %esi
	call cpy
	mov %ebx, %eax
	mov $2, %ecx
	call tohex
	mov $fn0, %esi
	call cpy
	movzwl ids, %eax
	mov $4, %ecx
	call tohex
	movb $':', (%edi)
	inc %edi
	movzwl ids + 2, %eax
	mov $4, %ecx
	call tohex
	mov $clsl, %esi
	call cpy
	mov cls, %eax
	mov $6, %ecx
	call tohex
	movb $'\n', (%edi)
	movb $0, 1(%edi)
	PUTS line
2:	inc %ebx
	cmp $32, %ebx
	jb 1b
	PUTS done
	EXIT 0

/* cf8rd: dword register %ecx of 00:%ebx.0 into %eax (clobbers edx) */
cf8rd:
	mov %ebx, %eax
	shl $11, %eax
	or %ecx, %eax
	or $0x80000000, %eax
	mov $0xcf8, %dx
	outl %eax, %dx
	mov $0xcfc, %dx
	inl %dx, %eax
	ret

/* cpy: the string at %esi to %edi, without its NUL; %edi ends after it */
cpy:
	movb (%esi), %al
	test %al, %al
	jz 1f
	movb %al, (%edi)
	inc %esi
	inc %edi
	jmp cpy
1:	ret

/* tohex: the low %ecx hex digits of %eax at %edi, %edi ends after them
 * (clobbers eax, ecx, edx) */
tohex:
	push %ebx
	mov %ecx, %ebx
	lea -1(%edi, %ecx), %edi
1:	mov %eax, %edx
	and $0xf, %edx
	movb hexd(%edx), %dl
	movb %dl, (%edi)
	dec %edi
	shr $4, %eax
	loop 1b
	lea 1(%edi, %ebx), %edi
	pop %ebx
	ret

	PUTS32_BODY
	.data
hexd:	.ascii "0123456789abcdef"
pfx:	.asciz "00:"
fn0:	.asciz ".0 "
clsl:	.asciz " class "
done:	.asciz "scan done\n"
	.align 4
ids:	.long 0
cls:	.long 0
line:	.fill 64, 1, 0
