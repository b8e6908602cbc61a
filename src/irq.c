#include "irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lapic.h" /* enum lapic_src (a header only: no vCPU code linked) */
#include "util.h"
#include "vm.h"

/*
 * The GSI routing table hvmm owns (the IRT): in split mode one MSI route per
 * programmed IOAPIC pin, and one MSI route per programmed MSI-X vector (or a
 * Hyper-V SINT route, hyperv.c) at GSI >= IRQ_MSI_GSI_BASE. KVM replaces its table on every
 * KVM_SET_GSI_ROUTING, so each change rewrites the whole thing.
 */
struct irq_state {
	pthread_mutex_t lock;
	bool routed[IRQ_IOAPIC_PINS];
	struct kvm_irq_routing_entry route[IRQ_IOAPIC_PINS];
	unsigned nr_msi; /* GSIs handed out: IRQ_MSI_GSI_BASE .. + nr_msi */
	bool msi_routed[IRQ_MAX_MSI_GSIS];
	struct kvm_irq_routing_entry msi[IRQ_MAX_MSI_GSIS];
	uint64_t rewrites; /* KVM_SET_GSI_ROUTING calls that took effect */
	/* Split mode: hvmm's chips (devices/), once vm.c created them. */
	struct pic *pic;
	struct ioapic *ioapic;
};

static struct irq_state *irq_state_get(struct vm *vm)
{
	if (!vm->irq) {
		vm->irq = calloc(1, sizeof(*vm->irq));
		if (vm->irq)
			pthread_mutex_init(&vm->irq->lock, NULL);
	}
	return vm->irq;
}

int irq_mode_parse(const char *s, enum irqchip_mode *out)
{
	if (strcmp(s, "split") == 0)
		*out = IRQCHIP_SPLIT;
	else if (strcmp(s, "kernel") == 0)
		*out = IRQCHIP_KERNEL;
	else if (strcmp(s, "user") == 0)
		*out = IRQCHIP_USER;
	else
		return -1;
	return 0;
}

const char *irq_mode_name(enum irqchip_mode m)
{
	return m == IRQCHIP_KERNEL ? "kernel" : m == IRQCHIP_USER ? "user" : "split";
}

static int irq_commit(struct vm *vm, struct irq_state *s);

int irq_init(struct vm *vm)
{
	if (!irq_state_get(vm))
		return -ENOMEM;
	if (vm->cfg.irqchip == IRQCHIP_USER)
		return 0; /* nothing in KVM: the APICs are made with the vCPUs */
	if (vm->cfg.irqchip == IRQCHIP_SPLIT) {
		/* LAPICs in KVM; the first IRQ_IOAPIC_PINS GSIs are reserved
		 * for hvmm's IOAPIC so KVM can compute which vectors need an
		 * EOI exit from their routes. */
		struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP,
					      .args[0] = IRQ_IOAPIC_PINS };
		return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	/* KVM's PIT answers port 0x61 too (SPEAKER_DUMMY: gate and OUT2). */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	/* Replace KVM's default routes by hvmm's (ISA IRQ 0 on pin 2). */
	pthread_mutex_lock(&vm->irq->lock);
	int r = irq_commit(vm, vm->irq);
	pthread_mutex_unlock(&vm->irq->lock);
	return r;
}

/* The ISA IRQ behind an IOAPIC pin below 16 (-1: pin 0, the 8259's own
 * output on a PC, which no device drives). */
static int irq_pin_isa(unsigned pin)
{
	if (pin >= IRQ_ISA_IRQS || pin == 0)
		return -1;
	return pin == IRQ_PIT_PIN ? 0 : (int)pin;
}

void irq_attach(struct vm *vm, struct pic *pic, struct ioapic *ioapic)
{
	struct irq_state *s = irq_state_get(vm);
	if (s) {
		s->pic = pic;
		s->ioapic = ioapic;
	}
}

struct pic *irq_pic(struct vm *vm)
{
	return vm->irq ? vm->irq->pic : NULL;
}

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	if (pin >= IRQ_IOAPIC_PINS)
		return;
	int isa = irq_pin_isa(pin);
	if (irq_user_ioapic(vm->cfg.irqchip)) {
		/* An ISA line reaches both chips, as on a PC: the 8259 and the
		 * IOAPIC; whichever the guest left unmasked delivers it. */
		struct irq_state *s = vm->irq;
		if (!s)
			return;
		if (isa >= 0)
			pic_set_irq(s->pic, (unsigned)isa, level);
		ioapic_set_line(s->ioapic, pin, level);
		return;
	}
	/* Kernel mode: GSI 0 is ISA IRQ 0, which irq_kernel_defaults sends to
	 * PIC IRQ 0 and IOAPIC pin 2 — where KVM's PIT sends it too. */
	struct kvm_irq_level l = { .irq = isa == 0 ? 0 : pin, .level = level };
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

