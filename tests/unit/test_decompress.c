/*
 * Host-side decompression of bzImage payloads: each format round-trips data
 * compressed here with the same libraries, truncated and corrupted streams
 * and oversized output are errors (never crashes), magics are recognised, and
 * the payload is found (or refused) through a crafted setup header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "boot/boot.h"

#define MAX_OUT (64u << 20)
#define LZ4_LEGACY_BLOCK (8u << 20)

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Compressible but not trivial: words from a small vocabulary picked by a
 * xorshift generator, with some raw random bytes mixed in. */
static uint8_t *make_data(size_t len, uint32_t seed)
{
	static const char *words[] = { "vmlinux ", "kvm ", "\x7f" "ELF", "boot_params ", "e820 ",
				       "\0\0\0\0\0\0\0\0", "mov %rax,%rbx ", "initrd " };
	uint8_t *d = malloc(len);
	assert_non_null(d);
	uint32_t x = seed ? seed : 1;
	size_t i = 0;
	while (i < len) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if ((x & 7) == 0) {
			d[i++] = (uint8_t)(x >> 8);
			continue;
		}
		const char *w = words[(x >> 3) % 8];
		size_t wl = (x >> 3) % 8 == 5 ? 8 : strlen(w);
		for (size_t k = 0; k < wl && i < len; k++)
			d[i++] = (uint8_t)w[k];
	}
	return d;
}

/* Room for the kernel's appended 4-byte size after every compressed buffer. */
static uint8_t *make_gzip(const uint8_t *src, size_t len, size_t *out_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&zs, len) + 4;
	uint8_t *dst = malloc(cap);
	assert_non_null(dst);
	zs.next_in = (Bytef *)(uintptr_t)src;
	zs.avail_in = (uInt)len;
	zs.next_out = dst;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return dst;
}

static uint8_t *make_xz(const uint8_t *src, size_t len, size_t *out_len)
{
	size_t cap = lzma_stream_buffer_bound(len) + 4;
	uint8_t *dst = malloc(cap);
	assert_non_null(dst);
	size_t pos = 0;
	/* CRC32, as the kernel's build uses (xz --check=crc32) */
	assert_int_equal(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, NULL, src, len, dst, &pos, cap),
			 LZMA_OK);
	*out_len = pos;
	return dst;
}

