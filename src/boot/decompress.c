/*
 * Host-side decompression of a bzImage's payload (the compressed vmlinux).
 *
 * The guest's own decompressor is the slowest part of a Linux boot under
 * emulation, so hvmm can inflate the payload with the host's libraries and
 * boot the ELF it contains. Pure logic: bytes in, bytes out, no KVM.
 *
 * Input is untrusted (any file given as --kernel): every length is checked
 * before use, output never grows beyond the caller's max_out, and a broken
 * stream is an error message, never a crash.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "boot.h"
#include "boot_priv.h"

/* The kernel's legacy lz4 frame (lib/decompress_unlz4.c): this magic, then
 * blocks each preceded by a 4-byte LE compressed size and inflating to at most
 * 8 MiB. There is no end marker: the stream ends with the input. */
#define DECOMP_LZ4_LEGACY_MAGIC 0x184C2102u
#define DECOMP_LZ4_BLOCK (8u << 20)

static uint32_t decomp_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t decomp_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

enum boot_comp boot_comp_detect(const uint8_t *p, size_t len)
{
	static const struct {
		enum boot_comp comp;
		size_t len;
		uint8_t magic[6];
	} magics[] = {
		{ BOOT_COMP_GZIP, 2, { 0x1f, 0x8b } },
		{ BOOT_COMP_XZ, 6, { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00 } },
		{ BOOT_COMP_ZSTD, 4, { 0x28, 0xb5, 0x2f, 0xfd } },
		{ BOOT_COMP_LZ4, 4, { 0x02, 0x21, 0x4c, 0x18 } },
		{ BOOT_COMP_BZIP2, 3, { 'B', 'Z', 'h' } },
		{ BOOT_COMP_LZMA, 3, { 0x5d, 0x00, 0x00 } },
		{ BOOT_COMP_LZO, 4, { 0x89, 0x4c, 0x5a, 0x4f } },
	};
	if (!p)
		return BOOT_COMP_NONE;
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (len >= magics[i].len && !memcmp(p, magics[i].magic, magics[i].len))
			return magics[i].comp;
	return BOOT_COMP_NONE;
}

const char *boot_comp_name(enum boot_comp c)
{
	switch (c) {
	case BOOT_COMP_NONE: return "none";
	case BOOT_COMP_GZIP: return "gzip";
	case BOOT_COMP_BZIP2: return "bzip2";
	case BOOT_COMP_LZMA: return "lzma";
	case BOOT_COMP_XZ: return "xz";
	case BOOT_COMP_LZO: return "lzo";
	case BOOT_COMP_LZ4: return "lz4";
	case BOOT_COMP_ZSTD: return "zstd";
	}
	return "unknown";
}

/*
 * Growing output buffer. `limit` is the most it may ever allocate; the
 * decoders use max_out + 1 so that a stream one byte too long shows itself as
 * len > max_out instead of as a decoder stuck on a full buffer, which would
 * look the same as a stream of exactly max_out bytes still ending.
 */
struct decomp_out {
	uint8_t *p;
	size_t len, cap, limit, max_out;
	/* With a sink, p is a window: full, it goes to the sink and starts over.
	 * flushed counts what the sink has had; sink_rc is its failure. */
	const struct boot_sink *sink;
	uint64_t flushed;
	int sink_rc;
	char *err;
	size_t errlen;
};

/* All output so far, handed on or still in the buffer. */
static uint64_t decomp_total(const struct decomp_out *o)
{
	return o->flushed + o->len;
}

static int decomp_flush(struct decomp_out *o)
{
	if (!o->sink || o->len == 0)
		return 0;
	int r = o->sink->write(o->sink->ctx, o->flushed, o->p, o->len, o->err, o->errlen);
	if (r < 0) {
		o->sink_rc = r;
		return -1;
	}
	o->flushed += o->len;
	o->len = 0;
	return 0;
}

/* Make room for at least `want` more bytes, or as many as limit allows.
 * 0 when some room is free afterwards, -1 when none (limit reached or ENOMEM). */
