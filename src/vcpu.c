#include "vcpu.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "coalesce.h"
#include "hyperv.h"
#include "inject.h"
#include "lapic.h"
#include "sandbox.h"
#include "util.h"
#include "vm.h"

/* The vCPU this thread runs (NULL on other threads): S3 needs to know which
 * vCPU asked to sleep, from inside a device's port handler. */
static __thread struct vcpu *vcpu_self;

struct vcpu *vcpu_current(void)
{
	return vcpu_self;
}

/* S3 or a pause: wait here while the VM is suspended (vm.c's vm_sleep_s3
 * counts us) or paused (lifecycle.c counts us), or until it stops. */
static void vcpu_park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->park_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->park_cond);
	while ((atomic_load(&vm->suspended) || atomic_load(&vm->paused)) && !vm_stopping(vm)) {
		struct timespec ts;
		util_realtime_after(&ts, 100000000);
		pthread_cond_timedwait(&vm->park_cond, &vm->park_lock, &ts);
	}
	vm->parked--;
	pthread_mutex_unlock(&vm->park_lock);
}

/* SIGUSR1 only exists to interrupt KVM_RUN: its handler does nothing. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig;
	/* A kick that lands between the loop's last look and KVM_RUN would
	 * be lost (the APIC timer's signal has no one setting this for it):
	 * make the next KVM_RUN return at once instead. */
	struct vcpu *v = vcpu_self;
	/* (asleep in hvmm after HLT: the APIC timer's signal needs nothing,
	 * the sleep is timed; an exit round trip would be wasted) */
	if (v && v->run && !lapic_vcpu_asleep(v))
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

int vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: KVM_RUN must come back with EINTR */
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

/* Give each vCPU its own APIC ID in every leaf that reports one. (The
 * hypervisor bit is set in vm_get_cpuid(), under the CPUID policy.) */
static void vcpu_patch_cpuid(struct kvm_cpuid2 *c, int id, int ncpus)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)ncpus << 16) | ((uint32_t)id << 24);
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: leaf 1 EBX[23:16] is valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)id;
			break;
		}
	}
}

int vcpu_create(struct vm *vm, int id, const struct kvm_cpuid2 *cpuid, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	v->stats_fd = -1;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		goto fail;
	v->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		goto fail;
	}
	size_t sz = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		goto fail;
	memcpy(c, cpuid, sz);
	vcpu_patch_cpuid(c, id, vm->ncpus);
	bool x2apic = false;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			x2apic = c->entries[i].ecx & (1u << 21);
	int r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0)
		goto fail;
	if (vm->cfg.hyperv) {
		/* The SynIC (message and event pages, SINTs, the synthetic timers
		 * that deliver through it) lives in KVM but must be switched on. */
		struct kvm_enable_cap cap = { .cap = KVM_CAP_HYPERV_SYNIC2 };
		if (ioctl(v->fd, KVM_ENABLE_CAP, &cap) < 0)
			goto fail;
	}
	if (vm->stats_on)
		v->stats_fd = ioctl(v->fd, KVM_GET_STATS_FD, NULL); /* optional: -1 is fine */
	if (vm->cfg.irqchip == IRQCHIP_USER && (r = lapic_vcpu_create(v, x2apic)) < 0) {
		errno = -r;
		goto fail;
	}
	*out = v;
	return 0;
fail:;
	int e = -errno;
	vcpu_destroy(v);
	return e ? e : -EINVAL;
}

/* ---- exit handlers ---- */

static void vcpu_trace(struct vcpu *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vcpu_trace(struct vcpu *v, const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[%10.6f] vcpu%d %s\n", (double)util_since_start_ns() / 1e9, v->id, buf);
}

static uint64_t vcpu_all_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* An access no device claims: reads see all-ones, writes vanish (like an
 * empty ISA/PCI bus); --strict-io makes it fatal so a test can't miss it. */
static void vcpu_unhandled(struct vcpu *v, const char *space, bool write, uint64_t addr,
			   unsigned size)
{
	if (v->vm->cfg.strict_io)
		vm_stop(v->vm, VM_STOP_STRICT_IO, HVMM_EXIT_GUEST_CRASH,
			"--strict-io: unhandled %s %s at 0x%llx (size %u)", space,
			write ? "write" : "read", (unsigned long long)addr, size);
}

static void vcpu_handle_io(struct vcpu *v, uint64_t t0)
{
	struct kvm_run *run = v->run;
	const bool out = run->io.direction == KVM_EXIT_IO_OUT;
	const unsigned size = run->io.size;
	const uint16_t port = run->io.port;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	const struct bus_range *r = bus_find(&v->vm->pio, port, size);
	/* string I/O (rep outs/ins) hands us `count` items in one exit */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		uint64_t val = 0;
		if (out) {
			memcpy(&val, data, size);
			if (r)
				r->ops->write(r->opaque, port - r->base, size, val);
		} else {
			val = r ? r->ops->read(r->opaque, port - r->base, size) : vcpu_all_ones(size);
			memcpy(data, &val, size);
		}
		if (v->vm->cfg.trace_exits)
			vcpu_trace(v, "IO %s port 0x%x size %u %s 0x%llx%s", out ? "out" : "in", port, size,
				   out ? "<-" : "->", (unsigned long long)val, r ? "" : " (unhandled)");
	}
	if (!r)
		vcpu_unhandled(v, "port", out, port, size);
	stats_record_io(&v->stats, out ? STATS_PIO_OUT : STATS_PIO_IN, port, r != NULL,
			t0 ? util_now_ns() - t0 : 0);
}

