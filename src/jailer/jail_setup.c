/* jailer: the privileged steps — the jail's files, the cgroup, the
 * namespaces, pivot_root, and giving up root. Each reports its own failure. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <mntent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jailer.h"

static int jail_fail(const char *what, const char *path)
{
	jail_err("%s %s: %s", what, path, strerror(errno));
	return JAIL_EXIT_SETUP;
}

int jail_check_files(const struct jail_cfg *cfg)
{
	struct stat st;
	if (geteuid() != 0) {
		jail_err("must be started as root (it makes device nodes, mounts and a cgroup, then "
			 "drops to --uid/--gid)");
		return JAIL_EXIT_SETUP;
	}
	errno = 0;
	if (stat(cfg->exec_file, &st) < 0 || !S_ISREG(st.st_mode)) {
		jail_err("--exec-file %s: %s", cfg->exec_file, errno ? strerror(errno) : "not a regular file");
		return JAIL_EXIT_USAGE;
	}
	for (int i = 0; i < cfg->nr_binds; i++) {
		const struct jail_bind *b = &cfg->binds[i];
		errno = 0;
		if (b->output)
			continue; /* hvmm creates it; the jailer makes it first (jail_make_tree) */
		if (stat(b->src, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
			jail_err("hvmm's %s %s: %s", b->name, b->src,
				 errno ? strerror(errno) : "not a regular file or block device");
			return JAIL_EXIT_USAGE;
		}
	}
	return 0;
}

/* mkdir that accepts an existing directory (not a symlink to one). */
static int jail_mkdir(const char *path, mode_t mode)
{
	struct stat st;
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (lstat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int jail_mkdirs(const char *path, size_t from)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + from + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (jail_mkdir(dir, 0755) < 0)
			return jail_fail("mkdir", dir);
		*p = '/';
	}
	return 0;
}

/* Copy src to dst (mode 0755, root's): through a temporary name, so a
 * reused jail never runs half a binary. */
int jail_copy(const char *src, const char *dst)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.new", dst);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return jail_fail("open", src);
	unlink(tmp);
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	if (out < 0) {
		close(in);
		return jail_fail("create", tmp);
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				close(in);
				close(out);
				return jail_fail("write", tmp);
			}
			off += w;
		}
	close(in);
	if (n < 0 || fchmod(out, 0755) < 0 || close(out) < 0)
		return jail_fail("copy to", tmp);
	if (rename(tmp, dst) < 0)
		return jail_fail("rename to", dst);
	return 0;
}

/* A character device like the host's path, at jail path dst. Missing on
 * the host: skipped (hvmm then names what it lacks, e.g. /dev/kvm). */
static int jail_node(const char *host, const char *dst, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;
	if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode))
		return 0;
	if (unlink(dst) < 0 && errno != ENOENT)
		return jail_fail("remove", dst);
	if (mknod(dst, S_IFCHR | mode, st.st_rdev) < 0)
		return jail_fail("mknod", dst);
	if (chown(dst, uid, gid) < 0 || chmod(dst, mode) < 0)
		return jail_fail("chown", dst);
	return 0;
}

