/*
 * libFuzzer target for the control API's request handling (src/api.c): any
 * bytes a client may send, arriving in chunks of any size, through
 * http-parser's framing, hvmm's caps on target, headers and body, json-c's
 * parse of the body and the routes, against a fake VM.
 *
 * Checked: what goes back is a sequence of well-formed HTTP/1.1 answers
 * (parsed again with http-parser as responses), each with a status hvmm
 * documents; every answer with a body has a Content-Length that matches and
 * a JSON object for a body, with a fault_message on every error; the fake
 * VM is paused or resumed only by a 204 to PATCH /vm; once the connection
 * says close, nothing more comes out.
 *
 * Input:
 *   u8  chunk   bytes per feed: chunk % 64 + 1
 *   then the client's bytes.
 */
#include <http_parser.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz_common.h"

#define FZ_CHECK(c)                                                                         \
	do {                                                                                \
		if (!(c)) {                                                                 \
			fprintf(stderr, "fuzz_api: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                            \
		}                                                                           \
	} while (0)

static int fz_changes; /* pause/resume calls the fake VM saw */
static unsigned fz_calls;  /* the other handlers': which answer they give */
static bool fz_paused;

static const char *fz_state(void *o)
{
	(void)o;
	return fz_paused ? "Paused" : "Running";
}

static int fz_pause(void *o, char *err, size_t n)
{
	(void)o, (void)err, (void)n;
	fz_changes++;
	fz_paused = true;
	return 0;
}

static int fz_resume(void *o, char *err, size_t n)
{
	(void)o;
	/* the error path too: a VM that cannot resume */
	if (fz_changes % 5 == 4) {
		snprintf(err, n, "the VM is stopping");
		return -1;
	}
	fz_changes++;
	fz_paused = false;
	return 0;
}

static int fz_inject(void *o, const char *spec, char *err, size_t n)
{
	(void)o;
	/* the router builds every spec itself: it must be one of the three shapes */
	FZ_CHECK(strncmp(spec, "irq:", 4) == 0 || strcmp(spec, "nmi") == 0 || strncmp(spec, "exception:", 10) == 0);
	if (spec[0] == 'e') {
		snprintf(err, n, "refused");
		return -1;
	}
	return 0;
}

static int fz_snapshot(void *o, const char *state, const char *mem, bool diff, char *err, size_t n)
{
	(void)o, (void)diff;
	/* the router hands over non-empty paths only */
	FZ_CHECK(state && mem && *state && *mem);
	if (!fz_paused) {
		snprintf(err, n, "the VM is running: pause it first");
		return -1;
	}
	return 0;
}

static json_object *fz_obj(void *o)
{
	(void)o;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "n", json_object_new_int(1));
	return j;
}

static const struct api_ops fz_ops = {
	.state = fz_state, .pause = fz_pause, .resume = fz_resume,
	.machine_config = fz_obj, .stats = fz_obj, .irt = fz_obj, .inject = fz_inject,
	.snapshot_create = fz_snapshot, .id = "fz", .version = "0",
};

/* The pre-boot API's handlers (preboot.c's shape), and the running VM's
 * that the ops above leave out: metrics and migration. */
static int fz_configure(void *o, const char *section, const char *id, bool patch, json_object *body, char *err,
			size_t n)
{
	(void)o;
	/* the router hands over a known section, an id exactly for the lists,
	 * PATCH only for machine-config, and a JSON object */
	bool list = strcmp(section, "drives") == 0 || strcmp(section, "network-interfaces") == 0;
	FZ_CHECK(list || strcmp(section, "boot-source") == 0 || strcmp(section, "entropy") == 0 ||
		 strcmp(section, "metrics") == 0 || strcmp(section, "machine-config") == 0);
	FZ_CHECK(list == (id != NULL) && (!id || (*id && !strchr(id, '/'))));
	FZ_CHECK(!patch || strcmp(section, "machine-config") == 0);
	FZ_CHECK(body && json_object_is_type(body, json_type_object));
	if (json_object_object_length(body) % 2) {
		snprintf(err, n, "%s: refused", section);
		return -1;
	}
	return 0;
}

static int fz_start(void *o, char *err, size_t n)
{
	(void)o;
	if (fz_calls++ % 2 == 0) {
		snprintf(err, n, "no kernel to start: PUT /boot-source first");
		return -1;
	}
	return 0;
}

static int fz_flush(void *o, char *err, size_t n)
{
	(void)o;
	if (fz_calls++ % 3 == 0) {
		snprintf(err, n, "no metrics file");
		return -1;
	}
	return 0;
}

static int fz_migrate(void *o, const char *dest, uint32_t downtime_ms, char *err, size_t n)
{
	(void)o, (void)downtime_ms;
	FZ_CHECK(dest && *dest);
	int k = (int)(fz_calls++ % 3);
	if (k)
		snprintf(err, n, k == 1 ? "refused" : "failed midway");
	return -k; /* 0 done, -1 refused (400), -2 failed (500) */
}

static int fz_load(void *o, const char *state, const char *mem, bool track, bool resume, char *err, size_t n)
{
	(void)o, (void)track, (void)resume;
	/* the router hands over non-empty paths only */
	FZ_CHECK(state && mem && *state && *mem);
	if (fz_calls++ % 2 == 0) {
		snprintf(err, n, "%s is not an hvmm snapshot", state);
		return -1;
	}
	return 0;
}

static const struct api_ops fz_preboot_ops = {
	.state = fz_state, .pause = fz_pause, .resume = fz_resume,
	.machine_config = fz_obj, .stats = fz_obj, .irt = fz_obj, .inject = fz_inject,
	.snapshot_create = fz_snapshot, .configure = fz_configure, .instance_start = fz_start,
	.flush_metrics = fz_flush, .migrate = fz_migrate, .snapshot_load = fz_load, .id = "fz", .version = "0",
};

/* The answers, parsed back. */
struct fz_resp {
	char *body;
	size_t len;
	int answers, no_content;
};

static int fz_on_body(http_parser *p, const char *at, size_t n)
{
	struct fz_resp *r = p->data;
	r->body = realloc(r->body, r->len + n + 1);
	FZ_CHECK(r->body);
	memcpy(r->body + r->len, at, n);
	r->len += n;
	r->body[r->len] = 0;
	return 0;
}

static int fz_on_complete(http_parser *p)
{
	struct fz_resp *r = p->data;
	unsigned s = p->status_code;
	FZ_CHECK(s == 200 || s == 204 || s == 400 || s == 404 || s == 405 || s == 413 || s == 414 ||
		 s == 431 || s == 500 || s == 501);
	if (s == 204) {
		FZ_CHECK(r->len == 0);
		r->no_content++;
	} else {
		FZ_CHECK(p->flags & F_CONTENTLENGTH || p->content_length == 0);
		json_object *o = json_tokener_parse(r->body ? r->body : "");
		FZ_CHECK(o && json_object_is_type(o, json_type_object));
		json_object *m;
		FZ_CHECK(s < 400 || json_object_object_get_ex(o, "fault_message", &m));
		json_object_put(o);
	}
	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->answers++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = data[0] % 64 + 1;
	/* the top bit: the pre-boot API's handlers, or a running VM's */
	const struct api_ops *ops = data[0] & 0x80 ? &fz_preboot_ops : &fz_ops;
	data++, size--;
	fz_changes = 0;
	fz_paused = false;
	struct api_conn *c = api_conn_new(ops);
	FZ_CHECK(c);
	char *out = NULL;
	size_t out_len = 0;
	bool closed = false;
	for (size_t off = 0; off < size; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;
		size_t before = out_len;
		int rc = api_conn_feed(c, (const char *)data + off, k, &out, &out_len);
		if (closed)
			FZ_CHECK(rc == -1 && out_len == before);
		closed = rc < 0;
	}
	api_conn_free(c);
	struct fz_resp r = { 0 };
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &r;
	http_parser_settings s;
	http_parser_settings_init(&s);
	s.on_body = fz_on_body;
	s.on_message_complete = fz_on_complete;
	size_t used = http_parser_execute(&p, &s, out ? out : "", out_len);
	FZ_CHECK(HTTP_PARSER_ERRNO(&p) == HPE_OK && used == out_len);
	FZ_CHECK(r.len == 0); /* no half answer at the end */
	FZ_CHECK(fz_changes <= r.no_content);
	free(r.body);
	free(out);
	return 0;
}