static int decomp_reserve(struct decomp_out *o, size_t want)
{
	if (o->cap - o->len >= want)
		return 0;
	if (o->sink && o->len) {
		if (decomp_flush(o) < 0)
			return -1;
		if (o->cap >= want)
			return 0;
	}
	size_t ncap = o->cap ? o->cap : 64 * 1024;
	while (ncap - o->len < want && ncap < o->limit)
		ncap = ncap > o->limit / 2 ? o->limit : ncap * 2;
	if (ncap > o->limit)
		ncap = o->limit;
	if (ncap <= o->cap)
		return o->cap > o->len ? 0 : -1;
	uint8_t *np = realloc(o->p, ncap);
	if (!np)
		return o->cap > o->len ? 0 : -1;
	o->p = np;
	o->cap = ncap;
	return 0;
}

static int decomp_too_big(const struct decomp_out *o, char *err, size_t errlen)
{
	return boot_fail(err, errlen, "decompressed kernel exceeds %zu MiB",
			 (o->max_out + (1u << 20) - 1) >> 20);
}

/* Out of room: over max_out, or the allocation failed below it. */
static int decomp_no_room(const struct decomp_out *o, char *err, size_t errlen)
{
	if (o->sink_rc)
		return -1; /* the sink's own reason is in err */
	if (decomp_total(o) >= o->max_out)
		return decomp_too_big(o, err, errlen);
	return boot_fail(err, errlen, "out of memory decompressing the kernel (%llu MiB so far)",
			 (unsigned long long)(decomp_total(o) >> 20));
}

static int decomp_gzip(const uint8_t *in, size_t in_len, struct decomp_out *o, char *err,
		       size_t errlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 16 + MAX_WBITS: a gzip (RFC 1952) stream, header and CRC32/ISIZE trailer. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return boot_fail(err, errlen, "gzip: inflateInit2 failed");
	size_t in_pos = 0;
	int rc = -1;
	for (;;) {
		if (decomp_reserve(o, 1u << 20) < 0) {
			decomp_no_room(o, err, errlen);
			break;
		}
		/* avail_in/avail_out are uInt: feed in pieces below 4 GiB. */
		size_t in_chunk = in_len - in_pos < UINT_MAX ? in_len - in_pos : UINT_MAX;
		size_t out_chunk = o->cap - o->len < UINT_MAX ? o->cap - o->len : UINT_MAX;
		zs.next_in = (Bytef *)(uintptr_t)(in + in_pos);
		zs.avail_in = (uInt)in_chunk;
		zs.next_out = o->p + o->len;
		zs.avail_out = (uInt)out_chunk;
		int zr = inflate(&zs, Z_NO_FLUSH);
		in_pos += in_chunk - zs.avail_in;
		o->len += out_chunk - zs.avail_out;
		if (decomp_total(o) > o->max_out) {
			decomp_too_big(o, err, errlen);
			break;
		}
		if (zr == Z_STREAM_END) {
			/* Anything after the member (the kernel's appended size) is ignored. */
			rc = 0;
			break;
		}
		if (zr == Z_OK)
			continue;
		if (zr == Z_BUF_ERROR && zs.avail_out == 0)
			continue; /* only needs more room */
		if (zr == Z_BUF_ERROR && in_pos == in_len) {
			boot_fail(err, errlen, "gzip: stream truncated after %llu bytes of output",
				  (unsigned long long)decomp_total(o));
			break;
		}
		boot_fail(err, errlen, "gzip: corrupt stream at input byte %zu (%s)", in_pos,
			  zs.msg ? zs.msg : "error");
		break;
	}
	inflateEnd(&zs);
	return rc;
}

static const char *decomp_lzma_msg(lzma_ret r)
{
	switch (r) {
	case LZMA_FORMAT_ERROR: return "not an .xz stream";
	case LZMA_OPTIONS_ERROR: return "unsupported options";
	case LZMA_DATA_ERROR: return "corrupt data";
	case LZMA_BUF_ERROR: return "truncated";
	case LZMA_MEM_ERROR: return "out of memory";
	case LZMA_MEMLIMIT_ERROR: return "memory limit";
	case LZMA_UNSUPPORTED_CHECK: return "unsupported integrity check";
	default: return "error";
	}
}

