/*
 * virtio-blk under host faults: each test is a row of the fault matrix in the
 * README's disk section, and each asserts the same contract:
 *   - the request that hit the fault completes with VIRTIO_BLK_S_IOERR (never
 *     OK, never a lost used entry, never DEVICE_NEEDS_RESET);
 *   - the device keeps serving: later requests complete, OK where the fault
 *     does not touch them;
 *   - every write acknowledged OK before the fault is in the image afterwards.
 *
 * The faults are real ones, made by the kernel, never by a hook in hvmm:
 *   - ENOSPC: the image on a 1000 KiB tmpfs, sparse, written into its holes;
 *   - truncation and unlinking of the image under the running device;
 *   - EIO on reads, writes and fsync: the image on a FUSE file system that
 *     this program serves from a child process (faultfs below: a
 *     pass-through to a file on /tmp that fails the byte range and the
 *     number of fsyncs it is told to). This machine's kernel has no
 *     device-mapper, so dm-error/dm-flakey are not an option here.
 * The mounts need root; they are made in a mount namespace of this process
 * (unshare), so nothing is left mounted on the host whatever happens. Every
 * test runs on io_uring and on the synchronous fallback (HVMM_DISK_SYNC=1).
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blk_fake.h"

#define CHUNK (64u << 10)           /* one test write */
#define CHUNK_SECTORS (CHUNK / 512)

static bool is_root;
static char mnt[64];                /* this test's mount point, "" if none */
static pid_t fs_pid = -1;           /* the faultfs server */

/* ---- faultfs: a one-file FUSE pass-through that fails on request ---- */

/* Shared with the server process (MAP_SHARED): what to fail. */
struct faultfs_ctl {
	volatile uint64_t lo, hi;   /* reads and writes touching [lo, hi) fail with EIO */
	volatile int fsync_fail;    /* this many fsyncs fail with EIO, then they work */
	volatile int fsyncs;        /* fsyncs seen, failed or not */
};
static struct faultfs_ctl *ctl;
static int backing = -1;            /* the file behind mnt/img (server side) */

