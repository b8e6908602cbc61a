/*
 * migrate_send: the source (PUT /hvmm/migrate), run on the API thread.
 *
 *   hello            → the destination checks RAM size, vCPUs, irqchip
 *   track            KVM's dirty log on every slot, hvmm's DMA record on
 *   round 0          every non-zero page (the destination's RAM is zero)
 *   rounds 1..       the pages written since the previous round
 *   switch-over      once what is left would take less than the downtime
 *                    budget at the bandwidth the last round achieved (or
 *                    after MIG_OUT_MAX_ROUNDS): pause, build the state, the
 *                    pages written since, flush and unlock the disks, the state
 *   ack              → RUNNING: stop here with status 0; anything else:
 *                    take the disks back and resume
 *
 * Tracking starts *before* round 0 copies anything: a page the guest writes
 * after round 0 sent it is then in the next round's log, whichever of the
 * two happened first.
 *
 * hvmm's own writes into guest RAM (virtio buffers and used rings, fw_cfg
 * DMA) go around KVM's dirty log. Devices mark them in a bitmap of ours
 * (memory.h's mem_mark_dirty, at completion, after the write) while the
 * migration tracks, as QEMU marks DMA writes dirty; each round takes both
 * logs. The paused round is taken after the state was built, because
 * building it completes the disk requests still in flight (their data and
 * used entries land then).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dirtylog.h"
#include "lifecycle.h"
#include "migrate_priv.h"
#include "migrate_proto.h"
#include "snapshot_priv.h"
#include "util.h"
#include "virtio/virtio.h"
#include "vm.h"

#define MIG_OUT_MAX_ROUNDS 30
#define MIG_OUT_IO_TIMEOUT_S 10  /* a destination that takes nothing for this long is gone */
#define MIG_OUT_ACK_TIMEOUT_S 30 /* loading the state and locking the disks */

struct mig_out {
	struct vm *vm;
	int fd;
	uint64_t *dirty;  /* one bit per page: to send in the next round */
	size_t words;
	uint64_t bytes, pages;
	int io_err;       /* the first send's -errno */
};

