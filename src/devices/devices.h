/*
 * devices: the platform devices. Each lives in its own file, keeps its own
 * state and lock, and is one struct dev_ops (device.h): created from a
 * struct dev_env of narrow handles (buses, guest RAM, the event loop, the
 * PCI host, interrupt lines, a stop request), never from the VM, and listed
 * once in the registry's table (types.c), which vm.c walks to build a VM.
 * Adding a device: its file, its extern below, one line in types.c.
 * The PCI functions outside this directory follow the same interface: the
 * virtio types (virtio/virtio.h), vfio (vfio.h) and the intel-iommu
 * (iommu.h), whose externs are in their own headers.
 *
 *   uart.c        16550A at 0x3f8, IRQ 4 (Linux 8250 driver and polling guests)
 *   debug_exit.c  QEMU's isa-debug-exit at 0xf4 (4 ports): a write of v stops
 *                 hvmm with status (v << 1) | 1
 *   i8042.c       keyboard controller stub at 0x60/0x64; 0xFE to 0x64 = reset
 *   sysreset.c    0xCF9 reset control register (reset on bit 2 set)
 *   boot_timer.c  boot-time marker, port 0x440 (4 bytes) and MMIO 0xfeb00000
 *                 (4 bytes): each write records ns since hvmm started
 *   ioapic.c      82093AA-style IOAPIC at 0xfec00000 (split irqchip only)
 *   pic.c         8259 pair at 0x20/0xa0, ELCR at 0x4d0 (split irqchip only):
 *                 its INT is the boot CPU's LINT0 (ExtINT, KVM_INTERRUPT)
 *   pit.c         8254 PIT at 0x40-0x43 and port 0x61's gate/OUT2 bits;
 *                 channel 0 is ISA IRQ 0 (PIC IRQ 0, IOAPIC pin 2) through
 *                 a timerfd on the event loop (split irqchip only)
 *   fw_cfg.c      QEMU's fw_cfg: selector 0x510, data 0x511, DMA 0x514
 *   acpi_pm.c     ACPI PM1a event/control blocks and the PM timer (3.579545 MHz,
 *                 24 bits) at 0x600-0x60b, ICH9's layout; SCI is IRQ 9; S5 and S3
 *   rtc.c         MC146818 RTC and CMOS RAM at 0x70/0x71 (no interrupts)
 *   pc_testdev.c  QEMU's pc-testdev (kvm-unit-tests): scratch register 0xe0 and
 *                 0xe8 (bytewise), page flush 0xe4, IRQ lines 0x2000-0x2017,
 *                 64 KiB of MMIO scratch at 0xff000000
 *   pci_testdev.c QEMU's pci-testdev (1b36:0005): ioeventfd tests behind a
 *                 32-bit memory BAR and an I/O BAR
 *   hyperv_testdev.c QEMU's hyperv-testdev: SINT routes and SynIC message and
 *                 event connections made through port 0x3000 (with --hyperv)
 */
#ifndef HVMM_DEVICES_H
#define HVMM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct dev_ops;

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ 4
#define DEBUG_EXIT_PORT 0xf4
#define BOOT_TIMER_PORT 0x440
#define BOOT_TIMER_MMIO 0xfeb00000ull
#define BOOT_TIMER_MAX_MARKS 16
#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514
#define FW_CFG_NAME_MAX 55    /* the directory's name[56], NUL included */
#define FW_CFG_MAX_FILES 1024 /* selectors 0x20..0x41f */
#define ACPI_PM_BASE 0x600      /* PM1a_EVT_BLK; PM1a_CNT_BLK +4, PM_TMR_BLK +8 */
#define ACPI_PM_LEN 12
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_OFF 4
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_OFF 8
#define ACPI_PM_TMR_LEN 4
#define ACPI_PM_SLP_TYP_S5 0    /* QEMU's encoding; the DSDT's \_S5 package */
#define ACPI_PM_SCI_IRQ 9       /* QEMU's too; level, active high (MADT override) */
#define ACPI_PM_TIMER_HZ 3579545ull
#define ACPI_PM_TIMER_MASK 0xffffffu
#define PC_TESTDEV_SCRATCH_PORT 0xe0
#define PC_TESTDEV_FLUSH_PORT 0xe4
#define PC_TESTDEV_BYTE_PORT 0xe8
#define PC_TESTDEV_IRQ_PORT 0x2000
#define PC_TESTDEV_IRQ_LINES 24
#define PC_TESTDEV_IOMEM 0xff000000ull
#define PC_TESTDEV_IOMEM_LEN 0x10000u
#define HYPERV_TESTDEV_PORT 0x3000

