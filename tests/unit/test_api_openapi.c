/* api_openapi: docs/api.openapi.json against the router, both ways, so that
 * neither can change without the other. Every documented operation is
 * routed (with a fake VM, as in test_api.c) with the document's own example
 * body, and must answer a status the document lists, with a body its schema
 * allows; every route the server has must be documented, and every method
 * the document leaves out of a path must be a 405 from the router.
 *
 * The response shapes checked are the fake VM's (built here to follow
 * src/lifecycle.c and src/stats.c); what the router itself writes (GET /,
 * every Error) is checked as is. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"

#ifndef HVMM_OPENAPI
#error "the Makefile passes HVMM_OPENAPI, the path of docs/api.openapi.json"
#endif

/* ---- a fake VM ---- */

struct fake_vm {
	char state[16];
	int fail_pause; /* pause and resume refuse, as when the VM is stopping */
};

static struct fake_vm fake;

static const char *fake_state(void *o)
{
	return ((struct fake_vm *)o)->state;
}

static int fake_pause(void *o, char *err, size_t n)
{
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	strcpy(f->state, "Paused");
	return 0;
}

static int fake_resume(void *o, char *err, size_t n)
{
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	strcpy(f->state, "Running");
	return 0;
}

/* The same members as lifecycle_api_machine() writes. */
static json_object *fake_machine(void *o)
{
	(void)o;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "vcpu_count", json_object_new_int(2));
	json_object_object_add(j, "mem_size_mib", json_object_new_uint64(256));
	json_object_object_add(j, "smt", json_object_new_boolean(0));
	json_object_object_add(j, "track_dirty_pages", json_object_new_boolean(0));
	return j;
}

/* One entry as stats_json_irt() writes it. */
static json_object *fake_irt_entry(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "device", json_object_new_string("virtio-blk"));
	json_object_object_add(o, "devfn", json_object_new_int(0x18));
	json_object_object_add(o, "vector", json_object_new_int(0));
	json_object_object_add(o, "gsi", json_object_new_int(24));
	json_object_object_add(o, "dest_apic_id", json_object_new_int(0));
	json_object_object_add(o, "guest_vector", json_object_new_int(0x22));
	json_object_object_add(o, "masked", json_object_new_boolean(0));
	json_object_object_add(o, "irqfd", json_object_new_boolean(1));
	json_object_object_add(o, "delivery", json_object_new_string("irqfd"));
	json_object_object_add(o, "sent", json_object_new_uint64(7));
	json_object_object_add(o, "sent_on_unmask", json_object_new_uint64(0));
	return o;
}

static json_object *fake_irt(void *o)
{
	(void)o;
	json_object *a = json_object_new_array();
	json_object_array_add(a, fake_irt_entry());
	return a;
}

/* A few of stats_json()'s always-present members, and one it may add. */
static json_object *fake_stats(void *o)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "userspace_exits", json_object_new_uint64(3));
	json_object_object_add(j, "exits_by_reason", json_object_new_object());
	json_object_object_add(j, "vcpus", json_object_new_array());
	json_object_object_add(j, "irt", fake_irt(o));
	json_object_object_add(j, "run_ns", json_object_new_uint64(1000));
	json_object_object_add(j, "lifecycle", json_object_new_object());
	json_object_object_add(j, "coalesced_writes", json_object_new_uint64(0));
	return j;
}

/* What inject_now() takes: any spec the router builds is well-formed. */
static int fake_inject(void *o, const char *spec, char *err, size_t n)
{
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	return strncmp(spec, "irq:", 4) == 0 || strcmp(spec, "nmi") == 0 || strncmp(spec, "exception:", 10) == 0
		       ? 0 : (snprintf(err, n, "bad spec %s", spec), -1);
}

/* What snapshot_create() refuses: a running VM. */
static int fake_snapshot(void *o, const char *state, const char *mem, bool diff, char *err, size_t n)
{
	(void)state, (void)mem, (void)diff;
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "the VM is running: pause it first");
		return -1;
	}
	return 0;
}

