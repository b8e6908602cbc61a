/*
 * snapshot_config: the "config" section of a state file — the options that
 * built the VM — and what reads it before a VM exists: `hvmm run --restore
 * STATE` without options, and PUT /snapshot/load (snapshot.h).
 *
 * The options are kept as hvmm's own command-line words (options.h's
 * canonical "--NAME=VALUE"), so that a restore builds its VM through the
 * same parser, with the same checks, as any other start. They come from a
 * file, so they are read like guest input: every string must end inside
 * the section, and only options that describe the VM are taken — a file
 * cannot make hvmm write a log, open a socket or restore something else.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "snapshot_priv.h"

#define SNAP_MEM_VERSION 1
#define SNAP_CONFIG_VERSION 1
#define SNAP_CONFIG_MAX_ARGS 256
#define SNAP_MAX_PATH 4096u

/* The "memory" section (the first): the RAM size again and the memory
 * file's path. */
void snap_memory_put(struct snap_writer *w, uint64_t ram_size, const char *mem_name)
{
	struct snap_mem_info mi = { .ram_size = ram_size, .path_len = (uint32_t)strlen(mem_name) };
	snap_section_begin(w, "memory", 0, SNAP_MEM_VERSION);
	snap_put(&w->body, &mi, sizeof(mi));
	snap_put(&w->body, mem_name, mi.path_len);
	snap_section_end(w);
}

int snap_memory_section(struct snap_reader *rd, char *path, size_t path_len, char *err, size_t n)
{
	struct snap_cur c;
	uint32_t ver;
	struct snap_mem_info mi;
	if (snap_reader_next(rd, "memory", 0, &c, &ver, err, n) < 0)
		return -1;
	snap_get(&c, &mi, sizeof(mi));
	if (ver != SNAP_MEM_VERSION || c.bad || mi.path_len == 0 || mi.path_len >= path_len ||
	    mi.path_len != c.left || mi.ram_size != rd->h.ram_size) {
		snprintf(err, n, "malformed memory section");
		return -1;
	}
	snap_get(&c, path, mi.path_len);
	path[mi.path_len] = 0;
	if (strlen(path) != mi.path_len) {
		snprintf(err, n, "malformed memory section");
		return -1;
	}
	return 0;
}

/* The "config" payload: u32 count, then each option NUL-terminated. */
void snap_config_put(struct snap_writer *w, char *const *args, int n)
{
	uint32_t count = (uint32_t)n;
	snap_section_begin(w, "config", 0, SNAP_CONFIG_VERSION);
	snap_put(&w->body, &count, sizeof(count));
	for (int i = 0; i < n; i++)
		snap_put(&w->body, args[i], strlen(args[i]) + 1);
	snap_section_end(w);
}

int snap_config_parse(struct snap_cur *c, uint32_t version, char ***args, int *n, char *err, size_t en)
{
	*args = NULL;
	*n = 0;
	uint32_t count;
	snap_get(c, &count, sizeof(count));
	if (version != SNAP_CONFIG_VERSION || c->bad || count > SNAP_CONFIG_MAX_ARGS) {
		snprintf(err, en, "malformed config section");
		return -1;
	}
	char **a = calloc((size_t)count + 1, sizeof(*a));
	if (!a) {
		snprintf(err, en, "out of memory");
		return -1;
	}
	uint32_t i = 0;
	for (; i < count; i++) {
		const uint8_t *end = memchr(c->p, 0, c->left);
		if (!end) {
			snprintf(err, en, "malformed config section (option %u does not end)", i);
			goto bad;
		}
		size_t len = (size_t)(end - c->p);
		if (!(a[i] = strndup((const char *)c->p, len))) {
			snprintf(err, en, "out of memory");
			goto bad;
		}
		c->p += len + 1;
		c->left -= len + 1;
		if (!options_vm_arg_ok(a[i])) {
			snprintf(err, en, "the configuration holds '%.60s', which is not an option a snapshot carries",
				 a[i]);
			i++;
			goto bad;
		}
	}
	if (c->left) {
		snprintf(err, en, "malformed config section (%zu bytes after the last option)", c->left);
		goto bad;
	}
	*args = a;
	*n = (int)count;
	return 0;
bad:
	options_free_args(a, (int)i);
	return -1;
}

/* The "memory" and "config" sections of rd (format 2; the config is left
 * out of format 1 files: *n 0). mem: the memory file's name. */
static int snap_config_sections(struct snap_reader *rd, char *mem, size_t mem_len, char ***args, int *n,
				char *err, size_t en)
{
	*args = NULL;
	*n = 0;
	struct snap_cur c;
	uint32_t ver;
	if (snap_memory_section(rd, mem, mem_len, err, en) < 0)
		return -1;
	if (rd->h.format < 2)
		return 0;
	if (snap_reader_next(rd, "config", 0, &c, &ver, err, en) < 0)
		return -1;
	return snap_config_parse(&c, ver, args, n, err, en);
}

int snapshot_read_config(const char *state_path, char ***args, int *n, char *err, size_t en)
{
	struct snap_reader rd;
	char mem[SNAP_MAX_PATH];
	*args = NULL;
	*n = 0;
	if (snap_reader_open(&rd, state_path, err, en) < 0)
		return -1;
	int r = snap_config_sections(&rd, mem, sizeof(mem), args, n, err, en);
	snap_reader_close(&rd);
	return r;
}

int snapshot_load_check(const char *state_path, const char *mem_path, char ***args, int *n, char *err,
			size_t en)
{
	struct snap_reader rd;
	char mem[SNAP_MAX_PATH], why[400];
	*args = NULL;
	*n = 0;
	if (snap_reader_open(&rd, state_path, err, en) < 0)
		return -1;
	int r = snap_config_sections(&rd, mem, sizeof(mem), args, n, why, sizeof(why));
	if (r < 0)
		snprintf(err, en, "%s: %s", state_path, why);
	else if (*n == 0)
		snprintf(err, en, "%s was written by an hvmm that did not keep the VM's options in it: restore it "
			 "with hvmm run --restore and the options it was taken with", state_path), r = -1;
	if (r == 0) {
		const char *mp = mem_path ? mem_path : mem;
		int fd = open(mp, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, en, "cannot open the memory file %s: %m", mp);
			r = -1;
		} else {
			r = snap_mem_check_full(fd, mp, rd.h.ram_size, rd.h.id, err, en);
			close(fd);
		}
	}
	if (r < 0) {
		options_free_args(*args, *n);
		*args = NULL;
		*n = 0;
	}
	snap_reader_close(&rd);
	return r;
}
