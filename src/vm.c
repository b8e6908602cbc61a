#include "vm.h"
#include "lapic.h"
#include "vsched.h"

#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "coalesce.h"
#include "controls.h"
#include "dirtylog.h"
#include "migrate.h"
#include "inject.h"
#include "cpuid.h"
#include "evloop.h"
#include "hyperv.h"
#include "iommu.h"
#include "pci.h"
#include "sandbox.h"
#include "vfio.h"
#include "metrics.h"
#include "snapshot.h"
#include "stats.h"
#include "util.h"
#include "vcpu.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"

/* Where KVM keeps its real-mode TSS and identity map on Intel: three pages
 * and one page just below the BIOS area at the top of 4 GiB, inside the MMIO
 * hole so they never shadow guest RAM. */
#define VM_TSS_ADDR 0xfffbd000ull
#define VM_IDENTITY_MAP_ADDR 0xfffbc000ull

/* SIGUSR2 tells the main thread that vm_stop() happened. */
#define VM_WAKE_SIGNAL SIGUSR2

/* Capabilities hvmm cannot run without, with the name users will search for. */
static const struct {
	int cap;
	const char *name;
} vm_required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
};

static int vm_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vm_env_init(struct vm *vm);
static int vm_fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	util_verr(fmt, ap);
	va_end(ap);
	return status;
}

static int vm_open_kvm(struct vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm_fail(HVMM_EXIT_HOST, "cannot open /dev/kvm: %s%s", strerror(errno),
			       errno == ENOENT ? " (KVM not available on this host)" :
			       errno == EACCES ? " (need root or the kvm group)" : "");
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return vm_fail(HVMM_EXIT_HOST, "KVM API version %d, hvmm needs %d", api, KVM_API_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(vm_required_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, vm_required_caps[i].cap) <= 0)
			return vm_fail(HVMM_EXIT_HOST, "host KVM lacks %s", vm_required_caps[i].name);
	int irqcap = vm->cfg.irqchip == IRQCHIP_SPLIT ? KVM_CAP_SPLIT_IRQCHIP : KVM_CAP_IRQCHIP;
	if (vm->cfg.irqchip == IRQCHIP_USER) {
		/* hvmm's APICs need their MSRs (x2APIC, APIC base, TSC deadline)
		 * to exit to user space (controls.c) */
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR) <= 0 ||
		    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) <= 0)
			return vm_fail(HVMM_EXIT_HOST, "host KVM lacks KVM_CAP_X86_USER_SPACE_MSR "
				       "(--irqchip user needs it; try --irqchip split)");
	} else if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, irqcap) <= 0)
		return vm_fail(HVMM_EXIT_HOST, "host KVM lacks %s (try --irqchip %s)",
			       irqcap == KVM_CAP_SPLIT_IRQCHIP ? "KVM_CAP_SPLIT_IRQCHIP" : "KVM_CAP_IRQCHIP",
			       vm->cfg.irqchip == IRQCHIP_SPLIT ? "kernel" : "split");
	if (vm->cfg.ncpus > ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS))
		return vm_fail(HVMM_EXIT_HOST, "host KVM supports at most %d vCPUs",
			       ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	return 0;
}

/*
 * The CPUID every vCPU sees: what KVM supports on this host, plus KVM's
 * hypervisor leaves (0x40000000 signature "KVMKVMKVM") when the host did not
 * list them, and the hypervisor-present bit (leaf 1 ECX[31]) set here rather
 * than per vCPU so --cpuid-mask hypervisor can take it away. vcpu_create()
 * patches the per-CPU APIC IDs.
 */
static struct kvm_cpuid2 *vm_get_cpuid(int kvm_fd)
{
	for (uint32_t n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (n + 2) * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			bool have_kvm_leaf = false;
			for (uint32_t i = 0; i < c->nent; i++)
				have_kvm_leaf |= c->entries[i].function == 0x40000000;
			struct kvm_cpuid_entry2 *leaf1 = cpuid_entry(c, 1, 0);
			if (leaf1)
				leaf1->ecx |= 1u << 31; /* hypervisor present */
			if (!have_kvm_leaf) {
				c->entries[c->nent++] = (struct kvm_cpuid_entry2){
					.function = 0x40000000, .eax = 0x40000001,
					.ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d, /* "KVMKVMKVM\0\0\0" */
				};
				c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x40000001 };
			}
			return c;
		}
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

/*
 * --hyperv: the Hyper-V leaves KVM can back (KVM_GET_SUPPORTED_HV_CPUID, the
 * system ioctl) replace the hypervisor range 0x40000000-0x400000ff, so the
 * guest sees "Microsoft Hv" and every enlightenment KVM implements — QEMU's
 * hv-passthrough. KVM's own leaves go: a guest reads one signature there.
 * 0, or -errno (ENOTSUP: this KVM cannot say).
 */
