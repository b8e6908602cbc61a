/* ctl: the control API's command-line client (see ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <http_parser.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define CTL_MAX_ANSWER (16u << 20)

/* Seconds without an answer: a migration answers only when it ended. */
static int ctl_timeout_s = 30;

static void ctl_usage(FILE *f)
{
	fputs("Usage: hvmm ctl SOCKET COMMAND\n"
	      "       hvmm ctl SOCKET METHOD PATH [JSON-BODY]\n"
	      "\n"
	      "Talk to a VM started with --api-sock SOCKET. Commands:\n"
	      "  info      GET /                  the VM's name, state and hvmm's version\n"
	      "  config    GET /machine-config    vCPUs and memory\n"
	      "  pause     PATCH /vm Paused       park every vCPU and the device loop\n"
	      "  resume    PATCH /vm Resumed      go on\n"
	      "  stats     GET /hvmm/stats        exit statistics, live (registers while paused)\n"
	      "  irt       GET /hvmm/irt          the interrupt routing table\n"
	      "  inject EVENT  PUT /hvmm/inject   irq:VECTOR, nmi or exception:VECTOR[:ERRCODE]\n"
	      "                                   into vCPU 0 now\n"
	      "  snapshot STATE MEM [Full|Diff]  PUT /snapshot/create  the paused VM into two\n"
	      "                                   files (relative paths: from this directory);\n"
	      "                                   Diff: only the pages written since the last one\n"
	      "  load STATE MEM [resume] [track]  PUT /snapshot/load  into an hvmm run --api-sock\n"
	      "                                   without a VM: the snapshot's VM, paused unless\n"
	      "                                   resume; track: record pages for diffs\n"
	      "  migrate tcp:HOST:PORT [DOWNTIME_MS]  PUT /hvmm/migrate  live migration to an\n"
	      "                                   hvmm run --incoming there (docs/migration.md)\n"
	      "METHOD PATH [BODY] sends any request (docs/api.md).\n"
	      "\n"
	      "Exit status: 0 done (the answer on stdout); 1 the API refused the request\n"
	      "(its fault_message on stderr); 2 usage error; 6 no API at SOCKET.\n",
	      f);
}

struct ctl_answer {
	char *body;
	size_t len;
	bool done, too_big;
};

static int ctl_on_body(http_parser *p, const char *at, size_t n)
{
	struct ctl_answer *a = p->data;
	if (a->len + n > CTL_MAX_ANSWER) {
		a->too_big = true;
		return 1;
	}
	char *b = realloc(a->body, a->len + n + 1);
	if (!b)
		return 1;
	memcpy(b + a->len, at, n);
	a->len += n;
	b[a->len] = 0;
	a->body = b;
	return 0;
}

static int ctl_on_complete(http_parser *p)
{
	((struct ctl_answer *)p->data)->done = true;
	return 0;
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* An API that stops answering is an error, not a hang. */
	struct timeval tv = { ctl_timeout_s, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int ctl_request(const char *sock, const char *method, const char *path, const char *body)
{
	int fd = ctl_connect(sock);
	if (fd < 0) {
		fprintf(stderr, "hvmm ctl: %s: %s\n", sock, strerror(errno));
		return HVMM_EXIT_HOST;
	}
	size_t blen = body ? strlen(body) : 0;
	char *req = NULL;
	int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s%zu\r\n\r\n%s",
			 method, path, body ? "Content-Type: application/json\r\n" : "",
			 "Accept: application/json\r\n", "Content-Length: ", blen, body ? body : "");
	if (n < 0) {
		close(fd);
		fputs("hvmm ctl: out of memory\n", stderr);
		return HVMM_EXIT_HOST;
	}
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "hvmm ctl: %s: sending: %s\n", sock, strerror(errno));
			free(req);
			close(fd);
			return HVMM_EXIT_HOST;
		}
		off += (size_t)w;
	}
	free(req);
	struct ctl_answer a = { 0 };
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &a;
	http_parser_settings s;
	http_parser_settings_init(&s);
	s.on_body = ctl_on_body;
	s.on_message_complete = ctl_on_complete;
	char buf[4096];
	while (!a.done) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "hvmm ctl: %s: no answer: %s\n", sock, strerror(errno));
			break;
		}
		/* r == 0: EOF, which also ends an answer without a length */
		size_t used = http_parser_execute(&p, &s, buf, (size_t)r);
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || used != (size_t)r) {
			fprintf(stderr, "hvmm ctl: %s: %s\n", sock,
				a.too_big ? "answer over 16 MiB" : "not an HTTP answer");
			break;
		}
		if (r == 0)
			break;
	}
	close(fd);
	int rc;
	if (!a.done) {
		if (HTTP_PARSER_ERRNO(&p) == HPE_OK && !a.too_big)
			fprintf(stderr, "hvmm ctl: %s: the answer ended early\n", sock);
		rc = HVMM_EXIT_HOST;
	} else if (p.status_code >= 200 && p.status_code < 300) {
		if (a.len)
			printf("%s\n", a.body);
		rc = 0;
	} else {
		json_object *o = a.body ? json_tokener_parse(a.body) : NULL;
		json_object *m;
		const char *msg = o && json_object_object_get_ex(o, "fault_message", &m) ?
					  json_object_get_string(m) : (a.body ? a.body : "");
		fprintf(stderr, "hvmm ctl: %u %s: %s\n", p.status_code, http_status_str(p.status_code), msg);
		json_object_put(o);
		rc = 1;
	}
	free(a.body);
	return rc;
}