enum serial_mode {
	SERIAL_STDIO = 0,
	SERIAL_FILE,
	SERIAL_NONE,
};

/* --serial FILE's default --serial-limit. */
#define SERIAL_FILE_LIMIT (1ull << 30)

/*
 * Every device type (struct dev_ops, device.h), in the registry's creation
 * order (types.c). What each registers and what its create reads of the
 * options is in its file; the functions below are the few links between a
 * device and the rest (irq.c, vcpu.c, vm.c's S3, stats), on the instance
 * that dev_find returns. Each accepts NULL (no such device) and does
 * nothing then.
 */
extern const struct dev_ops uart_dev_ops;        /* "uart": --serial */
extern const struct dev_ops debug_exit_dev_ops;  /* "debug-exit" */
extern const struct dev_ops i8042_dev_ops;       /* "i8042" */
extern const struct dev_ops sysreset_dev_ops;    /* "sysreset" */
extern const struct dev_ops boot_timer_dev_ops;  /* "boot-timer" */
extern const struct dev_ops fw_cfg_dev_ops;      /* "fw_cfg" */
extern const struct dev_ops acpi_pm_dev_ops;     /* "acpi-pm" */
extern const struct dev_ops rtc_dev_ops;         /* "rtc" */
extern const struct dev_ops ioapic_dev_ops;      /* "ioapic": split irqchip only */
extern const struct dev_ops pic_dev_ops;         /* "pic": split irqchip only */
extern const struct dev_ops pit_dev_ops;         /* "pit": split irqchip only */
extern const struct dev_ops pc_testdev_dev_ops;  /* "pc-testdev" */
extern const struct dev_ops pci_testdev_dev_ops; /* "pci-testdev": needs a PCI host */
extern const struct dev_ops edu_dev_ops;         /* "edu": needs a PCI host */
extern const struct dev_ops hyperv_testdev_dev_ops; /* "hyperv-testdev": needs the SynIC */

struct uart;
struct sysreset;
struct boot_timer;
struct fw_cfg;
struct acpi_pm;
struct rtc;
struct ioapic;
struct pic;
struct pit;
struct pc_testdev;
struct hyperv_testdev;

/* The UART writes at most --serial-limit bytes of output (0: no limit),
 * then a one-line notice, and counts what it drops (uart_dropped). */
uint64_t uart_dropped(struct uart *u);
/* Start the stdin reader (after the vCPUs start); restore the terminal on
 * exit. A pause (its dev_ops pause, once the VM's paused flag is set): host
 * input stops reaching the guest-visible FIFO and IRQ line until the
 * resume, which delivers what arrived meanwhile. */
int uart_start(struct uart *u);
void uart_stop(struct uart *u);

/* The reset control register for pci.c, which owns 0xCF8-0xCFF when present. */
uint8_t sysreset_io_read(struct sysreset *s);
void sysreset_io_write(struct sysreset *s, uint8_t value);
/* The 8259 pair (pic.c). ISA line irq (0..15; 2 is the cascade) to level. */
void pic_set_irq(struct pic *p, unsigned irq, bool level);
/* Is the master's INT output high? Lock-free: the boot vCPU asks before
 * every KVM_RUN. */
bool pic_output(struct pic *p);
/* The INTA cycle: the vector to inject (a spurious IRQ 7/15 if the request
 * went away), or -1 without a PIC. */
