/*
 * api: routing and HTTP framing of the control API (see api.h). The bytes a
 * client sends are hostile like a guest's: http-parser (Debian's
 * libhttp-parser) frames them, every length is capped before it is stored,
 * json-c parses bodies, and anything malformed gets a status and a
 * fault_message, never a crash or a VM stop.
 */
#include "api.h"

#include "config_file.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *api_strdup_json(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	char *d = strdup(s ? s : "null");
	json_object_put(o);
	return d;
}

static void api_fault(struct api_reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void api_fault(struct api_reply *r, int status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "fault_message", json_object_new_string(msg));
	r->status = status;
	r->body = api_strdup_json(o);
}

static void api_ok(struct api_reply *r, json_object *o)
{
	r->status = 200;
	r->body = api_strdup_json(o);
}

/* The body as a JSON object, or NULL with a 400 in r. */
static json_object *api_body_object(const char *body, size_t len, struct api_reply *r)
{
	if (len == 0) {
		api_fault(r, 400, "the request needs a JSON body");
		return NULL;
	}
	enum config_json_err e;
	const char *why;
	json_object *o = config_json_object(body, len, &e, &why);
	if (e == CONFIG_JSON_NOMEM)
		api_fault(r, 500, "out of memory");
	else if (e == CONFIG_JSON_BAD)
		api_fault(r, 400, "the body is not valid JSON%s%s", why[0] ? ": " : "", why);
	else if (e == CONFIG_JSON_NOT_OBJECT)
		api_fault(r, 400, "the body must be a JSON object");
	return o;
}

/* Every key of o must be one of `known` (NULL-terminated): a typo is an
 * error, not silently ignored. */
static bool api_known_fields(json_object *o, const char *const *known, struct api_reply *r)
{
	json_object_object_foreach(o, key, val) {
		(void)val;
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok = ok || strcmp(key, *k) == 0;
		if (!ok) {
			api_fault(r, 400, "unknown field '%.64s'", key);
			return false;
		}
	}
	return true;
}

/* A string field, or NULL with a 400 naming it. */
static const char *api_string_field(json_object *o, const char *name, struct api_reply *r)
{
	json_object *v;
	if (!json_object_object_get_ex(o, name, &v)) {
		api_fault(r, 400, "missing field '%s'", name);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		api_fault(r, 400, "field '%s' must be a string", name);
		return NULL;
	}
	return json_object_get_string(v);
}

static void api_get_root(const struct api_ops *ops, struct api_reply *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "app_name", json_object_new_string("hvmm"));
	json_object_object_add(o, "id", json_object_new_string(ops->id ? ops->id : "hvmm"));
	json_object_object_add(o, "state", json_object_new_string(ops->state(ops->opaque)));
	json_object_object_add(o, "vmm_version", json_object_new_string(ops->version ? ops->version : ""));
	api_ok(r, o);
}

static void api_patch_vm(const struct api_ops *ops, const char *body, size_t len, struct api_reply *r)
{
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "state", NULL };
	const char *state = api_known_fields(o, known, r) ? api_string_field(o, "state", r) : NULL;
	if (state) {
		char err[160] = "";
		if (strcmp(state, "Paused") == 0 || strcmp(state, "Resumed") == 0) {
			int rc = state[0] == 'P' ? ops->pause(ops->opaque, err, sizeof(err))
						 : ops->resume(ops->opaque, err, sizeof(err));
			if (rc < 0)
				api_fault(r, 400, "%s", err[0] ? err : "cannot change the VM's state");
			else
				r->status = 204;
		} else {
			api_fault(r, 400, "field 'state' must be \"Paused\" or \"Resumed\", not \"%.32s\"", state);
		}
	}
	json_object_put(o);
}

