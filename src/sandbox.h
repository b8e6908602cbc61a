/*
 * sandbox: seccomp allow-lists, one per kind of thread (docs/security.md).
 *
 * Each thread installs its own filter at its start, after its own set-up:
 * a filter is per thread and inherited at clone, so the main thread installs
 * its own last, once every other thread has started. Anything not on a
 * thread's list traps (SIGSYS): one line names the thread kind and the system
 * call, and the process ends with HVMM_EXIT_SECCOMP (hvmm) or
 * SANDBOX_HELPER_EXIT (the slirp helper, which hvmm then sees die).
 */
#ifndef HVMM_SANDBOX_H
#define HVMM_SANDBOX_H

#include <stdbool.h>

enum sandbox_kind {
	SANDBOX_MAIN,       /* waits for the stop, joins, prints/writes the stats */
	SANDBOX_VCPU,       /* KVM_RUN and the exit handlers */
	SANDBOX_EVLOOP,     /* device back ends: epoll, io_uring, disk, network, rng */
	SANDBOX_SERIAL,     /* the UART's stdin reader and output flusher */
	SANDBOX_NET_HELPER, /* hvmm-net-slirp, after its set-up */
	SANDBOX_API,        /* the control API's thread (--api-sock) */
	SANDBOX_KINDS,
};

/* The slirp helper's exit status after a violation (its 2 and 1 are taken). */
#define SANDBOX_HELPER_EXIT 3

/* What the main thread's list needs to know about the run. */
struct sandbox_main_opts {
	bool stats_json; /* it creates the --stats-json file at the end */
};

/*
 * Once, before any other thread exists: `enabled` (--seccomp on|off), `prog`
 * the message prefix ("hvmm"), `exit_status` the status after a violation,
 * `on_violation` an async-signal-safe hook run before the exit (restore the
 * terminal), or NULL. Installs the SIGSYS handler. 0 or -errno.
 */
int sandbox_init(bool enabled, const char *prog, int exit_status, void (*on_violation)(void));
bool sandbox_enabled(void);
/* The filter's name for a kind: "main", "vcpu", "evloop", "serial", "net-helper". */
const char *sandbox_kind_name(enum sandbox_kind kind);

/* --device vfio: vCPU threads also forward to the device (pread/pwrite on
 * its fd), move its BAR mappings (KVM_SET_USER_MEMORY_REGION) and hand it
 * interrupt eventfds (VFIO_DEVICE_SET_IRQS). Call before the threads start. */
void sandbox_allow_passthrough(void);

/*
 * Confine the calling thread to `kind`'s list (PR_SET_NO_NEW_PRIVS first).
 * `main` is read for SANDBOX_MAIN only. No-op (0) when disabled. 0 or -errno.
 * If HVMM_SECCOMP_TEST names this kind, the thread then makes a forbidden
 * call on purpose (tests: each filter traps and reports).
 */
int sandbox_enter(enum sandbox_kind kind, const struct sandbox_main_opts *main);

#endif
