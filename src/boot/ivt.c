/*
 * A real-mode interrupt vector table for guests hvmm starts without firmware
 * (multiboot, ELF, flat). On a PC the BIOS leaves one: every vector points at
 * a handler, and the hardware IRQs' handlers acknowledge the 8259. A guest
 * that enables interrupts in real mode — kvm-unit-tests' realmode does
 * `sti; hlt` and waits for the BIOS's timer tick — would otherwise jump
 * through a zero vector to 0000:0000 and run the table as code.
 *
 * hvmm's handlers are three stubs in the BIOS area (reserved in every memory
 * map hvmm gives, so the guest does not reuse them):
 *   IRQ 0-7  (vectors 0x08-0x0f)  EOI to the master 8259, IRET
 *   IRQ 8-15 (vectors 0x70-0x77)  EOI to the slave, then the master, IRET
 *   any other vector              IRET
 * The vectors are where pic_firmware_init / irq_firmware_init put the PIC's
 * bases, as a PC BIOS does. The stubs touch only AX, saved on the guest's
 * stack, as an interrupt handler must.
 */
#include <string.h>

#include "boot.h"

static const uint8_t ivt_iret[] = { 0xcf }; /* iret */
static const uint8_t ivt_master[] = {
	0x50,       /* push %ax */
	0xb0, 0x20, /* mov $0x20, %al: non-specific EOI */
	0xe6, 0x20, /* out %al, $0x20 */
	0x58,       /* pop %ax */
	0xcf,       /* iret */
};
static const uint8_t ivt_slave[] = {
	0x50,       /* push %ax */
	0xb0, 0x20, /* mov $0x20, %al */
	0xe6, 0xa0, /* out %al, $0xa0: the slave's request... */
	0xe6, 0x20, /* out %al, $0x20: ...and the master's cascade IRQ 2 */
	0x58,       /* pop %ax */
	0xcf,       /* iret */
};

int boot_ivt_write(struct guest_mem *m)
{
	uint8_t *ivt = mem_ptr(m, BOOT_IVT, BOOT_IVT_VECTORS * 4);
	uint8_t *code = mem_ptr(m, BOOT_IVT_CODE, BOOT_IVT_CODE_SIZE);
	if (!ivt || !code)
		return -1;
	memset(code, 0xcc, BOOT_IVT_CODE_SIZE); /* int3 between the stubs */
	memcpy(code + BOOT_IVT_IRET_OFF, ivt_iret, sizeof(ivt_iret));
	memcpy(code + BOOT_IVT_MASTER_OFF, ivt_master, sizeof(ivt_master));
	memcpy(code + BOOT_IVT_SLAVE_OFF, ivt_slave, sizeof(ivt_slave));
	const uint16_t seg = (uint16_t)(BOOT_IVT_CODE >> 4);
	for (unsigned v = 0; v < BOOT_IVT_VECTORS; v++) {
		uint16_t off = BOOT_IVT_IRET_OFF;
		if (v >= BOOT_IVT_MASTER_BASE && v < BOOT_IVT_MASTER_BASE + 8)
			off = BOOT_IVT_MASTER_OFF;
		else if (v >= BOOT_IVT_SLAVE_BASE && v < BOOT_IVT_SLAVE_BASE + 8)
			off = BOOT_IVT_SLAVE_OFF;
		/* offset, then segment, little-endian */
		uint8_t e[4] = { (uint8_t)off, (uint8_t)(off >> 8), (uint8_t)seg, (uint8_t)(seg >> 8) };
		memcpy(ivt + 4 * v, e, 4);
	}
	return 0;
}
