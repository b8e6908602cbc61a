/*
 * nested: the test kernel becomes a guest hypervisor. With hvmm's --nested
 * the vCPU shows SVM in CPUID, so this kernel can do what KVM does on the
 * host: set EFER.SVME, give the CPU a host-save area, fill in a VMCB (the
 * AMD counterpart of Intel's VMCS: a control area with the intercepts, a
 * save area with the guest's registers) and VMRUN a guest of its own — the
 * third level on a machine with hardware virtualization, the fourth under the
 * nested KVM host. The guest (below, "L+1") shares this kernel's page
 * tables, behind a nested page table of this kernel's making when the CPU
 * offers NPT. Its exits come back here as #VMEXITs with an exit code.
 *
 * What runs through the host's KVM underneath: the CPU is not really nested
 * (hardware has one guest mode), so KVM runs the L+1 guest itself and, for
 * every exit, decides whether this kernel asked for it (its intercept bits:
 * the exit is *reflected* here, a round trip through two hypervisors) or not
 * (KVM handles it alone and resumes the L+1 guest). The costs printed are
 * those two paths and, for scale, the same CPUID as an ordinary guest exit.
 */
#include "nested.h"

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "clock.h"
#include "console.h"
#include "layout.h"
#include "median.h"
#include "mm.h"

#define MSR_VM_HSAVE_PA 0xc0010117
#define EFER_SVME (1ull << 12)

/* VMCB offsets (AMD64 APM vol. 2, appendix B): control area, then the
 * save area from 0x400. */
#define VMCB_INTERCEPT_EXC 0x008
#define VMCB_INTERCEPT_1 0x00c
#define VMCB_INTERCEPT_2 0x010
#define VMCB_ASID 0x058
#define VMCB_EXITCODE 0x070
#define VMCB_EXITINFO1 0x078
#define VMCB_NP_ENABLE 0x090
#define VMCB_N_CR3 0x0b0
#define VMCB_NRIP 0x0c8
#define VMCB_ES 0x400
#define VMCB_CS 0x410
#define VMCB_SS 0x420
#define VMCB_DS 0x430
#define VMCB_GDTR 0x460
#define VMCB_IDTR 0x480
#define VMCB_CPL 0x4cb
#define VMCB_EFER 0x4d0
#define VMCB_CR4 0x548
#define VMCB_CR3 0x550
#define VMCB_CR0 0x558
#define VMCB_DR7 0x560
#define VMCB_DR6 0x568
#define VMCB_RFLAGS 0x570
#define VMCB_RIP 0x578
#define VMCB_RSP 0x5d8
#define VMCB_RAX 0x5f8
#define VMCB_G_PAT 0x668

#define INTERCEPT_CPUID (1u << 18) /* word 1 */
#define INTERCEPT_HLT (1u << 24)
#define INTERCEPT_SHUTDOWN (1u << 31)
#define INTERCEPT_VMRUN (1u << 0) /* word 2: VMRUN must be intercepted */
#define INTERCEPT_VMMCALL (1u << 1)
/* exceptions that would otherwise run this kernel's handlers inside the
 * guest: #DE #UD #DF #GP #PF */
#define INTERCEPT_EXC_MASK ((1u << 0) | (1u << 6) | (1u << 8) | (1u << 13) | (1u << 14))

#define EXIT_EXC(v) (0x40ull + (v))
#define EXIT_CPUID 0x72ull
#define EXIT_VMMCALL 0x81ull
#define EXIT_INVALID (~0ull)

#define NESTED_BATCHES 9

/* The L+1 guest's general registers while this kernel runs (RAX, RSP, RIP
 * and RFLAGS live in the VMCB); offsets used by nested_vmrun below. */
struct nested_gprs {
	uint64_t rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};

/* nested_vmrun(vmcb_pa, gprs): CLGI, the guest's registers in, VMRUN, the
 * guest's registers out, STGI. VMRUN saves and #VMEXIT restores only RAX,
 * RSP, RIP, RFLAGS and the system state (in the host-save area): every other
 * register the guest left is the guest's, so the callee-saved ones are kept
 * on the stack here. GIF stays clear from before VMRUN until the exit is
 * handled, as a hypervisor needs it. */
