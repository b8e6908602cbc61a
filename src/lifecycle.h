/*
 * lifecycle: pausing and resuming a running VM, and the control API's view
 * of the VM (api.h's ops). A pause parks every vCPU outside KVM_RUN and the
 * device back ends' loop between two callbacks: the guest neither runs nor
 * has a device change its memory behind it until it is resumed.
 */
#ifndef HVMM_LIFECYCLE_H
#define HVMM_LIFECYCLE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct vm;

/* vm_create: the state (and, with --api-sock, the socket). 0 or an hvmm
 * exit status after one line on stderr. */
int lifecycle_init(struct vm *vm);
/* vm_run, before the vCPUs: the API's thread. 0 or -errno. */
int lifecycle_start(struct vm *vm);
/* vm_run, once the VM stopped: no more requests; the socket is removed. */
void lifecycle_stop(struct vm *vm);
void lifecycle_destroy(struct vm *vm);

/* Park everything (idempotent). 0, or -1 with a one-line reason. */
int lifecycle_pause(struct vm *vm, char *err, size_t n);
int lifecycle_resume(struct vm *vm, char *err, size_t n);
bool lifecycle_paused(struct vm *vm);

/* Counts for --stats and --stats-json: pauses, how long the parking took. */
void lifecycle_print(struct vm *vm, FILE *f);
json_object *lifecycle_json(struct vm *vm);

#endif
