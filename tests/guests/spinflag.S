/* spinflag: spin until the 32-bit word `flag` is non-zero, then isa-debug-exit
 * with EXIT_VALUE. bench/restore.py snapshots it while it spins, sets the flag
 * in the memory file, and times restores: a restored copy then exits at its
 * first loop iteration, so exec -> exit is the restore plus one exit — the
 * restore's counterpart of the cold start the outs_0 guest measures. `flag`
 * sits alone on its own page (its address: `nm`), so the memory file offset
 * that holds it is its guest-physical address. */
#include "common.h"
#ifndef EXIT_VALUE
#define EXIT_VALUE 0x2a
#endif
MULTIBOOT_HEADER
	.text
	.code32
	.globl _start
_start:
1:	cmpl $0, flag
	jne 2f
	pause
	jmp 1b
2:	EXIT EXIT_VALUE

	.data
	.balign 4096
	.globl flag
flag:	.long 0
	.balign 4096
