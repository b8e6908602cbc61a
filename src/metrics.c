/*
 * metrics: periodic statistics lines (see metrics.h). The line is
 * stats_json()'s document — the same as GET /hvmm/stats and --stats-json —
 * with the time and the reason first: hvmm's own fields, not Firecracker's
 * (its block/net/vcpu counters have no one-to-one match), in the same
 * framing (JSON lines) so that a collector reading Firecracker's pipe reads
 * hvmm's too.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lifecycle.h"
#include "stats.h"
#include "util.h"
#include "vm.h"

struct metrics {
	int fd;
	pthread_mutex_t lock; /* the main thread's periodic lines and the API's flushes */
	uint64_t next_ns;
	uint64_t lines, errors;
};

int metrics_open(struct vm *vm)
{
	if (!vm->cfg.metrics_path)
		return 0;
	/* O_NONBLOCK for the open only: a pipe nobody reads yet must not hang
	 * the start (it fails with ENXIO instead, which the user is told). */
	int fd = open(vm->cfg.metrics_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		util_err("--metrics %s: %s", vm->cfg.metrics_path,
			 errno == ENXIO ? "a named pipe nobody reads" : strerror(errno));
		return HVMM_EXIT_USAGE;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	m->fd = fd;
	pthread_mutex_init(&m->lock, NULL);
	m->next_ns = util_now_ns() + METRICS_PERIOD_NS;
	vm->metrics = m;
	return 0;
}

int metrics_flush(struct vm *vm, const char *reason, char *err, unsigned n)
{
	struct metrics *m = vm->metrics;
	if (!m) {
		snprintf(err, n, "no metrics file: start hvmm with --metrics PATH");
		return -1;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object *line = json_object_new_object();
	json_object_object_add(line, "utc_timestamp_ms",
			       json_object_new_uint64((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000));
	json_object_object_add(line, "reason", json_object_new_string(reason));
	json_object_object_add(line, "hvmm", stats_json(vm, false));
	const char *text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN);
	pthread_mutex_lock(&m->lock);
	/* one write per line, so that a reader never sees half of one */
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	int r = buf ? 0 : -ENOMEM;
	if (buf) {
		memcpy(buf, text, len);
		buf[len] = '\n';
		r = util_write_all(m->fd, buf, len + 1);
		free(buf);
	}
	if (r < 0)
		m->errors++;
	else
		m->lines++;
	m->next_ns = util_now_ns() + METRICS_PERIOD_NS;
	pthread_mutex_unlock(&m->lock);
	json_object_put(line);
	if (r < 0) {
		snprintf(err, n, "writing %s: %s", vm->cfg.metrics_path, strerror(-r));
		return -1;
	}
	return 0;
}

uint64_t metrics_due_ns(struct vm *vm)
{
	struct metrics *m = vm->metrics;
	if (!m)
		return 0;
	pthread_mutex_lock(&m->lock);
	uint64_t t = m->next_ns;
	pthread_mutex_unlock(&m->lock);
	return t;
}

void metrics_close(struct vm *vm)
{
	struct metrics *m = vm->metrics;
	if (!m)
		return;
	close(m->fd);
	free(m);
	vm->metrics = NULL;
}
