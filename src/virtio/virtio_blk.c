/*
 * virtio-blk (virtio 1.2 §5.2) on a raw image file or block device.
 *
 * One request queue of 256 entries. A request is a header {le32 type, le32
 * reserved, le64 sector} in the device-readable buffers, data, and a status
 * byte as the very last device-writable byte. The layout across descriptors
 * is free (VERSION_1 implies ANY_LAYOUT), so the header and status are found
 * by byte offset, never by descriptor.
 *
 * I/O is asynchronous through io_uring: readv/writev go straight onto the
 * guest's iovecs (vq_pop() has already checked that they lie inside guest
 * RAM), so there is no bounce buffer; flush is fdatasync, discard and
 * write-zeroes are fallocate (followed by an fdatasync when the driver did
 * not negotiate FLUSH: the disk is write-through then). One io_uring_submit
 * per notify or completion batch, one interrupt per batch. The ring's completion eventfd is watched
 * by the event loop, so completions are handled on the thread that runs the
 * queue, driver_ok and a guest's reset (virtio.h): no lock. Reset cancels
 * and waits for every operation in flight before it returns.
 *
 * Where io_uring cannot be set up (seccomp, old kernel, HVMM_DISK_SYNC=1 in
 * the environment) the same request machine runs on synchronous
 * preadv/pwritev2/fdatasync/fallocate on the event loop.
 *
 * Everything in a request comes from the guest: the header length, the status
 * byte's place, the sector range (overflow-safe against the capacity), data
 * lengths (whole sectors), segment counts, flags. A chain too malformed to
 * carry a status (no header, no status byte) sets DEVICE_NEEDS_RESET, as a
 * broken ring does; everything else fails the one request with IOERR/UNSUPP.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../evloop.h"
#include "../ratelimit.h"
#include "../snapshot.h"
#include "../util.h"
#include "../device.h"
#include "../vm_config.h"
#include "image_lock.h"
#include "uring_restrict.h"
#include "virtio.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WZ_UNMAP 1u

#define BLK_SECTOR 512u
#define BLK_QUEUE_SIZE 256
#define BLK_HDR_LEN 16u
#define BLK_ID_LEN 20u
#define BLK_MAX_DSEG 8u              /* discard segments per request */
#define BLK_MAX_SEG_SECTORS 0x3fffffu /* per discard / write-zeroes segment: 2 GiB - 512 */
#define BLK_ZERO_CHUNK (64u << 10)  /* write-zeroes fallback: zeros per iovec... */
#define BLK_ZERO_IOVS 16u           /* ...and iovecs per write (1 MiB) */
#define BLK_CQ_SIZE 2048u           /* >= every SQE that can be in flight */
#define BLK_INLINE_READ_MAX (1u << 30) /* larger reads: io_uring workers (none: see blk_issue_one) */

/* Device configuration, little-endian like the host (§5.2.4). */
struct __attribute__((packed)) blk_config {
	uint64_t capacity;       /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
};
_Static_assert(offsetof(struct blk_config, blk_size) == 20, "virtio-blk config layout");
_Static_assert(offsetof(struct blk_config, max_discard_sectors) == 36, "virtio-blk config layout");
_Static_assert(offsetof(struct blk_config, write_zeroes_may_unmap) == 56, "virtio-blk config layout");
_Static_assert(sizeof(struct blk_config) == 60, "virtio-blk config layout");

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_dseg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* What a request is doing; the write-zeroes ones fall back in this order. */
enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_WZ_PUNCH, /* PUNCH_HOLE: reads see zeros, space freed (UNMAP) */
	BLK_OP_WZ_RANGE, /* ZERO_RANGE */
	BLK_OP_WZ_WRITE, /* write zeros */
	BLK_OP_SYNC,     /* fdatasync after a fallocate in write-through mode */
};

struct blk;

struct blk_req {
	struct blk_req *next_free;
	uint8_t *status;        /* the status byte, in guest RAM */
	enum blk_op op;
	uint8_t result;         /* VIRTIO_BLK_S_* */
	unsigned pending;       /* operations submitted and not completed */
	/* read/write/zero-write: the data window, advanced over short transfers */
	struct iovec *iov;
	unsigned niov;
	uint64_t off, left;
	unsigned nseg;
	struct blk_dseg seg[BLK_MAX_DSEG];
	struct iovec ziov[BLK_ZERO_IOVS];
	struct vq_elem elem;    /* last: large, mostly untouched */
};

/* Synchronous mode's stand-in for the completion queue. */
struct blk_sync_cqe {
	struct blk_req *req;
	int res;
};

struct blk {
	struct virtio_dev *dev;
	struct evloop *loop;
	const struct dev_registry *reg; /* whose disks a migration hands over */
	bool stats;                /* --stats: print the counters at the end */
	bool incoming;             /* --incoming: the source holds the lock */
	const char *path;          /* for --stats */
	int fd;
	bool readonly;
	uint64_t capacity;         /* sectors */
	struct blk_config config;
	char id[BLK_ID_LEN];
	/* negotiated */
	bool flush_ok, discard_ok, wz_ok;
	struct virtqueue *vq;      /* NULL until DRIVER_OK and after reset */
	bool broken;               /* DEVICE_NEEDS_RESET set: pop nothing more */
	bool draining;             /* reset: completions free, never touch the guest */
	bool starved;              /* ran out of requests with chains still waiting */
	bool pushed;               /* used entries since the last interrupt */
	bool no_punch, no_zero_range; /* fallocate modes the file refused */
	int sync_err;              /* the first failed fdatasync's -errno: flushes fail from then on */
	/* requests */
	struct blk_req *reqs;
	struct blk_req *free;
	unsigned nfree;
	/* io_uring, or the synchronous fallback */
	bool uring_ok;
	int uring_err;             /* why not (-errno), for --stats */
	struct io_uring ring;
	int efd;
	unsigned inflight;         /* SQEs not yet completed */
	unsigned queued;           /* SQEs prepared, not yet submitted */
	struct blk_sync_cqe sync_cq[BLK_MAX_DSEG + 1];
	unsigned sync_n;
	/* statistics */
	uint64_t nreq, nread, nwrite, nflush, ndiscard, nwz, rbytes, wbytes, nerr, nunsupp, resubmits;
	uint64_t nsync; /* our own fdatasyncs, after fallocates in write-through mode */
	unsigned max_inflight_reqs;
	/* --disk ...,bw=,iops=: requests wait in the ring while the buckets are
	 * empty, and a timer on the event loop resumes them */
	bool limited;
	struct ratelimit rl;
	int rl_timer;
};

