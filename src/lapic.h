/*
 * lapic: hvmm's own local APIC, one per vCPU, for `--irqchip user` (KVM with
 * no in-kernel irqchip at all). The lecture's interrupt path — a message
 * reaches a CPU's APIC, waits in IRR, is accepted into ISR against the
 * processor priority, is EOI'd — is done here in user space, so a later
 * posted-interrupt engine and vCPU scheduler have state of hvmm's to act on.
 *
 * Layers (each its own file):
 *  - lapic.c: the register file and the priority rules (ID, version, LDR,
 *    DFR, SVR, TPR/PPR, ISR/IRR/TMR, EOI, LVTs, ESR, ICR), the xAPIC MMIO
 *    view and the x2APIC MSR view of it, IA32_APIC_BASE. Pure: no KVM, no
 *    locks, no clock of its own (every timer call takes `now`), so the unit
 *    tests drive it directly.
 *  - lapic_timer.c: one-shot, periodic and TSC-deadline timer, divide
 *    configuration and current count, against an explicit clock.
 *  - lapic_route.c: which APICs a message reaches — physical and logical
 *    (flat, cluster, x2APIC cluster) destinations, shorthands, lowest
 *    priority — and the MSI address/data decode. Pure as well.
 *  - lapic_vcpu.c: the glue to KVM and the threads — the per-vCPU lock,
 *    posting from any thread and kicking the target, the injection before
 *    each KVM_RUN (KVM_INTERRUPT / interrupt window / KVM_NMI, TPR through
 *    kvm_run->cr8), HLT sleeping in hvmm, INIT/SIPI, the MMIO and MSR
 *    exits, the level-triggered EOI to the IOAPIC, the statistics.
 */
#ifndef HVMM_LAPIC_H
#define HVMM_LAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16). */
#define LAPIC_REG_ID 0x20
#define LAPIC_REG_VER 0x30
#define LAPIC_REG_TPR 0x80
#define LAPIC_REG_APR 0x90
#define LAPIC_REG_PPR 0xa0
#define LAPIC_REG_EOI 0xb0
#define LAPIC_REG_RRD 0xc0
#define LAPIC_REG_LDR 0xd0
#define LAPIC_REG_DFR 0xe0
#define LAPIC_REG_SVR 0xf0
#define LAPIC_REG_ISR 0x100
#define LAPIC_REG_TMR 0x180
#define LAPIC_REG_IRR 0x200
#define LAPIC_REG_ESR 0x280
#define LAPIC_REG_ICR_LO 0x300
#define LAPIC_REG_ICR_HI 0x310
#define LAPIC_REG_LVT_TIMER 0x320
#define LAPIC_REG_LVT_THERMAL 0x330
#define LAPIC_REG_LVT_PERF 0x340
#define LAPIC_REG_LVT_LINT0 0x350
#define LAPIC_REG_LVT_LINT1 0x360
#define LAPIC_REG_LVT_ERROR 0x370
#define LAPIC_REG_TMICT 0x380
#define LAPIC_REG_TMCCT 0x390
#define LAPIC_REG_TDCR 0x3e0
#define LAPIC_REG_SELF_IPI 0x3f0 /* x2APIC only */

#define LAPIC_MSR_APIC_BASE 0x1b
#define LAPIC_MSR_TSC_DEADLINE 0x6e0
#define LAPIC_MSR_X2APIC_FIRST 0x800
#define LAPIC_MSR_X2APIC_LAST 0x8ff

#define LAPIC_BASE_BSP (1ull << 8)
#define LAPIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define LAPIC_BASE_EN (1ull << 11)   /* globally enabled */
#define LAPIC_BASE_ADDR_MASK 0xfffffff000ull
#define LAPIC_DEFAULT_BASE 0xfee00000ull

#define LAPIC_SVR_ENABLE (1u << 8)
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_LVT_LEVEL (1u << 15)
#define LAPIC_LVT_DELIV_PENDING (1u << 12)
#define LAPIC_LVT_TIMER_MODE_SHIFT 17
#define LAPIC_LVT_TIMER_MODE (3u << 17)

