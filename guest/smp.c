/* smp: placeholder until AP bring-up lands. */
#include "smp.h"

void smp_test(smp_tap_fn tap, smp_skip_fn skip)
{
	(void)tap;
	skip("smp", "not implemented yet");
}

#include <stdint.h>
uint64_t ap_boot_stack;
void ap_main(void);
void ap_main(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}
