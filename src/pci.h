/*
 * pci: the PCI host bridge and the device-independent half of every PCI
 * function hvmm emulates — configuration space (mechanism #1 at 0xCF8/0xCFC
 * and PCIe ECAM), BARs, capability lists, MSI-X and INTx.
 *
 * hvmm has no firmware, so it does the firmware's job too: every BAR is
 * placed in the 32-bit PCI hole when the device is added, and the command
 * register starts with memory decoding and bus mastering off, as after reset.
 *
 * Guest address map (bus 0 only):
 *   PCI_MMIO_BASE..PCI_MMIO_END  BAR window (memory BARs, naturally aligned)
 *   ports PCI_IO_BASE..PCI_IO_END  I/O BAR window (where SeaBIOS puts them too)
 *   PCI_ECAM_BASE                ECAM, 1 MiB: 32 devices x 8 functions x 4 KiB
 *
 * Threads: configuration and BAR accesses come from vCPU threads, interrupts
 * (pci_msix_notify) from the event-loop thread; each device has one lock.
 * pci.c holds that lock around every configuration access, every call of a
 * device's BAR ops and every hook below, so device models never take it in
 * those paths (pthread mutexes do not nest). MSI-X state has its own inner
 * lock: pci_msix_notify() and pci_intx_set() may be called with or without
 * the device lock held, from any thread.
 *
 * Decoding: pci registers the whole window [PCI_MMIO_BASE, PCI_MMIO_END) as
 * one MMIO range and dispatches each access to whichever BAR decodes it now
 * (memory decoding on, BAR wholly inside the window); anything else reads
 * all-ones. A BAR the guest moves outside the window stops decoding. I/O BARs
 * work the same way in the port window [PCI_IO_BASE, PCI_IO_END), with the
 * command register's I/O space bit.
 *
 * INTx swizzle: slot s, pin p (1 = INTA) drives IOAPIC pin
 * 16 + (s + p - 1) % 4, which is also what the interrupt line register
 * (0x3c) reads at reset and what the DSDT's _PRT says (src/boot/acpi.c; the
 * MP table lists ISA interrupts only).
 *
 * A fake VM (vm_fd < 0, as in unit tests and the fuzzer) works: no ioctls
 * are made; MSI-X vectors still get GSIs and, unless --no-irqfd, eventfds
 * that a test can read.
 */
#ifndef HVMM_PCI_H
#define HVMM_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

struct vm;
struct pci_dev;

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MMIO_BASE 0xc0000000ull
#define PCI_MMIO_END 0xe0000000ull
#define PCI_ECAM_BASE 0xe0000000ull
#define PCI_ECAM_SIZE 0x100000ull
#define PCI_IO_BASE 0xc000ull
#define PCI_IO_END 0x10000ull
#define PCI_MAX_SLOTS 32 /* slot 0 is the host bridge */
#define PCI_NUM_BARS 6
#define PCI_CFG_SIZE 4096
#define PCI_MSIX_MAX_VECTORS 64

struct pci_dev_info {
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint32_t class_code; /* 24 bits: base << 16 | sub << 8 | prog-if */
	uint8_t intx_pin;    /* 0: none, 1..4: INTA..INTD */
	const char *name;    /* for messages and statistics ("virtio-blk") */
};

/* Before the vCPUs start. Registers 0xCF8..0xCFF (0xCF9 is handed to the
 * reset control register), the ECAM window and the host bridge at 00:00.0.
 * 0 or -errno. */
int pci_init(struct vm *vm);
void pci_destroy(struct vm *vm);

/* Adds a function on the next free slot of host h's bus 0 (a device's
 * handle: dev_env's pci). NULL and errno on failure (ENOSPC: no slot left,
 * EINVAL: no host). The device lives until pci_destroy(). */
struct pci_host;
struct pci_dev *pci_dev_add(struct pci_host *h, const struct pci_dev_info *info);
/* The device at devfn on bus 0, or NULL. */
struct pci_dev *pci_dev_at(struct vm *vm, unsigned devfn);
/* devfn of a device (slot << 3). */
unsigned pci_dev_devfn(const struct pci_dev *d);

