/*
 * kvm-host-init: PID 1 of the nested KVM host that scripts/kvm-host boots.
 *
 * The machine it runs in is QEMU TCG emulating an AMD CPU with SVM; this
 * program turns that machine into a KVM host that looks like the caller's
 * own: it loads KVM (kvm_amd) and the virtio drivers from the initramfs,
 * mounts the caller's / read-only over virtio-9p with tmpfs on the scratch
 * directories and the shared directory read-write on top, brings loopback
 * up, mounts cgroup v2 on /sys/fs/cgroup, chroots there and runs the one
 * command it was given, with its output
 * on two virtio-serial ports ("stdout", "stderr").
 *
 * It talks to the launcher through the serial console, one marker line per
 * event ("@@KVMHOST:READY", ":ERROR msg", ":TIMEOUT", ":EXIT n",
 * ":SIGNAL n"), then powers the machine off. Whatever goes wrong, it ends in
 * a marker and a power-off, never in a hang: the launcher has its own
 * watchdog for the case where the kernel itself is lost.
 *
 * The run's parameters come in files the launcher appends to the initramfs
 * (/spec/): argv and env (NUL-separated), cwd, share, timeout, thp (the
 * caller's transparent-huge-page policy, or empty), modules (load order, one
 * per line).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NEWROOT "/newroot"

static int console_fd = 2;

static void mark(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "\n@@KVMHOST:");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(console_fd, buf, (size_t)n) < 0) {
		/* nowhere left to say it */
	}
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Only reached if the power-off failed: a halted PID 1 would panic the
	 * kernel (panic=-1 then reboots, and QEMU's -no-reboot stops). */
	for (;;)
		pause();
}

static void fail(const char *fmt, ...)
{
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mark("ERROR %s", msg);
	power_off();
}

/* The whole of a small file, NUL-terminated; *len excludes the NUL. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("spec file %s: %s", path, strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		if (!buf)
			fail("out of memory reading %s", path);
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0)
			fail("reading %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* A NUL-separated list as a NULL-terminated vector. */
static char **split0(char *buf, size_t len)
{
	size_t count = 0;
	for (size_t i = 0; i < len; i++)
		count += buf[i] == 0;
	char **v = calloc(count + 2, sizeof(*v));
	if (!v)
		fail("out of memory");
	size_t k = 0;
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		v[k++] = buf + i;
	v[k] = NULL;
	return v;
}

static char *chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *opts)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, opts) < 0)
		fail("mount %s (%s) on %s: %s", src, type, dst, strerror(errno));
}

static void load_modules(void)
{
	char *list = slurp("/spec/modules", NULL);
	for (char *save = NULL, *name = strtok_r(list, "\n", &save); name;
	     name = strtok_r(NULL, "\n", &save)) {
		char path[256];
		snprintf(path, sizeof(path), "/modules/%s", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail("module %s is missing from the initramfs: %s", name, strerror(errno));
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST) {
			int e = errno;
			if (strncmp(name, "kvm-amd", 7) == 0 && e == ENODEV)
				fail("module %s did not load: %s (no SVM in the emulated CPU)", name,
				     strerror(e));
			fail("module %s did not load: %s", name, strerror(e));
		}
		close(fd);
	}
	free(list);
}

/* The emulated CPU must offer SVM, or KVM has nothing to run on. */
static void check_svm(void)
{
	char *info = slurp("/proc/cpuinfo", NULL);
	char *flags = strstr(info, "\nflags");
	char *end = flags ? strchr(flags + 1, '\n') : NULL;
	if (end)
		*end = 0;
	if (!flags || !strstr(flags, " svm"))
		fail("no SVM in the emulated CPU (its cpuinfo flags lack svm)");
	free(info);
}

/* Sleep ms milliseconds. */
static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The device node of the virtio-serial port called name: ports appear when
 * the device announces them, a little after the driver bound. */
