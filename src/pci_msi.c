/*
 * pci_msi: plain MSI (PCI Local Bus 3.0 section 6.8.1) for pci.c's devices:
 * one vector, 64-bit address, no masking — the capability QEMU's edu has.
 *
 * Capability layout (14 bytes): id, next, message control (enable bit 0,
 * MMC 3:1 = 0: one vector, MME 6:4 writable, 64-bit bit 7), address low
 * (dword aligned), address high, data (16 bits). The message is read from
 * configuration space when the device raises it, so whatever the guest last
 * wrote is what goes out; with --device intel-iommu it goes through
 * interrupt remapping first.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "iommu.h"
#include "pci.h"
#include "pci_priv.h"
#include "vm.h"

#define MSI_CAP_LEN 14
#define MSI_OFF_CTRL 2
#define MSI_OFF_ADDR_LO 4
#define MSI_OFF_ADDR_HI 8
#define MSI_OFF_DATA 12

int pci_msi_init(struct pci_dev *d)
{
	if (d->msi_cap)
		return -EEXIST;
	uint8_t body[MSI_CAP_LEN - 2] = { 0 }, wmask[MSI_CAP_LEN - 2] = { 0 };
	pci_set16(body, PCI_MSI_CTRL_64BIT);
	pci_set16(wmask, PCI_MSI_CTRL_ENABLE | PCI_MSI_CTRL_MME);
	pci_set32(wmask + MSI_OFF_ADDR_LO - 2, 0xfffffffcu);
	pci_set32(wmask + MSI_OFF_ADDR_HI - 2, 0xffffffffu);
	pci_set16(wmask + MSI_OFF_DATA - 2, 0xffff);
	unsigned off = pci_cap_add(d, PCI_CAP_ID_MSI, MSI_CAP_LEN, body, wmask);
	if (!off)
		return -ENOSPC;
	d->msi_cap = off;
	return 0;
}

void pci_msi_config_written(struct pci_dev *d)
{
	bool on = pci_cfg16(d, d->msi_cap + MSI_OFF_CTRL) & PCI_MSI_CTRL_ENABLE;
	if (atomic_exchange(&d->msi_enabled, on) != on)
		pci_intx_update(d);
}

bool pci_msi_enabled(struct pci_dev *d)
{
	return d->msi_cap && atomic_load(&d->msi_enabled);
}

bool pci_msi_notify(struct pci_dev *d)
{
	if (!pci_msi_enabled(d))
		return false;
	uint64_t addr = pci_cfg32(d, d->msi_cap + MSI_OFF_ADDR_LO) |
			(uint64_t)pci_cfg32(d, d->msi_cap + MSI_OFF_ADDR_HI) << 32;
	uint32_t data = pci_cfg16(d, d->msi_cap + MSI_OFF_DATA);
	uint64_t orig = addr;
	int r = iommu_remap_msi(d->vm->iommu, pci_dev_sid(d), true, &addr, &data);
	if (r) {
		d->msi_blocked++;
		iommu_ir_fault(d->vm->iommu, pci_dev_sid(d), orig, r);
		return false;
	}
	d->msi_sent++;
	d->msi_last_addr = addr;
	d->msi_last_data = data;
	irq_signal_msi(d->vm, addr, data);
	return true;
}

uint64_t pci_msi_last(struct pci_dev *d, uint64_t *addr, uint32_t *data)
{
	*addr = d->msi_last_addr;
	*data = d->msi_last_data;
	return d->msi_sent;
}