static int vm_cpuid_hyperv(int kvm_fd, struct kvm_cpuid2 **cpuid)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID) <= 0)
		return -ENOTSUP;
	struct kvm_cpuid2 *hv = calloc(1, sizeof(*hv) + 64 * sizeof(hv->entries[0]));
	if (!hv)
		return -ENOMEM;
	hv->nent = 64;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_HV_CPUID, hv) < 0) {
		int e = -errno;
		free(hv);
		return e;
	}
	struct kvm_cpuid2 *c = *cpuid;
	struct kvm_cpuid2 *n = calloc(1, sizeof(*n) + (c->nent + hv->nent) * sizeof(n->entries[0]));
	if (!n) {
		free(hv);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function < 0x40000000u || c->entries[i].function > 0x400000ffu)
			n->entries[n->nent++] = c->entries[i];
	for (uint32_t i = 0; i < hv->nent; i++)
		n->entries[n->nent++] = hv->entries[i];
	free(hv);
	free(c);
	*cpuid = n;
	return 0;
}

/* The IOMMU's interrupt remapping changed: every route computed through it. */
static void vm_iommu_routes_changed(void *ctx)
{
	struct vm *vm = ctx;
	ioapic_reroute_all(dev_find(&vm->devs, "ioapic", 0));
	pci_msix_reroute_all(vm);
}

