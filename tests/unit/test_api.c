/* api: the control API's routes, its HTTP framing of hostile bytes, and the
 * server on a real unix socket, against a fake VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"

struct fake_vm {
	int pauses, resumes;
	int fail_pause;
	char state[16];
};

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
	f->pauses++;
	strcpy(f->state, "Paused");
	return 0;
}

static int fake_resume(void *o, char *err, size_t n)
{
	(void)err, (void)n;
	struct fake_vm *f = o;
	f->resumes++;
	strcpy(f->state, "Running");
	return 0;
}

static json_object *fake_obj(void *o)
{
	(void)o;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "vcpu_count", json_object_new_int(2));
	return j;
}

static char fake_injected[64];

/* Records the spec; refuses what inject_parse would (vector ranges). */
static int fake_inject(void *o, const char *spec, char *err, size_t n)
{
	(void)o;
	unsigned v;
	if ((sscanf(spec, "irq:%u", &v) == 1 && v < 16) || (sscanf(spec, "exception:%u", &v) == 1 && v > 31)) {
		snprintf(err, n, "'%s' is out of range", spec);
		return -1;
	}
	snprintf(fake_injected, sizeof(fake_injected), "%s", spec);
	return 0;
}

static char fake_snap_state[64], fake_snap_mem[64];
static bool fake_snap_diff;

/* Records the paths; refuses unless paused, as snapshot_create does. */
static int fake_snapshot(void *o, const char *state, const char *mem, bool diff, char *err, size_t n)
{
	fake_snap_diff = diff;
	struct fake_vm *f = o;
	if (strcmp(f->state, "Paused") != 0) {
		snprintf(err, n, "the VM is running: pause it first");
		return -1;
	}
	snprintf(fake_snap_state, sizeof(fake_snap_state), "%s", state);
	snprintf(fake_snap_mem, sizeof(fake_snap_mem), "%s", mem);
	return 0;
}

/* ---- the pre-boot handlers (preboot.c's shape) ---- */

static char pb_load[160];

/* Records what the load was asked; refuses a state file named "bad" with
 * the words snapshot_load_check would use. */
static int fake_load(void *o, const char *state, const char *mem, bool track, bool resume, char *err, size_t n)
{
	(void)o;
	if (strcmp(state, "bad") == 0) {
		snprintf(err, n, "bad is not an hvmm snapshot");
		return -1;
	}
	snprintf(pb_load, sizeof(pb_load), "%s %s track=%d resume=%d", state, mem, track, resume);
	return 0;
}

static char pb_last[128];
static int pb_starts;

static int fake_configure(void *o, const char *section, const char *id, bool patch, json_object *body,
			  char *err, size_t n)
{
	(void)o;
	json_object *v = NULL;
	if (json_object_object_get_ex(body, "bad", &v)) {
		snprintf(err, n, "%s: unknown field 'bad'", section);
		return -1;
	}
	snprintf(pb_last, sizeof(pb_last), "%s %s %s", patch ? "PATCH" : "PUT", section, id ? id : "-");
	return 0;
}

static int fake_start(void *o, char *err, size_t n)
{
	(void)o;
	if (pb_starts++ == 0) {
		snprintf(err, n, "no kernel to start: PUT /boot-source first");
		return -1;
	}
	return 0;
}

static struct fake_vm fake;
static const struct api_ops preboot_fake = {
	.opaque = &fake, .state = fake_state, .pause = fake_pause, .resume = fake_resume,
	.machine_config = fake_obj, .stats = fake_obj, .irt = fake_obj, .inject = fake_inject,
	.snapshot_create = fake_snapshot, .configure = fake_configure, .instance_start = fake_start,
	.snapshot_load = fake_load, .id = "vm-1", .version = "9.9",
};

static const struct api_ops ops = {
	.opaque = &fake, .state = fake_state, .pause = fake_pause, .resume = fake_resume,
	.machine_config = fake_obj, .stats = fake_obj, .irt = fake_obj, .inject = fake_inject,
	.snapshot_create = fake_snapshot,
	.id = "vm-1", .version = "9.9",
};

