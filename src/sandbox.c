/* sandbox: per-thread seccomp allow-lists built with libseccomp (sandbox.h). */
#include "sandbox.h"
#include "landlock.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <grp.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const sandbox_names[SANDBOX_KINDS] = {
	[SANDBOX_MAIN] = "main",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_EVLOOP] = "evloop",
	[SANDBOX_SERIAL] = "serial",
	[SANDBOX_NET_HELPER] = "net-helper",
	[SANDBOX_API] = "api",
};

/*
 * The SIGSYS handler may call nothing that allocates or locks, so whatever it
 * prints is prepared here, before any filter exists: the program's name and
 * a name for every system call number (libseccomp's table, resolved once).
 */
#define SANDBOX_MAX_NR 512
static bool sandbox_on;
static const char *sandbox_prog = "hvmm";
static int sandbox_status = 1;
static void (*sandbox_hook)(void);
static char *sandbox_sysname[SANDBOX_MAX_NR];
static __thread int sandbox_self = -1; /* the kind this thread entered */

const char *sandbox_kind_name(enum sandbox_kind kind)
{
	return (unsigned)kind < SANDBOX_KINDS ? sandbox_names[kind] : "?";
}

bool sandbox_enabled(void)
{
	return sandbox_on;
}

/* ---- the violation report: async-signal-safe only ---- */

struct sandbox_line {
	char buf[320];
	size_t len;
};

