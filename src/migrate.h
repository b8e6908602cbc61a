/*
 * migrate: live migration of a running VM to another hvmm process over TCP,
 * pre-copy (docs/migration.md). The source copies RAM while the guest runs,
 * then the pages KVM's dirty log (and hvmm's own DMA record, memory.h) say
 * were written since, round after round, until what is left fits the
 * downtime budget; then it pauses the guest, sends the last pages and the
 * state a snapshot holds, and ends once the destination says it runs.
 */
#ifndef HVMM_MIGRATE_H
#define HVMM_MIGRATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct vm;

#define MIGRATE_DOWNTIME_MS 300 /* the default budget */

/* ---- the destination (--incoming tcp:ADDR:PORT) ---- */

/* vm_create, first: listen (one line and an exit status if it cannot). */
int migrate_listen(struct vm *vm);
/* vm_create, once the devices and vCPUs exist: accept one connection,
 * receive RAM and the state, load the state as --restore does. 0 or an
 * exit status after one line on stderr (nothing of the guest ran). */
int migrate_incoming(struct vm *vm);
/* vm_run, before the vCPUs start: take the disks' locks and tell the source
 * the guest runs here now. 0 or an exit status after one line. */
int migrate_incoming_go(struct vm *vm);

/* ---- the source (PUT /hvmm/migrate, on the API thread) ---- */

/*
 * Migrate to dest ("tcp:HOST:PORT", HOST numeric) with a downtime budget.
 * 0: the guest runs at the destination and this VM is stopping (status 0).
 * -1: refused before anything was sent (the request or this VM's state);
 * -2: the migration failed (connect, stream, the destination's refusal):
 * the VM goes on running here. The reason in err either way.
 */
int migrate_out(struct vm *vm, const char *dest, uint32_t downtime_ms, char *err, size_t n);

/* "tcp:HOST:PORT" → a socket address; HOST may be empty (any) when
 * listening, an IPv4 address, or an IPv6 one in brackets. 0 or -1 with err. */
int migrate_parse_addr(const char *spec, bool listening, struct sockaddr_storage *ss, socklen_t *len,
		       char *err, size_t n);

/* --stats / --stats-json */
void migrate_print(struct vm *vm, FILE *f);
json_object *migrate_json(struct vm *vm);
void migrate_destroy(struct vm *vm);

#endif
