/*
 * vm_config: what the command line (or the API, or a config file) asks of a
 * VM. Its own header so that the devices, which are created from it, need
 * nothing else of the VM (device.h).
 */
#ifndef HVMM_VM_CONFIG_H
#define HVMM_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "controls.h"
#include "devices/devices.h"
#include "inject.h"
#include "irq.h"
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
	/* --posted-interrupts (irqchip user): 1 through PIDs (the default),
	 * 0 every interrupt remapped (delivered by the VMM), -1 not given */
	int posted_interrupts;
	int pcpus; /* --pcpus: at most this many vCPUs in KVM_RUN at once; 0: no limit */
	const char *timeline; /* --timeline: the vCPU states as an HTML page */
	/* Several VMs in one process (a --config-file with "vms"): the
	 * scheduler they share instead of one of the VM's own, this VM's first
	 * vCPU's number in it, and the VM's name in its messages. */
	struct vsched *vsched_shared;
	int vsched_base;
	const char *label;
	int64_t halt_poll_ns; /* -1: KVM's default */
	bool nested;          /* --nested: SVM/VMX in the guest's CPUID (cpuid_nested) */
	bool no_hlt_exits;    /* --no-hlt-exits: HLT runs in the guest (controls.h) */
	bool no_pause_exits;  /* --no-pause-exits: PAUSE never exits (controls.h) */
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

#endif