static void vcpu_handle_mmio(struct vcpu *v, uint64_t t0)
{
	struct kvm_run *run = v->run;
	const uint64_t addr = run->mmio.phys_addr;
	const unsigned len = run->mmio.len;
	const bool write = run->mmio.is_write;
	uint64_t val = 0;
	/* --irqchip user: the xAPIC page is per vCPU, so it is looked up on
	 * the vCPU that made the access, before the bus */
	if (v->lapic && len && len <= 8 && lapic_vcpu_mmio(v, addr, len, write, run->mmio.data)) {
		if (v->vm->cfg.trace_exits)
			vcpu_trace(v, "MMIO %s 0x%llx size %u (local APIC)", write ? "write" : "read",
				   (unsigned long long)addr, len);
		stats_record_io(&v->stats, write ? STATS_MMIO_WRITE : STATS_MMIO_READ, addr, true,
				t0 ? util_now_ns() - t0 : 0);
		return;
	}
	const struct bus_range *r = len && len <= 8 ? bus_find(&v->vm->mmio, addr, len) : NULL;
	if (write) {
		memcpy(&val, run->mmio.data, len <= 8 ? len : 8);
		if (r)
			r->ops->write(r->opaque, addr - r->base, len, val);
	} else {
		val = r ? r->ops->read(r->opaque, addr - r->base, len) : vcpu_all_ones(len);
		memcpy(run->mmio.data, &val, len <= 8 ? len : 8);
	}
	if (v->vm->cfg.trace_exits)
		vcpu_trace(v, "MMIO %s 0x%llx size %u %s 0x%llx%s", write ? "write" : "read",
			   (unsigned long long)addr, len, write ? "<-" : "->", (unsigned long long)val,
			   r ? "" : " (unhandled)");
	if (!r)
		vcpu_unhandled(v, "MMIO", write, addr, len);
	stats_record_io(&v->stats, write ? STATS_MMIO_WRITE : STATS_MMIO_READ, addr, r != NULL,
			t0 ? util_now_ns() - t0 : 0);
}

static void vcpu_crash(struct vcpu *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vcpu_crash(struct vcpu *v, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Dump before stopping so the dump sits right under the cause on stderr. */
	if (!vm_stopping(v->vm)) {
		fprintf(stderr, "hvmm: vcpu%d: %s\n", v->id, msg);
		vcpu_dump(v, stderr);
	}
	vm_stop(v->vm, VM_STOP_GUEST_CRASH, HVMM_EXIT_GUEST_CRASH, "vcpu%d: %s", v->id, msg);
}

static void vcpu_handle_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char extra[128] = "";
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
		snprintf(extra, sizeof(extra), " (instruction emulation failed)");
	vcpu_crash(v, "KVM internal error, suberror %u%s", run->internal.suberror, extra);
}

static void vcpu_handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_stop(v->vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest shut down");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_stop(v->vm, VM_STOP_SHUTDOWN, HVMM_EXIT_OK, "guest reset");
		break;
	default:
		vcpu_crash(v, "system event %u", v->run->system_event.type);
	}
}

/*
 * --hyperv: KVM reports each write of SCONTROL, SIEFP or SIMP (it has acted
 * on it; hyperv.c needs the pages to post messages and set event flags) and
 * passes up the hypercalls it does not handle itself (HvPostMessage, and
 * HvSignalEvent on connections it has no eventfd for).
 */
