/* edu: drives QEMU's educational PCI device (1234:11e8) the way a driver
 * would, for hvmm's own model (--device edu) and for the real one passed
 * through with VFIO (--device vfio,host=...): finds it on bus 0, turns on
 * memory decoding and bus mastering, then checks through BAR 0
 *   - the identification register (0x010000ed) and liveness (reads ~value),
 *   - factorial (5! = 120, polling the busy bit),
 *   - DMA from guest RAM to the device buffer and back (polling),
 *   - the BAR moved 16 MiB up (decoding off, new base, on): still there,
 *   - MSI: the capability programmed for vector 0x40 to APIC 0, an
 *     interrupt raised through register 0x60 reaches the IDT handler;
 *     built with -DINTX (edu_intx.elf) instead INTx: the IOAPIC pin the
 *     interrupt line register names, level-triggered, vector 0x40, raised
 *     twice (the second proves the line was re-armed after the EOI).
 * Prints one line per check ("edu: ... ok") and "edu: all ok", exit 0; a
 * failing check prints "edu: FAIL ..." and exits 1. Polls are bounded; a
 * missing interrupt leaves the guest halted (the harness's --timeout). */
#include "common.h"
#define LAPIC  0xfee00000
#define IOAPIC 0xfec00000
#define VEC    0x40
#define SRC    0x300000
#define DST    0x301000
#define DEVBUF 0x40000
#define POLLS  0x2000000
#define MOVE   0x1000000

.macro FAIL msg
	mov $\msg, %esi
	jmp fail
.endm

GUEST_START
	mov $handler, %eax
	mov %ax, idt + VEC*8
	shr $16, %eax
	mov %ax, idt + VEC*8 + 6
	mov %cs, %ax
	mov %ax, idt + VEC*8 + 2
	movw $0x8e00, idt + VEC*8 + 4
	lidt idtr
	mov $0xff, %al                     /* 8259s masked */
	outb %al, $0x21
	outb %al, $0xa1
	movl $0x1ff, LAPIC + 0xf0          /* SVR: enable */
	movl $0, LAPIC + 0x80              /* TPR 0 */

	xor %ebx, %ebx                     /* slot */
1:	xor %ecx, %ecx
	call cfgrd
	cmp $0x11e81234, %eax
	je 2f
	inc %ebx
	cmp $32, %ebx
	jb 1b
	FAIL nodev
2:	mov $0x10, %ecx                    /* BAR 0 */
	call cfgrd
	and $0xfffffff0, %eax
	mov %eax, %ebp
	mov $4, %ecx                       /* command: memory decode, bus master */
	call cfgrd
	or $0x6, %eax
	call cfgwr
	call regs
	PUTS okregs

	/* factorial */
	movl $5, 8(%ebp)
	mov $POLLS, %ecx
3:	testl $1, 0x20(%ebp)
	jz 4f
	pause
	loop 3b
	FAIL factbusy
4:	cmpl $120, 8(%ebp)
	je 5f
	FAIL factbad
5:	PUTS okfact

	/* DMA: RAM -> device buffer -> other RAM */
	movl $0x5a5aa5a5, SRC
	movl $0x01234567, SRC + 4
	movl $0, DST
	movl $0, DST + 4
	movl $SRC, 0x80(%ebp)
	movl $0, 0x84(%ebp)
	movl $DEVBUF, 0x88(%ebp)
	movl $0, 0x8c(%ebp)
	movl $8, 0x90(%ebp)
	movl $0, 0x94(%ebp)
	movl $1, 0x98(%ebp)                /* start, RAM to device */
	call dmawait
	movl $DEVBUF, 0x80(%ebp)
	movl $DST, 0x88(%ebp)
	movl $3, 0x98(%ebp)                /* start, device to RAM */
	call dmawait
	cmpl $0x5a5aa5a5, DST
	jne 6f
	cmpl $0x01234567, DST + 4
	je 7f
6:	FAIL dmabad
7:	PUTS okdma

	/* move the BAR */
	mov $4, %ecx
	call cfgrd
	and $~2, %eax
	call cfgwr
	add $MOVE, %ebp
	mov $0x10, %ecx
	mov %ebp, %eax
	call cfgwr
	mov $4, %ecx
	call cfgrd
	or $2, %eax
	call cfgwr
	call regs
	PUTS okmove

#ifdef INTX
	/* INTx: pin and line from configuration space */
	mov $0x3c, %ecx
	call cfgrd
	test $0xff00, %eax                 /* interrupt pin */
	jnz 20f
	FAIL nointx
20:	movzbl %al, %edi                   /* line: the IOAPIC pin */
	cmp $24, %edi
	jb 21f
	FAIL nointx
