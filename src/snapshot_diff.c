/*
 * snapshot_diff: memory files — their trailer, diff memory files and the
 * merge of diffs onto their base (snapshot.h, docs/snapshot.md).
 *
 * A diff memory file has the layout of a full one (RAM at its offsets, a
 * trailer page after it) but holds only the pages written since its parent
 * snapshot; everything else is a hole. A page the guest wrote is written
 * even if it is now all zero: in a diff a hole means "unchanged", not
 * "zero". Merging copies a diff's data extents (SEEK_DATA/SEEK_HOLE) onto
 * the base in place and gives the base the diff's id, so that the diff's
 * state file then restores from the base — Firecracker's rebase-snap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_priv.h"
#include "util.h"

#define SNAP_MERGE_MAX 64 /* diffs in one merge */

int snap_mem_trailer_write(int fd, const struct snap_mem_trailer *t)
{
	if (pwrite(fd, t, sizeof(*t), (off_t)t->ram_size) != (ssize_t)sizeof(*t))
		return errno ? -errno : -EIO;
	return 0;
}

int snap_mem_trailer_read(int fd, const char *path, uint64_t ram_size, struct snap_mem_trailer *t, char *err,
			  size_t n)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)SNAP_MEM_TRAILER) {
		if (ram_size)
			snprintf(err, n, "%s is not the memory file of a %llu MiB guest", path,
				 (unsigned long long)(ram_size >> 20));
		else
			snprintf(err, n, "%s is not an hvmm memory file", path);
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size - SNAP_MEM_TRAILER;
	if (ram_size && size != ram_size) {
		snprintf(err, n, "%s is not the memory file of a %llu MiB guest", path,
			 (unsigned long long)(ram_size >> 20));
		return -1;
	}
	if (pread(fd, t, sizeof(*t), (off_t)size) != (ssize_t)sizeof(*t) ||
	    (memcmp(t->magic, SNAP_MEM_MAGIC, 8) != 0 && memcmp(t->magic, SNAP_DIFF_MAGIC, 8) != 0) ||
	    t->ram_size != size) {
		snprintf(err, n, "%s is not an hvmm memory file", path);
		return -1;
	}
	return 0;
}

int snap_mem_check_full(int fd, const char *path, uint64_t ram_size, const uint8_t id[16], char *err, size_t n)
{
	struct snap_mem_trailer t;
	if (snap_mem_trailer_read(fd, path, ram_size, &t, err, n) < 0)
		return -1;
	if (memcmp(t.magic, SNAP_DIFF_MAGIC, 8) == 0) {
		snprintf(err, n, "%s is a diff snapshot's memory file: merge it onto its base first "
			 "(hvmm snapshot-merge BASE DIFF...) and restore from the base", path);
		return -1;
	}
	if (memcmp(t.id, id, 16) != 0) {
		snprintf(err, n, "%s belongs to another snapshot", path);
		return -1;
	}
	return 0;
}

static int snap_pwrite_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static bool snap_bit(const uint64_t *bm, uint64_t pg)
{
	return bm[pg / 64] >> (pg % 64) & 1;
}

int snapshot_write_diff(const uint8_t *ram, uint64_t ram_size, const uint64_t *dirty, const char *path,
			const uint8_t id[16], const uint8_t parent[16], uint64_t *pages, char *err, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, n, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int r = 0;
	uint64_t npages = ram_size / SNAP_PAGE, count = 0;
	if (ftruncate(fd, (off_t)(ram_size + SNAP_MEM_TRAILER)) < 0)
		r = -errno;
	for (uint64_t pg = 0; r == 0 && pg < npages;) {
		if (!dirty[pg / 64]) { /* 64 clean pages at once */
			pg = (pg / 64 + 1) * 64;
			continue;
		}
		if (!snap_bit(dirty, pg)) {
			pg++;
			continue;
		}
		uint64_t end = pg + 1; /* a run of written pages, at most 8 MiB at once */
		while (end < npages && end - pg < 2048 && snap_bit(dirty, end))
			end++;
		r = snap_pwrite_all(fd, ram + pg * SNAP_PAGE, (end - pg) * SNAP_PAGE, pg * SNAP_PAGE);
		count += end - pg;
		pg = end;
	}
	struct snap_mem_trailer t = { .ram_size = ram_size };
	memcpy(t.magic, SNAP_DIFF_MAGIC, 8);
	memcpy(t.id, id, 16);
	memcpy(t.parent, parent, 16);
	if (r == 0)
		r = snap_mem_trailer_write(fd, &t);
	if ((r = snap_file_finish(fd, r)) < 0) {
		snprintf(err, n, "writing %s: %s", path, strerror(-r));
		return -1;
	}
	if (pages)
		*pages = count;
	return 0;
}