static uint8_t blk_zeros[BLK_ZERO_CHUNK]; /* bss: backed by the zero page until touched, never touched */

/* ---- requests ---- */

static struct blk_req *blk_req_get(struct blk *b)
{
	struct blk_req *r = b->free;
	if (r) {
		b->free = r->next_free;
		b->nfree--;
	}
	return r;
}

static void blk_req_put(struct blk *b, struct blk_req *r)
{
	r->next_free = b->free;
	b->free = r;
	b->nfree++;
}

/* The request is over: status byte, used entry, request back to the pool. */
static void blk_req_done(struct blk *b, struct blk_req *r)
{
	if (!b->draining && b->vq) {
		*r->status = r->result;
		/* The device wrote the status and (reads, get-id) the data before
		 * it: report the whole device-writable length, as the driver
		 * cannot use a partial count of a block request anyway. */
		uint64_t len = r->elem.in_len > UINT32_MAX ? UINT32_MAX : r->elem.in_len;
		vq_push_elem(b->vq, &r->elem, (uint32_t)len);
		b->pushed = true;
	}
	if (r->result == VIRTIO_BLK_S_IOERR)
		b->nerr++;
	else if (r->result == VIRTIO_BLK_S_UNSUPP)
		b->nunsupp++;
	blk_req_put(b, r);
}

