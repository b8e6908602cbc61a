#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

/* One PT_LOAD, widened to 64 bits whatever the ELF class. */
struct elf_seg {
	uint32_t type;
	uint64_t offset, filesz, memsz, paddr;
};

struct elf_hdr {
	int elf_class;
	uint16_t type, machine;
	uint64_t entry, phoff;
	uint16_t phentsize, phnum;
};

/* The image is a byte buffer with no alignment promise: copy, never cast. */
static int elf_read_hdr(const uint8_t *img, size_t len, struct elf_hdr *h, char *err, size_t errlen)
{
	if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0)
		return boot_fail(err, errlen, "not an ELF file (bad magic)");
	if (img[EI_DATA] != ELFDATA2LSB)
		return boot_fail(err, errlen, "ELF file is not little-endian");
	h->elf_class = img[EI_CLASS];
	if (h->elf_class == ELFCLASS32) {
		Elf32_Ehdr e;
		if (len < sizeof(e))
			return boot_fail(err, errlen, "ELF32 header truncated (%zu of %zu bytes)", len,
					 sizeof(e));
		memcpy(&e, img, sizeof(e));
		*h = (struct elf_hdr){ ELFCLASS32, e.e_type, e.e_machine, e.e_entry, e.e_phoff,
				       e.e_phentsize, e.e_phnum };
		if (h->machine != EM_386)
			return boot_fail(err, errlen, "ELF32 machine %u is not i386 (%u)", h->machine,
					 EM_386);
		if (h->phnum && h->phentsize < sizeof(Elf32_Phdr))
			return boot_fail(err, errlen, "ELF e_phentsize %u is smaller than a program header",
					 h->phentsize);
	} else if (h->elf_class == ELFCLASS64) {
		Elf64_Ehdr e;
		if (len < sizeof(e))
			return boot_fail(err, errlen, "ELF64 header truncated (%zu of %zu bytes)", len,
					 sizeof(e));
		memcpy(&e, img, sizeof(e));
		*h = (struct elf_hdr){ ELFCLASS64, e.e_type, e.e_machine, e.e_entry, e.e_phoff,
				       e.e_phentsize, e.e_phnum };
		if (h->machine != EM_X86_64)
			return boot_fail(err, errlen, "ELF64 machine %u is not x86-64 (%u)", h->machine,
					 EM_X86_64);
		if (h->phnum && h->phentsize < sizeof(Elf64_Phdr))
			return boot_fail(err, errlen, "ELF e_phentsize %u is smaller than a program header",
					 h->phentsize);
	} else {
		return boot_fail(err, errlen, "unknown ELF class %u", img[EI_CLASS]);
	}
	if (h->type != ET_EXEC)
		return boot_fail(err, errlen, "ELF type %u is not an executable (ET_EXEC)", h->type);
	/* PN_XNUM would move the real count into section 0; no boot image needs that. */
	if (h->phnum == PN_XNUM)
		return boot_fail(err, errlen, "ELF with extended program header count is not supported");
	if (!util_range_ok(h->phoff, (uint64_t)h->phnum * h->phentsize, len))
		return boot_fail(err, errlen,
				 "ELF program headers [0x%llx, +%u*%u) lie outside the %zu-byte file",
				 (unsigned long long)h->phoff, h->phnum, h->phentsize, len);
	return 0;
}

static void elf_read_phdr(const uint8_t *img, const struct elf_hdr *h, unsigned i, struct elf_seg *s)
{
	const uint8_t *p = img + h->phoff + (uint64_t)i * h->phentsize;
	if (h->elf_class == ELFCLASS32) {
		Elf32_Phdr ph;
		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_paddr };
	} else {
		Elf64_Phdr ph;
		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_seg){ ph.p_type, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_paddr };
	}
}

static int elf_check_seg(const struct guest_mem *m, size_t len, unsigned i, const struct elf_seg *s,
			 uint64_t reserved_end, char *err, size_t errlen)
{
	if (s->filesz > s->memsz)
		return boot_fail(err, errlen, "ELF segment %u has p_filesz 0x%llx > p_memsz 0x%llx", i,
				 (unsigned long long)s->filesz, (unsigned long long)s->memsz);
	if (s->filesz && !util_range_ok(s->offset, s->filesz, len))
		return boot_fail(err, errlen,
				 "ELF segment %u file range [0x%llx, +0x%llx) lies outside the %zu-byte file",
				 i, (unsigned long long)s->offset, (unsigned long long)s->filesz, len);
	char what[32];
	snprintf(what, sizeof(what), "ELF segment %u", i);
	return boot_check_dest(m, s->paddr, s->memsz, reserved_end, what, err, errlen);
}

/*
 * Every PT_LOAD segment of the headers checked (its file range against len,
 * its place in RAM), before anything is written: the extent [lo, hi) of the
 * non-empty ones, -1 (err set) for a bad segment or none to load. `each`
 * (optional) sees every non-empty one in header order; a nonzero answer
 * stops the walk and is returned.
 */