/* The pre-boot handlers: a VM that refuses (mode 2) refuses these too. */
static int fake_configure(void *o, const char *section, const char *id, bool patch, json_object *body, char *err,
			  size_t n)
{
	(void)section, (void)id, (void)patch, (void)body;
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "the VM is starting");
		return -1;
	}
	return 0;
}

static int fake_start(void *o, char *err, size_t n)
{
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "no kernel to start: PUT /boot-source first");
		return -1;
	}
	return 0;
}

/* What snapshot_load_check() refuses: a file that is not a snapshot. */
static int fake_load(void *o, const char *state, const char *mem, bool track, bool resume, char *err, size_t n)
{
	(void)state, (void)mem, (void)track, (void)resume;
	struct fake_vm *f = o;
	if (f->fail_pause) {
		snprintf(err, n, "%s is not an hvmm snapshot", state);
		return -1;
	}
	return 0;
}

/* What migrate_out() refuses (400) or fails (500): a stopping VM here. */
static int fake_migrate(void *o, const char *dest, uint32_t downtime_ms, char *err, size_t n)
{
	struct fake_vm *f = o;
	if (strncmp(dest, "tcp:", 4) != 0 || downtime_ms < 1 || downtime_ms > 60000) {
		snprintf(err, n, "bad request");
		return -1;
	}
	if (f->fail_pause) {
		snprintf(err, n, "cannot connect");
		return -2;
	}
	return 0;
}

static const struct api_ops ops = {
	.opaque = &fake, .state = fake_state, .pause = fake_pause, .resume = fake_resume,
	.machine_config = fake_machine, .stats = fake_stats, .irt = fake_irt, .inject = fake_inject,
	.snapshot_create = fake_snapshot, .configure = fake_configure, .instance_start = fake_start,
	.migrate = fake_migrate, .snapshot_load = fake_load,
	.id = "vm-1", .version = "9.9",
};

/* ---- what the server serves, written down here independently of the
 * document (the brief the document was written from) ---- */

static const struct {
	const char *method, *path;
} served[] = {
	{ "GET", "/" },		  { "GET", "/machine-config" }, { "PUT", "/machine-config" },
	{ "PATCH", "/machine-config" }, { "PATCH", "/vm" },     { "PUT", "/actions" },
	{ "GET", "/hvmm/stats" },	  { "GET", "/hvmm/irt" },	{ "PUT", "/hvmm/inject" },
	{ "PUT", "/snapshot/create" },  { "PUT", "/snapshot/load" },
	{ "PUT", "/boot-source" },      { "PUT", "/drives/{drive_id}" },
	{ "PUT", "/network-interfaces/{iface_id}" }, { "PUT", "/entropy" }, { "PUT", "/metrics" },
	{ "PUT", "/hvmm/migrate" },
};
#define N_SERVED (sizeof(served) / sizeof(served[0]))

/* Firecracker's paths hvmm answers 501: not operations in the document. */
static const char *const firecracker_only[] = {
	"/snapshot", "/mmds", "/balloon", "/logger", "/vsock", "/cpu-config", "/version", "/vm/config",
};

/* Every method an OpenAPI path item can hold. */
static const char *const methods[] = { "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE" };
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

/* ---- the document ---- */

static json_object *doc;

static int load_doc(void **state)
{
	(void)state;
	doc = json_object_from_file(HVMM_OPENAPI);
	if (!doc) {
		fprintf(stderr, "cannot load %s: %s\n", HVMM_OPENAPI, json_util_get_last_err());
		return -1;
	}
	return 0;
}