static void sandbox_put(struct sandbox_line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void sandbox_put_num(struct sandbox_line *l, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < (int)sizeof(tmp));
	if (base == 16)
		sandbox_put(l, "0x");
	while (n > 0 && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = tmp[--n];
}

static void sandbox_sigsys(int sig, siginfo_t *si, void *uc_)
{
	(void)sig;
	ucontext_t *uc = uc_;
	int nr = si->si_syscall;
	struct sandbox_line l = { .len = 0 };
	sandbox_put(&l, sandbox_prog);
	sandbox_put(&l, ": seccomp: the ");
	sandbox_put(&l, sandbox_self >= 0 ? sandbox_names[sandbox_self] : "?");
	sandbox_put(&l, " thread made a forbidden system call: ");
	if (nr >= 0 && nr < SANDBOX_MAX_NR && sandbox_sysname[nr])
		sandbox_put(&l, sandbox_sysname[nr]);
	else
		sandbox_put(&l, "?");
	sandbox_put(&l, " (nr ");
	sandbox_put_num(&l, (unsigned)nr, 10);
	/* The first three arguments: which ioctl request, socket family or
	 * open flags it was is what tells a missing rule from an attack. */
	static const int regs[3] = { REG_RDI, REG_RSI, REG_RDX };
	sandbox_put(&l, ", args");
	for (int i = 0; i < 3; i++) {
		sandbox_put(&l, " ");
		sandbox_put_num(&l, (unsigned long long)uc->uc_mcontext.gregs[regs[i]], 16);
	}
	sandbox_put(&l, "); stopping\n");
	ssize_t w = write(STDERR_FILENO, l.buf, l.len);
	(void)w;
	if (sandbox_hook)
		sandbox_hook();
	/* The raw system call, not _exit(): a sanitizer's _exit interceptor
	 * runs its leak check first, which needs calls no list allows. */
	syscall(SYS_exit_group, sandbox_status);
	_exit(sandbox_status); /* not reached */
}

int sandbox_init(bool enabled, const char *prog, int exit_status, void (*on_violation)(void))
{
	sandbox_on = enabled;
	sandbox_prog = prog;
	sandbox_status = exit_status;
	sandbox_hook = on_violation;
	if (!enabled)
		return 0;
	/* glibc shrinks a thread's heap in place only after reading
	 * /proc/sys/vm/overcommit_memory, an open no thread's list allows (the
	 * API thread frees 64 KiB request buffers and statistics documents). A
	 * trim threshold no heap reaches keeps it from trying: freed memory
	 * stays with the heap, and whole heaps still go back by munmap. (The
	 * sanitizer build's allocator is not glibc's and refuses the call.) */
	(void)mallopt(M_TRIM_THRESHOLD, 1 << 30);
	for (int nr = 0; nr < SANDBOX_MAX_NR; nr++)
		sandbox_sysname[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	struct sigaction sa = { .sa_sigaction = sandbox_sigsys, .sa_flags = SA_SIGINFO };
	sigfillset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

/* ---- the lists ---- */

/* A rule that fails to add is a bug in the list, never a reason to run
 * unconfined: every error is carried to sandbox_enter's caller. */
struct sandbox_build {
	scmp_filter_ctx ctx;
	int err;
};

static void sandbox_allow(struct sandbox_build *b, int nr)
{
	int r = seccomp_rule_add(b->ctx, SCMP_ACT_ALLOW, nr, 0);
	if (r < 0 && !b->err)
		b->err = r;
}

static void sandbox_allow_list(struct sandbox_build *b, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sandbox_allow(b, nrs[i]);
}

/* Allow syscall `nr` only when argument `arg` equals `val`. */
static void sandbox_allow_arg(struct sandbox_build *b, int nr, unsigned arg, uint64_t val)
{
	int r = seccomp_rule_add(b->ctx, SCMP_ACT_ALLOW, nr, 1,
				 (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_EQ, .datum_a = val });
	if (r < 0 && !b->err)
		b->err = r;
}

/* Allow syscall `nr` only when (argument `arg` & mask) == val. */
static void sandbox_allow_masked(struct sandbox_build *b, int nr, unsigned arg, uint64_t mask,
				 uint64_t val)
{
	int r = seccomp_rule_add(b->ctx, SCMP_ACT_ALLOW, nr, 1,
				 (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_MASKED_EQ,
							.datum_a = mask, .datum_b = val });
	if (r < 0 && !b->err)
		b->err = r;
}

static void sandbox_allow_ioctls(struct sandbox_build *b, const unsigned long *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sandbox_allow_arg(b, SCMP_SYS(ioctl), 1, reqs[i]);
}

/*
 * What every thread of hvmm does whatever its job: locks (futex), the heap
 * (never an executable mapping: nothing is loaded after start-up), time,
 * error lines on stderr, signals to its own threads only, and its own end.
 */
static void sandbox_common(struct sandbox_build *b)
{
	static const int nrs[] = {
		SCMP_SYS(futex), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(brk),
		SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap),
		SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
		SCMP_SYS(gettimeofday), SCMP_SYS(getpid), SCMP_SYS(gettid),
		SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
		SCMP_SYS(sched_yield), SCMP_SYS(exit), SCMP_SYS(exit_group),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
#if defined(__SANITIZE_ADDRESS__)
	/* The sanitizer runtime looks at the signal stack in its interceptors
	 * (only in that build, whose hvmm defaults to --seccomp off: main.c). */
	sandbox_allow(b, SCMP_SYS(sigaltstack));
#endif
	sandbox_allow_masked(b, SCMP_SYS(mmap), 2, PROT_EXEC, 0);
	sandbox_allow_masked(b, SCMP_SYS(mprotect), 2, PROT_EXEC, 0);
	/* pthread_kill: tgkill to this process's own threads (vm_stop's kicks
	 * and wake-up). */
	sandbox_allow_arg(b, SCMP_SYS(tgkill), 0, (uint64_t)getpid());
}

/* The terminal: raw mode restored (every thread may end hvmm, and the
 * violation handler restores it too) and isatty(). */
static const unsigned long sandbox_tty_ioctls[] = { TCGETS, TCSETS, TCSETSW, TCSETSF };

/* Interrupts and the devices' KVM plumbing a device model may touch while
 * the guest runs: lines, MSIs, the IOAPIC's routes, irqfds (MSI-X vector
 * set-up) and ioeventfds (a BAR moved, pci-testdev). */
static const unsigned long sandbox_kvm_device_ioctls[] = {
	KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD,
};

static bool sandbox_passthrough;

void sandbox_allow_passthrough(void)
{
	sandbox_passthrough = true;
}

static void sandbox_vcpu(struct sandbox_build *b)
{
	if (sandbox_passthrough) {
		static const unsigned long vfio[] = { KVM_SET_USER_MEMORY_REGION, VFIO_DEVICE_SET_IRQS };
		static const int vfio_nrs[] = { SCMP_SYS(pread64), SCMP_SYS(pwrite64) };
		sandbox_allow_ioctls(b, vfio, ARRAY_LEN(vfio));
		sandbox_allow_list(b, vfio_nrs, ARRAY_LEN(vfio_nrs));
	}
	static const unsigned long reqs[] = {
		KVM_RUN,
		KVM_INTERRUPT, /* the 8259's ExtINT into the boot vCPU (pic.c) */
		/* the crash dump and S3's resume at the waking vector */
		KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_TRANSLATE,
		KVM_NMI, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, /* --inject (inject.c) */
		/* --irqchip user: the guest's TSC for IA32_TSC_DEADLINE, and
		 * IA32_APIC_BASE handed to KVM (its CPUID.1:EDX.APIC follows it) */
		KVM_GET_MSRS, KVM_SET_MSRS,
	};
	sandbox_allow_ioctls(b, reqs, ARRAY_LEN(reqs));
	sandbox_allow_ioctls(b, sandbox_kvm_device_ioctls, ARRAY_LEN(sandbox_kvm_device_ioctls));
	sandbox_allow_ioctls(b, sandbox_tty_ioctls, ARRAY_LEN(sandbox_tty_ioctls));
	static const int nrs[] = {
		SCMP_SYS(read),  /* eventfd counters */
		SCMP_SYS(poll),  /* util_write_out: the UART's output waits for room */
		SCMP_SYS(timerfd_settime), /* coalesce's and hyperv's retry timers */
		SCMP_SYS(timer_settime), SCMP_SYS(timer_delete), /* --irqchip user: the APIC timer */
		SCMP_SYS(eventfd2), /* pci-testdev and MSI-X make eventfds as the guest programs them */
		SCMP_SYS(close),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
}

static void sandbox_evloop(struct sandbox_build *b)
{
	static const int nrs[] = {
		SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
		SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(poll),
		/* virtio-blk: io_uring, and its synchronous fall-back */
		SCMP_SYS(io_uring_enter), SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2),
		SCMP_SYS(pwritev2), SCMP_SYS(pread64),
		SCMP_SYS(pwrite64), SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(fallocate),
		SCMP_SYS(getrandom), /* virtio-rng */
		/* virtio-net: tap reads/writes, the helper's socket */
		SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
		SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
		SCMP_SYS(close),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
	sandbox_allow_ioctls(b, sandbox_kvm_device_ioctls, ARRAY_LEN(sandbox_kvm_device_ioctls));
	sandbox_allow_ioctls(b, sandbox_tty_ioctls, ARRAY_LEN(sandbox_tty_ioctls));
}

static void sandbox_serial(struct sandbox_build *b)
{
	static const int nrs[] = { SCMP_SYS(read), SCMP_SYS(poll), SCMP_SYS(ppoll) };
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
	sandbox_allow_ioctls(b, sandbox_kvm_device_ioctls, ARRAY_LEN(sandbox_kvm_device_ioctls));
	sandbox_allow_ioctls(b, sandbox_tty_ioctls, ARRAY_LEN(sandbox_tty_ioctls));
}

static void sandbox_main(struct sandbox_build *b, const struct sandbox_main_opts *o)
{
	static const int nrs[] = {
		SCMP_SYS(rt_sigtimedwait), /* vm_wait */
		SCMP_SYS(read), SCMP_SYS(pread64), /* KVM's binary stats fds */
		SCMP_SYS(close), SCMP_SYS(epoll_ctl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
		SCMP_SYS(lseek), SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(flock),
		SCMP_SYS(fcntl), SCMP_SYS(io_uring_enter),
		SCMP_SYS(timerfd_settime), /* timers disarmed at tear-down (virtio-blk's rate limit) */
		SCMP_SYS(wait4), /* reaping the slirp helper */
		SCMP_SYS(getrandom), /* json-c seeds its hash tables */
		/* the UART's last output at tear-down (util_write_out waits for
		 * room with poll, and gives up at once when the VM stops: a
		 * stalled reader left some behind) */
		SCMP_SYS(poll),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
	/* ... and, if it does not go by itself, killing that one child. */
	sandbox_allow_arg(b, SCMP_SYS(kill), 1, SIGKILL);
	static const unsigned long reqs[] = {
		KVM_IRQFD, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING, /* devices torn down */
		KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE,
		KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, /* --stats-json's vCPU state (vmstate.c) */
		KVM_CHECK_EXTENSION, KVM_GET_NESTED_STATE, /* ... and with --nested, its nested state */
		KVM_GET_DIRTY_LOG, /* --dirty-log's harvests (dirtylog.c) */
	};
	sandbox_allow_ioctls(b, reqs, ARRAY_LEN(reqs));
	sandbox_allow_ioctls(b, sandbox_tty_ioctls, ARRAY_LEN(sandbox_tty_ioctls));
	/* --stats-json: json-c creates the file at the end. Only that: no
	 * other open, and never one that reads. */
	if (o && o->stats_json)
		sandbox_allow_masked(b, SCMP_SYS(openat), 2, O_ACCMODE | O_CREAT | O_TRUNC,
				     O_WRONLY | O_CREAT | O_TRUNC);
}

/*
 * The control API's thread: its sockets (accept on the listening one, bytes
 * in and out on clients'), the stop eventfd, pausing and resuming (futex and
 * tgkill are common), the statistics (KVM's binary stats fds; a paused
 * vCPU's registers), snapshots (reading KVM's state, creating and writing
 * the two files, devices finishing their in-flight I/O), and the socket
 * file removed on its way out. A snapshot creates files, so this list
 * allows an openat that creates or truncates for writing — never one that
 * reads; which directories it may reach is the jail's business.
 */
static void sandbox_api(struct sandbox_build *b)
{
	static const int nrs[] = {
		SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(accept4), SCMP_SYS(recvfrom),
		SCMP_SYS(sendto), SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(close),
		SCMP_SYS(unlink), SCMP_SYS(getrandom), /* json-c seeds its hash tables; a snapshot's id */
		SCMP_SYS(ftruncate), SCMP_SYS(pwrite64), SCMP_SYS(fdatasync),
		/* a device finishing its work before it is saved: virtio-blk's
		 * in-flight requests, a guest's reset the event loop has not run */
		SCMP_SYS(io_uring_enter), SCMP_SYS(epoll_ctl), SCMP_SYS(timerfd_settime),
		/* PUT /hvmm/migrate: the stream to the destination (a TCP
		 * socket, its timeouts), and the disks' image locks handed over
		 * (OFD locks, fcntl) */
		SCMP_SYS(connect), SCMP_SYS(setsockopt), SCMP_SYS(sendmsg), SCMP_SYS(fcntl),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
	sandbox_allow_arg(b, SCMP_SYS(socket), 0, AF_INET);
	sandbox_allow_arg(b, SCMP_SYS(socket), 0, AF_INET6);
	sandbox_allow_masked(b, SCMP_SYS(openat), 2, O_ACCMODE | O_CREAT | O_TRUNC, O_WRONLY | O_CREAT | O_TRUNC);
	static const unsigned long reqs[] = {
		KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE,
		KVM_KVMCLOCK_CTRL, /* a pause, told to the guest's kvmclock */
		KVM_SIGNAL_MSI,    /* PUT /hvmm/inject's interrupts */
		/* PUT /snapshot/create (snapshot_kvm.c) */
		KVM_CHECK_EXTENSION, KVM_GET_MSR_INDEX_LIST, KVM_GET_MSRS, KVM_GET_XCRS, KVM_GET_XSAVE,
		KVM_GET_XSAVE2, KVM_GET_DEBUGREGS, KVM_GET_LAPIC, KVM_GET_NESTED_STATE, KVM_GET_CLOCK,
		KVM_GET_IRQCHIP, KVM_GET_PIT2,
		/* PUT /hvmm/migrate: dirty logging switched on and harvested */
		KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG,
	};
	sandbox_allow_ioctls(b, reqs, ARRAY_LEN(reqs));
	/* ... and raising the interrupt such a completion owes the guest */
	sandbox_allow_ioctls(b, sandbox_kvm_device_ioctls, ARRAY_LEN(sandbox_kvm_device_ioctls));
}

/*
 * hvmm-net-slirp after its set-up: libslirp's sockets towards the outside
 * (IPv4/IPv6 only: no unix, netlink or packet sockets), the rings' doorbells
 * and hvmm's control socket, and /etc/resolv.conf read for the DNS relay.
 */
static void sandbox_net_helper(struct sandbox_build *b)
{
	static const int nrs[] = {
		SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(read), SCMP_SYS(readv),
		SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
		SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept),
		SCMP_SYS(accept4), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
		SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(shutdown),
		SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
		SCMP_SYS(stat), SCMP_SYS(lseek), SCMP_SYS(getrandom),
	};
	sandbox_allow_list(b, nrs, ARRAY_LEN(nrs));
	sandbox_allow_arg(b, SCMP_SYS(socket), 0, AF_INET);
	sandbox_allow_arg(b, SCMP_SYS(socket), 0, AF_INET6);
	static const unsigned long reqs[] = { FIONREAD, FIONBIO };
	sandbox_allow_ioctls(b, reqs, ARRAY_LEN(reqs));
	sandbox_allow_masked(b, SCMP_SYS(openat), 2, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY);
}

/* The uid and gid the slirp helper drops to when started as root: the
 * kernel's overflow ids, "nobody" on Debian, owning nothing. */
#define SANDBOX_HELPER_UID 65534

/* What the slirp helper may touch beyond its fds: reading the resolver's
 * configuration (libslirp rereads it for the DNS relay), nothing else on
 * the file system (Landlock), and no identity that owns files (root is
 * dropped: as root its read-only openat could read any file). Before its
 * seccomp list, which forbids the calls this makes. */
static int sandbox_helper_confine(void)
{
	static const char *const readable[] = { "/etc/resolv.conf" };
	int r = landlock_restrict_to_reading(readable, 1);
	if (r < 0 && r != -EOPNOTSUPP)
		return r;
	if (getuid() == 0 || geteuid() == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(SANDBOX_HELPER_UID, SANDBOX_HELPER_UID, SANDBOX_HELPER_UID) < 0 ||
		    setresuid(SANDBOX_HELPER_UID, SANDBOX_HELPER_UID, SANDBOX_HELPER_UID) < 0)
			return -errno;
	}
	/* The tests' view of the result (read only when set): what opening
	 * a file gives now. */
	const char *probe = getenv("HVMM_SANDBOX_PROBE_OPEN");
	if (probe) {
		int fd = open(probe, O_RDONLY | O_CLOEXEC);
		fprintf(stderr, "%s: probe: landlock %s, uid %u: open %s: %s\n", sandbox_prog,
			r > 0 ? "on" : "unavailable", (unsigned)getuid(), probe,
			fd < 0 ? strerror(errno) : "ok");
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* The forbidden call the tests ask for: personality(0xffffffff) only reads
 * the persona, so with the filters off it changes nothing. */
static void sandbox_self_test(enum sandbox_kind kind)
{
	const char *want = getenv("HVMM_SECCOMP_TEST");
	if (want && strcmp(want, sandbox_names[kind]) == 0)
		syscall(SYS_personality, 0xffffffffUL);
}

int sandbox_enter(enum sandbox_kind kind, const struct sandbox_main_opts *main)
{
	if ((unsigned)kind >= SANDBOX_KINDS)
		return -EINVAL;
	if (!sandbox_on) {
		sandbox_self_test(kind);
		return 0;
	}
	/* A confined thread must never gain privileges through exec (libseccomp
	 * sets it too; made explicit so it holds whatever its defaults are). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (kind == SANDBOX_NET_HELPER) {
		int hr = sandbox_helper_confine();
		if (hr < 0)
			return hr;
	}
	struct sandbox_build b = { .ctx = seccomp_init(SCMP_ACT_TRAP) };
	if (!b.ctx)
		return -ENOMEM;
	sandbox_common(&b);
	switch (kind) {
	case SANDBOX_MAIN:
		sandbox_main(&b, main);
		break;
	case SANDBOX_VCPU:
		sandbox_vcpu(&b);
		break;
	case SANDBOX_EVLOOP:
		sandbox_evloop(&b);
		break;
	case SANDBOX_SERIAL:
		sandbox_serial(&b);
		break;
	case SANDBOX_NET_HELPER:
		sandbox_net_helper(&b);
		break;
	case SANDBOX_API:
		sandbox_api(&b);
		break;
	default:
		break;
	}
	int r = b.err;
	if (!r)
		r = seccomp_attr_set(b.ctx, SCMP_FLTATR_CTL_NNP, 1);
	/* The hot calls first: every exit is a KVM_RUN ioctl on a vCPU, every
	 * request an io_uring_enter or an eventfd access on the loop. */
	if (!r)
		r = seccomp_syscall_priority(b.ctx, SCMP_SYS(ioctl), 255);
	if (!r && kind == SANDBOX_EVLOOP)
		r = seccomp_syscall_priority(b.ctx, SCMP_SYS(io_uring_enter), 254);
	sandbox_self = (int)kind; /* before the load: from then on it may trap */
	if (!r)
		r = seccomp_load(b.ctx);
	seccomp_release(b.ctx);
	if (r < 0) {
		sandbox_self = -1;
		return r;
	}
	sandbox_self_test(kind);
	return 0;
}