static uint8_t *make_zstd(const uint8_t *src, size_t len, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(len) + 4;
	uint8_t *dst = malloc(cap);
	assert_non_null(dst);
	/* With a content checksum, as the zstd command line (and so the kernel's
	 * build) writes it: corrupting a byte must then be caught. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	assert_non_null(cc);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)));
	size_t n = ZSTD_compress2(cc, dst, cap, src, len);
	assert_false(ZSTD_isError(n));
	ZSTD_freeCCtx(cc);
	*out_len = n;
	return dst;
}

/* The legacy frame `lz4 -l` writes and the kernel's unlz4 reads. */
static uint8_t *make_lz4(const uint8_t *src, size_t len, size_t *out_len)
{
	size_t nblocks = len / LZ4_LEGACY_BLOCK + 1;
	size_t cap = 4 + nblocks * (4 + (size_t)LZ4_compressBound(LZ4_LEGACY_BLOCK)) + 4;
	uint8_t *dst = malloc(cap);
	assert_non_null(dst);
	put_le32(dst, 0x184C2102u);
	size_t pos = 4;
	for (size_t off = 0; off < len; off += LZ4_LEGACY_BLOCK) {
		size_t n = len - off < LZ4_LEGACY_BLOCK ? len - off : LZ4_LEGACY_BLOCK;
		int c = LZ4_compress_default((const char *)src + off, (char *)dst + pos + 4, (int)n,
					     LZ4_compressBound(LZ4_LEGACY_BLOCK));
		assert_true(c > 0);
		put_le32(dst + pos, (uint32_t)c);
		pos += 4 + (size_t)c;
	}
	*out_len = pos;
	return dst;
}

typedef uint8_t *(*compressor)(const uint8_t *, size_t, size_t *);

static const struct {
	const char *name;
	compressor fn;
	enum boot_comp comp;
} formats[] = {
	{ "gzip", make_gzip, BOOT_COMP_GZIP },
	{ "xz", make_xz, BOOT_COMP_XZ },
	{ "zstd", make_zstd, BOOT_COMP_ZSTD },
	{ "lz4", make_lz4, BOOT_COMP_LZ4 },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

/* A sink that collects what boot_decompress_to hands it, checking that the
 * chunks come in order and no larger than the 8 MiB window. fail_at: the
 * write reaching that offset fails (-1 with a message, or `rc`). */
struct collect {
	uint8_t *p;
	size_t len, chunks;
	uint64_t fail_at;
	int rc;
	bool count_only; /* a failure expected: count, keep nothing (a bomb is 512 MiB) */
};

static int collect_write(void *ctx, uint64_t off, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	struct collect *c = ctx;
	assert_int_equal(off, c->len);
	assert_true(n > 0 && n <= (8u << 20));
	if (off + n > c->fail_at) {
		if (c->rc == -1)
			snprintf(err, errlen, "the sink says no at %llu", (unsigned long long)off);
		return c->rc;
	}
	if (!c->count_only) {
		c->p = realloc(c->p, c->len + n);
		assert_non_null(c->p);
		memcpy(c->p + c->len, p, n);
	}
	c->len += n;
	c->chunks++;
	return 0;
}

/* boot_decompress_to gives what boot_decompress gives: rc, and the bytes or the message. */
static void expect_same_streamed(const uint8_t *c, size_t clen, size_t max_out, int want_rc,
				 const uint8_t *want, size_t want_len, const char *needle)
{
	struct collect col = { .fail_at = UINT64_MAX, .rc = -1, .count_only = want_rc != 0 };
	struct boot_sink sink = { collect_write, &col };
	uint64_t total = 1;
	char err[256] = "";
	int rc = boot_decompress_to(c, clen, max_out, &sink, &total, err, sizeof(err));
	if (rc != want_rc)
		print_error("streamed: rc %d, want %d (%s)\n", rc, want_rc, err);
	assert_int_equal(rc, want_rc);
	if (rc == 0) {
		assert_int_equal(total, want_len);
		assert_int_equal(col.len, want_len);
		if (want_len)
			assert_memory_equal(col.p, want, want_len);
	} else {
		assert_int_equal(total, 0);
		assert_true(err[0] != '\0');
		if (needle && !strstr(err, needle))
			fail_msg("streamed: error \"%s\" lacks \"%s\"", err, needle);
	}
	free(col.p);
}

/* Decompress and expect exactly `want` (collected and streamed). */
static void expect_ok(const uint8_t *c, size_t clen, size_t max_out, const uint8_t *want,
		      size_t want_len)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;
	char err[256] = "";
	int rc = boot_decompress(c, clen, max_out, &out, &out_len, err, sizeof(err));
	if (rc != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, 0);
	assert_int_equal(out_len, want_len);
	assert_memory_equal(out, want, want_len);
	free(out);
	expect_same_streamed(c, clen, max_out, 0, want, want_len, NULL);
}

/* Expect failure with err containing `needle` (NULL: any message). */
static void expect_fail(const uint8_t *c, size_t clen, size_t max_out, const char *needle)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;
	char err[256] = "";
	int rc = boot_decompress(c, clen, max_out, &out, &out_len, err, sizeof(err));
	if (rc == 0)
		free(out);
	assert_int_equal(rc, -1);
	assert_null(out);
	assert_int_equal(out_len, 0);
	assert_true(err[0] != '\0');
	if (needle && !strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	expect_same_streamed(c, clen, max_out, -1, NULL, 0, needle);
}

/* A sink that fails stops the decoding with its own message (or its own
 * code: the streaming loader's "decline" reaches the caller as it is), and
 * output larger than the window comes in several chunks. */
static void test_sink(void **state)
{
	(void)state;
	const size_t len = 5u << 20;
	uint8_t *data = make_data(len, 77);
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		struct collect col = { .fail_at = UINT64_MAX, .rc = -1 };
		struct boot_sink sink = { collect_write, &col };
		uint64_t total = 0;
		char err[256] = "";
		assert_int_equal(boot_decompress_to(c, clen, MAX_OUT, &sink, &total, err, sizeof(err)), 0);
		assert_int_equal(total, len);
		assert_memory_equal(col.p, data, len);
		/* lz4's window is one 8 MiB block, the others' 1 MiB */
		assert_true(col.chunks >= (formats[f].comp == BOOT_COMP_LZ4 ? 1u : 5u));
		free(col.p);
		for (int code = -1; code >= -2; code--) {
			col = (struct collect){ .fail_at = 2u << 20, .rc = code };
			err[0] = '\0';
			int rc = boot_decompress_to(c, clen, MAX_OUT, &sink, &total, err, sizeof(err));
			assert_int_equal(rc, code);
			assert_int_equal(total, 0);
			if (code == -1)
				assert_non_null(strstr(err, "the sink says no"));
			assert_true(col.len <= (2u << 20));
			free(col.p);
		}
		free(c);
	}
	free(data);
}

