/* ecam: finds the PCIe ECAM window the way an OS does — the RSDP in
 * [0xe0000, 0x100000), the RSDT, its MCFG table — then reads every dword of
 * the first 256 bytes of 00:SS.0 for all 32 slots through both ECAM and
 * mechanism #1 (0xcf8/0xcfc) and compares them; then writes the host bridge's
 * cache-line-size register through one and reads it back through the other.
 * Exit: debug-exit 0 all agree ("ecam == cf8 on N functions"), 2 a mismatch,
 * 3 no RSDP / MCFG, 4 an MCFG this guest cannot use (above 4 GiB, bus != 0). */
#include "common.h"
GUEST_START
	mov $0xe0000, %esi
1:	cmpl $0x20445352, (%esi)      /* "RSD " */
	jne 2f
	cmpl $0x20525450, 4(%esi)     /* "PTR " */
	je 3f
2:	add $16, %esi
	cmp $0x100000, %esi
	jb 1b
	PUTS nomcfg
	EXIT 3
3:	mov 16(%esi), %ebx            /* RSDT */
	mov 4(%ebx), %ecx
	sub $36, %ecx
	shr $2, %ecx                  /* entries */
	lea 36(%ebx), %esi
4:	test %ecx, %ecx
	jnz 5f
	PUTS nomcfg
	EXIT 3
5:	mov (%esi), %eax
	cmpl $0x4746434d, (%eax)      /* "MCFG" */
	je 6f
	add $4, %esi
	dec %ecx
	jmp 4b
6:	mov 44(%eax), %ebp            /* first allocation: base (low dword) */
	cmpl $0, 48(%eax)
	jne 7f
	cmpb $0, 54(%eax)             /* start bus */
	je 8f
7:	PUTS badmcfg
	EXIT 4
8:	PUTS mcfgok
	xor %ebx, %ebx                /* slot */
	xor %edi, %edi                /* functions compared */
10:	xor %ecx, %ecx
	call cf8rd
	mov %eax, %esi
	call ecamrd
	cmp %eax, %esi
	jne mismatch
	cmp $0xffffffff, %esi         /* absent: all-ones both ways */
	je 12f
	inc %edi
11:	add $4, %ecx
	cmp $256, %ecx
	jae 12f
	call cf8rd
	mov %eax, %esi
	call ecamrd
	cmp %eax, %esi
	jne mismatch
	jmp 11b
12:	inc %ebx
	cmp $32, %ebx
	jb 10b
	/* a write through ECAM is seen through CF8, and back */
	movb $0x08, 0x0c(%ebp)        /* 00:00.0 cache line size */
	mov $0x8000000c, %eax
	mov $0xcf8, %dx
	outl %eax, %dx
	mov $0xcfc, %dx
	inb %dx, %al
	cmp $0x08, %al
	jne mismatch
	xor %al, %al
	outb %al, %dx
	cmpb $0, 0x0c(%ebp)
	jne mismatch
	mov %edi, %eax
	add $'0', %al
	mov %al, count
	PUTS okl
	PUTS count
	PUTS okr
	EXIT 0
mismatch:
	PUTS differ
	EXIT 2

/* cf8rd: dword register %ecx of 00:%ebx.0 through 0xcf8/0xcfc into %eax */
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

/* ecamrd: the same register through ECAM (base %ebp) */
ecamrd:
	mov %ebx, %eax
	shl $15, %eax
	add %ecx, %eax
	add %ebp, %eax
	mov (%eax), %eax
	ret

	PUTS32_BODY
	.data
nomcfg:	.asciz "no ACPI MCFG table\n"
badmcfg: .asciz "MCFG: ECAM not usable here\n"
mcfgok:	.asciz "MCFG found\n"
differ:	.asciz "ECAM and CF8 disagree\n"
okl:	.asciz "ecam == cf8 on "
okr:	.asciz " functions\n"
count:	.fill 2, 1, 0