void nested_vmrun(uint64_t vmcb_pa, struct nested_gprs *g);
__asm__(".text\n"
	".globl nested_vmrun\n"
	"nested_vmrun:\n"
	"	push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	push %rsi\n"
	"	mov %rdi, %rax\n"
	"	mov 0(%rsi), %rbx\n mov 8(%rsi), %rcx\n mov 16(%rsi), %rdx\n"
	"	mov 32(%rsi), %rdi\n mov 40(%rsi), %rbp\n"
	"	mov 48(%rsi), %r8\n mov 56(%rsi), %r9\n mov 64(%rsi), %r10\n mov 72(%rsi), %r11\n"
	"	mov 80(%rsi), %r12\n mov 88(%rsi), %r13\n mov 96(%rsi), %r14\n mov 104(%rsi), %r15\n"
	"	mov 24(%rsi), %rsi\n"
	"	clgi\n"
	"	vmrun\n"
	"	push %rsi\n"
	"	mov 8(%rsp), %rsi\n"
	"	mov %rbx, 0(%rsi)\n mov %rcx, 8(%rsi)\n mov %rdx, 16(%rsi)\n"
	"	mov %rdi, 32(%rsi)\n mov %rbp, 40(%rsi)\n"
	"	mov %r8, 48(%rsi)\n mov %r9, 56(%rsi)\n mov %r10, 64(%rsi)\n mov %r11, 72(%rsi)\n"
	"	mov %r12, 80(%rsi)\n mov %r13, 88(%rsi)\n mov %r14, 96(%rsi)\n mov %r15, 104(%rsi)\n"
	"	pop %rax\n mov %rax, 24(%rsi)\n"
	"	add $8, %rsp\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
	"	stgi\n"
	"	ret\n");

/* The L+1 guest's programs. nested_guest_cpuid: R8 times CPUID leaf 0, then
 * VMMCALL (back to this kernel); nested_guest_ud: an undefined opcode;
 * nested_guest_out: OUT EAX to port DX, then VMMCALL. */
extern const char nested_guest_cpuid[], nested_guest_ud[], nested_guest_out[];
__asm__(".text\n"
	".globl nested_guest_cpuid\n"
	"nested_guest_cpuid:\n"
	"1:	xor %eax, %eax\n"
	"	cpuid\n"
	"	dec %r8\n"
	"	jnz 1b\n"
	"	vmmcall\n"
	"	jmp nested_guest_cpuid\n"
	".globl nested_guest_ud\n"
	"nested_guest_ud:\n"
	"	ud2\n"
	".globl nested_guest_out\n"
	"nested_guest_out:\n"
	"	out %eax, %dx\n"
	"	vmmcall\n");

struct nested {
	uint8_t *vmcb;
	uint64_t stack_top, ncr3;
	struct nested_gprs g;
	bool nrips; /* the CPU reports the next RIP at an exit (nRIP) */
	uint64_t exits;
};

static inline uint64_t *vmcb_u64(uint8_t *vmcb, unsigned off) { return (uint64_t *)(vmcb + off); }
static inline uint32_t *vmcb_u32(uint8_t *vmcb, unsigned off) { return (uint32_t *)(vmcb + off); }

/* A segment in the VMCB's packed form: selector, attributes (type, S, DPL,
 * P, AVL, L, D/B, G in 12 bits), limit, base. */
static void vmcb_seg(uint8_t *vmcb, unsigned off, uint16_t sel, uint16_t attr, uint32_t limit, uint64_t base)
{
	*(uint16_t *)(vmcb + off) = sel;
	*(uint16_t *)(vmcb + off + 2) = attr;
	*vmcb_u32(vmcb, off + 4) = limit;
	*vmcb_u64(vmcb, off + 8) = base;
}

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

/* A nested page table mapping the first GiB one to one with 2 MiB pages:
 * the L+1 guest's "physical" addresses are this kernel's. NPT entries are
 * checked as user accesses, hence U on every level. 0 when out of pages. */
static uint64_t nested_npt(void)
{
	uint64_t pml4 = mm_alloc_page(), pdpt = mm_alloc_page(), pd = mm_alloc_page();
	if (!pml4 || !pdpt || !pd)
		return 0;
	const uint64_t f = PTE_P | PTE_W | PTE_U;
	*(uint64_t *)pml4 = pdpt | f;
	*(uint64_t *)pdpt = pd | f;
	for (uint64_t i = 0; i < 512; i++)
		((uint64_t *)pd)[i] = (i << 21) | f | PTE_PS;
	return pml4;
}