static void vcpu_handle_hyperv(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	switch (run->hyperv.type) {
	case KVM_EXIT_HYPERV_SYNIC:
		/* The vCPU id is its Hyper-V VP index: KVM's default, and hvmm
		 * never sets HV_X64_MSR_VP_INDEX. */
		hyperv_synic_exit(v->vm, (unsigned)v->id, run->hyperv.u.synic.control,
				  run->hyperv.u.synic.evt_page, run->hyperv.u.synic.msg_page);
		break;
	case KVM_EXIT_HYPERV_HCALL:
		run->hyperv.u.hcall.result = hyperv_hcall(v->vm, run->hyperv.u.hcall.input,
							  run->hyperv.u.hcall.params[0]);
		break;
	case KVM_EXIT_HYPERV_SYNDBG:
		break; /* the synthetic debugger's MSRs: KVM keeps them, no debugger here */
	default:
		vcpu_crash(v, "unknown Hyper-V exit type %u", run->hyperv.type);
		return;
	}
	if (v->vm->cfg.trace_exits)
		vcpu_trace(v, "HYPERV %s", run->hyperv.type == KVM_EXIT_HYPERV_SYNIC ? "SYNIC" : "HCALL");
}

/*
 * An MSR --msr-filter sends here instead of to KVM's emulation: it reads as 0
 * and drops writes, so the guest sees an MSR that holds nothing (never a #GP
 * it did not get without the filter); the exit is the point, counted as
 * X86_RDMSR / X86_WRMSR.
 */
static void vcpu_handle_msr(struct vcpu *v, bool write)
{
	struct kvm_run *run = v->run;
	/* --irqchip user: the APIC's MSRs are hvmm's; any other MSR that KVM
	 * found invalid (not one --msr-filter denied) gets KVM's own #GP. */
	if (v->lapic && lapic_vcpu_msr(v, write)) {
		if (v->vm->cfg.trace_exits)
			vcpu_trace(v, "%s MSR 0x%x (local APIC) 0x%llx%s", write ? "WRMSR" : "RDMSR",
				   run->msr.index, (unsigned long long)run->msr.data,
				   run->msr.error ? " #GP" : "");
		return;
	}
	if (v->lapic && run->msr.reason != KVM_MSR_EXIT_REASON_FILTER) {
		run->msr.error = 1;
		return;
	}
	if (!write)
		run->msr.data = 0;
	run->msr.error = 0;
	if (v->vm->cfg.trace_exits)
		vcpu_trace(v, "%s MSR 0x%x%s", write ? "WRMSR" : "RDMSR", run->msr.index,
			   write ? " (dropped)" : " -> 0");
}

/* One exit, one switch; anything not listed is a guest we don't understand. */
static void vcpu_dispatch(struct vcpu *v, uint64_t t0)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v, t0);
		return;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v, t0);
		return;
	case KVM_EXIT_IOAPIC_EOI:
		if (v->vm->cfg.trace_exits)
			vcpu_trace(v, "IOAPIC_EOI vector %u", run->eoi.vector);
		irq_eoi(v->vm, run->eoi.vector);
		return;
	case KVM_EXIT_INTR:
		return; /* a kick: the loop re-checks the stop flag */
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return; /* asked for by vcpu_extint, which injects on the way back in */
	case KVM_EXIT_SHUTDOWN:
		vcpu_crash(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_handle_system_event(v);
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_handle_internal_error(v);
		return;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_crash(v, "VM entry failed, hardware reason 0x%llx",
			   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return;
	case KVM_EXIT_HYPERV:
		vcpu_handle_hyperv(v);
		return;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		vcpu_handle_msr(v, run->exit_reason == KVM_EXIT_X86_WRMSR);
		return;
	case KVM_EXIT_HLT:
		/* --irqchip user: the thread sleeps in hvmm until its APIC has
		 * an interrupt for it (lapic_vcpu_before_run). */
		if (v->lapic) {
			lapic_vcpu_hlt(v);
			return;
		}
		/* With the LAPIC in KVM a HLT blocks in the kernel; reaching us
		 * means nothing can ever wake this vCPU. */
		vcpu_crash(v, "HLT exit with no in-kernel LAPIC to wake the vCPU");
		return;
	case KVM_EXIT_SET_TPR:
		if (v->lapic)
			return; /* the guest lowered CR8: taken in lapic_vcpu_after_run */
		vcpu_crash(v, "TPR exit without hvmm's local APIC");
		return;
	default:
		vcpu_crash(v, "unexpected exit reason %u (%s)", run->exit_reason,
			   stats_reason_name(run->exit_reason));
		return;
	}
}