static int ffs_getattr(const char *p, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(p, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(p, "/img") != 0)
		return -ENOENT;
	struct stat b;
	if (fstat(backing, &b) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = b.st_size;
	st->st_blocks = b.st_blocks;
	st->st_blksize = 4096;
	return 0;
}

static int ffs_open(const char *p, struct fuse_file_info *fi)
{
	if (strcmp(p, "/img") != 0)
		return -ENOENT;
	/* no page cache in between: every read and write reaches the server,
	 * and a write's error reaches the writer */
	fi->direct_io = 1;
	return 0;
}

/* How much of [off, off + len) lies before the failing range, or len. */
static size_t ffs_until_fault(size_t len, off_t off)
{
	uint64_t lo = ctl->lo, hi = ctl->hi, o = (uint64_t)off;
	if (hi <= lo || o + len <= lo || o >= hi)
		return len;
	return o < lo ? (size_t)(lo - o) : 0;
}

static int ffs_read(const char *p, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	(void)p, (void)fi;
	size_t ok = ffs_until_fault(len, off);
	if (ok < len)
		return -EIO; /* a read fails whole, as a disk's does */
	ssize_t n = pread(backing, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int ffs_write(const char *p, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	(void)p, (void)fi;
	/* what lies before the bad range is written: the writer sees a
	 * short write first and EIO when it tries the rest */
	size_t ok = ffs_until_fault(len, off);
	if (ok == 0)
		return -EIO;
	ssize_t n = pwrite(backing, buf, ok, off);
	return n < 0 ? -errno : (int)n;
}

static int ffs_fsync(const char *p, int datasync, struct fuse_file_info *fi)
{
	(void)p, (void)fi;
	__atomic_fetch_add(&ctl->fsyncs, 1, __ATOMIC_SEQ_CST);
	if (ctl->fsync_fail > 0) {
		__atomic_fetch_sub(&ctl->fsync_fail, 1, __ATOMIC_SEQ_CST);
		return -EIO;
	}
	return (datasync ? fdatasync(backing) : fsync(backing)) < 0 ? -errno : 0;
}

static int ffs_truncate(const char *p, off_t size, struct fuse_file_info *fi)
{
	(void)p, (void)fi;
	return ftruncate(backing, size) < 0 ? -errno : 0;
}

static const struct fuse_operations ffs_ops = {
	.getattr = ffs_getattr,
	.open = ffs_open,
	.read = ffs_read,
	.write = ffs_write,
	.fsync = ffs_fsync,
	.truncate = ffs_truncate,
	/* no fallocate: discard and write-zeroes take their EOPNOTSUPP paths */
};

/* The server: mounts faultfs on `dir` and serves it until unmounted. */
static void faultfs_serve(const char *dir)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
	char *argv[] = { "faultfs", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct fuse *f = fuse_new(&args, &ffs_ops, sizeof(ffs_ops), NULL);
	if (!f || fuse_mount(f, dir) != 0)
		_exit(2);
	int r = fuse_loop(f); /* single-threaded: requests are served in turn */
	fuse_destroy(f);
	_exit(r == 0 ? 0 : 3);
}

/* ---- fixtures ---- */

static int up_common(void **state, bool sync)
{
	if (setup(state))
		return -1;
	memset(&vm, 0, sizeof(vm));
	memset(&dev, 0, sizeof(dev));
	loop_fd = -1;
	mnt[0] = 0;
	setenv("HVMM_DISK_SYNC", sync ? "1" : "0", 1);
	return 0;
}

/* The test's image on `dir` (open_disk: DISK_BYTES, sparse), FLUSH negotiated. */
static int up_dir(void **state, bool sync, const char *dir)
{
	if (up_common(state, sync))
		return -1;
	open_disk(dir, false);
	return 0;
}

/* A 1000 KiB tmpfs (not a whole number of 64 KiB writes: the one that
 * runs out of space is a short write first), the 4 MiB sparse image on it. */
static int up_tmpfs(void **state, bool sync)
{
	if (up_common(state, sync))
		return -1;
	if (!is_root)
		return 0; /* the test skips itself */
	snprintf(mnt, sizeof(mnt), "/tmp/hvmm-enospc-XXXXXX");
	assert_non_null(mkdtemp(mnt));
	assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=1000k"), 0);
	open_disk(mnt, false);
	return 0;
}

/* faultfs on a fresh directory, its backing file DISK_BYTES of zeros; the
 * test's `disk` fd is the backing file (what is really stored). */
static int up_faultfs(void **state, bool sync)
{
	if (up_common(state, sync))
		return -1;
	if (!is_root)
		return 0; /* the test skips itself */
	memset(ctl, 0, sizeof(*ctl));
	snprintf(mnt, sizeof(mnt), "/tmp/hvmm-faultfs-XXXXXX");
	assert_non_null(mkdtemp(mnt));
	char back[] = "/tmp/hvmm-faultfs-img-XXXXXX";
	backing = disk = mkstemp(back);
	assert_true(disk >= 0);
	unlink(back);
	assert_int_equal(ftruncate(disk, DISK_BYTES), 0);
	fs_pid = fork();
	assert_true(fs_pid >= 0);
	if (fs_pid == 0)
		faultfs_serve(mnt);
	snprintf(path, sizeof(path), "%s/img", mnt);
	struct stat st;
	for (int i = 0; i < 500 && (stat(path, &st) != 0 || !S_ISREG(st.st_mode)); i++)
		usleep(10000);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, DISK_BYTES);
	assert_int_equal(virtio_blk_create(&vm.env, path, false, NULL), 0);
	driver_start(F_FLUSH | F_DISCARD | F_WZ | (1ull << VIRTIO_F_VERSION_1), false);
	return 0;
}

static int down_mnt(void **state)
{
	if (dev.ops) {
		dev.ops->reset(&dev);
		dev.ops->destroy(&dev);
		assert_int_equal(loop_fd, -1);
	}
	if (disk >= 0)
		close(disk);
	disk = -1;
	if (mnt[0]) {
		if (fs_pid < 0)
			unlink(path);
		/* faultfs: the unmount ends its loop and the server exits */
		assert_int_equal(umount2(mnt, fs_pid > 0 ? MNT_DETACH : 0), 0);
		if (fs_pid > 0) {
			int st;
			for (int i = 0; i < 500 && waitpid(fs_pid, &st, WNOHANG) == 0; i++)
				usleep(10000);
			kill(fs_pid, SIGKILL); /* by now gone; a hung one goes here */
			waitpid(fs_pid, NULL, 0);
			fs_pid = -1;
		}
		rmdir(mnt);
		mnt[0] = 0;
	} else if (path[0]) {
		unlink(path);
	}
	path[0] = 0;
	return teardown(state);
}

static int up_tmp_uring(void **s) { return up_dir(s, false, "/tmp"); }
static int up_tmp_sync(void **s) { return up_dir(s, true, "/tmp"); }
static int up_tmpfs_uring(void **s) { return up_tmpfs(s, false); }
static int up_tmpfs_sync(void **s) { return up_tmpfs(s, true); }
static int up_ffs_uring(void **s) { return up_faultfs(s, false); }
static int up_ffs_sync(void **s) { return up_faultfs(s, true); }

/* ---- the contract's checks ---- */

/* Acknowledged writes: chunk i (CHUNK bytes at sector i * CHUNK_SECTORS)
 * written with seed i, kept in guest RAM at DATA_GPA + i * CHUNK. */
#define MAX_CHUNKS (DISK_BYTES / CHUNK)
static bool acked[MAX_CHUNKS];

static uint8_t write_chunk(unsigned i)
{
	fill(DATA_GPA + (uint64_t)i * CHUNK, CHUNK, i + 1);
	uint8_t s = rw(T_OUT, (uint64_t)i * CHUNK_SECTORS, DATA_GPA + (uint64_t)i * CHUNK, CHUNK);
	assert_true(s == S_OK || s == S_IOERR);
	acked[i] = s == S_OK;
	return s;
}

/* Every acknowledged chunk is in the image (the test's own fd) and, where
 * `through_device`, reads back through the device too. */
static void check_acked(bool through_device)
{
	static uint8_t f[CHUNK];
	for (unsigned i = 0; i < MAX_CHUNKS; i++) {
		if (!acked[i])
			continue;
		file_read((uint64_t)i * CHUNK, f, CHUNK);
		assert_memory_equal(f, gp(DATA_GPA + (uint64_t)i * CHUNK, CHUNK), CHUNK);
		if (through_device) {
			assert_int_equal(rw(T_IN, (uint64_t)i * CHUNK_SECTORS, RBUF_GPA, CHUNK), S_OK);
			assert_memory_equal(gp(RBUF_GPA, CHUNK), f, CHUNK);
		}
	}
}

static void need_root(void)
{
	if (!is_root) {
		print_message("needs root (mounts in a private mount namespace)\n");
		skip();
	}
}

/* ---- row 1: the host file system is full ---- */

static void test_enospc(void **state)
{
	(void)state;
	need_root();
	memset(acked, 0, sizeof(acked));
	/* fill the holes of the 4 MiB image on the 1 MiB tmpfs in 64 KiB writes */
	unsigned i = 0, failed = MAX_CHUNKS;
	for (; i < MAX_CHUNKS; i++) {
		if (write_chunk(i) == S_IOERR) {
			failed = i;
			break;
		}
	}
	assert_true(failed > 0 && failed < MAX_CHUNKS); /* ran out of space midway */
	/* the write that partly fitted is not reported done; the device serves on */
	assert_int_equal(needs_reset, 0);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	check_acked(true);
	/* a later write that needs no new blocks (an acknowledged chunk again) works */
	assert_int_equal(write_chunk(0), S_OK);
	/* so does the failed one once space is freed: discard chunk 1 */
	put_seg(0, CHUNK_SECTORS, CHUNK_SECTORS, 0);
	struct buf seg = { SEG_GPA, 16, false };
	assert_int_equal(req(T_DISCARD, 0, &seg, 1), S_OK);
	acked[1] = false;
	assert_int_equal(write_chunk(failed), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	check_acked(true);
	assert_true(file_is_zero(1ull * CHUNK, CHUNK));
}

/* ---- row 2: the image truncated under the running device ---- */

static void test_truncated(void **state)
{
	(void)state;
	memset(acked, 0, sizeof(acked));
	for (unsigned i = 0; i < MAX_CHUNKS; i++)
		assert_int_equal(write_chunk(i), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	/* someone cuts the image to 1 MiB + 512: the data past it is gone */
	uint64_t cut = (1u << 20) + 512;
	assert_int_equal(ftruncate(disk, (off_t)cut), 0);
	for (unsigned i = (unsigned)(cut / CHUNK); i < MAX_CHUNKS; i++)
		acked[i] = false;
	/* reads wholly before the end are fine; reads that reach past it fail
	 * whole (IOERR, not zeros: hvmm cannot tell sectors that were never
	 * written from sectors the truncation destroyed) */
	check_acked(true);
	assert_int_equal(rw(T_IN, cut / 512 - 1, RBUF_GPA, 512), S_OK);
	memset(gp(RBUF_GPA, 4096), 0x5a, 4096);
	assert_int_equal(rw(T_IN, cut / 512 - 1, RBUF_GPA, 1024), S_IOERR);
	assert_int_equal(rw(T_IN, cut / 512, RBUF_GPA, 512), S_IOERR);
	assert_int_equal(rw(T_IN, DISK_SECTORS - 8, RBUF_GPA, 4096), S_IOERR);
	/* writes there work (the file grows back, sparse) and read back */
	assert_int_equal(write_chunk(MAX_CHUNKS - 1), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	struct stat st;
	assert_int_equal(fstat(disk, &st), 0);
	assert_int_equal(st.st_size, DISK_BYTES);
	check_acked(true);
	/* and the hole between reads as zeros, as the file now has them */
	memset(gp(RBUF_GPA, 4096), 0x5a, 4096);
	assert_int_equal(rw(T_IN, cut / 512, RBUF_GPA, 4096), S_OK);
	assert_true(file_is_zero(cut, 4096));
	static const uint8_t zero[4096];
	assert_memory_equal(gp(RBUF_GPA, 4096), zero, sizeof(zero));
	assert_int_equal(needs_reset, 0);
}

/* ---- row 3: the image unlinked under the running device ---- */

static void test_unlinked(void **state)
{
	(void)state;
	memset(acked, 0, sizeof(acked));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(write_chunk(i), S_OK);
	assert_int_equal(unlink(path), 0);
	path[0] = 0;
	/* the open file lives on: reads, writes, flushes, discards all work */
	check_acked(true);
	for (unsigned i = 8; i < 16; i++)
		assert_int_equal(write_chunk(i), S_OK);
	assert_int_equal(write_chunk(2), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	put_seg(0, 5 * CHUNK_SECTORS, CHUNK_SECTORS, 0);
	struct buf seg = { SEG_GPA, 16, false };
	assert_int_equal(req(T_DISCARD, 0, &seg, 1), S_OK);
	acked[5] = false;
	check_acked(true);
	assert_true(file_is_zero(5ull * CHUNK, CHUNK));
	struct stat st;
	assert_int_equal(fstat(disk, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(needs_reset, 0);
}

/* ---- row 4: EIO on reads and writes ---- */

static void test_eio(void **state)
{
	(void)state;
	need_root();
	memset(acked, 0, sizeof(acked));
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(write_chunk(i), S_OK);
	/* chunks 4..5 go bad, from 4 KiB into chunk 4 */
	ctl->lo = 4ull * CHUNK + 4096;
	ctl->hi = 6ull * CHUNK;
	/* a read touching it fails; one beside it works */
	assert_int_equal(rw(T_IN, 4 * CHUNK_SECTORS, RBUF_GPA, CHUNK), S_IOERR);
	assert_int_equal(rw(T_IN, 5 * CHUNK_SECTORS, RBUF_GPA, 4096), S_IOERR);
	assert_int_equal(rw(T_IN, 4 * CHUNK_SECTORS, RBUF_GPA, 4096), S_OK);
	assert_int_equal(rw(T_IN, 6 * CHUNK_SECTORS, RBUF_GPA, CHUNK), S_OK);
	/* a write into it fails: wholly inside, and one whose first 4 KiB
	 * land (a short write) before the rest fails; neither is acknowledged */
	assert_int_equal(write_chunk(5), S_IOERR);
	assert_int_equal(write_chunk(4), S_IOERR);
	static uint8_t f[4096];
	file_read(4ull * CHUNK, f, sizeof(f)); /* the short write's part did land */
	assert_memory_equal(f, gp(DATA_GPA + 4ull * CHUNK, sizeof(f)), sizeof(f));
	/* the device serves on: writes and reads elsewhere, flushes */
	assert_int_equal(write_chunk(20), S_OK);
	assert_int_equal(write_chunk(3), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	check_acked(true);
	/* the range heals (a remapped sector): it works again */
	ctl->lo = ctl->hi = 0;
	assert_int_equal(write_chunk(4), S_OK);
	assert_int_equal(write_chunk(5), S_OK);
	check_acked(true);
	assert_int_equal(needs_reset, 0);
}

/* ---- row 5: a flush whose fsync fails ---- */

static void test_flush_eio(void **state)
{
	(void)state;
	need_root();
	memset(acked, 0, sizeof(acked));
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(write_chunk(i), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_OK);
	int seen = ctl->fsyncs;
	assert_true(seen >= 1); /* the flush did reach the file system */
	/* one fsync fails: the flush is IOERR, not OK */
	ctl->fsync_fail = 1;
	assert_int_equal(write_chunk(4), S_OK);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_IOERR);
	assert_int_equal(ctl->fsync_fail, 0);
	/* the next fsync would succeed, but the kernel may have dropped the
	 * dirty pages the failed one could not write: no later flush can
	 * promise that writes before it are stable, so they all fail */
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_IOERR);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_IOERR);
	/* reads and writes go on */
	assert_int_equal(write_chunk(5), S_OK);
	check_acked(true);
	assert_int_equal(needs_reset, 0);
	/* a new driver (reset) does not make the page cache trustworthy again */
	dev.ops->reset(&dev);
	driver_start(F_FLUSH | (1ull << VIRTIO_F_VERSION_1), false);
	assert_int_equal(req(T_FLUSH, 0, NULL, 0), S_IOERR);
	assert_int_equal(rw(T_IN, 0, RBUF_GPA, 4096), S_OK);
}

/* named test/back-end, so that the two runs of a row tell apart */
#define T(fn, up, how) { #fn "/" how, fn, up, down_mnt, NULL }

int main(void)
{
	is_root = geteuid() == 0;
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		perror("test_blk_faults: mmap");
		return 1;
	}
	if (is_root) {
		/* our own mount namespace, its mounts unseen by (and never left
		 * behind on) the host */
		if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
			perror("test_blk_faults: private mount namespace");
			return 1;
		}
	}
	disk = -1;
	const struct CMUnitTest tests[] = {
		T(test_enospc, up_tmpfs_uring, "io_uring"),  T(test_enospc, up_tmpfs_sync, "sync"),
		T(test_truncated, up_tmp_uring, "io_uring"), T(test_truncated, up_tmp_sync, "sync"),
		T(test_unlinked, up_tmp_uring, "io_uring"),  T(test_unlinked, up_tmp_sync, "sync"),
		T(test_eio, up_ffs_uring, "io_uring"),       T(test_eio, up_ffs_sync, "sync"),
		T(test_flush_eio, up_ffs_uring, "io_uring"), T(test_flush_eio, up_ffs_sync, "sync"),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
