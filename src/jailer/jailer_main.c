/* hvmm-jailer: check → jail tree → cgroup → [PID namespace, fork] → the
 * other namespaces → pivot_root → drop root → exec /hvmm. The order matters:
 * see each step's comment. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jailer.h"

static int jail_write_pid(const struct jail_cfg *cfg, pid_t pid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/hvmm/%s/hvmm.pid", cfg->base, cfg->id);
	FILE *f = fopen(path, "we");
	if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0) {
		jail_err("writing %s: %s", path, strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	return 0;
}

/* The parent outside the new PID namespace: passes the caller's stop
 * signals on and returns hvmm's status as a shell would (128+N). */
static int jail_wait(pid_t child, const sigset_t *set)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int st;
		pid_t w = waitpid(child, &st, WNOHANG);
		if (w == child)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

static int jail_run(struct jail_cfg *cfg)
{
	char root[PATH_MAX], cg[PATH_MAX];
	bool helper = false, cg_made = false;
	int r;
	if ((r = jail_check_files(cfg)))
		return r;
	/* Only stdin, stdout and stderr go into the jail. */
	if (close_range(3, ~0U, 0) < 0) {
		jail_err("close_range: %s", strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	int netns_fd = -1, null_fd = -1;
	if (cfg->netns && (netns_fd = open(cfg->netns, O_RDONLY | O_CLOEXEC)) < 0) {
		jail_err("--netns %s: %s", cfg->netns, strerror(errno));
		return JAIL_EXIT_USAGE;
	}
	if (cfg->daemonize && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		jail_err("/dev/null: %s", strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	if ((r = jail_make_tree(cfg, root, sizeof(root), &helper)))
		return r;
	/* Joined before the fork: hvmm and all it starts are charged there. */
	if ((r = jail_cgroup(cfg, &cg_made, cg, sizeof(cg))))
		return r;
	/* Only the PID namespace is the parent's to unshare (it takes effect
	 * for its children): the others are the child's alone, as a pivot_root
	 * moves every process of the mount namespace into the jail. */
	if (cfg->new_pid_ns && unshare(CLONE_NEWPID) < 0) {
		jail_err("unshare the PID namespace: %s", strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	sigset_t set, none;
	sigemptyset(&set);
	sigemptyset(&none);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (cfg->new_pid_ns || cfg->daemonize) {
		/* The child is PID 1 of the new namespace (--new-pid-ns), and not
		 * a process group leader, so setsid works (--daemonize). */
		sigprocmask(SIG_BLOCK, &set, NULL);
		pid_t pid = fork();
		if (pid < 0) {
			jail_err("fork: %s", strerror(errno));
			return JAIL_EXIT_SETUP;
		}
		if (pid > 0) {
			if ((r = jail_write_pid(cfg, pid))) {
				kill(pid, SIGKILL);
				return r;
			}
			/* _exit: an at-exit handler that forks (a sanitizer's leak
			 * check) would fork into the new PID namespace, whose PID 1
			 * may be gone, and fail. Nothing is buffered: stderr is not. */
			_exit(cfg->daemonize ? 0 : jail_wait(pid, &set));
		}
		sigprocmask(SIG_SETMASK, &none, NULL);
	} else if ((r = jail_write_pid(cfg, getpid()))) {
		return r;
	}
	if ((r = jail_namespaces(cfg, netns_fd)))
		return r;
	if (cfg->daemonize && (setsid() < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 ||
			       dup2(null_fd, 2) < 0)) {
		jail_err("daemonize: %s", strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	if ((r = jail_enter(cfg, root)) || (r = jail_drop(cfg)))
		return r;
	/* A clean environment: nothing of the caller's reaches hvmm. */
	char *env[] = { helper ? "HVMM_NET_SLIRP=/hvmm-net-slirp" : NULL, NULL };
	execve("/hvmm", cfg->hvmm_argv, env);
	jail_err("exec /hvmm in %s: %s", root, strerror(errno));
	return JAIL_EXIT_SETUP;
}

int main(int argc, char **argv)
{
	struct jail_cfg cfg;
	bool done;
	int r = jail_parse(argc, argv, &cfg, &done);
	if (r == 0 && !done)
		r = jail_run(&cfg);
	jail_cfg_free(&cfg);
	return r;
}