/*
 * The 8259's INT line, before each KVM_RUN of the boot vCPU. While it is
 * high: if the last exit said KVM can take an interrupt now, run the INTA
 * cycle and hand KVM the vector (KVM_INTERRUPT queues it as the ExtINT of
 * LINT0); otherwise ask for an exit as soon as it can
 * (request_interrupt_window: the guest sets IF, or leaves an interrupt
 * shadow). KVM honours neither while the guest has LINT0 masked or not in
 * ExtINT mode, as the LAPIC would drop the PIC's request then. The PIC
 * kicks this vCPU when its output rises, so a halted guest wakes.
 */
static void vcpu_extint(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	if (!pic_output(irq_pic(v->vm))) {
		run->request_interrupt_window = 0;
		return;
	}
	if (run->ready_for_interrupt_injection) {
		int vector = pic_intack(irq_pic(v->vm));
		struct kvm_interrupt irq = { .irq = (uint32_t)vector };
		if (vector >= 0 && ioctl(v->fd, KVM_INTERRUPT, &irq) < 0) {
			vm_stop(v->vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST,
				"vcpu%d: KVM_INTERRUPT vector 0x%x: %s", v->id, vector, strerror(errno));
			return;
		}
		run->ready_for_interrupt_injection = 0; /* taken until KVM says again */
		if (v->vm->cfg.trace_exits)
			vcpu_trace(v, "ExtINT vector 0x%x", vector);
	}
	run->request_interrupt_window = pic_output(irq_pic(v->vm));
}

/*
 * Before a pause parks this vCPU: KVM finishes an I/O exit's instruction
 * (an IN's value into RAX, the rest of a string MMIO access) only at the
 * next KVM_RUN, so until then the registers are not the guest's whole
 * state. KVM_RUN with immediate_exit set does that completion and returns
 * EINTR at once without entering the guest (KVM's documented way to make
 * the state consistent before saving it). Completing may itself exit again
 * (a string I/O's next chunk): handle that and go round.
 */
static void vcpu_settle(struct vcpu *v)
{
	for (int i = 0; i < 64 && !vm_stopping(v->vm); i++) {
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		int r = ioctl(v->fd, KVM_RUN, 0);
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (r < 0)
			return; /* EINTR: nothing (more) was pending */
		coalesce_drain(v->vm);
		vcpu_dispatch(v, 0);
		stats_record_exit(&v->stats, v->run->exit_reason, 0);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	char name[16];
	snprintf(name, sizeof(name), "hvmm-vcpu%d", v->id);
	pthread_setname_np(pthread_self(), name);
	/* The kick signal is blocked everywhere else; only this thread, and only
	 * between loop iterations and inside KVM_RUN, takes it. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* With the fd table shared between threads, every KVM_RUN has to take
	 * and drop a reference on the vCPU's file (fdget): measured +0.5..0.8%
	 * per exit here. A private copy of the table makes it a plain lookup.
	 * The price: fds opened after this point are invisible to this thread,
	 * and the copies keep their files open until the thread exits (the VM
	 * closes its fds only after joining the vCPUs). */
	if (unshare(CLONE_FILES) < 0) {
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: unshare(CLONE_FILES): %s",
			v->id, strerror(errno));
		return NULL;
	}
	if (v->lapic) {
		int lr = lapic_vcpu_thread_init(v, VCPU_KICK_SIGNAL);
		if (lr < 0) {
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: APIC timer: %s", v->id,
				strerror(-lr));
			return NULL;
		}
	}
	int sr = sandbox_enter(SANDBOX_VCPU, NULL);
	if (sr < 0) {
		vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: seccomp: %s", v->id, strerror(-sr));
		lapic_vcpu_thread_exit(v);
		return NULL;
	}
	const bool timed = vm->stats_on;
	/* hvmm's 8259 (split irqchip) is wired to the boot CPU's LINT0 */
	const bool extint = v->id == 0 && irq_pic(vm);
	vcpu_self = v;

	while (!vm_stopping(vm)) {
		if (atomic_load(&vm->suspended) || atomic_load(&vm->paused)) {
			if (atomic_load(&vm->paused))
				vcpu_settle(v);
			vcpu_park(v);
			continue;
		}
		if (v->lapic) {
			if (!lapic_vcpu_before_run(v))
				continue; /* stopping or pausing: the top of the loop */
		} else if (extint) {
			vcpu_extint(v);
		}
		if (v->id == 0 && vm->inject)
			inject_vcpu(v); /* --inject's NMIs and exceptions, due now */
		int r = ioctl(v->fd, KVM_RUN, 0);
		uint64_t t0 = timed ? util_now_ns() : 0;
		if (v->lapic)
			lapic_vcpu_exited(v);
		/* Writes KVM buffered go first: the access behind this exit may
		 * read what they set (0xcf8 before 0xcfc). */
		coalesce_drain(vm);
		if (r < 0) {
			/* EINTR: kicked. EAGAIN: an AP still waiting for INIT/SIPI. */
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			vm_stop(vm, VM_STOP_HOST_ERROR, HVMM_EXIT_HOST, "vcpu%d: KVM_RUN: %s", v->id,
				strerror(errno));
			break;
		}
		if (v->lapic)
			lapic_vcpu_after_run(v);
		vcpu_dispatch(v, t0);
		stats_record_exit(&v->stats, v->run->exit_reason, timed ? util_now_ns() - t0 : 0);
	}
	lapic_vcpu_thread_exit(v);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r)
		return -r;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* immediate_exit covers the window where the thread is just about to
	 * enter KVM_RUN and the signal would arrive too early. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	lapic_vcpu_wake(v); /* a vCPU asleep in HLT (user irqchip) */
}

