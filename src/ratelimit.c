#include "ratelimit.h"

#include <string.h>

#include "util.h"

#define RL_SECOND 1000000000ull

void rl_start(struct ratelimit *rl, uint64_t now_ns)
{
	struct rl_bucket *bs[] = { &rl->bytes, &rl->ops };
	for (unsigned i = 0; i < 2; i++) {
		bs[i]->budget = (int64_t)bs[i]->size;
		bs[i]->last_ns = now_ns;
		bs[i]->frac = 0;
	}
}

bool rl_active(const struct ratelimit *rl)
{
	return rl->bytes.size || rl->ops.size;
}

/* Add what the time since last_ns earned, up to a full bucket. The
 * remainder of the division is kept, so slow callers lose nothing. */
static void rl_refill(struct rl_bucket *b, uint64_t now)
{
	if (!b->size || now <= b->last_ns)
		return;
	unsigned __int128 earned = (unsigned __int128)(now - b->last_ns) * b->size + b->frac;
	b->last_ns = now;
	unsigned __int128 tokens = earned / b->refill_ns;
	b->frac = (uint64_t)(earned % b->refill_ns);
	if (tokens >= (unsigned __int128)b->size || b->budget + (int64_t)tokens >= (int64_t)b->size) {
		b->budget = (int64_t)b->size;
		b->frac = 0;
	} else {
		b->budget += (int64_t)tokens;
	}
}

/* 0 if the bucket lets a request go now, else how long until it does. */
static uint64_t rl_bucket_wait(struct rl_bucket *b, uint64_t now)
{
	if (!b->size)
		return 0;
	rl_refill(b, now);
	if (b->budget > 0 || b->burst)
		return 0;
	/* until the budget is 1: (1 - budget) tokens, less what frac holds */
	unsigned __int128 need = (unsigned __int128)(1 - b->budget) * b->refill_ns - b->frac;
	return (uint64_t)((need + b->size - 1) / b->size);
}

bool rl_ready(struct ratelimit *rl, uint64_t now_ns, uint64_t *wait_ns)
{
	uint64_t a = rl_bucket_wait(&rl->bytes, now_ns), o = rl_bucket_wait(&rl->ops, now_ns);
	uint64_t w = a > o ? a : o;
	if (wait_ns)
		*wait_ns = w;
	if (w)
		rl->throttled++;
	return w == 0;
}

static void rl_bucket_take(struct rl_bucket *b, uint64_t n)
{
	if (!b->size)
		return;
	uint64_t from_burst = n < b->burst ? n : b->burst;
	b->burst -= from_burst;
	n -= from_burst;
	b->budget -= n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

void rl_take(struct ratelimit *rl, uint64_t bytes)
{
	rl_bucket_take(&rl->bytes, bytes);
	rl_bucket_take(&rl->ops, 1);
}

/* "NAME=" at the start of opt: the value after it, else NULL. */
static const char *rl_key(const char *opt, const char *name, const char *suffix)
{
	size_t n = strlen(name), m = strlen(suffix);
	if (strncmp(opt, name, n) != 0 || strncmp(opt + n, suffix, m) != 0)
		return NULL;
	return opt + n + m;
}

int rl_parse_opt_named(const char *opt, const char *bytes_name, const char *ops_name, struct ratelimit *rl)
{
	static const struct {
		const char *suffix;
		bool burst;
	} keys[] = { { "=", false }, { "-burst=", true } };
	for (unsigned k = 0; k < 2; k++) {
		bool ops = k == 1;
		for (unsigned i = 0; i < 2; i++) {
			const char *val = rl_key(opt, ops ? ops_name : bytes_name, keys[i].suffix);
			if (!val)
				continue;
			uint64_t v;
			if (ops ? util_parse_uint(val, 1, UINT32_MAX, &v) < 0 : util_parse_size(val, &v) < 0)
				return -1;
			if (!v)
				return -1;
			struct rl_bucket *b = ops ? &rl->ops : &rl->bytes;
			if (keys[i].burst) {
				b->burst = v;
			} else {
				b->size = v;
				b->budget = (int64_t)v;
				b->refill_ns = RL_SECOND;
			}
			return 1;
		}
	}
	return 0;
}

int rl_parse_opt(const char *opt, struct ratelimit *rl)
{
	return rl_parse_opt_named(opt, "bw", "iops", rl);
}

bool rl_burst_without_rate(const struct ratelimit *rl)
{
	return (rl->bytes.burst && !rl->bytes.size) || (rl->ops.burst && !rl->ops.size);
}
