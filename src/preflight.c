#include "preflight.h"

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "util.h"
#include "vm.h"

/* An input file: readable, regular, no larger than guest RAM (what vm.c's
 * loader will demand). The loader checks again: this only reports early. */
static int preflight_file(const char *what, const char *path, uint64_t ram)
{
	size_t len;
	int fd = util_open_input(path, ram, &len);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd == -EFBIG)
		util_err("%s %s is larger than guest RAM (%llu MiB)", what, path,
			 (unsigned long long)(ram >> 20));
	else
		util_err("cannot read %s %s: %s", what, path, strerror(-fd));
	return HVMM_EXIT_IMAGE;
}

/* A file hvmm will create or overwrite later: its directory must let it. */
static int preflight_output(const char *opt, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			util_err("%s %s: %s", opt, path, strerror(EISDIR));
			return HVMM_EXIT_USAGE;
		}
		if (access(path, W_OK) < 0) {
			util_err("%s %s: %s", opt, path, strerror(errno));
			return HVMM_EXIT_USAGE;
		}
		return 0;
	}
	char dir[PATH_MAX];
	if (strlen(path) >= sizeof(dir)) {
		util_err("%s: path too long", opt);
		return HVMM_EXIT_USAGE;
	}
	strcpy(dir, path);
	const char *d = dirname(dir);
	if (access(d, W_OK | X_OK) < 0) {
		util_err("%s %s: cannot create it in %s: %s", opt, path, d, strerror(errno));
		return HVMM_EXIT_USAGE;
	}
	return 0;
}

int preflight_check(const struct vm_config *c)
{
	int r;
	/* --restore: the kernel is in the snapshot's RAM; an IMAGE given as
	 * well (the same command line again) is not read. */
	if (c->restore) {
		/* readable regular files; their sizes are the restore's to judge */
		if ((r = preflight_file("snapshot", c->restore, UINT64_MAX)))
			return r;
		if (c->restore_mem && (r = preflight_file("memory file", c->restore_mem, UINT64_MAX)))
			return r;
	} else if (!c->incoming && (r = preflight_file("image", c->image, c->mem_size))) {
		/* (--incoming: the RAM comes from the source, an IMAGE is not read) */
		return r;
	}
	if (c->initrd && (r = preflight_file("initrd", c->initrd, c->mem_size)))
		return r;
	for (int i = 0; i < c->nr_modules; i++)
		if ((r = preflight_file("module", c->modules[i].path, c->mem_size)))
			return r;
	for (int i = 0; i < c->nr_disks; i++) {
		const struct vm_disk *d = &c->disks[i];
		struct stat st;
		int e = access(d->path, d->readonly ? R_OK : R_OK | W_OK) < 0 ? errno
			: stat(d->path, &st) < 0 ? errno : 0;
		if (!e && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		if (e) {
			util_err("--disk %s: %s", d->path, strerror(e));
			return HVMM_EXIT_USAGE;
		}
	}
	for (int i = 0; i < c->nr_nets; i++) {
		struct net_spec ns;
		char err[256];
		if (net_parse_spec(c->net[i], &ns, err, sizeof(err)) < 0) {
			util_err("--network %s: %s", c->net[i], err);
			return HVMM_EXIT_USAGE;
		}
	}
	if (c->stats_json && (r = preflight_output("--stats-json", c->stats_json)))
		return r;
	if (c->timeline && (r = preflight_output("--timeline", c->timeline)))
		return r;
	if (c->serial == SERIAL_FILE && c->serial_path && (r = preflight_output("--serial", c->serial_path)))
		return r;
	return 0;
}
