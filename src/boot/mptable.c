#include <string.h>

#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

/* Intel MultiProcessor Specification 1.4, chapter 4. */
#define MP_SPEC_REV 4
#define MP_LAPIC_ADDR 0xfee00000u
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS 16

/* What CPUID.1 might say of a family-6 P6-class CPU: only informational, as
 * every OS asks CPUID itself, but zero looks like a broken table. */
#define MP_CPU_SIGNATURE 0x000306a9u /* family 6, model 0x3a, stepping 9 */
#define MP_CPU_FEATURES 0x0781abfdu  /* fpu, tsc, msr, pae, cx8, apic, ... */

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINT = 3, MP_LINT = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_IOAPIC_ENABLED 0x01

struct __attribute__((packed)) mp_floating {
	char signature[4];
	uint32_t config_addr;
	uint8_t length; /* in 16-byte units */
	uint8_t spec_rev, checksum;
	uint8_t feature[5]; /* all 0: a config table is present, no IMCR (virtual wire) */
};

struct __attribute__((packed)) mp_config {
	char signature[4];
	uint16_t length;
	uint8_t spec_rev, checksum;
	char oem_id[8], product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size, entry_count;
	uint32_t lapic_addr;
	uint16_t ext_length;
	uint8_t ext_checksum, reserved;
};

struct __attribute__((packed)) mp_processor {
	uint8_t type, apic_id, apic_version, flags;
	uint32_t signature, features;
	uint32_t reserved[2];
};

struct __attribute__((packed)) mp_bus {
	uint8_t type, bus_id;
	char bus_type[6];
};

struct __attribute__((packed)) mp_ioapic {
	uint8_t type, id, version, flags;
	uint32_t addr;
};

/* I/O and local interrupt assignment entries share this shape. */
struct __attribute__((packed)) mp_intsrc {
	uint8_t type, irq_type;
	uint16_t flags; /* 0: polarity and trigger conform to the bus */
	uint8_t src_bus, src_irq, dst_id, dst_pin;
};

_Static_assert(sizeof(struct mp_floating) == 16, "MP floating pointer layout");
_Static_assert(sizeof(struct mp_config) == 44, "MP config header layout");
_Static_assert(sizeof(struct mp_processor) == 20, "MP processor entry layout");
_Static_assert(sizeof(struct mp_bus) == 8 && sizeof(struct mp_ioapic) == 8 &&
		       sizeof(struct mp_intsrc) == 8,
	       "MP entry layout");
_Static_assert(sizeof(struct mp_config) + sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
			       (MP_ISA_IRQS + 2) * sizeof(struct mp_intsrc) +
			       BOOT_MPTABLE_MAX_CPUS * sizeof(struct mp_processor) <=
		       BOOT_MPTABLE_FP - BOOT_MPTABLE,
	       "BOOT_MPTABLE_MAX_CPUS processor entries must fit below the floating pointer");
_Static_assert(BOOT_MPTABLE_FP + sizeof(struct mp_floating) <= BOOT_MPTABLE_END,
	       "MP floating pointer inside the reserved area");

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

int boot_mptable_write(struct guest_mem *m, int ncpus, uint64_t ioapic_addr)
{
	if (ncpus < 1 || ncpus > BOOT_MPTABLE_MAX_CPUS || ioapic_addr > UINT32_MAX)
		return -1;
	uint8_t *base = mem_ptr(m, BOOT_MPTABLE, BOOT_MPTABLE_SIZE);
	if (!base)
		return -1;
	memset(base, 0, BOOT_MPTABLE_SIZE);

	struct mp_config *cfg = (struct mp_config *)base;
	uint8_t *p = base + sizeof(*cfg);
	for (int i = 0; i < ncpus; i++) {
		struct mp_processor e = {
			.type = MP_PROCESSOR, .apic_id = (uint8_t)i, .apic_version = MP_LAPIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE, .features = MP_CPU_FEATURES,
		};
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	struct mp_bus bus = { .type = MP_BUS, .bus_id = 0 };
	memcpy(bus.bus_type, "ISA   ", 6);
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	const uint8_t ioapic_id = (uint8_t)ncpus;
	struct mp_ioapic io = { .type = MP_IOAPIC, .id = ioapic_id, .version = MP_IOAPIC_VERSION,
				.flags = MP_IOAPIC_ENABLED, .addr = (uint32_t)ioapic_addr };
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
		/* The PIT's IRQ 0 is wired to IOAPIC pin 2, as on every PC chipset;
		 * pin 0 carries the 8259's ExtINT. */
		struct mp_intsrc e = { .type = MP_IOINT, .irq_type = MP_INT, .src_bus = 0, .src_irq = irq,
				       .dst_id = ioapic_id, .dst_pin = irq == 0 ? 2 : irq };
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	struct mp_intsrc lint[2] = {
		{ .type = MP_LINT, .irq_type = MP_EXTINT, .dst_id = 0xff, .dst_pin = 0 },
		{ .type = MP_LINT, .irq_type = MP_NMI, .dst_id = 0xff, .dst_pin = 1 },
	};
	memcpy(p, lint, sizeof(lint));
	p += sizeof(lint);

	struct mp_config hdr = {
		.signature = { 'P', 'C', 'M', 'P' },
		.length = (uint16_t)(p - base),
		.spec_rev = MP_SPEC_REV,
		.entry_count = (uint16_t)(ncpus + 1 + 1 + MP_ISA_IRQS + 2),
		.lapic_addr = MP_LAPIC_ADDR,
	};
	memcpy(hdr.oem_id, "HVMM    ", 8);
	memcpy(hdr.product_id, "HVMM VM     ", 12);
	memcpy(cfg, &hdr, sizeof(hdr));
	cfg->checksum = mp_checksum(base, hdr.length);

	struct mp_floating fp = {
		.signature = { '_', 'M', 'P', '_' },
		.config_addr = (uint32_t)BOOT_MPTABLE,
		.length = 1,
		.spec_rev = MP_SPEC_REV,
	};
	fp.checksum = mp_checksum((const uint8_t *)&fp, sizeof(fp));
	memcpy(base + (BOOT_MPTABLE_FP - BOOT_MPTABLE), &fp, sizeof(fp));
	return 0;
}
