#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)

#define GDT_CODE32 0x08
#define GDT_ENTRY 0x10
#define GDT_DATA 0x18
#define GDT_CODE64 0x20
#define GDT_ENTRIES 5

/* Flat 4 GiB descriptors with the accessed bit preset, so the CPU never has
 * to write back into the GDT (it may sit in memory the guest reuses). */
#define GDT_DESC_CODE32 0x00cf9b000000ffffull /* G, D, P, code exec/read */
#define GDT_DESC_CODE64 0x00af9b000000ffffull /* G, L, P, code exec/read */
#define GDT_DESC_DATA 0x00cf93000000ffffull   /* G, B, P, data read/write */

void boot_x86_write_gdt(struct guest_mem *m, enum boot_mode mode)
{
	uint64_t gdt[GDT_ENTRIES] = {
		[GDT_CODE32 / 8] = GDT_DESC_CODE32,
		[GDT_ENTRY / 8] = mode == BOOT_MODE_LONG64 ? GDT_DESC_CODE64 : GDT_DESC_CODE32,
		[GDT_DATA / 8] = GDT_DESC_DATA,
		[GDT_CODE64 / 8] = GDT_DESC_CODE64,
	};
	/* RAM is at least MEM_MIN_SIZE, so 0x500 is always there. */
	mem_write(m, BOOT_GDT, gdt, sizeof(gdt));
}

int boot_x86_write_page_tables(struct guest_mem *m, uint64_t *cr3)
{
	uint64_t top = mem_top(m);
	if (top < MEM_HOLE_END)
		top = MEM_HOLE_END; /* LAPIC and IOAPIC live in the hole: always map it */
	uint64_t ngib = (top + GIB(1) - 1) >> 30;
	if (ngib > BOOT_PT_MAX_GIB)
		return -1;
	const uint64_t pdpt = BOOT_PML4 + BOOT_PAGE, pd0 = BOOT_PML4 + 2 * BOOT_PAGE;
	uint64_t *pml4_p = mem_ptr(m, BOOT_PML4, BOOT_PAGE);
	uint64_t *pdpt_p = mem_ptr(m, pdpt, BOOT_PAGE);
	uint64_t *pd_p = mem_ptr(m, pd0, ngib * BOOT_PAGE);
	if (!pml4_p || !pdpt_p || !pd_p)
		return -1;
	memset(pml4_p, 0, BOOT_PAGE);
	memset(pdpt_p, 0, BOOT_PAGE);
	pml4_p[0] = pdpt | PTE_P | PTE_RW;
	for (uint64_t g = 0; g < ngib; g++) {
		pdpt_p[g] = (pd0 + g * BOOT_PAGE) | PTE_P | PTE_RW;
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t pa = (g << 30) | (i << 21);
			uint64_t flags = PTE_P | PTE_RW | PTE_PS;
			if (pa >= MEM_HOLE_START && pa < MEM_HOLE_END)
				flags |= PTE_PCD | PTE_PWT; /* device registers: uncached */
			pd_p[g * 512 + i] = pa | flags;
		}
	}
	*cr3 = BOOT_PML4;
	return 0;
}

static void seg_real(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
		.type = type, .present = 1, .s = 1,
	};
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .s = 1, .g = 1, .db = long_code ? 0 : 1, .l = long_code ? 1 : 0,
	};
}

int boot_x86_apply(int vcpufd, const struct boot_entry *e)
{
	struct kvm_sregs sr;
	if (ioctl(vcpufd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	/* TR, LDTR, APIC base and the IDT keep their reset values, which VM entry accepts. */
	const uint8_t code = 0xb, data = 0x3; /* accessed exec/read code, accessed read/write data */
	switch (e->mode) {
	case BOOT_MODE_REAL16:
		seg_real(&sr.cs, e->cs_sel, code);
		seg_real(&sr.ds, e->cs_sel, data);
		seg_real(&sr.es, e->cs_sel, data);
		seg_real(&sr.fs, e->cs_sel, data);
		seg_real(&sr.gs, e->cs_sel, data);
		seg_real(&sr.ss, 0, data);
		sr.cr0 &= ~(X86_CR0_PE | X86_CR0_PG);
		sr.cr3 = 0;
		sr.cr4 = 0;
		sr.efer = 0;
		break;
	case BOOT_MODE_PROT32:
	case BOOT_MODE_LONG64: {
		bool lm = e->mode == BOOT_MODE_LONG64;
		seg_flat(&sr.cs, GDT_ENTRY, code, lm);
		seg_flat(&sr.ds, GDT_DATA, data, false);
		sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
		sr.gdt.base = BOOT_GDT;
		sr.gdt.limit = GDT_ENTRIES * 8 - 1;
		sr.cr0 = X86_CR0_PE | X86_CR0_ET | (lm ? X86_CR0_PG : 0);
		sr.cr3 = lm ? e->cr3 : 0;
		sr.cr4 = lm ? X86_CR4_PAE : 0;
		sr.efer = lm ? X86_EFER_LME | X86_EFER_LMA : 0;
		break;
	}
	default:
		return -EINVAL;
	}
	if (ioctl(vcpufd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	struct kvm_regs regs = {
		.rip = e->rip, .rsp = e->rsp, .rax = e->rax, .rbx = e->rbx, .rsi = e->rsi,
		.rflags = 0x2, /* bit 1 is reserved-one; interrupts off */
	};
	if (ioctl(vcpufd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
