/*
 * entry.S: multiboot header, 32-bit entry, long-mode switch, and the few
 * ring-0 paths that must be assembly (trap stubs, syscall entries, the jump
 * to ring 3, the AP trampoline).
 *
 * Ring 0 is kept short: the page tables are built by the assembler, not by
 * a loop, and the syscall entries call straight into a table with no
 * register save.
 */
#include "layout.h"

#define MB_MAGIC 0x1BADB002
/* bit 1: memory map wanted; bit 16: the a.out kludge, the load addresses
 * below — QEMU refuses ELF64 multiboot images without it. */
#define MB_FLAGS 0x00010002

#define EFER_MSR 0xC0000080
#define EFER_LME 0x100
#define EFER_NXE 0x800

	.section .multiboot, "a"
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header         /* header_addr */
	.long __image_start     /* load_addr */
	.long __load_end        /* load_end_addr */
	.long __image_end       /* bss_end_addr */
	.long mb_entry32        /* entry_addr */

	.section .text.boot32, "ax"
	.code32
	.globl mb_entry32
mb_entry32:
	cli
	mov %eax, %edi          /* multiboot magic, kept for kmain */
	mov %ebx, %esi          /* multiboot info */
	mov $boot_stack_top, %esp
	/* NX is usable only if EFER.NXE can be set (CPUID 0x80000001 EDX bit 20). */
	xor %ebp, %ebp
	mov $0x80000000, %eax
	cpuid
	cmp $0x80000001, %eax
	jb 1f
	mov $0x80000001, %eax
	cpuid
	bt $20, %edx
	jnc 1f
	mov $EFER_NXE, %ebp
1:	mov %ebp, efer_extra
	mov %cr4, %eax
	or $0x20, %eax          /* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $EFER_MSR, %ecx
	rdmsr
	or $EFER_LME, %eax
	or %ebp, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80010001, %eax    /* PG | WP | PE */
	mov %eax, %cr0
	lgdt gdt_desc
	ljmp $GDT_KCODE, $start64

	.code64
start64:
	mov $GDT_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %rsp
	mov %edi, %edi
	mov %esi, %esi
	call kmain
2:	cli
	hlt
	jmp 2b

/* ---- trap stubs ---------------------------------------------------------- */

	.text
/* Exceptions without an error code push a 0 so every frame looks the same. */
.macro TRAP_NOERR vec
	.globl trap_stub_\vec
trap_stub_\vec:
	pushq $0
	pushq $\vec
	jmp trap_common
.endm
.macro TRAP_ERR vec
	.globl trap_stub_\vec
trap_stub_\vec:
	pushq $\vec
	jmp trap_common
.endm

TRAP_NOERR 0
TRAP_NOERR 1
TRAP_NOERR 2
/* 3 (#BP) is the int3 syscall entry below */
TRAP_NOERR 4
TRAP_NOERR 5
TRAP_NOERR 6
TRAP_NOERR 7
TRAP_ERR 8
TRAP_NOERR 9
TRAP_ERR 10
TRAP_ERR 11
TRAP_ERR 12
TRAP_ERR 13
TRAP_ERR 14
TRAP_NOERR 15
TRAP_NOERR 16
TRAP_ERR 17
TRAP_NOERR 18
TRAP_NOERR 19
TRAP_NOERR 20
TRAP_ERR 21
TRAP_NOERR 22
TRAP_NOERR 23
TRAP_NOERR 24
TRAP_NOERR 25
TRAP_NOERR 26
TRAP_NOERR 27
TRAP_NOERR 28
TRAP_ERR 29
TRAP_ERR 30
TRAP_NOERR 31
TRAP_NOERR 0x40
TRAP_NOERR 0x41
TRAP_NOERR 0x42
TRAP_NOERR 0xff
/* MSI-X vectors of the ring-3 drivers (VEC_MSI_BASE, MSI_VECTORS) */
TRAP_NOERR 0x50
TRAP_NOERR 0x51
TRAP_NOERR 0x52
TRAP_NOERR 0x53
TRAP_NOERR 0x54
TRAP_NOERR 0x55
TRAP_NOERR 0x56
TRAP_NOERR 0x57
TRAP_NOERR 0x58
TRAP_NOERR 0x59
TRAP_NOERR 0x5a
TRAP_NOERR 0x5b
TRAP_NOERR 0x5c
TRAP_NOERR 0x5d
TRAP_NOERR 0x5e
TRAP_NOERR 0x5f

/* Full frame (struct trap_frame in trap.h), then C. 15 pushes keep RSP
 * 16-byte aligned at the call: the CPU aligned it before its 5-qword frame,
 * and vector + error code make 7. */
trap_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call trap_handle
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq

/* ---- syscall entries --------------------------------------------------------
 * The user wrappers (user/usys.h) declare every caller-saved register
 * clobbered, so the entries save nothing: a handful of instructions per
 * round trip. Handlers are C functions long f(long, long, long).
 */

/* INT3 through a DPL3 gate. A trap: the saved RIP is already past the int3.
 * The kernel itself never executes int3, so there is no CPL test. The
 * handlers are -mgeneral-regs-only C, which needs no 16-byte stack
 * alignment, so RSP is left as the CPU pushed it. */
	.globl trap_stub_3
trap_stub_3:
	cmp $SYS_COUNT, %rax
	jae 8f
	call *sys_table(, %rax, 8)
	iretq