static void api_put_actions(const struct api_ops *ops, const char *body, size_t len, struct api_reply *r)
{
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "action_type", NULL };
	const char *a = api_known_fields(o, known, r) ? api_string_field(o, "action_type", r) : NULL;
	if (!a)
		;
	else if (strcmp(a, "InstanceStart") == 0 && ops->instance_start) {
		char err[300] = "";
		if (ops->instance_start(ops->opaque, err, sizeof(err)) < 0)
			api_fault(r, 400, "%s", err[0] ? err : "the VM could not be started");
		else
			r->status = 204;
	} else if (strcmp(a, "InstanceStart") == 0)
		api_fault(r, 400, "the VM already runs");
	else if (strcmp(a, "FlushMetrics") == 0) {
		char err[200] = "";
		if (!ops->flush_metrics || ops->flush_metrics(ops->opaque, err, sizeof(err)) < 0)
			api_fault(r, 400, "%s", err[0] ? err : "no metrics to flush");
		else
			r->status = 204;
	} else if (strcmp(a, "SendCtrlAltDel") == 0)
		api_fault(r, 400, "action_type \"%s\" is not supported by hvmm", a);
	else
		api_fault(r, 400, "field 'action_type' must be InstanceStart, SendCtrlAltDel or "
				  "FlushMetrics, not \"%.32s\"", a);
	json_object_put(o);
}

/* An integer field within [lo, hi]; *present false when absent. -1 with a
 * 400 naming it. */
static int api_int_field(json_object *o, const char *name, int64_t lo, int64_t hi, bool *present,
			 int64_t *out, struct api_reply *r)
{
	json_object *v;
	*present = json_object_object_get_ex(o, name, &v);
	if (!*present)
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		api_fault(r, 400, "field '%s' must be an integer", name);
		return -1;
	}
	*out = json_object_get_int64(v);
	if (*out < lo || *out > hi) {
		api_fault(r, 400, "field '%s' must be %lld..%lld", name, (long long)lo, (long long)hi);
		return -1;
	}
	return 0;
}

static void api_put_inject(const struct api_ops *ops, const char *body, size_t len, struct api_reply *r)
{
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "kind", "vector", "error_code", NULL };
	const char *kind = api_known_fields(o, known, r) ? api_string_field(o, "kind", r) : NULL;
	int64_t vec = 0, ec = 0;
	bool has_vec, has_ec;
	if (kind && api_int_field(o, "vector", 0, 255, &has_vec, &vec, r) == 0 &&
	    api_int_field(o, "error_code", 0, 0xffffffffll, &has_ec, &ec, r) == 0) {
		char spec[48];
		bool ok = true;
		if (strcmp(kind, "nmi") == 0 && !has_vec && !has_ec) {
			snprintf(spec, sizeof(spec), "nmi");
		} else if (strcmp(kind, "irq") == 0 && has_vec && !has_ec) {
			snprintf(spec, sizeof(spec), "irq:%lld", (long long)vec);
		} else if (strcmp(kind, "exception") == 0 && has_vec) {
			if (has_ec)
				snprintf(spec, sizeof(spec), "exception:%lld:%lld", (long long)vec, (long long)ec);
			else
				snprintf(spec, sizeof(spec), "exception:%lld", (long long)vec);
		} else {
			ok = false;
			api_fault(r, 400, "want {\"kind\": \"irq\", \"vector\": 16..255}, {\"kind\": \"nmi\"} or "
					  "{\"kind\": \"exception\", \"vector\": 0..31[, \"error_code\": N]}");
		}
		char err[200] = "";
		if (ok && ops->inject(ops->opaque, spec, err, sizeof(err)) < 0)
			api_fault(r, 400, "%s", err[0] ? err : "the event was not injected");
		else if (ok)
			r->status = 204;
	}
	json_object_put(o);
}