static int open_port(const char *name)
{
	for (int tries = 0; tries < 1000; tries++) {
		glob_t g;
		if (glob("/sys/class/virtio-ports/*/name", 0, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++) {
				char *n = slurp(g.gl_pathv[i], NULL);
				if (strcmp(chomp(n), name) == 0) {
					char dev[128];
					const char *base = g.gl_pathv[i] + strlen("/sys/class/virtio-ports/");
					snprintf(dev, sizeof(dev), "/dev/%.*s", (int)(strchr(base, '/') - base),
						 base);
					int fd = open(dev, O_WRONLY | O_CLOEXEC);
					free(n);
					if (fd >= 0) {
						globfree(&g);
						return fd;
					}
				} else {
					free(n);
				}
			}
			globfree(&g);
		}
		nap(10);
	}
	fail("virtio-serial port %s did not appear", name);
	return -1;
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		fail("loopback: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fail("loopback up: %s", strerror(errno));
	close(s);
}

/* The caller's view of the files: its / read-only, scratch directories on
 * tmpfs, the shared directory read-write over whatever is beneath it. */
static void build_root(const char *share)
{
	const char *ninep = "trans=virtio,version=9p2000.L,msize=1048576";
	char opts[256];
	/* The host does not change its files while the command runs, so the
	 * read-only root may cache them (exec and imports go ~10x faster); the
	 * share stays uncached so that what the command writes is on the host
	 * the moment it is written. */
	snprintf(opts, sizeof(opts), "%s,cache=loose", ninep);
	do_mount("hostroot", NEWROOT, "9p", MS_RDONLY, opts);
	do_mount("proc", NEWROOT "/proc", "proc", 0, NULL);
	do_mount("sysfs", NEWROOT "/sys", "sysfs", 0, NULL);
	/* cgroup v2 where systemd puts it: hvmm-jailer makes its groups there. */
	do_mount("cgroup2", NEWROOT "/sys/fs/cgroup", "cgroup2", 0, "nsdelegate");
	do_mount("devtmpfs", NEWROOT "/dev", "devtmpfs", 0, NULL);
	do_mount("devpts", NEWROOT "/dev/pts", "devpts", 0, "ptmxmode=0666,mode=0620");
	do_mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", 0, "mode=1777");
	static const char *const scratch[] = { "/tmp", "/var/tmp", "/run" };
	for (size_t i = 0; i < sizeof(scratch) / sizeof(scratch[0]); i++) {
		char dst[256];
		snprintf(dst, sizeof(dst), NEWROOT "%s", scratch[i]);
		do_mount("tmpfs", dst, "tmpfs", 0, "mode=1777");
	}
	if (*share) {
		char dst[4096];
		snprintf(dst, sizeof(dst), NEWROOT "%s", share);
		/* The share may lie inside a scratch tmpfs (a clone in /tmp): make
		 * its mount point there, as the host has it. */
		char *p = dst + strlen(NEWROOT);
		while ((p = strchr(p + 1, '/'))) {
			*p = 0;
			mkdir(dst, 0755);
			*p = '/';
		}
		snprintf(opts, sizeof(opts), "%s,cache=none", ninep);
		do_mount("share", dst, "9p", 0, opts);
	}
}

/* Run the command; returns its wait status, or -1 when the timeout ended it. */
static int run_command(char **argv, char **envp, const char *cwd, long timeout_s, int out,
		       int err)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		setsid();
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(125);
		if (chdir(cwd) < 0) {
			dprintf(2, "kvm-host: cd %s: %s\n", cwd, strerror(errno));
			_exit(125);
		}
		/* execvp searches the PATH of environ: the caller's. */
		environ = envp;
		execvp(argv[0], argv);
		int e = errno;
		dprintf(2, "kvm-host: %s: %s\n", argv[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	for (;;) {
		int st;
		pid_t w;
		/* PID 1 reaps every orphan; only the command's own status counts. */
		while ((w = waitpid(-1, &st, WNOHANG)) > 0)
			if (w == pid)
				return st;
		struct timespec now, left;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = deadline.tv_sec - now.tv_sec;
		left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			return -1;
		sigtimedwait(&chld, NULL, &left);
	}
}

int main(void)
{
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	console_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (console_fd < 0)
		console_fd = 2;
	do_mount("proc", "/proc", "proc", 0, NULL);
	do_mount("sysfs", "/sys", "sysfs", 0, NULL);

	size_t alen, elen;
	char *abuf = slurp("/spec/argv", &alen), *ebuf = slurp("/spec/env", &elen);
	char **argv = split0(abuf, alen), **envp = split0(ebuf, elen);
	char *cwd = chomp(slurp("/spec/cwd", NULL));
	char *share = chomp(slurp("/spec/share", NULL));
	long timeout_s = atol(slurp("/spec/timeout", NULL));
	if (!argv[0] || timeout_s <= 0)
		fail("bad spec: no command or no timeout");

	char *thp = chomp(slurp("/spec/thp", NULL));
	if (*thp) {
		int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, thp, strlen(thp)) < 0)
			fail("transparent_hugepage/enabled = %s: %s", thp, strerror(errno));
		close(fd);
	}

	check_svm();
	load_modules();
	if (access("/dev/kvm", R_OK | W_OK) < 0)
		fail("kvm_amd loaded but /dev/kvm is not usable: %s", strerror(errno));
	int out = open_port("stdout"), err = open_port("stderr");
	loopback_up();
	sethostname("kvm-host", 8);
	build_root(share);
	if (chroot(NEWROOT) < 0 || chdir("/") < 0)
		fail("chroot: %s", strerror(errno));

	struct timespec up;
	clock_gettime(CLOCK_BOOTTIME, &up);
	mark("READY %ld.%03ld", (long)up.tv_sec, up.tv_nsec / 1000000L);
	int st = run_command(argv, envp, cwd, timeout_s, out, err);
	/* Nothing the command started outlives it. */
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	/* The ports' back ends are plain files on the host, which never push
	 * back, and QEMU TCG handles a queue notify on the writing vCPU: each
	 * write to a port was in the host's file when it returned, so the
	 * output is complete before the status goes out. */
	if (st < 0)
		mark("TIMEOUT %ld", timeout_s);
	else if (WIFSIGNALED(st))
		mark("SIGNAL %d", WTERMSIG(st));
	else
		mark("EXIT %d", WEXITSTATUS(st));
	power_off();
	return 0;
}
