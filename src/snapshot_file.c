/*
 * snapshot_file: the state file's format (snapshot_priv.h). A writer builds
 * the body in memory and writes it at once; a reader takes the whole file
 * in, checks the header, the sizes and every section's CRC before anything
 * is applied — a restore either starts from a file that is whole or refuses
 * it with one line, never from half of one. The file is read like guest
 * input: every size is checked against what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "snapshot_priv.h"
#include "util.h"

static uint32_t snap_crc(const void *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const uint8_t *b = p;
	while (len) { /* zlib's length is a uInt */
		uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, b, chunk);
		b += chunk;
		len -= chunk;
	}
	return (uint32_t)c;
}

static uint32_t snap_header_crc(const struct snap_header *h)
{
	struct snap_header t = *h;
	t.header_crc = 0;
	return snap_crc(&t, sizeof(t));
}

void snap_writer_init(struct snap_writer *w, uint64_t ram_size, uint32_t ncpus, uint32_t irqchip)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->h.magic, SNAP_MAGIC, 8);
	w->h.format = SNAP_FORMAT;
	w->h.header_size = sizeof(w->h);
	w->h.ram_size = ram_size;
	w->h.ncpus = ncpus;
	w->h.irqchip = irqchip;
	snprintf(w->h.hvmm_version, sizeof(w->h.hvmm_version), "%s", HVMM_VERSION);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	w->h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	/* The id ties the memory file to this state file; unpredictability is
	 * not needed, uniqueness is: fall back to the clock if getrandom fails. */
	if (getrandom(w->h.id, sizeof(w->h.id), GRND_NONBLOCK) != (ssize_t)sizeof(w->h.id)) {
		memcpy(w->h.id, &w->h.created_ns, 8);
		uint64_t pid = (uint64_t)getpid();
		memcpy(w->h.id + 8, &pid, 8);
	}
	w->open_at = SIZE_MAX;
}

void snap_section_begin(struct snap_writer *w, const char *name, uint32_t instance, uint32_t version)
{
	struct snap_section s = { .instance = instance, .version = version };
	snprintf(s.name, sizeof(s.name), "%s", name);
	w->open_at = w->body.len;
	snap_put(&w->body, &s, sizeof(s));
}

void snap_section_end(struct snap_writer *w)
{
	if (w->open_at == SIZE_MAX)
		return;
	if (!w->body.failed) {
		struct snap_section *s = (struct snap_section *)(w->body.data + w->open_at);
		size_t start = w->open_at + sizeof(*s);
		s->size = w->body.len - start;
		s->crc = snap_crc(w->body.data + start, (size_t)s->size);
		static const uint8_t zero[8];
		snap_put(&w->body, zero, (8 - (w->body.len & 7)) & 7);
	}
	w->h.nr_sections++;
	w->open_at = SIZE_MAX;
}

void snap_writer_finish(struct snap_writer *w)
{
	w->h.body_size = w->body.len;
	w->h.header_crc = snap_header_crc(&w->h);
}

