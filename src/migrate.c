/*
 * migrate: what both sides share — the address syntax, the record kept for
 * --stats and --stats-json (migrate.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate_priv.h"
#include "util.h"
#include "vm.h"

struct migrate *migrate_state(struct vm *vm)
{
	if (!vm->migrate && (vm->migrate = calloc(1, sizeof(*vm->migrate))))
		vm->migrate->listen_fd = vm->migrate->fd = -1;
	return vm->migrate;
}

uint64_t migrate_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Numeric only: a host name would need the resolver, which reads files and
 * opens sockets the API thread's seccomp list does not have. */
int migrate_parse_addr(const char *spec, bool listening, struct sockaddr_storage *ss, socklen_t *len,
		       char *err, size_t n)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "tcp:", 4) != 0) {
		snprintf(err, n, "'%.80s' is not tcp:HOST:PORT", spec);
		return -1;
	}
	const char *h = spec + 4, *colon;
	char host[64];
	size_t hl;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':') {
			snprintf(err, n, "'%.80s': an IPv6 address goes in brackets: tcp:[ADDR]:PORT", spec);
			return -1;
		}
		hl = (size_t)(close - h - 1);
		h++;
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon) {
			snprintf(err, n, "'%.80s' is not tcp:HOST:PORT", spec);
			return -1;
		}
		hl = (size_t)(colon - h);
	}
	if (hl >= sizeof(host)) {
		snprintf(err, n, "'%.80s': the host is too long", spec);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	uint64_t port;
	if (util_parse_uint(colon + 1, 1, 65535, &port) < 0) {
		snprintf(err, n, "'%.80s': the port is not 1..65535", spec);
		return -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (!*host && listening) {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		snprintf(err, n, "'%.80s': '%s' is not a numeric IPv4 or IPv6 address", spec, host);
		return -1;
	}
	return 0;
}

void migrate_print(struct vm *vm, FILE *f)
{
	struct migrate *m = vm->migrate;
	if (!m)
		return;
	if (m->incoming_done) {
		double down = m->started_rt > m->src_paused_rt ? (double)(m->started_rt - m->src_paused_rt) / 1e6 : 0;
		fprintf(f, "migration in: %llu bytes, %llu pages in %llu rounds, %.1f ms from accept to loaded; "
			"downtime %.1f ms (the source's pause to our vCPUs' start, by CLOCK_REALTIME)\n",
			(unsigned long long)m->in_bytes, (unsigned long long)m->in_pages,
			(unsigned long long)m->in_rounds, (double)m->in_ns / 1e6, down);
	}
	if (m->attempts)
		fprintf(f, "migration out: %llu attempt%s, %llu failed%s\n", (unsigned long long)m->attempts,
			m->attempts == 1 ? "" : "s", (unsigned long long)m->failures,
			m->out_done ? "; the last sent everything" : "");
	if (m->out_done)
		fprintf(f, "migration out: %.1f ms in all, downtime %.1f ms (pause to the destination's ack), "
			"%llu bytes, %llu pages (%llu while paused), %llu rounds, %.1f MB/s\n",
			(double)m->out_total_ns / 1e6, (double)m->out_downtime_ns / 1e6,
			(unsigned long long)m->out_bytes, (unsigned long long)m->out_pages,
			(unsigned long long)m->out_final_pages, (unsigned long long)m->out_rounds,
			(double)m->out_bw / 1e6);
}

json_object *migrate_json(struct vm *vm)
{
	struct migrate *m = vm->migrate;
	if (!m)
		return NULL;
	json_object *o = json_object_new_object();
#define MIG_J(k, v) json_object_object_add(o, k, json_object_new_uint64(v))
	json_object_object_add(o, "incoming", json_object_new_boolean(m->incoming_done));
	MIG_J("in_bytes", m->in_bytes);
	MIG_J("in_pages", m->in_pages);
	MIG_J("in_rounds", m->in_rounds);
	MIG_J("in_ns", m->in_ns);
	MIG_J("in_downtime_ns", m->started_rt > m->src_paused_rt && m->src_paused_rt ?
		m->started_rt - m->src_paused_rt : 0);
	MIG_J("out_attempts", m->attempts);
	MIG_J("out_failures", m->failures);
	json_object_object_add(o, "out_done", json_object_new_boolean(m->out_done));
	MIG_J("out_total_ns", m->out_total_ns);
	MIG_J("out_downtime_ns", m->out_downtime_ns);
	MIG_J("out_bytes", m->out_bytes);
	MIG_J("out_pages", m->out_pages);
	MIG_J("out_final_pages", m->out_final_pages);
	MIG_J("out_rounds", m->out_rounds);
	MIG_J("out_bandwidth_bps", m->out_bw);
#undef MIG_J
	return o;
}

void migrate_destroy(struct vm *vm)
{
	struct migrate *m = vm->migrate;
	if (!m)
		return;
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	vm->migrate = NULL;
}