/* The VMCB of a guest that runs in this kernel's own long mode, ring 0,
 * interrupts off, on its own stack, at rip. */
static void nested_vmcb_init(struct nested *n, uint64_t rip, uint64_t ncr3)
{
	uint8_t *v = n->vmcb;
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		v[i] = 0;
	*vmcb_u32(v, VMCB_INTERCEPT_EXC) = INTERCEPT_EXC_MASK;
	*vmcb_u32(v, VMCB_INTERCEPT_1) = INTERCEPT_HLT | INTERCEPT_SHUTDOWN;
	*vmcb_u32(v, VMCB_INTERCEPT_2) = INTERCEPT_VMRUN | INTERCEPT_VMMCALL;
	*vmcb_u32(v, VMCB_ASID) = 1; /* ASID 0 is the host's */
	if (ncr3) {
		*vmcb_u64(v, VMCB_NP_ENABLE) = 1;
		*vmcb_u64(v, VMCB_N_CR3) = ncr3;
		*vmcb_u64(v, VMCB_G_PAT) = 0x0007040600070406ull; /* the reset PAT */
	}
	struct desc_ptr gdt, idt;
	__asm__ volatile("sgdt %0" : "=m"(gdt));
	__asm__ volatile("sidt %0" : "=m"(idt));
	/* 64-bit code (type B, S, P, L, G) and data (type 3, S, P, D/B, G) */
	vmcb_seg(v, VMCB_CS, GDT_KCODE, 0xa9b, 0xffffffff, 0);
	vmcb_seg(v, VMCB_SS, GDT_KDATA, 0xc93, 0xffffffff, 0);
	vmcb_seg(v, VMCB_DS, GDT_KDATA, 0xc93, 0xffffffff, 0);
	vmcb_seg(v, VMCB_ES, GDT_KDATA, 0xc93, 0xffffffff, 0);
	vmcb_seg(v, VMCB_GDTR, 0, 0, gdt.limit, gdt.base);
	vmcb_seg(v, VMCB_IDTR, 0, 0, idt.limit, idt.base);
	v[VMCB_CPL] = 0;
	*vmcb_u64(v, VMCB_EFER) = rdmsr(MSR_EFER);
	*vmcb_u64(v, VMCB_CR0) = read_cr0();
	*vmcb_u64(v, VMCB_CR3) = read_cr3();
	*vmcb_u64(v, VMCB_CR4) = read_cr4();
	*vmcb_u64(v, VMCB_DR6) = 0xffff0ff0;
	*vmcb_u64(v, VMCB_DR7) = 0x400;
	*vmcb_u64(v, VMCB_RFLAGS) = 0x2; /* IF clear: nothing to take interrupts */
	*vmcb_u64(v, VMCB_RIP) = rip;
	*vmcb_u64(v, VMCB_RSP) = n->stack_top;
}

/* What test=nested set up, for nested_exit_in_guest; NULL if it failed. */
static struct nested nested_saved, *nested_ready;

static uint64_t nested_exit(struct nested *n) { return *vmcb_u64(n->vmcb, VMCB_EXITCODE); }

/* Past the instruction that exited: the CPU's nRIP, or its known length. */
static void nested_skip(struct nested *n, unsigned len)
{
	uint64_t *rip = vmcb_u64(n->vmcb, VMCB_RIP);
	*rip = n->nrips ? *vmcb_u64(n->vmcb, VMCB_NRIP) : *rip + len;
}

static void nested_run(struct nested *n)
{
	nested_vmrun((uint64_t)n->vmcb, &n->g);
	n->exits++;
}

/* Median cycles per iteration over NESTED_BATCHES batches; each batch calls
 * run(n, iters) and returns the iterations it did (0: stop, failed). */
static uint64_t nested_time(struct nested *n, uint64_t (*run)(struct nested *, uint64_t), uint64_t iters)
{
	uint64_t per[NESTED_BATCHES];
	for (unsigned b = 0; b < NESTED_BATCHES; b++) {
		uint64_t t0 = rdtsc();
		uint64_t done = run(n, iters);
		if (!done)
			return 0;
		per[b] = (rdtsc() - t0) / done;
	}
	return median_u64(per, NESTED_BATCHES);
}

static uint64_t nested_bad_exit;

