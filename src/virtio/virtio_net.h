/*
 * virtio-net (device type 1): the model's own constants and counters.
 * virtio_net_create() is declared with the other models in virtio.h.
 */
#ifndef HVMM_VIRTIO_NET_H
#define HVMM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virtio_dev;
struct dev_env;

/* Feature bits this model offers (virtio 1.2 §5.1.3). No MRG_RXBUF, no
 * checksum or segmentation offloads, no control queue. */
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_MRG_RXBUF 15 /* not offered */

#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_MAX 256
/* struct virtio_net_hdr with num_buffers: always 12 bytes under VERSION_1. */
#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_CONFIG_LEN 12 /* mac[6], status, max_virtqueue_pairs, mtu */
#define VIRTIO_NET_MTU 1500

/* What happened to the frames; each drop is in exactly one counter. */
struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes;     /* delivered to the guest */
	uint64_t rx_too_big;      /* frame longer than the guest's buffer chain: dropped, chain returned empty */
	uint64_t rx_bad;          /* from the back end: shorter than an Ethernet header, longer than 1518 (the MTU's frame), or truncated */
	uint64_t rx_stalls;       /* times rx stopped reading the back end: no guest buffer */
	uint64_t tx_frames, tx_bytes;     /* sent to the back end */
	uint64_t tx_bad;          /* chain shorter than header + 14 or longer than header + 1518: dropped */
	uint64_t tx_errors;       /* the back end refused the frame (not EAGAIN): dropped */
	uint64_t tx_blocked;      /* times a send got EAGAIN or the slirp tx ring was full (frame kept, retried) */
	uint64_t backend_gone;    /* back end closed (slirp helper exited): link went down */
	/* rate limits (tx-bw=, ... in the spec; 0: none) and how often each
	 * direction had to wait for its bucket */
	uint64_t tx_limit_bps, tx_limit_pps, rx_limit_bps, rx_limit_pps;
	uint64_t tx_throttled, rx_throttled;
};

/* virtio_net_create() with the reason for a failure as one line in err (no
 * "hvmm:" prefix), for vm.c to print: -EINVAL for a bad spec (a usage error)
 * and only then; -ENODEV no such tap, other -errno host failures. */
int virtio_net_create_msg(const struct dev_env *env, const char *spec, int index, struct virtio_dev **out,
			 char *err, size_t errlen);

/* The device over an already open frame fd (tests; is_socket: a seqpacket
 * socket rather than a tap). Takes fd. 0 or -errno (never -EINVAL). */
int virtio_net_attach_fd(const struct dev_env *env, int fd, bool is_socket, char *err, size_t errlen);

struct net_spec;
/* The same with the rate limits of ns (tx_rl, rx_rl; the rest is ignored). */
int virtio_net_attach_fd_limited(const struct dev_env *env, int fd, bool is_socket, const struct net_spec *ns, char *err,
				 size_t errlen);

struct net_slirp;
/* The device over a started slirp helper's rings (net_slirp_start, or a
 * test playing the helper). Takes *s (its fds, mapping and PID). 0 or -errno. */
int virtio_net_attach_slirp(const struct dev_env *env, struct net_slirp *s, char *err, size_t errlen);

/* 0, or -EINVAL when d is not a virtio-net device. */
int virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *out);

#endif