static void blk_iov_advance(struct iovec **iov, unsigned *n, uint64_t bytes)
{
	while (bytes && *n) {
		if (bytes >= (*iov)->iov_len) {
			bytes -= (*iov)->iov_len;
			(*iov)++;
			(*n)--;
		} else {
			(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + bytes;
			(*iov)->iov_len -= bytes;
			bytes = 0;
		}
	}
	/* leading empty iovecs would make a 0-byte transfer look like EOF */
	while (*n && (*iov)->iov_len == 0) {
		(*iov)++;
		(*n)--;
	}
}

/* [sector, sector + bytes / 512) inside the disk, without overflow. */
static bool blk_range_ok(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->capacity && bytes / BLK_SECTOR <= b->capacity - sector;
}

/* ---- issuing operations: io_uring SQEs, or synchronous calls ---- */

static void blk_sync_complete(struct blk *b, struct blk_req *r, int res)
{
	/* One slot per operation a request can have outstanding at once, and
	 * the queue is drained after each request: it cannot fill up. */
	if (b->sync_n == ARRAY_SIZE(b->sync_cq)) {
		r->pending--;
		r->result = VIRTIO_BLK_S_IOERR;
		return;
	}
	b->sync_cq[b->sync_n++] = (struct blk_sync_cqe){ r, res };
}

/* Hand the prepared SQEs to the kernel. With IORING_SETUP_SUBMIT_ALL a bad
 * SQE fails alone (its CQE says why); a transient -EAGAIN/-EBUSY (kernel
 * memory, completions not reaped yet) leaves them queued for the next call,
 * which the next completion or notify makes. */
static void blk_submit(struct blk *b)
{
	if (!b->queued)
		return;
	int n = io_uring_submit(&b->ring);
	if (n > 0)
		b->queued -= (unsigned)n < b->queued ? (unsigned)n : b->queued;
}

static struct io_uring_sqe *blk_sqe(struct blk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		blk_submit(b);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

static unsigned blk_zero_iov(struct blk_req *r)
{
	uint64_t left = r->left;
	unsigned n = 0;
	while (left && n < BLK_ZERO_IOVS) {
		uint64_t len = left < BLK_ZERO_CHUNK ? left : BLK_ZERO_CHUNK;
		r->ziov[n++] = (struct iovec){ blk_zeros, len };
		left -= len;
	}
	r->iov = r->ziov;
	r->niov = n;
	return n;
}

static int blk_fallocate_mode(enum blk_op op)
{
	switch (op) {
	case BLK_OP_DISCARD:
	case BLK_OP_WZ_PUNCH:
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	default:
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	}
}

/* One operation of r: (part of) its transfer, or fallocate segment i. */
static void blk_issue_one(struct blk *b, struct blk_req *r, unsigned i)
{
	int rwf = (r->op == BLK_OP_WRITE || r->op == BLK_OP_WZ_WRITE) && !b->flush_ok ? RWF_DSYNC : 0;
	uint64_t off = r->off, len = r->left;
	if (r->op == BLK_OP_DISCARD) {
		off = r->seg[i].sector * BLK_SECTOR;
		len = (uint64_t)r->seg[i].num_sectors * BLK_SECTOR;
	}
	if (r->op == BLK_OP_WZ_WRITE)
		blk_zero_iov(r);
	r->pending++;

	if (!b->uring_ok) {
		ssize_t n;
		switch (r->op) {
		case BLK_OP_READ:
			n = preadv(b->fd, r->iov, (int)r->niov, (off_t)off);
			break;
		case BLK_OP_WRITE:
		case BLK_OP_WZ_WRITE:
			n = pwritev2(b->fd, r->iov, (int)r->niov, (off_t)off, rwf);
			break;
		case BLK_OP_FLUSH:
		case BLK_OP_SYNC:
			n = fdatasync(b->fd);
			break;
		default:
			n = fallocate(b->fd, blk_fallocate_mode(r->op), (off_t)off, (off_t)len);
			break;
		}
		blk_sync_complete(b, r, n < 0 ? -errno : (int)n);
		return;
	}

	struct io_uring_sqe *sqe = blk_sqe(b);
	if (!sqe) { /* cannot happen with SQ >= requests; fail the request cleanly */
		r->pending--;
		r->result = VIRTIO_BLK_S_IOERR;
		return;
	}
	switch (r->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, b->fd, r->iov, r->niov, off);
		/* A page-cache hit is copied inside io_uring_submit, on this
		 * thread; a miss is punted to io_uring's workers by io_uring
		 * itself. With guest RAM on huge pages (memory.c) the inline
		 * copy is the fastest path for every size on a quiet host:
		 * 1 MiB reads at depth 16 went from 22-23 GB/s through the
		 * workers to 27-31 GB/s inline (QEMU io_uring: 30). Under heavy
		 * host load the workers did better (13 -> 25 GiB/s measured
		 * then, before huge pages): BLK_INLINE_READ_MAX is the switch. */
		if (len > BLK_INLINE_READ_MAX)
			sqe->flags |= IOSQE_ASYNC;
		break;
	case BLK_OP_WRITE:
	case BLK_OP_WZ_WRITE:
		io_uring_prep_writev(sqe, b->fd, r->iov, r->niov, off);
		sqe->rw_flags = rwf;
		/* Buffered writes on ext4 and tmpfs cannot be tried without
		 * blocking (RWF_NOWAIT: EOPNOTSUPP), so io_uring would try, fail
		 * and punt to a worker anyway: going there at once measured
		 * +20-30% writes/s at queue depth 16 and up to 2x at depth 1. */
		sqe->flags |= IOSQE_ASYNC;
		break;
	case BLK_OP_FLUSH:
	case BLK_OP_SYNC:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	default:
		io_uring_prep_fallocate(sqe, b->fd, blk_fallocate_mode(r->op), off, len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	b->queued++;
	b->inflight++;
}

/* Start r's current operation (all discard segments at once). */
static void blk_issue(struct blk *b, struct blk_req *r)
{
	if (r->op == BLK_OP_DISCARD) {
		for (unsigned i = 0; i < r->nseg; i++)
			blk_issue_one(b, r, i);
	} else {
		blk_issue_one(b, r, 0);
	}
	if (r->pending == 0) /* nothing could be issued */
		blk_req_done(b, r);
}

/*
 * An fdatasync failed. Linux reports a writeback error once per open file
 * and marks the pages it could not write clean (or drops them), so the next
 * fdatasync may well succeed with the data of writes the guest was told were
 * done gone from the page cache and not on disk. No later flush can honestly
 * say "everything before me is stable" then: they all fail, for the life of
 * the device and across guest resets (the page cache does not recover with
 * the driver). QEMU's file-posix does the same. Reads and writes go on.
 */
static void blk_sync_failed(struct blk *b, int res)
{
	if (b->sync_err)
		return;
	b->sync_err = res;
	util_err("virtio-blk %s: fdatasync failed (%s): writes may be lost; every later flush fails",
		 b->path, strerror(-res));
}

/* An operation of r finished with res (bytes or -errno). */
static void blk_op_done(struct blk *b, struct blk_req *r, int res)
{
	r->pending--;
	if (b->draining) {
		if (r->pending == 0)
			blk_req_done(b, r);
		return;
	}
	switch (r->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
	case BLK_OP_WZ_WRITE:
		if (res == -EINTR || res == -EAGAIN) {
			b->resubmits++;
			blk_issue(b, r);
			return;
		}
		if (res <= 0) { /* error, or end of file inside the capacity (file shrank) */
			r->result = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (r->op == BLK_OP_READ)
			b->rbytes += (uint64_t)res;
		else if (r->op == BLK_OP_WRITE)
			b->wbytes += (uint64_t)res;
		r->off += (uint64_t)res;
		r->left -= (uint64_t)res < r->left ? (uint64_t)res : r->left;
		if (r->left) { /* short transfer: the rest, from where it stopped */
			if (r->op != BLK_OP_WZ_WRITE)
				blk_iov_advance(&r->iov, &r->niov, (uint64_t)res);
			b->resubmits++;
			blk_issue(b, r);
			return;
		}
		break;
	case BLK_OP_FLUSH:
	case BLK_OP_SYNC:
		if (res == -EINTR || res == -EAGAIN) { /* nothing was lost: again */
			b->resubmits++;
			blk_issue(b, r);
			return;
		}
		if (res < 0) {
			r->result = VIRTIO_BLK_S_IOERR;
			blk_sync_failed(b, res);
		}
		break;
	case BLK_OP_DISCARD:
		/* a discard is a hint: a file system without holes ignores it */
		if (res < 0 && res != -EOPNOTSUPP)
			r->result = VIRTIO_BLK_S_IOERR;
		break;
	case BLK_OP_WZ_PUNCH:
	case BLK_OP_WZ_RANGE:
		if (res == -EOPNOTSUPP || (res == -EINVAL && r->op == BLK_OP_WZ_RANGE)) {
			if (r->op == BLK_OP_WZ_PUNCH) {
				b->no_punch = true;
				r->op = b->no_zero_range ? BLK_OP_WZ_WRITE : BLK_OP_WZ_RANGE;
			} else {
				b->no_zero_range = true;
				r->op = BLK_OP_WZ_WRITE;
			}
			blk_issue(b, r);
			return;
		}
		if (res < 0)
			r->result = VIRTIO_BLK_S_IOERR;
		break;
	}
	if (r->pending != 0)
		return;
	/* Without FLUSH negotiated the disk is write-through: writes carry
	 * RWF_DSYNC, and a discard or write-zeroes done by fallocate is made
	 * as durable before the driver hears it is done. */
	if (!b->flush_ok && r->result == VIRTIO_BLK_S_OK &&
	    (r->op == BLK_OP_DISCARD || r->op == BLK_OP_WZ_PUNCH || r->op == BLK_OP_WZ_RANGE)) {
		r->op = BLK_OP_SYNC;
		b->nsync++;
		blk_issue(b, r);
		return;
	}
	blk_req_done(b, r);
}

static void blk_sync_drain(struct blk *b)
{
	/* blk_op_done() may issue the next step, which lands here again */
	while (b->sync_n) {
		struct blk_sync_cqe c = b->sync_cq[--b->sync_n];
		blk_op_done(b, c.req, c.res);
	}
}

/* ---- parsing ---- */

/* Read the segments of a discard / write-zeroes request into r. */
static uint8_t blk_parse_segs(struct blk *b, struct blk_req *r, const struct blk_hdr *h,
			      uint64_t data_len, unsigned max_seg)
{
	bool discard = h->type == VIRTIO_BLK_T_DISCARD;
	if (!(discard ? b->discard_ok : b->wz_ok))
		return VIRTIO_BLK_S_UNSUPP;
	if (r->elem.in_len != 1 || data_len == 0 || data_len % sizeof(struct blk_dseg))
		return VIRTIO_BLK_S_IOERR;
	if (data_len / sizeof(struct blk_dseg) > max_seg)
		return VIRTIO_BLK_S_IOERR;
	r->nseg = (unsigned)(data_len / sizeof(struct blk_dseg));
	vq_iov_to_buf(r->elem.out, r->elem.n_out, BLK_HDR_LEN, r->seg, data_len);
	for (unsigned i = 0; i < r->nseg; i++) {
		const struct blk_dseg *s = &r->seg[i];
		uint32_t known = discard ? 0 : VIRTIO_BLK_WZ_UNMAP;
		if (s->flags & ~known)
			return VIRTIO_BLK_S_UNSUPP;
		if (s->num_sectors > BLK_MAX_SEG_SECTORS ||
		    !blk_range_ok(b, s->sector, (uint64_t)s->num_sectors * BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
	}
	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (discard) {
		r->op = BLK_OP_DISCARD;
		return VIRTIO_BLK_S_OK;
	}
	r->off = r->seg[0].sector * BLK_SECTOR;
	r->left = (uint64_t)r->seg[0].num_sectors * BLK_SECTOR;
	if ((r->seg[0].flags & VIRTIO_BLK_WZ_UNMAP) && !b->no_punch)
		r->op = BLK_OP_WZ_PUNCH;
	else
		r->op = b->no_zero_range ? BLK_OP_WZ_WRITE : BLK_OP_WZ_RANGE;
	return VIRTIO_BLK_S_OK;
}

/*
 * Check a popped chain and set r up for I/O. Returns -1 when the chain cannot
 * even carry a status (the driver is broken), 0 when r is complete already
 * (r->result says how), 1 when r->op must be issued.
 */
static int blk_parse(struct blk *b, struct blk_req *r)
{
	struct vq_elem *e = &r->elem;
	struct blk_hdr h;
	r->result = VIRTIO_BLK_S_OK;
	r->pending = 0;
	r->nseg = 0;
	r->status = NULL;
	if (e->out_len < BLK_HDR_LEN || e->in_len < 1)
		return -1;
	vq_iov_to_buf(e->out, e->n_out, 0, &h, sizeof(h));

	/* The status byte: the last byte of the last non-empty in[] buffer. */
	unsigned last = e->n_in;
	while (last > 0 && e->in[last - 1].iov_len == 0)
		last--;
	struct iovec *st = &e->in[last - 1]; /* exists: in_len >= 1 */
	r->status = (uint8_t *)st->iov_base + st->iov_len - 1;

	uint64_t out_data = e->out_len - BLK_HDR_LEN; /* after the header */
	uint64_t in_data = e->in_len - 1;             /* before the status */
	b->nreq++;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		b->nread++;
		if (out_data || in_data % BLK_SECTOR || !blk_range_ok(b, h.sector, in_data))
			break;
		/* data: in[] without the status byte */
		st->iov_len--;
		r->iov = e->in;
		r->niov = last;
		if (st->iov_len == 0)
			r->niov--;
		r->op = BLK_OP_READ;
		r->off = h.sector * BLK_SECTOR;
		r->left = in_data;
		return in_data ? 1 : 0;
	case VIRTIO_BLK_T_OUT:
		b->nwrite++;
		if (in_data || out_data % BLK_SECTOR || !blk_range_ok(b, h.sector, out_data) ||
		    b->readonly)
			break;
		r->iov = e->out;
		r->niov = e->n_out;
		blk_iov_advance(&r->iov, &r->niov, BLK_HDR_LEN);
		r->op = BLK_OP_WRITE;
		r->off = h.sector * BLK_SECTOR;
		r->left = out_data;
		return out_data ? 1 : 0;
	case VIRTIO_BLK_T_FLUSH:
		b->nflush++;
		if (!b->flush_ok) {
			r->result = VIRTIO_BLK_S_UNSUPP;
			return 0;
		}
		if (out_data || in_data)
			break;
		if (b->sync_err) { /* blk_sync_failed(): no flush can succeed again */
			r->result = VIRTIO_BLK_S_IOERR;
			return 0;
		}
		r->op = BLK_OP_FLUSH;
		return 1;
	case VIRTIO_BLK_T_GET_ID:
		if (out_data)
			break;
		/* NUL-padded when the buffer is longer, cut when shorter (§5.2.6) */
		st->iov_len--; /* the status byte is not data */
		vq_buf_to_iov(e->in, last, 0, b->id, in_data < BLK_ID_LEN ? in_data : BLK_ID_LEN);
		st->iov_len++;
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool discard = h.type == VIRTIO_BLK_T_DISCARD;
		if (discard)
			b->ndiscard++;
		else
			b->nwz++;
		r->result = blk_parse_segs(b, r, &h, out_data,
					   discard ? BLK_MAX_DSEG : b->config.max_write_zeroes_seg);
		return r->result == VIRTIO_BLK_S_OK ? 1 : 0;
	}
	default:
		r->result = VIRTIO_BLK_S_UNSUPP;
		return 0;
	}
	r->result = VIRTIO_BLK_S_IOERR;
	return 0;
}

/* ---- the queue ---- */

/* Pop every chain we have a request for, start them, submit once. */
/* Come back in wait_ns (at least 1 ns: a zero timer is a disarmed one). */
static void blk_rl_arm(struct blk *b, uint64_t wait_ns)
{
	struct itimerspec its = { .it_value = { (time_t)(wait_ns / 1000000000u),
						(long)(wait_ns % 1000000000u) } };
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	timerfd_settime(b->rl_timer, 0, &its, NULL);
}

static void blk_process(struct blk *b)
{
	struct virtqueue *vq = b->vq;
	if (!vq || b->broken || b->draining)
		return;
	b->starved = false;
	for (;;) {
		vq_enable_notify(vq, false);
		for (;;) {
			/* Over its limit the device stops taking requests: they stay in
			 * the ring (the guest sees a slow disk), notifies stay off, and
			 * the timer brings us back when the buckets allow one more. */
			uint64_t wait;
			if (b->limited && vq_has_work(vq) && !rl_ready(&b->rl, util_now_ns(), &wait)) {
				blk_rl_arm(b, wait);
				return;
			}
			struct blk_req *r = blk_req_get(b);
			if (!r) {
				/* all requests busy: completions will come back here */
				b->starved = true;
				break;
			}
			/* a malformed ring: the transport sets DEVICE_NEEDS_RESET */
			int n = virtio_queue_pop(b->dev, 0, &r->elem);
			if (n <= 0) {
				blk_req_put(b, r);
				b->broken = n < 0;
				break;
			}
			if (BLK_QUEUE_SIZE - b->nfree > b->max_inflight_reqs)
				b->max_inflight_reqs = BLK_QUEUE_SIZE - b->nfree;
			int p = blk_parse(b, r);
			if (p < 0) {
				blk_req_put(b, r);
				b->broken = true;
				virtio_dev_needs_reset(b->dev, "virtio-blk: request without header or status byte");
				break;
			}
			if (b->limited)
				rl_take(&b->rl, r->op == BLK_OP_READ || r->op == BLK_OP_WRITE ? r->left : 0);
			if (p == 0)
				blk_req_done(b, r);
			else
				blk_issue(b, r);
			blk_sync_drain(b);
		}
		if (b->starved || b->broken)
			break;
		vq_enable_notify(vq, true);
		if (!vq_has_work(vq)) /* a chain added before notifies were back on */
			break;
	}
}

/* One interrupt for every used entry pushed since the last one. */
static void blk_interrupt(struct blk *b)
{
	if (b->pushed && b->vq)
		virtio_queue_interrupt(b->dev, 0);
	b->pushed = false;
}

/* Handle every CQE there is; returns how many. */
static unsigned blk_reap(struct blk *b)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&b->ring, head, cqe) {
		struct blk_req *r = io_uring_cqe_get_data(cqe);
		n++;
		if (!r) /* the cancel request of a reset */
			continue;
		b->inflight--;
		blk_op_done(b, r, cqe->res);
	}
	io_uring_cq_advance(&b->ring, n);
	return n;
}

/* Work the queue until nothing moves: pop, submit, and handle the
 * completions that arrived meanwhile (page-cache hits complete inside the
 * submit). The eventfd fires for every completion, these included (one
 * spurious wake-up): an "async only" eventfd (register_eventfd_async) fires
 * only for completions posted by io_uring's workers, not for reads that
 * waited for a page and completed through task work, which then hung. */
static void blk_run(struct blk *b)
{
	blk_process(b);
	while (b->uring_ok && !b->draining) {
		blk_submit(b);
		if (!blk_reap(b))
			break;
		if (b->starved)
			blk_process(b); /* requests are free again: the chains that waited */
	}
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct blk *b = virtio_dev_opaque(d);
	if (q != 0)
		return;
	if (!b->vq)
		b->vq = virtio_queue(d, 0);
	blk_run(b);
	blk_interrupt(b);
}

/* Event loop: the ring posted completions. */
static void blk_uring_event(void *opaque, uint32_t events)
{
	struct blk *b = opaque;
	uint64_t v;
	(void)events;
	if (read(b->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	blk_reap(b);
	blk_run(b);
	blk_interrupt(b);
}

/* Event loop: the rate limit lets the next request go. */
static void blk_rl_event(void *opaque, uint32_t events)
{
	struct blk *b = opaque;
	uint64_t v;
	(void)events;
	if (read(b->rl_timer, &v, sizeof(v)) < 0)
		return; /* disarmed by a reset in between */
	blk_run(b);
	blk_interrupt(b);
}

/* Wait for every in-flight operation; their requests are freed untouched. */
static void blk_drain(struct blk *b)
{
	b->draining = true;
	if (b->uring_ok && b->inflight) {
		/* Cancel what has not started; what has cannot be stopped and is
		 * waited for (a regular file's I/O finishes in bounded time). */
		struct io_uring_sqe *sqe = blk_sqe(b);
		if (sqe) {
			io_uring_prep_cancel_fd(sqe, b->fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data(sqe, NULL);
			b->queued++;
		}
		while (b->inflight) {
			int r = io_uring_submit_and_wait(&b->ring, 1);
			if (r > 0)
				b->queued -= (unsigned)r < b->queued ? (unsigned)r : b->queued;
			else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
				break; /* the ring itself failed: nothing more will complete */
			blk_reap(b);
		}
	}
	b->sync_n = 0; /* synchronous operations are never in flight here */
	b->draining = false;
}

static void blk_reset(struct virtio_dev *d)
{
	struct blk *b = virtio_dev_opaque(d);
	blk_drain(b);
	b->vq = NULL;
	b->broken = false;
	b->starved = false;
	b->pushed = false;
	if (b->limited) {
		struct itimerspec off = { 0 };
		timerfd_settime(b->rl_timer, 0, &off, NULL);
	}
}

static void blk_driver_ok(struct virtio_dev *d)
{
	struct blk *b = virtio_dev_opaque(d);
	uint64_t f = virtio_dev_features(d);
	b->flush_ok = f & (1ull << VIRTIO_BLK_F_FLUSH);
	b->discard_ok = f & (1ull << VIRTIO_BLK_F_DISCARD);
	b->wz_ok = f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	b->vq = virtio_queue(d, 0);
	if (b->limited)
		rl_start(&b->rl, util_now_ns());
}

static void blk_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
	struct blk *b = virtio_dev_opaque(d);
	memset(buf, 0, len);
	if (off < sizeof(b->config))
		memcpy(buf, (const uint8_t *)&b->config + off,
		       len < sizeof(b->config) - off ? len : sizeof(b->config) - off);
}

/* Every disk, for a migration's hand-over of the image locks. */
static struct blk *blk_all[64];
static pthread_mutex_t blk_all_lock = PTHREAD_MUTEX_INITIALIZER;

static void blk_list(struct blk *b, bool add)
{
	pthread_mutex_lock(&blk_all_lock);
	for (size_t i = 0; i < ARRAY_SIZE(blk_all); i++) {
		if (add ? !blk_all[i] : blk_all[i] == b) {
			blk_all[i] = add ? b : NULL;
			break;
		}
	}
	pthread_mutex_unlock(&blk_all_lock);
}

int virtio_blk_handover(const struct dev_registry *r, bool take, char *err, size_t n)
{
	int e = 0;
	pthread_mutex_lock(&blk_all_lock);
	for (size_t i = 0; e == 0 && i < ARRAY_SIZE(blk_all); i++) {
		struct blk *b = blk_all[i];
		if (!b || b->reg != r)
			continue;
		if (take) {
			e = image_lock(b->fd, b->readonly);
			if (e < 0)
				snprintf(err, n, "--disk %s: %s", b->path,
					 e == -EBUSY ? "locked: in use by another VM" : strerror(-e));
			continue;
		}
		/* The source's last writes must be on the disk before the
		 * destination reads it: the guest may have been told they
		 * were done (write-back cache) without a flush. */
		if (!b->readonly && fdatasync(b->fd) < 0) {
			e = -errno;
			snprintf(err, n, "--disk %s: fdatasync: %s", b->path, strerror(errno));
		} else if ((e = image_unlock(b->fd)) < 0) {
			snprintf(err, n, "--disk %s: unlocking: %s", b->path, strerror(-e));
		}
	}
	pthread_mutex_unlock(&blk_all_lock);
	return e < 0 ? -1 : 0;
}

static void blk_free(struct blk *b)
{
	blk_list(b, false);
	if (b->uring_ok) {
		evloop_del(b->loop, b->efd);
		io_uring_queue_exit(&b->ring);
	}
	if (b->efd >= 0)
		close(b->efd);
	if (b->rl_timer >= 0) {
		evloop_del(b->loop, b->rl_timer);
		close(b->rl_timer);
	}
	if (b->fd >= 0)
		close(b->fd);
	free(b->reqs);
	free(b);
}

/* --stats: which I/O path served the disk, and what it did. */
static void blk_print_stats(const struct blk *b)
{
	char how[96];
	if (b->uring_ok)
		snprintf(how, sizeof(how), "io_uring, queue depth %d", BLK_QUEUE_SIZE);
	else
		snprintf(how, sizeof(how), "synchronous I/O (io_uring: %s)", strerror(-b->uring_err));
	fprintf(stderr,
		"virtio-blk %s: %s; %llu requests: %llu read (%.1f MiB), %llu write (%.1f MiB), "
		"%llu flush, %llu discard, %llu write-zeroes; %llu I/O errors, %llu unsupported, "
		"%llu short transfers resubmitted, up to %u in flight, %llu write-through syncs\n",
		b->path, how, (unsigned long long)b->nreq, (unsigned long long)b->nread,
		(double)b->rbytes / MIB(1), (unsigned long long)b->nwrite, (double)b->wbytes / MIB(1),
		(unsigned long long)b->nflush, (unsigned long long)b->ndiscard,
		(unsigned long long)b->nwz, (unsigned long long)b->nerr,
		(unsigned long long)b->nunsupp, (unsigned long long)b->resubmits, b->max_inflight_reqs,
		(unsigned long long)b->nsync);
	if (b->limited)
		fprintf(stderr, "virtio-blk %s: rate limit %llu B/s, %llu ops/s: held back %llu times\n",
			b->path, (unsigned long long)b->rl.bytes.size, (unsigned long long)b->rl.ops.size,
			(unsigned long long)b->rl.throttled);
}

static void blk_destroy(struct virtio_dev *d)
{
	struct blk *b = virtio_dev_opaque(d);
	blk_drain(b);
	if (b->stats) /* --stats only: --stats-json is for programs */
		blk_print_stats(b);
	blk_free(b);
}

/* ---- creation ---- */

/* Everything blk_issue_one and blk_drain submit; the ring refuses the rest
 * (opening files, sockets, reading other fds), which seccomp cannot see. */
static const uint8_t blk_uring_ops[] = {
	IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
	IORING_OP_ASYNC_CANCEL,
};

static int blk_uring_init(struct blk *b)
{
	const char *sync = getenv("HVMM_DISK_SYNC");
	if (sync && *sync && strcmp(sync, "0") != 0)
		return -ENOTSUP;
	/* Created disabled, so that it can be locked down (uring_restrict)
	 * before its first submission. */
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
					      IORING_SETUP_R_DISABLED,
				     .cq_entries = BLK_CQ_SIZE };
	int r = io_uring_queue_init_params(BLK_QUEUE_SIZE, &b->ring, &p);
	if (r == -EINVAL) { /* before Linux 5.18 */
		p = (struct io_uring_params){ .flags = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED,
					      .cq_entries = BLK_CQ_SIZE };
		r = io_uring_queue_init_params(BLK_QUEUE_SIZE, &b->ring, &p);
	}
	if (r < 0)
		return r;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = io_uring_register_eventfd(&b->ring, b->efd)) < 0)
		goto fail;
	if ((r = uring_restrict(&b->ring, blk_uring_ops, sizeof(blk_uring_ops), IOSQE_ASYNC)) < 0)
		goto fail;
	if ((r = evloop_add(b->loop, b->efd, EPOLLIN, blk_uring_event, b)) < 0)
		goto fail;
	return 0;
fail:
	io_uring_queue_exit(&b->ring);
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
	return r;
}

/* "hvmm" and 16 hex digits of the path's FNV-1a hash: stable per image path. */
static void blk_make_id(char id[BLK_ID_LEN], const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	char buf[BLK_ID_LEN + 1];
	snprintf(buf, sizeof(buf), "hvmm%016llx", (unsigned long long)h);
	memcpy(id, buf, BLK_ID_LEN);
}

static int blk_open(struct blk *b, const char *path, bool readonly)
{
	b->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		return -errno;
	/* Two VMs writing one image corrupt it: a writer excludes everyone,
	 * readers share, whether the other VMM is hvmm or QEMU. Except for a
	 * migration's destination: the source holds the lock until it hands
	 * the image over, and virtio_blk_handover takes it then. */
	int lr = b->incoming ? 0 : image_lock(b->fd, readonly);
	if (lr < 0)
		return lr;
	struct stat st;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	uint64_t bytes;
	unsigned align = BLK_SECTOR;
	if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
		if (st.st_blksize > (blksize_t)BLK_SECTOR && st.st_blksize <= (blksize_t)MIB(1))
			align = (unsigned)st.st_blksize;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
	} else {
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTBLK;
	}
	b->capacity = bytes / BLK_SECTOR; /* a partial last sector is not visible */
	b->readonly = readonly;
	b->config = (struct blk_config){
		.capacity = b->capacity,
		.seg_max = BLK_QUEUE_SIZE - 2, /* header and status take two */
		.blk_size = BLK_SECTOR,
		.num_queues = 1,
		.max_discard_sectors = BLK_MAX_SEG_SECTORS,
		.max_discard_seg = BLK_MAX_DSEG,
		.discard_sector_alignment = align / BLK_SECTOR,
		.max_write_zeroes_sectors = BLK_MAX_SEG_SECTORS,
		.max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = 1,
	};
	blk_make_id(b->id, path);
	return 0;
}