static int vm_create_devices(struct vm *vm)
{
	int r;
	/* The event loop first (device models register fds with it), then bus 0:
	 * a PC always has a host bridge, and PCI must own 0xcf8-0xcff before
	 * the reset control register (sysreset.c) looks for 0xcf9. */
	if ((r = evloop_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "event loop: %s", strerror(-r));
	if ((r = inject_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "--inject: %s", strerror(-r));
	if ((r = pci_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "PCI host bridge: %s", strerror(-r));
	/* The IOMMU is the registry's first type (before the devices behind it
	 * and the IOAPIC, which asks it about every route it computes). Its
	 * intremap=auto is decided here for the DMAR table as iommu.c decides
	 * it: on with hvmm's own IOAPIC (split irqchip or hvmm's APICs), which
	 * interrupt remapping needs. */
	if (vm->cfg.intel_iommu && vm->cfg.intremap < 0)
		vm->cfg.intremap = vm->cfg.irqchip != IRQCHIP_KERNEL;
	/* The SynIC before the devices: hyperv-testdev makes its routes. */
	if (vm->cfg.hyperv && (r = hyperv_create(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "--hyperv: SynIC state: %s", strerror(-r));
	vm_env_init(vm);
	char err[640]; /* a --network or --disk error quotes the option */
	if ((r = dev_create_all(&vm->env, err, sizeof(err))))
		return vm_fail(r, "%s", err);
	vm->iommu = vm->env.iommu; /* the DMAR table, pci.c's DMA and MSIs, statistics */
	iommu_set_routes_hook(vm->iommu, vm_iommu_routes_changed, vm);
	/* The chips irq.c drives and the boot vCPU's ExtINT source. */
	irq_attach(vm, dev_find(&vm->devs, "pic", 0), dev_find(&vm->devs, "ioapic", 0));
	return 0;
}

/*
 * fw_cfg "etc/e820", as QEMU names it: the RAM firmware written for QEMU may
 * use, one {le64 address, le64 length, le32 type} per memory slot (type 1,
 * RAM), the same slots the multiboot and Linux maps describe, and the PCI
 * ECAM window as reserved (type 2), which is what makes Linux trust MCFG.
 */
static int vm_fw_cfg_e820(struct vm *vm)
{
	struct __attribute__((packed)) vm_e820 {
		uint64_t addr, len;
		uint32_t type;
	} e[ARRAY_SIZE(vm->mem.regions) + 1];
	size_t n = 0;
	/* sorted by address: low RAM < ECAM (in the hole) < RAM above 4 GiB */
	e[n++] = (struct vm_e820){ vm->mem.regions[0].gpa, vm->mem.regions[0].size, 1 };
	e[n++] = (struct vm_e820){ PCI_ECAM_BASE, PCI_ECAM_SIZE, 2 };
	for (int i = 1; i < vm->mem.nr_regions; i++)
		e[n++] = (struct vm_e820){ vm->mem.regions[i].gpa, vm->mem.regions[i].size, 1 };
	int r = fw_cfg_add_file(dev_find(&vm->devs, "fw_cfg", 0), "etc/e820", e, n * sizeof(e[0]));
	return r < 0 ? vm_fail(HVMM_EXIT_HOST, "fw_cfg etc/e820: %s", strerror(-r)) : 0;
}

/*
 * What a PC BIOS would have left behind for a guest that boots without one
 * and may rely on it: kvm-unit-tests (multiboot) and real-mode flat binaries
 * find a real-mode IVT whose IRQ handlers EOI the 8259, the 8259 pair at
 * vectors 0x08/0x70 with IRQ 0 unmasked, and the PIT ticking at 18.2 Hz.
 * Linux (bzImage, PVH) programs its chips itself and gets them at reset.
 */
static int vm_firmware_state(struct vm *vm)
{
	enum boot_format f = vm->entry.format;
	if (f != BOOT_MULTIBOOT && f != BOOT_ELF && f != BOOT_FLAT)
		return 0;
	if (boot_ivt_write(&vm->mem) < 0)
		return vm_fail(HVMM_EXIT_HOST, "cannot write the real-mode IVT");
	int r = irq_firmware_init(vm);
	if (r < 0)
		return vm_fail(HVMM_EXIT_HOST, "setting up the PIC and PIT: %s", strerror(-r));
	return 0;
}

static int vm_load_image(struct vm *vm)
{
	uint8_t *img;
	size_t len;
	/* Nothing larger than guest RAM can be loaded into it: such a file is
	 * refused before it is read into hvmm's heap. */
	const uint64_t ram = vm->cfg.mem_size;
	int r = util_read_file(vm->cfg.image, &img, &len, ram);
	if (r == -EFBIG)
		return vm_fail(HVMM_EXIT_IMAGE, "image %s is larger than guest RAM (%llu MiB)", vm->cfg.image,
			       (unsigned long long)(ram >> 20));
	if (r < 0)
		return vm_fail(HVMM_EXIT_IMAGE, "cannot read image %s: %s", vm->cfg.image, strerror(-r));
	uint8_t *initrd = NULL;
	size_t initrd_len = 0;
	/* A PVH kernel (Linux's vmlinux among them) takes its initrd as the first
	 * start_info module: --initrd becomes that module, as in QEMU. */
	struct boot_module mods[VM_MAX_MODULES + 1];
	int nr_mods = 0;
	enum boot_format f = vm->cfg.boot == BOOT_AUTO ? boot_detect(img, len) : vm->cfg.boot;
	if (vm->cfg.initrd && f == BOOT_PVH)
		mods[nr_mods++] = (struct boot_module){ .path = vm->cfg.initrd };
	for (int i = 0; i < vm->cfg.nr_modules; i++)
		mods[nr_mods++] = vm->cfg.modules[i];
	if (vm->cfg.initrd && f != BOOT_PVH) {
		if (f != BOOT_LINUX) {
			free(img);
			return vm_fail(HVMM_EXIT_USAGE, "--initrd needs a Linux or PVH kernel, and %s is %s "
				       "(multiboot kernels take --module)", vm->cfg.image, boot_format_name(f));
		}
		if ((r = util_read_file(vm->cfg.initrd, &initrd, &initrd_len, ram)) < 0) {
			free(img);
			if (r == -EFBIG)
				return vm_fail(HVMM_EXIT_IMAGE, "initrd %s is larger than guest RAM (%llu MiB)",
					       vm->cfg.initrd, (unsigned long long)(ram >> 20));
			return vm_fail(HVMM_EXIT_IMAGE, "cannot read initrd %s: %s", vm->cfg.initrd,
				       strerror(-r));
		}
	}
	struct boot_params_in in = {
		.image = img,
		.image_len = len,
		.image_path = vm->cfg.image,
		.cmdline = vm->cfg.cmdline,
		.modules = mods,
		.nr_modules = nr_mods,
		.ncpus = vm->cfg.ncpus,
		.format = vm->cfg.boot,
		.initrd = initrd,
		.initrd_len = initrd_len,
		.no_decompress = vm->cfg.no_decompress,
		.acpi_rsdp = vm->cfg.acpi ? BOOT_ACPI_RSDP : 0,
	};
	char err[256] = "";
	r = boot_load(&vm->mem, &in, &vm->entry, err, sizeof(err));
	free(img);
	free(initrd);
	if (r < 0)
		return vm_fail(HVMM_EXIT_IMAGE, "%s: %s", vm->cfg.image, err[0] ? err : "cannot load image");
	if (boot_mptable_write(&vm->mem, vm->cfg.ncpus, IRQ_IOAPIC_ADDR) < 0)
		return vm_fail(HVMM_EXIT_USAGE, "MP table for %d CPUs does not fit", vm->cfg.ncpus);
	/* Both tables describe the same CPUs and IOAPIC: guests that look for
	 * ACPI find the MADT, older ones the MP table. */
	const struct boot_acpi_dmar dmar = { .base = vm->iommu ? IOMMU_BASE : 0,
					     .intremap = vm->cfg.intremap > 0, .haw = IOMMU_HAW,
					     .ioapic_sid = IOMMU_IOAPIC_SID };
	if (vm->cfg.acpi && boot_acpi_write(&vm->mem, vm->cfg.ncpus, IRQ_IOAPIC_ADDR, PCI_ECAM_BASE,
					    &dmar, err, sizeof(err)) < 0)
		return vm_fail(HVMM_EXIT_USAGE, "ACPI tables: %s", err);
	if ((r = vm_firmware_state(vm)))
		return r;
	return vm_fw_cfg_e820(vm);
}

/*
 * Back from S3: the boot CPU starts in real mode at the FACS's waking
 * vector, CS:IP = vector >> 4 : vector & 0xf, the other segments 0 (as
 * SeaBIOS's resume leaves them, and kvm-unit-tests' s3 reads DS:0); the
 * other CPUs get an INIT, which leaves them waiting for a SIPI as after
 * power-on. Memory is as the guest left it. A FACS without a vector means
 * the OS did not prepare a resume: firmware would boot afresh, and hvmm,
 * which has none, stops as at a reset.
 */
static void vm_resume_s3(struct vm *vm)
{
	uint32_t vector = 0;
	if (!vm->cfg.acpi || mem_read(&vm->mem, BOOT_ACPI_FACS + 12, &vector, 4) < 0 || !vector ||
	    vector >= 0x100000) {
		vm_stop(vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK,
			"woke from S3 without a real-mode waking vector (0x%x): reset", vector);
		return;
	}
	acpi_pm_woke(dev_find(&vm->devs, "acpi-pm", 0), true);
	int fd = vm->vcpus[0]->fd;
	struct boot_entry e = { .mode = BOOT_MODE_REAL16, .cs_sel = (uint16_t)(vector >> 4),
				.rip = vector & 0xf };
	struct kvm_sregs sr;
	int r = boot_x86_apply(fd, &e);
	if (r == 0 && ioctl(fd, KVM_GET_SREGS, &sr) == 0) {
		sr.cr0 = 0x10;                    /* ET: everything else off, as after reset */
		sr.ds = sr.es = sr.fs = sr.gs = sr.ss; /* selector 0, base 0 */
		sr.idt.base = 0;                  /* the real-mode interrupt vector table */
		sr.idt.limit = 0x3ff;
		r = ioctl(fd, KVM_SET_SREGS, &sr) < 0 ? -errno : 0;
	} else if (r == 0) {
		r = -errno;
	}
	if (r < 0) {
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "resuming from S3: %s", strerror(-r));
		return;
	}
	for (int i = 1; i < vm->ncpus; i++) {
		/* an INIT IPI through the LAPIC (KVM's or hvmm's): delivery mode 5, assert */
		int me = irq_signal_msi(vm, 0xfee00000u | (uint32_t)i << 12, 5u << 8 | 1u << 14);
		if (me < 0)
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "S3 resume: INIT to vCPU %d: %s",
				i, strerror(-me));
	}
}

/*
 * S3, suspend to RAM, on the thread of the vCPU that wrote SLP_EN: park the
 * other vCPUs, sleep until the wake event (the RTC alarm, when the guest
 * enabled RTC wake; nothing else can wake the machine, so without it the VM
 * sleeps until it is stopped), then resume. Polls every 10 ms: a sleeping
 * VM costs next to nothing and wakes within 10 ms of its alarm.
 */
static void vm_sleep_s3(struct vm *vm)
{
	struct vcpu *self = vcpu_current();
	struct acpi_pm *pm = dev_find(&vm->devs, "acpi-pm", 0);
	struct rtc *rtc = dev_find(&vm->devs, "rtc", 0);
	atomic_store(&vm->suspended, true);
	for (int i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i] != self)
			vcpu_kick(vm->vcpus[i]);
	pthread_mutex_lock(&vm->park_lock);
	while (vm->parked < vm->ncpus - (self ? 1 : 0) && !vm_stopping(vm)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&vm->park_cond, &vm->park_lock, &ts);
	}
	pthread_mutex_unlock(&vm->park_lock);
	while (!vm_stopping(vm)) {
		/* a paused VM does not wake: its alarm fires once it is resumed */
		if (!atomic_load(&vm->paused) && acpi_pm_rtc_wake_enabled(pm) && rtc_alarm_due(rtc)) {
			vm_resume_s3(vm);
			break;
		}
		struct timespec nap = { 0, 10000000 };
		nanosleep(&nap, NULL);
	}
	pthread_mutex_lock(&vm->park_lock);
	atomic_store(&vm->suspended, false);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

/* The 8259's INT rose (any thread): the boot vCPU must leave KVM_RUN — it
 * may be halted — to inject it. vcpu_kick ignores a vCPU not (or no
 * longer) running; the boot vCPU itself re-checks before its next KVM_RUN. */
static void vm_kick_bsp(struct vm *vm)
{
	struct vcpu *bsp = vm->ncpus > 0 ? vm->vcpus[0] : NULL;
	if (bsp && vcpu_current() != bsp)
		vcpu_kick(bsp);
}

/* ---- what the devices get (struct dev_env): the VM behind narrow handles ---- */

static void vm_env_irq(void *ctx, unsigned pin, bool level)
{
	irq_set_line(ctx, pin, level);
}

static void vm_env_stop(void *ctx, enum vm_stop_reason reason, int status, const char *msg)
{
	vm_stop(ctx, reason, status, "%s", msg);
}

static void vm_env_sleep_s3(void *ctx)
{
	vm_sleep_s3(ctx);
}

static int vm_env_restore_peek(void *ctx, const char *name, struct snap_cur *c, uint32_t *version)
{
	return snapshot_restore_peek(ctx, name, c, version);
}

static bool vm_env_to_files(void *ctx)
{
	return snapshot_to_files(ctx);
}

static void vm_env_kick_bsp(void *ctx)
{
	vm_kick_bsp(ctx);
}

static int vm_env_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_route_msi(ctx, gsi, addr, data);
}

static int vm_env_gsi_alloc(void *ctx)
{
	return irq_msi_alloc(ctx);
}

static int vm_env_gsi_route(void *ctx, unsigned gsi, uint64_t addr, uint32_t data)
{
	return irq_msi_route(ctx, gsi, addr, data);
}

static int vm_env_remap(void *ctx, uint16_t sid, bool verify_sid, uint64_t *addr, uint32_t *data)
{
	return iommu_remap_msi(((struct vm *)ctx)->env.iommu, sid, verify_sid, addr, data);
}

static void vm_env_fault(void *ctx, uint16_t sid, uint64_t addr, int reason)
{
	iommu_ir_fault(((struct vm *)ctx)->env.iommu, sid, addr, reason);
}

static void vm_env_fire(void *ctx, unsigned gsi, bool edge)
{
	irq_pin_fire(ctx, gsi, edge);
}

static int vm_env_signal(void *ctx, uint64_t addr, uint32_t data)
{
	return irq_signal_msi(ctx, addr, data);
}

/* Once the event loop, PCI host and SynIC exist; the IOMMU's handle is
 * filled in by its type (provide) as dev_create_all goes. */
static void vm_env_init(struct vm *vm)
{
	vm->env = (struct dev_env){
		.cfg = &vm->cfg,
		.pio = &vm->pio,
		.mmio = &vm->mmio,
		.mem = &vm->mem,
		.loop = vm->evloop,
		.pci = vm->pci,
		.vm_fd = vm->vm_fd,
		.ctl = { .ctx = vm, .stop = vm_env_stop, .sleep_s3 = vm_env_sleep_s3,
			 .kick_bsp = vm_env_kick_bsp, .stopping = &vm->stopping, .paused = &vm->paused },
		.irq_set = vm_env_irq,
		.irq_ctx = vm,
		.msi = { .ctx = vm, .route = vm_env_route, .remap = vm_env_remap, .fault = vm_env_fault,
			 .fire = vm_env_fire, .signal = vm_env_signal, .gsi_alloc = vm_env_gsi_alloc,
			 .gsi_route = vm_env_gsi_route },
		.hyperv = vm->hyperv,
		.reg = &vm->devs,
		.snap = { .ctx = vm, .restore_peek = vm_env_restore_peek, .to_files = vm_env_to_files },
	};
}

/* --pcpus' scheduler: preempt a vCPU (out of KVM_RUN at once) and tell a
 * waiting one to stop waiting (the VM ends, pauses or sleeps). */
void vm_vsched_kick(void *ctx, int id)
{
	struct vm *vm = ctx;
	if (id >= 0 && id < vm->ncpus)
		vcpu_kick(vm->vcpus[id]);
}

bool vm_vsched_give_up(void *ctx)
{
	struct vm *vm = ctx;
	return vm_stopping(vm) || atomic_load(&vm->paused) || atomic_load(&vm->suspended);
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	/* irqfds need an in-kernel irqchip: with hvmm's own APICs every device
	 * interrupt is sent by hvmm (--stats says so) */
	if (cfg->irqchip == IRQCHIP_USER)
		vm->cfg.no_irqfd = true;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->ncpus = 0;
	vm->stats_on = cfg->stats || cfg->stats_json || cfg->trace_exits;
	if (cfg->timeline && !(vm->timeline_f = fopen(cfg->timeline, "w")))
		return vm_fail(HVMM_EXIT_USAGE, "--timeline %s: %s", cfg->timeline, strerror(errno));
	if (cfg->vsched_shared) {
		/* several VMs, one set of slots: this VM's vCPUs are its ids
		 * vsched_base.. */
		vm->vsched = cfg->vsched_shared;
		for (int i = 0; i < cfg->ncpus; i++)
			vsched_bind(vm->vsched, vm_vsched_id(vm, i), vm, i);
	} else if (cfg->pcpus) {
		vm->vsched_owned = true;
		vm->vsched = calloc(1, sizeof(*vm->vsched));
		if (!vm->vsched || vsched_init(vm->vsched, cfg->pcpus, 0, vm_vsched_kick, vm_vsched_give_up, vm) < 0) {
			free(vm->vsched);
			vm->vsched = NULL;
			return vm_fail(HVMM_EXIT_HOST, "--pcpus: out of memory");
		}
	}
	vm->main_thread = pthread_self();
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->park_lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	int r;
	/* The API's socket first: a path in the way is the user's error, told
	 * before anything is built. */
	if ((r = lifecycle_init(vm)))
		return r;
	if ((r = metrics_open(vm)))
		return r;
	/* --incoming's port too: taken, or the user hears so before the build. */
	if (cfg->incoming && (r = migrate_listen(vm)))
		return r;
	if ((r = vm_open_kvm(vm)))
		return r;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = VM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	/* A halted vCPU makes KVM poll for a wake-up before it sleeps (200 us by
	 * default), which burns most of a core here while a guest idles. hvmm
	 * chooses: 0 unless --halt-poll says otherwise. */
	if (cfg->halt_poll_ns >= 0 && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HALT_POLL) > 0) {
		struct kvm_enable_cap hp = { .cap = KVM_CAP_HALT_POLL,
					     .args[0] = (uint64_t)cfg->halt_poll_ns };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &hp) < 0)
			return vm_fail(HVMM_EXIT_HOST, "KVM_CAP_HALT_POLL: %s", strerror(errno));
	}
	if ((r = controls_apply(vm)))
		return r;
	if ((r = mem_init(&vm->mem, cfg->mem_size)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "cannot map %llu MiB of guest RAM: %s",
			       (unsigned long long)(cfg->mem_size >> 20), strerror(-r));
	/* A snapshot's RAM replaces the fresh RAM before anything takes its
	 * address (KVM's slots, io_uring's registered buffers). */
	if (cfg->restore && (r = snapshot_restore_open(vm)))
		return r;
	if ((r = dirtylog_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "--dirty-log: %s", strerror(-r));
	if (cfg->track_dirty_pages && (r = snapshot_track_start(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "--track-dirty-pages: %s", strerror(-r));
	if ((r = mem_register_slots(&vm->mem, vm->vm_fd, dirtylog_slot_flags(vm))) < 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-r));
	if ((r = irq_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "creating the %s irqchip: %s", irq_mode_name(cfg->irqchip),
			       strerror(-r));
	if ((r = vm_create_devices(vm)))
		return r;
	/* hvmm's local APICs have no saved form yet */
	if (cfg->irqchip == IRQCHIP_USER)
		dev_registry_unsupported(&vm->devs, "a VM with --irqchip user (hvmm's local APICs)");
	/* A restored guest's RAM already holds its kernel, tables and all (a
	 * migrated one's will). */
	if (cfg->restore || cfg->incoming ? (r = vm_fw_cfg_e820(vm)) : (r = vm_load_image(vm)))
		return r;

	struct kvm_cpuid2 *cpuid = vm_get_cpuid(vm->kvm_fd);
	if (!cpuid)
		return vm_fail(HVMM_EXIT_HOST, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	if (cfg->hyperv && (r = vm_cpuid_hyperv(vm->kvm_fd, &cpuid)) < 0) {
		free(cpuid);
		return vm_fail(HVMM_EXIT_HOST, "--hyperv: KVM_GET_SUPPORTED_HV_CPUID: %s", strerror(-r));
	}
	/* hvmm's APICs: what they implement, before the user's policy */
	if (cfg->irqchip == IRQCHIP_USER)
		cpuid_user_apic(cpuid);
	if (cpuid_nested(cpuid, cfg->nested) < 0) {
		free(cpuid);
		return vm_fail(HVMM_EXIT_HOST, "--nested: this host's KVM offers no SVM or VMX to guests "
			       "(kvm_amd/kvm_intel loaded with nested=0, or the CPU has neither)");
	}
	/* The policy: template first, then each mask/set in command-line order,
	 * so a later option can undo part of an earlier one. */
	char err[192];
	if (cfg->cpu_template && cpuid_apply_template(cpuid, cfg->cpu_template, err, sizeof(err)) < 0) {
		free(cpuid);
		return vm_fail(HVMM_EXIT_USAGE, "--cpu-template: %s", err);
	}
	for (int i = 0; i < cfg->nr_cpuid_ops; i++) {
		const struct vm_cpuid_op *op = &cfg->cpuid_ops[i];
		if (cpuid_apply_spec(cpuid, op->spec, op->set, err, sizeof(err)) < 0) {
			free(cpuid);
			return vm_fail(HVMM_EXIT_USAGE, "%s: %s", op->set ? "--cpuid-set" : "--cpuid-mask",
				       err);
		}
	}
	vm->ncpus = cfg->ncpus;
	for (int i = 0; i < cfg->ncpus; i++) {
		if ((r = vcpu_create(vm, i, cpuid, &vm->vcpus[i])) < 0) {
			free(cpuid);
			vm->ncpus = i;
			return vm_fail(HVMM_EXIT_HOST, "creating vCPU %d: %s", i, strerror(-r));
		}
	}
	free(cpuid);
	if ((r = coalesce_init(vm)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "KVM_REGISTER_COALESCED_MMIO: %s", strerror(-r));
	if (cfg->restore)
		return snapshot_restore_apply(vm);
	if (cfg->incoming)
		return migrate_incoming(vm);
	/* Only the BSP gets the loader's entry state; APs wait in the LAPIC for
	 * INIT/SIPI like on real hardware. */
	if ((r = boot_x86_apply(vm->vcpus[0]->fd, &vm->entry)) < 0)
		return vm_fail(HVMM_EXIT_HOST, "setting the boot CPU state: %s", strerror(-r));
	return 0;
}

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->stop_lock);
	bool first = !vm_stopping(vm);
	if (first) {
		vm->stop_reason = reason;
		vm->exit_status = status;
		vm->stop_ns = util_since_start_ns();
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->stop_msg, sizeof(vm->stop_msg), fmt, ap);
		va_end(ap);
		atomic_store(&vm->stopping, true);
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (!first)
		return;
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_kick(vm->vcpus[i]);
	pthread_kill(vm->main_thread, VM_WAKE_SIGNAL);
}

/*
 * The main thread's duties for vm that are due by now: its --timeout, a
 * dirty-log harvest, a metrics line. Returns when it wants to be called
 * next (0: only on a signal).
 */
static uint64_t vm_due(struct vm *vm, uint64_t deadline)
{
	for (;;) {
		uint64_t now = util_now_ns();
		if (deadline && now >= deadline) {
			vm_stop(vm, VM_STOP_TIMEOUT, HVMM_EXIT_TIMEOUT, "timeout after %g s", vm->cfg.timeout_s);
			return 0;
		}
		uint64_t harvest = dirtylog_due_ns(vm);
		if (harvest && now >= harvest) {
			dirtylog_harvest(vm);
			continue;
		}
		uint64_t line = metrics_due_ns(vm);
		if (line && now >= line) {
			char err[160];
			if (metrics_flush(vm, "periodic", err, sizeof(err)) < 0)
				util_err("--metrics: %s", err);
			continue;
		}
		uint64_t next = deadline;
		if (harvest && (!next || harvest < next))
			next = harvest;
		if (line && (!next || line < next))
			next = line;
		return next;
	}
}

/* The threads of a built VM: serial input, the event loop, the API, the
 * vCPUs. A failure stops the VM (its message says which). */
static void vm_start(struct vm *vm)
{
	vm->main_thread = pthread_self();
	bus_freeze(&vm->pio);
	bus_freeze(&vm->mmio);
	/* Serial first: each vCPU thread takes a private copy of the fd table
	 * when it starts (vcpu.c), so every fd a vCPU may use — the UART's
	 * wake-up eventfd among them — must exist before the vCPUs do. */
	if (uart_start(dev_find(&vm->devs, "uart", 0)) < 0)
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "starting serial input: %s", strerror(errno));
	/* The device back ends' thread: before the vCPUs, whose first notify
	 * may already need it. (Its fds — epoll, stop eventfd, every ioeventfd
	 * and irqfd — were all made in vm_create, before any vCPU thread.) */
	int er = evloop_start(vm);
	if (er < 0)
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "starting the event loop: %s", strerror(-er));
	int ar = lifecycle_start(vm);
	if (ar < 0)
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "starting the API thread: %s", strerror(-ar));
	vm->run_ns = util_since_start_ns();
	inject_arm(vm); /* --inject's times count from here */
	for (int i = 0; i < vm->ncpus && !vm_stopping(vm); i++) {
		int r = vcpu_start(vm->vcpus[i]);
		if (r < 0) {
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "starting vCPU %d: %s", i, strerror(-r));
			break;
		}
	}
}