int jail_make_tree(const struct jail_cfg *cfg, char *root, size_t len, bool *helper)
{
	char path[PATH_MAX];
	int r;
	/* <base> and <base>/hvmm may be shared by many jails: made if missing. */
	snprintf(path, sizeof(path), "%s", cfg->base);
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (jail_mkdir(path, 0755) < 0)
			return jail_fail("mkdir", path);
		*p = '/';
	}
	if (jail_mkdir(path, 0755) < 0)
		return jail_fail("mkdir", path);
	snprintf(path, sizeof(path), "%s/hvmm", cfg->base);
	if (jail_mkdir(path, 0755) < 0)
		return jail_fail("mkdir", path);
	snprintf(path, sizeof(path), "%s/hvmm/%s", cfg->base, cfg->id);
	if (mkdir(path, 0755) < 0) {
		if (errno != EEXIST)
			return jail_fail("mkdir", path);
		if (!cfg->reuse) {
			jail_err("jail %s exists already (--reuse to run in it again)", path);
			return JAIL_EXIT_EXISTS;
		}
		if (jail_mkdir(path, 0755) < 0)
			return jail_fail("reuse", path);
	}
	if ((size_t)snprintf(root, len, "%s/root", path) >= len) {
		jail_err("--chroot-base-dir %s: path too long", cfg->base);
		return JAIL_EXIT_USAGE;
	}
	/* The root and everything in it but the device nodes and output files
	 * stay root's: the jailed hvmm can change nothing there, so a reused
	 * jail holds only what the jailer put in it. */
	if (jail_mkdir(root, 0755) < 0 || chown(root, 0, 0) < 0 || chmod(root, 0755) < 0)
		return jail_fail("make", root);
	/* hvmm is linked statically; a dynamic build (the sanitizer one)
	 * brings its libraries along the way the slirp helper does. */
	snprintf(path, sizeof(path), "%s/hvmm", root);
	if ((r = jail_copy(cfg->exec_file, path)) || (r = jail_copy_libs(cfg->exec_file, root)))
		return r;
	/* The slirp helper hvmm starts for --network user, from beside hvmm,
	 * with the libraries it is linked with. */
	char src[PATH_MAX];
	snprintf(src, sizeof(src), "%s", cfg->exec_file);
	char *slash = strrchr(src, '/');
	snprintf(slash ? slash + 1 : src, sizeof(src) - (size_t)(slash ? slash + 1 - src : 0), "hvmm-net-slirp");
	*helper = cfg->net_user && access(src, X_OK) == 0;
	if (*helper) {
		snprintf(path, sizeof(path), "%s/hvmm-net-slirp", root);
		if ((r = jail_copy(src, path)) || (r = jail_copy_libs(src, root)))
			return r;
	}
	static const char *const dirs[] = { "dev", "dev/net" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
		if (jail_mkdir(path, 0755) < 0 || chown(path, 0, 0) < 0)
			return jail_fail("mkdir", path);
	}
	static const struct {
		const char *path;
		mode_t mode;
		bool owned; /* by uid:gid, as only hvmm opens it */
	} nodes[] = {
		{ "/dev/kvm", 0600, true },
		{ "/dev/net/tun", 0600, true },
		{ "/dev/urandom", 0666, false },
		{ "/dev/null", 0666, false }, /* the slirp helper's stdin */
	};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", root, nodes[i].path);
		if ((r = jail_node(nodes[i].path, path, nodes[i].mode, nodes[i].owned ? cfg->uid : 0,
				   nodes[i].owned ? cfg->gid : 0)))
			return r;
	}
	/* The mount points of the files hvmm's command line names. */
	for (int i = 0; i < cfg->nr_binds; i++) {
		const struct jail_bind *b = &cfg->binds[i];
		if (b->output) {
			/* hvmm's output file, at the caller's path: made here when
			 * missing, owned by the jail's user, who writes it. */
			int fd = open(b->src, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
			if (fd >= 0 && fchown(fd, cfg->uid, cfg->gid) < 0) {
				close(fd);
				return jail_fail("chown", b->src);
			}
			if (fd < 0 && errno != EEXIST) {
				jail_err("hvmm's %s %s: %s", b->name, b->src, strerror(errno));
				return JAIL_EXIT_USAGE;
			}
			if (fd >= 0)
				close(fd);
		}
		snprintf(path, sizeof(path), "%s/%s", root, b->name);
		if (unlink(path) < 0 && errno != ENOENT)
			return jail_fail("remove", path);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
		if (fd < 0)
			return jail_fail("create", path);
		close(fd);
	}
	return 0;
}

/* The cgroup v2 mount point, from /proc/self/mounts. */
static int jail_cgroup_root(char *out, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	int r = -1;
	while (f && (m = getmntent(f)))
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(out, len, "%s", m->mnt_dir);
			r = 0;
			break;
		}
	if (f)
		endmntent(f);
	return r;
}