/* ---- snapshots ---- */

/*
 * What a snapshot holds of the model: the disk it was taken with (capacity,
 * read-only: the image given on restore must look the same to the guest)
 * and whether used entries are waiting for their interrupt. Not saved:
 * what is derived from the accepted features (flush_ok...), the host's
 * answers (fallocate modes, a failed fdatasync: the new process has a new
 * file description), the rate limiter (its buckets restart full).
 */
struct blk_snap {
	uint64_t capacity;
	uint8_t readonly, irq_owed;
	uint8_t pad[6];
};
_Static_assert(sizeof(struct blk_snap) == 16, "file layout: no hidden padding");

/*
 * Before a snapshot (loop parked, API thread): every operation in flight
 * completes and its request is answered into the used ring, as it would
 * have been on the loop — a short transfer's rest, a write-zeroes fallback
 * or the sync after a fallocate are issued and waited for too. Unlike the
 * reset's drain nothing is cancelled or dropped, and no new chain is popped:
 * a chain still in the avail ring is in the snapshot's RAM, for the
 * restored device to pop.
 */
static void blk_quiesce(struct virtio_dev *d)
{
	struct blk *b = virtio_dev_opaque(d);
	while (b->uring_ok && b->inflight) {
		int r = io_uring_submit_and_wait(&b->ring, 1);
		if (r > 0)
			b->queued -= (unsigned)r < b->queued ? (unsigned)r : b->queued;
		else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			break; /* the ring failed: the save below refuses */
		blk_reap(b);
	}
	blk_sync_drain(b); /* never anything here between callbacks; cheap to be sure */
}