/* ICR / MSI delivery modes (bits 10:8) */
enum lapic_dm {
	LAPIC_DM_FIXED = 0,
	LAPIC_DM_LOWEST = 1,
	LAPIC_DM_SMI = 2,
	LAPIC_DM_NMI = 4,
	LAPIC_DM_INIT = 5,
	LAPIC_DM_SIPI = 6,
	LAPIC_DM_EXTINT = 7,
};

enum lapic_timer_mode {
	LAPIC_TIMER_ONESHOT = 0,
	LAPIC_TIMER_PERIODIC = 1,
	LAPIC_TIMER_TSC_DEADLINE = 2,
};

/* ESR bits */
#define LAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define LAPIC_ESR_ILLEGAL_REG (1u << 7)

enum lapic_lvt {
	LAPIC_LVT_TIMER,
	LAPIC_LVT_THERMAL,
	LAPIC_LVT_PERF,
	LAPIC_LVT_LINT0,
	LAPIC_LVT_LINT1,
	LAPIC_LVT_ERROR,
	LAPIC_NR_LVT,
};

/* An interrupt message on its way to one or more APICs: from the ICR, an
 * MSI (IOAPIC pin, MSI-X vector, --inject) or an LVT. */
struct lapic_msg {
	uint32_t dest;      /* APIC ID, logical MDA, or 0xff / 0xffffffff broadcast */
	bool logical;
	uint8_t shorthand;  /* ICR bits 19:18: 0 none, 1 self, 2 all, 3 all but self */
	uint8_t dm;         /* enum lapic_dm */
	uint8_t vector;
	bool level;         /* trigger mode: level (the EOI goes back to the IOAPIC) */
	bool assert;        /* level: asserted (an INIT de-assert does nothing) */
	bool x2apic_dest;   /* dest is a 32-bit x2APIC destination (ICR in x2APIC mode) */
};

/* The register state of one local APIC. */
struct lapic_regs {
	uint32_t id;        /* the initial APIC ID (the vCPU's index) */
	uint32_t xapic_id;  /* ID register in xAPIC mode (writable; bits 31:24) */
	uint64_t base;      /* IA32_APIC_BASE */
	uint32_t tpr, ldr, dfr, svr;
	uint32_t esr, esr_pending; /* ESR reads what the last ESR write latched */
	uint32_t icr_lo, icr_hi;
	uint32_t isr[8], irr[8], tmr[8];
	uint32_t lvt[LAPIC_NR_LVT];
	/* timer (lapic_timer.c) */
	uint32_t tmict, tdcr;
	uint64_t timer_next_ns; /* the next expiry, host CLOCK_MONOTONIC; 0: not armed */
	uint64_t timer_period_ns; /* periodic: the period; one-shot: the whole count */
	uint64_t tsc_deadline;  /* IA32_TSC_DEADLINE as the guest wrote it; 0: disarmed */
	/* events for the vCPU's thread that are not vectors in IRR */
	bool nmi_pending;
	bool extint_pending; /* an ExtINT message: the PIC's vector at the next injection */
	bool init_pending;
	bool sipi_pending;
	uint8_t sipi_vector;
	bool error_pending; /* an ESR bit was set with the error LVT unmasked */
};

/* ---- lapic.c: registers and priorities ---- */

/* Power-on / INIT state. `id`: the vCPU's APIC ID; bsp: the boot CPU. */
void lapic_reset(struct lapic_regs *r, uint32_t id, bool bsp);
/* INIT (not power-on): everything but the ID and IA32_APIC_BASE. */
void lapic_init_reset(struct lapic_regs *r);
bool lapic_hw_enabled(const struct lapic_regs *r);
bool lapic_sw_enabled(const struct lapic_regs *r);
bool lapic_x2apic(const struct lapic_regs *r);
/* The APIC ID as destinations see it (xAPIC: the ID register's bits 31:24). */
uint32_t lapic_cur_id(const struct lapic_regs *r);
uint32_t lapic_ppr(const struct lapic_regs *r);
/* The highest vector in IRR that PPR lets through, or -1. */
int lapic_pending_vector(const struct lapic_regs *r);
/* The highest vector in IRR, or -1 (regardless of PPR: HLT wake-up). */
int lapic_highest_irr(const struct lapic_regs *r);
/* The CPU takes `vector` (it was lapic_pending_vector): IRR → ISR. */
void lapic_ack(struct lapic_regs *r, int vector);
/* EOI: clear the highest ISR bit; returns its vector if it was
 * level-triggered (TMR set: the IOAPIC wants it), else -1. TMR is kept. */
