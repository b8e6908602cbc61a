/*
 * ratelimit: token buckets that cap a device's bandwidth and operations,
 * with Firecracker's semantics: a bucket holds `size` tokens and refills
 * `size` tokens every `refill_ns`, continuously; an optional one-time burst
 * is spent first. A device asks before it takes a request (rl_ready) and
 * pays after it knows the request's size (rl_take): a request is never
 * split or refused for being large, the bucket goes into debt instead and
 * the next one waits until the debt is repaid. Over any long run the rate
 * is exactly size per refill_ns.
 */
#ifndef HVMM_RATELIMIT_H
#define HVMM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rl_bucket {
	uint64_t size;      /* 0: no limit */
	uint64_t refill_ns;
	uint64_t burst;     /* one-time tokens left */
	int64_t budget;     /* may go below 0: debt */
	uint64_t last_ns;   /* refilled up to here */
	uint64_t frac;      /* refill remainder, in token*ns units */
};

struct ratelimit {
	struct rl_bucket bytes, ops;
	uint64_t throttled; /* times a request had to wait */
};

bool rl_active(const struct ratelimit *rl);
/* Full buckets from now on (a device starting, or restarting after reset). */
void rl_start(struct ratelimit *rl, uint64_t now_ns);
/* May a request go now? When not, *wait_ns says for how long it may not. */
bool rl_ready(struct ratelimit *rl, uint64_t now_ns, uint64_t *wait_ns);
/* Pay for a request that went: `bytes` and one operation. */
void rl_take(struct ratelimit *rl, uint64_t bytes);

/* Parse a device option "bw=RATE", "iops=N", "bw-burst=SIZE" or
 * "iops-burst=N" into rl (RATE and SIZE take K/M/G). 1 if it was one of
 * these, 0 if not, -1 if it was but the value is bad. */
int rl_parse_opt(const char *opt, struct ratelimit *rl);
/* The same with other names for the two rates: the network's
 * "tx-bw"/"tx-pps" (a frame is its operation). */
int rl_parse_opt_named(const char *opt, const char *bytes_name, const char *ops_name, struct ratelimit *rl);
/* A burst was given without the rate it belongs to (a usage error). */
bool rl_burst_without_rate(const struct ratelimit *rl);

#endif