/*
 * A 64-bit prefetchable-off memory BAR of `size` bytes (a power of two,
 * >= 4096), placed now in the PCI window; ops/opaque serve accesses while the
 * command register enables memory decoding (offset relative to the BAR).
 * Returns the guest-physical base, or 0 with errno set. Uses BAR slots
 * `bar` and `bar + 1`.
 */
uint64_t pci_bar_add(struct pci_dev *d, unsigned bar, uint64_t size, const struct bus_ops *ops,
		     void *opaque);

/*
 * The same for any kind of BAR: a 64-bit memory BAR (as pci_bar_add), a
 * 32-bit memory BAR (one slot, size a power of two >= 4096, in the same
 * window) or an I/O BAR (one slot, size a power of two from 4 to 256, placed
 * in the port window and decoding while the command register's I/O space
 * bit is on). Returns the base, or 0 with errno set.
 */
enum pci_bar_type {
	PCI_BAR_TYPE_MEM64 = 0,
	PCI_BAR_TYPE_MEM32,
	PCI_BAR_TYPE_IO,
};
uint64_t pci_bar_add_type(struct pci_dev *d, unsigned bar, enum pci_bar_type type, uint64_t size,
			  const struct bus_ops *ops, void *opaque);

/*
 * Appends a capability of `len` bytes (header included) to the list, with
 * `body` (len - 2 bytes, may be NULL for zeros) after the id/next pair.
 * Returns its offset in configuration space, or 0 when space ran out.
 * `wmask` (may be NULL) marks guest-writable bits of the body, byte by byte.
 */
unsigned pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len, const void *body,
		     const void *wmask);

/* Direct access to configuration space for the device's own model (its lock is held by callers
 * of the hooks below; outside them take pci_dev_lock). */
uint8_t *pci_dev_config(struct pci_dev *d);
void pci_dev_lock(struct pci_dev *d);
void pci_dev_unlock(struct pci_dev *d);
/* True while the guest has memory decoding / bus mastering on. */
bool pci_dev_io_enabled(struct pci_dev *d);
bool pci_dev_mem_enabled(struct pci_dev *d);
bool pci_dev_bus_master(struct pci_dev *d);

/*
 * MSI-X: `nvec` vectors (<= PCI_MSIX_MAX_VECTORS), table and PBA placed at
 * table_off / pba_off inside memory BAR `bar` (which the device model must
 * have added; its bus ops are wrapped so table/PBA accesses never reach them).
 * Each vector the guest unmasks becomes a KVM GSI route (irq_msi_*), and an
 * irqfd unless --no-irqfd. 0 or -errno.
 */
int pci_msix_init(struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off,
		  uint32_t pba_off);
/*
 * Raise vector `vec` (any thread). Masked vector or function, or MSI-X not
 * enabled: the pending bit is set and the message is sent when the guest
 * unmasks. Otherwise the message goes out through the vector's irqfd (posted by
 * KVM, hvmm not on the path) or, with --no-irqfd, KVM_SIGNAL_MSI.
 * Returns true when a message was sent now.
 */
bool pci_msix_notify(struct pci_dev *d, unsigned vec);
bool pci_msix_enabled(struct pci_dev *d);
/* The IOMMU's interrupt remapping changed: recompute every unmasked
 * vector's route (any thread, no PCI or IOMMU lock held). */
void pci_msix_reroute_all(struct vm *vm);

/*
 * MSI (PCI Local Bus 3.0 section 6.8.1), as QEMU's edu has it: one vector,
 * 64-bit message address, no per-vector masking. Added to the capability
 * list; 0 or -errno.
 */
