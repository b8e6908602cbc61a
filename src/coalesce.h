/*
 * coalesce: guest writes KVM buffers instead of exiting for.
 *
 * Some registers only matter at the next access that reads them: writing the
 * PCI configuration address (0xcf8) does nothing until the data port
 * (0xcfc) is touched. KVM can append such writes to a ring page shared with
 * hvmm (coalesced MMIO/PIO) and let the guest go on; hvmm applies them, in
 * order, before it handles any exit, so every access that could observe them
 * sees them. A PCI configuration read then costs one exit instead of two.
 */
#ifndef HVMM_COALESCE_H
#define HVMM_COALESCE_H

#include <stdint.h>

struct vm;

/* After the vCPUs exist (the ring is a page of every vCPU's mapping) and
 * before they run. Without KVM_CAP_COALESCED_PIO nothing is buffered and
 * every write exits as before: 0. Otherwise 0 or -errno. */
int coalesce_init(struct vm *vm);
/* Apply every buffered write, oldest first. Any thread; cheap when empty. */
void coalesce_drain(struct vm *vm);
/* Writes applied from the ring so far (each one an exit saved). */
uint64_t coalesce_count(struct vm *vm);
void coalesce_destroy(struct vm *vm);

#endif
