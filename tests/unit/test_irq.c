/*
 * Unit tests for irq.c's MSI GSI table (the IRT), and — where /dev/kvm is
 * usable — the real thing: KVM accepts the whole-table KVM_SET_GSI_ROUTING
 * hvmm builds in both irqchip modes, an MSI-X vector's irqfd is bound, and in
 * kernel mode the default PIC/IOAPIC routes of GSIs 0-23 survive an MSI
 * route being added (KVM_IRQ_LINE_STATUS reports -1 for a GSI with no route).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "irq.h"
#include "pci.h"
#include "pci_priv.h"
#include "util.h"
#include "vm.h"
#include "fake_vm.h"

static void test_alloc_and_route_fake(void **state)
{
	(void)state;
	struct vm vm;
	fake_vm_init(&vm);
	/* before irq_init: allocation creates the state */
	assert_int_equal(irq_msi_alloc(&vm), IRQ_MSI_GSI_BASE);
	assert_int_equal(irq_msi_alloc(&vm), IRQ_MSI_GSI_BASE + 1);
	assert_int_equal(irq_msi_route(&vm, IRQ_MSI_GSI_BASE, 0xfee00000, 0x41), 0);
	assert_int_equal(irq_msi_route(&vm, IRQ_MSI_GSI_BASE, 0xfee00000, 0x41), 0); /* unchanged */
	assert_int_equal(irq_msi_unroute(&vm, IRQ_MSI_GSI_BASE), 0);
	assert_int_equal(irq_msi_unroute(&vm, IRQ_MSI_GSI_BASE), 0);
	/* GSIs not handed out, or IOAPIC pins: refused */
	assert_int_equal(irq_msi_route(&vm, IRQ_MSI_GSI_BASE + 2, 0xfee00000, 0), -EINVAL);
	assert_int_equal(irq_msi_route(&vm, 5, 0xfee00000, 0), -EINVAL);
	assert_int_equal(irq_msi_unroute(&vm, 100000), -EINVAL);
	/* the table is finite */
	for (int i = 2; i < IRQ_MAX_MSI_GSIS; i++)
		assert_int_equal(irq_msi_alloc(&vm), IRQ_MSI_GSI_BASE + i);
	assert_int_equal(irq_msi_alloc(&vm), -ENOSPC);
	irq_destroy(&vm);
	assert_null(vm.irq);
	irq_destroy(&vm);
	fake_vm_free(&vm);
}

/* ---- with KVM ---- */

static bool kvm_vm(struct vm *vm, enum irqchip_mode mode)
{
	fake_vm_init(vm);
	vm->cfg.irqchip = mode;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return false;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		close(vm->kvm_fd);
		vm->kvm_fd = -1;
		return false;
	}
	assert_int_equal(irq_init(vm), 0);
	return true;
}

static void kvm_vm_free(struct vm *vm)
{
	pci_destroy(vm);
	fake_vm_free(vm);
	irq_destroy(vm);
	close(vm->vm_fd);
	close(vm->kvm_fd);
}

/* Raise GSI `gsi` (left raised) and say whether `chip`'s pin `pin` saw it:
 * its IRR bit is set while the line is high (the pins are masked, so nothing
 * is delivered and nothing clears it). */
static bool reaches(struct vm *vm, unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_level l = { .irq = gsi, .level = 1 };
	assert_int_equal(ioctl(vm->vm_fd, KVM_IRQ_LINE, &l), 0);
	struct kvm_irqchip c = { .chip_id = chip };
	assert_int_equal(ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &c), 0);
	return chip == KVM_IRQCHIP_IOAPIC ? (c.chip.ioapic.irr >> pin) & 1 : (c.chip.pic.irr >> pin) & 1;
}

static uint64_t no_read(void *o, uint64_t off, unsigned size)
{
	(void)o, (void)off, (void)size;
	return 0;
}

static void no_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	(void)o, (void)off, (void)size, (void)v;
}

static const struct bus_ops no_ops = { .read = no_read, .write = no_write };

/* A device with 2 MSI-X vectors, vector 1 programmed and unmasked through
 * the guest's path (ECAM + BAR), then notified. */