int irq_firmware_init(struct vm *vm)
{
	if (irq_user_ioapic(vm->cfg.irqchip)) {
		pic_firmware_init(irq_pic(vm));
		pit_firmware_init(dev_find(&vm->devs, "pit", 0));
		return 0;
	}
	/* KVM's own PIC and PIT: the same state through their ioctls. */
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	static const uint8_t base[2] = { 0x08, 0x70 }, imr[2] = { 0xfa, 0xff };
	for (unsigned i = 0; i < 2; i++) {
		chip.chip_id = i == 0 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		struct kvm_pic_state *s = &chip.chip.pic;
		s->irq_base = base[i];
		s->imr = imr[i];
		s->init_state = 0;
		s->init4 = 1;
		s->auto_eoi = 0;
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return -errno;
	}
	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	struct kvm_pit_channel_state *c = &pit.channels[0];
	c->count = 0; /* 65536: KVM loads it and starts the periodic timer */
	c->mode = 2;
	c->rw_mode = 3;  /* LSB then MSB */
	c->read_state = c->write_state = 3;
	c->bcd = 0;
	c->gate = 1;
	c->count_latched = c->status_latched = 0;
	return ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0 ? -errno : 0;
}

void irq_eoi(struct vm *vm, unsigned vector)
{
	if (irq_user_ioapic(vm->cfg.irqchip) && vm->irq)
		ioapic_eoi(vm->irq->ioapic, vector);
}

void irq_pin_fire(struct vm *vm, unsigned pin, bool edge)
{
	if (pin >= IRQ_IOAPIC_PINS)
		return;
	if (vm->cfg.irqchip == IRQCHIP_USER) {
		/* the route this table holds is the message KVM would send */
		struct irq_state *s = vm->irq;
		if (!s)
			return;
		pthread_mutex_lock(&s->lock);
		bool routed = s->routed[pin];
		uint64_t addr = (uint64_t)s->route[pin].u.msi.address_hi << 32 | s->route[pin].u.msi.address_lo;
		uint32_t data = s->route[pin].u.msi.data;
		pthread_mutex_unlock(&s->lock);
		if (routed && vm->lapic_msi)
			vm->lapic_msi(vm, addr, data, LAPIC_SRC_IOAPIC);
		return;
	}
	if (vm->vm_fd < 0)
		return; /* unit tests: no KVM */
	/* KVM fires an MSI route on every level-1 call; the 0 after an edge
	 * only keeps the GSI's recorded level tidy. */
	struct kvm_irq_level l = { .irq = pin, .level = 1 };
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
	if (edge) {
		l.level = 0;
		ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
	}
}

int irq_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	if (vm->cfg.irqchip == IRQCHIP_USER)
		return vm->lapic_msi ? vm->lapic_msi(vm, addr, data, LAPIC_SRC_MSI) : 0;
	if (vm->vm_fd < 0)
		return 0; /* unit tests: no KVM */
	struct kvm_msi msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			       .data = data };
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

/*
 * The routes for GSIs 0-23 with KVM_CREATE_IRQCHIP: GSI n < 16 drives PIC
 * pin n % 8 (master below 8) and IOAPIC pin n, GSIs 16-23 the IOAPIC only —
 * KVM's own defaults, but for ISA IRQ 0 (below), as QEMU sets them. Every
 * table hvmm sets carries them, or KVM_IRQ_LINE on a pin would stop reaching
 * the in-kernel chips; irq_init sets it once at the start for the same reason.
 */
static unsigned irq_kernel_defaults(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		/* GSI 2 would be the cascade on the PIC: hvmm drives ISA IRQ 0
		 * as GSI 0 (irq_set_line), so pin 2 is GSI 0's alone. */
		if (gsi == IRQ_PIT_PIN)
			continue;
		/* ISA IRQ 0 is IOAPIC pin 2 (the MP table's and MADT's
		 * override): KVM's default routes it to pin 0, where no guest
		 * that read those tables looks for the PIT. */
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC,
				       .pin = gsi == 0 ? IRQ_PIT_PIN : gsi },
		};
		if (gsi < IRQ_ISA_IRQS)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
								    KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	return n;
}