/* hvmm's own: {"destination": "tcp:HOST:PORT", "downtime_ms": 1..60000}. */
static void api_put_migrate(const struct api_ops *ops, const char *body, size_t len, struct api_reply *r)
{
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "destination", "downtime_ms", NULL };
	const char *dest = api_known_fields(o, known, r) ? api_string_field(o, "destination", r) : NULL;
	int64_t ms = 0;
	bool has_ms;
	if (dest && api_int_field(o, "downtime_ms", 1, 60000, &has_ms, &ms, r) == 0) {
		char err[400] = "";
		int rc = ops->migrate ? ops->migrate(ops->opaque, dest, has_ms ? (uint32_t)ms : 300, err, sizeof(err))
				      : -1;
		if (rc == 0)
			r->status = 204;
		else
			api_fault(r, rc == -1 ? 400 : 500, "%s", err[0] ? err : "the migration failed");
	}
	json_object_put(o);
}

/* Firecracker's body: snapshot_type (Full, the default, or Diff),
 * snapshot_path, mem_file_path; "version" was a field of older releases. */
static void api_put_snapshot_create(const struct api_ops *ops, const char *body, size_t len,
				    struct api_reply *r)
{
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "snapshot_type", "snapshot_path", "mem_file_path", "version", NULL };
	const char *state = api_known_fields(o, known, r) ? api_string_field(o, "snapshot_path", r) : NULL;
	const char *mem = state ? api_string_field(o, "mem_file_path", r) : NULL;
	json_object *t = NULL;
	bool has_type = mem && json_object_object_get_ex(o, "snapshot_type", &t);
	const char *type = has_type && json_object_is_type(t, json_type_string) ? json_object_get_string(t) : NULL;
	if (!mem) {
		;
	} else if (has_type && !type) {
		api_fault(r, 400, "field 'snapshot_type' must be a string");
	} else if (type && strcmp(type, "Full") != 0 && strcmp(type, "Diff") != 0) {
		api_fault(r, 400, "field 'snapshot_type' must be \"Full\" or \"Diff\"");
	} else if (!*state || !*mem) {
		api_fault(r, 400, "field '%s' must not be empty", *state ? "mem_file_path" : "snapshot_path");
	} else {
		char err[300] = "";
		bool diff = type && strcmp(type, "Diff") == 0;
		if (ops->snapshot_create(ops->opaque, state, mem, diff, err, sizeof(err)) < 0)
			api_fault(r, 400, "%s", err[0] ? err : "the snapshot failed");
		else
			r->status = 204;
	}
	json_object_put(o);
}

/* A boolean field: absent is false. 0, or -1 with a 400 naming it. */
static int api_bool_field(json_object *o, const char *name, bool *v, struct api_reply *r)
{
	json_object *f;
	*v = false;
	if (!json_object_object_get_ex(o, name, &f))
		return 0;
	if (!json_object_is_type(f, json_type_boolean)) {
		api_fault(r, 400, "field '%s' must be true or false", name);
		return -1;
	}
	*v = json_object_get_boolean(f);
	return 0;
}

/* The memory file of a load: mem_backend {backend_path, backend_type
 * "File"} (Firecracker's), or the older mem_file_path; one of them. NULL
 * with a 400 in r. */
static const char *api_load_mem(json_object *o, struct api_reply *r)
{
	json_object *mb = NULL;
	bool has_mb = json_object_object_get_ex(o, "mem_backend", &mb);
	bool has_mf = json_object_object_get_ex(o, "mem_file_path", NULL);
	if (has_mb == has_mf) {
		api_fault(r, 400, "give one of 'mem_backend' and 'mem_file_path'");
		return NULL;
	}
	if (has_mf)
		return api_string_field(o, "mem_file_path", r);
	if (!json_object_is_type(mb, json_type_object)) {
		api_fault(r, 400, "field 'mem_backend' must be an object");
		return NULL;
	}
	static const char *const known[] = { "backend_path", "backend_type", NULL };
	const char *path = api_known_fields(mb, known, r) ? api_string_field(mb, "backend_path", r) : NULL;
	const char *type = path ? api_string_field(mb, "backend_type", r) : NULL;
	if (!type)
		return NULL;
	if (strcmp(type, "File") != 0) {
		api_fault(r, 400, strcmp(type, "Uffd") == 0 ? "backend_type \"Uffd\" is not supported by hvmm: \"File\""
							  : "field 'backend_type' must be \"File\" or \"Uffd\"");
		return NULL;
	}
	return path;
}