/* Write s to dir/file. 0 or -errno. */
static int jail_write(const char *dir, const char *file, const char *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

static int jail_cgroup_setup(const struct jail_cfg *cfg, const char *mnt, const char *dir)
{
	char level[PATH_MAX], ctl[80];
	int e;
	for (int i = 0; i < cfg->nr_cgroup; i++) {
		const struct jail_cgroup_set *c = &cfg->cgroup[i];
		/* The controller must be on in every group above the VM's. */
		snprintf(ctl, sizeof(ctl), "+%.*s", (int)(strchr(c->file, '.') - c->file), c->file);
		snprintf(level, sizeof(level), "%s/%s", mnt, cfg->parent_cgroup);
		size_t top = strlen(mnt);
		for (char *p = level + top;; p++) {
			char keep = *p;
			if (keep && keep != '/')
				continue;
			*p = 0;
			e = jail_write(level, "cgroup.subtree_control", ctl);
			*p = keep;
			if (e) {
				jail_err("--cgroup %s: cannot enable the %s controller in %.*s: %s", c->file, ctl + 1,
					 (int)(p - level), level, strerror(-e));
				return e == -ENOENT || e == -EINVAL ? JAIL_EXIT_USAGE : JAIL_EXIT_SETUP;
			}
			if (!keep)
				break;
		}
		if ((e = jail_write(dir, c->file, c->value))) {
			if (e == -ENOENT)
				jail_err("--cgroup %s: no such file in a cgroup v2 group", c->file);
			else
				jail_err("--cgroup %s=%s: %s", c->file, c->value, strerror(-e));
			return JAIL_EXIT_USAGE;
		}
	}
	snprintf(ctl, sizeof(ctl), "%d", (int)getpid());
	if ((e = jail_write(dir, "cgroup.procs", ctl))) {
		jail_err("joining cgroup %s: %s", dir, strerror(-e));
		return JAIL_EXIT_SETUP;
	}
	return 0;
}

int jail_cgroup(const struct jail_cfg *cfg, bool *created, char *dir, size_t len)
{
	char mnt[1024], path[PATH_MAX];
	*created = false;
	if (cfg->nr_cgroup == 0)
		return 0; /* no limits asked for: hvmm stays in the caller's group */
	if (jail_cgroup_root(mnt, sizeof(mnt)) < 0) {
		jail_err("--cgroup: no cgroup v2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
		return JAIL_EXIT_SETUP;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", mnt, cfg->parent_cgroup) >= sizeof(path) - JAIL_ID_MAX - 1) {
		jail_err("cgroup path too long");
		return JAIL_EXIT_USAGE;
	}
	for (char *p = path + strlen(mnt) + 1;; p++) {
		char keep = *p;
		if (keep && keep != '/')
			continue;
		*p = 0;
		if (jail_mkdir(path, 0755) < 0)
			return jail_fail("mkdir", path);
		*p = keep;
		if (!keep)
			break;
	}
	if ((size_t)snprintf(dir, len, "%s/%s", path, cfg->id) >= len) {
		jail_err("cgroup path too long");
		return JAIL_EXIT_USAGE;
	}
	if (mkdir(dir, 0755) < 0) {
		if (errno != EEXIST)
			return jail_fail("mkdir", dir);
		if (!cfg->reuse) {
			jail_err("cgroup %s exists already (--reuse to run in it again)", dir);
			return JAIL_EXIT_EXISTS;
		}
	} else {
		*created = true;
	}
	int r = jail_cgroup_setup(cfg, mnt, dir);
	if (r && *created) {
		rmdir(dir); /* the one thing made so far that only this run would own */
		*created = false;
	}
	return r;
}

int jail_namespaces(const struct jail_cfg *cfg, int netns_fd)
{
	if (netns_fd >= 0) {
		if (setns(netns_fd, CLONE_NEWNET) < 0)
			return jail_fail("setns", cfg->netns);
		close(netns_fd);
	}
	int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	if (netns_fd < 0)
		flags |= CLONE_NEWNET; /* a new one has only a loopback, and that down */
	if (unshare(flags) < 0)
		return jail_fail("unshare", "namespaces");
	if (sethostname(cfg->id, strlen(cfg->id)) < 0)
		return jail_fail("sethostname", cfg->id);
	return 0;
}

int jail_enter(const struct jail_cfg *cfg, const char *root)
{
	char path[PATH_MAX];
	/* Nothing mounted from here on may show in the host's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return jail_fail("make private", "/");
	for (int i = 0; i < cfg->nr_binds; i++) {
		const struct jail_bind *b = &cfg->binds[i];
		snprintf(path, sizeof(path), "%s/%s", root, b->name);
		if (mount(b->src, path, NULL, MS_BIND, NULL) < 0)
			return jail_fail("bind mount", b->src);
		if (b->readonly && mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
					 NULL) < 0)
			return jail_fail("read-only remount", path);
	}
	/* pivot_root wants the new root to be a mount point; MS_REC brings the
	 * file binds above along. */
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return jail_fail("bind mount", root);
	if (chdir(root) < 0)
		return jail_fail("chdir", root);
	/* pivot_root(".", "."): the old root ends up stacked on the new one and
	 * is detached at once, so no old_root directory is needed. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return jail_fail("pivot_root", root);
	if (umount2(".", MNT_DETACH) < 0)
		return jail_fail("detach the old root", "/");
	if (chroot(".") < 0 || chdir("/") < 0)
		return jail_fail("chroot", root);
	return 0;
}

int jail_drop(const struct jail_cfg *cfg)
{
	if (setgroups(0, NULL) < 0)
		return jail_fail("setgroups", "[]");
	if (setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
		return jail_fail("setresgid", "--gid");
	/* The bounding set limits what any later exec could gain; ambient
	 * capabilities would survive the exec. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return jail_fail("drop the bounding set", "capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return jail_fail("clear", "ambient capabilities");
	if (setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
		return jail_fail("setresuid", "--uid");
	/* Leaving uid 0 cleared the permitted and effective sets; the
	 * inheritable one stays unless cleared. */
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return jail_fail("capset", "0");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return jail_fail("set", "no_new_privs");
	if (syscall(SYS_capget, &hdr, data) < 0)
		return jail_fail("capget", "self");
	if (data[0].effective | data[0].permitted | data[0].inheritable | data[1].effective |
	    data[1].permitted | data[1].inheritable || getuid() == 0 || geteuid() == 0) {
		jail_err("capabilities or root left after dropping them");
		return JAIL_EXIT_SETUP;
	}
	return 0;
}
