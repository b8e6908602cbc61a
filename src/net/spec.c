/*
 * net_parse_spec: the --network SPEC grammar. Also linked into hvmm-net-slirp,
 * which re-parses the spec it is given, so it uses nothing but libc and
 * ratelimit.c's option parser (with util.c's number parsing).
 */
#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "../util.h"

static int net_spec_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int net_spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A decimal port 1..65535 spanning exactly [s, end). */
static bool net_parse_port(const char *s, const char *end, uint16_t *out)
{
	if (s == end || end - s > 5)
		return false;
	unsigned v = 0;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* An IPv4 dotted quad spanning [s, end), or the default when empty. */
static bool net_parse_addr(const char *s, const char *end, const char *dflt, struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];
	size_t n = (size_t)(end - s);
	if (n == 0)
		return inet_pton(AF_INET, dflt, out) == 1;
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	return inet_pton(AF_INET, buf, out) == 1;
}

/* "PROTO:[HADDR]:HPORT-[GADDR]:GPORT" (QEMU's hostfwd; empty PROTO is tcp). */
static int net_parse_hostfwd(const char *s, size_t len, struct net_hostfwd *f, char *err, size_t errlen)
{
	const char *end = s + len;
	const char *c1 = memchr(s, ':', len);
	if (!c1)
		goto bad;
	size_t plen = (size_t)(c1 - s);
	if (plen == 0 || (plen == 3 && memcmp(s, "tcp", 3) == 0))
		f->udp = false;
	else if (plen == 3 && memcmp(s, "udp", 3) == 0)
		f->udp = true;
	else
		return net_spec_fail(err, errlen, "hostfwd '%.*s': protocol must be tcp or udp",
				     (int)len, s);
	const char *dash = memchr(c1 + 1, '-', (size_t)(end - c1 - 1));
	if (!dash)
		goto bad;
	/* host side: [HADDR]:HPORT between c1+1 and dash */
	const char *c2 = memchr(c1 + 1, ':', (size_t)(dash - c1 - 1));
	if (!c2)
		goto bad;
	/* Empty HADDR: the host's loopback only. QEMU binds every address, which
	 * opens the guest's port to the whole network by default. */
	if (!net_parse_addr(c1 + 1, c2, "127.0.0.1", &f->haddr))
		return net_spec_fail(err, errlen, "hostfwd '%.*s': bad host address '%.*s'", (int)len, s,
				     (int)(c2 - c1 - 1), c1 + 1);
	if (!net_parse_port(c2 + 1, dash, &f->hport))
		return net_spec_fail(err, errlen, "hostfwd '%.*s': bad host port '%.*s' (1-65535)",
				     (int)len, s, (int)(dash - c2 - 1), c2 + 1);
	/* guest side: [GADDR]:GPORT after the dash */
	const char *c3 = memchr(dash + 1, ':', (size_t)(end - dash - 1));
	if (!c3)
		goto bad;
	if (!net_parse_addr(dash + 1, c3, NET_SLIRP_GUEST, &f->gaddr))
		return net_spec_fail(err, errlen, "hostfwd '%.*s': bad guest address '%.*s'", (int)len, s,
				     (int)(c3 - dash - 1), dash + 1);
	if (!net_parse_port(c3 + 1, end, &f->gport))
		return net_spec_fail(err, errlen, "hostfwd '%.*s': bad guest port '%.*s' (1-65535)",
				     (int)len, s, (int)(end - c3 - 1), c3 + 1);
	return 0;
bad:
	return net_spec_fail(err, errlen,
			     "hostfwd '%.*s' is not tcp|udp:[HADDR]:HPORT-[GADDR]:GPORT", (int)len, s);
}

/* mac=XX:XX:XX:XX:XX:XX, a unicast address (bit 0 of the first byte clear:
 * a multicast one is not an interface's). 1 taken, 0 not mac=, -EINVAL bad. */
