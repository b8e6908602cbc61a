/*
 * migrate_recv: the destination's reading of the migration stream
 * (migrate_proto.h). The source is not trusted more than a guest is: every
 * header is checked against its type before a byte of payload is read, every
 * page offset against RAM before any page of the record is written, and the
 * records must come in the protocol's order. KVM-free, so the unit tests
 * feed it hostile streams through a pipe.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_proto.h"

int mig_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (r == 0)
			return -EPIPE;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int mig_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		/* send, not write: a destination gone must be an error, not SIGPIPE */
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = write(fd, p, len); /* the unit tests' pipes */
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int mig_reply_send(int fd, uint32_t type, const char *msg)
{
	size_t len = msg ? strnlen(msg, MIG_MSG_MAX) : 0;
	struct mig_reply h = { .type = type, .len = (uint32_t)len };
	int r = mig_write_full(fd, &h, sizeof(h));
	return r ? r : mig_write_full(fd, msg, len);
}

int mig_reply_recv(int fd, uint32_t *type, char *msg, size_t n)
{
	struct mig_reply h;
	int r = mig_read_full(fd, &h, sizeof(h));
	if (r)
		return r;
	if ((h.type != MIG_R_ACCEPT && h.type != MIG_R_REFUSE && h.type != MIG_R_RUNNING) ||
	    h.len > MIG_MSG_MAX)
		return -EPROTO;
	char text[MIG_MSG_MAX + 1];
	if ((r = mig_read_full(fd, text, h.len)))
		return r;
	text[h.len] = 0;
	/* the destination's words go into our error message: printable only */
	for (uint32_t i = 0; i < h.len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			text[i] = '?';
	snprintf(msg, n, "%s", text);
	*type = h.type;
	return 0;
}

void mig_in_init(struct mig_in *in, uint8_t *ram, uint64_t ram_size, uint32_t ncpus, uint32_t irqchip,
		 uint64_t max_state)
{
	memset(in, 0, sizeof(*in));
	in->ram = ram;
	in->ram_size = ram_size;
	in->ncpus = ncpus;
	in->irqchip = irqchip;
	in->max_state = max_state;
	in->next_round = -1;
}

void mig_in_free(struct mig_in *in)
{
	free(in->state);
	in->state = NULL;
}

static int mig_stream_err(char *err, size_t n, int r)
{
	snprintf(err, n, "the stream broke: %s", r == -EPIPE ? "the source closed it" : strerror(-r));
	return -1;
}

int mig_recv_hello(struct mig_in *in, int fd, char *err, size_t n)
{
	struct mig_rec h;
	struct mig_hello hi;
	int r = mig_read_full(fd, &h, sizeof(h));
	if (r)
		return mig_stream_err(err, n, r);
	if (h.type != MIG_HELLO || h.len != sizeof(hi) || h.count != 0) {
		snprintf(err, n, "not an hvmm migration stream (no hello)");
		return -1;
	}
	if ((r = mig_read_full(fd, &hi, sizeof(hi))))
		return mig_stream_err(err, n, r);
	if (memcmp(hi.magic, MIG_MAGIC, 8) != 0) {
		snprintf(err, n, "not an hvmm migration stream (bad magic)");
		return -1;
	}
	hi.hvmm_version[sizeof(hi.hvmm_version) - 1] = 0;
	for (char *c = hi.hvmm_version; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	if (hi.version != MIG_VERSION || hi.page_size != MIG_PAGE) {
		snprintf(err, n, "migration format %u (pages of %u bytes) from hvmm %s; this hvmm reads format %u",
			 hi.version, hi.page_size, hi.hvmm_version, MIG_VERSION);
		return MIG_IN_MISMATCH;
	}
	if (hi.ram_size != in->ram_size || hi.ncpus != in->ncpus || hi.irqchip != in->irqchip) {
		snprintf(err, n, "the source has --mem %lluM --cpus %u and irqchip mode %u; this VM has --mem "
			 "%lluM --cpus %u and irqchip mode %u", (unsigned long long)(hi.ram_size >> 20), hi.ncpus,
			 hi.irqchip, (unsigned long long)(in->ram_size >> 20), in->ncpus, in->irqchip);
		return MIG_IN_MISMATCH;
	}
	in->next_round = 0;
	return 0;
}

/* One PAGES record's payload: every offset checked before any page lands. */
static int mig_recv_pages(struct mig_in *in, int fd, const struct mig_rec *h, char *err, size_t n)
{
	uint32_t cnt = h->count;
	if (in->next_round <= 0) {
		snprintf(err, n, "pages before the first round");
		return -1;
	}
	if (cnt == 0 || cnt > MIG_BATCH || h->len != (uint64_t)cnt * (8 + MIG_PAGE)) {
		snprintf(err, n, "malformed page record (%u pages in %llu bytes)", cnt, (unsigned long long)h->len);
		return -1;
	}
	int r = mig_read_full(fd, in->offs, cnt * sizeof(uint64_t));
	if (r)
		return mig_stream_err(err, n, r);
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t o = in->offs[i];
		if ((o & (MIG_PAGE - 1)) || o >= in->ram_size || in->ram_size - o < MIG_PAGE) {
			snprintf(err, n, "page at 0x%llx is not a page of the guest's %llu MiB",
				 (unsigned long long)o, (unsigned long long)(in->ram_size >> 20));
			return -1;
		}
	}
	for (uint32_t i = 0; i < cnt; i++)
		if ((r = mig_read_full(fd, in->ram + in->offs[i], MIG_PAGE)))
			return mig_stream_err(err, n, r);
	in->pages += cnt;
	return 0;
}

static int mig_recv_state(struct mig_in *in, int fd, const struct mig_rec *h, char *err, size_t n)
{
	struct mig_state_prefix p;
	if (in->next_round <= 0) {
		snprintf(err, n, "the state before any RAM");
		return -1;
	}
	if (h->count != 0 || h->len <= sizeof(p) || h->len - sizeof(p) > in->max_state) {
		snprintf(err, n, "malformed state record (%llu bytes)", (unsigned long long)h->len);
		return -1;
	}
	int r = mig_read_full(fd, &p, sizeof(p));
	if (r)
		return mig_stream_err(err, n, r);
	size_t len = (size_t)(h->len - sizeof(p));
	uint8_t *s = malloc(len);
	if (!s) {
		snprintf(err, n, "out of memory for %zu bytes of state", len);
		return -1;
	}
	if ((r = mig_read_full(fd, s, len))) {
		free(s);
		return mig_stream_err(err, n, r);
	}
	in->state = s;
	in->state_len = len;
	in->src_paused_ns = p.paused_realtime_ns;
	return 0;
}

int mig_recv_stream(struct mig_in *in, int fd, char *err, size_t n)
{
	if (in->next_round < 0) {
		snprintf(err, n, "no hello");
		return -1;
	}
	for (;;) {
		struct mig_rec h;
		int r = mig_read_full(fd, &h, sizeof(h));
		if (r)
			return mig_stream_err(err, n, r);
		in->bytes += sizeof(h) + h.len;
		switch (h.type) {
		case MIG_ROUND:
			if (h.len != 0 || h.count != (uint32_t)in->next_round || h.count >= MIG_MAX_ROUNDS) {
				snprintf(err, n, "round %u where round %d was due", h.count, in->next_round);
				return -1;
			}
			in->next_round++;
			break;
		case MIG_PAGES:
			if (mig_recv_pages(in, fd, &h, err, n) < 0)
				return -1;
			break;
		case MIG_STATE:
			return mig_recv_state(in, fd, &h, err, n);
		case MIG_HELLO:
			snprintf(err, n, "a second hello");
			return -1;
		default:
			snprintf(err, n, "unknown record type %u", h.type);
			return -1;
		}
	}
}
