/*
 * ioapic: one IOAPIC is enough for every machine we boot on (hvmm, QEMU pc
 * and microvm). Its address and the ISA IRQ → pin map come from the MP table
 * (hvmm) or the ACPI MADT (QEMU), looked up through the tables smp.c found.
 */
#include "ioapic.h"

#include "smp.h"

const char *ioapic_source = "default (0xfec00000, pin = IRQ)";
uint64_t ioapic_base;
static unsigned ioapic_pin_of[16];
static bool ioapic_ready;

static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)ioapic_base = reg;
	*(volatile uint32_t *)(ioapic_base + 0x10) = v;
}

static uint32_t ioapic_read(uint32_t reg)
{
	*(volatile uint32_t *)ioapic_base = reg;
	return *(volatile uint32_t *)(ioapic_base + 0x10);
}

static void ioapic_setup(void)
{
	if (ioapic_ready)
		return;
	for (unsigned i = 0; i < 16; i++)
		ioapic_pin_of[i] = i;
	struct smp_irq_info info;
	smp_irq_info(&info);
	ioapic_base = info.ioapic_base ? info.ioapic_base : 0xfec00000;
	for (unsigned i = 0; i < 16; i++)
		if (info.isa_pin[i] >= 0)
			ioapic_pin_of[i] = (unsigned)info.isa_pin[i];
	if (info.source)
		ioapic_source = info.source;
	ioapic_ready = true;
}

bool ioapic_route_isa(unsigned irq, uint8_t vector, uint32_t dest)
{
	ioapic_setup();
	uint32_t ver = ioapic_read(1);
	unsigned pins = ((ver >> 16) & 0xff) + 1;
	if (ver == 0xffffffff || ioapic_pin_of[irq] >= pins)
		return false;
	unsigned pin = ioapic_pin_of[irq];
	ioapic_write(0x11 + 2 * pin, dest << 24);
	ioapic_write(0x10 + 2 * pin, vector); /* fixed, physical, edge, active high, unmasked */
	return true;
}

void ioapic_mask_isa(unsigned irq)
{
	ioapic_setup();
	ioapic_write(0x10 + 2 * ioapic_pin_of[irq], 1u << 16);
}