static int net_parse_mac(const char *p, size_t n, struct net_spec *out, char *err, size_t errlen)
{
	if (n < 4 || memcmp(p, "mac=", 4) != 0)
		return 0;
	unsigned b[6];
	char tail;
	char s[32];
	if (n - 4 >= sizeof(s))
		goto bad;
	memcpy(s, p + 4, n - 4);
	s[n - 4] = 0;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
				     &tail) != 6)
		goto bad;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			goto bad;
	if (b[0] & 1)
		return net_spec_fail(err, errlen, "mac=%s is a multicast address", s);
	for (int i = 0; i < 6; i++)
		out->mac[i] = (uint8_t)b[i];
	out->has_mac = true;
	return 1;
bad:
	return net_spec_fail(err, errlen, "'%.*s' is not mac=XX:XX:XX:XX:XX:XX", (int)n, p);
}

/* An option both back ends take: a rate limit or the MAC address. 1 taken,
 * 0 not one, -EINVAL bad. */
static int net_parse_limit(const char *p, size_t n, struct net_spec *out, char *err, size_t errlen)
{
	int mr = net_parse_mac(p, n, out, err, errlen);
	if (mr)
		return mr;
	char opt[64];
	if (n < 3 || n >= sizeof(opt) || (memcmp(p, "tx-", 3) != 0 && memcmp(p, "rx-", 3) != 0))
		return 0;
	memcpy(opt, p, n);
	opt[n] = 0;
	struct ratelimit *rl = p[0] == 't' ? &out->tx_rl : &out->rx_rl;
	int r = rl_parse_opt_named(opt + 3, "bw", "pps", rl);
	if (r < 0)
		return net_spec_fail(err, errlen, "bad value in '%s' (%.2s-bw and %.2s-bw-burst take a size "
				     "such as 10M, %.2s-pps and %.2s-pps-burst a frame count)", opt, p, p, p, p);
	return r;
}

/* After the options: a burst needs the rate it belongs to. */
static int net_check_limits(const struct net_spec *out, char *err, size_t errlen)
{
	if (rl_burst_without_rate(&out->tx_rl))
		return net_spec_fail(err, errlen, "a tx burst needs its rate (tx-bw= or tx-pps=)");
	if (rl_burst_without_rate(&out->rx_rl))
		return net_spec_fail(err, errlen, "an rx burst needs its rate (rx-bw= or rx-pps=)");
	return 0;
}

static int net_parse_tap(const char *name, struct net_spec *out, char *err, size_t errlen)
{
	const char *comma = strchr(name, ',');
	size_t n = comma ? (size_t)(comma - name) : strlen(name);
	if (n == 0)
		return net_spec_fail(err, errlen, "tap needs an interface name (tap:IFNAME)");
	if (n >= IFNAMSIZ)
		return net_spec_fail(err, errlen, "interface name '%.*s' is longer than %d characters",
				     (int)n, name, IFNAMSIZ - 1);
	for (size_t i = 0; i < n; i++)
		if (strchr("/: \t\n", name[i]))
			return net_spec_fail(err, errlen, "'%.*s' is not an interface name", (int)n, name);
	out->kind = NET_TAP;
	memcpy(out->ifname, name, n);
	out->ifname[n] = 0;
	const char *p = name + n;
	while (*p == ',') {
		p++;
		const char *opt_end = strchr(p, ',');
		size_t m = opt_end ? (size_t)(opt_end - p) : strlen(p);
		if (m == 0)
			return net_spec_fail(err, errlen, "empty option after ','");
		int r = net_parse_limit(p, m, out, err, errlen);
		if (r < 0)
			return r;
		if (r == 0)
			return net_spec_fail(err, errlen, "unknown tap option '%.*s' (mac=, tx-bw=, tx-pps=, rx-bw=, "
					     "rx-pps= and their -burst=)", (int)m, p);
		p += m;
	}
	return net_check_limits(out, err, errlen);
}