/* "irq:0x5e" -> {"kind": "irq", "vector": 94}; the numbers as C reads them
 * (0x.. or decimal). The API checks the ranges. 0, or -1 if malformed. */
static int ctl_inject_body(const char *spec, char *body, size_t n)
{
	char kind[16];
	size_t k = strcspn(spec, ":");
	if (k == 0 || k >= sizeof(kind))
		return -1;
	memcpy(kind, spec, k);
	kind[k] = 0;
	const char *p = spec + k;
	if (strcmp(kind, "nmi") == 0 && !*p) {
		snprintf(body, n, "{\"kind\": \"nmi\"}");
		return 0;
	}
	if ((strcmp(kind, "irq") != 0 && strcmp(kind, "exception") != 0) || *p != ':')
		return -1;
	char *end;
	errno = 0;
	unsigned long vec = strtoul(p + 1, &end, 0);
	if (errno || end == p + 1 || vec > 255 || (*end && (*end != ':' || kind[0] != 'e')))
		return -1;
	if (!*end) {
		snprintf(body, n, "{\"kind\": \"%s\", \"vector\": %lu}", kind, vec);
		return 0;
	}
	const char *ec_s = end + 1;
	unsigned long long ec = strtoull(ec_s, &end, 0);
	if (errno || end == ec_s || *end || ec > 0xffffffffull || ec_s[0] == '-')
		return -1;
	snprintf(body, n, "{\"kind\": \"exception\", \"vector\": %lu, \"error_code\": %llu}", vec, ec);
	return 0;
}

/* hvmm runs elsewhere (another directory, a jail): a relative path means
 * the caller's directory, so it goes as an absolute one. */
static char *ctl_abspath(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char *cwd = getcwd(NULL, 0), *out = NULL;
	if (cwd && asprintf(&out, "%s/%s", cwd, p) < 0)
		out = NULL;
	free(cwd);
	return out;
}

/* snapshot (load false: PUT /snapshot/create of type `type`) or load (PUT
 * /snapshot/load, resume and track as given) with the two paths made
 * absolute: the server's working directory is not the client's. */
