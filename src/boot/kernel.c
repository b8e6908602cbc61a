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
	struct boot_elf_stream *es = NULL;
	struct boot_elf_info ei;
	if (boot_is_bzimage(in->image, in->image_len) && !in->no_decompress) {
		const uint8_t *payload;
		size_t plen, vlen;
		if (boot_bzimage_payload(in->image, in->image_len, &payload, &plen, err, errlen) < 0)
			return -1;
		/* Straight into guest RAM first (src/boot/elf.c's streaming
		 * loader); an image it declines is decompressed whole and loaded
		 * as before. The kernel cannot be larger than the RAM it must fit in. */
		es = malloc(sizeof(*es));
		if (!es)
			return boot_fail(err, errlen, "out of memory");
		boot_elf_stream_init(es, m, BOOT_RESERVED_END, m->ram_size);
		struct boot_sink sink = { boot_elf_stream_write, es };
		uint64_t total;
		int r = boot_decompress_to(payload, plen, (size_t)m->ram_size, &sink, &total, err, errlen);
		if (r == 0)
			r = boot_elf_stream_finish(es, &ei, err, errlen);
		if (r == 0) {
			li.kernel = es->head;
			li.kernel_len = es->head_len;
			li.elf_loaded = &ei;
		} else if (r != BOOT_STREAM_DECLINED) {
			boot_elf_stream_free(es);
			free(es);
			return -1;
		} else {
			boot_elf_stream_free(es);
			free(es);
			es = NULL;
			if (boot_decompress(payload, plen, (size_t)m->ram_size, &vmlinux, &vlen, err,
					    errlen) < 0)
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
	}
	int r = boot_load_linux(m, &li, out, err, errlen);
	free(vmlinux);
	if (es) {
		boot_elf_stream_free(es);
		free(es);
	}
	if (r == 0)
		out->format = BOOT_LINUX;
	return r;
}
