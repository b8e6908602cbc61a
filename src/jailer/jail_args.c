/* jailer: the jailer's options, and hvmm's command line moved into the jail. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jailer.h"

/*
 * hvmm's long options that take a value, as src/options.c declares them: to find
 * IMAGE among hvmm's arguments the jailer must know which words are values.
 * tests/unit/test_jailer.c compares this list with options.c's table.
 */
const char *const jail_hvmm_value_opts[] = {
	"mem", "cpus", "cmdline", "boot", "module", "serial", "serial-limit", "stats-json",
	"timeout", "irqchip", "posted-interrupts", "pcpus", "timeline", "halt-poll", "acpi", "kernel", "initrd", "cpu-template",
	"cpuid-mask", "cpuid-set", "console", "disk", "network", "device", "seccomp", "msr-filter",
	"inject", "walk", "dirty-log", "api-sock", "id", "restore", "metrics", "incoming", NULL,
};
/* Those without a value, for getopt's prefix matching (--no-i is ambiguous). */
static const char *const jail_hvmm_flag_opts[] = {
	"stats", "trace-exits", "strict-io", "no-decompress", "rng", "no-irqfd",
	"no-ioeventfd", "hyperv", "nested", "no-hlt-exits", "no-pause-exits", "track-dirty-pages", "help", "version", NULL,
};

void jail_err(const char *fmt, ...)
{
	va_list ap;
	fputs("hvmm-jailer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void jail_usage(FILE *f)
{
	fputs("Usage: hvmm-jailer --id ID --exec-file HVMM --uid UID --gid GID [options] -- run [hvmm options] IMAGE\n"
	      "\n"
	      "Run hvmm confined, as root starts it on a shared host: in <base>/hvmm/<ID>/root\n"
	      "(pivot_root), as UID:GID without capabilities and with no_new_privs, in new\n"
	      "mount, PID (--new-pid-ns), network, IPC and UTS namespaces, in a cgroup v2\n"
	      "group with --cgroup limits. Files named on hvmm's command line (IMAGE,\n"
	      "--kernel, --initrd, --module, --disk, --serial FILE, --stats-json, --restore\n"
	      "STATE,mem=MEM) are bind-\n"
	      "mounted into the jail and their paths rewritten. --api-sock PATH is a path\n"
	      "inside the jail (reached from outside under <base>/hvmm/<ID>/root).\n"
	      "\n"
	      "Options:\n"
	      "  --id ID                 the VM's name: 1-64 letters, digits and '-'\n"
	      "  --exec-file FILE        the hvmm binary (copied into the jail)\n"
	      "  --uid UID, --gid GID    who hvmm runs as (not 0)\n"
	      "  --chroot-base-dir DIR   where jails are made (default " JAIL_DEFAULT_BASE ")\n"
	      "  --netns PATH            join this network namespace (default: a new, empty one)\n"
	      "  --cgroup FILE=VALUE     write VALUE to the VM's cgroup v2 FILE, e.g.\n"
	      "                          memory.max=512M, cpu.max=50000 100000 (repeatable)\n"
	      "  --parent-cgroup PATH    the group is <cgroup2 mount>/PATH/ID (default " JAIL_DEFAULT_PARENT_CGROUP ")\n"
	      "  --new-pid-ns            hvmm is PID 1 of a new PID namespace (the jailer waits\n"
	      "                          for it and returns its status)\n"
	      "  --daemonize             hvmm in a new session with stdio on /dev/null; the\n"
	      "                          jailer returns 0 once it is started\n"
	      "  --reuse                 use an existing jail directory and cgroup of this ID\n"
	      "  -h, --help              this text\n"
	      "\n"
	      "Exit status: hvmm's once it runs; 12 usage error; 14 the jail or cgroup of ID\n"
	      "exists (no --reuse); 16 not root, or a set-up step failed.\n",
	      f);
}

static int jail_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int jail_bad(const char *fmt, ...)
{
	va_list ap;
	fputs("hvmm-jailer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see hvmm-jailer --help)\n", stderr);
	return JAIL_EXIT_USAGE;
}

static int jail_parse_id(const char *s, unsigned long *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v == 0 || v >= 0xffffffffUL)
		return -1;
	*out = v;
	return 0;
}

static bool jail_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > JAIL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
			return false;
	return true;
}

/* A relative path of plain names: no "..", ".", empty parts or leading '/'. */
static bool jail_relpath_ok(const char *p)
{
	if (!*p || *p == '/' || strlen(p) > 1024)
		return false;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n + (e ? 1 : 0);
		if (e && !*s)
			return false;
	}
	return true;
}

/* CONTROLLER.KEY=VALUE, controller files only: cgroup.* (procs, subtree
 * control, ...) are the jailer's to write, never the caller's. */