static int setup(void **state)
{
	(void)state;
	fake_injected[0] = 0;
	fake_snap_state[0] = fake_snap_mem[0] = 0;
	memset(&fake, 0, sizeof(fake));
	strcpy(fake.state, "Running");
	return 0;
}

/* Route one request; returns the status, the body in *body (freed by the next call). */
static int route(const char *method, const char *path, const char *body, char **out)
{
	static char *last;
	free(last);
	struct api_reply r;
	api_route(&ops, method, path, body, body ? strlen(body) : 0, &r);
	last = r.body;
	*out = r.body ? r.body : "";
	return r.status;
}

/* One request that must get `status` with `text` in its body (NULL: any). */
static void expect_route(const char *method, const char *path, const char *body, int status, const char *text)
{
	char *b;
	int got = route(method, path, body, &b);
	if (got != status || (text && !strstr(b, text)))
		fail_msg("%s %s %s: %d %s, want %d with '%s'", method, path, body ? body : "", got, b, status,
			 text ? text : "");
}

static void test_routes(void **state)
{
	(void)state;
	char *b;
	assert_int_equal(route("GET", "/", NULL, &b), 200);
	assert_non_null(strstr(b, "\"state\":\"Running\""));
	assert_non_null(strstr(b, "\"id\":\"vm-1\""));
	assert_non_null(strstr(b, "\"app_name\":\"hvmm\""));
	expect_route("GET", "/machine-config", NULL, 200, "vcpu_count");
	assert_int_equal(route("PATCH", "/vm", "{\"state\": \"Paused\"}", &b), 204);
	assert_int_equal(fake.pauses, 1);
	expect_route("GET", "/", NULL, 200, "\"state\":\"Paused\"");
	assert_int_equal(route("PATCH", "/vm", " {\"state\":\"Resumed\"}\n", &b), 204);
	assert_int_equal(fake.resumes, 1);
	assert_int_equal(route("GET", "/hvmm/stats", NULL, &b), 200);
	assert_int_equal(route("GET", "/hvmm/irt", NULL, &b), 200);
}