static void test_roundtrip(void **state)
{
	(void)state;
	const size_t len = 300 * 1024;
	uint8_t *data = make_data(len, 42);
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		assert_int_equal(boot_comp_detect(c, clen), formats[f].comp);
		/* as the library wrote it */
		expect_ok(c, clen, MAX_OUT, data, len);
		/* with the size the kernel's build appends */
		put_le32(c + clen, (uint32_t)len);
		expect_ok(c, clen + 4, MAX_OUT, data, len);
		/* the appended size is only a hint: a wrong one changes nothing */
		put_le32(c + clen, 16);
		expect_ok(c, clen + 4, MAX_OUT, data, len);
		put_le32(c + clen, 0xffffffffu);
		expect_ok(c, clen + 4, MAX_OUT, data, len);
		/* exactly max_out bytes fit */
		expect_ok(c, clen + 4, len, data, len);
		free(c);
	}
	/* empty data */
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, 0, &clen);
		if (formats[f].comp == BOOT_COMP_LZ4) {
			/* magic + one empty block: lz4 -l writes no blocks for empty input */
			free(c);
			continue;
		}
		uint8_t *out;
		size_t out_len = 1;
		char err[256];
		assert_int_equal(boot_decompress(c, clen, MAX_OUT, &out, &out_len, err, sizeof(err)), 0);
		assert_int_equal(out_len, 0);
		free(out);
		free(c);
	}
	free(data);
}

/* Trailing garbage after a complete gzip/xz/zstd stream is ignored. */
static void test_trailing_garbage(void **state)
{
	(void)state;
	const size_t len = 50000;
	uint8_t *data = make_data(len, 7);
	for (size_t f = 0; f < NFORMATS; f++) {
		if (formats[f].comp == BOOT_COMP_LZ4)
			continue; /* no end marker: only the 4-byte size may follow */
		size_t clen;
		uint8_t *c0 = formats[f].fn(data, len, &clen);
		uint8_t *c = realloc(c0, clen + 100);
		assert_non_null(c);
		memset(c + clen, 0xa5, 100);
		expect_ok(c, clen + 100, MAX_OUT, data, len);
		free(c);
	}
	free(data);
}

