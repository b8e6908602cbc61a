/* snapshot_diff: diff memory files (only the written pages, holes
 * elsewhere), their merge onto the base they descend from, and every
 * refusal of a file that is not what it must be: a diff of another
 * snapshot, diffs out of order, a full file where a diff belongs, a diff
 * restored directly. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot.h"
#include "snapshot_priv.h"

#define PAGES 1024u
#define RAM ((uint64_t)PAGES * SNAP_PAGE)

static char dir[64];
static char base[128], d1[128], d2[128], d3[128];
static uint8_t *ram;
static const uint8_t ID_A[16] = { 0xa }, ID_B[16] = { 0xb }, ID_C[16] = { 0xc }, ID_X[16] = { 0xf };

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hvmm-test-diff-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(base, sizeof(base), "%s/base.mem", dir);
	snprintf(d1, sizeof(d1), "%s/d1.mem", dir);
	snprintf(d2, sizeof(d2), "%s/d2.mem", dir);
	snprintf(d3, sizeof(d3), "%s/d3.mem", dir);
	ram = calloc(1, RAM);
	return ram ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(base), unlink(d1), unlink(d2), unlink(d3);
	rmdir(dir);
	free(ram);
	return 0;
}

static void fill(uint64_t pg, uint8_t v)
{
	memset(ram + pg * SNAP_PAGE, v, SNAP_PAGE);
}

static void set(uint64_t *bm, uint64_t pg)
{
	bm[pg / 64] |= 1ull << (pg % 64);
}

/* A full memory file of ram with id, as snapshot_create writes one. */
static void write_full(const char *path, const uint8_t id[16])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(RAM + SNAP_MEM_TRAILER)), 0);
	for (uint64_t pg = 0; pg < PAGES; pg++) {
		static const uint8_t zero[SNAP_PAGE];
		if (memcmp(ram + pg * SNAP_PAGE, zero, SNAP_PAGE) != 0)
			assert_int_equal(pwrite(fd, ram + pg * SNAP_PAGE, SNAP_PAGE, (off_t)(pg * SNAP_PAGE)), SNAP_PAGE);
	}
	struct snap_mem_trailer t = { .ram_size = RAM };
	memcpy(t.magic, SNAP_MEM_MAGIC, 8);
	memcpy(t.id, id, 16);
	assert_int_equal(snap_mem_trailer_write(fd, &t), 0);
	close(fd);
}

/* The file's data extents as a page bitmap (SEEK_DATA/SEEK_HOLE), RAM only. */
static void extents(const char *path, uint64_t *bm)
{
	memset(bm, 0, PAGES / 8);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	off_t off = 0;
	for (;;) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0 || (uint64_t)d >= RAM)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		assert_true(h > d);
		for (off_t o = d; o < h && (uint64_t)o < RAM; o += SNAP_PAGE)
			set(bm, (uint64_t)o / SNAP_PAGE);
		off = h;
	}
	close(fd);
}

static void read_all(const char *path, uint8_t *dst)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, dst, RAM, 0), (ssize_t)RAM);
	close(fd);
}

/* Only the pages marked, at their offsets, a page written back to zeros
 * among them (in a diff a hole means "unchanged", so that page must be
 * data); the size of RAM plus the trailer; little disk. */