/* Firecracker's body: snapshot_path, the memory file (api_load_mem),
 * enable_diff_snapshots (older) / track_dirty_pages, resume_vm. Only into
 * a process that has no VM yet (pre-boot) and no configuration. */
static void api_put_snapshot_load(const struct api_ops *ops, const char *body, size_t len, struct api_reply *r)
{
	if (!ops->snapshot_load) {
		api_fault(r, 400, "the VM already runs: a snapshot is loaded into a new hvmm (hvmm run "
				  "--api-sock PATH, then PUT /snapshot/load)");
		return;
	}
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	static const char *const known[] = { "snapshot_path", "mem_backend", "mem_file_path", "enable_diff_snapshots",
					     "track_dirty_pages", "resume_vm", NULL };
	const char *state = api_known_fields(o, known, r) ? api_string_field(o, "snapshot_path", r) : NULL;
	const char *mem = state ? api_load_mem(o, r) : NULL;
	bool diff = false, track = false, resume = false;
	if (!mem || api_bool_field(o, "enable_diff_snapshots", &diff, r) < 0 ||
	    api_bool_field(o, "track_dirty_pages", &track, r) < 0 || api_bool_field(o, "resume_vm", &resume, r) < 0) {
		;
	} else if (!*state || !*mem) {
		api_fault(r, 400, "field '%s' must not be empty", *state ? "backend_path" : "snapshot_path");
	} else {
		char err[400] = "";
		if (ops->snapshot_load(ops->opaque, state, mem, diff || track, resume, err, sizeof(err)) < 0)
			api_fault(r, 400, "%s", err[0] ? err : "the snapshot could not be loaded");
		else
			r->status = 204;
	}
	json_object_put(o);
}

/* A pre-boot configuration request: handed to ops->configure while the VM
 * is not built, refused once it runs. */
static void api_configure(const struct api_ops *ops, const char *section, const char *id, bool patch,
			  const char *body, size_t len, struct api_reply *r)
{
	if (!ops->configure) {
		api_fault(r, 400, "the VM already runs: its %s cannot change", section);
		return;
	}
	json_object *o = api_body_object(body, len, r);
	if (!o)
		return;
	char err[300] = "";
	if (ops->configure(ops->opaque, section, id, patch, o, err, sizeof(err)) < 0)
		api_fault(r, 400, "%s", err[0] ? err : "the configuration was refused");
	else
		r->status = 204;
	json_object_put(o);
}

/* "/drives/ID": the ID (no further '/'), or NULL. */
static const char *api_path_id(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) != 0 || path[n] != '/' || !path[n + 1] || strchr(path + n + 1, '/'))
		return NULL;
	return path + n + 1;
}

/* Firecracker's paths hvmm does not serve (yet): 501, not 404, so that a
 * client written for Firecracker learns why. */
static bool api_firecracker_only(const char *path)
{
	static const char *const prefixes[] = {
		"/snapshot", "/mmds", "/balloon", "/logger", "/vsock", "/cpu-config", "/version",
		"/vm/config",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) == 0 && (path[n] == 0 || path[n] == '/'))
			return true;
	}
	return false;
}