static int decomp_xz(const uint8_t *in, size_t in_len, struct decomp_out *o, char *err,
		     size_t errlen)
{
	lzma_stream ls = LZMA_STREAM_INIT;
	/* No LZMA_CONCATENATED: decoding stops at the end of the first stream, so
	 * the kernel's appended size is left alone. The kernel's own xz decoder
	 * checks CRC32 only; liblzma verifying whatever check is present is fine. */
	lzma_ret lr = lzma_stream_decoder(&ls, UINT64_MAX, 0);
	if (lr != LZMA_OK)
		return boot_fail(err, errlen, "xz: cannot start the decoder (%s)", decomp_lzma_msg(lr));
	ls.next_in = in;
	ls.avail_in = in_len;
	int rc = -1;
	for (;;) {
		if (decomp_reserve(o, 1u << 20) < 0) {
			decomp_no_room(o, err, errlen);
			break;
		}
		size_t avail = o->cap - o->len;
		ls.next_out = o->p + o->len;
		ls.avail_out = avail;
		/* All input is there from the start, so LZMA_FINISH: a stream that
		 * ends early is LZMA_BUF_ERROR rather than a wait for more. */
		lr = lzma_code(&ls, LZMA_FINISH);
		o->len += avail - ls.avail_out;
		if (decomp_total(o) > o->max_out) {
			decomp_too_big(o, err, errlen);
			break;
		}
		if (lr == LZMA_STREAM_END) {
			rc = 0;
			break;
		}
		if ((lr == LZMA_OK || lr == LZMA_BUF_ERROR) && ls.avail_out == 0)
			continue;
		if (lr == LZMA_OK)
			continue;
		if (lr == LZMA_BUF_ERROR) {
			boot_fail(err, errlen, "xz: stream truncated after %llu bytes of output",
				  (unsigned long long)decomp_total(o));
			break;
		}
		boot_fail(err, errlen, "xz: %s at input byte %zu", decomp_lzma_msg(lr),
			  in_len - ls.avail_in);
		break;
	}
	lzma_end(&ls);
	return rc;
}

static int decomp_zstd(const uint8_t *in, size_t in_len, struct decomp_out *o, char *err,
		       size_t errlen)
{
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	if (!dc)
		return boot_fail(err, errlen, "zstd: cannot create a decoder");
	/* The kernel compresses with --ultra -22, whose window (up to 2^27) may
	 * exceed libzstd's default limit. Allow a window as large as the output
	 * may be, which bounds what a hostile frame header can make us allocate. */
	int wlog = 27;
	while (wlog < 31 && ((size_t)1 << wlog) < o->max_out)
		wlog++;
	ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, wlog);
	ZSTD_inBuffer ib = { in, in_len, 0 };
	int rc = -1;
	for (;;) {
		if (decomp_reserve(o, 1u << 20) < 0) {
			decomp_no_room(o, err, errlen);
			break;
		}
		ZSTD_outBuffer ob = { o->p + o->len, o->cap - o->len, 0 };
		size_t zr = ZSTD_decompressStream(dc, &ob, &ib);
		o->len += ob.pos;
		if (ZSTD_isError(zr)) {
			boot_fail(err, errlen, "zstd: %s at input byte %zu", ZSTD_getErrorName(zr),
				  ib.pos);
			break;
		}
		if (decomp_total(o) > o->max_out) {
			decomp_too_big(o, err, errlen);
			break;
		}
		if (zr == 0) {
			/* End of the first frame; what follows is the appended size. */
			rc = 0;
			break;
		}
		if (ob.pos < ob.size && ib.pos == ib.size) {
			/* Room left and input used up, yet the frame is not complete. */
			boot_fail(err, errlen, "zstd: stream truncated after %llu bytes of output",
				  (unsigned long long)decomp_total(o));
			break;
		}
	}
	ZSTD_freeDCtx(dc);
	return rc;
}

