/*
 * preflight: the user's inputs checked before any KVM set-up.
 *
 * A missing image, an unreadable disk or a misspelt --network is the user's
 * mistake and gets its own one-line error and exit status at once — not,
 * on a host without /dev/kvm, "cannot open /dev/kvm", and not after the
 * guest has run (a --stats-json path nobody can write).
 */
#ifndef HVMM_PREFLIGHT_H
#define HVMM_PREFLIGHT_H

struct vm_config;

/* 0, or the exit status after printing one "hvmm: ..." line. */
int preflight_check(const struct vm_config *cfg);

#endif