static int blk_snap_save(struct virtio_dev *d, struct snap_buf *sb, char *err, size_t n)
{
	struct blk *b = virtio_dev_opaque(d);
	if (b->inflight || b->nfree != BLK_QUEUE_SIZE) {
		snprintf(err, n, "virtio-blk %s: %u requests still in flight", b->path,
			 BLK_QUEUE_SIZE - b->nfree);
		return -1;
	}
	struct blk_snap s;
	memset(&s, 0, sizeof(s));
	s.capacity = b->capacity;
	s.readonly = b->readonly;
	s.irq_owed = b->pushed && b->vq;
	snap_put(sb, &s, sizeof(s));
	/*
	 * The interrupt for the requests quiesce answered stays owed: the VM
	 * is paused, and raising it here would change what the guest sees
	 * while it is (the MSI-X message or PBA bit, the ISR, the signalled
	 * index a second save of the same pause reads: test_pause_devices).
	 * This VM raises it from its loop once resumed: the completions
	 * quiesce reaped rang the ring's eventfd, which the parked loop has
	 * not read, and blk_uring_event ends with blk_interrupt. Rung once
	 * more so that this does not rest on io_uring's signalling. The
	 * snapshot keeps it owed too (irq_owed): the restored device raises
	 * it from its loop.
	 */
	if (s.irq_owed && b->efd >= 0) {
		uint64_t one = 1;
		if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			util_err("virtio-blk %s: eventfd: %s", b->path, strerror(errno));
	}
	return 0;
}