static void test_diff_layout(void **state)
{
	(void)state;
	uint64_t dirty[PAGES / 64] = { 0 };
	uint64_t want[PAGES / 64] = { 0 };
	fill(0, 1), fill(5, 2), fill(6, 3), fill(7, 4), fill(1023, 5);
	fill(9, 9); /* written before: not in this diff */
	const uint64_t marked[] = { 0, 5, 6, 7, 300, 1023 }; /* 300: written back to zeros */
	for (size_t i = 0; i < sizeof(marked) / sizeof(marked[0]); i++)
		set(dirty, marked[i]), set(want, marked[i]);
	uint64_t pages = 0;
	char err[300];
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d1, ID_B, ID_A, &pages, err, sizeof(err)), 0);
	assert_int_equal(pages, 6);
	struct stat st;
	assert_int_equal(stat(d1, &st), 0);
	assert_int_equal((uint64_t)st.st_size, RAM + SNAP_MEM_TRAILER);
	/* allocated: the 6 pages and the trailer's (a file system may round up a little) */
	assert_true((uint64_t)st.st_blocks * 512 <= 16 * SNAP_PAGE);
	uint64_t got[PAGES / 64];
	extents(d1, got);
	assert_memory_equal(got, want, sizeof(want));
	uint8_t *back = malloc(RAM);
	assert_non_null(back);
	read_all(d1, back);
	for (size_t i = 0; i < sizeof(marked) / sizeof(marked[0]); i++)
		assert_memory_equal(back + marked[i] * SNAP_PAGE, ram + marked[i] * SNAP_PAGE, SNAP_PAGE);
	assert_int_equal(back[9 * SNAP_PAGE], 0); /* a hole */
	free(back);
	/* the trailer names it a diff of A */
	int fd = open(d1, O_RDONLY);
	struct snap_mem_trailer t;
	assert_int_equal(snap_mem_trailer_read(fd, d1, RAM, &t, err, sizeof(err)), 0);
	assert_memory_equal(t.magic, SNAP_DIFF_MAGIC, 8);
	assert_memory_equal(t.id, ID_B, 16);
	assert_memory_equal(t.parent, ID_A, 16);
	/* and a restore will not map it as RAM */
	assert_int_equal(snap_mem_check_full(fd, d1, RAM, ID_B, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "merge it onto its base first"));
	close(fd);
	/* nothing written: a file of holes */
	memset(dirty, 0, sizeof(dirty));
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d2, ID_C, ID_B, &pages, err, sizeof(err)), 0);
	assert_int_equal(pages, 0);
	extents(d2, got);
	memset(want, 0, sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	/* a path that cannot be created is named */
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, "/nonexistent/d.mem", ID_C, ID_B, &pages, err,
					     sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot create /nonexistent/d.mem"));
}

/* base (A) + d1 (B, of A) + d2 (C, of B) merged in order = the RAM as it
 * was at C, and the base then belongs to C's state file. */
static void test_merge_chain(void **state)
{
	(void)state;
	char err[300];
	uint64_t dirty[PAGES / 64] = { 0 };
	for (uint64_t pg = 0; pg < PAGES; pg += 3)
		fill(pg, (uint8_t)(pg | 1));
	write_full(base, ID_A);
	/* after A: pages 3 and 4 change, 6 is zeroed */
	fill(3, 0x33), fill(4, 0x44), fill(6, 0);
	set(dirty, 3), set(dirty, 4), set(dirty, 6);
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d1, ID_B, ID_A, NULL, err, sizeof(err)), 0);
	/* after B: page 4 again, 1000 */
	memset(dirty, 0, sizeof(dirty));
	fill(4, 0x45), fill(1000, 0x10);
	set(dirty, 4), set(dirty, 1000);
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d2, ID_C, ID_B, NULL, err, sizeof(err)), 0);
	const char *chain[] = { d1, d2 };
	uint64_t bytes = 0;
	assert_int_equal(snapshot_merge(base, chain, 2, &bytes, err, sizeof(err)), 0);
	assert_int_equal(bytes, 5 * SNAP_PAGE);
	uint8_t *back = malloc(RAM);
	assert_non_null(back);
	read_all(base, back);
	assert_memory_equal(back, ram, RAM);
	free(back);
	int fd = open(base, O_RDONLY);
	assert_int_equal(snap_mem_check_full(fd, base, RAM, ID_C, err, sizeof(err)), 0);
	assert_int_equal(snap_mem_check_full(fd, base, RAM, ID_A, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "belongs to another snapshot"));
	close(fd);
	/* merged once, the base is C: d1 is no diff of it any more */
	assert_int_equal(snapshot_merge(base, chain, 1, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a diff of"));
}

static uint32_t file_crc(const char *path)
{
	uint8_t *b = malloc(RAM + SNAP_MEM_TRAILER);
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, b, RAM + SNAP_MEM_TRAILER, 0), (ssize_t)(RAM + SNAP_MEM_TRAILER));
	close(fd);
	uint32_t h = 2166136261u;
	for (uint64_t i = 0; i < RAM + SNAP_MEM_TRAILER; i++)
		h = (h ^ b[i]) * 16777619u;
	free(b);
	return h;
}

