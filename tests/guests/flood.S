/* flood: prints the same line on COM1 forever, as fast as the UART takes it;
 * only --timeout or a signal ends it (a stalled stdout must not stop that). */
#include "common.h"
GUEST_START
1:	PUTS msg
	jmp 1b
	PUTS32_BODY
	.data
msg:	.asciz "hvmm flood: output nobody reads...........................................\n"
