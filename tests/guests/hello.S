/* hello: prints a line on COM1 and exits through isa-debug-exit with 0 (status 1). */
#include "common.h"
GUEST_START
	PUTS msg
	EXIT 0
	PUTS32_BODY
	.data
msg:	.asciz "Hello from an hvmm test guest!\n"
