/*
 * device: what every emulated device is (struct dev_ops) and what it is
 * given (struct dev_env).
 *
 * A device does not get the VM. It gets narrow handles — the buses it
 * registers on, guest memory, the event loop, interrupt lines, a way to ask
 * for the VM to stop — so that what a device can touch is visible in its
 * create function, and a unit test can build one with handles of its own
 * (a line that records levels, a stop request that is counted) instead of
 * overriding VM functions at link time. This is the pattern of Firecracker's
 * devices (the i8042 gets a reset event, not the VM) and of Cloud
 * Hypervisor's and crosvm's device traits.
 *
 * Every device type is one struct dev_ops, listed once in the registry
 * (src/devices/registry.c). vm.c builds a VM by walking that list in order;
 * tear-down, snapshots, pause/resume and statistics walk the instances it
 * created, so adding a device is its file(s) plus one registry line.
 */
#ifndef HVMM_DEVICE_H
#define HVMM_DEVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

struct bus;
struct guest_mem;
struct evloop;
struct pci_host;
struct hyperv;
struct vm_config;
struct json_object;
struct dev_registry;
struct iommu;
struct snap_cur;

/* Why the VM stopped; decides the exit status and the message. */
enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_DEBUG_EXIT,  /* isa-debug-exit write */
	VM_STOP_SHUTDOWN,    /* guest reset / shutdown request */
	VM_STOP_USER,        /* Ctrl-A x, SIGINT, SIGTERM */
	VM_STOP_TIMEOUT,
	VM_STOP_GUEST_CRASH, /* triple fault, internal error, unexpected exit */
	VM_STOP_HOST_ERROR,
	VM_STOP_STRICT_IO,
	VM_STOP_MIGRATED,    /* the guest went on in another hvmm (migrate.h) */
};

/*
 * One interrupt line. The device raises and lowers it; where it ends (the
 * IOAPIC and PIC through irq.c, a PCI function's INTx pin, a test's
 * recorder) is the creator's business. A zero struct is a line to nowhere.
 */
struct irq_line {
	void (*set)(void *ctx, unsigned pin, bool level);
	void *ctx;
	unsigned pin;
};

static inline void irq_line_set(const struct irq_line *l, bool level)
{
	if (l->set)
		l->set(l->ctx, l->pin, level);
}

/*
 * What a device may ask of whoever runs the VM. Every member may be NULL
 * (a unit test that does not care).
 */
struct dev_ctl {
	void *ctx;
	/* End the VM (isa-debug-exit, a reset request, Ctrl-A x). The first
	 * request wins; msg is one line without a newline. */
	void (*stop)(void *ctx, enum vm_stop_reason reason, int status, const char *msg);
	/* S3: park the vCPUs until a wake event (ACPI PM); none: only counted. */
	void (*sleep_s3)(void *ctx);
	/* Wake the boot vCPU out of KVM_RUN (the PIC's INT rose). */
	void (*kick_bsp)(void *ctx);
	/* Set once the VM is stopping: a device blocked on host output gives up. */
	const atomic_bool *stopping;
	/* Set while the VM is paused by the user (lifecycle.c). */
	const atomic_bool *paused;
};

