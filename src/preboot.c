/*
 * preboot: Firecracker's pre-boot API (see preboot.h).
 */
#include "preboot.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "config_file.h"
#include "util.h"

enum preboot_state {
	PREBOOT_CONFIGURING,
	PREBOOT_START_REQUESTED, /* InstanceStart waits for the main thread */
	PREBOOT_ANSWERED,        /* the main thread said how it went */
	PREBOOT_STARTED,         /* the VM runs (or is being handed the socket) */
};

struct preboot {
	struct api_ops ops;
	json_object *desc; /* Firecracker's JSON, as configured so far */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum preboot_state state;
	struct preboot_load load; /* a load's request, while it waits; else empty */
	bool loading;
	bool ok;
	char why[300];
};

/* The description with one section (or one entry of a list) replaced,
 * checked as a whole the way --config-file checks a file. */
static int preboot_check(json_object *d, char *err, size_t n)
{
	const char *text = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
	char **argv = NULL;
	int argc = 0;
	int r = config_file_parse(text, strlen(text), &argv, &argc, err, n);
	config_file_free(argv, argc);
	return r;
}

/* Put body into list `key` of d, replacing the entry with the same id. */
static void preboot_put_entry(json_object *d, const char *key, const char *idkey, const char *id, json_object *body)
{
	json_object *list = NULL;
	if (!json_object_object_get_ex(d, key, &list)) {
		list = json_object_new_array();
		json_object_object_add(d, key, list);
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i), *eid = NULL;
		if (json_object_object_get_ex(e, idkey, &eid) && strcmp(json_object_get_string(eid), id) == 0) {
			json_object_array_put_idx(list, i, json_object_get(body));
			return;
		}
	}
	json_object_array_add(list, json_object_get(body));
}

static int preboot_configure(void *o, const char *section, const char *id, bool patch, json_object *body,
			     char *err, size_t n)
{
	struct preboot *p = o;
	pthread_mutex_lock(&p->lock);
	enum preboot_state st = p->state;
	pthread_mutex_unlock(&p->lock);
	if (st != PREBOOT_CONFIGURING) {
		snprintf(err, n, "the VM is starting: its %s cannot change", section);
		return -1;
	}
	json_object *d = NULL;
	if (json_object_deep_copy(p->desc, &d, NULL) < 0) {
		snprintf(err, n, "out of memory");
		return -1;
	}
	bool list = strcmp(section, "drives") == 0 || strcmp(section, "network-interfaces") == 0;
	if (list) {
		/* Firecracker's rule: the id in the body, if any, is the path's */
		const char *idkey = section[0] == 'd' ? "drive_id" : "iface_id";
		json_object *bid = NULL;
		if (json_object_object_get_ex(body, idkey, &bid) &&
		    (!json_object_is_type(bid, json_type_string) || strcmp(json_object_get_string(bid), id) != 0)) {
			snprintf(err, n, "%s in the body is not the path's '%.64s'", idkey, id);
			json_object_put(d);
			return -1;
		}
		if (!bid)
			json_object_object_add(body, idkey, json_object_new_string(id));
		preboot_put_entry(d, section, idkey, id, body);
	} else if (patch) {
		/* PATCH /machine-config: the fields given replace those set */
		json_object *mc = NULL;
		if (!json_object_object_get_ex(d, section, &mc)) {
			snprintf(err, n, "PATCH /machine-config before a PUT: there is nothing to patch");
			json_object_put(d);
			return -1;
		}
		json_object_object_foreach(body, key, val)
			json_object_object_add(mc, key, json_object_get(val));
	} else {
		json_object_object_add(d, section, json_object_get(body));
	}
	char why[300];
	if (preboot_check(d, why, sizeof(why)) < 0) {
		snprintf(err, n, "%s", why);
		json_object_put(d);
		return -1;
	}
	json_object_put(p->desc);
	p->desc = d;
	return 0;
}

/* With p->lock held: hand the start (or the load) to the main thread and
 * wait for its verdict. A failure goes back to configuring, with the main
 * thread's reason (or fallback) in err. */
static bool preboot_hand_over(struct preboot *p, const char *fallback, char *err, size_t n)
{
	p->state = PREBOOT_START_REQUESTED;
	pthread_cond_broadcast(&p->cond);
	while (p->state == PREBOOT_START_REQUESTED)
		pthread_cond_wait(&p->cond, &p->lock);
	bool ok = p->ok;
	if (!ok)
		snprintf(err, n, "%s", p->why[0] ? p->why : fallback);
	p->state = ok ? PREBOOT_STARTED : PREBOOT_CONFIGURING;
	return ok;
}

