/*
 * vm: one virtual machine — its KVM fds, guest RAM, the two buses, the
 * devices, the vCPUs and the lifecycle (create → run → stop → destroy).
 */
#ifndef HVMM_VM_H
#define HVMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "bus.h"
#include "controls.h"
#include "inject.h"
#include "devices/devices.h"
#include "irq.h"
#include "memory.h"
#include "ratelimit.h"

#define VM_MAX_CPUS 64

struct api_server;
#define VM_MAX_MODULES 16
#define VM_MAX_CPUID_OPS 32
#define VM_MAX_DISKS 8
#define VM_MAX_NETS 4

/* One --cpuid-mask / --cpuid-set, kept in command-line order. */
struct vm_cpuid_op {
	const char *spec;
	bool set;
};

struct vm_config {
	const char *image;
	uint64_t mem_size;
	int ncpus;
	const char *cmdline;
	enum boot_format boot;
	struct boot_module modules[VM_MAX_MODULES];
	int nr_modules;
	enum serial_mode serial;
	const char *serial_path;
	uint64_t serial_limit; /* bytes of COM1 output written at most; 0: no limit */
	bool stats;
	const char *stats_json;
	bool trace_exits;
	double timeout_s; /* 0: none */
	bool strict_io;
	enum irqchip_mode irqchip;
	int64_t halt_poll_ns; /* -1: KVM's default */
	bool no_hlt_exits;    /* --no-hlt-exits: HLT runs in the guest (controls.h) */
	uint32_t msr_filter[CONTROLS_MAX_MSRS]; /* --msr-filter: these MSRs exit to hvmm */
	int nr_msr_filter;
	struct inject_req inject[INJECT_MAX]; /* --inject: events for vCPU 0 */
	int nr_inject;
	uint64_t walk_addr;   /* --walk: a linear address --stats-json walks (vmstate.c) */
	bool walk_set;
	uint32_t dirty_log_ms; /* --dirty-log: harvest interval; 0: off (dirtylog.h) */
	bool track_dirty_pages; /* --track-dirty-pages: record writes for diff snapshots */
	/* The options that built this VM (options_vm_args), which a snapshot
	 * carries so that a restore needs none (snapshot.h). */
	char **vm_args;
	int nr_vm_args;
	bool start_paused;     /* PUT /snapshot/load without resume_vm: vCPUs wait for PATCH /vm */
	/* Pre-boot API: called once the socket serves this VM (lifecycle.c),
	 * so that the request that started it is answered only then. */
	void (*api_ready)(void *arg);
	void *api_ready_arg;
	const char *api_sock;  /* --api-sock: the control API's socket (api.h), or NULL */
	const char *id;        /* --id: the instance's name in the API */
	struct api_server *api_server; /* the API already serving (pre-boot: preboot.h), or NULL */
	const char *metrics_path; /* --metrics: statistics lines (metrics.h), or NULL */
	const char *restore;   /* --restore: a snapshot's state file (snapshot.h), or NULL */
	const char *restore_mem; /* its mem=: the memory file, else the one the state names */
	const char *incoming;  /* --incoming tcp:ADDR:PORT: receive a live migration (migrate.h) */
	bool acpi;            /* ACPI tables (RSDP at 0xe0000) beside the MP table */
	const char *initrd;   /* Linux initrd */
	bool no_decompress;   /* boot a bzImage through its own decompressor */
	const char *cpu_template; /* NULL: none (what KVM supports) */
	struct vm_cpuid_op cpuid_ops[VM_MAX_CPUID_OPS];
	int nr_cpuid_ops;
	/* PCI / virtio */
	bool console_virtio;  /* --console virtio: hvc0 on stdio instead of COM1 input */
	bool rng;             /* --rng: virtio-rng */
	struct vm_disk {
		const char *path;
		bool readonly;
		struct ratelimit rl; /* bw=, iops=: none when both sizes are 0 */
	} disks[VM_MAX_DISKS];
	int nr_disks;
	const char *net[VM_MAX_NETS]; /* --network SPEC, checked by virtio_net_create */
	int nr_nets;
	bool no_irqfd;        /* device interrupts injected by hvmm (KVM_SIGNAL_MSI) */
	bool no_ioeventfd;    /* queue notifies exit to hvmm */
	bool pc_testdev;      /* --device pc-testdev */
	bool pci_testdev;     /* --device pci-testdev */
	bool edu;             /* --device edu: QEMU's educational PCI device */
	char vfio[4][13];     /* --device vfio,host=BDF: host functions (VFIO_MAX_DEVICES, VFIO_BDF_LEN) */
	int nr_vfio;
	bool intel_iommu;     /* --device intel-iommu: a VT-d unit (iommu.h) */
	int intremap;         /* its intremap=: 1 on, 0 off, -1 auto (on with the split irqchip) */
	bool hyperv;          /* --hyperv: KVM's Hyper-V enlightenments (QEMU's hv-passthrough) */
	bool hyperv_testdev;  /* --device hyperv-testdev (needs hyperv) */
	bool seccomp;         /* --seccomp: per-thread allow-lists (sandbox.c) */
};