int pic_intack(struct pic *p);
/* Program the pair as a PC BIOS leaves it: vectors 0x08 and 0x70, all
 * masked but IRQ 0 and the cascade. */
void pic_firmware_init(struct pic *p);

/*
 * The 8254 PIT (pit.c). The chip itself is pure logic on an explicit clock
 * (ns, CLOCK_MONOTONIC in the device), for the unit tests: ports 0-2 are the
 * channels' data ports (0x40-0x42), 3 the control word (0x43),
 * PIT_PORT_SYSCTL port 0x61.
 */
#define PIT_HZ 1193182ull
#define PIT_CHANNELS 3
#define PIT_PORT_SYSCTL 4
#define PIT_IRQ_PIN 2 /* ISA IRQ 0: IOAPIC pin 2 (the override), PIC IRQ 0 */
/* The host timer's shortest period (KVM's in-kernel PIT clamps too). */
#define PIT_MIN_PERIOD_NS 200000ull
struct pit_chip;
struct pit_chip *pit_chip_new(void); /* reset state; NULL without memory */
void pit_chip_free(struct pit_chip *p);
void pit_chip_write(struct pit_chip *p, unsigned port, uint8_t v, uint64_t now_ns);
uint8_t pit_chip_read(struct pit_chip *p, unsigned port, uint64_t now_ns);
bool pit_chip_out(const struct pit_chip *p, unsigned channel, uint64_t now_ns);
/* When channel 0's OUT next rises (IRQ 0): false if it never will; else the
 * absolute time of the first edge and the period (0: just that one). */
bool pit_chip_timer(const struct pit_chip *p, uint64_t now_ns, uint64_t *first_ns,
		    uint64_t *period_ns);
/* The device: ports 0x40-0x43 and 0x61, the timerfd on the event loop
 * (none without one: then IRQ 0 never fires). */
/* Program channel 0 as a PC BIOS does: mode 2, count 65536 (18.2 Hz). */
void pit_firmware_init(struct pit *p);
/* IRQ 0 edges raised so far. */
uint64_t pit_irqs(struct pit *p);
/* fw_cfg: items from the options (mem_size, ncpus) as they are at create time. */
/*
 * Add a read-only file (data copied) under name (1..FW_CFG_NAME_MAX chars).
 * Files are kept sorted and numbered from 0x20 in name order, so call before
 * the guest runs. 0, -ENODEV (no fw_cfg_create), -EINVAL, -EEXIST, -ENOSPC
 * or -ENOMEM.
 */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len);

/* ACPI PM registers (acpi_pm.c). S3: may the RTC alarm wake the machine
 * (PM1_EN.RTC_EN)? And: it woke (WAK_STS, and RTC_STS when by_rtc). */
bool acpi_pm_rtc_wake_enabled(struct acpi_pm *p);
void acpi_pm_woke(struct acpi_pm *p, bool by_rtc);
/* RTC (rtc.c): CMOS clock and RAM at 0x70/0x71. Has the alarm fired (a
 * second matching it passed) with AIE on? For S3 wake. */
bool rtc_alarm_due(struct rtc *r);
/* Pure logic: do the registers' sec/min/hour match the alarm's (>= 0xc0: any)? */
bool rtc_alarm_match(const uint8_t alarm[3], const uint8_t now[3]);
/* Writes of SLP_EN the guest made (sleep is not carried out). */
uint64_t acpi_pm_sleep_requests(struct acpi_pm *p);
/* Pure logic, for unit tests: the 24-bit PM timer count ns after start, and
 * PM1_STS after a write of value (write 1 to clear). */
uint32_t acpi_pm_timer_ticks(uint64_t ns);
uint16_t acpi_pm_sts_write(uint16_t sts, uint16_t value);

/* pc-testdev (pc_testdev.c): pages flushed through port 0xe4 so far. */
uint64_t pc_testdev_flushes(struct pc_testdev *t);
/* The pure logic, for unit tests: the scratch register after/for an access of
 * size bytes at offset (clipped to the register's 4 bytes), and the IOAPIC
 * pin an interrupt line drives (-1: no such line). */
