/* smp: the BSP wakes CPU 1 with INIT-SIPI-SIPI through its LAPIC; the AP
 * starts in real mode at 0x60000, does one OUT to port 0x403 (so hvmm counts
 * an exit on vcpu1), sets a flag and halts. The BSP waits for the flag and
 * exits 0, or exits 1 if the AP never ran. */
#include "common.h"
#define TRAMP 0x60000
#define FLAG  (TRAMP + 0x800)
#define LAPIC 0xfee00000
GUEST_START
	movl $0, FLAG
	/* copy the real-mode trampoline below 1 MiB */
	mov $ap_start, %esi
	mov $TRAMP, %edi
	mov $(ap_end - ap_start), %ecx
	rep movsb
	orl $0x100, LAPIC + 0xf0          /* SVR: APIC software enable */
	movl $(1 << 24), LAPIC + 0x310    /* ICR high: destination APIC ID 1 */
	movl $0x4500, LAPIC + 0x300       /* INIT, assert */
	call delay
	movl $(0x4600 | (TRAMP >> 12)), LAPIC + 0x300  /* SIPI */
	call delay
	movl $(0x4600 | (TRAMP >> 12)), LAPIC + 0x300  /* second SIPI, per the MP spec */
	mov $2000000, %ecx
1:	cmpl $0x5a5a, FLAG
	je up
	pause
	loop 1b
	PUTS down
	EXIT 1
up:	PUTS upmsg
	EXIT 0
delay:	mov $200, %ecx
2:	loop 2b
	ret
	PUTS32_BODY

	.code16
ap_start:
	mov $0x403, %dx
	mov $1, %al
	outb %al, %dx
	mov $(TRAMP >> 4), %ax
	mov %ax, %ds
	movl $0x5a5a, (FLAG - TRAMP)
	cli
3:	hlt
	jmp 3b
ap_end:
	.data
upmsg:	.asciz "cpu1 is up\n"
down:	.asciz "cpu1 did not start\n"
