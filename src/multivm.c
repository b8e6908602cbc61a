/*
 * multivm: several VMs in one hvmm process (multivm.h).
 *
 * Every VM's options go through the same parser as one VM's, so a value
 * means the same in a multi-VM file. What belongs to the process rather
 * than to a VM must agree across them or is refused with one line: the
 * terminal (one VM at most has its console on stdio), --pcpus (one set of
 * slots), --seccomp (filters are per process here), and what a VM cannot
 * do beside others (the pre-boot API, --restore, --incoming).
 */
#include "multivm.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "preflight.h"
#include "sandbox.h"
#include "term.h"
#include "util.h"
#include "vm.h"
#include "vsched.h"

struct multivm {
	int n;
	struct vm_config cfg[CONFIG_VMS_MAX];
	char **argv[CONFIG_VMS_MAX]; /* each VM's vector: the parser cuts values up in place */
	int argc[CONFIG_VMS_MAX];
	char label[CONFIG_VMS_MAX][24];
	struct vm *vms[CONFIG_VMS_MAX];
	struct vsched sched;
	bool sched_on;
};

static int multivm_refuse(struct multivm *m, int i, const char *what)
{
	util_err_prefix(NULL);
	util_err("%s: %s", m->label[i], what);
	return HVMM_EXIT_USAGE;
}

/* VM i's vector, all strings its own: "hvmm run", its options from the
 * file, then the command line's. */
static int multivm_argv(struct multivm *m, int i, int argc, char **argv, const struct config_vms *cv)
{
	int n = 2 + cv->argc[i] + (argc - 2);
	char **v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->argv[i] = v;
	int k = 0;
	v[k++] = strdup(argv[0]);
	v[k++] = strdup(argv[1]);
	for (int j = 0; j < cv->argc[i]; j++)
		v[k++] = strdup(cv->argv[i][j]);
	for (int j = 2; j < argc; j++)
		v[k++] = strdup(argv[j]);
	m->argc[i] = k;
	for (int j = 0; j < k; j++)
		if (!v[j])
			return -ENOMEM;
	return 0;
}

/* Parse and check VM i; 0 or an exit status after one line. */
static int multivm_config(struct multivm *m, int i, const struct vm_config *defaults)
{
	struct vm_config *c = &m->cfg[i];
	*c = *defaults;
	if (options_vm_args(m->argc[i] - 1, m->argv[i] + 1, &c->vm_args, &c->nr_vm_args) < 0) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	bool done = false, preboot = false;
	optind = 0; /* getopt starts afresh for each VM */
	util_err_prefix(m->label[i]); /* the parser's complaints name the VM */
	int r = options_parse(m->argc[i] - 1, m->argv[i] + 1, c, &done, &preboot);
	if (!r && !done && !preboot && !c->restore && !c->incoming)
		r = preflight_check(c);
	util_err_prefix(NULL);
	if (r)
		return r;
	if (done)
		return multivm_refuse(m, i, "--help and --version are the command line's");
	if (preboot)
		return multivm_refuse(m, i, "no kernel: the pre-boot API serves one VM per process");
	if (c->restore || c->incoming)
		return multivm_refuse(m, i, c->restore ? "--restore: one VM per process" :
						      "--incoming: one VM per process");
	c->label = c->id ? c->id : m->label[i];
	return 0;
}