/* A stopped VM's end: its threads joined, its last words and numbers
 * written. Returns its exit status. */
static int vm_finish(struct vm *vm)
{
	lifecycle_stop(vm); /* no request after the stop; a paused VM unparks to end */
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_join(vm->vcpus[i]);
	dirtylog_harvest(vm); /* what the guest wrote since the last interval */
	/* No vCPU can kick a queue any more: stop the back ends. */
	evloop_stop(vm);
	uart_stop(dev_find(&vm->devs, "uart", 0));
	/* Quiet for the guest's own exits (debug-exit, shutdown); loud otherwise.
	 * With several VMs in the process, each line names its VM. */
	const char *label = vm->cfg.label ? vm->cfg.label : "";
	const char *sep = vm->cfg.label ? ": " : "";
	if (vm->stop_reason != VM_STOP_DEBUG_EXIT && vm->stop_reason != VM_STOP_SHUTDOWN &&
	    vm->stop_reason != VM_STOP_USER)
		util_err("%s%s%s", label, sep, vm->stop_msg);
	else if (vm->stop_reason == VM_STOP_SHUTDOWN || vm->cfg.stats)
		util_err("%s%s%s", label, sep, vm->stop_msg);
	if (vm->metrics) {
		char err[160];
		if (metrics_flush(vm, "stop", err, sizeof(err)) < 0)
			util_err("--metrics: %s", err);
	}
	if (vm->cfg.stats)
		stats_print(vm, stderr);
	if (vm->cfg.stats_json && stats_write_json(vm, vm->cfg.stats_json) < 0)
		util_err("cannot write %s", vm->cfg.stats_json);
	if (vm->timeline_f) {
		if (lapic_timeline_write(vm, vm->timeline_f, util_now_ns()) < 0)
			util_err("--timeline %s: nothing recorded or not written", vm->cfg.timeline);
		fclose(vm->timeline_f);
		vm->timeline_f = NULL;
	}
	return vm->exit_status;
}