int net_parse_spec(const char *spec, struct net_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->max_conns = NET_MAX_CONNS_DEFAULT;
	if (err && errlen)
		err[0] = 0;
	if (!spec || !*spec)
		return net_spec_fail(err, errlen, "empty spec (user[,hostfwd=...] or tap:IFNAME)");

	if (strncmp(spec, "tap:", 4) == 0)
		return net_parse_tap(spec + 4, out, err, errlen);

	if (strncmp(spec, "user", 4) != 0 || (spec[4] != 0 && spec[4] != ','))
		return net_spec_fail(err, errlen, "not user[,hostfwd=...] or tap:IFNAME");
	out->kind = NET_USER;
	const char *p = spec + 4;
	while (*p == ',') {
		p++;
		const char *opt_end = strchr(p, ',');
		size_t n = opt_end ? (size_t)(opt_end - p) : strlen(p);
		int lr;
		if (n >= 8 && memcmp(p, "hostfwd=", 8) == 0) {
			if (out->nr_fwd == NET_MAX_HOSTFWD)
				return net_spec_fail(err, errlen, "at most %d hostfwd rules", NET_MAX_HOSTFWD);
			int r = net_parse_hostfwd(p + 8, n - 8, &out->fwd[out->nr_fwd], err, errlen);
			if (r < 0)
				return r;
			out->nr_fwd++;
		} else if ((n == 16 && memcmp(p, "host-loopback=on", 16) == 0) ||
			   (n == 17 && memcmp(p, "host-loopback=off", 17) == 0)) {
			out->host_loopback = n == 16;
		} else if (n == 0) {
			return net_spec_fail(err, errlen, "empty option after ','");
		} else if (n >= 14 && memcmp(p, "host-loopback=", 14) == 0) {
			return net_spec_fail(err, errlen, "host-loopback: '%.*s' is not on or off",
					     (int)(n - 14), p + 14);
		} else if (n >= 10 && memcmp(p, "max-conns=", 10) == 0) {
			char num[16];
			uint64_t v;
			if (n - 10 >= sizeof(num) || (memcpy(num, p + 10, n - 10), num[n - 10] = 0,
						      util_parse_uint(num, 1, NET_MAX_CONNS_MAX, &v) < 0))
				return net_spec_fail(err, errlen, "max-conns: '%.*s' is not a count 1-%d",
						     (int)(n - 10), p + 10, NET_MAX_CONNS_MAX);
			out->max_conns = (unsigned)v;
		} else if (n >= 5 && memcmp(p, "keep=", 5) == 0) {
			char num[16];
			uint64_t v;
			if (n - 5 >= sizeof(num) || (memcpy(num, p + 5, n - 5), num[n - 5] = 0,
						     util_parse_uint(num, 0, NET_KEEP_MAX, &v) < 0))
				return net_spec_fail(err, errlen, "keep: '%.*s' is not a number of seconds 0-%d",
						     (int)(n - 5), p + 5, NET_KEEP_MAX);
			out->keep_secs = (unsigned)v;
		} else if ((lr = net_parse_limit(p, n, out, err, errlen)) != 0) {
			if (lr < 0)
				return lr;
		} else {
			return net_spec_fail(err, errlen,
					     "unknown user-network option '%.*s' (hostfwd=, host-loopback=, "
					     "max-conns=, keep=, mac=, tx-bw=, tx-pps=, rx-bw=, rx-pps=)", (int)n, p);
		}
		p += n;
	}
	return net_check_limits(out, err, errlen);
}

bool net_slirp_name_ok(const char *name)
{
	size_t pre = strlen(NET_SLIRP_NAME_PREFIX);
	if (strncmp(name, NET_SLIRP_NAME_PREFIX, pre) != 0 || strlen(name) != pre + 32)
		return false;
	for (const char *p = name + pre; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}