static void test_bad_requests_name_the_problem(void **state)
{
	(void)state;
	char *b;
	expect_route("PATCH", "/vm", NULL, 400, "needs a JSON body");
	expect_route("PATCH", "/vm", "{\"state\": ", 400, "not valid JSON");
	expect_route("PATCH", "/vm", "{\"state\":\"Paused\"} x", 400, NULL);
	expect_route("PATCH", "/vm", "[1]", 400, "must be a JSON object");
	expect_route("PATCH", "/vm", "{\"stat\":\"Paused\"}", 400, "unknown field 'stat'");
	expect_route("PATCH", "/vm", "{}", 400, "missing field 'state'");
	expect_route("PATCH", "/vm", "{\"state\":1}", 400, "'state' must be a string");
	expect_route("PATCH", "/vm", "{\"state\":\"Stopped\"}", 400, "\\\"Stopped\\\"");
	assert_int_equal(fake.pauses, 0);
	fake.fail_pause = 1;
	expect_route("PATCH", "/vm", "{\"state\":\"Paused\"}", 400, "the VM is stopping");
	expect_route("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 400, "already runs");
	/* the pre-boot configuration, once the VM runs (no configure op) */
	expect_route("PUT", "/drives/rootfs", "{\"path_on_host\":\"x\"}", 400, "already runs");
	expect_route("PUT", "/boot-source", "{\"kernel_image_path\":\"k\"}", 400, "already runs");
	expect_route("PUT", "/actions", "{\"action_type\":\"Reboot\"}", 400, "action_type");
	expect_route("PUT", "/machine-config", "{\"vcpu_count\":4}", 400, NULL);
	expect_route("GET", "/nope", NULL, 404, NULL);
	assert_int_equal(route("PUT", "/mmds", "{}", &b), 501);
	expect_route("GET", "/drivesX", NULL, 404, NULL);
	expect_route("PUT", "/drives", "{}", 400, "/drives/{id}");
	expect_route("PUT", "/drives/a/b", "{}", 400, "/drives/{id}");
	expect_route("GET", "/drives/a", NULL, 405, "PUT");
	expect_route("DELETE", "/vm", NULL, 405, "PATCH");
	expect_route("POST", "/", NULL, 405, NULL);
}

static void test_inject(void **state)
{
	(void)state;
	char *b;
	assert_int_equal(route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vector\":94}", &b), 204);
	assert_string_equal(fake_injected, "irq:94");
	assert_int_equal(route("PUT", "/hvmm/inject", "{\"kind\":\"nmi\"}", &b), 204);
	assert_string_equal(fake_injected, "nmi");
	assert_int_equal(route("PUT", "/hvmm/inject", "{\"kind\":\"exception\",\"vector\":13,\"error_code\":4660}", &b),
			 204);
	assert_string_equal(fake_injected, "exception:13:4660");
	assert_int_equal(route("PUT", "/hvmm/inject", "{\"kind\":\"exception\",\"vector\":6}", &b), 204);
	assert_string_equal(fake_injected, "exception:6");
	fake_injected[0] = 0;
	/* the shape is checked before anything is injected */
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"nmi\",\"vector\":2}", 400, NULL);
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\"}", 400, NULL);
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vector\":94,\"error_code\":1}", 400, NULL);
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"smi\"}", 400, NULL);
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vector\":\"94\"}", 400, "'vector' must be an integer");
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vector\":256}", 400, "'vector' must be 0..255");
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vec\":94}", 400, "unknown field 'vec'");
	assert_string_equal(fake_injected, "");
	/* what inject_now refuses comes back as its words */
	expect_route("PUT", "/hvmm/inject", "{\"kind\":\"irq\",\"vector\":3}", 400, "out of range");
	expect_route("GET", "/hvmm/inject", NULL, 405, NULL);
}

static void test_snapshot_routes(void **state)
{
	(void)state;
	char *b;
	const char *full = "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"/s/vm.snap\",\"mem_file_path\":\"/s/vm.mem\"}";
	/* a running VM: the op's refusal comes back as a 400 with its words */
	expect_route("PUT", "/snapshot/create", full, 400, "pause it first");
	assert_string_equal(fake_snap_state, "");
	assert_int_equal(route("PATCH", "/vm", "{\"state\": \"Paused\"}", &b), 204);
	assert_int_equal(route("PUT", "/snapshot/create", full, &b), 204);
	assert_string_equal(fake_snap_state, "/s/vm.snap");
	assert_string_equal(fake_snap_mem, "/s/vm.mem");
	/* snapshot_type is optional (Full); an old client's "version" is taken */
	assert_int_equal(route("PUT", "/snapshot/create",
			       "{\"snapshot_path\":\"a\",\"mem_file_path\":\"b\",\"version\":\"1.0.0\"}", &b), 204);
	assert_string_equal(fake_snap_state, "a");
	fake_snap_state[0] = 0;
	assert_false(fake_snap_diff);
	/* a Diff reaches the op as one (whether tracking is on is the VM's to say) */
	assert_int_equal(route("PUT", "/snapshot/create",
			       "{\"snapshot_type\":\"Diff\",\"snapshot_path\":\"d\",\"mem_file_path\":\"e\"}", &b), 204);
	assert_true(fake_snap_diff);
	assert_string_equal(fake_snap_state, "d");
	fake_snap_state[0] = 0;
	expect_route("PUT", "/snapshot/create", "{\"snapshot_type\":\"Half\",\"snapshot_path\":\"a\",\"mem_file_path\":\"b\"}",
		     400, "snapshot_type");
	expect_route("PUT", "/snapshot/create", "{\"snapshot_type\":1,\"snapshot_path\":\"a\",\"mem_file_path\":\"b\"}",
		     400, "'snapshot_type' must be a string");
	expect_route("PUT", "/snapshot/create", "{\"snapshot_path\":\"a\"}", 400, "missing field 'mem_file_path'");
	expect_route("PUT", "/snapshot/create", "{\"mem_file_path\":\"b\"}", 400, "missing field 'snapshot_path'");
	expect_route("PUT", "/snapshot/create", "{\"snapshot_path\":\"\",\"mem_file_path\":\"b\"}", 400,
		     "'snapshot_path' must not be empty");
	expect_route("PUT", "/snapshot/create", "{\"snapshot_path\":\"a\",\"mem_file_path\":\"b\",\"x\":1}", 400,
		     "unknown field 'x'");
	assert_string_equal(fake_snap_state, "");
	expect_route("GET", "/snapshot/create", NULL, 405, "PUT");
	/* a running VM takes no load */
	expect_route("PUT", "/snapshot/load", "{\"snapshot_path\":\"a\",\"mem_file_path\":\"b\"}", 400,
		     "a snapshot is loaded into a new hvmm");
	expect_route("PUT", "/snapshot/other", "{}", 501, NULL);
}