static void msix_through_kvm(struct vm *vm)
{
	assert_int_equal(pci_init(vm), 0);
	const struct pci_dev_info info = { .vendor_id = 0x1af4, .device_id = 0x1044, .name = "t" };
	struct pci_dev *d = pci_dev_add(vm->pci, &info);
	assert_non_null(d);
	uint64_t base = pci_bar_add(d, 0, 0x1000, &no_ops, NULL);
	assert_int_not_equal(base, 0);
	assert_int_equal(pci_msix_init(d, 2, 0, 0x800, 0xc00), 0);
	assert_true(d->msix->v[1].efd >= 0); /* KVM_IRQFD accepted it */
	const struct bus_range *ecam = bus_find(&vm->mmio, PCI_ECAM_BASE, 4);
	const struct bus_range *win = bus_find(&vm->mmio, base, 4);
	ecam->ops->write(ecam->opaque, (8u << 12) + PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	win->ops->write(win->opaque, base - win->base + 0x810, 4, 0xfee00000);
	win->ops->write(win->opaque, base - win->base + 0x818, 4, 0x45);
	win->ops->write(win->opaque, base - win->base + 0x81c, 4, 0);
	ecam->ops->write(ecam->opaque, (8u << 12) + d->msix->cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	/* the route must be in KVM: a direct check of what irq.c did */
	assert_int_equal(irq_msi_route(vm, (unsigned)d->msix->v[1].gsi, 0xfee00000, 0x45), 0);
	assert_int_equal(irq_msi_route(vm, (unsigned)d->msix->v[1].gsi, 0xfee01000, 0x46), 0);
	assert_true(pci_msix_notify(d, 1));
	/* KVM consumed the irqfd write (the counter is read by KVM's wake-up) */
	struct pci_irt_entry e[2];
	assert_int_equal(pci_irt_snapshot(vm, e, 2), 1);
	assert_true(e[0].irqfd);
	assert_int_equal(e[0].guest_vector, 0x45);
}

static void test_kvm_split(void **state)
{
	(void)state;
	struct vm vm;
	if (!kvm_vm(&vm, IRQCHIP_SPLIT))
		skip();
	msix_through_kvm(&vm);
	/* an IOAPIC pin route next to the MSI ones */
	assert_int_equal(irq_route_msi(&vm, 4, 0xfee00000, 0x24), 0);
	kvm_vm_free(&vm);
}

static void test_kvm_kernel_defaults_kept(void **state)
{
	(void)state;
	struct vm vm;
	if (!kvm_vm(&vm, IRQCHIP_KERNEL))
		skip();
	msix_through_kvm(&vm);
	/* after hvmm replaced the table: every ISA and PCI pin still reaches the
	 * in-kernel IOAPIC, and ISA IRQs the PIC pair too — ISA IRQ 0 (GSI 0,
	 * KVM's PIT) on IOAPIC pin 2 as the MP table and MADT say, and GSI 2,
	 * the PIC's cascade, nowhere. (Lines stay high: check GSI 2 first.) */
	assert_false(reaches(&vm, IRQ_PIT_PIN, KVM_IRQCHIP_IOAPIC, IRQ_PIT_PIN));
	assert_false(reaches(&vm, IRQ_PIT_PIN, KVM_IRQCHIP_PIC_MASTER, IRQ_PIT_PIN));
	for (unsigned gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		if (gsi == IRQ_PIT_PIN)
			continue;
		assert_true(reaches(&vm, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? IRQ_PIT_PIN : gsi));
		if (gsi < 16)
			assert_true(reaches(&vm, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					    gsi % 8));
	}
	/* no GSI drives IOAPIC pin 0 (the 8259's output on a PC) */
	assert_false(reaches(&vm, 1, KVM_IRQCHIP_IOAPIC, 0));
	kvm_vm_free(&vm);
}

static void test_kvm_no_irqfd(void **state)
{
	(void)state;
	struct vm vm;
	if (!kvm_vm(&vm, IRQCHIP_SPLIT))
		skip();
	vm.cfg.no_irqfd = true;
	assert_int_equal(pci_init(&vm), 0);
	const struct pci_dev_info info = { .vendor_id = 0x1af4, .device_id = 0x1044, .name = "t" };
	struct pci_dev *d = pci_dev_add(vm.pci, &info);
	assert_int_not_equal(pci_bar_add(d, 0, 0x1000, &no_ops, NULL), 0);
	assert_int_equal(pci_msix_init(d, 1, 0, 0x800, 0xc00), 0);
	assert_int_equal(d->msix->v[0].efd, -1);
	kvm_vm_free(&vm);
}

int main(void)
{
	util_mark_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_and_route_fake),
		cmocka_unit_test(test_kvm_split),
		cmocka_unit_test(test_kvm_kernel_defaults_kept),
		cmocka_unit_test(test_kvm_no_irqfd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