void vcpu_join(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
	if (v->stats_fd >= 0)
		stats_kvm_read(v->stats_fd, &v->stats.kvm);
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	lapic_vcpu_destroy(v);
	if (v->run)
		munmap(v->run, (size_t)v->vm->vcpu_mmap_size);
	if (v->stats_fd >= 0)
		close(v->stats_fd);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

static void vcpu_dump_seg(FILE *f, const char *n, const struct kvm_segment *s)
{
	fprintf(f, "  %-3s sel=0x%04x base=0x%016llx limit=0x%08x type=%u dpl=%u l=%u db=%u\n", n,
		s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl, s->l, s->db);
}

void vcpu_dump(struct vcpu *v, FILE *f)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(f, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(f, "  RIP=0x%016llx RSP=0x%016llx RFLAGS=0x%llx\n", (unsigned long long)regs.rip,
		(unsigned long long)regs.rsp, (unsigned long long)regs.rflags);
	fprintf(f, "  RAX=0x%016llx RBX=0x%016llx RCX=0x%016llx RDX=0x%016llx\n",
		(unsigned long long)regs.rax, (unsigned long long)regs.rbx, (unsigned long long)regs.rcx,
		(unsigned long long)regs.rdx);
	fprintf(f, "  RSI=0x%016llx RDI=0x%016llx RBP=0x%016llx\n", (unsigned long long)regs.rsi,
		(unsigned long long)regs.rdi, (unsigned long long)regs.rbp);
	fprintf(f, "  CR0=0x%llx CR2=0x%llx CR3=0x%llx CR4=0x%llx EFER=0x%llx\n",
		(unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2,
		(unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
		(unsigned long long)sregs.efer);
	vcpu_dump_seg(f, "CS", &sregs.cs);
	vcpu_dump_seg(f, "SS", &sregs.ss);
	vcpu_dump_seg(f, "DS", &sregs.ds);

	/* The instruction bytes: KVM may hand them over with an emulation
	 * failure; otherwise translate RIP and read guest RAM (checked). */
	struct kvm_run *run = v->run;
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		const struct kvm_run *r = run;
		if (r->emulation_failure.ndata >= 3 &&
		    (r->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
			unsigned n = r->emulation_failure.insn_size;
			if (n > sizeof(r->emulation_failure.insn_bytes))
				n = sizeof(r->emulation_failure.insn_bytes);
			fprintf(f, "  instruction bytes (from KVM):");
			for (unsigned i = 0; i < n; i++)
				fprintf(f, " %02x", r->emulation_failure.insn_bytes[i]);
			fputc('\n', f);
		}
	}
	struct kvm_translation tr = { .linear_address = sregs.cs.base + regs.rip };
	if (!(sregs.cr0 & 1)) /* real mode: linear = physical */
		tr.physical_address = tr.linear_address, tr.valid = 1;
	else if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0)
		tr.valid = 0;
	const uint8_t *code = tr.valid ? mem_ptr(&v->vm->mem, tr.physical_address, 16) : NULL;
	if (code) {
		fprintf(f, "  code at RIP (gpa 0x%llx):", (unsigned long long)tr.physical_address);
		for (int i = 0; i < 16; i++)
			fprintf(f, " %02x", code[i]);
		fputc('\n', f);
	} else {
		fprintf(f, "  code at RIP: not in guest RAM\n");
	}
}
