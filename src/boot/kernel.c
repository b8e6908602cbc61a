/*
 * kernel: the Linux path of boot_load(). A bzImage normally carries its
 * kernel compressed and decompresses itself in the guest — the slowest part
 * of a boot when guest code is emulated, and real time on any host. So by
 * default hvmm takes the payload out of the bzImage, decompresses it here
 * with Debian's zlib/liblzma/libzstd/liblz4, and boots the vmlinux inside
 * through the 64-bit boot protocol (as Firecracker boots vmlinux).
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "boot_priv.h"

bool boot_is_bzimage(const uint8_t *image, size_t len)
{
	return image && len >= 0x206 && image[0x1fe] == 0x55 && image[0x1ff] == 0xaa &&
	       memcmp(image + 0x202, "HdrS", 4) == 0;
}

int boot_load_kernel(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		     char *err, size_t errlen)
{
	struct boot_linux_in li = {
		.kernel = in->image,
		.kernel_len = in->image_len,
		.initrd = in->initrd,
		.initrd_len = in->initrd_len,
		.cmdline = in->cmdline,
	};
	uint8_t *vmlinux = NULL;
	if (boot_is_bzimage(in->image, in->image_len) && !in->no_decompress) {
		const uint8_t *payload;
		size_t plen, vlen;
		if (boot_bzimage_payload(in->image, in->image_len, &payload, &plen, err, errlen) < 0)
			return -1;
		/* The kernel cannot be larger than the RAM it must fit in. */
		if (boot_decompress(payload, plen, (size_t)m->ram_size, &vmlinux, &vlen, err, errlen) < 0)
			return -1;
		if (vlen < SELFMAG || memcmp(vmlinux, ELFMAG, SELFMAG) != 0) {
			free(vmlinux);
			return boot_fail(err, errlen,
					 "the bzImage payload did not decompress to an ELF vmlinux "
					 "(try --no-decompress)");
		}
		li.kernel = vmlinux;
		li.kernel_len = vlen;
	}
	int r = boot_load_linux(m, &li, out, err, errlen);
	free(vmlinux);
	if (r == 0)
		out->format = BOOT_LINUX;
	return r;
}