21:	lea 0x10(,%edi,2), %eax            /* its redirection entry: low dword */
	mov %eax, IOAPIC
	movl $(VEC | (1 << 15)), IOAPIC + 0x10  /* fixed, level, active high, unmasked */
	lea 0x11(,%edi,2), %eax
	mov %eax, IOAPIC
	movl $0, IOAPIC + 0x10             /* destination APIC 0 */
	movl $1, 0x60(%ebp)                /* raise */
22:	cmpl $1, count
	jae 23f
	sti
	hlt
	jmp 22b
23:	cli
	movl $2, 0x60(%ebp)                /* and again, after the EOI */
24:	cmpl $2, count
	jae 13f
	sti
	hlt
	jmp 24b
#else
	/* MSI: find the capability */
	mov $0x34, %ecx
	call cfgrd
	and $0xfc, %eax
	mov %eax, %edi
8:	test %edi, %edi
	jnz 9f
	FAIL nomsi
9:	mov %edi, %ecx
	call cfgrd
	cmp $0x05, %al
	je 10f
	shr $8, %eax
	and $0xfc, %eax
	mov %eax, %edi
	jmp 8b
10:	mov %eax, %esi                     /* id, next, control */
	lea 4(%edi), %ecx
	mov $LAPIC, %eax                   /* destination APIC 0 */
	call cfgwr
	test $0x800000, %esi               /* 64-bit: address high, data at +12 */
	jz 11f
	lea 8(%edi), %ecx
	xor %eax, %eax
	call cfgwr
	lea 12(%edi), %ecx
	jmp 14f
11:	lea 8(%edi), %ecx
14:	mov $VEC, %eax
	call cfgwr
	mov %edi, %ecx
	mov %esi, %eax
	or $0x10000, %eax                  /* MSI enable */
	and $~0x700000, %eax               /* one message */
	call cfgwr
	movl $1, 0x60(%ebp)                /* raise */
12:	cmpl $1, count
	jae 13f
	sti
	hlt
	jmp 12b
#endif
13:	cli
#ifdef INTX
	PUTS okintx
#else
	PUTS okmsi
#endif
	PUTS allok
	EXIT 0

fail:	call puts32
	EXIT 1

/* regs: identification and liveness through the BAR at %ebp */
regs:	cmpl $0x010000ed, (%ebp)
	je 1f
	FAIL idbad
1:	movl $0x12345678, 4(%ebp)
	cmpl $0xedcba987, 4(%ebp)
	je 2f
	FAIL livebad
2:	ret

dmawait:
	mov $POLLS, %ecx
1:	testl $1, 0x98(%ebp)
	jz 2f
	pause
	loop 1b
	FAIL dmabusy
2:	ret

/* cfgrd / cfgwr: dword register %ecx of 00:%ebx.0, value %eax (clobber edx) */
cfgrd:	push %eax
	call cfgaddr
	pop %eax
	mov $0xcfc, %dx
	inl %dx, %eax
	ret
cfgwr:	push %eax
	call cfgaddr
	pop %eax
	mov $0xcfc, %dx
	outl %eax, %dx
	ret
cfgaddr:
	mov %ebx, %eax
	shl $11, %eax
	or %ecx, %eax
	or $0x80000000, %eax
	mov $0xcf8, %dx
	outl %eax, %dx
	ret

handler:
	push %eax
	mov 0x24(%ebp), %eax               /* interrupt status */
	mov %eax, 0x64(%ebp)               /* acknowledge */
	incl count
	movl $0, LAPIC + 0xb0              /* EOI */
	pop %eax
	iret
	PUTS32_BODY
	.data
	.align 8
idt:	.fill 256, 8, 0
idtr:	.word 256*8 - 1
	.long idt
count:	.long 0
okregs:	.asciz "edu: id and liveness ok\n"
okfact:	.asciz "edu: factorial ok\n"
okdma:	.asciz "edu: dma ok\n"
okmove:	.asciz "edu: moved bar ok\n"
okmsi:	.asciz "edu: msi ok\n"
okintx:	.asciz "edu: intx ok\n"
nointx:	.asciz "edu: FAIL no interrupt pin or line\n"
allok:	.asciz "edu: all ok\n"
nodev:	.asciz "edu: FAIL no 1234:11e8 on bus 0\n"
idbad:	.asciz "edu: FAIL identification register\n"
livebad: .asciz "edu: FAIL liveness register\n"
factbusy: .asciz "edu: FAIL factorial still busy\n"
factbad: .asciz "edu: FAIL factorial of 5\n"
dmabusy: .asciz "edu: FAIL dma still busy\n"
dmabad:	.asciz "edu: FAIL dma data\n"
nomsi:	.asciz "edu: FAIL no MSI capability\n"
