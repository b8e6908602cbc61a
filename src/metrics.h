/*
 * metrics: `--metrics PATH` (Firecracker's metrics_path): hvmm's statistics
 * as one JSON object per line, appended to a file or written into a named
 * pipe a collector reads — every 60 s as Firecracker does it, on the API's
 * PUT /actions FlushMetrics, and once when the VM stops.
 */
#ifndef HVMM_METRICS_H
#define HVMM_METRICS_H

#include <stdint.h>

struct vm;

#define METRICS_PERIOD_NS (60ull * 1000000000ull)

/* vm_create: open the file (appending) or pipe. 0 or an hvmm exit status
 * after one line on stderr. Nothing without --metrics. */
int metrics_open(struct vm *vm);
/* One line now; reason is "periodic", "flush" or "stop". Any thread. 0, or
 * -1 with the reason in err (the writer went away, a full disk). */
int metrics_flush(struct vm *vm, const char *reason, char *err, unsigned n);
/* When the next periodic line is due (CLOCK_MONOTONIC ns), 0 without --metrics. */
uint64_t metrics_due_ns(struct vm *vm);
void metrics_close(struct vm *vm);

#endif
