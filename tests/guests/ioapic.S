/* ioapic: a device interrupt end to end. The UART's THR-empty interrupt goes
 * out on ISA IRQ 4 → IOAPIC pin 4 (programmed for vector 0x30, edge, or level
 * with -DLEVEL) → LAPIC → the IDT handler. The handler reads IIR (which
 * clears the source) and EOIs; then the guest arms the interrupt again. A
 * second delivery proves the pin re-arms — for a level pin that needs the
 * EOI to clear Remote IRR (KVM_EXIT_IOAPIC_EOI in hvmm's split irqchip).
 * Exit 0 after two interrupts; a missing one leaves the guest halted. The
 * handler returns with IRET, which reloads EFLAGS.IF=1, so the wait loop
 * runs with interrupts open until the count is reached. */
#include "common.h"
#define LAPIC  0xfee00000
#define IOAPIC 0xfec00000
#define VEC    0x30
#ifdef LEVEL
#define TRIG   (1 << 15)
#else
#define TRIG   0
#endif
GUEST_START
	mov $handler, %eax
	mov %ax, idt + VEC*8
	shr $16, %eax
	mov %ax, idt + VEC*8 + 6
	mov %cs, %ax
	mov %ax, idt + VEC*8 + 2
	movw $0x8e00, idt + VEC*8 + 4
	lidt idtr
	mov $0xff, %al                     /* mask both 8259s, as any OS does first: */
	outb %al, $0x21                    /* with KVM's in-kernel PIC an unprogrammed */
	outb %al, $0xa1                    /* IRQ 0 would otherwise arrive at vector 8 */
	movl $0x1ff, LAPIC + 0xf0          /* SVR: enable, spurious vector 0xff */
	movl $0, LAPIC + 0x80              /* TPR 0 */
	movl $(0x10 + 2*4), IOAPIC         /* pin 4, low dword */
	movl $(VEC | TRIG), IOAPIC + 0x10  /* fixed, physical, unmasked */
	movl $(0x10 + 2*4 + 1), IOAPIC     /* pin 4, high dword */
	movl $0, IOAPIC + 0x10             /* destination APIC ID 0 */
	mov $(COM1 + 4), %dx
	mov $0x0b, %al                     /* MCR: DTR, RTS, OUT2 (gates the IRQ) */
	outb %al, %dx
	call arm
wait:	cmpl $2, count
	jae done
	sti                                /* the gate cleared IF; HLT in STI's shadow */
	hlt
	jmp wait
done:	cli
	mov $(COM1 + 1), %dx
	xor %al, %al
	outb %al, %dx
	PUTS msg
	EXIT 0

arm:	mov $(COM1 + 1), %dx               /* IER: THR-empty interrupt */
	mov $0x02, %al
	outb %al, %dx
	ret

handler:
	mov $(COM1 + 2), %dx               /* IIR: reading it clears THRE */
	inb %dx, %al
	and $0x0f, %al
	cmp $0x02, %al
	jne 2f
	incl count
2:	mov $(COM1 + 1), %dx               /* IER off: the line goes low */
	xor %al, %al
	outb %al, %dx
	movl $0, LAPIC + 0xb0              /* EOI */
	cmpl $2, count
	jae 3f
	call arm                           /* ask for the second interrupt */
3:	iret
	PUTS32_BODY
	.data
	.align 8
idt:	.fill 256, 8, 0
idtr:	.word 256*8 - 1
	.long idt
count:	.long 0
msg:	.asciz "two IOAPIC interrupts delivered\n"
