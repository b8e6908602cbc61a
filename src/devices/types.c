/*
 * types: every device type hvmm has, in creation order (device.h). The
 * order is also that of the devices' snapshot sections and of the PCI
 * slots the PCI functions take, both of which a guest or a snapshot file
 * may depend on: a new type goes at the end of its group.
 */
#include "../device.h"
#include "../util.h"
#include "../vm_config.h"
#include "devices.h"
#include "../iommu.h"
#include "../vfio.h"
#include "../virtio/virtio.h"

const struct dev_ops *const dev_types[] = {
	/* the DMA and interrupt remapping unit: before the IOAPIC and the PCI
	 * functions behind it, and its snapshot section right after the PCI
	 * host's (pci_init records the host before any type is created) */
	&iommu_dev_ops,
	/* the legacy platform devices */
	&uart_dev_ops,
	&debug_exit_dev_ops,
	&i8042_dev_ops,
	&sysreset_dev_ops,
	&boot_timer_dev_ops,
	&fw_cfg_dev_ops,
	&acpi_pm_dev_ops,
	&rtc_dev_ops,
	&ioapic_dev_ops,
	&pic_dev_ops,
	&pit_dev_ops,
	&pc_testdev_dev_ops,
	/* PCI functions, slot by slot */
	&pci_testdev_dev_ops,
	&edu_dev_ops,
	&vfio_dev_ops,
	/* behind the SynIC */
	&hyperv_testdev_dev_ops,
	/* virtio: rng, console, disks, networks, whatever the options' order */
	&virtio_rng_dev_ops,
	&virtio_console_dev_ops,
	&virtio_blk_dev_ops,
	&virtio_net_dev_ops,
};

const size_t dev_nr_types = sizeof(dev_types) / sizeof(dev_types[0]);

int dev_create_all(struct dev_env *env, char *err, size_t n)
{
	for (size_t t = 0; t < dev_nr_types; t++) {
		const struct dev_ops *ops = dev_types[t];
		int count = ops->count ? ops->count(env->cfg) : 1;
		for (int i = 0; i < count; i++) {
			int r = dev_create(env, ops, i, err, n);
			if (r < 0)
				return r == DEV_ERR_USAGE ? HVMM_EXIT_USAGE : HVMM_EXIT_HOST;
			if (ops->provide && env->reg)
				ops->provide(env->reg->v[env->reg->nr - 1].dev, env);
		}
	}
	return 0;
}
