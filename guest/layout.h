/*
 * layout: constants shared by the guest's assembly and C — segment selectors,
 * per-CPU field offsets, vectors, syscall numbers and the user address map.
 * Only #defines here, so entry.S can include it.
 */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

/* GDT: the order of the user selectors is fixed by SYSRET (STAR[63:48] = 0x18:
 * SS = 0x18 + 8, CS = 0x18 + 16). */
#define GDT_KCODE 0x08
#define GDT_KDATA 0x10
#define GDT_UCODE32 0x18
#define GDT_UDATA 0x20
#define GDT_UCODE 0x28
#define GDT_TSS0 0x30 /* one 16-byte TSS descriptor per CPU from here */
#define GDT_FIXED_ENTRIES 6

#define MAX_CPUS 16

/* struct cpu field offsets used from assembly (checked by _Static_assert in cpu.c). */
#define CPU_SELF 0
#define CPU_TRAP_TOP 8
#define CPU_USER_RSP 16

/* Vectors. 3 (#BP) and 0x80 are DPL3 gates usable as syscall entries. */
#define VEC_BP 3
#define VEC_TIMER 0x40
#define VEC_IPI 0x41
#define VEC_SERIAL 0x42 /* COM1 IRQ 4 through the IOAPIC */
#define VEC_SYSCALL 0x80
/* MSI/MSI-X vectors for the ring-3 drivers (pci.c): VEC_MSI_BASE + i, i < MSI_VECTORS.
 * The kernel only counts them (u_msi_count[i], readable in ring 3) and EOIs. */
#define VEC_MSI_BASE 0x50
#define MSI_VECTORS 16
#define VEC_SPURIOUS 0xff
/* test=inject's interrupt vector: an MSI-X vector's gate (MSI_VECTORS - 2). */
#define VEC_INJECT_IRQ 0x5e
/* test=inject marks each event it takes to hvmm's boot timer: this | vector */
#define BOOT_MARK_INJECTED 0x1000
/* test=dirty's phases, marked to hvmm's boot timer */
#define BOOT_MARK_DIRTY_WRITE 0x2001
#define BOOT_MARK_DIRTY_IDLE 0x2002
#define BOOT_MARK_DIRTY_END 0x2003

/* Syscall numbers (rax); args in rdi, rsi, rdx; result in rax. */
#define SYS_NOP 0
#define SYS_WRITE 1
#define SYS_EXIT 2
#define SYS_YIELD 3
#define SYS_TIME 4
#define SYS_SLEEP 5
#define SYS_PROBE 6
#define SYS_CPU 7
#define SYS_PCI_DEV 8  /* (i, struct pci_udev *out, flags): describe PCI function i; PCI_DEV_OPEN maps its BARs */
#define SYS_DMA 9      /* (bytes, uint64_t *phys_out): physically contiguous DMA memory → user VA */
#define SYS_IRQ_WAIT 10 /* (i, seen, timeout_ns): HLT until u_msi_count[i] > seen or timeout; the count */
#define SYS_TAP 11     /* (ok, msg, len): one TAP check line, numbered by the kernel */
#define SYS_COUNT 12
#define SYS_ENOSYS (-38)

/* User address map: everything a task owns beyond the shared .utext/.udata
 * pages of the image lives in the 5th GiB (PDPT slot 4, one page directory). */
#define USER_BASE 0x100000000
#define USER_STACK_PAGES 4 /* 16 KiB: tasks are small */
#define USER_STACK_STRIDE 0x100000           /* one MiB per CPU */
#define USER_DEMAND_BASE 0x110000000         /* paging test: mapped on first touch */
#define USER_DEMAND_SIZE 0x1000000
#define USER_PCI_BASE 0x120000000            /* SYS_PCI_DEV: function i's BAR b at base + i*SLOT + b*BAR_MAX */
#define USER_PCI_SLOT 0x800000
#define USER_PCI_BAR_MAX 0x100000             /* larger BARs are mapped in part */
#define USER_PCI_FUNCS 32
#define USER_DMA_BASE 0x130000000            /* SYS_DMA regions, handed out in order, never freed */
#define USER_DMA_END 0x13fe00000
#define USER_MARKER_VA 0x13ff00000           /* → boot-timer MMIO page */
#define USER_END 0x140000000

#define BOOT_MARKER_MMIO 0xfeb00000
#define BOOT_MARKER_PORT 0x440
#define BOOT_MARK_KERNEL 1 /* ring 0, first C instruction (port 0x440) */
#define BOOT_MARK_USER 3   /* first ring-3 instruction (MMIO) */

/* isa-debug-exit: value v ends QEMU/hvmm with status (v << 1) | 1. */
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_PASS 0  /* status 1 */
#define EXIT_FAIL 1  /* status 3 */
#define EXIT_PANIC 2 /* status 5 */

#define AP_TRAMPOLINE 0x8000

#endif