static int decomp_lz4(const uint8_t *in, size_t in_len, struct decomp_out *o, char *err,
		      size_t errlen)
{
	/* Room for a whole block past max_out: LZ4_decompress_safe cannot say
	 * "output full" apart from "corrupt", so each block gets its full 8 MiB
	 * and the limit is checked after it. */
	if (o->sink)
		o->limit = DECOMP_LZ4_BLOCK; /* the window: one block at a time */
	else
		o->limit = o->max_out > SIZE_MAX - DECOMP_LZ4_BLOCK ? SIZE_MAX : o->max_out + DECOMP_LZ4_BLOCK;
	size_t pos = 4; /* after the magic, checked by the caller */
	int blocks = 0;
	while (in_len - pos >= 4) {
		/* The kernel's build appends the decompressed size (4 bytes) after
		 * the last block; exactly 4 bytes left after a block are that. */
		if (in_len - pos == 4 && blocks)
			break;
		uint32_t csize = decomp_le32(in + pos);
		pos += 4;
		if (csize == DECOMP_LZ4_LEGACY_MAGIC)
			continue; /* concatenated legacy frames, as lz4 and unlz4 accept */
		if (csize == 0 || csize > (uint32_t)LZ4_compressBound(DECOMP_LZ4_BLOCK))
			return boot_fail(err, errlen, "lz4: bad block size %u at input byte %zu", csize,
					 pos - 4);
		if (csize > in_len - pos)
			return boot_fail(err, errlen,
					 "lz4: stream truncated (block of %u bytes at input byte %zu, "
					 "%zu left)",
					 csize, pos - 4, in_len - pos);
		if (decomp_reserve(o, DECOMP_LZ4_BLOCK) < 0 || o->cap - o->len < DECOMP_LZ4_BLOCK)
			return decomp_no_room(o, err, errlen);
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)o->p + o->len, (int)csize,
					    (int)DECOMP_LZ4_BLOCK);
		if (n < 0)
			return boot_fail(err, errlen, "lz4: corrupt block at input byte %zu", pos - 4);
		o->len += (size_t)n;
		if (decomp_total(o) > o->max_out)
			return decomp_too_big(o, err, errlen);
		pos += csize;
		blocks++;
	}
	if (!blocks)
		return boot_fail(err, errlen, "lz4: no data blocks");
	return 0;
}

/* The decoder for in's compression, or -1 with err set; *max_out capped at
 * BOOT_DECOMPRESS_MAX whatever the caller allows. */
static int decomp_check(const uint8_t *in, size_t in_len, size_t *max_out, enum boot_comp *c, char *err,
			size_t errlen)
{
	if (*max_out > BOOT_DECOMPRESS_MAX)
		*max_out = BOOT_DECOMPRESS_MAX;
	*c = boot_comp_detect(in, in_len);
	switch (*c) {
	case BOOT_COMP_GZIP:
	case BOOT_COMP_XZ:
	case BOOT_COMP_ZSTD:
	case BOOT_COMP_LZ4:
		return 0;
	case BOOT_COMP_BZIP2:
	case BOOT_COMP_LZMA:
	case BOOT_COMP_LZO:
		return boot_fail(err, errlen,
				 "%s-compressed kernel: host-side decompression is not supported "
				 "for %s, boot with --no-decompress",
				 boot_comp_name(*c), boot_comp_name(*c));
	case BOOT_COMP_NONE:
	default:
		if (in_len >= 4)
			return boot_fail(err, errlen,
					 "unrecognised compression (magic %02x %02x %02x %02x)", in[0],
					 in[1], in[2], in[3]);
		return boot_fail(err, errlen, "compressed data too short (%zu bytes)", in_len);
	}
}

static int decomp_run(enum boot_comp c, const uint8_t *in, size_t in_len, struct decomp_out *o,
		      char *err, size_t errlen)
{
	if (c == BOOT_COMP_GZIP)
		return decomp_gzip(in, in_len, o, err, errlen);
	if (c == BOOT_COMP_XZ)
		return decomp_xz(in, in_len, o, err, errlen);
	if (c == BOOT_COMP_ZSTD)
		return decomp_zstd(in, in_len, o, err, errlen);
	return decomp_lz4(in, in_len, o, err, errlen);
}

