/*
 * migrate_in: the destination (--incoming tcp:ADDR:PORT). The VM is built
 * as for --restore — devices and vCPUs from the same options, no image — and
 * then, still in vm_create, takes one connection, reads RAM straight into
 * guest memory round after round while the source's guest runs, and last
 * the state, which goes through the very code a --restore uses
 * (snapshot_restore_take/apply). Nothing of the guest runs until the state
 * is loaded, the disks' locks are ours and the source was told so.
 *
 * One connection only: after it the listening socket is closed, so a second
 * client cannot feed this VM anything.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_priv.h"
#include "migrate_proto.h"
#include "snapshot_priv.h"
#include "util.h"
#include "virtio/virtio.h"
#include "vm.h"

/* Longest silence from the source mid-stream: it sends all the time, except
 * while it pauses and builds the state (milliseconds). */
#define MIG_IN_TIMEOUT_S 60

int migrate_listen(struct vm *vm)
{
	struct migrate *m = migrate_state(vm);
	if (!m) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	struct sockaddr_storage ss;
	socklen_t len;
	char err[200];
	if (migrate_parse_addr(vm->cfg.incoming, true, &ss, &len, err, sizeof(err)) < 0) {
		util_err("--incoming: %s", err);
		return HVMM_EXIT_USAGE;
	}
	snprintf(m->where, sizeof(m->where), "%s", vm->cfg.incoming + 4);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
		util_err("--incoming: cannot listen on %s: %s", m->where, strerror(errno));
		if (fd >= 0)
			close(fd);
		return HVMM_EXIT_USAGE;
	}
	m->listen_fd = fd;
	return 0;
}

/* A refusal: told to the source (best effort) and on stderr. */
static int mig_in_fail(struct migrate *m, int status, const char *what, const char *why)
{
	if (m->fd >= 0)
		mig_reply_send(m->fd, MIG_R_REFUSE, why);
	util_err("--incoming: %s%s", what, why);
	return status;
}

int migrate_incoming(struct vm *vm)
{
	struct migrate *m = vm->migrate;
	/* The line a test or an orchestrator waits for before it starts the
	 * source's migration. */
	util_err("waiting for a migration on %s", m->where);
	int fd;
	do
		fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		util_err("--incoming: accept on %s: %s", m->where, strerror(errno));
		return HVMM_EXIT_MIGRATE;
	}
	close(m->listen_fd);
	m->listen_fd = -1;
	m->fd = fd;
	uint64_t t0 = util_now_ns();
	struct timeval tv = { .tv_sec = MIG_IN_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	struct mig_in *in = malloc(sizeof(*in));
	if (!in)
		return mig_in_fail(m, HVMM_EXIT_HOST, "", "out of memory");
	mig_in_init(in, vm->mem.base, vm->mem.ram_size, (uint32_t)vm->cfg.ncpus, (uint32_t)vm->cfg.irqchip,
		    SNAP_MAX_STATE);
	char err[512];
	int r = mig_recv_hello(in, fd, err, sizeof(err));
	if (r) {
		free(in);
		return mig_in_fail(m, r == MIG_IN_MISMATCH ? HVMM_EXIT_USAGE : HVMM_EXIT_MIGRATE, "refused: ", err);
	}
	if (mig_reply_send(fd, MIG_R_ACCEPT, "") < 0) {
		free(in);
		util_err("--incoming: the source went away after its hello");
		return HVMM_EXIT_MIGRATE;
	}
	if (mig_recv_stream(in, fd, err, sizeof(err)) < 0) {
		free(in);
		return mig_in_fail(m, HVMM_EXIT_MIGRATE, "", err);
	}
	m->in_bytes = in->bytes;
	m->in_pages = in->pages;
	m->in_rounds = (uint64_t)in->next_round;
	m->src_paused_rt = in->src_paused_ns;
	struct snap_reader *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		mig_in_free(in);
		free(in);
		return mig_in_fail(m, HVMM_EXIT_HOST, "", "out of memory");
	}
	/* The reader owns the state from here, also when it refuses it. */
	r = snap_reader_open_mem(rd, in->state, in->state_len, "the source's state", err, sizeof(err));
	in->state = NULL;
	free(in);
	if (r < 0) {
		free(rd);
		return mig_in_fail(m, HVMM_EXIT_MIGRATE, "", err);
	}
	char name[SNAP_NAME_LEN + 4096];
	if ((r = snapshot_restore_take(vm, rd, "--incoming", name, sizeof(name))) ||
	    (r = snapshot_restore_apply(vm))) {
		mig_reply_send(fd, MIG_R_REFUSE, "the destination could not load the state (see its stderr)");
		return r;
	}
	m->in_ns = util_now_ns() - t0;
	m->incoming_done = true;
	return 0;
}

int migrate_incoming_go(struct vm *vm)
{
	struct migrate *m = vm->migrate;
	if (!m || !m->incoming_done)
		return 0;
	char err[300];
	if (virtio_blk_handover(&vm->devs, true, err, sizeof(err)) < 0)
		return mig_in_fail(m, HVMM_EXIT_USAGE, "", err);
	if (mig_reply_send(m->fd, MIG_R_RUNNING, "") < 0) {
		/* The source did not hear it: it runs the guest on, so must not we. */
		util_err("--incoming: the source went away before the switch-over was confirmed");
		return HVMM_EXIT_MIGRATE;
	}
	close(m->fd);
	m->fd = -1;
	m->started_rt = migrate_realtime_ns();
	return 0;
}