int pci_msi_init(struct pci_dev *d);
/*
 * Send the MSI message now, if the guest enabled MSI (device lock held: BAR
 * ops and hooks have it). With --device intel-iommu the message first goes
 * through interrupt remapping with the device's requester id (a blocked one
 * is recorded as a fault and dropped), then KVM_SIGNAL_MSI. No irqfd: MSI is
 * for test devices here; virtio uses MSI-X. Returns true when a message went
 * out.
 */
bool pci_msi_notify(struct pci_dev *d);
bool pci_msi_enabled(struct pci_dev *d);
/* Messages sent so far and the last one (after remapping), for tests. */
uint64_t pci_msi_last(struct pci_dev *d, uint64_t *addr, uint32_t *data);

/*
 * DMA by the device: len bytes between buf and its address space at addr
 * (write: into the guest), through the IOMMU's translation for its
 * requester id when there is one (iommu_dma_rw). Refused (-EPERM) while the
 * guest has bus mastering off, -EFAULT when an address faults or is not RAM.
 */
int pci_dma_rw(struct pci_dev *d, uint64_t addr, void *buf, uint64_t len, bool write);
/* The requester id the device's DMA and MSIs carry: bus 0, devfn. */
uint16_t pci_dev_sid(const struct pci_dev *d);

/*
 * What firmware does before a guest that expects a BIOS runs: turn memory
 * (and I/O) decoding on, as SeaBIOS does for every device it places. For
 * devices whose guests never enable decoding themselves (kvm-unit-tests'
 * edu library).
 */
void pci_dev_firmware_enable(struct pci_dev *d);

/* INTx: drive the device's pin (routed to an IOAPIC pin). */
void pci_intx_set(struct pci_dev *d, bool level);

/* Called for configuration writes the generic code does not own (below 0x40 it
 * owns command/status/BARs/...; capabilities added with a wmask are written by
 * the generic code and then reported here). May be NULL. */
void pci_dev_set_config_hook(struct pci_dev *d,
			     void (*hook)(void *opaque, unsigned off, unsigned size, uint32_t val),
			     void *opaque);

/*
 * Called whenever where BAR `bar` decodes changes: `decoding` true with its
 * base `addr` (memory decoding turned on, or the guest moved the BAR while it
 * was on), false when accesses stop reaching the device (decoding off, BAR
 * moved out of the window; addr is then the BAR's programmed base). The
 * state after pci_bar_add() is (placed base, not decoding): memory decoding
 * is off until the guest turns it on. For an I/O BAR, addr is a port. Device lock held, vCPU thread. The
 * virtio transport moves its ioeventfds here. May be NULL.
 */
void pci_dev_set_bar_hook(struct pci_dev *d,
			  void (*hook)(void *opaque, unsigned bar, uint64_t addr, bool decoding),
			  void *opaque);
/*
 * Passthrough (vfio.c): configuration space belongs to a real device except
 * the bytes hvmm virtualizes. After this call every byte is the device's:
 * reads come from ops->read, writes go to ops->write (an access is split
 * into runs of same-owner bytes, each at most 4 bytes and inside one dword).
 * pci_dev_cfg_own() then claims ranges for hvmm, whose bytes behave as for
 * an emulated function (d->cfg with its write masks: BARs, MSI-X control);
 * PCI_CFG_HVMM_FWD bytes are hvmm's and their writes also reach the device
 * (the command register: hvmm needs its decode bits, the device its bus
 * master bit). Hooks (config, BAR) run as for emulated functions.
 */
struct pci_cfg_ops {
	uint32_t (*read)(void *opaque, unsigned off, unsigned size);
	void (*write)(void *opaque, unsigned off, unsigned size, uint32_t val);
};
enum pci_cfg_owner {
	PCI_CFG_DEVICE = 0,
	PCI_CFG_HVMM,
	PCI_CFG_HVMM_FWD,
};
void pci_dev_set_config_passthrough(struct pci_dev *d, const struct pci_cfg_ops *ops, void *opaque);
void pci_dev_cfg_own(struct pci_dev *d, unsigned off, unsigned len, enum pci_cfg_owner owner);

