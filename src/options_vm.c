/*
 * options_vm: which of hvmm run's options a snapshot carries (options.h).
 * Apart from the parser, so that what reads a snapshot's configuration
 * (snapshot_config.c, its fuzz target) needs nothing else.
 */
#include "options.h"

#include <stdlib.h>
#include <string.h>

/*
 * What a snapshot carries: the options that decide what the guest sees.
 * Left out are those of one process — its API socket and name, its logs
 * and statistics, its time limit, its sandbox, --restore/--incoming, the
 * dirty-page recorders (asked for again at each start), --inject's timed
 * events — and the image loaders', whose work is in the RAM.
 * options_check_vm_list compares this with the parser's table.
 */
const struct options_vm_opt options_vm_list[] = {
	{ "mem", true }, { "cpus", true }, { "irqchip", true }, { "posted-interrupts", true }, { "pcpus", true },
	{ "acpi", true },
	{ "halt-poll", true },
	{ "no-hlt-exits", false }, { "no-pause-exits", false }, { "msr-filter", true }, { "cpu-template", true }, { "cpuid-mask", true },
	{ "cpuid-set", true }, { "console", true }, { "rng", false }, { "disk", true }, { "network", true },
	{ "no-irqfd", false }, { "no-ioeventfd", false }, { "device", true }, { "hyperv", false }, { "nested", false },
	{ "strict-io", false }, { NULL, false },
};

const struct options_vm_opt *options_vm_carried(const char *name, size_t len)
{
	for (const struct options_vm_opt *v = options_vm_list; v->name; v++)
		if (strlen(v->name) == len && strncmp(v->name, name, len) == 0)
			return v;
	return NULL;
}

bool options_vm_arg_ok(const char *arg)
{
	if (strncmp(arg, "--", 2) != 0)
		return false;
	const char *name = arg + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct options_vm_opt *v = options_vm_carried(name, len);
	return v && v->value == (eq != NULL);
}

void options_free_args(char **args, int n)
{
	if (!args)
		return;
	for (int i = 0; i < n; i++)
		free(args[i]);
	free(args);
}
