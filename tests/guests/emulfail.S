/* emulfail: an AESENC whose memory operand is MMIO (0xd0000000, no device).
 * The access leaves the guest as a nested-page fault that KVM must emulate,
 * and KVM's instruction emulator has no AES-NI: KVM gives up with an
 * emulation-failure internal error, and hvmm must stop with status 8 and a
 * dump whose code bytes are the AESENC (66 0f 38 dc), never hang or guess. */
#include "common.h"
GUEST_START
	mov %cr4, %eax
	or $0x600, %eax                  /* OSFXSR | OSXMMEXCPT: SSE allowed */
	mov %eax, %cr4
	mov $0xd0000000, %edi
	aesenc (%edi), %xmm0
	EXIT 1
	PUTS32_BODY
