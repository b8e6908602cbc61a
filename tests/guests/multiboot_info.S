/* multiboot_info: checks EAX=0x2BADB002, then prints the command line and each
 * module's string from the multiboot info, and exits 0 (1 on a bad magic). */
#include "common.h"
GUEST_START
	cmp $0x2BADB002, %eax
	jne badmagic
	mov %ebx, %ebp            /* info */
	PUTS mb_ok
	testl $4, (%ebp)          /* flags bit 2: cmdline */
	jz 1f
	PUTS cl
	mov 16(%ebp), %esi
	call puts32
	PUTS nl
1:	testl $8, (%ebp)          /* flags bit 3: modules */
	jz done
	mov 20(%ebp), %ecx        /* mods_count */
	mov 24(%ebp), %edi        /* mods_addr */
2:	jecxz done
	push %ecx
	PUTS modl
	mov 8(%edi), %esi         /* module string */
	call puts32
	PUTS nl
	pop %ecx
	add $16, %edi
	dec %ecx
	jmp 2b
done:	EXIT 0
badmagic:
	PUTS mb_bad
	EXIT 1
	PUTS32_BODY
	.data
mb_ok:	.asciz "multiboot magic ok\n"
mb_bad:	.asciz "bad multiboot magic\n"
cl:	.asciz "cmdline: "
modl:	.asciz "module: "
nl:	.asciz "\n"