void api_route(const struct api_ops *ops, const char *method, const char *path, const char *body,
	       size_t len, struct api_reply *r)
{
	memset(r, 0, sizeof(*r));
	bool get = strcmp(method, "GET") == 0;
	if (strcmp(path, "/") == 0) {
		if (get)
			api_get_root(ops, r);
		else
			r->allow = "GET";
	} else if (strcmp(path, "/machine-config") == 0) {
		if (get)
			api_ok(r, ops->machine_config(ops->opaque));
		else if (strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
			api_configure(ops, "machine-config", NULL, method[1] == 'A', body, len, r);
		else
			r->allow = "GET, PUT, PATCH";
	} else if (strcmp(path, "/vm") == 0) {
		if (strcmp(method, "PATCH") == 0)
			api_patch_vm(ops, body, len, r);
		else
			r->allow = "PATCH";
	} else if (strcmp(path, "/actions") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_put_actions(ops, body, len, r);
		else
			r->allow = "PUT";
	} else if (strcmp(path, "/hvmm/stats") == 0 || strcmp(path, "/hvmm/irt") == 0) {
		if (get)
			api_ok(r, path[6] == 's' ? ops->stats(ops->opaque) : ops->irt(ops->opaque));
		else
			r->allow = "GET";
	} else if (strcmp(path, "/hvmm/inject") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_put_inject(ops, body, len, r);
		else
			r->allow = "PUT";
	} else if (strcmp(path, "/boot-source") == 0 || strcmp(path, "/entropy") == 0 ||
		   strcmp(path, "/metrics") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_configure(ops, path + 1, NULL, false, body, len, r);
		else
			r->allow = "PUT";
	} else if (api_path_id(path, "/drives") || api_path_id(path, "/network-interfaces")) {
		const char *id = api_path_id(path, "/drives");
		if (strcmp(method, "PUT") == 0)
			api_configure(ops, id ? "drives" : "network-interfaces",
				      id ? id : api_path_id(path, "/network-interfaces"), false, body, len, r);
		else
			r->allow = "PUT";
	} else if (strcmp(path, "/drives") == 0 || strcmp(path, "/network-interfaces") == 0 ||
		   strncmp(path, "/drives/", 8) == 0 || strncmp(path, "/network-interfaces/", 20) == 0) {
		api_fault(r, 400, "the path names one device: %s/{id}", path[1] == 'd' ? "/drives" : "/network-interfaces");
	} else if (strcmp(path, "/hvmm/migrate") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_put_migrate(ops, body, len, r);
		else
			r->allow = "PUT";
	} else if (strcmp(path, "/snapshot/create") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_put_snapshot_create(ops, body, len, r);
		else
			r->allow = "PUT";
	} else if (strcmp(path, "/snapshot/load") == 0) {
		if (strcmp(method, "PUT") == 0)
			api_put_snapshot_load(ops, body, len, r);
		else
			r->allow = "PUT";
	} else if (api_firecracker_only(path)) {
		api_fault(r, 501, "%.64s is not served by hvmm", path);
	} else {
		api_fault(r, 404, "no such path: %.64s", path);
	}
	if (r->allow)
		api_fault(r, 405, "%.64s takes %s, not %.16s", path, r->allow, method);
}

/* ---- HTTP framing ---- */

struct api_conn {
	const struct api_ops *ops;
	http_parser p;
	http_parser_settings s;
	char url[API_MAX_URL + 1];
	size_t url_len;
	size_t header_bytes;
	char *body;
	size_t body_len;
	int too_large;     /* 0, 413 or 431: the status this request gets */
	char **out;        /* the caller's buffer during a feed */
	size_t *out_len;
	bool close;
};

static void api_append(struct api_conn *c, const char *s, size_t n)
{
	char *b = realloc(*c->out, *c->out_len + n + 1);
	if (!b) {
		c->close = true;
		return;
	}
	memcpy(b + *c->out_len, s, n);
	*c->out_len += n;
	b[*c->out_len] = 0;
	*c->out = b;
}

static const char *api_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	default: return "Internal Server Error";
	}
}

static void api_respond(struct api_conn *c, const struct api_reply *r)
{
	char head[256];
	size_t blen = r->body ? strlen(r->body) : 0;
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: hvmm\r\n%s%s%s%s", r->status,
			 api_reason(r->status), r->allow ? "Allow: " : "", r->allow ? r->allow : "",
			 r->allow ? "\r\n" : "", c->close ? "Connection: close\r\n" : "");
	if (r->body)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
	else
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	api_append(c, head, (size_t)n);
	if (r->body)
		api_append(c, r->body, blen);
}

