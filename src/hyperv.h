/*
 * hyperv: the part of Hyper-V's synthetic interrupt controller (SynIC) that
 * lives in the VMM rather than in KVM (--hyperv).
 *
 * KVM runs each vCPU's SynIC (its MSRs, SINT delivery to the LAPIC, EOM, the
 * synthetic timers) but leaves the pages the guest hands it to user space:
 * on every write of SCONTROL, SIEFP or SIMP it exits with
 * KVM_EXIT_HYPERV_SYNIC, and hvmm keeps those three values per vCPU. With
 * them hvmm can
 *
 *  - route a SINT: a KVM_IRQ_ROUTING_HV_SINT entry on a GSI of its own, so
 *    raising that GSI makes KVM deliver the SINT's vector to the vCPU;
 *  - post a message: write a 256-byte message into the target vCPU's
 *    message page (SIMP) at its SINT's slot, then raise the SINT. A busy slot
 *    (message_type not zero) gets msg_pending set and the message is kept
 *    until the guest frees the slot;
 *  - set an event flag: bit n of the SINT's 2048-bit slot in the event-flags
 *    page (SIEFP), raising the SINT only when the bit was clear;
 *  - answer the hypercalls KVM passes up (KVM_EXIT_HYPERV_HCALL):
 *    HvPostMessage and HvSignalEvent on the connections registered here.
 *    HvSignalEvent is answered on the signalling vCPU's thread rather than
 *    through KVM_HYPERV_EVENTFD (KVM writing an eventfd that the event loop
 *    reads): that needs an eventfd per connection, made when the guest asks,
 *    and the vCPU threads' private fd tables (vcpu.c) would hide it from the
 *    event loop. The price is one exit to hvmm per signal.
 *
 * Every page address comes from the guest and is checked (mem_ptr) each time
 * it is used; a page outside RAM means the message or flag is not written.
 * The connections and routes are made by a device (hyperv_testdev.c), as
 * QEMU's VMBus or test device make them.
 */
#ifndef HVMM_HYPERV_H
#define HVMM_HYPERV_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct hyperv;

#define HYPERV_SINT_COUNT 16
#define HYPERV_PAGE_SIZE 4096u
#define HYPERV_MSG_SIZE 256u           /* one message slot in the SIMP page */
#define HYPERV_MSG_PAYLOAD_MAX 240u
#define HYPERV_EVENT_FLAGS 2048u        /* flags per SINT in the SIEFP page */
#define HYPERV_MAX_ROUTES 256           /* SINT routes alive at once */
#define HYPERV_MAX_CONNS 256            /* message (and event) connections */
#define HYPERV_CONN_ID_MASK 0xffffffu

/* Hypercall codes and status values (Hyper-V TLFS). */
#define HV_HCALL_POST_MESSAGE 0x5c
#define HV_HCALL_SIGNAL_EVENT 0x5d
#define HV_HCALL_FAST (1ull << 16)
#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT 4
#define HV_STATUS_INVALID_PARAMETER 5
#define HV_STATUS_INVALID_PORT_ID 0x11
#define HV_STATUS_INVALID_CONNECTION_ID 0x12
#define HV_STATUS_INSUFFICIENT_BUFFERS 0x13

/*
 * With --hyperv, before the vCPUs start: the state, and (with KVM) the
 * retry timer on the event loop. 0 or -errno.
 */
int hyperv_create(struct vm *vm);
/* After the vCPUs and the event loop have stopped. */
void hyperv_destroy(struct vm *vm);

/* KVM_EXIT_HYPERV_SYNIC from vCPU vp: the SynIC MSRs as they are now. */
void hyperv_synic_exit(struct vm *vm, unsigned vp, uint64_t control, uint64_t evt_page,
		       uint64_t msg_page);
/* KVM_EXIT_HYPERV_HCALL: the status for RAX. `control` is the guest's RCX,
 * in_param its RDX (input GPA, or the value of a fast call). */
uint64_t hyperv_hcall(struct vm *vm, uint64_t control, uint64_t in_param);

/* Pure: the guest-physical page a SynIC page MSR (SIMP, SIEFP) points at, or
 * UINT64_MAX when SCONTROL or the MSR's own enable bit is clear. */
uint64_t hyperv_synic_page(uint64_t control, uint64_t page_msr);

/*
 * SINT routes: a handle (>= 0) for SINT `sint` of vCPU `vp`, or -EINVAL (no
 * such vCPU or SINT), -ENOSPC (HYPERV_MAX_ROUTES alive), or KVM's error.
 * raise: deliver it (0, or -errno). Thread-safe. h is the SynIC (a device
 * gets it as dev_env's hyperv); NULL: -ENODEV.
 */
int hyperv_route_create(struct hyperv *h, unsigned vp, unsigned sint);
void hyperv_route_destroy(struct hyperv *h, int route);
int hyperv_route_raise(struct hyperv *h, int route);
/* How many times a route was raised (unit tests, which have no KVM). */
uint64_t hyperv_route_raised(struct hyperv *h, int route);

/*
 * Connections: HvPostMessage to a message connection's id lands in SINT
 * `sint` of vCPU `vp`; HvSignalEvent on an event connection's id sets flag
 * number `conn_id` in that SINT's event flags. 0, -EEXIST (id taken),
 * -EINVAL, -ENOSPC. destroy: 0 or -ENOENT.
 */
int hyperv_msg_conn_create(struct hyperv *h, uint32_t conn_id, unsigned vp, unsigned sint);
int hyperv_msg_conn_destroy(struct hyperv *h, uint32_t conn_id);
int hyperv_evt_conn_create(struct hyperv *h, uint32_t conn_id, unsigned vp, unsigned sint);
int hyperv_evt_conn_destroy(struct hyperv *h, uint32_t conn_id);

/* Try again to deliver every message waiting for its slot (the timer does
 * this every HYPERV_RETRY_MS while one waits); how many still wait. */
#define HYPERV_RETRY_MS 1
unsigned hyperv_retry(struct vm *vm);

#endif
