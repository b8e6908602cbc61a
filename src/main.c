/* hvmm: command line → struct vm_config → vm_create → vm_run. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "controls.h"
#include "config_file.h"
#include "ctl.h"
#include "inject.h"
#include "labcmd.h"
#include "multivm.h"
#include "options.h"
#include "preboot.h"
#include "preflight.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "snapmerge.h"
#include "snapshot.h"
#include "term.h"
#include "util.h"
#include "vfio.h"
#include "vm.h"


/*
 * The sanitizer build runs unconfined unless --seccomp on: LeakSanitizer's
 * check at exit stops the world with clone and ptrace, and ASan's reports
 * read /proc/self/maps — exactly what the main thread's list forbids — and
 * a list widened for them would not be the one hvmm ships. The normal build,
 * filters on, runs the same suite (docs/security.md).
 */
#if defined(__SANITIZE_ADDRESS__)
#include <unistd.h>
/*
 * In hvmm-jailer's jail there is no /proc: the sanitizer runtime can then
 * neither read its options (it reads /proc/self/environ) nor run the leak
 * check at exit (it walks /proc/PID/task), which would end hvmm with the
 * sanitizer's fatal error instead of its status. Without /proc, no leak
 * check; everywhere else, the defaults.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return access("/proc/self/environ", R_OK) == 0 ? "" : "detect_leaks=0";
}
#endif

/* Argument vectors hvmm made itself (--config-file's, the pre-boot API's):
 * the configuration points into them until the process ends, so they are
 * kept where they stay reachable. */
static char **main_made_argv[3];

/*
 * --config-file FILE (or =FILE), anywhere among run's options: the options
 * the file describes go first, then the command line's own, which add to
 * them (a later --cmdline wins). *out is argv rebuilt, or argv itself. A
 * description of several VMs fills *multi instead (multi->multi set), and
 * *out is then the command line without --config-file.
 */