static int blk_snap_load(struct virtio_dev *d, struct snap_cur *c, char *err, size_t n)
{
	struct blk *b = virtio_dev_opaque(d);
	struct blk_snap s;
	snap_get(c, &s, sizeof(s));
	if (c->bad) {
		snprintf(err, n, "virtio-blk %s: truncated", b->path);
		return -1;
	}
	if (s.capacity != b->capacity || s.readonly != b->readonly) {
		snprintf(err, n, "virtio-blk %s: capacity %llu sectors%s, the snapshot's disk had %llu%s",
			 b->path, (unsigned long long)b->capacity, b->readonly ? " read-only" : "",
			 (unsigned long long)s.capacity, s.readonly ? " read-only" : "");
		return -1;
	}
	if (s.irq_owed > 1) {
		snprintf(err, n, "virtio-blk %s: irq_owed %u", b->path, s.irq_owed);
		return -1;
	}
	for (unsigned i = 0; i < sizeof(s.pad); i++) {
		if (s.pad[i]) { /* zero in every save */
			snprintf(err, n, "virtio-blk %s: malformed padding", b->path);
			return -1;
		}
	}
	/* raised by the first blk_queue_notify: the transport kicks the queue */
	b->pushed = s.irq_owed;
	return 0;
}

/* Two tables, as a read-only disk offers RO instead of discard and
 * write-zeroes. Static: the transport uses them until after destroy. */
