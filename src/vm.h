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

#include "device.h"
#include "vm_config.h"

struct vcpu;
struct irq_state;
struct evloop;
struct pci_host;
struct hyperv;
struct iommu;
struct coalesce;
struct lifecycle;
struct snapshot_reg;
struct metrics;
struct migrate;

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

	/* Every device, in creation order (src/devices/registry.c): found by
	 * name with dev_find, walked for snapshots, pauses and tear-down. */
	struct dev_registry devs;
	struct dev_env env; /* what each device was created with (vm_env.c) */
	struct hyperv *hyperv;         /* hyperv.c: SynIC pages, routes, connections (--hyperv) */
	struct iommu *iommu;           /* iommu.c: --device intel-iommu */
	struct evloop *evloop;       /* device back ends' thread (evloop.c) */
	struct pci_host *pci;        /* bus 0 (pci.c) */
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
	/* --irqchip user: hand an MSI to hvmm's local APICs (lapic.c installs it
	 * with the first APIC). A hook rather than a call, so that what links
	 * irq.c without vCPUs (unit tests, fuzzers) does not pull them in. */
	int (*lapic_msi)(struct vm *vm, uint64_t addr, uint32_t data, int src); /* src: enum lapic_src */
	/* --pcpus: hvmm's scheduler of vCPUs onto that many CPUs (vsched.h);
	 * NULL: every vCPU thread enters the guest when it likes */
	struct vsched *vsched;
	bool vsched_owned; /* made for this VM (not cfg.vsched_shared) */
	FILE *timeline_f; /* --timeline: opened at creation, written at the end */

	/* S3 (suspend to RAM): the vCPU that asked parks the others (they wait
	 * in vcpu_park while `suspended`), waits for the wake event and sets the
	 * boot CPU up at the waking vector (vm.c's vm_sleep_s3, the devices'
	 * dev_ctl sleep_s3). */
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
/* Several built VMs in this process, until every one has stopped (a signal
 * stops them all); the status of the first that ended with one, else 0. */
#define VM_RUN_MAX 16
int vm_run_all(struct vm **vms, int n);
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

/* --pcpus' callbacks (vsched.h), ctx a struct vm: preempt its vCPU id
 * (out of KVM_RUN at once); should its waiting vCPU stop waiting (the VM
 * ends, pauses or sleeps). */
void vm_vsched_kick(void *ctx, int id);
bool vm_vsched_give_up(void *ctx);

/* vCPU i's number in vm->vsched, which several VMs may share. */
static inline int vm_vsched_id(const struct vm *vm, int i)
{
	return vm->cfg.vsched_base + i;
}

#endif