/* More than one 8 MiB block, and legacy frames concatenated. */
static void test_lz4_blocks(void **state)
{
	(void)state;
	const size_t len = LZ4_LEGACY_BLOCK + 12345;
	uint8_t *data = make_data(len, 3);
	size_t clen;
	uint8_t *c = make_lz4(data, len, &clen);
	expect_ok(c, clen, MAX_OUT, data, len);
	put_le32(c + clen, (uint32_t)len);
	expect_ok(c, clen + 4, MAX_OUT, data, len);
	/* just too small a limit, and one below the first block */
	expect_fail(c, clen, len - 1, "exceeds");
	expect_fail(c, clen, LZ4_LEGACY_BLOCK - 1, "exceeds");
	expect_ok(c, clen, len, data, len);
	free(c);

	/* two frames back to back: the second magic is skipped */
	size_t l1, l2;
	uint8_t *c1 = make_lz4(data, 1000, &l1);
	uint8_t *c2 = make_lz4(data + 1000, 2000, &l2);
	uint8_t *cat = malloc(l1 + l2);
	assert_non_null(cat);
	memcpy(cat, c1, l1);
	memcpy(cat + l1, c2, l2);
	expect_ok(cat, l1 + l2, MAX_OUT, data, 3000);
	free(cat);
	free(c1);
	free(c2);
	free(data);
}

static void test_truncated(void **state)
{
	(void)state;
	const size_t len = 100000;
	uint8_t *data = make_data(len, 11);
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		/* every cut in the last 16 bytes and ~200 spread over the stream;
		 * lz4 is cut inside its single block (a cut at a block boundary is a
		 * valid shorter legacy stream: the format has no end marker) */
		for (size_t cut = 0; cut < clen; cut += (clen - cut > 16 ? clen / 200 + 1 : 1)) {
			/* a heap copy of exactly `cut` bytes, so ASan sees any over-read */
			uint8_t *t = malloc(cut ? cut : 1);
			assert_non_null(t);
			memcpy(t, c, cut);
			expect_fail(t, cut, MAX_OUT, NULL);
			free(t);
		}
		free(c);
	}
	/* the messages say so */
	size_t clen;
	uint8_t *c = make_gzip(data, len, &clen);
	expect_fail(c, clen / 2, MAX_OUT, "truncated");
	free(c);
	c = make_xz(data, len, &clen);
	expect_fail(c, clen / 2, MAX_OUT, "truncated");
	free(c);
	c = make_zstd(data, len, &clen);
	expect_fail(c, clen / 2, MAX_OUT, "truncated");
	free(c);
	c = make_lz4(data, len, &clen);
	expect_fail(c, clen / 2, MAX_OUT, "truncated");
	free(c);
	free(data);
}

static void test_corrupt(void **state)
{
	(void)state;
	const size_t len = 100000;
	uint8_t *data = make_data(len, 5);
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		int failed = 0, tries = 0;
		for (size_t pos = 4; pos < clen; pos += clen / 300 + 1) {
			for (int flip = 0; flip < 2; flip++) {
				uint8_t saved = c[pos];
				c[pos] = flip ? (uint8_t)~saved : (uint8_t)(saved ^ 0x10);
				uint8_t *out = NULL;
				size_t out_len = 0;
				char err[256];
				int rc = boot_decompress(c, clen, MAX_OUT, &out, &out_len, err,
							 sizeof(err));
				c[pos] = saved;
				tries++;
				if (rc < 0) {
					assert_null(out);
					failed++;
					continue;
				}
				/* Accepted: only if the byte did not matter (gzip's header
				 * mtime, say) — or for lz4, which has no checksum. */
				if (formats[f].comp != BOOT_COMP_LZ4) {
					assert_int_equal(out_len, len);
					assert_memory_equal(out, data, len);
				}
				free(out);
			}
		}
		/* checksummed formats catch (nearly) everything */
		if (formats[f].comp != BOOT_COMP_LZ4)
			assert_true(failed >= tries * 9 / 10);
		free(c);
	}
	/* lz4: block sizes that cannot be */
	size_t clen;
	uint8_t *c = make_lz4(data, len, &clen);
	put_le32(c + 4, 0);
	expect_fail(c, clen, MAX_OUT, "bad block size");
	put_le32(c + 4, 0x7fffffffu);
	expect_fail(c, clen, MAX_OUT, "bad block size");
	put_le32(c + 4, (uint32_t)(clen - 8 + 1));
	expect_fail(c, clen, MAX_OUT, "truncated");
	free(c);
	/* lz4: a block whose literals run past its end */
	uint8_t bad[] = { 0x02, 0x21, 0x4c, 0x18, 3, 0, 0, 0, 0xf0, 0xff, 0xff };
	expect_fail(bad, sizeof(bad), MAX_OUT, "corrupt");
	free(data);
}

