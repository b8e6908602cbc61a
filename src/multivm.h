/*
 * multivm: several VMs in one hvmm process — a --config-file with
 * {"vms": [...]}. Each VM is built from its own description plus the
 * command line's options (which apply to every one); they run side by side,
 * served by one main thread, and with --pcpus they share that many
 * physical-CPU slots (vsched.h): a vCPU of one VM is then *ready* while
 * another VM's vCPUs have the CPUs, the lecture's "another VM has the CPU".
 */
#ifndef HVMM_MULTIVM_H
#define HVMM_MULTIVM_H

#include "config_file.h"
#include "vm_config.h"

/* argv: "hvmm run" and the command line's own options (no --config-file);
 * cv: each VM's options from the file. Builds and runs every VM; returns
 * the process's exit status (the first VM's, in the file's order, that
 * ended with one; a refused configuration: HVMM_EXIT_USAGE with one line). */
int multivm_run(int argc, char **argv, const struct vm_config *defaults, struct config_vms *cv);

#endif