int lapic_eoi(struct lapic_regs *r);
/* Accept one interrupt for this APIC (fixed/lowest/NMI/INIT/SIPI/ExtINT).
 * Returns true if it changed anything the vCPU must act on. */
bool lapic_accept(struct lapic_regs *r, uint8_t dm, uint8_t vector, bool level, bool assert);
/* Whether the 8259's INTR reaches the CPU: LINT0 unmasked in ExtINT mode, or
 * the APIC globally disabled (then LINT0 is the plain INTR pin). */
bool lapic_accepts_pic(const struct lapic_regs *r);
/* Record an APIC error; true if it raised the error LVT's interrupt. */
bool lapic_error(struct lapic_regs *r, uint32_t esr_bit);

/* Results of a register write that the caller has to carry out. */
struct lapic_effect {
	bool send;            /* an IPI to route (msg) */
	struct lapic_msg msg;
	int eoi_level_vector; /* >= 0: tell the IOAPIC */
	bool timer_changed;   /* re-arm the host timer */
	bool gp;              /* the access faults (x2APIC: #GP) */
};

/* xAPIC MMIO, offset within the 4 KiB page; size 1-8 (only aligned 32-bit
 * accesses do something, as on hardware; others read 0 / are dropped). */
uint32_t lapic_mmio_read(struct lapic_regs *r, uint64_t off, unsigned size, uint64_t now_ns);
void lapic_mmio_write(struct lapic_regs *r, uint64_t off, unsigned size, uint32_t val,
		      uint64_t now_ns, struct lapic_effect *e);
/* x2APIC MSR 0x800-0x8ff. false: #GP. */
bool lapic_msr_read(struct lapic_regs *r, uint32_t msr, uint64_t *val, uint64_t now_ns);
void lapic_msr_write(struct lapic_regs *r, uint32_t msr, uint64_t val, uint64_t now_ns,
		     struct lapic_effect *e);
/* IA32_APIC_BASE write: the SDM's transitions (disabled ↔ xAPIC ↔ x2APIC,
 * never x2APIC → xAPIC). false: #GP. `x2apic_ok`: CPUID offers x2APIC. */
bool lapic_set_base(struct lapic_regs *r, uint64_t val, bool x2apic_ok);

/* ---- lapic_timer.c ---- */

enum lapic_timer_mode lapic_timer_mode(const struct lapic_regs *r);
/* The divide configuration register's divisor (1..128). */
unsigned lapic_timer_divisor(uint32_t tdcr);
/* Ticks are 1 ns of the APIC bus before the divider (KVM's 1 GHz bus). */
void lapic_timer_write_tmict(struct lapic_regs *r, uint32_t val, uint64_t now_ns);
void lapic_timer_write_tdcr(struct lapic_regs *r, uint32_t val, uint64_t now_ns);
/* The LVT timer entry changed (mode switches stop the timer, as on KVM). */
void lapic_timer_write_lvt(struct lapic_regs *r, uint32_t old, uint64_t now_ns);
uint32_t lapic_timer_tmcct(const struct lapic_regs *r, uint64_t now_ns);
/* IA32_TSC_DEADLINE: `guest_tsc` is the guest's TSC now, `tsc_khz` its rate. */
void lapic_timer_write_deadline(struct lapic_regs *r, uint64_t val, uint64_t now_ns,
				uint64_t guest_tsc, uint64_t tsc_khz);
/* Expire the timer if due and re-arm a periodic one: the LVT's vector to
 * deliver, or -1 (not due, or masked). */
int lapic_timer_expire(struct lapic_regs *r, uint64_t now_ns);
/* lapic_timer_expire, the vector then accepted into IRR. true if it fired. */
bool lapic_timer_tick(struct lapic_regs *r, uint64_t now_ns);