static void test_max_out(void **state)
{
	(void)state;
	const size_t len = 3u << 20; /* 3 MiB, so "exceeds 2 MiB" below */
	uint8_t *data = make_data(len, 9);
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		put_le32(c + clen, (uint32_t)len);
		expect_fail(c, clen + 4, len - 1, "decompressed kernel exceeds 3 MiB");
		expect_fail(c, clen + 4, 2u << 20, "decompressed kernel exceeds 2 MiB");
		expect_fail(c, clen + 4, 0, "exceeds");
		expect_ok(c, clen + 4, len, data, len);
		free(c);
	}
	free(data);
}

/* A decompression bomb: a zstd frame of RLE blocks (4 bytes each for 128 KiB
 * of one byte value), 33 KiB that would expand past BOOT_DECOMPRESS_MAX. With
 * max_out as large as a 64 GiB guest's RAM it must still stop at the cap. */
static void test_bomb(void **state)
{
	(void)state;
	const size_t block = 128u << 10, nblocks = BOOT_DECOMPRESS_MAX / block + 1;
	size_t len = 5 + nblocks * 4;
	uint8_t *c = malloc(len);
	assert_non_null(c);
	put_le32(c, 0xfd2fb528); /* zstd frame magic */
	c[4] = 0x00;             /* no content size, no checksum, a window descriptor follows */
	c = realloc(c, ++len);
	assert_non_null(c);
	c[5] = 7 << 3;           /* window 2^(10+7) = 128 KiB */
	for (size_t i = 0; i < nblocks; i++) {
		uint32_t hdr = (uint32_t)(block << 3) | 1u << 1 | (i == nblocks - 1); /* RLE, size, last */
		uint8_t *b = c + 6 + i * 4;
		b[0] = (uint8_t)hdr, b[1] = (uint8_t)(hdr >> 8), b[2] = (uint8_t)(hdr >> 16);
		b[3] = 0x90;
	}
	expect_fail(c, len, SIZE_MAX, "decompressed kernel exceeds 512 MiB");
	expect_fail(c, len, 64ull << 30, "decompressed kernel exceeds 512 MiB");
	/* the same frame cut to 8 blocks is a valid 1 MiB kernel "image" */
	uint8_t *small = malloc(6 + 8 * 4);
	assert_non_null(small);
	memcpy(small, c, 6 + 8 * 4);
	small[6 + 7 * 4] |= 1; /* the 8th block is the last */
	uint8_t *want = malloc(8 * block);
	assert_non_null(want);
	memset(want, 0x90, 8 * block);
	expect_ok(small, 6 + 8 * 4, SIZE_MAX, want, 8 * block);
	free(want);
	free(small);
	free(c);
}