static int mig_sendv(struct mig_out *o, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t r = sendmsg(o->fd, &mh, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return o->io_err = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		o->bytes += (uint64_t)r;
		size_t left = (size_t)r;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int mig_send_rec(struct mig_out *o, uint32_t type, uint32_t count, const void *p, size_t len)
{
	struct mig_rec h = { .type = type, .count = count, .len = len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };
	return mig_sendv(o, iov, len ? 2 : 1);
}

/* One PAGES record of n pages at these RAM offsets, straight from RAM. */
static int mig_send_batch(struct mig_out *o, uint64_t *offs, uint32_t n)
{
	struct mig_rec h = { .type = MIG_PAGES, .count = n, .len = (uint64_t)n * (8 + MIG_PAGE) };
	struct iovec iov[2 + MIG_BATCH];
	iov[0] = (struct iovec){ &h, sizeof(h) };
	iov[1] = (struct iovec){ offs, n * sizeof(uint64_t) };
	for (uint32_t i = 0; i < n; i++)
		iov[2 + i] = (struct iovec){ o->vm->mem.base + offs[i], MIG_PAGE };
	o->pages += n;
	return mig_sendv(o, iov, (int)(2 + n));
}

static bool mig_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < MIG_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Round `round`: every page set in o->dirty (cleared as sent), or with
 * all_nonzero every non-zero page of RAM. */
static int mig_send_round(struct mig_out *o, uint32_t round, bool all_nonzero)
{
	int r = mig_send_rec(o, MIG_ROUND, round, NULL, 0);
	uint64_t offs[MIG_BATCH];
	uint32_t n = 0;
	uint64_t npages = o->vm->mem.ram_size / MIG_PAGE;
	for (uint64_t w = 0; r == 0 && w < o->words; w++) {
		uint64_t bits = all_nonzero ? ~0ull : o->dirty[w];
		o->dirty[w] = 0;
		while (bits && r == 0) {
			uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (pg >= npages)
				break;
			if (all_nonzero && mig_page_zero(o->vm->mem.base + pg * MIG_PAGE))
				continue;
			offs[n++] = pg * MIG_PAGE;
			if (n == MIG_BATCH) {
				r = mig_send_batch(o, offs, n);
				n = 0;
			}
		}
	}
	if (r == 0 && n)
		r = mig_send_batch(o, offs, n);
	return r;
}

/* Both logs into o->dirty. */
static int mig_take_dirty(struct mig_out *o)
{
	int r = dirtylog_take(o->vm, o->dirty);
	mem_dma_take(&o->vm->mem, o->dirty, o->words);
	return r;
}

static uint64_t mig_count(const struct mig_out *o)
{
	uint64_t c = 0;
	for (size_t w = 0; w < o->words; w++)
		c += (uint64_t)__builtin_popcountll(o->dirty[w]);
	return c;
}

static int mig_fail(char *err, size_t n, int code, const char *fmt, const char *arg)
{
	snprintf(err, n, fmt, arg);
	return code;
}

int migrate_out(struct vm *vm, const char *dest, uint32_t downtime_ms, char *err, size_t n)
{
	struct migrate *m = migrate_state(vm);
	if (!m)
		return mig_fail(err, n, -1, "out of memory%s", "");
	if (vm->cfg.dirty_log_ms)
		return mig_fail(err, n, -1, "a migration needs KVM's dirty log, which --dirty-log uses%s", "");
	if (vm->devs.unsupported)
		return mig_fail(err, n, -1, "%s cannot be migrated", vm->devs.unsupported);
	if (atomic_load(&vm->suspended))
		return mig_fail(err, n, -1, "the guest is in S3 sleep: wake it first%s", "");
	struct sockaddr_storage ss;
	socklen_t slen;
	if (migrate_parse_addr(dest, false, &ss, &slen, err, n) < 0)
		return -1;
	const char *where = dest + 4;
	m->attempts++;
	uint64_t t0 = util_now_ns();
	struct mig_out o = { .vm = vm, .fd = -1 };
	o.words = (size_t)((vm->mem.ram_size / MIG_PAGE + 63) / 64);
	bool tracking = false, paused = false, unlocked = false;
	bool was_paused = lifecycle_paused(vm);
	struct snap_writer w;
	bool have_w = false;
	const int code = -2; /* from here on a failure is the migration's, not the request's */
	char why[MIG_MSG_MAX + 64] = "";

	o.dirty = calloc(o.words, sizeof(uint64_t));
	o.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!o.dirty || o.fd < 0) {
		snprintf(err, n, "%s", !o.dirty ? "out of memory" : strerror(errno));
		goto fail;
	}
	/* The timeouts bound connect too: a destination that does not answer
	 * does not hold the API (and this VM's pause) for ever. */
	struct timeval tv = { .tv_sec = MIG_OUT_IO_TIMEOUT_S };
	setsockopt(o.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(o.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(o.fd, (struct sockaddr *)&ss, slen) < 0) {
		snprintf(err, n, "cannot connect to %s: %s", where, strerror(errno));
		goto fail;
	}
	struct mig_hello hi = { .version = MIG_VERSION, .page_size = MIG_PAGE, .ram_size = vm->mem.ram_size,
				.ncpus = (uint32_t)vm->ncpus, .irqchip = (uint32_t)vm->cfg.irqchip };
	memcpy(hi.magic, MIG_MAGIC, 8);
	snprintf(hi.hvmm_version, sizeof(hi.hvmm_version), "%s", HVMM_VERSION);
	uint32_t rtype;
	int r = mig_send_rec(&o, MIG_HELLO, 0, &hi, sizeof(hi));
	if (r == 0)
		r = mig_reply_recv(o.fd, &rtype, why, sizeof(why));
	if (r < 0) {
		snprintf(err, n, "%s: no answer to the hello: %s", where,
			 r == -EPIPE ? "the destination closed the connection" : strerror(-r));
		goto fail;
	}
	if (rtype != MIG_R_ACCEPT) {
		snprintf(err, n, "the destination refused: %s", why);
		goto fail;
	}
	if ((r = mem_dma_track_start(&vm->mem)) < 0 || (r = dirtylog_track(vm, true)) < 0) {
		snprintf(err, n, "cannot track dirty pages: %s", strerror(-r));
		goto fail;
	}
	tracking = true;

	/* Round 0, then rounds until the rest fits the budget. */
	uint64_t budget_ns = (uint64_t)downtime_ms * 1000000u, bw = 0;
	uint32_t round = 0;
	for (;; round++) {
		uint64_t b0 = o.bytes, r0 = util_now_ns();
		r = mig_send_round(&o, round, round == 0);
		if (r < 0)
			break;
		uint64_t dt = util_now_ns() - r0;
		if (o.bytes - b0 > (1u << 20) && dt)
			bw = (o.bytes - b0) * 1000000000ull / dt;
		else if (!bw)
			bw = 100u << 20; /* too little to measure: assume 100 MB/s */
		if ((r = mig_take_dirty(&o)) < 0) {
			snprintf(err, n, "KVM_GET_DIRTY_LOG: %s", strerror(-r));
			goto fail;
		}
		uint64_t left = mig_count(&o) * MIG_PAGE;
		if (left * 1000000000ull / bw <= budget_ns || round + 1 >= MIG_OUT_MAX_ROUNDS)
			break;
	}
	if (r < 0)
		goto stream;
	m->out_bw = bw;

	/* The switch-over. */
	if (!was_paused) {
		if (lifecycle_pause(vm, err, n) < 0)
			goto fail;
		paused = true;
	}
	uint64_t tp = util_now_ns();
	struct mig_state_prefix pre = { .paused_realtime_ns = migrate_realtime_ns() };
	have_w = true;
	if (snapshot_state_build(vm, &w, dest, err, n) < 0)
		goto fail;
	snap_writer_finish(&w);
	if ((r = mig_take_dirty(&o)) < 0) {
		snprintf(err, n, "KVM_GET_DIRTY_LOG: %s", strerror(-r));
		goto fail;
	}
	uint64_t final_pages = mig_count(&o);
	if ((r = mig_send_round(&o, round + 1, false)) < 0)
		goto stream;
	/* Nothing writes the disks now (paused, requests completed by the
	 * state's build): flush and hand them over. */
	if (virtio_blk_handover(&vm->devs, false, err, n) < 0)
		goto fail;
	unlocked = true;
	struct mig_rec sh = { .type = MIG_STATE, .len = sizeof(pre) + sizeof(w.h) + w.body.len };
	struct iovec iov[4] = { { &sh, sizeof(sh) }, { &pre, sizeof(pre) }, { &w.h, sizeof(w.h) },
				{ w.body.data, w.body.len } };
	if ((r = mig_sendv(&o, iov, 4)) < 0)
		goto stream;
	tv.tv_sec = MIG_OUT_ACK_TIMEOUT_S;
	setsockopt(o.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = mig_reply_recv(o.fd, &rtype, why, sizeof(why));
	if (r < 0) {
		snprintf(err, n, "%s: no confirmation after the state: %s", where,
			 r == -EPIPE ? "the destination closed the connection" : strerror(-r));
		goto fail;
	}
	if (rtype != MIG_R_RUNNING) {
		snprintf(err, n, "the destination refused: %s", why);
		goto fail;
	}
	/* Done: the guest is the destination's. */
	uint64_t t1 = util_now_ns();
	m->out_done = true;
	m->out_total_ns = t1 - t0;
	m->out_downtime_ns = t1 - tp;
	m->out_bytes = o.bytes;
	m->out_pages = o.pages;
	m->out_final_pages = final_pages;
	m->out_rounds = round + 2;
	atomic_store(&vm->handed_over, true);
	mem_dma_track_stop(&vm->mem);
	snap_writer_free(&w);
	close(o.fd);
	free(o.dirty);
	vm_stop(vm, VM_STOP_MIGRATED, HVMM_EXIT_OK,
		"migrated to %s: %.1f ms, downtime %.1f ms, %llu bytes in %llu rounds", where,
		(double)m->out_total_ns / 1e6, (double)m->out_downtime_ns / 1e6, (unsigned long long)o.bytes,
		(unsigned long long)m->out_rounds);
	return 0;

stream:
	snprintf(err, n, "sending to %s: %s", where,
		 r == -EPIPE || r == -ECONNRESET ? "the destination closed the connection" : strerror(-r));
	/* A destination that refuses mid-stream says why before it closes. */
	if (mig_reply_recv(o.fd, &rtype, why, sizeof(why)) == 0 && rtype == MIG_R_REFUSE)
		snprintf(err, n, "the destination refused: %s", why);
fail:
	m->failures++;
	if (have_w)
		snap_writer_free(&w);
	if (unlocked) {
		char lerr[200];
		if (virtio_blk_handover(&vm->devs, true, lerr, sizeof(lerr)) < 0) {
			/* Someone took the image between: running on would
			 * corrupt it. */
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "migration failed and %s", lerr);
			paused = false;
		}
	}
	if (tracking && vm->cfg.track_dirty_pages) {
		snapshot_track_reset(vm); /* the migration took the log: no diff until a full snapshot */
	} else if (tracking) {
		mem_dma_track_stop(&vm->mem);
		dirtylog_track(vm, false);
	}
	if (paused) {
		char rerr[100];
		lifecycle_resume(vm, rerr, sizeof(rerr));
	}
	if (o.fd >= 0)
		close(o.fd);
	free(o.dirty);
	return code;
}