static int elf_check_loads(const uint8_t *img, const struct elf_hdr *h, const struct guest_mem *m,
			   size_t len, uint64_t reserved_end,
			   int (*each)(void *ctx, unsigned i, const struct elf_seg *s), void *ctx,
			   uint64_t *lo, uint64_t *hi, char *err, size_t errlen)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (unsigned i = 0; i < h->phnum; i++) {
		struct elf_seg s;
		elf_read_phdr(img, h, i, &s);
		if (s.type != PT_LOAD)
			continue;
		if (elf_check_seg(m, len, i, &s, reserved_end, err, errlen) < 0)
			return -1;
		if (s.memsz == 0)
			continue;
		int r = each ? each(ctx, i, &s) : 0;
		if (r != 0)
			return r;
		if (s.paddr < *lo)
			*lo = s.paddr;
		if (s.paddr + s.memsz > *hi)
			*hi = s.paddr + s.memsz;
	}
	if (*hi == 0)
		return boot_fail(err, errlen, "ELF file has no loadable (PT_LOAD) segment");
	return 0;
}

int boot_elf_load_image(struct guest_mem *m, const uint8_t *image, size_t len, uint64_t reserved_end,
			struct boot_elf_info *info, char *err, size_t errlen)
{
	struct elf_hdr h = { 0 };
	if (elf_read_hdr(image, len, &h, err, errlen) < 0)
		return -1;
	/* Validate every segment before writing any, so a bad image leaves RAM as it was. */
	uint64_t lo, hi;
	if (elf_check_loads(image, &h, m, len, reserved_end, NULL, NULL, &lo, &hi, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < h.phnum; i++) {
		struct elf_seg s;
		elf_read_phdr(image, &h, i, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		uint8_t *dst = mem_ptr(m, s.paddr, s.memsz);
		/* p_offset of a segment with nothing in the file is unchecked
		 * (any value is fine there): not even a pointer is made from it */
		if (s.filesz)
			memcpy(dst, image + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
	}
	*info = (struct boot_elf_info){ .elf_class = h.elf_class, .entry = h.entry, .lo = lo, .hi = hi };
	return 0;
}

int boot_load_elf(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		  char *err, size_t errlen)
{
	struct boot_elf_info info;
	if (boot_elf_load_image(m, in->image, in->image_len, BOOT_RESERVED_END, &info, err, errlen) < 0)
		return -1;
	*out = (struct boot_entry){
		.format = BOOT_ELF,
		.rip = info.entry,
		.rsp = BOOT_STACK_TOP,
		.image_lo = info.lo,
		.image_hi = info.hi,
	};
	if (info.elf_class == ELFCLASS64) {
		out->mode = BOOT_MODE_LONG64;
		if (boot_x86_write_page_tables(m, &out->cr3) < 0)
			return boot_fail(err, errlen,
					 "identity page tables for %llu MiB of address space need more "
					 "than %d GiB",
					 (unsigned long long)(mem_top(m) >> 20), BOOT_PT_MAX_GIB);
	} else {
		out->mode = BOOT_MODE_PROT32;
	}
	boot_x86_write_gdt(m, out->mode);
	return 0;
}

/*
 * The streaming loader: a decompressor's output goes straight to the
 * segments' places in guest RAM, chunk by chunk, instead of into a buffer as
 * large as the whole vmlinux that is then copied (for Debian's kernel, 63 MiB
 * of fresh heap the host must fault in and zero, and a second pass over it).
 * The first bytes are kept until the program headers are in; then every
 * segment is checked as boot_elf_load_image checks it, except that the file's
 * length is known only at the end (boot_elf_stream_finish checks it then).
 */
void boot_elf_stream_init(struct boot_elf_stream *s, struct guest_mem *m, uint64_t reserved_end,
			  uint64_t max_len)
{
	memset(s, 0, sizeof(*s));
	s->m = m;
	s->reserved_end = reserved_end;
	s->max_len = max_len;
}

void boot_elf_stream_free(struct boot_elf_stream *s)
{
	free(s->segs);
	s->segs = NULL;
	s->nseg = 0;
}

/* One checked, non-empty segment into the plan. Overlapping destinations
 * make the result depend on the order of the copies (boot_elf_load_image's
 * is the headers'): leave such an image to it. */
static int elf_stream_record(void *ctx, unsigned i, const struct elf_seg *seg)
{
	struct boot_elf_stream *s = ctx;
	for (unsigned j = 0; j < s->nseg; j++)
		if (seg->paddr < s->segs[j].paddr + s->segs[j].memsz &&
		    s->segs[j].paddr < seg->paddr + seg->memsz)
			return BOOT_STREAM_DECLINED;
	s->segs[s->nseg++] = (struct boot_elf_stream_seg){ i, seg->offset, seg->filesz, seg->memsz,
							    seg->paddr };
	return 0;
}

/* Once the headers are all in s->head: check them and every segment, zero
 * the parts of segments the file does not fill. 0 when planned, 1 while more
 * bytes are needed for the headers, -1 (err set), or BOOT_STREAM_DECLINED for
 * an image the streaming loader leaves to boot_elf_load_image. */
static int elf_stream_plan(struct boot_elf_stream *s, char *err, size_t errlen)
{
	struct elf_hdr h = { 0 };
	if (s->head_len < EI_NIDENT)
		return 1;
	if (memcmp(s->head, ELFMAG, SELFMAG) != 0 ||
	    s->head[EI_CLASS] != ELFCLASS64)
		return BOOT_STREAM_DECLINED; /* the caller's own message says what it is */
	if (s->head_len < sizeof(Elf64_Ehdr))
		return 1; /* more to come */
	Elf64_Ehdr e;
	memcpy(&e, s->head, sizeof(e));
	uint64_t ph_end = e.e_phoff + (uint64_t)e.e_phnum * e.e_phentsize;
	if (e.e_phoff > sizeof(s->head) || ph_end > sizeof(s->head))
		return BOOT_STREAM_DECLINED; /* headers far in: load it whole */
	if (s->head_len < ph_end)
		return 1;
	if (elf_read_hdr(s->head, s->head_len, &h, err, errlen) < 0)
		return -1;
	s->segs = calloc(h.phnum ? h.phnum : 1, sizeof(*s->segs));
	if (!s->segs)
		return boot_fail(err, errlen, "out of memory for %u ELF program headers", h.phnum);
	/* the file length is not known yet: its bound stands in, and
	 * boot_elf_stream_finish checks each range against the real one */
	uint64_t lo, hi;
	int r = elf_check_loads(s->head, &h, s->m, s->max_len, s->reserved_end, elf_stream_record, s,
				&lo, &hi, err, errlen);
	if (r != 0)
		return r;
	for (unsigned j = 0; j < s->nseg; j++) {
		const struct boot_elf_stream_seg *g = &s->segs[j];
		memset(mem_ptr(s->m, g->paddr + g->filesz, g->memsz - g->filesz), 0, g->memsz - g->filesz);
	}
	s->info = (struct boot_elf_info){ .elf_class = h.elf_class, .entry = h.entry, .lo = lo, .hi = hi };
	s->planned = true;
	return 0;
}

/* File bytes [off, off+n) to wherever segments want them. */
static void elf_stream_place(struct boot_elf_stream *s, uint64_t off, const uint8_t *p, size_t n)
{
	for (unsigned j = 0; j < s->nseg; j++) {
		const struct boot_elf_stream_seg *g = &s->segs[j];
		uint64_t a = off > g->offset ? off : g->offset;
		uint64_t b = off + n < g->offset + g->filesz ? off + n : g->offset + g->filesz;
		if (a < b)
			memcpy(mem_ptr(s->m, g->paddr + (a - g->offset), b - a), p + (a - off), b - a);
	}
}

int boot_elf_stream_write(void *ctx, uint64_t off, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	struct boot_elf_stream *s = ctx;
	if (off != s->total)
		return boot_fail(err, errlen, "ELF stream: bytes at %llu after %llu",
				 (unsigned long long)off, (unsigned long long)s->total);
	s->total += n;
	if (!s->planned) {
		size_t take = sizeof(s->head) - s->head_len;
		if (take > n)
			take = n;
		memcpy(s->head + s->head_len, p, take);
		s->head_len += take;
		int r = elf_stream_plan(s, err, errlen);
		if (r == 1 && s->head_len < sizeof(s->head))
			return 0; /* headers not all in yet */
		if (r == 1)
			return BOOT_STREAM_DECLINED;
		if (r != 0)
			return r;
		/* what came before the plan, then the rest of this chunk */
		elf_stream_place(s, 0, s->head, s->head_len);
		if (n > take)
			elf_stream_place(s, off + take, p + take, n - take);
		return 0;
	}
	elf_stream_place(s, off, p, n);
	return 0;
}

int boot_elf_stream_finish(struct boot_elf_stream *s, struct boot_elf_info *info, char *err,
			   size_t errlen)
{
	if (!s->planned) {
		int r = elf_stream_plan(s, err, errlen);
		if (r == 1)
			return BOOT_STREAM_DECLINED; /* too short for its headers: the whole-image path says so */
		if (r != 0)
			return r;
		elf_stream_place(s, 0, s->head, s->head_len);
	}
	for (unsigned j = 0; j < s->nseg; j++) {
		const struct boot_elf_stream_seg *g = &s->segs[j];
		if (g->filesz && !util_range_ok(g->offset, g->filesz, s->total))
			return boot_fail(err, errlen,
					 "ELF segment %u file range [0x%llx, +0x%llx) lies outside the "
					 "%llu-byte file",
					 g->index, (unsigned long long)g->offset,
					 (unsigned long long)g->filesz, (unsigned long long)s->total);
	}
	*info = s->info;
	return 0;
}