static int free_doc(void **state)
{
	(void)state;
	json_object_put(doc);
	return 0;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* Follow "$ref": "#/a/b/c" (local references only: the document has no
 * other kind, and one would be a mistake here). */
static json_object *resolve(json_object *o)
{
	for (int depth = 0; depth < 16; depth++) {
		json_object *ref = get(o, "$ref");
		if (!ref)
			return o;
		const char *s = json_object_get_string(ref);
		if (strncmp(s, "#/", 2) != 0)
			fail_msg("non-local $ref %s", s);
		json_object *t = doc;
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", s + 2);
		for (char *save, *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
			t = get(t, tok);
		if (!t)
			fail_msg("dangling $ref %s", s);
		o = t;
	}
	fail_msg("$ref loop");
	return NULL;
}

static json_object *operation(const char *path, const char *method)
{
	char m[16];
	size_t i = 0;
	for (; method[i] && i < sizeof(m) - 1; i++)
		m[i] = (char)tolower((unsigned char)method[i]);
	m[i] = 0;
	return get(get(get(doc, "paths"), path), m);
}

/* The value v is what schema allows, to the depth the brief asks: its JSON
 * type; for an object, every required member present, no member outside
 * properties when additionalProperties is false, and each member checked
 * in turn; for an array, each item; for a string, its enum. */
static void check_schema(json_object *schema, json_object *v, const char *where)
{
	schema = resolve(schema);
	json_object *type = get(schema, "type");
	const char *t = type ? json_object_get_string(type) : NULL;
	if (!t)
		return;
	if (strcmp(t, "object") == 0) {
		if (!json_object_is_type(v, json_type_object))
			fail_msg("%s: not an object: %s", where, json_object_to_json_string(v));
		json_object *props = get(schema, "properties");
		json_object *req = get(schema, "required");
		for (size_t i = 0; req && i < json_object_array_length(req); i++) {
			const char *k = json_object_get_string(json_object_array_get_idx(req, i));
			if (!get(v, k))
				fail_msg("%s: required member '%s' missing in %s", where, k, json_object_to_json_string(v));
		}
		json_object *addl = get(schema, "additionalProperties");
		bool closed = addl && json_object_is_type(addl, json_type_boolean) && !json_object_get_boolean(addl);
		json_object_object_foreach(v, key, val) {
			json_object *ps = get(props, key);
			if (!ps && closed)
				fail_msg("%s: member '%s' is not in the schema", where, key);
			if (ps) {
				char w[256];
				snprintf(w, sizeof(w), "%s.%s", where, key);
				check_schema(ps, val, w);
			}
		}
	} else if (strcmp(t, "array") == 0) {
		if (!json_object_is_type(v, json_type_array))
			fail_msg("%s: not an array", where);
		for (size_t i = 0; i < json_object_array_length(v); i++)
			check_schema(get(schema, "items"), json_object_array_get_idx(v, i), where);
	} else if (strcmp(t, "string") == 0) {
		if (!json_object_is_type(v, json_type_string))
			fail_msg("%s: not a string", where);
		json_object *en = get(schema, "enum");
		bool found = !en;
		for (size_t i = 0; en && i < json_object_array_length(en); i++)
			found = found || strcmp(json_object_get_string(json_object_array_get_idx(en, i)),
						json_object_get_string(v)) == 0;
		if (!found)
			fail_msg("%s: \"%s\" is not in the enum", where, json_object_get_string(v));
	} else if (strcmp(t, "integer") == 0) {
		if (!json_object_is_type(v, json_type_int))
			fail_msg("%s: not an integer", where);
	} else if (strcmp(t, "boolean") == 0) {
		if (!json_object_is_type(v, json_type_boolean))
			fail_msg("%s: not a boolean", where);
	}
}

/* api_route, with check (c): every 4xx/5xx body is an Error. r->body is
 * the caller's to free. */
static void route_reply(const char *method, const char *path, const char *body, struct api_reply *r)
{
	api_route(&ops, method, path, body, body ? strlen(body) : 0, r);
	if (r->status >= 400) {
		json_object *e = r->body ? json_tokener_parse(r->body) : NULL;
		json_object *m = get(e, "fault_message");
		if (!m || !json_object_is_type(m, json_type_string))
			fail_msg("%s %s: %d without a string fault_message: %s", method, path, r->status,
				 r->body ? r->body : "(no body)");
		check_schema(get(get(get(doc, "components"), "schemas"), "Error"), e, "Error");
		json_object_put(e);
	}
}

static int route(const char *method, const char *path, const char *body, char **out)
{
	struct api_reply r;
	route_reply(method, path, body, &r);
	*out = r.body;
	return r.status;
}

/* The VM states each operation is tried in: the fake's answers differ. */
static void fake_mode(int mode)
{
	memset(&fake, 0, sizeof(fake));
	strcpy(fake.state, mode == 1 ? "Paused" : "Running");
	fake.fail_pause = mode == 2;
}

/* One request against the document's operation: its status must be listed
 * (an explicit code: `default` stands for the framing's answers, which
 * api_route never gives), and a 2xx's body must fit its schema. */
static void check_one(const char *method, const char *path, json_object *op, const char *body, bool healthy)
{
	char *out;
	int status = route(method, path, body, &out);
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	json_object *resp = get(get(op, "responses"), code);
	if (!resp)
		fail_msg("%s %s with %s: status %d is not documented (body %s)", method, path,
			 body ? body : "no body", status, out ? out : "none");
	/* A valid body to a VM that does not refuse must succeed wherever the
	 * document promises success: else an enum value the code rejects
	 * would pass as "a documented 400". */
	bool promises = false;
	json_object_object_foreach(get(op, "responses"), rcode, rval) {
		(void)rval;
		promises = promises || rcode[0] == '2';
	}
	if (healthy && promises && (status < 200 || status >= 300))
		fail_msg("%s %s with %s: %d, but the document promises a 2xx (body %s)", method, path,
			 body ? body : "no body", status, out ? out : "none");
	resp = resolve(resp);
	json_object *schema = get(get(get(resp, "content"), "application/json"), "schema");
	if (status >= 200 && status < 300) {
		if (!schema && out)
			fail_msg("%s %s: %d documented without content, but got %s", method, path, status, out);
		if (schema) {
			json_object *v = out ? json_tokener_parse(out) : NULL;
			if (!v)
				fail_msg("%s %s: %d with no JSON body", method, path, status);
			char w[64];
			snprintf(w, sizeof(w), "%s %s", method, path);
			check_schema(schema, v, w);
			json_object_put(v);
		}
	}
	free(out);
}

/* (a) Every operation in the document, with its example body and with each
 * enum value of the example's members put in turn, in every fake state; an
 * operation whose members depend on each other (PUT /hvmm/inject: a vector
 * for irq, none for nmi) lists each valid body under `examples` instead,
 * and each of those is sent as it is. */
static void test_documented_operations_answer_as_documented(void **state)
{
	(void)state;
	int ops_seen = 0;
	json_object_object_foreach(get(doc, "paths"), path, item) {
		(void)item;
		for (size_t mi = 0; mi < N_METHODS; mi++) {
			json_object *op = operation(path, methods[mi]);
			if (!op)
				continue;
			ops_seen++;
			json_object *responses = get(op, "responses");
			assert_non_null(responses);
			json_object *rb = resolve(get(op, "requestBody"));
			json_object *media = get(get(rb, "content"), "application/json");
			json_object *example = get(media, "example");
			json_object *schema = get(media, "schema");
			json_object *examples = get(media, "examples");
			if (examples) {
				json_object_object_foreach(examples, ename, ex) {
					json_object *v = get(ex, "value");
					if (!v)
						fail_msg("%s %s: example %s has no value", methods[mi], path, ename);
					check_schema(schema, v, ename);
					for (int mode = 0; mode < 3; mode++) {
						fake_mode(mode);
						check_one(methods[mi], path, op,
							  json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
							  mode != 2);
					}
				}
				continue;
			}
			if (rb && !example)
				fail_msg("%s %s: a requestBody without an example", methods[mi], path);
			if (example)
				check_schema(schema, example, "example"); /* the example fits its own schema */
			for (int mode = 0; mode < 3; mode++) {
				fake_mode(mode);
				check_one(methods[mi], path, op,
					  example ? json_object_to_json_string_ext(example, JSON_C_TO_STRING_PLAIN) : NULL,
					  mode != 2);
				json_object *props = get(resolve(schema), "properties");
				if (!props)
					continue;
				json_object_object_foreach(props, key, ps) {
					json_object *en = get(resolve(ps), "enum");
					for (size_t i = 0; en && i < json_object_array_length(en); i++) {
						json_object *b = NULL;
						json_object_deep_copy(example, &b, NULL);
						json_object_object_add(b, key, json_object_get(json_object_array_get_idx(en, i)));
						fake_mode(mode);
						check_one(methods[mi], path, op, json_object_to_json_string(b), mode != 2);
						json_object_put(b);
					}
				}
			}
		}
	}
	assert_int_equal(ops_seen, N_SERVED);
}

/* (b) What the server serves is in the document, the document has nothing
 * else, and the methods it leaves out of a path are 405 with an Allow
 * header naming exactly the ones it lists. */
static void test_served_routes_are_documented(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_SERVED; i++)
		if (!operation(served[i].path, served[i].method))
			fail_msg("%s %s is served but not documented", served[i].method, served[i].path);
	json_object_object_foreach(get(doc, "paths"), path, item) {
		(void)item;
		int documented = 0;
		for (size_t mi = 0; mi < N_METHODS; mi++) {
			bool in_served = false;
			for (size_t i = 0; i < N_SERVED; i++)
				in_served = in_served || (strcmp(served[i].path, path) == 0 &&
							  strcmp(served[i].method, methods[mi]) == 0);
			if (operation(path, methods[mi])) {
				if (!in_served)
					fail_msg("%s %s is documented but not in the served list", methods[mi], path);
				documented++;
				continue;
			}
			struct api_reply r;
			route_reply(methods[mi], path, "{}", &r);
			if (r.status != 405)
				fail_msg("%s %s: undocumented method answered %d, not 405", methods[mi], path, r.status);
			/* Allow: exactly the documented methods ("GET, PUT, PATCH"). */
			assert_non_null(r.allow);
			for (size_t mj = 0; mj < N_METHODS; mj++) {
				bool in_allow = false;
				size_t n = strlen(methods[mj]);
				for (const char *c = r.allow; (c = strstr(c, methods[mj])); c += n)
					in_allow = in_allow || ((c == r.allow || c[-1] == ' ') && (c[n] == ',' || !c[n]));
				if (in_allow != (operation(path, methods[mj]) != NULL))
					fail_msg("%s: Allow \"%s\" and the document disagree on %s", path, r.allow,
						 methods[mj]);
			}
			free(r.body);
		}
		assert_true(documented > 0);
	}
}

/* The 501s are not operations, but the description names each; a path
 * that is neither is a 404. */
static void test_unserved_paths(void **state)
{
	(void)state;
	const char *desc = json_object_get_string(get(get(doc, "info"), "description"));
	assert_non_null(desc);
	for (size_t i = 0; i < sizeof(firecracker_only) / sizeof(firecracker_only[0]); i++) {
		const char *p = firecracker_only[i];
		char sub[64], *out;
		snprintf(sub, sizeof(sub), "%s/x", p);
		assert_int_equal(route("GET", p, NULL, &out), 501);
		free(out);
		assert_int_equal(route("PUT", sub, "{}", &out), 501);
		free(out);
		if (get(get(doc, "paths"), p))
			fail_msg("%s is 501 but listed in paths", p);
		/* A whole name in the list ("/vm/config," or "/vm/config."), not
		 * the prefix of another. */
		char comma[64], stop[64];
		snprintf(comma, sizeof(comma), "%s,", p);
		snprintf(stop, sizeof(stop), "%s.", p);
		if (!strstr(desc, comma) && !strstr(desc, stop))
			fail_msg("the description does not name %s", p);
	}
	char *out;
	assert_int_equal(route("GET", "/no-such-path", NULL, &out), 404);
	free(out);
	assert_null(get(get(doc, "paths"), "/no-such-path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented_operations_answer_as_documented),
		cmocka_unit_test(test_served_routes_are_documented),
		cmocka_unit_test(test_unserved_paths),
	};
	return cmocka_run_group_tests(tests, load_doc, free_doc);
}
