/*
 * api: hvmm's control API — HTTP/1.1 with JSON bodies on a unix socket
 * (--api-sock), shaped like Firecracker's wherever the two mean the same
 * thing, so that tooling written for Firecracker can drive hvmm:
 *
 *   GET   /                 {"app_name","id","state","vmm_version"}
 *   GET   /machine-config   {"vcpu_count","mem_size_mib","smt","track_dirty_pages"}
 *   PATCH /vm               {"state": "Paused" | "Resumed"}          -> 204
 *   PUT   /actions          {"action_type": ...} (the VM already runs: 400)
 *   GET   /hvmm/stats       the --stats-json document, live
 *   GET   /hvmm/irt         the interrupt routing table
 *   PUT   /hvmm/inject      {"kind": "irq"|"nmi"|"exception", "vector", "error_code"}
 *                           -> 204: the event goes into vCPU 0 at once
 *   PUT   /snapshot/create  {"snapshot_type": "Full"|"Diff", "snapshot_path", "mem_file_path"}
 *   PUT   /snapshot/load    {"snapshot_path", "mem_backend": {"backend_path", "backend_type": "File"},
 *                            "track_dirty_pages", "resume_vm"} (pre-boot only)
 *   PUT   /hvmm/migrate     {"destination": "tcp:HOST:PORT", "downtime_ms"}
 *                           -> 204 once the guest runs there (docs/migration.md)
 *
 * Errors are {"fault_message": "..."} with 400 (a bad body: names the
 * field), 404 (no such path), 405 (with Allow), 413/431 (too large), 501
 * (a Firecracker endpoint hvmm does not serve). docs/api.md has it all.
 *
 * The server knows the VM only through struct api_ops, so that the unit
 * tests and the fuzz target drive it with a fake VM.
 */
#ifndef HVMM_API_H
#define HVMM_API_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_ops {
	void *opaque;
	/* "Running" or "Paused" */
	const char *(*state)(void *opaque);
	/* 0, or -1 with a one-line reason in err (the VM is stopping, ...) */
	int (*pause)(void *opaque, char *err, size_t n);
	int (*resume)(void *opaque, char *err, size_t n);
	/* new objects the caller puts */
	json_object *(*machine_config)(void *opaque);
	json_object *(*stats)(void *opaque);
	json_object *(*irt)(void *opaque);
	/* spec as --inject's without "@MS" ("irq:94", "nmi", "exception:13:0");
	 * 0, or -1 with a one-line reason in err */
	int (*inject)(void *opaque, const char *spec, char *err, size_t n);
	/* PUT /snapshot/create: the paused VM's state and RAM to these files
	 * (diff: snapshot_type "Diff", only the pages written since the last
	 * snapshot); 0, or -1 with a one-line reason in err */
	int (*snapshot_create)(void *opaque, const char *state_path, const char *mem_path, bool diff, char *err,
			       size_t n);
	/* PUT /snapshot/load, before the VM exists and before any
	 * configuration: build the VM the state file describes from it and the
	 * memory file, with dirty-page tracking on if track, running if resume
	 * (else paused). 0 once the socket serves it; -1 with a one-line reason
	 * in err (nothing was built, another load may follow). NULL once a VM
	 * exists: the router refuses. */
	int (*snapshot_load)(void *opaque, const char *state_path, const char *mem_path, bool track, bool resume,
			     char *err, size_t n);
	/*
	 * Before the VM exists (hvmm run --api-sock with no image: preboot.h),
	 * Firecracker's pre-boot configuration; NULL once it runs, and the
	 * router then refuses those requests. section: "boot-source",
	 * "drives", "network-interfaces", "machine-config" or "entropy"; id the
	 * path's last element for drives and network interfaces (else NULL);
	 * patch for PATCH /machine-config. 0, or -1 with a reason in err.
	 */
	int (*configure)(void *opaque, const char *section, const char *id, bool patch, json_object *body,
			 char *err, size_t n);
	/* PUT /actions InstanceStart, before the VM exists: build and start
	 * it. 0, or -1 with what stopped it in err. */
	int (*instance_start)(void *opaque, char *err, size_t n);
	/* PUT /actions FlushMetrics: one metrics line now (metrics.h). */
	int (*flush_metrics)(void *opaque, char *err, size_t n);
	/* PUT /hvmm/migrate: live migration to dest ("tcp:HOST:PORT") within a
	 * downtime budget; answered when it ended. 0: the guest runs there now
	 * (this VM stops); -1: refused (400), -2: failed (500), the VM runs on
	 * here; the reason in err. */
	int (*migrate)(void *opaque, const char *dest, uint32_t downtime_ms, char *err, size_t n);
	const char *id;      /* the instance's name in GET / */
	const char *version; /* hvmm's version */
};

/* One request, routed: status and a malloc'd JSON body (NULL for 204).
 * Pure: no I/O beyond what the ops do. */
struct api_reply {
	int status;
	char *body;
	const char *allow; /* 405: the methods the path takes */
};
void api_route(const struct api_ops *ops, const char *method, const char *path, const char *body,
	       size_t len, struct api_reply *r);

/* A connection's HTTP state: bytes in, whole responses out. */
struct api_conn;
struct api_conn *api_conn_new(const struct api_ops *ops);
/* Parse n more bytes; every complete request is answered by appending its
 * response to *out (realloc'd, *out_len grows). Returns 0 to keep reading,
 * -1 when the connection must close once *out is written (a malformed or
 * oversized request, or the client asked for close). */
int api_conn_feed(struct api_conn *c, const char *data, size_t n, char **out, size_t *out_len);
void api_conn_free(struct api_conn *c);

/* Limits on what a client may send. */
#define API_MAX_URL 1024
#define API_MAX_HEADERS (16 * 1024)
#define API_MAX_BODY (64 * 1024)
#define API_MAX_CONNS 16

/* The server: the socket is made at start-up (a bad path is the user's
 * error before the guest runs), the thread started with the VM. */
struct api_server;
/* Bind and listen on path (refused if it exists). NULL with err set. */
struct api_server *api_open(const char *path, char *err, size_t n);
/* Serve on its own thread. 0 or -errno. */
int api_start(struct api_server *s, const struct api_ops *ops);
/* Serve with other handlers from the next request on (the pre-boot API
 * hands over to the VM it built). Not from inside a handler. */
void api_set_ops(struct api_server *s, const struct api_ops *ops);
/*
 * The same, while the API thread waits inside a handler for the caller
 * (the pre-boot request that built the VM): that thread holds the lock
 * api_set_ops takes and reads nothing until the caller answers it, so the
 * handlers are replaced without the lock. The request after the answer
 * then already finds the new ones.
 */
void api_set_ops_waiting(struct api_server *s, const struct api_ops *ops);
/* Stop the thread, close every connection, remove the socket file. */
void api_close(struct api_server *s);

#endif