static int jail_parse_cgroup(const char *arg, struct jail_cgroup_set *c)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	if (!eq || n == 0 || n >= sizeof(c->file))
		return jail_bad("--cgroup: '%s' is not FILE=VALUE", arg);
	memcpy(c->file, arg, n);
	c->file[n] = 0;
	const char *dot = strchr(c->file, '.');
	bool ok = dot && dot != c->file && dot[1];
	for (size_t i = 0; ok && i < n; i++)
		ok = (c->file[i] >= 'a' && c->file[i] <= 'z') || (c->file[i] >= '0' && c->file[i] <= '9') ||
		     c->file[i] == '.' || c->file[i] == '_';
	if (!ok)
		return jail_bad("--cgroup: '%s' is not a cgroup file name like memory.max", c->file);
	if (strncmp(c->file, "cgroup.", 7) == 0)
		return jail_bad("--cgroup: %s is the jailer's to write, not a limit", c->file);
	c->value = eq + 1;
	if (!*c->value || strchr(c->value, '\n'))
		return jail_bad("--cgroup %s: empty value or a newline in it", c->file);
	return 0;
}

enum {
	OPT_ID = 256, OPT_EXEC, OPT_UID, OPT_GID, OPT_BASE, OPT_NETNS, OPT_CGROUP, OPT_PARENT,
	OPT_PIDNS, OPT_DAEMON, OPT_REUSE,
};

static const struct option jail_opts[] = {
	{ "id", required_argument, NULL, OPT_ID },
	{ "exec-file", required_argument, NULL, OPT_EXEC },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "chroot-base-dir", required_argument, NULL, OPT_BASE },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "parent-cgroup", required_argument, NULL, OPT_PARENT },
	{ "new-pid-ns", no_argument, NULL, OPT_PIDNS },
	{ "daemonize", no_argument, NULL, OPT_DAEMON },
	{ "reuse", no_argument, NULL, OPT_REUSE },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