/* The exit a run did not expect, before the TAP line that fails for it. */
static void nested_report_bad(void)
{
	if (nested_bad_exit)
		kprintf("# nested: unexpected exit code 0x%lx\n", nested_bad_exit);
}

/* iters CPUIDs in the guest, each intercepted: reflected here, handled
 * (RIP moved past it) and resumed. */
static uint64_t run_reflected(struct nested *n, uint64_t iters)
{
	*vmcb_u32(n->vmcb, VMCB_INTERCEPT_1) |= INTERCEPT_CPUID;
	n->g.r8 = ~0ull; /* the guest's loop never ends by itself */
	for (uint64_t i = 0; i < iters; i++) {
		nested_run(n);
		if (nested_exit(n) != EXIT_CPUID) {
			nested_bad_exit = nested_exit(n);
			return 0;
		}
		nested_skip(n, 2);
	}
	return iters;
}

/* iters CPUIDs in the guest, not intercepted by this kernel: the host's KVM
 * handles each without coming here; one VMMCALL ends the batch. */
static uint64_t run_unreflected(struct nested *n, uint64_t iters)
{
	*vmcb_u32(n->vmcb, VMCB_INTERCEPT_1) &= ~INTERCEPT_CPUID;
	*vmcb_u64(n->vmcb, VMCB_RIP) = (uint64_t)nested_guest_cpuid;
	n->g.r8 = iters;
	nested_run(n);
	if (nested_exit(n) != EXIT_VMMCALL || n->g.r8 != 0) {
		nested_bad_exit = nested_exit(n);
		return 0;
	}
	return iters;
}

/* The same CPUID as this kernel's own exit: one level of virtualization. */
static uint64_t run_own(struct nested *n, uint64_t iters)
{
	(void)n;
	uint32_t r[4];
	for (uint64_t i = 0; i < iters; i++)
		cpuid(0, 0, r);
	return iters;
}

static uint64_t cycles_ns(uint64_t cycles) { return clock_tsc_to_ns(cycles * 1000) / 1000; }

/* loop_ms of runs of 2000 unintercepted CPUIDs each, for a snapshot or a
 * migration to catch the vCPU in guest mode: every run must end at its own
 * VMMCALL with its count used up, whatever happened to the VM between. */
static void nested_loop(smp_tap_fn tap, struct nested *n, unsigned loop_ms)
{
	kprintf("# nested-loop: running the nested guest for %u ms\n", loop_ms);
	uint64_t end = clock_ns() + (uint64_t)loop_ms * 1000000, runs = 0;
	nested_bad_exit = 0;
	while (clock_ns() < end && !nested_bad_exit) {
		if (run_unreflected(n, 2000))
			runs++;
	}
	nested_report_bad();
	tap(runs && !nested_bad_exit, "nested loop: %lu runs of 2000 CPUIDs in the nested guest in %u ms, each ended by its VMMCALL",
	    runs, loop_ms);
}