int snap_writer_save(struct snap_writer *w, const char *path, char *err, size_t n)
{
	if (w->body.failed) {
		snprintf(err, n, "out of memory building the state");
		return -1;
	}
	snap_writer_finish(w);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, n, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int r = util_write_all(fd, &w->h, sizeof(w->h));
	if (r == 0)
		r = util_write_all(fd, w->body.data, w->body.len);
	if ((r = snap_file_finish(fd, r)) < 0) {
		snprintf(err, n, "writing %s: %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

int snap_file_finish(int fd, int r)
{
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

void snap_writer_free(struct snap_writer *w)
{
	snap_buf_free(&w->body);
}

int snap_reader_open(struct snap_reader *r, const char *path, char *err, size_t n)
{
	memset(r, 0, sizeof(*r));
	uint8_t *file;
	size_t len;
	int e = util_read_file(path, &file, &len, SNAP_MAX_STATE);
	if (e == -EFBIG) {
		snprintf(err, n, "%s: larger than any hvmm state file (%u MiB)", path, SNAP_MAX_STATE >> 20);
		return -1;
	}
	if (e < 0) {
		snprintf(err, n, "cannot read %s: %s", path, strerror(-e));
		return -1;
	}
	return snap_reader_open_mem(r, file, len, path, err, n);
}

int snap_reader_open_mem(struct snap_reader *r, uint8_t *file, size_t len, const char *path, char *err,
			 size_t n)
{
	memset(r, 0, sizeof(*r));
	r->file = file;
	r->len = len;
	if (r->len < sizeof(r->h) || memcmp(r->file, SNAP_MAGIC, 8) != 0) {
		snprintf(err, n, "%s is not an hvmm snapshot", path);
		goto bad;
	}
	memcpy(&r->h, r->file, sizeof(r->h));
	if (r->h.format < SNAP_FORMAT_MIN || r->h.format > SNAP_FORMAT || r->h.header_size != sizeof(r->h)) {
		snprintf(err, n, "%s: snapshot format %u, this hvmm reads formats %u to %u", path, r->h.format,
			 SNAP_FORMAT_MIN, SNAP_FORMAT);
		goto bad;
	}
	if (snap_header_crc(&r->h) != r->h.header_crc) {
		snprintf(err, n, "%s: corrupt snapshot header (checksum)", path);
		goto bad;
	}
	if (r->h.body_size != r->len - sizeof(r->h)) {
		snprintf(err, n, "%s: %s snapshot (%zu bytes of state, the header says %llu)", path,
			 r->h.body_size > r->len - sizeof(r->h) ? "truncated" : "oversized",
			 r->len - sizeof(r->h), (unsigned long long)r->h.body_size);
		goto bad;
	}
	/* Every section whole and intact before any is used. */
	size_t off = sizeof(r->h);
	for (uint32_t i = 0; i < r->h.nr_sections; i++) {
		struct snap_section s;
		if (r->len - off < sizeof(s)) {
			snprintf(err, n, "%s: section %u of %u is missing", path, i, r->h.nr_sections);
			goto bad;
		}
		memcpy(&s, r->file + off, sizeof(s));
		off += sizeof(s);
		uint64_t padded = (s.size + 7) & ~7ull;
		if (s.name[SNAP_NAME_LEN - 1] || s.size > r->len - off || padded > r->len - off) {
			snprintf(err, n, "%s: section %u is malformed", path, i);
			goto bad;
		}
		if (snap_crc(r->file + off, (size_t)s.size) != s.crc) {
			snprintf(err, n, "%s: corrupt section %s #%u (checksum)", path, s.name, s.instance);
			goto bad;
		}
		off += (size_t)padded;
	}
	if (off != r->len) {
		snprintf(err, n, "%s: %zu bytes after the last section", path, r->len - off);
		goto bad;
	}
	r->next = sizeof(r->h);
	return 0;
bad:
	snap_reader_close(r);
	return -1;
}

int snap_reader_next(struct snap_reader *r, const char *name, uint32_t instance, struct snap_cur *c,
		     uint32_t *version, char *err, size_t n)
{
	if (r->next >= r->len) {
		snprintf(err, n, "the snapshot has no %s #%u: was it taken with other options?", name,
			 instance);
		return -1;
	}
	struct snap_section s;
	memcpy(&s, r->file + r->next, sizeof(s)); /* checked whole at open */
	if (strcmp(s.name, name) != 0 || s.instance != instance) {
		snprintf(err, n, "the snapshot has %s #%u where this VM has %s #%u: start hvmm with the "
			 "options the snapshot was taken with", s.name, s.instance, name, instance);
		return -1;
	}
	*c = (struct snap_cur){ .p = r->file + r->next + sizeof(s), .left = (size_t)s.size };
	*version = s.version;
	r->next += sizeof(s) + (size_t)((s.size + 7) & ~7ull);
	return 0;
}

int snap_reader_find(const struct snap_reader *r, const char *name, uint32_t instance, struct snap_cur *c,
		     uint32_t *version)
{
	/* Sections and their sizes were checked whole at open: the walk stays inside. */
	for (size_t at = sizeof(r->h); at < r->len;) {
		struct snap_section s;
		memcpy(&s, r->file + at, sizeof(s));
		if (strcmp(s.name, name) == 0 && s.instance == instance) {
			*c = (struct snap_cur){ .p = r->file + at + sizeof(s), .left = (size_t)s.size };
			*version = s.version;
			return 0;
		}
		at += sizeof(s) + (size_t)((s.size + 7) & ~7ull);
	}
	return -ENOENT;
}

int snap_reader_done(struct snap_reader *r, char *err, size_t n)
{
	if (r->next < r->len) {
		struct snap_section s;
		memcpy(&s, r->file + r->next, sizeof(s));
		snprintf(err, n, "the snapshot has a %s #%u this VM does not: start hvmm with the options "
			 "the snapshot was taken with", s.name, s.instance);
		return -1;
	}
	return 0;
}

void snap_reader_close(struct snap_reader *r)
{
	free(r->file);
	r->file = NULL;
	r->len = 0;
}