/* Give KVM the whole table. Called with s->lock held. */
static int irq_commit(struct vm *vm, struct irq_state *s)
{
	if (vm->vm_fd < 0 || vm->cfg.irqchip == IRQCHIP_USER)
		return 0; /* unit tests, fuzzer, hvmm's own APICs: bookkeeping only */
	const unsigned max = IRQ_IOAPIC_PINS * 2 + IRQ_MAX_MSI_GSIS;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	if (vm->cfg.irqchip == IRQCHIP_KERNEL)
		t->nr = irq_kernel_defaults(t->entries);
	else
		for (unsigned i = 0; i < IRQ_IOAPIC_PINS; i++)
			if (s->routed[i])
				t->entries[t->nr++] = s->route[i];
	for (unsigned i = 0; i < s->nr_msi; i++)
		if (s->msi_routed[i])
			t->entries[t->nr++] = s->msi[i];
	unsigned t_nr = t->nr;
	int r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	free(t);
	if (!r)
		s->rewrites++;
	/* Callers run on guest-driven paths that cannot fail the guest's write;
	 * say it once, so a route that never took effect is not a mystery. */
	static atomic_bool said;
	if (r < 0 && !atomic_exchange(&said, true))
		util_err("KVM_SET_GSI_ROUTING (%u routes): %s; interrupts may be lost", t_nr, strerror(-r));
	return r;
}

static struct kvm_irq_routing_entry irq_msi_entry(unsigned gsi, uint64_t addr, uint32_t data)
{
	return (struct kvm_irq_routing_entry){
		.gsi = gsi,
		.type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			   .data = data },
	};
}

int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data)
{
	if (pin >= IRQ_IOAPIC_PINS || !vm->irq)
		return -EINVAL;
	struct irq_state *s = vm->irq;
	pthread_mutex_lock(&s->lock);
	s->routed[pin] = true;
	s->route[pin] = irq_msi_entry(pin, addr, data);
	int r = irq_commit(vm, s);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int irq_msi_alloc(struct vm *vm)
{
	struct irq_state *s = irq_state_get(vm);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	int gsi = s->nr_msi < IRQ_MAX_MSI_GSIS ? (int)(IRQ_MSI_GSI_BASE + s->nr_msi++) : -ENOSPC;
	pthread_mutex_unlock(&s->lock);
	return gsi;
}

/* The slot of an allocated MSI GSI, or -1. */
static int irq_msi_slot(const struct irq_state *s, unsigned gsi)
{
	if (gsi < IRQ_MSI_GSI_BASE || gsi - IRQ_MSI_GSI_BASE >= s->nr_msi)
		return -1;
	return (int)(gsi - IRQ_MSI_GSI_BASE);
}

/* Give an allocated GSI the route e. The guest rewrites entries it did not
 * change (unmask after mask): then skip the ioctl, which makes KVM rebuild
 * its whole table. */
static int irq_gsi_route(struct vm *vm, const struct kvm_irq_routing_entry *e)
{
	struct irq_state *s = vm->irq;
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	int i = irq_msi_slot(s, e->gsi), r = -EINVAL;
	if (i >= 0) {
		if (s->msi_routed[i] && memcmp(&s->msi[i], e, sizeof(*e)) == 0) {
			r = 0;
		} else {
			s->msi[i] = *e;
			s->msi_routed[i] = true;
			r = irq_commit(vm, s);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int irq_msi_route(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry e = irq_msi_entry(gsi, addr, data);
	return irq_gsi_route(vm, &e);
}

int irq_hv_sint_route(struct vm *vm, unsigned gsi, uint32_t vp, uint32_t sint)
{
	struct kvm_irq_routing_entry e = {
		.gsi = gsi, .type = KVM_IRQ_ROUTING_HV_SINT,
		.u.hv_sint = { .vcpu = vp, .sint = sint },
	};
	return irq_gsi_route(vm, &e);
}

int irq_gsi_raise(struct vm *vm, unsigned gsi)
{
	if (vm->vm_fd < 0)
		return 0; /* unit tests: no KVM */
	/* A plain ioctl on the VM fd, not an irqfd: the vCPU threads have
	 * private fd tables (vcpu.c), so an eventfd made when the guest asks
	 * for a route would exist on that vCPU's thread only. */
	struct kvm_irq_level l = { .irq = gsi, .level = 1 };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int irq_msi_unroute(struct vm *vm, unsigned gsi)
{
	struct irq_state *s = vm->irq;
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	int i = irq_msi_slot(s, gsi), r = -EINVAL;
	if (i >= 0) {
		r = 0;
		if (s->msi_routed[i]) {
			s->msi_routed[i] = false;
			r = irq_commit(vm, s);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

uint64_t irq_rewrites(struct vm *vm)
{
	struct irq_state *s = vm->irq;
	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->rewrites;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void irq_destroy(struct vm *vm)
{
	if (!vm->irq)
		return;
	pthread_mutex_destroy(&vm->irq->lock);
	free(vm->irq);
	vm->irq = NULL;
}