/*
 * MSI-X for a passed-through function whose own capability (already copied
 * into configuration space at `cap`) describes the table: as pci_msix_init,
 * but the capability is not added, only its control word made writable (and
 * its table size set to nvec - 1).
 */
int pci_msix_init_at(struct pci_dev *d, unsigned cap, unsigned nvec, unsigned bar, uint32_t table_off,
		     uint32_t pba_off);
/* Vector vec's irqfd eventfd (-1: none, or --no-irqfd): a passed-through
 * device signals it itself, so its interrupts reach KVM without hvmm. */
int pci_msix_vector_fd(struct pci_dev *d, unsigned vec);
/*
 * Passthrough: `hook` is told whenever vector vec's effective mask (its own
 * mask bit, the function mask or MSI-X enable) changes — when it becomes
 * unmasked, after its route is current and a pending message was sent. A
 * device that signals the irqfd itself must stop doing so while the vector
 * is masked and raise pci_msix_notify() instead, which keeps the PBA. Runs
 * with the MSI-X lock held (vCPU thread): it must not call pci_msix_*.
 */
void pci_msix_set_mask_hook(struct pci_dev *d, void (*hook)(void *opaque, unsigned vec, bool masked),
			    void *opaque);

/* The BAR's programmed base (what the guest wrote, or where pci_bar_add put it). */
uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned bar);
struct vm *pci_dev_vm(struct pci_dev *d);
const char *pci_dev_name(const struct pci_dev *d);

/*
 * Configuration space as the guest sees it, for tests and the fuzzer:
 * exactly what a CF8/CFC or ECAM access to bus 0 does (devfn, offset < 4096,
 * 1, 2 or 4 bytes that stay inside one dword; anything else, and absent
 * functions, read all-ones and take no writes).
 */
uint32_t pci_config_read(struct vm *vm, unsigned devfn, unsigned off, unsigned size);
void pci_config_write(struct vm *vm, unsigned devfn, unsigned off, unsigned size, uint32_t val);

/*
 * Snapshots (src/snapshot.h): a function's generic state — configuration
 * space as the guest programmed it (command, BARs, capabilities with MSI and
 * MSI-X control), the INTx output, the MSI-X table and PBA — as part of its
 * device model's payload. Neither may be called with the device lock held
 * (both take it). The load is for a function created from the same
 * configuration: read-only bytes must match, and what the state implies is
 * redone the way a guest's configuration write does it (BAR decoding and
 * the BAR hook, so ioeventfds move; MSI-X routes; the INTx line), without
 * sending any message. 0, or -1 with "<name>: <field>: <why>" in err.
 */
struct snap_buf;
struct snap_cur;
void pci_dev_snap_save(struct pci_dev *d, struct snap_buf *b);
int pci_dev_snap_load(struct pci_dev *d, struct snap_cur *c, char *err, size_t n);

/*
 * Function-level reset. A device model calls pci_dev_reset_mark once its
 * function is complete (BARs, capabilities, firmware's command bits): that
 * state, saved as above, is what pci_dev_reset goes back to — command and
 * BARs as at power-on (decoding off, the BAR hook told so), MSI and MSI-X
 * off with every vector masked and nothing pending, the INTx output low.
 * The model resets its own registers. Neither with the device lock held.
 * mark: 0 or -ENOMEM.
 */
int pci_dev_reset_mark(struct pci_dev *d);
void pci_dev_reset(struct pci_dev *d);

/* One line per live MSI-X vector for statistics: device, vector, GSI, APIC ID,
 * vector number, masked. Returns the number of entries filled (<= max). */
struct pci_irt_entry {
	const char *device;
	unsigned devfn;
	unsigned vector; /* MSI-X table index */
	unsigned gsi;
	unsigned dest_apic_id;
	unsigned guest_vector;
	bool masked;
	bool irqfd;
	uint64_t sent, pending_sent; /* messages sent; of those, sent on unmask */
};
unsigned pci_irt_snapshot(struct vm *vm, struct pci_irt_entry *out, unsigned max);

#endif