static int ctl_snapshot(const char *sock, const char *state, const char *mem, bool load, const char *type,
			bool resume, bool track)
{
	char *s = ctl_abspath(state), *m = ctl_abspath(mem);
	int r = HVMM_EXIT_HOST;
	json_object *o = json_object_new_object();
	if (s && m && o && load) {
		json_object *mb = json_object_new_object();
		json_object_object_add(mb, "backend_type", json_object_new_string("File"));
		json_object_object_add(mb, "backend_path", json_object_new_string(m));
		json_object_object_add(o, "snapshot_path", json_object_new_string(s));
		json_object_object_add(o, "mem_backend", mb);
		json_object_object_add(o, "track_dirty_pages", json_object_new_boolean(track));
		json_object_object_add(o, "resume_vm", json_object_new_boolean(resume));
		r = ctl_request(sock, "PUT", "/snapshot/load", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	} else if (s && m && o) {
		json_object_object_add(o, "snapshot_type", json_object_new_string(type));
		json_object_object_add(o, "snapshot_path", json_object_new_string(s));
		json_object_object_add(o, "mem_file_path", json_object_new_string(m));
		r = ctl_request(sock, "PUT", "/snapshot/create", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	} else {
		fputs("hvmm ctl: out of memory or no current directory\n", stderr);
	}
	json_object_put(o);
	free(s);
	free(m);
	return r;
}

int ctl_main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		ctl_usage(stdout);
		return 0;
	}
	if (argc < 3) {
		fputs("hvmm ctl: needs SOCKET and COMMAND (see hvmm ctl --help)\n", stderr);
		return HVMM_EXIT_USAGE;
	}
	const char *sock = argv[1], *cmd = argv[2];
	static const struct {
		const char *name, *method, *path, *body;
	} cmds[] = {
		{ "info", "GET", "/", NULL },
		{ "config", "GET", "/machine-config", NULL },
		{ "pause", "PATCH", "/vm", "{\"state\": \"Paused\"}" },
		{ "resume", "PATCH", "/vm", "{\"state\": \"Resumed\"}" },
		{ "stats", "GET", "/hvmm/stats", NULL },
		{ "irt", "GET", "/hvmm/irt", NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i].name) != 0)
			continue;
		if (argc != 3) {
			fprintf(stderr, "hvmm ctl: %s takes no arguments (see hvmm ctl --help)\n", cmd);
			return HVMM_EXIT_USAGE;
		}
		return ctl_request(sock, cmds[i].method, cmds[i].path, cmds[i].body);
	}
	if (strcmp(cmd, "inject") == 0) {
		char body[160];
		if (argc != 4 || ctl_inject_body(argv[3], body, sizeof(body)) < 0) {
			fprintf(stderr, "hvmm ctl: inject takes irq:VECTOR, nmi or exception:VECTOR[:ERRCODE] "
					"(see hvmm ctl --help)\n");
			return HVMM_EXIT_USAGE;
		}
		return ctl_request(sock, "PUT", "/hvmm/inject", body);
	}
	if (strcmp(cmd, "migrate") == 0) {
		uint64_t ms = 300;
		if (argc < 4 || argc > 5 || strncmp(argv[3], "tcp:", 4) != 0 ||
		    (argc == 5 && util_parse_uint(argv[4], 1, 60000, &ms) < 0)) {
			fputs("hvmm ctl: migrate takes tcp:HOST:PORT and optionally a downtime in ms "
			      "(1..60000)\n", stderr);
			return HVMM_EXIT_USAGE;
		}
		json_object *o = json_object_new_object();
		json_object_object_add(o, "destination", json_object_new_string(argv[3]));
		json_object_object_add(o, "downtime_ms", json_object_new_int64((int64_t)ms));
		ctl_timeout_s = 600;
		int r = ctl_request(sock, "PUT", "/hvmm/migrate", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return r;
	}
	if (strcmp(cmd, "snapshot") == 0) {
		if (argc < 5 || argc > 6 || !*argv[3] || !*argv[4] ||
		    (argc == 6 && strcmp(argv[5], "Full") != 0 && strcmp(argv[5], "Diff") != 0)) {
			fputs("hvmm ctl: snapshot takes STATE and MEM file paths, then optionally Full or Diff "
			      "(see hvmm ctl --help)\n", stderr);
			return HVMM_EXIT_USAGE;
		}
		return ctl_snapshot(sock, argv[3], argv[4], false, argc == 6 ? argv[5] : "Full", false, false);
	}
	if (strcmp(cmd, "load") == 0) {
		bool resume = false, track = false, ok = argc >= 5 && argc <= 7 && *argv[3] && *argv[4];
		for (int i = 5; ok && i < argc; i++) {
			if (strcmp(argv[i], "resume") == 0 && !resume)
				resume = true;
			else if (strcmp(argv[i], "track") == 0 && !track)
				track = true;
			else
				ok = false;
		}
		if (!ok) {
			fputs("hvmm ctl: load takes STATE and MEM file paths, then optionally resume and track "
			      "(see hvmm ctl --help)\n", stderr);
			return HVMM_EXIT_USAGE;
		}
		return ctl_snapshot(sock, argv[3], argv[4], true, NULL, resume, track);
	}
	static const char *const methods[] = { "GET", "PUT", "PATCH", "POST", "DELETE" };
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(cmd, methods[i]) != 0)
			continue;
		if (argc < 4 || argc > 5 || argv[3][0] != '/') {
			fprintf(stderr, "hvmm ctl: %s needs a PATH starting with / and at most a body\n", cmd);
			return HVMM_EXIT_USAGE;
		}
		/* A request line must stay one line. */
		if (strpbrk(argv[3], " \r\n")) {
			fputs("hvmm ctl: PATH may not contain spaces or line breaks\n", stderr);
			return HVMM_EXIT_USAGE;
		}
		return ctl_request(sock, cmd, argv[3], argc == 5 ? argv[4] : NULL);
	}
	fprintf(stderr, "hvmm ctl: unknown command '%s' (see hvmm ctl --help)\n", cmd);
	return HVMM_EXIT_USAGE;
}