/* Before the VM exists: Firecracker's configuration paths reach the
 * configure op with their section and id, and InstanceStart the start op,
 * whose refusal comes back as a 400 with its words. */
static void test_preboot_routes(void **state)
{
	(void)state;
	struct {
		const char *method, *path, *want;
	} ok[] = {
		{ "PUT", "/boot-source", "PUT boot-source -" },
		{ "PUT", "/drives/rootfs", "PUT drives rootfs" },
		{ "PUT", "/network-interfaces/eth0", "PUT network-interfaces eth0" },
		{ "PUT", "/machine-config", "PUT machine-config -" },
		{ "PATCH", "/machine-config", "PATCH machine-config -" },
		{ "PUT", "/entropy", "PUT entropy -" },
	};
	pb_starts = 0;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct api_reply r;
		pb_last[0] = 0;
		api_route(&preboot_fake, ok[i].method, ok[i].path, "{}", 2, &r);
		assert_int_equal(r.status, 204);
		assert_string_equal(pb_last, ok[i].want);
		free(r.body);
		api_route(&preboot_fake, ok[i].method, ok[i].path, "{\"bad\":1}", 9, &r);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "unknown field 'bad'"));
		free(r.body);
		api_route(&preboot_fake, ok[i].method, ok[i].path, "nope", 4, &r);
		assert_int_equal(r.status, 400);
		free(r.body);
	}
	struct api_reply r;
	const char *start = "{\"action_type\":\"InstanceStart\"}";
	api_route(&preboot_fake, "PUT", "/actions", start, strlen(start), &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "PUT /boot-source first"));
	free(r.body);
	api_route(&preboot_fake, "PUT", "/actions", start, strlen(start), &r);
	assert_int_equal(r.status, 204);
	assert_int_equal(pb_starts, 2);
}

static int pb_route(const char *method, const char *path, const char *body, char *out, size_t n)
{
	struct api_reply r;
	api_route(&preboot_fake, method, path, body, body ? strlen(body) : 0, &r);
	snprintf(out, n, "%s", r.body ? r.body : "");
	free(r.body);
	return r.status;
}

/* PUT /snapshot/load's body, Firecracker's: the new mem_backend and the
 * older mem_file_path, the two tracking flags, resume_vm; every mistake a
 * 400 naming the field, and the op's refusal in its own words. */
