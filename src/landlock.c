/*
 * landlock: see landlock.h. Uses the system calls directly: Debian's C
 * library has no wrappers, and its kernel headers stop at ABI 2, so the
 * later rights and the ruleset's later fields are spelled out here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock.h"

/* ABI 1: bits 0-12 (EXECUTE .. MAKE_SYM); 2: REFER; 3: TRUNCATE;
 * 5: IOCTL_DEV. ABI 4 adds network rights, which stay unhandled: the
 * caller still connects and binds wherever seccomp lets it. */
#define LL_FS_ABI1 ((1ULL << 13) - 1)
#define LL_FS_REFER (1ULL << 13)
#define LL_FS_TRUNCATE (1ULL << 14)
#define LL_FS_IOCTL_DEV (1ULL << 15)
#define LL_FS_READ_FILE (1ULL << 2)
/* ABI 6: scopes. */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; an older kernel accepts the
 * longer struct as long as the fields it does not know are zero. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

static uint64_t landlock_fs_rights(int abi)
{
	uint64_t r = LL_FS_ABI1;
	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

int landlock_restrict_to_reading(const char *const *paths, size_t n)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	struct ll_ruleset_attr attr = { .handled_access_fs = landlock_fs_rights(abi) };
	if (abi >= 6)
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
	int rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rfd < 0)
		return -errno;
	int r = 0;
	for (size_t i = 0; i < n && !r; i++) {
		/* O_PATH: the rule names the file itself (a symlink such as
		 * systemd's resolv.conf is followed to what it points at). */
		int fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct landlock_path_beneath_attr pb = { .allowed_access = LL_FS_READ_FILE, .parent_fd = fd };
		if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			r = -errno;
		close(fd);
	}
	if (!r && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
	if (!r && syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
		r = -errno;
	close(rfd);
	return r < 0 ? r : abi;
}
