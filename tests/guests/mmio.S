/* mmio: 300 writes and 200 reads at 0xd0000000 (MMIO hole, no device): each
 * is one MMIO exit, and every read must see all-ones. Exit 0 if so, 1 if not. */
#include "common.h"
GUEST_START
	mov $0xd0000000, %edi
	mov $300, %ecx
1:	movl %ecx, (%edi)
	loop 1b
	mov $200, %ecx
2:	movl (%edi), %eax
	cmp $0xffffffff, %eax
	jne bad
	loop 2b
	PUTS ok
	EXIT 0
bad:	PUTS notones
	EXIT 1
	PUTS32_BODY
	.data
ok:	.asciz "mmio reads saw all-ones\n"
notones: .asciz "mmio read was not all-ones\n"
