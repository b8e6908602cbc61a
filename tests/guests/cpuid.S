/* cpuid: prints what a guest learns about its hypervisor from CPUID: the
 * hypervisor-present bit (leaf 1 ECX[31]) and the 0x40000000 signature. */
#include "common.h"
GUEST_START
	mov $1, %eax
	cpuid
	bt $31, %ecx
	jnc nohv
	PUTS hv
	mov $0x40000000, %eax
	cpuid
	mov %ebx, sig
	mov %ecx, sig + 4
	mov %edx, sig + 8
	PUTS sigl
	PUTS sig
	PUTS nl
	EXIT 0
nohv:	PUTS nohvm
	EXIT 1
	PUTS32_BODY
	.data
hv:	.asciz "hypervisor bit set\n"
nohvm:	.asciz "no hypervisor bit\n"
sigl:	.asciz "signature: "
sig:	.fill 16, 1, 0
nl:	.asciz "\n"