static int main_config_file(int argc, char **argv, int *out_argc, char ***out_argv, struct config_vms *multi)
{
	*out_argc = argc;
	*out_argv = argv;
	memset(multi, 0, sizeof(*multi));
	const char *path = NULL;
	int at = -1, width = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		const char *v = NULL;
		int w = 1;
		if (strcmp(argv[i], "--config-file") == 0) {
			if (i + 1 >= argc)
				return options_bad("option '%s' needs an argument", argv[i]);
			v = argv[i + 1];
			w = 2;
		} else if (strncmp(argv[i], "--config-file=", 14) == 0) {
			v = argv[i] + 14;
		}
		if (!v)
			continue;
		if (path)
			return options_bad("--config-file given twice ('%s')", v);
		path = v;
		at = i;
		width = w;
		i += w - 1;
	}
	if (!path)
		return 0;
	uint8_t *text;
	size_t len;
	int r = util_read_file(path, &text, &len, CONFIG_FILE_MAX);
	if (r < 0) {
		util_err("--config-file %s: %s", path, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		return HVMM_EXIT_USAGE;
	}
	struct config_vms cv;
	char err[256];
	r = config_file_parse_vms((const char *)text, len, &cv, err, sizeof(err));
	free(text);
	if (r < 0) {
		config_file_free_vms(&cv);
		util_err("--config-file %s: %s", path, err);
		return HVMM_EXIT_USAGE;
	}
	int cargc = cv.multi ? 0 : cv.argc[0];
	/* "hvmm run" + the file's options (one VM's) + the rest; lives as long
	 * as hvmm (the configuration keeps pointers into it) */
	char **nv = calloc((size_t)(argc + cargc + 1), sizeof(*nv));
	if (!nv) {
		config_file_free_vms(&cv);
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	int k = 0;
	nv[k++] = argv[0];
	nv[k++] = argv[1];
	for (int i = 0; i < cargc; i++)
		nv[k++] = cv.argv[0][i];
	if (cv.multi) {
		*multi = cv;
	} else {
		free(cv.argv[0]); /* the strings live on in nv */
	}
	for (int i = 2; i < argc; i++)
		if (i < at || i >= at + width)
			nv[k++] = argv[i];
	nv[k] = NULL;
	*out_argc = k;
	*out_argv = main_made_argv[0] = nv;
	return 0;
}

/* Block the signals that end hvmm (SIGINT, SIGTERM, SIGHUP) in this thread
 * and every thread it creates from now on; *set is them, for a wait. */
static void main_block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* The pre-boot API's answer to the request that built the VM, given once
 * the socket serves the VM (lifecycle_start). */
static void main_preboot_ready(void *pb)
{
	preboot_answer(pb, true, NULL);
}

/*
 * One start through the pre-boot API as hvmm options: the description's
 * (InstanceStart) or the snapshot's own and --restore (a load), then the
 * command line's, which add to them. *nv is the vector (the caller keeps
 * it), *owned the strings made here. 0, or -1 with err.
 */
static int main_preboot_argv(int argc, char **argv, const char *json, const struct preboot_load *load, char ***nv,
			     int *k, char ***owned, int *nowned, char *err, size_t n)
{
	char **made = NULL;
	int nmade = 0;
	/* a load: the files checked first (the API thread cannot read them),
	 * and the snapshot's own options */
	char **snap = NULL;
	int nsnap = 0;
	if (load && snapshot_load_check(load->state_path, load->mem_path, &snap, &nsnap, err, n) < 0)
		return -1;
	if (json) {
		if (config_file_parse(json, strlen(json), &made, &nmade, err, n) < 0) {
			config_file_free(made, nmade);
			return -1;
		}
	} else {
		/* --restore, and what the load asked for besides */
		made = calloc(4, sizeof(*made));
		size_t len = strlen(load->state_path) + strlen(load->mem_path) + 32;
		int want = 1 + load->track + (load->metrics != NULL);
		if (made && (made[0] = malloc(len)) != NULL) {
			snprintf(made[0], len, "--restore=%s,mem=%s", load->state_path, load->mem_path);
			nmade = 1;
			if (load->track && (made[nmade] = strdup("--track-dirty-pages")) != NULL)
				nmade++;
			if (load->metrics && asprintf(&made[nmade], "--metrics=%s", load->metrics) > 0)
				nmade++;
		}
		if (!made || nmade < want) {
			config_file_free(made, nmade);
			options_free_args(snap, nsnap);
			snprintf(err, n, "out of memory");
			return -1;
		}
	}
	/* every string made here in one list, the snapshot's options first */
	char **all = calloc((size_t)(nsnap + nmade + 1), sizeof(*all));
	char **v = calloc((size_t)(argc + nmade + nsnap + 1), sizeof(*v));
	if (!all || !v) {
		free(all);
		free(v);
		config_file_free(made, nmade);
		options_free_args(snap, nsnap);
		snprintf(err, n, "out of memory");
		return -1;
	}
	for (int j = 0; j < nsnap; j++)
		all[j] = snap[j];
	for (int j = 0; j < nmade; j++)
		all[nsnap + j] = made[j];
	free(snap);
	free(made);
	int i = 0;
	v[i++] = argv[0];
	v[i++] = argv[1];
	for (int j = 0; j < nsnap + nmade; j++)
		v[i++] = all[j];
	for (int j = 2; j < argc; j++)
		v[i++] = argv[j];
	*nv = v;
	*k = i;
	*owned = all;
	*nowned = nsnap + nmade;
	return 0;
}

/*
 * Serve the pre-boot API until a client starts the VM — InstanceStart, or
 * a snapshot load — (or a signal ends hvmm), then run that VM like one from
 * the command line. A start the options or the checks refuse is answered
 * with the reason and can be retried; one that fails while the VM is built
 * ends hvmm with its status.
 */
static int main_run_preboot(int argc, char **argv, const struct vm_config *defaults, const struct vm_config *cl)
{
	/* Blocked before the socket exists (a client that sees it may signal
	 * at once) and before the API thread, which inherits the mask: they are
	 * taken by preboot_wait. */
	sigset_t sigs;
	main_block_stop_signals(&sigs);
	char err[300];
	struct api_server *s = api_open(cl->api_sock, err, sizeof(err));
	if (!s) {
		util_err("%s", err);
		return HVMM_EXIT_USAGE;
	}
	struct preboot *pb = preboot_new(cl->id);
	if (!pb || api_start(s, preboot_ops(pb)) < 0) {
		util_err("starting the API: %s", pb ? strerror(errno) : "out of memory");
		api_close(s);
		preboot_free(pb);
		return HVMM_EXIT_HOST;
	}
	static struct vm vm; /* static: large, and lives for the whole process */
	static char **owned; /* the strings of the last try's vector made here */
	static int nowned;
	for (;;) {
		char *json = NULL;
		const struct preboot_load *load = NULL;
		int status = 0;
		if (!preboot_wait(pb, &sigs, &json, &load, &status)) {
			api_close(s);
			preboot_free(pb);
			return status;
		}
		/* a retried start: the refused one's vector goes; the strings of
		 * the one that runs live as long as hvmm (the configuration
		 * points into them) */
		config_file_free(owned, nowned);
		owned = NULL;
		nowned = 0;
		free(main_made_argv[1]);
		main_made_argv[1] = NULL;
		char **nv = NULL;
		int k = 0;
		int r = main_preboot_argv(argc, argv, json, load, &nv, &k, &owned, &nowned, err, sizeof(err));
		free(json);
		if (r < 0) {
			preboot_answer(pb, false, err);
			continue;
		}
		main_made_argv[1] = nv;
		struct vm_config cfg = *defaults;
		bool done = false, preboot = false;
		util_clear_last_err();
		r = options_vm_args(k - 1, nv + 1, &cfg.vm_args, &cfg.nr_vm_args) < 0 ? HVMM_EXIT_HOST : 0;
		if (r)
			util_err("out of memory");
		optind = 0; /* getopt starts afresh */
		if (!r)
			r = options_parse(k - 1, nv + 1, &cfg, &done, &preboot);
		if (!r && preboot)
			r = options_bad("the description has no kernel%s", "");
		if (!r)
			r = preflight_check(&cfg);
		if (r) {
			options_free_args(cfg.vm_args, cfg.nr_vm_args);
			preboot_answer(pb, false, util_last_err());
			continue;
		}
		cfg.api_server = s;
		cfg.start_paused = load && !load->resume;
		cfg.api_ready = main_preboot_ready;
		cfg.api_ready_arg = pb;
		r = vm_create(&vm, &cfg);
		if (r) {
			preboot_answer(pb, false, util_last_err());
			vm.api = NULL; /* the socket is closed here, once the answer is out */
			vm_destroy(&vm);
			api_close(s);
			preboot_free(pb);
			options_free_args(cfg.vm_args, cfg.nr_vm_args);
			return r;
		}
		r = vm_run(&vm); /* the API thread is handed the VM's handlers in it, then answered */
		vm_destroy(&vm);
		preboot_free(pb);
		options_free_args(cfg.vm_args, cfg.nr_vm_args);
		return r;
	}
}

/* A copy of the vector (the strings too): options_parse cuts values up,
 * and a restore may parse the command line a second time. */
static char **main_dup_argv(int argc, char **argv)
{
	char **d = calloc((size_t)argc + 1, sizeof(*d));
	for (int i = 0; d && i < argc; i++)
		if (!(d[i] = strdup(argv[i]))) {
			options_free_args(d, i);
			return NULL;
		}
	return d;
}

/*
 * --restore STATE with none of the options that build a VM: they come from
 * the snapshot (its "config" section), followed by the command line's own
 * (the process's: --api-sock, --serial, ...), and the configuration is
 * parsed again from them. A snapshot without them (an older hvmm's) is
 * restored with the defaults, checked against it as before; a file that
 * cannot be read is left to the restore to report.
 */
static int main_restore_config(int argc, char **orig, const struct vm_config *defaults, struct vm_config *cfg)
{
	char **args = NULL;
	int n = 0;
	char err[300];
	if (snapshot_read_config(cfg->restore, &args, &n, err, sizeof(err)) < 0 || n == 0) {
		options_free_args(args, n);
		return 0;
	}
	char **nv = calloc((size_t)(argc + n + 1), sizeof(*nv));
	if (!nv) {
		options_free_args(args, n);
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	int k = 0;
	nv[k++] = orig[0];
	nv[k++] = orig[1];
	for (int i = 0; i < n; i++)
		nv[k++] = args[i]; /* they live on in nv */
	for (int i = 2; i < argc; i++)
		nv[k++] = orig[i];
	main_made_argv[2] = nv;
	cfg->vm_args = args; /* the same options, for this VM's own snapshots */
	cfg->nr_vm_args = n;
	struct vm_config keep = *cfg;
	*cfg = *defaults;
	cfg->vm_args = keep.vm_args;
	cfg->nr_vm_args = keep.nr_vm_args;
	bool done = false, preboot = false;
	optind = 0;
	return options_parse(k - 1, nv + 1, cfg, &done, &preboot);
}

int main(int argc, char **argv)
{
	util_mark_start();
	/* A reader that goes away (hvmm | head) must not kill hvmm before it
	 * restores the terminal and reports: writes fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		options_usage(stdout);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("hvmm %s\n", HVMM_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "lab") == 0)
		return labcmd_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "snapshot-merge") == 0)
		return snapmerge_main(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		if (argc < 2)
			return options_bad("missing command: try 'hvmm run IMAGE'%s", "");
		return options_bad("unknown command '%s': try 'hvmm run IMAGE'", argv[1]);
	}
	struct vm_config defaults;
	options_defaults(&defaults);
	struct vm_config cfg = defaults;
	bool done = false, preboot = false;
	struct config_vms multi;
	int r = main_config_file(argc, argv, &argc, &argv, &multi);
	if (r)
		return r;
	if (multi.multi) {
		/* Blocked before any VM is built, as for one VM below. */
		sigset_t sigs;
		main_block_stop_signals(&sigs);
		return multivm_run(argc, argv, &defaults, &multi);
	}
	static char **orig; /* reachable as long as hvmm runs: the configuration may point into it */
	orig = main_dup_argv(argc, argv);
	if (!orig || options_vm_args(argc - 1, argv + 1, &cfg.vm_args, &cfg.nr_vm_args) < 0) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	r = options_parse(argc - 1, argv + 1, &cfg, &done, &preboot);
	if (!r && !done && cfg.restore && cfg.nr_vm_args == 0) {
		options_free_args(cfg.vm_args, 0);
		cfg.vm_args = NULL;
		r = main_restore_config(argc, orig, &defaults, &cfg);
	}
	if (r || done)
		return r;
	if (!preboot && (r = preflight_check(&cfg))) /* pre-boot: at the start */
		return r;
	/* Before any thread: the SIGSYS handler is process-wide, and the
	 * syscall names it prints are resolved here (it may not allocate). */
	if ((r = sandbox_init(cfg.seccomp, "hvmm", HVMM_EXIT_SECCOMP, term_raw_restore_async)) < 0) {
		util_err("seccomp: %s", strerror(-r));
		return HVMM_EXIT_HOST;
	}
	/* The slirp helper (a process of its own) follows --seccomp too. */
	if (setenv("HVMM_NET_SLIRP_SECCOMP", cfg.seccomp ? "on" : "off", 1) < 0) {
		util_err("setenv: %s", strerror(errno));
		return HVMM_EXIT_HOST;
	}
	if (preboot)
		return main_run_preboot(argc, argv, &defaults, &cfg);
	/* From here a signal is taken by vm_run's wait (a pending one ends the
	 * VM at once): the API socket or a terminal set raw by vm_create must
	 * not be left behind by a signal that arrives while it builds. */
	sigset_t sigs;
	main_block_stop_signals(&sigs);
	static struct vm vm; /* static: large, and lives for the whole process */
	r = vm_create(&vm, &cfg);
	if (r == 0)
		r = vm_run(&vm);
	vm_destroy(&vm);
	return r;
}