static void test_detect(void **state)
{
	(void)state;
	static const struct {
		uint8_t b[8];
		size_t len;
		enum boot_comp c;
	} cases[] = {
		{ { 0x1f, 0x8b, 0x08 }, 3, BOOT_COMP_GZIP },
		{ { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6, BOOT_COMP_XZ },
		{ { 0x28, 0xb5, 0x2f, 0xfd }, 4, BOOT_COMP_ZSTD },
		{ { 0x02, 0x21, 0x4c, 0x18 }, 4, BOOT_COMP_LZ4 },
		{ { 'B', 'Z', 'h', '9' }, 4, BOOT_COMP_BZIP2 },
		{ { 0x5d, 0x00, 0x00, 0x80 }, 4, BOOT_COMP_LZMA },
		{ { 0x89, 'L', 'Z', 'O', 0 }, 5, BOOT_COMP_LZO },
		/* magics cut short or slightly wrong */
		{ { 0x1f }, 1, BOOT_COMP_NONE },
		{ { 0xfd, '7', 'z', 'X', 'Z' }, 5, BOOT_COMP_NONE },
		{ { 0xfd, '7', 'z', 'X', 'Z', 0x01 }, 6, BOOT_COMP_NONE },
		{ { 0x28, 0xb5, 0x2f }, 3, BOOT_COMP_NONE },
		{ { 0x02, 0x21, 0x4c, 0x19 }, 4, BOOT_COMP_NONE },
		{ { 0x04, 0x22, 0x4d, 0x18 }, 4, BOOT_COMP_NONE }, /* the modern lz4 frame */
		{ { 0x5d, 0x00, 0x01 }, 3, BOOT_COMP_NONE },
		{ { 0x7f, 'E', 'L', 'F' }, 4, BOOT_COMP_NONE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(boot_comp_detect(cases[i].b, cases[i].len), cases[i].c);
	assert_int_equal(boot_comp_detect(NULL, 0), BOOT_COMP_NONE);

	assert_string_equal(boot_comp_name(BOOT_COMP_NONE), "none");
	assert_string_equal(boot_comp_name(BOOT_COMP_GZIP), "gzip");
	assert_string_equal(boot_comp_name(BOOT_COMP_BZIP2), "bzip2");
	assert_string_equal(boot_comp_name(BOOT_COMP_LZMA), "lzma");
	assert_string_equal(boot_comp_name(BOOT_COMP_XZ), "xz");
	assert_string_equal(boot_comp_name(BOOT_COMP_LZO), "lzo");
	assert_string_equal(boot_comp_name(BOOT_COMP_LZ4), "lz4");
	assert_string_equal(boot_comp_name(BOOT_COMP_ZSTD), "zstd");
	assert_string_equal(boot_comp_name((enum boot_comp)99), "unknown");
}

static void test_unsupported(void **state)
{
	(void)state;
	const uint8_t bz[] = { 'B', 'Z', 'h', '9', 0x31, 0x41, 0x59, 0x26 };
	const uint8_t lzma[] = { 0x5d, 0x00, 0x00, 0x80, 0x00, 0xff, 0xff, 0xff };
	const uint8_t lzo[] = { 0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a };
	expect_fail(bz, sizeof(bz), MAX_OUT, "bzip2");
	expect_fail(bz, sizeof(bz), MAX_OUT, "--no-decompress");
	expect_fail(lzma, sizeof(lzma), MAX_OUT, "lzma");
	expect_fail(lzma, sizeof(lzma), MAX_OUT, "--no-decompress");
	expect_fail(lzo, sizeof(lzo), MAX_OUT, "lzo");
	expect_fail(lzo, sizeof(lzo), MAX_OUT, "--no-decompress");
	const uint8_t elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
	expect_fail(elf, sizeof(elf), MAX_OUT, "unrecognised compression (magic 7f 45 4c 46)");
	expect_fail(elf, 2, MAX_OUT, "too short");
	expect_fail(NULL, 0, MAX_OUT, "too short");
}

/* A bzImage: boot sector + setup_sects of setup, then the protected-mode
 * kernel with the payload payload_offset bytes into it. */
static uint8_t *make_bzimage(size_t total, uint8_t setup_sects, uint16_t version, uint32_t poff,
			     uint32_t plen)
{
	uint8_t *img = calloc(1, total);
	assert_non_null(img);
	img[0x1f1] = setup_sects;
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = (uint8_t)version;
	img[0x207] = (uint8_t)(version >> 8);
	put_le32(img + 0x248, poff);
	put_le32(img + 0x24c, plen);
	return img;
}

static void test_bzimage_payload(void **state)
{
	(void)state;
	const uint8_t *p;
	size_t plen;
	char err[256];
	const size_t total = 64 * 1024;

	/* setup_sects 3: protected-mode kernel at 4 * 512 */
	uint8_t *img = make_bzimage(total, 3, 0x020f, 0x1000, 0x2000);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
	assert_ptr_equal(p, img + 2048 + 0x1000);
	assert_int_equal(plen, 0x2000);
	/* setup_sects 0 means 4 */
	img[0x1f1] = 0;
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
	assert_ptr_equal(p, img + 5 * 512 + 0x1000);
	/* payload ending exactly at the end of the file */
	put_le32(img + 0x24c, (uint32_t)(total - 5 * 512 - 0x1000));
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
	assert_int_equal(plen, total - 5 * 512 - 0x1000);
	/* one byte further is outside */
	put_le32(img + 0x24c, (uint32_t)(total - 5 * 512 - 0x1000 + 1));
	p = img;
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_null(p);
	assert_non_null(strstr(err, "outside the image"));
	/* offsets and lengths near 4 GiB do not wrap */
	put_le32(img + 0x248, 0xffffffffu);
	put_le32(img + 0x24c, 0x10);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outside the image"));
	put_le32(img + 0x248, 0x10);
	put_le32(img + 0x24c, 0xffffffffu);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outside the image"));
	/* setup larger than the file */
	img[0x1f1] = 200;
	put_le32(img + 0x24c, 1);
	put_le32(img + 0x248, 0);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outside the image"));
	img[0x1f1] = 3;
	/* no payload */
	put_le32(img + 0x24c, 0);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "payload_length is 0"));
	put_le32(img + 0x24c, 0x10);
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
	/* header checks */
	assert_int_equal(boot_bzimage_payload(img, 0x24f, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
	assert_int_equal(boot_bzimage_payload(NULL, 0, &p, &plen, err, sizeof(err)), -1);
	img[0x206] = 0x07; /* 2.07 */
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2.07"));
	img[0x206] = 0x08;
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
	img[0x203] = 'x';
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HdrS"));
	memcpy(img + 0x202, "HdrS", 4);
	img[0x1fe] = 0x54;
	assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0xaa55"));
	free(img);
}

/* From a crafted bzImage to the vmlinux bytes, as the loader will do it. */
static void test_bzimage_end_to_end(void **state)
{
	(void)state;
	const size_t len = 200000;
	uint8_t *data = make_data(len, 13);
	memcpy(data, "\x7f" "ELF\x02\x01\x01", 7); /* an ELF64 comes out */
	for (size_t f = 0; f < NFORMATS; f++) {
		size_t clen;
		uint8_t *c = formats[f].fn(data, len, &clen);
		put_le32(c + clen, (uint32_t)len); /* as the kernel's build appends */
		size_t total = 4 * 512 + 0x300 + clen + 4 + 0x80;
		uint8_t *img = make_bzimage(total, 3, 0x020f, 0x300, (uint32_t)(clen + 4));
		memcpy(img + 4 * 512 + 0x300, c, clen + 4);
		const uint8_t *p;
		size_t plen;
		char err[256];
		assert_int_equal(boot_bzimage_payload(img, total, &p, &plen, err, sizeof(err)), 0);
		assert_int_equal(boot_comp_detect(p, plen), formats[f].comp);
		expect_ok(p, plen, MAX_OUT, data, len);
		free(img);
		free(c);
	}
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_sink),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_lz4_blocks),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_max_out),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_bzimage_payload),
		cmocka_unit_test(test_bzimage_end_to_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
