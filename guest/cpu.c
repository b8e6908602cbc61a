/*
 * cpu: descriptor tables and MSRs. The IDT is built once by the BSP and
 * shared; each CPU gets its own TSS (RSP0 = its trap stack, IST1 = its
 * double-fault stack) and its own GS base.
 */
#include "cpu.h"

#include <stddef.h>

#include "arch.h"

_Static_assert(offsetof(struct cpu, self) == CPU_SELF, "CPU_SELF");
_Static_assert(offsetof(struct cpu, trap_top) == CPU_TRAP_TOP, "CPU_TRAP_TOP");
_Static_assert(offsetof(struct cpu, user_rsp) == CPU_USER_RSP, "CPU_USER_RSP");

struct cpu cpus[MAX_CPUS];
unsigned cpu_count = 1;
bool cpu_has_nx;

extern uint64_t gdt[];
extern uint32_t efer_extra;

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static bool idt_built;

#define STUB(v) extern char trap_stub_##v[];
STUB(0) STUB(1) STUB(2) STUB(3) STUB(4) STUB(5) STUB(6) STUB(7) STUB(8) STUB(9)
STUB(10) STUB(11) STUB(12) STUB(13) STUB(14) STUB(15) STUB(16) STUB(17) STUB(18)
STUB(19) STUB(20) STUB(21) STUB(22) STUB(23) STUB(24) STUB(25) STUB(26) STUB(27)
STUB(28) STUB(29) STUB(30) STUB(31) STUB(0x40) STUB(0x42) STUB(0x41) STUB(0xff) STUB(0x80)
STUB(0x50) STUB(0x51) STUB(0x52) STUB(0x53) STUB(0x54) STUB(0x55) STUB(0x56) STUB(0x57)
STUB(0x58) STUB(0x59) STUB(0x5a) STUB(0x5b) STUB(0x5c) STUB(0x5d) STUB(0x5e) STUB(0x5f)
#undef STUB
extern char syscall_entry[];

static void idt_set(unsigned v, void *fn, unsigned dpl, unsigned ist)
{
	uint64_t a = (uint64_t)fn;
	idt[v] = (struct idt_gate){
		.off0 = (uint16_t)a,
		.sel = GDT_KCODE,
		.ist = (uint8_t)ist,
		.type = (uint8_t)(0x8e | (dpl << 5)), /* present 64-bit interrupt gate */
		.off1 = (uint16_t)(a >> 16),
		.off2 = (uint32_t)(a >> 32),
	};
}

static void idt_build(void)
{
	static void *const exc[32] = {
		trap_stub_0, trap_stub_1, trap_stub_2, trap_stub_3, trap_stub_4, trap_stub_5,
		trap_stub_6, trap_stub_7, trap_stub_8, trap_stub_9, trap_stub_10, trap_stub_11,
		trap_stub_12, trap_stub_13, trap_stub_14, trap_stub_15, trap_stub_16, trap_stub_17,
		trap_stub_18, trap_stub_19, trap_stub_20, trap_stub_21, trap_stub_22, trap_stub_23,
		trap_stub_24, trap_stub_25, trap_stub_26, trap_stub_27, trap_stub_28, trap_stub_29,
		trap_stub_30, trap_stub_31,
	};
	for (unsigned v = 0; v < 32; v++)
		idt_set(v, exc[v], v == VEC_BP ? 3 : 0, v == 8 ? 1 : 0);
	idt_set(VEC_TIMER, trap_stub_0x40, 0, 0);
	idt_set(VEC_IPI, trap_stub_0x41, 0, 0);
	idt_set(VEC_SERIAL, trap_stub_0x42, 0, 0);
	idt_set(VEC_SPURIOUS, trap_stub_0xff, 0, 0);
	static void *const msi[MSI_VECTORS] = {
		trap_stub_0x50, trap_stub_0x51, trap_stub_0x52, trap_stub_0x53, trap_stub_0x54,
		trap_stub_0x55, trap_stub_0x56, trap_stub_0x57, trap_stub_0x58, trap_stub_0x59,
		trap_stub_0x5a, trap_stub_0x5b, trap_stub_0x5c, trap_stub_0x5d, trap_stub_0x5e,
		trap_stub_0x5f,
	};
	for (unsigned i = 0; i < MSI_VECTORS; i++)
		idt_set(VEC_MSI_BASE + i, msi[i], 0, 0);
	idt_set(VEC_SYSCALL, trap_stub_0x80, 3, 0);
	idt_built = true;
}

void cpu_init(unsigned id)
{
	struct cpu *c = &cpus[id];
	c->self = c;
	c->id = id;
	c->trap_top = (uint64_t)(c->trap_stack + sizeof(c->trap_stack));
	c->tss.rsp[0] = c->trap_top;
	c->tss.ist[0] = (uint64_t)(c->df_stack + sizeof(c->df_stack));
	c->tss.iomap_base = sizeof(struct tss); /* no I/O bitmap: ring 3 gets no ports */

	uint64_t base = (uint64_t)&c->tss, limit = sizeof(struct tss) - 1;
	unsigned slot = GDT_TSS0 / 8 + 2 * id;
	gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		    ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt[slot + 1] = base >> 32;

	if (!idt_built)
		idt_build();
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)(GDT_TSS0 + 16 * id)));

	/* GS base = this CPU in ring 0 and ring 3 alike (see syscall_entry). */
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	wrmsr(MSR_KERNEL_GS_BASE, (uint64_t)c);

	wrmsr(MSR_STAR, ((uint64_t)GDT_UCODE32 << 48) | ((uint64_t)GDT_KCODE << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, 0x47700); /* IF, TF, DF, AC, NT off in the entry */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | 1); /* SCE */
	cpu_has_nx = efer_extra != 0;
}