static int preboot_start(void *o, char *err, size_t n)
{
	struct preboot *p = o;
	if (!json_object_object_get_ex(p->desc, "boot-source", NULL)) {
		snprintf(err, n, "no kernel to start: PUT /boot-source first");
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	if (p->state != PREBOOT_CONFIGURING) {
		pthread_mutex_unlock(&p->lock);
		snprintf(err, n, "the VM is already starting");
		return -1;
	}
	bool ok = preboot_hand_over(p, "the VM could not be built", err, n);
	pthread_mutex_unlock(&p->lock);
	return ok ? 0 : -1;
}

static void preboot_load_free(struct preboot_load *l)
{
	free(l->state_path);
	free(l->mem_path);
	free(l->metrics);
	*l = (struct preboot_load){ 0 };
}

/* PUT /snapshot/load: handed to the main thread, which checks the files
 * before it builds anything (a refusal leaves the process as it was, ready
 * for another request) and then builds the VM as for InstanceStart. */
static int preboot_snapshot_load(void *o, const char *state, const char *mem, bool track, bool resume, char *err,
				 size_t n)
{
	struct preboot *p = o;
	pthread_mutex_lock(&p->lock);
	enum preboot_state st = p->state;
	pthread_mutex_unlock(&p->lock);
	if (st != PREBOOT_CONFIGURING) {
		snprintf(err, n, "the VM is already starting");
		return -1;
	}
	/* The snapshot is the VM's configuration: none may come before it,
	 * but where the metrics go (as Firecracker, which takes the logger's and
	 * the metrics' configuration before a load). */
	json_object *met = NULL, *mp = NULL;
	bool has_met = json_object_object_get_ex(p->desc, "metrics", &met);
	if (json_object_object_length(p->desc) > (has_met ? 1 : 0)) {
		snprintf(err, n, "a snapshot is loaded into an hvmm with no configuration, and this one has been "
			 "configured: start a new hvmm run --api-sock");
		return -1;
	}
	struct preboot_load l = { .track = track, .resume = resume };
	l.state_path = strdup(state);
	l.mem_path = strdup(mem);
	bool oom = !l.state_path || !l.mem_path;
	if (!oom && has_met && json_object_object_get_ex(met, "metrics_path", &mp))
		oom = !(l.metrics = strdup(json_object_get_string(mp)));
	if (oom) {
		preboot_load_free(&l);
		snprintf(err, n, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	p->load = l;
	p->loading = true;
	bool ok = preboot_hand_over(p, "the VM could not be restored", err, n);
	p->loading = false;
	preboot_load_free(&p->load);
	pthread_mutex_unlock(&p->lock);
	return ok ? 0 : -1;
}

static const char *preboot_state_name(void *o)
{
	(void)o;
	return "Not started";
}

static int preboot_not_yet(void *o, char *err, size_t n)
{
	(void)o;
	snprintf(err, n, "the VM has not started (PUT /actions InstanceStart)");
	return -1;
}

static int preboot_inject(void *o, const char *spec, char *err, size_t n)
{
	(void)spec;
	return preboot_not_yet(o, err, n);
}

static int preboot_snapshot(void *o, const char *s, const char *m, bool diff, char *err, size_t n)
{
	(void)s, (void)m, (void)diff;
	return preboot_not_yet(o, err, n);
}

/* GET /machine-config: what is set, with the values hvmm would use. */
static json_object *preboot_machine(void *o)
{
	struct preboot *p = o;
	json_object *mc = NULL, *v = NULL;
	json_object_object_get_ex(p->desc, "machine-config", &mc);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "vcpu_count", json_object_new_int(mc && json_object_object_get_ex(mc, "vcpu_count", &v)
								     ? json_object_get_int(v) : 1));
	json_object_object_add(j, "mem_size_mib", json_object_new_int(mc && json_object_object_get_ex(mc, "mem_size_mib", &v)
								       ? json_object_get_int(v) : 128));
	json_object_object_add(j, "smt", json_object_new_boolean(0));
	json_object_object_add(j, "track_dirty_pages",
			       json_object_new_boolean(mc && json_object_object_get_ex(mc, "track_dirty_pages", &v) &&
						       json_object_get_boolean(v)));
	return j;
}

static json_object *preboot_stats(void *o)
{
	(void)o;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "state", json_object_new_string("Not started"));
	return j;
}

static json_object *preboot_irt(void *o)
{
	(void)o;
	return json_object_new_array();
}

struct preboot *preboot_new(const char *id)
{
	struct preboot *p = calloc(1, sizeof(*p));
	if (!p || !(p->desc = json_object_new_object())) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->ops = (struct api_ops){
		.opaque = p,
		.state = preboot_state_name,
		.pause = preboot_not_yet,
		.resume = preboot_not_yet,
		.machine_config = preboot_machine,
		.stats = preboot_stats,
		.irt = preboot_irt,
		.inject = preboot_inject,
		.snapshot_create = preboot_snapshot,
		.snapshot_load = preboot_snapshot_load,
		.flush_metrics = preboot_not_yet,
		.configure = preboot_configure,
		.instance_start = preboot_start,
		.id = id ? id : "anonymous-instance",
		.version = HVMM_VERSION,
	};
	return p;
}

const struct api_ops *preboot_ops(struct preboot *p)
{
	return &p->ops;
}

int preboot_wait(struct preboot *p, const sigset_t *sigs, char **json, const struct preboot_load **load,
		 int *status)
{
	*json = NULL;
	*load = NULL;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		bool start = p->state == PREBOOT_START_REQUESTED;
		bool loading = p->loading;
		pthread_mutex_unlock(&p->lock);
		if (start && loading) {
			*load = &p->load; /* still until the answer */
			return 1;
		}
		if (start) {
			/* the API thread waits inside InstanceStart: desc is still */
			*json = strdup(json_object_to_json_string_ext(p->desc, JSON_C_TO_STRING_PLAIN));
			if (*json)
				return 1;
			preboot_answer(p, false, "out of memory");
			continue;
		}
		struct timespec ts = { 0, 50000000 };
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0) {
			*status = 128 + sig;
			return 0;
		}
	}
}

void preboot_answer(struct preboot *p, bool ok, const char *why)
{
	pthread_mutex_lock(&p->lock);
	p->ok = ok;
	snprintf(p->why, sizeof(p->why), "%s", why ? why : "");
	p->state = PREBOOT_ANSWERED;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void preboot_free(struct preboot *p)
{
	if (!p)
		return;
	json_object_put(p->desc);
	preboot_load_free(&p->load);
	free(p);
}
