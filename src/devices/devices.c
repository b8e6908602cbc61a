/* Tear-down shared by every device (see devices_priv.h). */
#include "devices.h"

#include "../vm.h"
#include "devices_priv.h"

void devices_free_opaque(struct bus *b, const struct bus_ops *ops, void (*fn)(void *))
{
	for (size_t i = 0; i < b->nr; i++) {
		void *opaque = b->ranges[i].opaque;
		if (b->ranges[i].ops != ops || !opaque)
			continue;
		/* Several ranges may share one state (boot timer: PIO + MMIO). */
		for (size_t j = 0; j < b->nr; j++)
			if (b->ranges[j].opaque == opaque)
				b->ranges[j].opaque = NULL;
		fn(opaque);
	}
}

void devices_destroy(struct vm *vm)
{
	uart_destroy(vm);
	debug_exit_destroy(vm);
	i8042_destroy(vm);
	sysreset_destroy(vm);
	boot_timer_destroy(vm);
	ioapic_destroy(vm);
	pic_destroy(vm);
	pit_destroy(vm);
	fw_cfg_destroy(vm);
	pc_testdev_destroy(vm);
	acpi_pm_destroy(vm);
	rtc_destroy(vm);
}