int vm_run_all(struct vm **vms, int n)
{
	if (n < 1 || n > VM_RUN_MAX)
		return HVMM_EXIT_USAGE;
	/* A migrated guest: its disks locked and the source told, or it does
	 * not run here at all. */
	for (int i = 0; i < n; i++) {
		int mr = migrate_incoming_go(vms[i]);
		if (mr)
			return mr;
	}
	/* Every thread inherits this mask: SIGINT/TERM/HUP and the stop wake-up
	 * are taken only by the main thread's sigwait; the kick signal only by
	 * vCPU threads, which unblock it themselves. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, VM_WAKE_SIGNAL);
	sigset_t blocked = set;
	sigaddset(&blocked, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	if (vcpu_signals_init() < 0) {
		util_err("sigaction: %s", strerror(errno));
		return HVMM_EXIT_HOST;
	}
	for (int i = 0; i < n; i++)
		vm_start(vms[i]);
	/* Last, after every other thread started: they would inherit it. */
	struct sandbox_main_opts mo = { .stats_json = false };
	for (int i = 0; i < n; i++)
		mo.stats_json |= vms[i]->cfg.stats_json != NULL;
	int sr = sandbox_enter(SANDBOX_MAIN, &mo);
	for (int i = 0; i < n && sr < 0; i++)
		vm_stop(vms[i], VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "main: seccomp: %s", strerror(-sr));
	/*
	 * The main thread serves every VM: each one's timeout, harvests and
	 * metrics lines, and its end as soon as it stops (the others run on).
	 * A signal from the user stops them all. The process's status is the
	 * first VM's (in the order given) that ended with one, else 0.
	 */
	uint64_t deadline[VM_RUN_MAX] = { 0 };
	bool done[VM_RUN_MAX] = { false };
	int status = 0, left = n;
	uint64_t t0 = util_now_ns();
	for (int i = 0; i < n; i++)
		if (vms[i]->cfg.timeout_s > 0)
			deadline[i] = t0 + (uint64_t)(vms[i]->cfg.timeout_s * 1e9);
	int statuses[VM_RUN_MAX] = { 0 };
	while (left > 0) {
		uint64_t until = 0;
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			uint64_t next = vm_stopping(vms[i]) ? 0 : vm_due(vms[i], deadline[i]);
			if (vm_stopping(vms[i])) {
				statuses[i] = vm_finish(vms[i]);
				done[i] = true;
				left--;
				continue;
			}
			if (next && (!until || next < until))
				until = next;
		}
		if (left == 0)
			break;
		siginfo_t si;
		int sig;
		if (until) {
			uint64_t now = util_now_ns();
			uint64_t wait = until > now ? until - now : 0;
			struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
			sig = sigtimedwait(&set, &si, &ts);
		} else {
			sig = sigwaitinfo(&set, &si);
		}
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
			for (int i = 0; i < n; i++)
				vm_stop(vms[i], VM_STOP_USER, 128 + sig, "terminated by signal %d (%s)", sig,
					strsignal(sig));
	}
	for (int i = 0; i < n && !status; i++)
		status = statuses[i];
	return status;
}

