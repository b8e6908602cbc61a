/*
 * jailer: hvmm-jailer, the program a root-owned host service starts instead of
 * hvmm to run one VM confined: its own chroot, uid/gid, cgroup v2 group and
 * mount/PID/network/IPC/UTS namespaces, no capabilities, no_new_privs.
 *
 * jail_args.c is the pure part (the jailer's options, and hvmm's command line
 * rewritten to the paths the files get inside the jail): unit-tested without
 * root. jail_setup.c does the privileged steps, jailer_main.c orders them.
 */
#ifndef HVMM_JAILER_H
#define HVMM_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The jailer's own exit statuses. Even, and none of hvmm's (0, 2, 4, 6, 8,
 * 10, 124, 128+N; odd ones belong to the guest): once hvmm runs, its status
 * is the jailer's, so a caller can tell who stopped.
 */
enum jail_exit {
	JAIL_EXIT_USAGE = 12,  /* bad option or value, a file named on hvmm's command line missing */
	JAIL_EXIT_EXISTS = 14, /* the jail directory or cgroup exists and --reuse was not given */
	JAIL_EXIT_SETUP = 16,  /* not root, or a set-up step failed (named in the message) */
};

#define JAIL_ID_MAX 64
#define JAIL_MAX_CGROUP 16
#define JAIL_MAX_BINDS 32
#define JAIL_MAX_STORE (2 * JAIL_MAX_BINDS)
#define JAIL_DEFAULT_BASE "/srv/jailer"
#define JAIL_DEFAULT_PARENT_CGROUP "hvmm"

struct jail_cgroup_set {
	char file[64];   /* memory.max */
	const char *value;
};

/* A host file that appears inside the jail at /name (a bind mount). */
struct jail_bind {
	const char *src;
	char name[16];   /* kernel, initrd, module0, disk0, serial, stats.json */
	bool readonly;
	bool output;     /* created by the jailer (owned by uid:gid) when missing */
};

struct jail_cfg {
	const char *id;
	const char *exec_file;
	const char *base;
	const char *netns;
	const char *parent_cgroup;
	uid_t uid;
	gid_t gid;
	struct jail_cgroup_set cgroup[JAIL_MAX_CGROUP];
	int nr_cgroup;
	bool new_pid_ns, daemonize, reuse;
	bool net_user; /* hvmm's --network user: its slirp helper goes into the jail */
	/* hvmm's command line as it runs in the jail: "/hvmm", "run", ... NULL
	 * (malloc'd vector; the strings point into the caller's argv or into
	 * store). */
	char **hvmm_argv;
	char *store[JAIL_MAX_STORE];
	int nr_store;
	struct jail_bind binds[JAIL_MAX_BINDS];
	int nr_binds;
};

/* Parse the jailer's argv into cfg. 0, or an exit status after one
 * "hvmm-jailer: ..." line on stderr (*done: --help was answered). */
int jail_parse(int argc, char **argv, struct jail_cfg *cfg, bool *done);
/* hvmm's arguments (after "--"; argv[0] must be "run") into cfg->hvmm_argv
 * and cfg->binds. 0, or JAIL_EXIT_USAGE after one line on stderr. */
int jail_rewrite(int argc, char **argv, struct jail_cfg *cfg);
void jail_cfg_free(struct jail_cfg *cfg);
/* hvmm's options that take a value (NULL-terminated), as src/main.c has them. */
extern const char *const jail_hvmm_value_opts[];
/* "hvmm-jailer: <msg>" on stderr. */
void jail_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* jail_setup.c: each returns 0, or an exit status after one line. */
int jail_check_files(const struct jail_cfg *cfg);
int jail_make_tree(const struct jail_cfg *cfg, char *root, size_t len, bool *helper);
int jail_cgroup(const struct jail_cfg *cfg, bool *created, char *dir, size_t len);
int jail_namespaces(const struct jail_cfg *cfg, int netns_fd);
int jail_enter(const struct jail_cfg *cfg, const char *root);
int jail_drop(const struct jail_cfg *cfg);
/* Copy src to dst (0755, root's) / make dst's directories below from. */
int jail_copy(const char *src, const char *dst);
int jail_mkdirs(const char *path, size_t from);
/* jail_elf.c: exe's ELF interpreter and shared libraries into root. */
int jail_copy_libs(const char *exe, const char *root);

#endif
