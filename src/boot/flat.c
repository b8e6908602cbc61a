#include <string.h>

#include "boot.h"
#include "boot_priv.h"

/*
 * A flat binary is entered like kvmtool does: real mode at 0x1000:0000 with
 * the data segments on the image too, so code assembled with org 0 finds its
 * data. The stack (SS=0, SP=0x8000) sits below the image rather than in it.
 */
#define FLAT_CS_SEL 0x1000
#define FLAT_SP 0x8000ull

int boot_load_flat(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		   char *err, size_t errlen)
{
	const uint64_t max = BOOT_MPTABLE - BOOT_FLAT_ADDR;
	if (!in->image || in->image_len == 0)
		return boot_fail(err, errlen, "image is empty");
	if (in->image_len > max)
		return boot_fail(err, errlen,
				 "flat image is %zu bytes, more than the %llu bytes (%llu KiB) that fit "
				 "between 0x%llx and the MP table at 0x%llx",
				 in->image_len, (unsigned long long)max, (unsigned long long)(max >> 10),
				 BOOT_FLAT_ADDR, BOOT_MPTABLE);
	/* The flat image deliberately shares [BOOT_RESERVED_START, BOOT_RESERVED_END)
	 * with the page tables and multiboot info, which real mode never uses, so only
	 * RAM is checked here. */
	void *dst = mem_ptr(m, BOOT_FLAT_ADDR, in->image_len);
	if (!dst)
		return boot_fail(err, errlen, "flat image [0x%llx, 0x%llx) lies outside guest RAM",
				 BOOT_FLAT_ADDR, (unsigned long long)(BOOT_FLAT_ADDR + in->image_len));
	memcpy(dst, in->image, in->image_len);
	*out = (struct boot_entry){
		.format = BOOT_FLAT,
		.mode = BOOT_MODE_REAL16,
		.cs_sel = FLAT_CS_SEL,
		.rip = 0,
		.rsp = FLAT_SP,
		.image_lo = BOOT_FLAT_ADDR,
		.image_hi = BOOT_FLAT_ADDR + in->image_len,
	};
	return 0;
}