8:	mov $SYS_ENOSYS, %rax
	iretq

/* INT 0x80 through a DPL3 gate, back with IRETQ. */
	.globl trap_stub_0x80
trap_stub_0x80:
	cmp $SYS_COUNT, %rax
	jae 8f
	call *sys_table(, %rax, 8)
	iretq
8:	mov $SYS_ENOSYS, %rax
	iretq

/* SYSCALL: RCX = user RIP, R11 = user RFLAGS, RSP still the user's. GS base is
 * this CPU's struct cpu in ring 0 and ring 3 alike (user code never changes
 * GS), so no SWAPGS is needed to find the kernel stack. */
	.globl syscall_entry
syscall_entry:
	mov %rsp, %gs:CPU_USER_RSP
	mov %gs:CPU_TRAP_TOP, %rsp
	push %gs:CPU_USER_RSP   /* on the task's stack: a yield may switch tasks */
	push %rcx
	push %r11
	cmp $SYS_COUNT, %rax
	jae 8f
	call *sys_table(, %rax, 8)
7:	pop %r11
	pop %rcx
	pop %rsp
	sysretq
8:	mov $SYS_ENOSYS, %rax
	jmp 7b

/* ---- ring 3 and task switching -------------------------------------------
 * Every task has its own ring-0 stack (TSS.RSP0 while it runs); switching
 * tasks is switching those stacks. The user state of a task that is switched
 * out sits on its stack: the CPU's IRETQ frame (or the SYSCALL entry's saved
 * RCX/R11/RSP) plus the callee-saved registers pushed here.
 *
 * void ctx_switch(uint64_t *save_rsp, uint64_t new_rsp)
 */
	.globl ctx_switch
ctx_switch:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, (%rdi)
	mov %rsi, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret

/* A new task's first switch "returns" here (task.c builds the stack): its
 * two arguments, then an IRETQ frame into ring 3. */
	.globl task_bootstrap
task_bootstrap:
	pop %rdi
	pop %rsi
	xor %eax, %eax
	xor %ecx, %ecx
	xor %edx, %edx
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	iretq

/* ---- AP start -------------------------------------------------------------
 * smp.c copies [ap_tramp_start, ap_tramp_end) to AP_TRAMPOLINE and sends
 * SIPI vector AP_TRAMPOLINE >> 12; the AP starts in real mode at CS:IP =
 * 0x0800:0000 and goes straight to long mode on the BSP's page tables.
 */
	.code16
	.globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl (ap_gdt_desc - ap_tramp_start)
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	movl $pml4, %eax
	mov %eax, %cr3
	mov $EFER_MSR, %ecx
	rdmsr
	or $EFER_LME, %eax
	or (ap_efer_extra - ap_tramp_start), %eax
	wrmsr
	mov %cr0, %eax
	or $0x80010001, %eax
	mov %eax, %cr0
	ljmpl $GDT_KCODE, $ap_start64
	.align 4
ap_gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
	.globl ap_efer_extra
ap_efer_extra:
	.long 0
ap_tramp_end:

	.code64
ap_start64:
	mov $GDT_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov ap_boot_stack(%rip), %rsp
	call ap_main
3:	cli
	hlt
	jmp 3b

/* ---- data: GDT and the boot page tables ----------------------------------- */

	.data
	.align 16
	.globl gdt, gdt_end
gdt:
	.quad 0
	.quad 0x00af9a000000ffff    /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff    /* 0x10 kernel data */
	.quad 0x00cffa000000ffff    /* 0x18 user code, 32-bit (SYSRET layout slot) */
	.quad 0x00cff2000000ffff    /* 0x20 user data */
	.quad 0x00affa000000ffff    /* 0x28 user code, 64-bit */
	.fill MAX_CPUS * 2, 8, 0    /* 0x30.. one TSS descriptor per CPU (cpu.c) */
gdt_end:
	.align 8
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt
	.globl efer_extra
efer_extra:
	.long 0

/* Identity map of the first 4 GiB: 2 MiB pages, kernel-only (no U bit), the
 * MMIO GiB uncached. The first 2 MiB use 4 KiB pages so the image's user
 * sections can be made user-accessible page by page (mm.c) and page 0 stays
 * unmapped. Non-leaf entries carry U: the leaves decide. PDPT slot 4 is the
 * user GiB (USER_BASE), filled on demand. */
	.section .data.pagetables, "aw"
	.align 4096
	.globl pml4, pdpt, pd_user, pt_low
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd0 + 0x7
	.quad pd1 + 0x7
	.quad pd2 + 0x7
	.quad pd3 + 0x7
	.quad pd_user + 0x7
	.fill 507, 8, 0
pd0:
	.quad pt_low + 0x7
	.set i, 1
	.rept 511
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
pd1:
	.rept 512
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
pd2:
	.rept 512
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
pd3:
	.rept 512
	.quad (i << 21) | 0x9b      /* PCD | PWT: LAPIC, IOAPIC, boot marker */
	.set i, i + 1
	.endr
pt_low:
	.quad 0
	.set i, 1
	.rept 511
	.quad (i << 12) | 0x3
	.set i, i + 1
	.endr
pd_user:
	.fill 512, 8, 0

	.bss
	.align 16
	.globl boot_stack_top
boot_stack:
	.skip 16384
boot_stack_top:
