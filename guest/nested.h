/* nested: the test kernel as a guest hypervisor (AMD SVM) running a guest of its own. */
#ifndef GUEST_NESTED_H
#define GUEST_NESTED_H

#include "smp.h"

/* test=nested: turns SVM on, runs a tiny guest with VMRUN and handles its
 * exits; TAP lines for what worked, "# nested-cost:" for what each kind of
 * exit cost. Fails (never skips) when the CPU shows no SVM. loop_ms: then
 * keeps the nested guest running that long (nestedloop=MS). */
void nested_test(smp_tap_fn tap, smp_skip_fn skip, unsigned loop_ms);

/* After test=nested passed its set-up: runs the nested guest once more, to
 * write value to isa-debug-exit itself, so that the VM ends while the vCPU
 * is in guest mode (hvmm's statistics then show KVM's nested state). Returns
 * only if that did not end the VM. */
void nested_exit_in_guest(unsigned value);

#endif