int boot_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
		    size_t *out_len, char *err, size_t errlen)
{
	*out = NULL;
	*out_len = 0;
	enum boot_comp c;
	if (decomp_check(in, in_len, &max_out, &c, err, errlen) < 0)
		return -1;

	struct decomp_out o = { .max_out = max_out,
				.limit = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1 };
	/* The kernel's build leaves the decompressed size in the last 4 bytes
	 * (gzip's ISIZE, or appended for the others). Only a hint for the first
	 * allocation: it may be wrong, and decoding still grows or stops on its own. */
	uint32_t hint = in_len >= 8 ? decomp_le32(in + in_len - 4) : 0;
	if (hint && hint <= max_out)
		decomp_reserve(&o, (size_t)hint + 1);

	if (decomp_run(c, in, in_len, &o, err, errlen) < 0) {
		free(o.p);
		return -1;
	}
	/* Hand back a buffer of the right size; a shrinking realloc failing is harmless. */
	if (o.len && o.len < o.cap) {
		uint8_t *np = realloc(o.p, o.len);
		if (np)
			o.p = np;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}

int boot_decompress_to(const uint8_t *in, size_t in_len, size_t max_out, const struct boot_sink *sink,
		       uint64_t *out_len, char *err, size_t errlen)
{
	*out_len = 0;
	enum boot_comp c;
	if (decomp_check(in, in_len, &max_out, &c, err, errlen) < 0)
		return -1;
	/* The window: 1 MiB is what the streaming decoders ask for at a time
	 * (lz4 raises its limit to a block); one over max_out shows a stream
	 * that is too long, as in boot_decompress. */
	struct decomp_out o = { .max_out = max_out, .limit = 1u << 20, .sink = sink,
				.err = err, .errlen = errlen };
	int rc = decomp_run(c, in, in_len, &o, err, errlen);
	if (rc == 0 && decomp_flush(&o) < 0)
		rc = -1;
	free(o.p);
	if (rc < 0)
		return o.sink_rc ? o.sink_rc : -1;
	*out_len = o.flushed;
	return 0;
}

int boot_bzimage_payload(const uint8_t *img, size_t len, const uint8_t **payload, size_t *plen,
			 char *err, size_t errlen)
{
	*payload = NULL;
	*plen = 0;
	/* The setup header runs through payload_length at 0x24c..0x24f. */
	if (!img || len < 0x250)
		return boot_fail(err, errlen, "bzImage: too short for a setup header (%zu bytes)", len);
	if (decomp_le16(img + 0x1fe) != 0xaa55)
		return boot_fail(err, errlen, "bzImage: no boot flag 0xaa55 at 0x1fe");
	if (memcmp(img + 0x202, "HdrS", 4))
		return boot_fail(err, errlen, "bzImage: no \"HdrS\" setup header signature at 0x202");
	uint16_t version = decomp_le16(img + 0x206);
	if (version < 0x0208)
		return boot_fail(err, errlen,
				 "bzImage: boot protocol %u.%02u has no payload fields (2.08+ needed)",
				 version >> 8, version & 0xff);
	/* setup_sects 0 means 4 (boot.rst); the boot sector is one more. */
	unsigned sects = img[0x1f1] ? img[0x1f1] : 4;
	uint64_t pm_off = ((uint64_t)sects + 1) * 512;
	uint32_t off = decomp_le32(img + 0x248);
	uint32_t plength = decomp_le32(img + 0x24c);
	if (plength == 0)
		return boot_fail(err, errlen, "bzImage: payload_length is 0");
	uint64_t start = pm_off + off;
	uint64_t end = start + plength;
	if (end > len)
		return boot_fail(err, errlen,
				 "bzImage: payload [0x%llx, 0x%llx) lies outside the image (%zu bytes)",
				 (unsigned long long)start, (unsigned long long)end, len);
	*payload = img + start;
	*plen = plength;
	return 0;
}
