/*
 * net: the network back ends behind virtio-net.
 *
 * virtio-net sees exactly one kind of back end: a file descriptor that carries
 * whole Ethernet frames, one read or write per frame. Two things provide it:
 *
 *  - "tap:IFNAME": /dev/net/tun attached to an existing tap interface
 *    (IFF_TAP | IFF_NO_PI, so each read/write is one bare frame).
 *  - "user[,hostfwd=...]": libslirp user-mode networking (DHCP, DNS, NAT,
 *    port forwarding, no privileges). libslirp runs in a separate helper
 *    program, hvmm-net-slirp, next to the hvmm binary. Frames go through two
 *    shared-memory rings (src/net/ring.h) with eventfd doorbells; an AF_UNIX
 *    SOCK_SEQPACKET socketpair carries only the start-up handshake and, by
 *    its EOF, the death of either side.
 *
 * Why a helper process for slirp: Debian ships libslirp (and GLib, which it
 * needs) only as shared libraries, and hvmm is linked statically. It is also
 * the better design: libslirp parses every packet the guest sends, so it is
 * the largest attack surface a guest can reach; in its own process (the same
 * split QEMU makes with passt) a bug there cannot touch guest RAM or the KVM
 * fds, and GLib never shares hvmm's address space. The rings make the hop
 * cheap: a busy stream costs a copy per frame and no system call. What made
 * slirp itself fast was batching its host writes (TCP_CORK around each batch
 * of guest frames, in the helper), not where it runs: docs/benchmarks.md.
 */
#ifndef HVMM_NET_H
#define HVMM_NET_H

#include <netinet/in.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../ratelimit.h"

#define NET_MAX_HOSTFWD 16
/* Largest frame hvmm passes either way: 1500-byte MTU + 14-byte Ethernet
 * header + a 4-byte 802.1Q tag. No offloads are negotiated, so nothing bigger
 * is legitimate. */
#define NET_MAX_FRAME 1518
#define NET_MIN_FRAME 14 /* an Ethernet header */

/* QEMU's user-network addresses, so guests configured for QEMU work as is. */
#define NET_SLIRP_NET "10.0.2.0"
#define NET_SLIRP_MASK "255.255.255.0"
#define NET_SLIRP_HOST "10.0.2.2"
#define NET_SLIRP_DNS "10.0.2.3"
#define NET_SLIRP_GUEST "10.0.2.15" /* first DHCP address */
/* The guest's MAC (QEMU's default): 52:54:00:12:34:56, +1 in the last byte per extra NIC. */
#define NET_MAC_INIT { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }

enum net_kind { NET_USER, NET_TAP };

/* One hostfwd rule: host [haddr]:hport → guest [gaddr]:gport. */
struct net_hostfwd {
	bool udp;
	struct in_addr haddr; /* 127.0.0.1 when empty (QEMU: all addresses) */
	uint16_t hport;
	struct in_addr gaddr; /* NET_SLIRP_GUEST when empty */
	uint16_t gport;
};

struct net_spec {
	enum net_kind kind;
	char ifname[IFNAMSIZ];   /* NET_TAP */
	struct net_hostfwd fwd[NET_MAX_HOSTFWD];
	int nr_fwd;
	bool host_loopback;      /* host-loopback=on: 10.0.2.2 reaches the host's 127.0.0.1 */
	/* Either back end: token buckets on the frames the guest sends (tx-bw=,
	 * tx-pps=, their -burst=) and receives (rx-...); none when the sizes are 0. */
	struct ratelimit tx_rl, rx_rl;
	unsigned max_conns;      /* NET_USER: host sockets the helper may hold for the guest */
	/* NET_USER keep=SECONDS: after a snapshot, the helper outlives this
	 * hvmm for up to that long, for a restored one to attach to (0: off). */
	unsigned keep_secs;
	uint8_t mac[6];          /* mac=: the guest's address (has_mac), else hvmm's default */
	bool has_mac;
};

/* Default and largest max-conns: a guest's connections and flows, each one
 * host socket in the slirp helper. 256 is far more than a guest's normal
 * work needs and far below the usual 1024-file limit. */
#define NET_MAX_CONNS_DEFAULT 256
#define NET_MAX_CONNS_MAX 65536
/* The longest keep=: an hour. A kept helper holds its host ports and
 * connections, so "forever" would be a leak nobody notices. */
#define NET_KEEP_MAX 3600

/*
 * Parse a --network SPEC:
 *   user
 *   user,hostfwd=tcp:[HADDR]:HPORT-[GADDR]:GPORT[,hostfwd=udp:...]...
 *   user,host-loopback=on|off (default off)
 *   user,max-conns=N (default NET_MAX_CONNS_DEFAULT)
 *   user,keep=SECONDS (default 0, at most NET_KEEP_MAX)
 *   tap:IFNAME
 * and for both: ,mac=52:54:00:12:34:56 (the guest's MAC address; a unicast one),
 * ,tx-bw=RATE ,tx-pps=N ,tx-bw-burst=SIZE ,tx-pps-burst=N and
 * the same with rx- (rate limits; RATE and SIZE take K/M/G).
 * 0, or -EINVAL with a one-line reason (no "hvmm:" prefix) in err.
 */
