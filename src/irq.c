#include "irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util.h"
#include "vm.h"

/* The GSI routing table hvmm owns in split mode: one MSI route per IOAPIC
 * pin, rewritten whole (KVM replaces the table on every call). */
struct irq_state {
	pthread_mutex_t lock;
	bool routed[IRQ_IOAPIC_PINS];
	struct kvm_irq_routing_entry route[IRQ_IOAPIC_PINS];
};

int irq_mode_parse(const char *s, enum irqchip_mode *out)
{
	if (strcmp(s, "split") == 0)
		*out = IRQCHIP_SPLIT;
	else if (strcmp(s, "kernel") == 0)
		*out = IRQCHIP_KERNEL;
	else
		return -1;
	return 0;
}

const char *irq_mode_name(enum irqchip_mode m)
{
	return m == IRQCHIP_KERNEL ? "kernel" : "split";
}

int irq_init(struct vm *vm)
{
	vm->irq = calloc(1, sizeof(*vm->irq));
	if (!vm->irq)
		return -ENOMEM;
	pthread_mutex_init(&vm->irq->lock, NULL);
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
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	return ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0 ? -errno : 0;
}

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	if (pin >= IRQ_IOAPIC_PINS)
		return;
	if (vm->cfg.irqchip == IRQCHIP_SPLIT) {
		ioapic_set_line(vm, pin, level);
		return;
	}
	struct kvm_irq_level l = { .irq = pin, .level = level };
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

void irq_eoi(struct vm *vm, unsigned vector)
{
	if (vm->cfg.irqchip == IRQCHIP_SPLIT)
		ioapic_eoi(vm, vector);
}

int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data)
{
	if (pin >= IRQ_IOAPIC_PINS || !vm->irq)
		return -EINVAL;
	struct irq_state *s = vm->irq;
	int r = 0;
	pthread_mutex_lock(&s->lock);
	s->routed[pin] = true;
	s->route[pin] = (struct kvm_irq_routing_entry){
		.gsi = pin,
		.type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			   .data = data },
	};
	if (vm->vm_fd >= 0) {
		struct {
			struct kvm_irq_routing hdr;
			struct kvm_irq_routing_entry e[IRQ_IOAPIC_PINS];
		} t;
		memset(&t, 0, sizeof(t));
		for (unsigned i = 0; i < IRQ_IOAPIC_PINS; i++)
			if (s->routed[i])
				t.e[t.hdr.nr++] = s->route[i];
		if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, &t) < 0)
			r = -errno;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}