/* dev_ctl's stop with a formatted message; nothing without a stop handle. */
void dev_ctl_stop(const struct dev_ctl *c, enum vm_stop_reason reason, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline bool dev_ctl_stopping(const struct dev_ctl *c)
{
	return c->stopping && atomic_load_explicit(c->stopping, memory_order_relaxed);
}

/*
 * Interrupt delivery below the ISA lines, for the interrupt controllers
 * (the IOAPIC): KVM's MSI routes and the IOMMU's interrupt remapping. Every
 * member may be NULL: no routes (unit tests), no remapping (no IOMMU).
 */
struct dev_msi {
	void *ctx;
	/* Program GSI gsi as an MSI route. 0 or -errno. */
	int (*route)(void *ctx, unsigned gsi, uint64_t addr, uint32_t data);
	/* The message through the IOMMU: 0 (addr/data rewritten or kept), or
	 * the fault that blocks it, recorded by fault() once it is raised. */
	int (*remap)(void *ctx, uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data);
	void (*fault)(void *ctx, uint16_t sid, uint64_t addr, int reason);
	/* Deliver GSI gsi's route now (KVM_IRQ_LINE, or hvmm's own APICs with
	 * --irqchip user); edge: a pulse, else the level stays up. */
	void (*fire)(void *ctx, unsigned gsi, bool edge);
	/* Send one MSI now (KVM_SIGNAL_MSI, or hvmm's own APICs with
	 * --irqchip user): the IOMMU's fault-event interrupt. 0 or -errno. */
	int (*signal)(void *ctx, uint64_t addr, uint32_t data);
	/* A GSI of the device's own for one MSI (a passed-through function's
	 * MSI, delivered by an irqfd): a fresh GSI or -errno, and pointing it
	 * at a message, 0 or -errno. */
	int (*gsi_alloc)(void *ctx);
	int (*gsi_route)(void *ctx, unsigned gsi, uint64_t addr, uint32_t data);
};

/*
 * The snapshot a device's creation or save depends on (virtio-net's kept
 * slirp helper): the file being restored and where a save goes. Every
 * member may be NULL: no snapshot (unit tests, a fresh boot).
 */
struct dev_snapshot {
	void *ctx;
	/* The section name of the file being restored (--restore), before any
	 * device is loaded. 0 (c and version set) or -ENOENT. */
	int (*restore_peek)(void *ctx, const char *name, struct snap_cur *c, uint32_t *version);
	/* true: the save in progress is a snapshot to files (it may be resumed
	 * later on this host), false: a migration's stream. */
	bool (*to_files)(void *ctx);
};

/*
 * What a device is created with. Everything it may use is here; a NULL
 * member is a VM without it (no event loop in most unit tests, no PCI host
 * without PCI). irq_set/irq_ctx make the ISA/GSI lines: dev_env_line().
 */
struct dev_env {
	const struct vm_config *cfg; /* the options: read at create time only */
	struct bus *pio, *mmio;
	struct guest_mem *mem;
	struct evloop *loop;
	struct pci_host *pci;
	int vm_fd;                   /* KVM's VM fd for ioeventfds/irqfds; -1: none (tests) */
	struct dev_ctl ctl;
	void (*irq_set)(void *ctx, unsigned pin, bool level);
	void *irq_ctx;
	struct dev_msi msi;
	struct hyperv *hyperv;       /* the SynIC (--hyperv), or NULL */
	/* The DMA remapping unit PCI functions are behind (--device
	 * intel-iommu), or NULL: a bus address is a guest physical one. */
	struct iommu *iommu;
	struct dev_snapshot snap;
	struct dev_registry *reg;    /* where the instance is recorded */
};

/* An interrupt line to ISA IRQ / GSI pin of env's interrupt controllers. */
static inline struct irq_line dev_env_line(const struct dev_env *env, unsigned pin)
{
	return (struct irq_line){ .set = env->irq_set, .ctx = env->irq_ctx, .pin = pin };
}

/*
 * One device type. Only name and create are required; a NULL operation is
 * a device with nothing to do for it (documented per device).
 */
struct dev_ops {
	/* The registry's name, and the snapshot section's when it has one. */
	const char *name;
	/* What the user reads in "creating <desc>: <reason>". */
	const char *desc;
	/* How many instances the options ask for (disks, NICs); NULL: one. */
	int (*count)(const struct vm_config *cfg);
	/* Build instance i from env: 0 and *dev set, or -errno with a one-line
	 * reason in err (worded for the user: "--disk x.img: locked: ..."; an
	 * empty err becomes "creating <desc>: <strerror>"). DEV_ERR_USAGE
	 * instead of -errno: the user's mistake (exit status HVMM_EXIT_USAGE,
	 * not HVMM_EXIT_HOST). */
	int (*create)(const struct dev_env *env, int i, void **dev, char *err, size_t n);
	/* What the instance gives the devices created after it (the IOMMU:
	 * env->iommu); NULL: nothing. Called by dev_create_all. */
	void (*provide)(void *dev, struct dev_env *env);
	/* Back to the state a fresh create gives, as a hardware reset does. */
	void (*reset)(void *dev);
	/* Stop/restart host-side activity outside the event loop (threads,
	 * host input); the event loop and vCPUs are parked by lifecycle.c. */
	void (*pause)(void *dev);
	void (*resume)(void *dev);
	/* The guest-visible state (snapshot.h); name NULL: nothing to save (a
	 * device that cannot be saved says so with dev_registry_unsupported). */
	struct snap_ops snap;
	/* Counters for --stats-json / metrics, added to obj (the device's own
	 * object under "devices"). */
	void (*stats)(void *dev, struct json_object *obj);
	void (*destroy)(void *dev);
};

/* create's return for an error the user made (a locked disk, a --serial
 * file that cannot be opened): larger than any errno. */
#define DEV_ERR_USAGE (-4096)

/* ---- the registry (src/devices/registry.c) ---- */

/* Every device type, in creation order: also the order of their snapshot
 * sections, so a new type goes where its section may come. */
extern const struct dev_ops *const dev_types[];
extern const size_t dev_nr_types;

/* One device of a VM: its type, which of that type (0, 1, … in creation
 * order: the snapshot section's instance) and its state. */
struct dev_inst {
	const struct dev_ops *ops;
	int index;
	void *dev;
};

struct dev_registry {
	struct dev_inst *v;
	int nr, cap;
	/* The first device that cannot be saved: a snapshot is refused with
	 * "<what> cannot be snapshotted" while it exists. */
	const char *unsupported;
};

/* Record dev as the next instance of ops (for objects another module
 * built: the PCI host bridge, the IOMMU). 0 or -ENOMEM. */
int dev_registry_add(struct dev_registry *r, const struct dev_ops *ops, void *dev);
/* A device that cannot be saved (a host device passed through). */
void dev_registry_unsupported(struct dev_registry *r, const char *what);
/* Create instance i of ops from env and record it in env->reg. 0, or the
 * create's negative value with the user's message in err. */
int dev_create(const struct dev_env *env, const struct dev_ops *ops, int i, char *err, size_t n);
/* Every type of dev_types, as many instances as its count asks for; what
 * one provides is in env from then on. 0, or HVMM_EXIT_USAGE /
 * HVMM_EXIT_HOST with the message in err. */
int dev_create_all(struct dev_env *env, char *err, size_t n);
/* Instance index of the type called name, or NULL. */
void *dev_find(const struct dev_registry *r, const char *name, int index);
/* Every instance's pause (creation order) or resume (reverse order). */
void dev_pause_all(const struct dev_registry *r);
void dev_resume_all(const struct dev_registry *r);
/* Every instance with counters: obj["<name>"] or obj["<name>.<index>"]. */
void dev_stats_all(const struct dev_registry *r, struct json_object *obj);
/* Destroy every instance, the last created first, and empty r. */
void dev_destroy_all(struct dev_registry *r);

#endif
