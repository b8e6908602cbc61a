/*
 * migrate's own: what both sides record, for --stats and the API.
 */
#ifndef HVMM_MIGRATE_PRIV_H
#define HVMM_MIGRATE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate.h"

struct migrate {
	/* destination */
	int listen_fd, fd;
	char where[96];            /* ADDR:PORT, as the user wrote it */
	bool incoming_done;
	uint64_t in_bytes, in_pages, in_rounds;
	uint64_t in_ns;            /* accept to the state loaded */
	uint64_t src_paused_rt;    /* the source's pause, CLOCK_REALTIME ns */
	uint64_t started_rt;       /* our vCPUs started, CLOCK_REALTIME ns */
	/* source */
	bool out_done;
	uint64_t out_total_ns, out_downtime_ns, out_bytes, out_pages, out_rounds, out_final_pages;
	uint64_t out_bw;           /* bytes per second, the last round's */
	uint64_t attempts, failures;
};

/* vm->migrate, made on first use. NULL when out of memory. */
struct migrate *migrate_state(struct vm *vm);
uint64_t migrate_realtime_ns(void);

#endif
