/*
 * options: `hvmm run`'s command line into a struct vm_config — the one
 * parser every source of options goes through (the command line,
 * --config-file's JSON, the pre-boot API's description, and a snapshot's
 * own configuration), so that a value means the same and is checked the
 * same wherever it comes from.
 *
 * A snapshot carries the options that build its VM (options_vm_args):
 * those that decide what the guest sees (RAM, vCPUs, irqchip, devices and
 * their back ends), never those of one process (the API socket, the log
 * files, --restore itself) nor the image loaders' (a restored guest's
 * kernel is in its RAM).
 */
#ifndef HVMM_OPTIONS_H
#define HVMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct vm_config;

/* The sanitizer build runs without seccomp by default (main.c says why). */
#if defined(__SANITIZE_ADDRESS__)
#define OPTIONS_SECCOMP_DEFAULT false
#define OPTIONS_SECCOMP_HELP "(default off: sanitizer build)"
#else
#define OPTIONS_SECCOMP_DEFAULT true
#define OPTIONS_SECCOMP_HELP "(default on)"
#endif

/* The configuration before any option. */
void options_defaults(struct vm_config *cfg);
/*
 * Parse argv (argv[0] is "run") into cfg. 0, or an hvmm exit status after
 * one line on stderr. *done: --help or --version was answered. *preboot:
 * no image but an --api-sock (the VM comes from the API, preboot.h).
 * Values are kept as pointers into argv, which some options cut up in
 * place (--disk's and --restore's commas).
 */
int options_parse(int argc, char **argv, struct vm_config *cfg, bool *done, bool *preboot);
/*
 * The options among argv (argv[0] is "run", argv untouched) that build the
 * VM, each in its canonical spelling "--NAME" or "--NAME=VALUE" (a short or
 * abbreviated option spelled out), in order: a NULL-terminated malloc'd
 * array of malloc'd strings, *n counting them. Unknown options are left to
 * options_parse to report. 0 or -ENOMEM.
 */
int options_vm_args(int argc, char **argv, char ***out, int *n);
/* Is arg one options_vm_args makes ("--mem=512M", "--rng")? What a
 * snapshot's configuration may hold: no file to write, no socket.
 * (options_vm.c, like the two below: they need nothing of the parser.) */
bool options_vm_arg_ok(const char *arg);
void options_free_args(char **args, int n);
/* The options a snapshot carries, and whether each takes a value. */
struct options_vm_opt {
	const char *name;
	bool value;
};
extern const struct options_vm_opt options_vm_list[];
/* name's first len bytes one of them? The entry, or NULL. */
const struct options_vm_opt *options_vm_carried(const char *name, size_t len);
/* For the tests: 0 if every entry of options_vm_list is an option of the
 * parser's table, taking a value exactly when the entry says so. */
int options_check_vm_list(void);

void options_usage(FILE *f);
/* One usage line on stderr ("(see hvmm --help)" appended); HVMM_EXIT_USAGE. */
int options_bad(const char *fmt, const char *arg);

#endif
