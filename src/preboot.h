/*
 * preboot: the control API before the VM exists, as Firecracker has it.
 *
 * `hvmm run --api-sock PATH` with no image starts only the API. A client
 * then describes the VM — PUT /machine-config, /boot-source,
 * /drives/{id}, /network-interfaces/{id}, /entropy — and starts it with
 * PUT /actions {"action_type": "InstanceStart"} — or, instead of any of
 * that, loads a snapshot (PUT /snapshot/load), which holds the VM's
 * configuration itself. The description is kept
 * as Firecracker's JSON (config_file.h's format), checked as a whole at
 * every request, and at the start becomes the hvmm options the main thread
 * builds the VM from; the same socket then serves the running VM.
 *
 * Threads: the handlers run on the API thread; the main thread waits in
 * preboot_wait for a start, builds the VM, and answers with preboot_answer,
 * which the waiting InstanceStart request returns.
 */
#ifndef HVMM_PREBOOT_H
#define HVMM_PREBOOT_H

#include <signal.h>
#include <stdbool.h>

struct api_ops;
struct preboot;

/* id: the instance's name (--id) or NULL. NULL when out of memory. */
struct preboot *preboot_new(const char *id);
/* The handlers for api_start. */
const struct api_ops *preboot_ops(struct preboot *p);
/* PUT /snapshot/load's request. Its files are checked and read by the
 * main thread (snapshot_load_check): the API thread's seccomp list opens
 * no file for reading. */
struct preboot_load {
	char *state_path, *mem_path;
	char *metrics; /* PUT /metrics before the load (Firecracker allows it): its path, or NULL */
	bool track, resume;
};
/*
 * Main thread, with the signals in `sigs` blocked: wait for InstanceStart
 * (returns 1, *json the description, malloc'd, *load NULL), a snapshot
 * load (returns 1, *json NULL, *load the request, the preboot's until
 * the answer) or one of the signals (returns 0, *status 128+signal).
 */
int preboot_wait(struct preboot *p, const sigset_t *sigs, char **json, const struct preboot_load **load,
		 int *status);
/* The start's outcome, for the request waiting on it: ok, or why not.
 * An ok is given once the socket serves the VM (vm_config's api_ready). */
void preboot_answer(struct preboot *p, bool ok, const char *why);
void preboot_free(struct preboot *p);

#endif