struct vcpu;
struct uart;
struct ioapic;
struct pic;
struct pit;
struct boot_timer;
struct irq_state;
struct evloop;
struct pci_host;
struct sysreset;
struct pc_testdev;
struct acpi_pm;
struct pci_testdev;
struct hyperv;
struct hyperv_testdev;
struct rtc;
struct virtio_state;
struct iommu;
struct edu;
struct coalesce;
struct vfio_state;
struct lifecycle;
struct snapshot_reg;
struct metrics;
struct migrate;

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

struct vm {
	struct vm_config cfg;
	int kvm_fd, vm_fd;
	int vcpu_mmap_size;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct boot_entry entry;

	int ncpus;
	struct vcpu *vcpus[VM_MAX_CPUS];
	/* --stats, --stats-json or --trace-exits: time every exit and read KVM's
	 * stats fd. Without them nobody sees the numbers, so the exit path skips
	 * the clock reads (the per-exit goal is +1% over raw KVM). */
	bool stats_on;

	struct irq_state *irq;
	pthread_t main_thread; /* woken by vm_stop() */

	/* devices */
	struct uart *uart;
	struct ioapic *ioapic;
	struct pic *pic;               /* pic.c (split irqchip) */
	struct pit *pit;               /* pit.c (split irqchip) */
	struct boot_timer *boot_timer;
	struct pc_testdev *pc_testdev; /* pc_testdev.c */
	struct acpi_pm *acpi_pm;       /* acpi_pm.c */
	struct pci_testdev *pci_testdev; /* pci_testdev.c */
	struct hyperv *hyperv;         /* hyperv.c: SynIC pages, routes, connections (--hyperv) */
	struct hyperv_testdev *hyperv_testdev; /* hyperv_testdev.c */
	struct rtc *rtc;               /* rtc.c */
	struct iommu *iommu;           /* iommu.c: --device intel-iommu */
	struct edu *edu;               /* edu.c: --device edu */
	struct vfio_state *vfio;       /* vfio_pci.c: --device vfio,host=... */
	struct sysreset *sysreset;   /* reached through PCI's 0xcf8 range when PCI owns it */
	struct evloop *evloop;       /* device back ends' thread (evloop.c) */
	struct pci_host *pci;        /* bus 0 (pci.c) */
	struct virtio_state *virtio; /* virtio devices (virtio_pci.c) */
	struct coalesce *coalesce;   /* KVM's buffered-write ring (coalesce.c) */
	struct inject *inject;       /* inject.c: --inject's timers and results */
	struct dirtylog *dirtylog;   /* dirtylog.c: --dirty-log's bitmaps and samples */
	struct api_server *api;      /* api_server.c: --api-sock */
	struct lifecycle *life;      /* lifecycle.c: pause/resume and their counts */
	struct snapshot_reg *snap;   /* snapshot.c: every device's save and load, in creation order */
	struct metrics *metrics;     /* metrics.c: --metrics */
	struct migrate *migrate;     /* migrate*.c: --incoming's socket, a migration's counts */
	/* Set once a migration succeeded: the guest runs elsewhere now, so
	 * nothing here may touch its RAM or disks again — the event loop ends
	 * without running a callback, the vCPUs without entering the guest. */
	atomic_bool handed_over;

	/*
	 * S3 (suspend to RAM): the vCPU that asked parks the others (they wait
	 * in vcpu_park while `suspended`), waits for the wake event and sets the
	 * boot CPU up at the waking vector. NULL in a VM without vCPU threads
	 * (unit tests): a sleep request is then only counted.
	 */
	void (*sleep_s3)(struct vm *vm);
	/* Wake the boot vCPU out of KVM_RUN (pic.c: its INT rose) unless the
	 * caller is that vCPU. NULL without vCPU threads (unit tests). */
	void (*kick_bsp)(struct vm *vm);
	atomic_bool suspended;
	/* Paused by the user (the API's PATCH /vm): vCPUs park like for S3,
	 * and the event loop too (lifecycle.c). */
	atomic_bool paused;
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	int parked;

	/* stop state: the first vm_stop() wins, the rest are ignored */
	atomic_bool stopping;
	pthread_mutex_t stop_lock;
	enum vm_stop_reason stop_reason;
	int exit_status;
	char stop_msg[256];
	uint64_t stop_ns; /* since hvmm start */
	uint64_t run_ns;  /* since hvmm start: the vCPUs were started (build and load before it) */
};

/* Build the VM from cfg: KVM checks, RAM, irqchip, devices, image, vCPUs.
 * On failure prints one line and returns the hvmm_exit status (> 0). */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Run until the VM stops; returns the process exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/*
 * Stop the VM (any thread, also a vCPU's): records reason/status/message if
 * this is the first stop, then kicks every vCPU out of KVM_RUN.
 */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load_explicit(&vm->stopping, memory_order_relaxed);
}

#endif