uint32_t pc_testdev_scratch_read(uint32_t reg, unsigned offset, unsigned size);
uint32_t pc_testdev_scratch_write(uint32_t reg, unsigned offset, unsigned size, uint64_t value);
int pc_testdev_irq_pin(unsigned line);

/* pci-testdev (pci_testdev.c) and edu (edu.c, QEMU's educational PCI
 * device 1234:11e8) take the next free slot of bus 0.
 * The pure logic, for unit tests: n! modulo 2^32, as the device computes it. */
uint32_t edu_factorial(uint32_t n);

/* hyperv-testdev (hyperv_testdev.c); needs hyperv_create() first. */
enum {
	HYPERV_TESTDEV_SINT_ROUTE_CREATE = 1,
	HYPERV_TESTDEV_SINT_ROUTE_DESTROY,
	HYPERV_TESTDEV_SINT_ROUTE_SET_SINT,
	HYPERV_TESTDEV_MSG_CONN_CREATE,
	HYPERV_TESTDEV_MSG_CONN_DESTROY,
	HYPERV_TESTDEV_EVT_CONN_CREATE,
	HYPERV_TESTDEV_EVT_CONN_DESTROY,
};
struct hyperv_testdev_cmd {
	uint8_t command, vp, sint, conn_id;
};
/* Pure: the fields of a 32-bit write to the register. */
struct hyperv_testdev_cmd hyperv_testdev_decode(uint32_t value);
/* What the port does with a 4-byte write: 0, or -errno when the command was
 * refused (bad vCPU/SINT, unknown route or connection, id taken, full). */
int hyperv_testdev_write(struct hyperv_testdev *t, uint32_t value);
/* For tests: commands refused so far; hyperv.c's handle of the first route
 * made for (vp, sint) by SINT_ROUTE_CREATE, or -1. */
uint64_t hyperv_testdev_refused(struct hyperv_testdev *t);
int hyperv_testdev_route(struct hyperv_testdev *t, unsigned vp, unsigned sint);

/* Split irqchip: the IOAPIC's view of a pin and of an EOI (called by irq.c). */
void ioapic_set_line(struct ioapic *s, unsigned pin, bool level);
void ioapic_eoi(struct ioapic *s, unsigned vector);
/* The IOMMU's interrupt remapping changed (IRE, the table, an invalidation):
 * recompute every pin's route. Call without IOMMU locks held. */
void ioapic_reroute_all(struct ioapic *s);
/* How many times pin has been delivered (tests, statistics). */
uint64_t ioapic_delivered(struct ioapic *s, unsigned pin);

/* Host-side input for the UART, as if typed on stdin (Ctrl-A escapes
 * included; Ctrl-A x stops the VM). Used by the stdin thread and by tests. */
void uart_receive(struct uart *u, const uint8_t *buf, size_t len);

/*
 * The clocks the devices' snapshots measure their timers against (devices.c):
 * a save writes "ns since the count was loaded", a load turns that back into
 * a host time from the same clock. One instant for all of a save or a load
 * would be ideal; what matters for the tests is that pinning makes a save,
 * load and save see the same instant, so the round trip is byte-identical.
 */
uint64_t devices_snap_mono_ns(void);        /* CLOCK_MONOTONIC (util_now_ns) */
uint64_t devices_snap_since_start_ns(void); /* util_since_start_ns */
int64_t devices_snap_real_s(void);          /* CLOCK_REALTIME, whole seconds */
/* Tests: freeze the three clocks at their values now (true) or let them run. */
void devices_snap_clock_pin(bool pin);

struct boot_timer_mark {
	uint64_t ns;   /* since hvmm started */
	uint32_t value;
	bool mmio;
};
/* Copies up to max marks; returns how many were recorded in total. */
unsigned boot_timer_marks(struct boot_timer *t, struct boot_timer_mark *out, unsigned max);

#endif
