/*
 * migrate_proto: the live-migration stream between two hvmm processes
 * (docs/migration.md). Little-endian as the host, like the state file: both
 * ends are hvmm on x86-64.
 *
 * Source → destination: records, each a 16-byte header and `len` bytes.
 *   HELLO  once, first: format version, page size, RAM size, vCPUs, irqchip
 *   ROUND  count = the round that starts (0, 1, 2, … in order), len 0
 *   PAGES  count = n (1..MIG_BATCH): n u64 RAM offsets, then n pages
 *   STATE  once, last: u64 the source's pause (CLOCK_REALTIME ns), u64 0,
 *          then a state file as --restore reads it (snapshot_priv.h)
 * Destination → source: replies, an 8-byte header and up to MIG_MSG_MAX
 * bytes of text: ACCEPT after the hello, REFUSE (why) at any time, RUNNING
 * once the state is loaded and the disks are locked.
 *
 * The receiving side treats every field as hostile (migrate_recv.c): a
 * length is checked against the type before anything is read or allocated.
 */
#ifndef HVMM_MIGRATE_PROTO_H
#define HVMM_MIGRATE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MIG_MAGIC "HVMMMIGR"
#define MIG_VERSION 1
#define MIG_PAGE 4096u
#define MIG_BATCH 256u           /* pages per PAGES record: 1 MiB of data */
#define MIG_MAX_ROUNDS 64u       /* a source stops iterating long before */
#define MIG_MSG_MAX 512u

enum mig_rec_type {
	MIG_HELLO = 1,
	MIG_ROUND = 2,
	MIG_PAGES = 3,
	MIG_STATE = 4,
};

struct mig_rec {
	uint32_t type;
	uint32_t count;
	uint64_t len;
};
_Static_assert(sizeof(struct mig_rec) == 16, "mig_rec is part of the protocol");

struct mig_hello {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint64_t ram_size;
	uint32_t ncpus;
	uint32_t irqchip;
	char hvmm_version[32];
};
_Static_assert(sizeof(struct mig_hello) == 64, "mig_hello is part of the protocol");

struct mig_state_prefix {
	uint64_t paused_realtime_ns;
	uint64_t reserved;
};

enum mig_reply_type {
	MIG_R_ACCEPT = 0x10,
	MIG_R_REFUSE = 0x11,
	MIG_R_RUNNING = 0x12,
};

struct mig_reply {
	uint32_t type;
	uint32_t len; /* text after it, <= MIG_MSG_MAX */
};

/* ---- the receiving side (migrate_recv.c), free of KVM for the tests ---- */

struct mig_in {
	/* what this VM is */
	uint8_t *ram;
	uint64_t ram_size;
	uint32_t ncpus, irqchip;
	uint64_t max_state;        /* largest state accepted */
	/* what came */
	int next_round;            /* the ROUND expected next; -1 before the hello */
	uint8_t *state;            /* malloc'd, the state file's bytes, once STATE came */
	size_t state_len;
	uint64_t src_paused_ns;    /* CLOCK_REALTIME */
	uint64_t pages, bytes;
	uint64_t offs[MIG_BATCH];
};

/* Results of mig_recv_hello. */
#define MIG_IN_MISMATCH 1 /* a well-formed hello of another VM: refuse it */

/* Start: RAM and what the hello must say. */
void mig_in_init(struct mig_in *in, uint8_t *ram, uint64_t ram_size, uint32_t ncpus, uint32_t irqchip,
		 uint64_t max_state);
/* Read and check the hello. 0; MIG_IN_MISMATCH with the difference in err;
 * -1 with err (not hvmm's stream, another version, a short read). */
int mig_recv_hello(struct mig_in *in, int fd, char *err, size_t n);
/* Rounds and pages into RAM until the STATE record, which it keeps in
 * in->state. 0, or -1 with err (a broken stream or a malformed record). */
int mig_recv_stream(struct mig_in *in, int fd, char *err, size_t n);
void mig_in_free(struct mig_in *in);

/* Both sides: exactly len bytes (EINTR retried). 0 or -errno: -EPIPE when
 * the stream ends early, -ETIMEDOUT when the socket's timeout expired. */
int mig_read_full(int fd, void *buf, size_t len);
int mig_write_full(int fd, const void *buf, size_t len);
/* A reply: type and text (may be empty). */
int mig_reply_send(int fd, uint32_t type, const char *msg);
/* Read one reply: its type, text in msg (NUL-terminated). 0 or -errno/-EPROTO. */
int mig_reply_recv(int fd, uint32_t *type, char *msg, size_t n);

#endif