int jail_parse(int argc, char **argv, struct jail_cfg *cfg, bool *done)
{
	unsigned long v;
	bool have_uid = false, have_gid = false;
	int c;
	memset(cfg, 0, sizeof(*cfg));
	cfg->base = JAIL_DEFAULT_BASE;
	cfg->parent_cgroup = JAIL_DEFAULT_PARENT_CGROUP;
	*done = false;
	optind = 1;
	opterr = 0;
	/* '+': stop at "--"; everything after it is hvmm's. */
	while ((c = getopt_long(argc, argv, "+:h", jail_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ID:
			if (!jail_id_ok(optarg))
				return jail_bad("--id: '%s' is not 1-64 letters, digits and '-'", optarg);
			cfg->id = optarg;
			break;
		case OPT_EXEC:
			if (!*optarg)
				return jail_bad("--exec-file: empty file name");
			cfg->exec_file = optarg;
			break;
		case OPT_UID:
		case OPT_GID:
			if (jail_parse_id(optarg, &v) < 0)
				return jail_bad("--%s: '%s' is not a number from 1 to 4294967294 (the jail never "
						"runs hvmm as root)", c == OPT_UID ? "uid" : "gid", optarg);
			if (c == OPT_UID) {
				cfg->uid = (uid_t)v;
				have_uid = true;
			} else {
				cfg->gid = (gid_t)v;
				have_gid = true;
			}
			break;
		case OPT_BASE:
			if (optarg[0] != '/' || strlen(optarg) > 1024)
				return jail_bad("--chroot-base-dir: '%s' is not an absolute path", optarg);
			cfg->base = optarg;
			break;
		case OPT_NETNS:
			if (!*optarg)
				return jail_bad("--netns: empty path");
			cfg->netns = optarg;
			break;
		case OPT_CGROUP:
			if (cfg->nr_cgroup == JAIL_MAX_CGROUP)
				return jail_bad("--cgroup: at most %d of them", JAIL_MAX_CGROUP);
			if ((c = jail_parse_cgroup(optarg, &cfg->cgroup[cfg->nr_cgroup++])))
				return c;
			break;
		case OPT_PARENT:
			if (!jail_relpath_ok(optarg))
				return jail_bad("--parent-cgroup: '%s' is not a relative path without '.' and '..'",
						optarg);
			cfg->parent_cgroup = optarg;
			break;
		case OPT_PIDNS:
			cfg->new_pid_ns = true;
			break;
		case OPT_DAEMON:
			cfg->daemonize = true;
			break;
		case OPT_REUSE:
			cfg->reuse = true;
			break;
		case 'h':
			jail_usage(stdout);
			*done = true;
			return 0;
		case ':':
			return jail_bad("option '%s' needs an argument", argv[optind - 1]);
		default:
			return jail_bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!cfg->id)
		return jail_bad("--id is missing");
	if (!cfg->exec_file)
		return jail_bad("--exec-file is missing");
	if (!have_uid || !have_gid)
		return jail_bad("--%s is missing", have_uid ? "gid" : "uid");
	/* getopt with '+' leaves "--" consumed and optind after it; a word that
	 * is not an option stops it before any "--". */
	if (optind < 2 || strcmp(argv[optind - 1], "--") != 0)
		return jail_bad("hvmm's arguments go after '--' (hvmm-jailer ... -- run IMAGE)");
	return jail_rewrite(argc - optind, argv + optind, cfg);
}

/* getopt_long's matching: the exact name, else the one option name starts. */
static const char *jail_match(const char *name, size_t n, bool *takes_value)
{
	const char *hit = NULL;
	int hits = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *const *list = pass ? jail_hvmm_flag_opts : jail_hvmm_value_opts;
		for (int i = 0; list[i]; i++) {
			if (strncmp(list[i], name, n) != 0)
				continue;
			if (strlen(list[i]) == n) {
				*takes_value = !pass;
				return list[i];
			}
			hits++;
			hit = list[i];
			*takes_value = !pass;
		}
	}
	return hits == 1 ? hit : NULL;
}

/* The options hvmm's --disk takes after the path (main.c reads them from the end). */
static bool jail_disk_opt(const char *o, size_t n)
{
	static const char *const kw[] = { "bw=", "iops=", "bw-burst=", "iops-burst=" };
	if ((n == 2 && strncmp(o, "ro", 2) == 0) || (n == 2 && strncmp(o, "rw", 2) == 0))
		return true;
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (n > strlen(kw[i]) && strncmp(o, kw[i], strlen(kw[i])) == 0)
			return true;
	return false;
}

/* A formatted string that lives as long as cfg (hvmm's new argv). */
static char *jail_store(struct jail_cfg *cfg, const char *fmt, const char *arg)
{
	char *s;
	if (cfg->nr_store == JAIL_MAX_STORE || asprintf(&s, fmt, arg) < 0)
		return NULL;
	return cfg->store[cfg->nr_store++] = s;
}

static int jail_add(struct jail_cfg *cfg, const char *name, const char *src, size_t srclen,
		    const char *suffix, bool readonly, bool output, char **out)
{
	if (cfg->nr_binds == JAIL_MAX_BINDS)
		return jail_bad("more than %d files on hvmm's command line", JAIL_MAX_BINDS);
	for (int i = 0; i < cfg->nr_binds; i++)
		if (strcmp(cfg->binds[i].name, name) == 0)
			return jail_bad("hvmm's command line names its %s twice", name);
	struct jail_bind *b = &cfg->binds[cfg->nr_binds];
	char *s = strndup(src, srclen);
	char *v = NULL;
	if (!s || asprintf(&v, "/%s%s", name, suffix) < 0) {
		free(s);
		return jail_bad("out of memory");
	}
	b->src = s;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->readonly = readonly;
	b->output = output;
	cfg->nr_binds++;
	if (cfg->nr_store < JAIL_MAX_STORE)
		cfg->store[cfg->nr_store++] = v;
	*out = v;
	return 0;
}

/* One file-valued option (canonical name opt) with its value: its bind and
 * the value hvmm gets in the jail (*out), or *out = val when it names no file. */
static int jail_file_opt(struct jail_cfg *cfg, const char *opt, char *val, char **out, int *nmod,
			 int *ndisk)
{
	char name[16];
	*out = val;
	if (strcmp(opt, "network") == 0 && strncmp(val, "user", 4) == 0 && (!val[4] || val[4] == ','))
		cfg->net_user = true;
	if (!*val)
		return 0; /* hvmm says what is wrong with an empty value */
	if (strcmp(opt, "kernel") == 0)
		return jail_add(cfg, "kernel", val, strlen(val), "", true, false, out);
	if (strcmp(opt, "initrd") == 0)
		return jail_add(cfg, "initrd", val, strlen(val), "", true, false, out);
	if (strcmp(opt, "module") == 0) {
		const char *comma = strchr(val, ',');
		size_t n = comma ? (size_t)(comma - val) : strlen(val);
		snprintf(name, sizeof(name), "module%d", (*nmod)++);
		return jail_add(cfg, name, val, n, comma ? comma : "", true, false, out);
	}
	if (strcmp(opt, "disk") == 0) {
		size_t n = strlen(val);
		bool ro = false;
		for (const char *comma; (comma = memrchr(val, ',', n)) != NULL; n = (size_t)(comma - val)) {
			const char *o = comma + 1;
			size_t on = n - (size_t)(o - val);
			if (!jail_disk_opt(o, on))
				break;
			ro |= on == 2 && strncmp(o, "ro", 2) == 0;
		}
		snprintf(name, sizeof(name), "disk%d", (*ndisk)++);
		return jail_add(cfg, name, val, n, val + n, ro, false, out);
	}
	if (strcmp(opt, "serial") == 0) {
		if (strcmp(val, "stdio") == 0 || strcmp(val, "none") == 0)
			return 0;
		return jail_add(cfg, "serial", val, strlen(val), "", false, true, out);
	}
	if (strcmp(opt, "stats-json") == 0)
		return jail_add(cfg, "stats.json", val, strlen(val), "", false, true, out);
	if (strcmp(opt, "metrics") == 0)
		return jail_add(cfg, "metrics", val, strlen(val), "", false, true, out);
	if (strcmp(opt, "restore") == 0) {
		/* STATE,mem=MEM: both files go in, read-only (the memory file is
		 * mapped privately). The state file's own record of the memory
		 * file is a path outside the jail, so mem= must be given. */
		char *mem = strstr(val, ",mem=");
		if (!mem || !mem[5])
			return jail_bad("--restore in a jail needs STATE,mem=MEMFILE (the state's own path "
					"to its memory file is outside the jail)");
		char *state_in, *mem_in; /* "/snapshot", "/snapshot.mem" */
		int r = jail_add(cfg, "snapshot", val, (size_t)(mem - val), "", true, false, &state_in);
		if (r == 0)
			r = jail_add(cfg, "snapshot.mem", mem + 5, strlen(mem + 5), "", true, false, &mem_in);
		if (r)
			return r;
		if (!(*out = jail_store(cfg, "/snapshot,mem=%s", mem_in)))
			return jail_bad("out of memory");
		return 0;
	}
	return 0;
}

int jail_rewrite(int argc, char **argv, struct jail_cfg *cfg)
{
	if (argc < 1 || strcmp(argv[0], "run") != 0)
		return jail_bad("hvmm's arguments after '--' start with 'run'");
	/* Each argument becomes at most two ("--opt=v" → "--opt", "/name"). */
	char **out = calloc((size_t)argc * 2 + 2, sizeof(*out));
	if (!out)
		return jail_bad("out of memory");
	cfg->hvmm_argv = out;
	int k = 0, nmod = 0, ndisk = 0, r;
	bool positional = false, image = false;
	out[k++] = "/hvmm";
	out[k++] = argv[0];
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (!positional && strcmp(a, "--") == 0) {
			positional = true;
			out[k++] = a;
			continue;
		}
		if (!positional && strncmp(a, "--config-file", 13) == 0 && (!a[13] || a[13] == '='))
			return jail_bad("--config-file cannot be used in a jail (the files it names would not be "
					"bind-mounted): give them as hvmm options");
		if (!positional && a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			bool takes = false;
			const char *opt = jail_match(a + 2, n, &takes);
			if (!opt || !takes) {
				out[k++] = a; /* hvmm reports unknown or ambiguous options */
				continue;
			}
			char *val = eq ? (char *)eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val) {
				out[k++] = a; /* hvmm reports the missing value */
				continue;
			}
			char *nv;
			if ((r = jail_file_opt(cfg, opt, val, &nv, &nmod, &ndisk)))
				return r;
			if (nv == val) {
				out[k++] = a;
				if (!eq)
					out[k++] = val;
				continue;
			}
			/* The option by its full name, then the value in the jail. */
			if (!(out[k++] = jail_store(cfg, "--%s", opt)))
				return jail_bad("out of memory");
			out[k++] = nv;
			continue;
		}
		if (!positional && a[0] == '-' && a[1]) {
			/* A cluster of short options: -m and -c take the rest, or the next word. */
			out[k++] = a;
			for (const char *s = a + 1; *s; s++)
				if (*s == 'm' || *s == 'c') {
					if (!s[1] && i + 1 < argc)
						out[k++] = argv[++i];
					break;
				}
			continue;
		}
		if (image) {
			out[k++] = a; /* hvmm reports the extra word */
			continue;
		}
		image = true;
		if ((r = jail_file_opt(cfg, "kernel", a, &out[k++], &nmod, &ndisk)))
			return r;
	}
	out[k] = NULL;
	return 0;
}

void jail_cfg_free(struct jail_cfg *cfg)
{
	for (int i = 0; i < cfg->nr_binds; i++)
		free((char *)cfg->binds[i].src);
	for (int i = 0; i < cfg->nr_store; i++)
		free(cfg->store[i]);
	cfg->nr_store = 0;
	free(cfg->hvmm_argv);
	cfg->hvmm_argv = NULL;
	cfg->nr_binds = 0;
}