/* ---- lapic_route.c ---- */

/* Decode an MSI (address, data) into a message. false: not an interrupt
 * message (address outside 0xfeexxxxx). */
bool lapic_msi_decode(uint64_t addr, uint32_t data, struct lapic_msg *m);
/* The ICR of `src` as a message (x2APIC: 32-bit destination). */
void lapic_icr_msg(const struct lapic_regs *src, struct lapic_msg *m);
/* Does `r` match m's destination (shorthands excluded)? */
bool lapic_match_dest(const struct lapic_regs *r, const struct lapic_msg *m);
/* The APICs m reaches, among n, as a bitmap (n <= 64); `self`: the sender's
 * index for shorthands, -1 for messages from devices. Lowest priority picks
 * one: the lowest TPR, ties to the lowest index after `*rr` (round robin). */
uint64_t lapic_route(struct lapic_regs *const *apics, int n, int self, const struct lapic_msg *m,
		     unsigned *rr);

/* ---- lapic_vcpu.c: the glue to KVM and the vCPU threads ---- */

struct vm;
struct vcpu;

/* Where an interrupt came from: every source goes through an entry of the
 * interrupt remapping table (lapic_post.c), counted per source. */
enum lapic_src {
	LAPIC_SRC_IOAPIC, /* an IOAPIC pin's redirection entry */
	LAPIC_SRC_MSI,    /* a device's MSI or MSI-X vector (or --inject) */
	LAPIC_SRC_IPI,    /* another vCPU's (or its own) ICR write */
	LAPIC_SRC_TIMER,  /* the APIC timer */
	LAPIC_NR_SRC,
};

/* The IRT entry an interrupt goes through: a vector the VMM delivers
 * itself (remapped: the target APIC's lock, IRR, a kick or wake-up per
 * interrupt) or a PID (posted: the target's PIR, a notification only when
 * its SN and ON allow one). */
enum lapic_irte_mode { LAPIC_IRTE_REMAPPED, LAPIC_IRTE_POSTED };
struct lapic_irte {
	enum lapic_irte_mode mode;
	uint8_t vector;
	int vcpu; /* posted: the PID's vCPU */
};
/* The entry for message m that routing sent to the vCPUs in targets:
 * posted when posting is on and m is a fixed or lowest-priority, edge-
 * triggered interrupt to exactly one vCPU (a PID has one destination, as
 * in VT-d); everything else (NMI, INIT, SIPI, ExtINT, level-triggered,
 * several destinations) remapped. */
struct lapic_irte lapic_irte_for(bool posting, const struct lapic_msg *m, uint64_t targets);

/* Per-vCPU counts for --stats: what the lecture's lab shows. */
struct lapic_stats {
	/* interrupts addressed to this vCPU, by source and IRT entry mode */
	uint64_t irt[LAPIC_NR_SRC][2];
	/* posts' outcomes: notifications sent, and posts that sent none
	 * because SN was set (ready) or ON was (one outstanding) */
	uint64_t notify_active, notify_wakeup, suppressed, coalesced;
	uint64_t pir_taken;     /* vectors moved PIR → IRR */
	/* the lecture's states: time in each, and the transitions into each */
	uint64_t state_ns[3];
	uint64_t entered[3];
	uint64_t injected;      /* vectors handed to KVM_INTERRUPT from IRR */
	uint64_t extint;        /* 8259 vectors (ExtINT through LINT0) */
	uint64_t nmis;          /* KVM_NMI */
	uint64_t ipis_sent;     /* ICR / self-IPI writes routed */
	uint64_t ipis_received; /* IPIs from another vCPU accepted */
	uint64_t timer_fires;   /* APIC timer expiries that raised an interrupt */
	uint64_t hlt_exits;     /* KVM_EXIT_HLT */
	uint64_t halted_ns;     /* time spent asleep in hvmm after HLT */
};

/* After KVM_CREATE_VCPU (power-on state; APs wait for SIPI). 0 or -errno. */
int lapic_vcpu_create(struct vcpu *v, bool x2apic_ok);
void lapic_vcpu_destroy(struct vcpu *v);
/* On the vCPU's thread, before its sandbox: the host timer that sends
 * `signo` (the kick) to this thread. 0 or -errno. */