void nested_test(smp_tap_fn tap, smp_skip_fn skip, unsigned loop_ms)
{
	(void)skip;
	uint32_t r[4];
	cpuid(0x80000000, 0, r);
	uint32_t max_ext = r[0];
	cpuid(0x80000001, 0, r);
	if (max_ext < 0x8000000a || !(r[2] & (1u << 2))) {
		cpuid(1, 0, r);
		tap(false, "nested SVM in CPUID: none (0x80000001 ECX.2)%s",
		    r[2] & (1u << 5) ? "; the CPU shows VMX, which this kernel's hypervisor does not drive" :
				       ": hvmm shows it with --nested only");
		return;
	}
	cpuid(0x8000000a, 0, r);
	bool npt = r[3] & 1;
	struct nested n = { .nrips = r[3] & (1u << 3) };
	nested_ready = NULL;
	tap(true, "nested SVM in CPUID: revision %u, %u ASIDs, NPT %s, nRIP %s", r[0] & 0xff, r[1],
	    npt ? "yes" : "no", n.nrips ? "yes" : "no");

	uint64_t hsave = mm_alloc_page(), stack = mm_alloc_page();
	n.vmcb = (uint8_t *)mm_alloc_page();
	uint64_t ncr3 = npt ? nested_npt() : 0;
	if (!hsave || !stack || !n.vmcb || (npt && !ncr3)) {
		tap(false, "nested set-up: no free pages for the VMCB, host-save area and stack");
		return;
	}
	n.stack_top = stack + PAGE_SIZE;
	n.ncr3 = ncr3;
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	wrmsr(MSR_VM_HSAVE_PA, hsave);

	/* 1. every CPUID of the guest reflected here */
	nested_vmcb_init(&n, (uint64_t)nested_guest_cpuid, ncr3);
	nested_bad_exit = 0;
	uint64_t before = n.exits;
	uint64_t reflected = nested_time(&n, run_reflected, 20);
	uint64_t guest_exits = n.exits - before;
	nested_report_bad();
	tap(reflected != 0, "nested VMRUN, CPUID intercepted: NPT %s, %lu CPUID exits reflected to this kernel, exit code 0x72 each",
	    ncr3 ? "on" : "off", guest_exits);

	/* 2. not intercepted: the guest's CPUIDs stay below this kernel */
	nested_bad_exit = 0;
	before = n.exits;
	uint64_t unreflected = nested_time(&n, run_unreflected, 50);
	nested_report_bad();
	tap(unreflected != 0 && n.exits - before == NESTED_BATCHES,
	    "nested VMRUN, CPUID not intercepted: %u x 50 CPUIDs ran in the guest, %lu exits reached this kernel "
	    "(the VMMCALL ending each run)", NESTED_BATCHES, n.exits - before);

	/* 3. an exception the guest takes, intercepted by its bit in the
	 * exception bitmap: #UD is exit 0x46, RIP still at the instruction */
	*vmcb_u64(n.vmcb, VMCB_RIP) = (uint64_t)nested_guest_ud;
	nested_run(&n);
	tap(nested_exit(&n) == EXIT_EXC(6) && *vmcb_u64(n.vmcb, VMCB_RIP) == (uint64_t)nested_guest_ud,
	    "nested #UD intercepted: the guest's #UD came back as exit 0x%lx at rip 0x%lx (want 0x46 at 0x%lx)", nested_exit(&n),
	    *vmcb_u64(n.vmcb, VMCB_RIP), (uint64_t)nested_guest_ud);

	/* 4. a VMCB the CPU must refuse: VMRUN not intercepted */
	*vmcb_u32(n.vmcb, VMCB_INTERCEPT_2) &= ~INTERCEPT_VMRUN;
	nested_run(&n);
	tap(nested_exit(&n) == EXIT_INVALID, "nested VMCB without the VMRUN intercept: refused, exit 0x%lx (want -1)",
	    nested_exit(&n));

	if (loop_ms) {
		nested_vmcb_init(&n, (uint64_t)nested_guest_cpuid, ncr3);
		nested_loop(tap, &n, loop_ms);
	}
	uint64_t own = nested_time(&n, run_own, 100);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SVME);
	nested_saved = n;
	nested_ready = &nested_saved;
	kprintf("# nested-cost: reflected %lu ns (%lu cycles), kvm-only %lu ns (%lu cycles), own %lu ns (%lu cycles), "
		"vmruns %lu\n",
		cycles_ns(reflected), reflected, cycles_ns(unreflected), unreflected, cycles_ns(own), own, n.exits);
	kprintf("# nested: a CPUID of the nested guest that this kernel intercepts costs %lu ns (reflected through "
		"two hypervisors); one only the host's KVM handles %lu ns; this kernel's own CPUID %lu ns\n",
		cycles_ns(reflected), cycles_ns(unreflected), cycles_ns(own));
}

void nested_exit_in_guest(unsigned value)
{
	struct nested *n = nested_ready;
	if (!n)
		return;
	/* Port I/O this kernel does not intercept (no IOIO_PROT) is the host's
	 * business: KVM takes the nested guest's OUT to isa-debug-exit to hvmm,
	 * which ends the VM with the vCPU in guest mode. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	nested_vmcb_init(n, (uint64_t)nested_guest_out, n->ncr3);
	*vmcb_u64(n->vmcb, VMCB_RAX) = value;
	n->g.rdx = DEBUG_EXIT_PORT;
	kprintf("# nested-exit: the nested guest writes isa-debug-exit at rip 0x%lx, VMCB at 0x%lx\n",
		(uint64_t)nested_guest_out, (uint64_t)n->vmcb);
	nested_run(n);
	kprintf("# nested: the nested guest's OUT came back here (exit 0x%lx), not to the host\n", nested_exit(n));
}