int net_parse_spec(const char *spec, struct net_spec *out, char *err, size_t errlen);

/* Open /dev/net/tun attached to the existing tap interface ifname,
 * non-blocking, close-on-exec. fd, or -errno (-ENODEV: no such tap). */
int net_tap_open(const char *ifname);

struct net_shm;

/* A kept helper's rendezvous: an abstract AF_UNIX name (no file to clean
 * up, none a jail or Landlock has to allow), "hvmm-net-slirp-" and 32 random
 * hex digits, which only the snapshot's state file (0600) records. */
#define NET_SLIRP_NAME_PREFIX "hvmm-net-slirp-"
#define NET_SLIRP_NAME_LEN 48 /* with its NUL */

/* hvmm's end of a running slirp helper. */
struct net_slirp {
	int ctl;              /* control socket: non-blocking, EOF = the helper died */
	struct net_shm *shm;  /* the rings, mapped (NET_SHM_SIZE bytes) */
	int txbell;           /* eventfd hvmm writes: frames in the tx ring / rx space */
	int rxbell;           /* eventfd the helper writes: frames in the rx ring / tx space */
	pid_t pid;            /* 0 for a helper attached to (another process's child) */
	char name[NET_SLIRP_NAME_LEN]; /* keep=: where it waits for a restored hvmm; "" without */
	bool kept;            /* told a snapshot was taken: it may outlive us, so do not reap it */
};

/*
 * Start hvmm-net-slirp for a "user" spec: a SOCK_SEQPACKET control
 * socketpair, a sealed memfd holding the rings, and two eventfds; the helper
 * exec'd from the directory of /proc/self/exe (or $HVMM_NET_SLIRP) with them
 * as fds 3-6 and "--ring SPEC" on its command line, then wait for its
 * "ready" message (it has bound every hostfwd port by then). On success *out
 * holds them all (fds non-blocking, close-on-exec). -errno on failure, with a
 * one-line reason in err: -ENOENT the helper is missing, -EADDRINUSE etc. as
 * the helper reported for a hostfwd.
 */
int net_slirp_start(const char *spec, struct net_slirp *out, char *err, size_t errlen);
/* Close the control socket (the helper exits on EOF), reap the PID (wait up
 * to 1 s, then SIGKILL that PID and wait), then unmap and close the rest. */
void net_slirp_stop(struct net_slirp *s);

/*
 * keep=: a helper that outlives its hvmm.
 *
 * net_slirp_keep, at a snapshot: the helper is told (NET_SLIRP_KEEP) that
 * the guest's TCP state was just saved. If hvmm then ends before another
 * frame passed either way, the helper keeps its slirp instance (sockets,
 * NAT, ports) with its clock stopped, drops what it would send, and waits
 * up to keep= seconds on its name for a new hvmm; then it exits.
 *
 * net_slirp_attach, at --restore: connect to that name and hand the helper
 * fresh rings and doorbells (NET_SLIRP_ATTACH with 3 fds: memfd, tx and rx
 * eventfds); its answer is NET_SLIRP_READY or NET_SLIRP_ERROR + reason (for
 * one: its hvmm still runs). Only a process of the user that started the
 * helper may attach (SO_PEERCRED), and hvmm attaches only to a helper of its
 * own user. 0, or -errno with a one-line reason in err: -ENOENT no helper
 * has that name (it timed out or ended), -EBUSY its hvmm still runs.
 */
int net_slirp_keep(struct net_slirp *s);
/* The opposite, at a migration's save: the VM leaves this host, and the
 * helper must end with this hvmm (it holds the forwarded ports). */
int net_slirp_unkeep(struct net_slirp *s);
int net_slirp_attach(const char *name, struct net_slirp *out, char *err, size_t errlen);
/* A well-formed helper name (NET_SLIRP_NAME_PREFIX and 32 lower-case hex
 * digits): the snapshot file's copy is checked before it is used. */
bool net_slirp_name_ok(const char *name);

/* The helper's handshake messages, first on the socket before any frame.
 * With keep= the ready message is followed by a space and the helper's name. */
#define NET_SLIRP_READY "hvmm-net-slirp ready"
#define NET_SLIRP_KEEP "hvmm-net-slirp keep"
#define NET_SLIRP_UNKEEP "hvmm-net-slirp unkeep"
#define NET_SLIRP_ATTACH "hvmm-net-slirp attach"
#define NET_SLIRP_ERROR "hvmm-net-slirp error: " /* followed by the reason */
#define NET_SLIRP_FD 3 /* the helper's end of the control socketpair */
#define NET_SLIRP_PROG "hvmm-net-slirp"

#endif