/* What is the process's, not a VM's, must agree across the VMs. */
static int multivm_agree(struct multivm *m)
{
	int stdio_vm = -1, cpus = 0;
	for (int i = 0; i < m->n; i++) {
		const struct vm_config *c = &m->cfg[i];
		if (c->serial == SERIAL_STDIO || c->console_virtio) {
			if (stdio_vm >= 0) {
				char why[160];
				snprintf(why, sizeof(why), "its console is on stdio like vms[%d]'s: give all but one "
					 "--serial=FILE or --serial=none", stdio_vm);
				return multivm_refuse(m, i, why);
			}
			stdio_vm = i;
		}
		if (c->pcpus != m->cfg[0].pcpus)
			return multivm_refuse(m, i, "--pcpus differs from vms[0]'s: the physical-CPU slots are the "
						 "process's, give --pcpus once for all");
		if (c->seccomp != m->cfg[0].seccomp)
			return multivm_refuse(m, i, "--seccomp differs from vms[0]'s: it is the process's");
		cpus += c->ncpus;
	}
	if (m->cfg[0].pcpus && cpus > VSCHED_MAX_VCPUS) {
		util_err("the VMs have %d vCPUs in all: --pcpus schedules at most %d", cpus, VSCHED_MAX_VCPUS);
		return HVMM_EXIT_USAGE;
	}
	return 0;
}

static void multivm_free(struct multivm *m)
{
	for (int i = 0; i < m->n; i++) {
		if (m->vms[i]) {
			vm_destroy(m->vms[i]);
			free(m->vms[i]);
		}
		options_free_args(m->cfg[i].vm_args, m->cfg[i].nr_vm_args);
		if (m->argv[i])
			options_free_args(m->argv[i], m->argc[i]);
	}
	if (m->sched_on)
		vsched_destroy(&m->sched);
	free(m);
}

int multivm_run(int argc, char **argv, const struct vm_config *defaults, struct config_vms *cv)
{
	struct multivm *m = calloc(1, sizeof(*m));
	if (!m) {
		util_err("out of memory");
		return HVMM_EXIT_HOST;
	}
	int r = 0;
	for (int i = 0; i < cv->n && !r; i++) {
		m->n = i + 1;
		snprintf(m->label[i], sizeof(m->label[i]), "vms[%d]", i);
		if (multivm_argv(m, i, argc, argv, cv) < 0) {
			util_err("out of memory");
			r = HVMM_EXIT_HOST;
		} else {
			r = multivm_config(m, i, defaults);
		}
	}
	if (!r)
		r = multivm_agree(m);
	if (!r && m->cfg[0].pcpus) {
		/* one set of slots; each VM's vCPUs numbered after the last VM's
		 * (bound to their VM in vm_create) */
		if (vsched_init(&m->sched, m->cfg[0].pcpus, 0, vm_vsched_kick, vm_vsched_give_up, NULL) < 0) {
			util_err("--pcpus: cannot set the scheduler up");
			r = HVMM_EXIT_HOST;
		} else {
			m->sched_on = true;
			for (int i = 0, base = 0; i < m->n; base += m->cfg[i].ncpus, i++) {
				m->cfg[i].vsched_shared = &m->sched;
				m->cfg[i].vsched_base = base;
			}
		}
	}
	/* Before any thread: the SIGSYS handler is process-wide (main.c). */
	int sr;
	if (!r && (sr = sandbox_init(m->cfg[0].seccomp, "hvmm", HVMM_EXIT_SECCOMP, term_raw_restore_async)) < 0) {
		util_err("seccomp: %s", strerror(-sr));
		r = HVMM_EXIT_HOST;
	}
	if (!r && setenv("HVMM_NET_SLIRP_SECCOMP", m->cfg[0].seccomp ? "on" : "off", 1) < 0) {
		util_err("setenv: %s", strerror(errno));
		r = HVMM_EXIT_HOST;
	}
	/* Every VM built before any runs: a VM that cannot be built ends them
	 * all, with its line named. */
	for (int i = 0; i < m->n && !r; i++) {
		if (!(m->vms[i] = malloc(sizeof(*m->vms[i])))) {
			util_err("out of memory");
			r = HVMM_EXIT_HOST;
			break;
		}
		util_err_prefix(m->cfg[i].label); /* its one line names the VM */
		r = vm_create(m->vms[i], &m->cfg[i]);
		util_err_prefix(NULL);
	}
	if (!r)
		r = vm_run_all(m->vms, m->n);
	multivm_free(m);
	config_file_free_vms(cv);
	return r;
}