int vm_run(struct vm *vm)
{
	return vm_run_all(&vm, 1);
}

void vm_destroy(struct vm *vm)
{
	lifecycle_destroy(vm); /* the socket file is removed */
	coalesce_destroy(vm); /* its ring is a page of vCPU 0's mapping */
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	vm->ncpus = 0;
	evloop_stop(vm); /* vm_run did, unless vm_create failed half-way */
	/* Every device the registry created, the last first (they unregister
	 * from the event loop; the PCI functions, virtio's and vfio's too, stay
	 * on pci.c's bus with their hooks cleared until pci_destroy), so the
	 * IOMMU, created first, goes last. */
	dev_destroy_all(&vm->devs);
	vm->iommu = vm->env.iommu = NULL;
	hyperv_destroy(vm); /* its retry timer is on the event loop */
	inject_destroy(vm); /* so are its timers */
	evloop_destroy(vm);
	pci_destroy(vm);
	snapshot_registry_free(vm);
	metrics_close(vm);
	migrate_destroy(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	mem_free(&vm->mem);
	dirtylog_destroy(vm);
	irq_destroy(vm);
	if (vm->timeline_f) {
		fclose(vm->timeline_f); /* a VM that never ran: left empty */
		vm->timeline_f = NULL;
	}
	if (vm->vsched && vm->vsched_owned) {
		vsched_destroy(vm->vsched);
		free(vm->vsched);
	}
	vm->vsched = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}
