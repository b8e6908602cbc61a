#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

int boot_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t bend)
{
	return alen && a < bend && b < a + alen;
}

int boot_check_dest(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t reserved_end,
		    const char *what, char *err, size_t errlen)
{
	if (len > UINT64_MAX - gpa || (len && !mem_ptr(m, gpa, len)))
		return boot_fail(err, errlen, "%s [0x%llx, 0x%llx) lies outside guest RAM (%llu MiB)",
				 what, (unsigned long long)gpa,
				 (unsigned long long)(len > UINT64_MAX - gpa ? UINT64_MAX : gpa + len),
				 (unsigned long long)(m->ram_size >> 20));
	if (overlaps(gpa, len, BOOT_RESERVED_START, reserved_end) ||
	    overlaps(gpa, len, BOOT_MPTABLE, BOOT_MPTABLE_END))
		return boot_fail(err, errlen,
				 "%s [0x%llx, 0x%llx) overlaps hvmm's boot structures "
				 "([0x%llx, 0x%llx) and [0x%llx, 0x%llx) are reserved)",
				 what, (unsigned long long)gpa, (unsigned long long)(gpa + len),
				 BOOT_RESERVED_START, (unsigned long long)reserved_end, BOOT_MPTABLE,
				 BOOT_MPTABLE_END);
	return 0;
}

enum boot_format boot_detect(const uint8_t *image, size_t len)
{
	if (!image || len == 0)
		return BOOT_AUTO;
	if (boot_is_bzimage(image, len))
		return BOOT_LINUX;
	if (boot_mb_find_header(image, len) >= 0)
		return BOOT_MULTIBOOT;
	if (boot_is_pvh(image, len))
		return BOOT_PVH;
	if (len >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0)
		return BOOT_ELF;
	return BOOT_FLAT;
}

static const char *const format_names[] = {
	[BOOT_AUTO] = "auto",
	[BOOT_FLAT] = "flat",
	[BOOT_ELF] = "elf",
	[BOOT_MULTIBOOT] = "multiboot",
	[BOOT_LINUX] = "linux",
	[BOOT_PVH] = "pvh",
};

const char *boot_format_name(enum boot_format f)
{
	if ((unsigned)f < ARRAY_SIZE(format_names))
		return format_names[f];
	return "unknown";
}

int boot_format_parse(const char *s, enum boot_format *out)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(format_names); i++) {
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum boot_format)i;
			return 0;
		}
	}
	return -1;
}

int boot_load(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
	      char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!in->image || in->image_len == 0)
		return boot_fail(err, errlen, "image is empty");
	enum boot_format f = in->format == BOOT_AUTO ? boot_detect(in->image, in->image_len) : in->format;
	switch (f) {
	case BOOT_FLAT:
		return boot_load_flat(m, in, out, err, errlen);
	case BOOT_ELF:
		return boot_load_elf(m, in, out, err, errlen);
	case BOOT_MULTIBOOT:
		return boot_load_multiboot(m, in, out, err, errlen);
	case BOOT_LINUX:
		return boot_load_kernel(m, in, out, err, errlen);
	case BOOT_PVH:
		return boot_load_pvh(m, in, out, err, errlen);
	case BOOT_AUTO:
		break;
	}
	return boot_fail(err, errlen, "unknown image format %d", (int)f);
}

int boot_place_module(struct guest_mem *m, const struct boot_module *bm, uint64_t next,
		      uint64_t limit, uint64_t *addr, uint64_t *len, char *err, size_t errlen)
{
	uint8_t *data;
	size_t n;
	int r = util_read_file(bm->path, &data, &n, m->ram_size);
	if (r == -EFBIG)
		return boot_fail(err, errlen, "module %s is larger than guest RAM (%llu MiB)", bm->path,
				 (unsigned long long)(m->ram_size >> 20));
	if (r < 0)
		return boot_fail(err, errlen, "cannot read module %s: %s", bm->path, strerror(-r));
	uint64_t a = (next + BOOT_PAGE - 1) & ~(BOOT_PAGE - 1);
	/* A low kernel would push its modules into the MP table and the legacy
	 * VGA/BIOS area; skip them to 1 MiB, as that space is not usable RAM. */
	if (a < MIB(1) && a + n > BOOT_MPTABLE)
		a = MIB(1);
	if (a + n > limit || !mem_ptr(m, a, n ? n : 1)) {
		free(data);
		return boot_fail(err, errlen,
				 "module %s (%zu bytes at 0x%llx) does not fit in guest RAM (%llu MiB)",
				 bm->path, n, (unsigned long long)a, (unsigned long long)(m->ram_size >> 20));
	}
	memcpy(mem_ptr(m, a, n ? n : 1), data, n);
	free(data);
	*addr = a;
	*len = n;
	return 0;
}