#define BLK_FEATURES (1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE | \
		      1ull << VIRTIO_BLK_F_FLUSH)
#define BLK_OPS(feat)                                        \
	{                                                    \
		.name = "virtio-blk",                        \
		.device_type = VIRTIO_ID_BLOCK,              \
		.features = BLK_FEATURES | (feat),           \
		.nr_queues = 1,                              \
		.queue_max = BLK_QUEUE_SIZE,                 \
		.config_size = sizeof(struct blk_config),    \
		.config_read = blk_config_read,              \
		.queue_notify = blk_queue_notify,            \
		.driver_ok = blk_driver_ok,                  \
		.reset = blk_reset,                          \
		.destroy = blk_destroy,                      \
		.quiesce = blk_quiesce,                      \
		.snap_save = blk_snap_save,                  \
		.snap_load = blk_snap_load,                  \
	}
static const struct virtio_dev_ops blk_ops_rw =
	BLK_OPS(1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
static const struct virtio_dev_ops blk_ops_ro = BLK_OPS(1ull << VIRTIO_BLK_F_RO);

int virtio_blk_create(const struct dev_env *env, const char *path, bool readonly, struct virtio_dev **out)
{
	return virtio_blk_create_limited(env, path, readonly, NULL, out);
}

int virtio_blk_create_limited(const struct dev_env *env, const char *path, bool readonly,
			      const struct ratelimit *rl, struct virtio_dev **out)
{
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->loop = env->loop;
	b->reg = env->reg;
	b->stats = env->cfg && env->cfg->stats;
	b->incoming = env->cfg && env->cfg->incoming;
	b->path = path;
	b->fd = b->efd = b->rl_timer = -1;
	int r = blk_open(b, path, readonly);
	if (r < 0)
		goto fail;
	if (rl && rl_active(rl)) {
		b->rl = *rl;
		b->rl_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->rl_timer < 0 || (r = evloop_add(b->loop, b->rl_timer, EPOLLIN, blk_rl_event, b)) < 0) {
			r = b->rl_timer < 0 ? -errno : r;
			if (b->rl_timer >= 0)
				close(b->rl_timer);
			b->rl_timer = -1;
			goto fail;
		}
		b->limited = true;
	}
	/* calloc of ~8 MiB is an untouched mapping: each request's pages are
	 * faulted in when it is first used */
	b->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = BLK_QUEUE_SIZE; i-- > 0;)
		blk_req_put(b, &b->reqs[i]);
	b->uring_err = blk_uring_init(b);
	b->uring_ok = b->uring_err == 0;
	b->dev = virtio_pci_create(env, readonly ? &blk_ops_ro : &blk_ops_rw, b);
	if (!b->dev) {
		r = errno ? -errno : -ENOMEM;
		goto fail;
	}
	blk_list(b, true);
	return virtio_model_done(env, b->dev, out);
fail:
	blk_free(b);
	return r;
}