/* Copy the data extents of [0, size) of src onto dst at the same offsets. */
static int snap_copy_extents(int src, int dst, uint64_t size, uint64_t *bytes)
{
	static uint8_t buf[1 << 20];
	off_t off = 0;
	while ((uint64_t)off < size) {
		off_t d = lseek(src, off, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after off */
		if ((uint64_t)d >= size)
			return 0;
		off_t h = lseek(src, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		if ((uint64_t)h > size)
			h = (off_t)size;
		for (off_t o = d; o < h;) {
			size_t len = (size_t)(h - o) < sizeof(buf) ? (size_t)(h - o) : sizeof(buf);
			ssize_t rd = pread(src, buf, len, o);
			if (rd < 0 && errno == EINTR)
				continue;
			if (rd <= 0)
				return rd < 0 ? -errno : -EIO;
			int r = snap_pwrite_all(dst, buf, (uint64_t)rd, (uint64_t)o);
			if (r < 0)
				return r;
			o += rd;
			*bytes += (uint64_t)rd;
		}
		off = h;
	}
	return 0;
}

int snapshot_merge(const char *base, const char *const *diffs, int nr, uint64_t *bytes, char *err, size_t n)
{
	int bfd = -1, fds[SNAP_MERGE_MAX];
	int opened = 0, r = -1;
	struct snap_mem_trailer bt, dt[SNAP_MERGE_MAX];
	uint64_t copied = 0;
	if (nr < 1 || nr > SNAP_MERGE_MAX) {
		snprintf(err, n, "give 1 to %d diff files", SNAP_MERGE_MAX);
		return -1;
	}
	if ((bfd = open(base, O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(err, n, "cannot open %s: %s", base, strerror(errno));
		return -1;
	}
	if (snap_mem_trailer_read(bfd, base, 0, &bt, err, n) < 0)
		goto out;
	if (memcmp(bt.magic, SNAP_MEM_MAGIC, 8) != 0) {
		snprintf(err, n, "%s is a diff, not a full memory file: the base comes first", base);
		goto out;
	}
	/* The whole chain is checked before the base changes: base, then each
	 * diff a diff of the one before it. */
	const uint8_t *want = bt.id;
	const char *want_name = base;
	while (opened < nr) {
		const char *d = diffs[opened];
		int fd = open(d, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, n, "cannot open %s: %s", d, strerror(errno));
			goto out;
		}
		fds[opened] = fd;
		struct snap_mem_trailer *t = &dt[opened++];
		if (snap_mem_trailer_read(fd, d, bt.ram_size, t, err, n) < 0)
			goto out;
		if (memcmp(t->magic, SNAP_DIFF_MAGIC, 8) != 0) {
			snprintf(err, n, "%s is a full memory file, not a diff", d);
			goto out;
		}
		if (memcmp(t->parent, want, 16) != 0) {
			snprintf(err, n, "%s is not a diff of %s: it belongs to another snapshot", d, want_name);
			goto out;
		}
		want = t->id;
		want_name = d;
	}
	for (int i = 0; i < nr; i++) {
		int e = snap_copy_extents(fds[i], bfd, bt.ram_size, &copied);
		if (e == 0) { /* the base is now the snapshot this diff was */
			memcpy(bt.id, dt[i].id, 16);
			e = snap_mem_trailer_write(bfd, &bt);
		}
		if (e < 0) {
			snprintf(err, n, "merging %s into %s: %s (the base is now half merged)", diffs[i], base,
				 strerror(-e));
			goto out;
		}
	}
	if (fdatasync(bfd) < 0) {
		snprintf(err, n, "writing %s: %s", base, strerror(errno));
		goto out;
	}
	if (bytes)
		*bytes = copied;
	r = 0;
out:
	for (int i = 0; i < opened; i++)
		close(fds[i]);
	close(bfd);
	return r;
}