static void expect_merge_refused(const char *const *chain, int n, const char *text)
{
	char err[300] = "";
	uint32_t before = file_crc(base);
	if (snapshot_merge(base, chain, n, NULL, err, sizeof(err)) != -1 || !strstr(err, text))
		fail_msg("merge: '%s', want '%s'", err, text);
	assert_int_equal(file_crc(base), before); /* the base is untouched */
}

static void test_merge_refusals(void **state)
{
	(void)state;
	char err[300];
	uint64_t dirty[PAGES / 64] = { 0 };
	fill(1, 0x11);
	write_full(base, ID_A);
	fill(2, 0x22);
	set(dirty, 2);
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d1, ID_B, ID_A, NULL, err, sizeof(err)), 0);
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d2, ID_C, ID_B, NULL, err, sizeof(err)), 0);
	assert_int_equal(snapshot_write_diff(ram, RAM, dirty, d3, ID_C, ID_X, NULL, err, sizeof(err)), 0);
	const char *skip[] = { d2 };
	expect_merge_refused(skip, 1, "is not a diff of");          /* a diff of B onto A */
	const char *order[] = { d2, d1 };
	expect_merge_refused(order, 2, "is not a diff of");         /* out of order */
	const char *foreign[] = { d1, d3 };
	expect_merge_refused(foreign, 2, "is not a diff of");       /* the second of another VM */
	const char *full[] = { base };
	expect_merge_refused(full, 1, "is a full memory file, not a diff");
	const char *missing[] = { "/nonexistent.mem" };
	expect_merge_refused(missing, 1, "cannot open /nonexistent.mem");
	/* a diff of another RAM size */
	int fd = open(d3, O_RDWR | O_TRUNC);
	struct snap_mem_trailer t = { .ram_size = RAM / 2 };
	memcpy(t.magic, SNAP_DIFF_MAGIC, 8);
	memcpy(t.parent, ID_A, 16);
	assert_int_equal(ftruncate(fd, (off_t)(RAM / 2 + SNAP_MEM_TRAILER)), 0);
	assert_int_equal(snap_mem_trailer_write(fd, &t), 0);
	close(fd);
	const char *small[] = { d3 };
	expect_merge_refused(small, 1, "is not the memory file of a 4 MiB guest");
	/* garbage where the trailer should be */
	fd = open(d3, O_RDWR);
	assert_int_equal(ftruncate(fd, (off_t)(RAM + SNAP_MEM_TRAILER)), 0);
	assert_int_equal(pwrite(fd, "junkjunk", 8, (off_t)RAM), 8);
	close(fd);
	expect_merge_refused(small, 1, "is not an hvmm memory file");
	/* a file shorter than a trailer */
	fd = open(d3, O_RDWR | O_TRUNC);
	close(fd);
	expect_merge_refused(small, 1, "is not the memory file of a 4 MiB guest");
	/* the base must be a full file */
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s", base);
	snprintf(base, sizeof(base), "%s", d1);
	const char *self[] = { d2 };
	expect_merge_refused(self, 1, "is a diff, not a full memory file");
	snprintf(base, sizeof(base), "%s", tmp);
	/* no diff at all */
	assert_int_equal(snapshot_merge(base, self, 0, NULL, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_diff_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