static int api_on_begin(http_parser *p)
{
	struct api_conn *c = p->data;
	c->url_len = c->header_bytes = c->body_len = 0;
	c->too_large = 0;
	return 0;
}

static int api_on_url(http_parser *p, const char *at, size_t n)
{
	struct api_conn *c = p->data;
	if (c->url_len + n > API_MAX_URL) {
		c->too_large = 414;
		return 1; /* stops the parser: the rest is not read */
	}
	memcpy(c->url + c->url_len, at, n);
	c->url_len += n;
	c->url[c->url_len] = 0;
	return 0;
}

static int api_on_header(http_parser *p, const char *at, size_t n)
{
	struct api_conn *c = p->data;
	(void)at;
	c->header_bytes += n;
	if (c->header_bytes > API_MAX_HEADERS) {
		c->too_large = 431;
		return 1;
	}
	return 0;
}

static int api_on_headers_complete(http_parser *p)
{
	struct api_conn *c = p->data;
	/* The declared length is checked before a byte of the body is kept. */
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > API_MAX_BODY) {
		c->too_large = 413;
		return -1; /* http-parser: an error, like 1 elsewhere */
	}
	return 0;
}

static int api_on_body(http_parser *p, const char *at, size_t n)
{
	struct api_conn *c = p->data;
	if (c->body_len + n > API_MAX_BODY) { /* chunked: no length up front */
		c->too_large = 413;
		return 1;
	}
	memcpy(c->body + c->body_len, at, n);
	c->body_len += n;
	return 0;
}

static int api_on_complete(http_parser *p)
{
	struct api_conn *c = p->data;
	struct api_reply r;
	const char *method = http_method_str((enum http_method)p->method);
	struct http_parser_url u;
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
		memset(&r, 0, sizeof(r));
		api_fault(&r, 400, "malformed request target");
	} else {
		/* The path alone (a query string is ignored), NUL-terminated in place. */
		char *path = c->url + u.field_data[UF_PATH].off;
		path[u.field_data[UF_PATH].len] = 0;
		api_route(c->ops, method, path, c->body, c->body_len, &r);
	}
	if (!http_should_keep_alive(p))
		c->close = true;
	api_respond(c, &r);
	free(r.body);
	return 0;
}

struct api_conn *api_conn_new(const struct api_ops *ops)
{
	struct api_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->body = malloc(API_MAX_BODY);
	if (!c->body) {
		free(c);
		return NULL;
	}
	c->ops = ops;
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	http_parser_settings_init(&c->s);
	c->s.on_message_begin = api_on_begin;
	c->s.on_url = api_on_url;
	c->s.on_header_field = api_on_header;
	c->s.on_header_value = api_on_header;
	c->s.on_headers_complete = api_on_headers_complete;
	c->s.on_body = api_on_body;
	c->s.on_message_complete = api_on_complete;
	return c;
}

int api_conn_feed(struct api_conn *c, const char *data, size_t n, char **out, size_t *out_len)
{
	if (c->close)
		return -1;
	c->out = out;
	c->out_len = out_len;
	size_t used = http_parser_execute(&c->p, &c->s, data, n);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
	if (e != HPE_OK || (used != n && !c->p.upgrade)) {
		struct api_reply r = { 0 };
		c->close = true;
		if (c->too_large)
			api_fault(&r, c->too_large, "the request is too large (%s)",
				  c->too_large == 413 ? "body over 64 KiB" :
				  c->too_large == 414 ? "target over 1 KiB" : "headers over 16 KiB");
		else
			api_fault(&r, 400, "malformed HTTP request: %s", http_errno_description(e));
		api_respond(c, &r);
		free(r.body);
	} else if (c->p.upgrade) {
		struct api_reply r = { 0 };
		c->close = true;
		api_fault(&r, 400, "protocol upgrades are not supported");
		api_respond(c, &r);
		free(r.body);
	}
	return c->close ? -1 : 0;
}

void api_conn_free(struct api_conn *c)
{
	if (!c)
		return;
	free(c->body);
	free(c);
}