int lapic_vcpu_thread_init(struct vcpu *v, int signo);
/* At the end of the vCPU's thread: the host timer goes (a POSIX timer
 * belongs to the process; its signal must not outlive the thread). */
void lapic_vcpu_thread_exit(struct vcpu *v);
/* Before KVM_RUN: timer, INIT/SIPI, HLT sleep, then injection and CR8.
 * false: do not enter now (stopping, pausing); loop and ask again. */
bool lapic_vcpu_before_run(struct vcpu *v);
/* Take the vCPU's PIR into its IRR, as going to running does (its own
 * thread, or a unit test). Returns how many vectors were posted. */
unsigned lapic_vcpu_take_posted(struct vcpu *v);
/* KVM_RUN returned, whatever it returned: the vCPU is ready (lapic_post.c). */
void lapic_vcpu_exited(struct vcpu *v);
/* After KVM_RUN: the guest's CR8 back into TPR. */
void lapic_vcpu_after_run(struct vcpu *v);
/* An MMIO exit: true if it hit this vCPU's xAPIC page (then handled). */
bool lapic_vcpu_mmio(struct vcpu *v, uint64_t addr, unsigned len, bool write, uint8_t *data);
/* An MSR exit: true if it was IA32_APIC_BASE, TSC_DEADLINE or x2APIC
 * (then answered, with run->msr.error for a #GP). */
bool lapic_vcpu_msr(struct vcpu *v, bool write);
/* KVM_EXIT_HLT: sleep in hvmm from the next lapic_vcpu_before_run. */
void lapic_vcpu_hlt(struct vcpu *v);
/* Wake the vCPU if it sleeps here (any thread; vcpu_kick calls it).
 * true: it was asleep in hvmm, so it will look before entering the guest. */
bool lapic_vcpu_wake(struct vcpu *v);
/* Is the vCPU asleep in hvmm (HLT, wait-for-SIPI)? Async-signal-safe. */
bool lapic_vcpu_asleep(const struct vcpu *v);
const struct lapic_stats *lapic_vcpu_stats(const struct vcpu *v);
/* Device interrupt latency to vCPU v by its state when the device raised
 * the interrupt: from the raise (hvmm sends the MSI or IOAPIC message) to
 * the vector handed to KVM for the guest's next entry, where its handler
 * runs. n samples in all; median and 90th percentile of the last ones
 * kept (LAPIC_LAT_KEEP). false without hvmm's APIC. */
#define LAPIC_LAT_KEEP 4096
struct lapic_lat_summary {
	uint64_t n, median_ns, p90_ns, max_ns;
};
bool lapic_vcpu_dev_latency(const struct vcpu *v, int state, struct lapic_lat_summary *out);
/* --timeline (lapic_timeline.c): record the vCPU's state changes from now
 * (0 or -ENOMEM); write every vCPU's as an HTML page to f, the run ending
 * at end_ns (0, -EINVAL with nothing recorded, -EIO). */
int lapic_timeline_alloc(struct vcpu *v);
int lapic_timeline_write(struct vm *vm, FILE *f, uint64_t end_ns);
/* lapic_stats.c: one line per vCPU for --stats, an object for --stats-json
 * (NULL without hvmm's APIC), and the mode's line for the whole VM. */
void lapic_stats_print(const struct vcpu *v, FILE *f);
struct json_object *lapic_stats_json(const struct vcpu *v);
void lapic_stats_print_vm(struct vm *vm, FILE *f);
/* The registers (unit tests; the vCPU's lock is not taken). */
struct lapic_regs *lapic_vcpu_regs(struct vcpu *v);
/* Deliver a message to the APICs it reaches (any thread), through its IRT
 * entry. `self`: the sending vCPU for IPIs, -1 for devices. */
void lapic_deliver(struct vm *vm, const struct lapic_msg *m, int self, enum lapic_src src);
/* An MSI (address, data) from a device (src MSI) or the IOAPIC. 0, or
 * -EINVAL if not one. */
int lapic_deliver_msi(struct vm *vm, uint64_t addr, uint32_t data, int src);

#endif