static void test_snapshot_load_routes(void **state)
{
	(void)state;
	char b[300];
	struct {
		const char *body, *want;
	} ok[] = {
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_path\":\"m\",\"backend_type\":\"File\"}}",
		  "s m track=0 resume=0" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m2\",\"resume_vm\":true}", "s m2 track=0 resume=1" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"enable_diff_snapshots\":true}",
		  "s m track=1 resume=0" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"m\"},"
		  "\"track_dirty_pages\":true,\"resume_vm\":false}", "s m track=1 resume=0" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		pb_load[0] = 0;
		assert_int_equal(pb_route("PUT", "/snapshot/load", ok[i].body, b, sizeof(b)), 204);
		assert_string_equal(pb_load, ok[i].want);
	}
	struct {
		const char *body, *want;
	} bad[] = {
		{ "{\"mem_file_path\":\"m\"}", "missing field 'snapshot_path'" },
		{ "{\"snapshot_path\":\"s\"}", "one of 'mem_backend' and 'mem_file_path'" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"mem_backend\":{}}",
		  "one of 'mem_backend' and 'mem_file_path'" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":\"m\"}", "'mem_backend' must be an object" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_path\":\"m\"}}", "missing field 'backend_type'" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_path\":\"m\",\"backend_type\":\"Uffd\"}}",
		  "backend_type \\\"Uffd\\\" is not supported" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_path\":\"m\",\"backend_type\":\"Disk\"}}",
		  "'backend_type' must be" },
		{ "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_path\":\"m\",\"backend_type\":\"File\",\"x\":1}}",
		  "unknown field 'x'" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"resume_vm\":1}", "'resume_vm' must be true or false" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"track_dirty_pages\":\"yes\"}",
		  "'track_dirty_pages' must be true or false" },
		{ "{\"snapshot_path\":\"\",\"mem_file_path\":\"m\"}", "'snapshot_path' must not be empty" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"\"}", "'backend_path' must not be empty" },
		{ "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"network_overrides\":[]}",
		  "unknown field 'network_overrides'" },
		{ "{\"snapshot_path\":\"bad\",\"mem_file_path\":\"m\"}", "bad is not an hvmm snapshot" },
		{ "[1]", "JSON object" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pb_load[0] = 0;
		int st = pb_route("PUT", "/snapshot/load", bad[i].body, b, sizeof(b));
		if (st != 400 || !strstr(b, bad[i].want) || !strstr(b, "fault_message"))
			fail_msg("%s: %d %s, want 400 with '%s'", bad[i].body, st, b, bad[i].want);
		assert_string_equal(pb_load, "");
	}
	assert_int_equal(pb_route("GET", "/snapshot/load", NULL, b, sizeof(b)), 405);
}

/* Feed raw bytes, split at every position; the answers must not depend
 * on how the bytes arrive. */
static char *feed(const char *bytes, size_t n, size_t chunk, int *rc)
{
	struct api_conn *c = api_conn_new(&ops);
	assert_non_null(c);
	char *out = NULL;
	size_t out_len = 0;
	*rc = 0;
	for (size_t off = 0; off < n && *rc == 0; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		*rc = api_conn_feed(c, bytes + off, k, &out, &out_len);
	}
	api_conn_free(c);
	return out ? out : strdup("");
}

static void test_framing(void **state)
{
	(void)state;
	static const char two[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
				  "PATCH /vm?x=1 HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}";
	for (size_t chunk = 1; chunk <= sizeof(two); chunk += 7) {
		setup(NULL);
		int rc;
		char *out = feed(two, sizeof(two) - 1, chunk, &rc);
		assert_int_equal(rc, 0);
		char *second = strstr(out, "HTTP/1.1 204 No Content\r\n");
		assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
		assert_non_null(second);
		assert_true(second > strstr(out, "HTTP/1.1 200 OK"));
		assert_int_equal(fake.pauses, 1);
		free(out);
	}
	/* HTTP/1.0 without keep-alive: answered, then closed */
	int rc;
	char *out = feed("GET / HTTP/1.0\r\n\r\n", 18, 64, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "Connection: close"));
	free(out);
	/* chunked bodies are read too */
	static const char chunked[] = "PATCH /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				      "12\r\n{\"state\":\"Paused\"}\r\n0\r\n\r\n";
	setup(NULL);
	out = feed(chunked, sizeof(chunked) - 1, 5, &rc);
	assert_non_null(strstr(out, "204"));
	assert_int_equal(fake.pauses, 1);
	free(out);
}

static void test_hostile_bytes(void **state)
{
	(void)state;
	int rc;
	char *out = feed("\x01\x02garbage\r\n\r\n", 13, 64, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "400 Bad Request"));
	assert_non_null(strstr(out, "malformed HTTP request"));
	free(out);
	/* a declared body over 64 KiB is refused before any of it is kept */
	out = feed("PATCH /vm HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 48, 64, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "413"));
	free(out);
	/* a chunked body over 64 KiB: refused as it grows */
	size_t big = 70 * 1024;
	char *req = malloc(big + 128);
	int n = sprintf(req, "PATCH /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n", big);
	memset(req + n, 'a', big);
	out = feed(req, (size_t)n + big, 4096, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "413"));
	free(out);
	/* headers over 16 KiB */
	n = sprintf(req, "GET / HTTP/1.1\r\nX: ");
	memset(req + n, 'b', 20000);
	out = feed(req, (size_t)n + 20000, 1000, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "431"));
	free(out);
	/* a target over 1 KiB */
	n = sprintf(req, "GET /");
	memset(req + n, 'c', 2000);
	out = feed(req, (size_t)n + 2000, 300, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(out, "414"));
	free(out);
	free(req);
	/* after close, nothing more is parsed */
	struct api_conn *c = api_conn_new(&ops);
	char *o = NULL;
	size_t ol = 0;
	assert_int_equal(api_conn_feed(c, "BAD\r\n\r\n", 7, &o, &ol), -1);
	size_t before = ol;
	assert_int_equal(api_conn_feed(c, "GET / HTTP/1.1\r\n\r\n", 18, &o, &ol), -1);
	assert_int_equal(ol, before);
	free(o);
	api_conn_free(c);
}

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_server(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/hvmm-test-api-%d.sock", (int)getpid());
	unlink(path);
	char err[300];
	struct api_server *s = api_open(path, err, sizeof(err));
	assert_non_null(s);
	/* a second server on the same path is refused with one line */
	assert_null(api_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "exists"));
	assert_int_equal(api_start(s, &ops), 0);
	int fd = dial(path);
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	char buf[2048];
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = 0;
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(buf, "\"id\":\"vm-1\""));
	close(fd);
	/* every slot taken: the next client is told so */
	int fds[API_MAX_CONNS];
	for (int i = 0; i < API_MAX_CONNS; i++)
		fds[i] = dial(path);
	/* the server takes connections in its own time: ask until one is refused */
	int busy = 0;
	for (int tries = 0; tries < 50 && !busy; tries++) {
		int extra = dial(path);
		/* taken into a slot a first client had not yet filled: no answer */
		struct timeval tv = { 0, 200000 };
		setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		got = 0;
		while ((r = read(extra, buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)r;
		buf[got] = 0;
		busy = strstr(buf, "503 Service Unavailable") != NULL;
		close(extra);
	}
	assert_true(busy);
	for (int i = 0; i < API_MAX_CONNS; i++)
		close(fds[i]);
	api_close(s);
	struct stat st;
	assert_int_equal(lstat(path, &st), -1); /* the socket file is gone */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_routes, setup),
		cmocka_unit_test_setup(test_bad_requests_name_the_problem, setup),
		cmocka_unit_test_setup(test_inject, setup),
		cmocka_unit_test_setup(test_snapshot_routes, setup),
		cmocka_unit_test_setup(test_preboot_routes, setup),
		cmocka_unit_test_setup(test_snapshot_load_routes, setup),
		cmocka_unit_test_setup(test_framing, setup),
		cmocka_unit_test_setup(test_hostile_bytes, setup),
		cmocka_unit_test_setup(test_server, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
