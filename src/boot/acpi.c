/*
 * ACPI tables (ACPI 6.x): RSDP, RSDT, XSDT, FADT, DSDT, MADT, and MCFG (PCI
 * Firmware spec 3.0: where the PCIe ECAM window is) when there is one.
 *
 * hvmm has no firmware, so it writes the tables an OS would otherwise get
 * from the BIOS: into the BIOS read-only area, where the RSDP is found by the
 * scan every OS does of [0xe0000, 0x100000) on 16-byte boundaries (Linux also
 * accepts boot_params.acpi_rsdp_addr, which a loader can point here).
 *
 * The FADT declares a hardware-reduced platform (ACPI 5.0+): no PM1 event and
 * control blocks, no GPEs, no SCI, no FACS, no PM timer — hvmm emulates none
 * of them, and a reduced FADT is how a platform says so honestly. Reset goes
 * through the reset register, hvmm's reset control at 0xcf9.
 *
 * Layout constants are in boot.h; the interrupt wiring matches mptable.c so
 * an OS sees the same machine whichever table it reads.
 */
#include <string.h>

#include "../util.h"
#include "boot.h"
#include "boot_priv.h"

#define ACPI_OEM_ID "HVMM  "        /* 6 bytes */
#define ACPI_OEM_TABLE_ID "HVMMVM  " /* 8 bytes */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "HVMM"
#define ACPI_CREATOR_REVISION 1

#define ACPI_RSDP_REVISION 2 /* ACPI 2.0+ RSDP: has the XSDT pointer */
#define ACPI_RSDP_V1_LEN 20  /* the bytes the first checksum covers */
#define ACPI_RSDT_REVISION 1
#define ACPI_XSDT_REVISION 1
#define ACPI_FADT_REVISION 6 /* ACPI 6.0 FADT, with the hypervisor vendor field */
#define ACPI_FADT_MINOR 0
#define ACPI_MADT_REVISION 4 /* ACPI 6.0–6.2; 5 only adds the Online Capable flag */
#define ACPI_DSDT_REVISION 2 /* 2+: AML integers are 64-bit */
#define ACPI_MCFG_REVISION 1

/* FADT Flags */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED (1u << 20)
/* FADT IAPC_BOOT_ARCH: what hvmm has on its legacy buses, so Linux probes the
 * i8042 and the UART ports and skips the VGA and CMOS RTC it has not got. */
#define ACPI_IAPC_LEGACY_DEVICES (1u << 0)
#define ACPI_IAPC_8042 (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1u << 2)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* Generic Address Structure */
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
/* Reset control register (src/devices/sysreset.c): SYS_RST | RST_CPU. */
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06

/* End of the range OSes scan for the RSDP (0xe0000 up to 1 MiB). */
#define ACPI_BIOS_AREA_END 0x100000ull

#define ACPI_LAPIC_ADDR 0xfee00000u
#define ACPI_MADT_PCAT_COMPAT (1u << 0) /* hvmm has the 8259 pair (pic.c) */
enum { ACPI_MADT_LAPIC = 0, ACPI_MADT_IOAPIC = 1, ACPI_MADT_ISO = 2, ACPI_MADT_LAPIC_NMI = 4 };
#define ACPI_MADT_LAPIC_ENABLED 0x1
#define ACPI_MADT_ALL_CPUS 0xff
/* MPS INTI flags 0: polarity and trigger "conform to the bus" (ISA: edge,
 * active high), as the MP table's entries say. */
#define ACPI_MPS_INTI_CONFORM 0
#define ACPI_ISA_BUS 0
#define ACPI_PIT_IRQ 0
#define ACPI_PIT_GSI 2
#define ACPI_NMI_LINT 1

struct __attribute__((packed)) acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* over the first 20 bytes (the ACPI 1.0 RSDP) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_addr;
	uint32_t length; /* of the whole RSDP, 36 */
	uint64_t xsdt_addr;
	uint8_t ext_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
};

struct __attribute__((packed)) acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
};

struct __attribute__((packed)) acpi_gas {
	uint8_t space_id, bit_width, bit_offset, access_size;
	uint64_t address;
};

struct __attribute__((packed)) acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl, dsdt;
	uint8_t reserved0, preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
	uint8_t gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	uint64_t hypervisor_vendor_id;
};

struct __attribute__((packed)) acpi_madt {
	struct acpi_header h;
	uint32_t lapic_addr, flags;
};

struct __attribute__((packed)) acpi_madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
};

struct __attribute__((packed)) acpi_madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t addr, gsi_base;
};

struct __attribute__((packed)) acpi_madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
};

struct __attribute__((packed)) acpi_madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
};

/* MCFG: header, 8 reserved bytes, one allocation per ECAM window. */
struct __attribute__((packed)) acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved;
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved2;
};

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header layout");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS layout");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112 &&
		       offsetof(struct acpi_fadt, reset_reg) == 116 &&
		       offsetof(struct acpi_fadt, x_dsdt) == 140 && sizeof(struct acpi_fadt) == 276,
	       "FADT rev 6 layout");
_Static_assert(sizeof(struct acpi_madt) == 44 && sizeof(struct acpi_madt_lapic) == 8 &&
		       sizeof(struct acpi_madt_ioapic) == 12 && sizeof(struct acpi_madt_iso) == 10 &&
		       sizeof(struct acpi_madt_lapic_nmi) == 6,
	       "MADT layout");
_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG layout");

/*
 * DSDT body: `DefinitionBlock (...) { Scope (\_SB) {} }`, hand-assembled so
 * no iasl is needed. The empty \_SB scope gives the namespace the root every
 * later device (serial, PCI host bridge) will hang off; it is also the
 * smallest body that is more than nothing, so the guest's AML parser runs.
 *   0x10             ScopeOp
 *   0x06             PkgLength, one byte: itself + the 5-byte name + empty body
 *   0x5c             RootChar '\'
 *   0x5f 0x53 0x42 0x5f   NameSeg "_SB_" (names are padded to 4 with '_')
 */
static const uint8_t acpi_dsdt_aml[] = { 0x10, 0x06, 0x5c, '_', 'S', 'B', '_' };

#define ACPI_MAX_TABLES 3 /* FADT, MADT and MCFG; the DSDT hangs off the FADT */
#define ACPI_RSDT_LEN (sizeof(struct acpi_header) + ACPI_MAX_TABLES * 4)
#define ACPI_XSDT_LEN (sizeof(struct acpi_header) + ACPI_MAX_TABLES * 8)
#define ACPI_DSDT_LEN (sizeof(struct acpi_header) + sizeof(acpi_dsdt_aml))
#define ACPI_MADT_LEN(n)                                                                    \
	(sizeof(struct acpi_madt) + (size_t)(n) * sizeof(struct acpi_madt_lapic) +          \
	 sizeof(struct acpi_madt_ioapic) + sizeof(struct acpi_madt_iso) +                    \
	 sizeof(struct acpi_madt_lapic_nmi))

_Static_assert(BOOT_ACPI_RSDP % 16 == 0, "the RSDP scan looks on 16-byte boundaries");
_Static_assert(BOOT_ACPI_RSDP + sizeof(struct acpi_rsdp) <= BOOT_ACPI_RSDT &&
		       BOOT_ACPI_RSDT + ACPI_RSDT_LEN <= BOOT_ACPI_XSDT &&
		       BOOT_ACPI_XSDT + ACPI_XSDT_LEN <= BOOT_ACPI_FADT &&
		       BOOT_ACPI_FADT + sizeof(struct acpi_fadt) <= BOOT_ACPI_DSDT &&
		       BOOT_ACPI_DSDT + ACPI_DSDT_LEN <= BOOT_ACPI_MADT &&
		       BOOT_ACPI_MADT + ACPI_MADT_LEN(BOOT_ACPI_MAX_CPUS) <= BOOT_ACPI_MCFG &&
		       BOOT_ACPI_MCFG + sizeof(struct acpi_mcfg) <= BOOT_ACPI_END,
	       "ACPI tables overlap");
_Static_assert(BOOT_ACPI_END <= ACPI_BIOS_AREA_END, "ACPI tables in the BIOS area, below 1 MiB");
_Static_assert(BOOT_ACPI_MAX_CPUS < 0xff, "APIC IDs 0..n and IOAPIC ID n below broadcast 0xff");

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

static struct acpi_header acpi_header(const char sig[4], size_t len, uint8_t revision)
{
	struct acpi_header h = {
		.length = (uint32_t)len,
		.revision = revision,
		.oem_revision = ACPI_OEM_REVISION,
		.creator_revision = ACPI_CREATOR_REVISION,
	};
	memcpy(h.signature, sig, 4);
	memcpy(h.oem_id, ACPI_OEM_ID, 6);
	memcpy(h.oem_table_id, ACPI_OEM_TABLE_ID, 8);
	memcpy(h.creator_id, ACPI_CREATOR_ID, 4);
	return h;
}

/* Copy a table (header's checksum still 0) to gpa and checksum it in place.
 * The whole area was checked to be RAM, so mem_ptr cannot fail here. */
static void acpi_put(struct guest_mem *m, uint64_t gpa, const void *table, size_t len)
{
	uint8_t *p = mem_ptr(m, gpa, len);
	memcpy(p, table, len);
	p[offsetof(struct acpi_header, checksum)] = acpi_checksum(p, len);
}

int boot_acpi_write(struct guest_mem *m, int ncpus, uint64_t ioapic_addr, uint64_t ecam_base,
		    char *err, size_t errlen)
{
	if (ncpus < 1 || ncpus > BOOT_ACPI_MAX_CPUS)
		return boot_fail(err, errlen, "ACPI: %d CPUs, the MADT holds 1 to %d", ncpus,
				 BOOT_ACPI_MAX_CPUS);
	if (ioapic_addr > UINT32_MAX)
		return boot_fail(err, errlen, "ACPI: IOAPIC address 0x%llx is not a 32-bit address",
				 (unsigned long long)ioapic_addr);
	/* The whole BIOS area, not just the tables: an OS scans all of it for
	 * the RSDP, so it must be RAM that reads back what was written. */
	if (!mem_ptr(m, BOOT_ACPI_RSDP, ACPI_BIOS_AREA_END - BOOT_ACPI_RSDP))
		return boot_fail(err, errlen,
				 "ACPI: tables need RAM up to 0x%llx, guest RAM is %llu KiB",
				 (unsigned long long)ACPI_BIOS_AREA_END,
				 (unsigned long long)(m->ram_size >> 10));
	uint8_t *area = mem_ptr(m, BOOT_ACPI_RSDP, BOOT_ACPI_END - BOOT_ACPI_RSDP);
	/* Clear the whole area: no stale bytes an OS scanning for "RSD PTR "
	 * or walking a table could trip over. */
	memset(area, 0, BOOT_ACPI_END - BOOT_ACPI_RSDP);

	/* DSDT */
	uint8_t dsdt[ACPI_DSDT_LEN];
	struct acpi_header dh = acpi_header("DSDT", sizeof(dsdt), ACPI_DSDT_REVISION);
	memcpy(dsdt, &dh, sizeof(dh));
	memcpy(dsdt + sizeof(dh), acpi_dsdt_aml, sizeof(acpi_dsdt_aml));
	acpi_put(m, BOOT_ACPI_DSDT, dsdt, sizeof(dsdt));

	/* FADT */
	struct acpi_fadt fadt = {
		.h = acpi_header("FACP", sizeof(fadt), ACPI_FADT_REVISION),
		.dsdt = (uint32_t)BOOT_ACPI_DSDT,
		.x_dsdt = BOOT_ACPI_DSDT,
		.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 |
				  ACPI_IAPC_VGA_NOT_PRESENT | ACPI_IAPC_CMOS_RTC_NOT_PRESENT,
		.flags = ACPI_FADT_HW_REDUCED | ACPI_FADT_RESET_REG_SUP,
		.reset_reg = { .space_id = ACPI_GAS_SYSTEM_IO, .bit_width = 8, .bit_offset = 0,
			       .access_size = ACPI_GAS_ACCESS_BYTE, .address = ACPI_RESET_PORT },
		.reset_value = ACPI_RESET_VALUE,
		.minor_version = ACPI_FADT_MINOR,
	};
	memcpy(&fadt.hypervisor_vendor_id, "HVMM\0\0\0\0", 8);
	acpi_put(m, BOOT_ACPI_FADT, &fadt, sizeof(fadt));

	/* MADT, built in place: its length depends on ncpus. */
	const size_t madt_len = ACPI_MADT_LEN(ncpus);
	uint8_t *madt = mem_ptr(m, BOOT_ACPI_MADT, madt_len);
	struct acpi_madt mh = {
		.h = acpi_header("APIC", madt_len, ACPI_MADT_REVISION),
		.lapic_addr = ACPI_LAPIC_ADDR,
		.flags = ACPI_MADT_PCAT_COMPAT,
	};
	uint8_t *p = madt;
	memcpy(p, &mh, sizeof(mh));
	p += sizeof(mh);
	for (int i = 0; i < ncpus; i++) {
		/* UID = APIC ID: there are no Processor objects in the DSDT for
		 * the UIDs to name, and 0..n-1 is what QEMU's guests expect. */
		struct acpi_madt_lapic e = { .type = ACPI_MADT_LAPIC, .length = sizeof(e),
					     .processor_uid = (uint8_t)i, .apic_id = (uint8_t)i,
					     .flags = ACPI_MADT_LAPIC_ENABLED };
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	struct acpi_madt_ioapic io = { .type = ACPI_MADT_IOAPIC, .length = sizeof(io),
				       .id = (uint8_t)ncpus, .addr = (uint32_t)ioapic_addr,
				       .gsi_base = 0 };
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	/* Only IRQ 0 needs an override: every other ISA IRQ n is GSI n, edge,
	 * active high, which is ACPI's default — exactly the MP table's wiring. */
	struct acpi_madt_iso iso = { .type = ACPI_MADT_ISO, .length = sizeof(iso),
				     .bus = ACPI_ISA_BUS, .source = ACPI_PIT_IRQ, .gsi = ACPI_PIT_GSI,
				     .flags = ACPI_MPS_INTI_CONFORM };
	memcpy(p, &iso, sizeof(iso));
	p += sizeof(iso);
	struct acpi_madt_lapic_nmi nmi = { .type = ACPI_MADT_LAPIC_NMI, .length = sizeof(nmi),
					   .processor_uid = ACPI_MADT_ALL_CPUS,
					   .flags = ACPI_MPS_INTI_CONFORM, .lint = ACPI_NMI_LINT };
	memcpy(p, &nmi, sizeof(nmi));
	madt[offsetof(struct acpi_header, checksum)] = acpi_checksum(madt, madt_len);

	uint64_t tables[ACPI_MAX_TABLES] = { BOOT_ACPI_FADT, BOOT_ACPI_MADT };
	size_t nt = 2;

	/* MCFG: one ECAM window, segment 0, bus 0 only (1 MiB). */
	if (ecam_base) {
		struct acpi_mcfg mcfg = {
			.h = acpi_header("MCFG", sizeof(mcfg), ACPI_MCFG_REVISION),
			.base = ecam_base,
			.segment = 0,
			.start_bus = 0,
			.end_bus = 0,
		};
		acpi_put(m, BOOT_ACPI_MCFG, &mcfg, sizeof(mcfg));
		tables[nt++] = BOOT_ACPI_MCFG;
	}

	/* RSDT and XSDT: same tables, 32- and 64-bit pointers. */
	uint8_t rsdt[ACPI_RSDT_LEN], xsdt[ACPI_XSDT_LEN];
	const size_t rlen = sizeof(struct acpi_header) + nt * 4, xlen = sizeof(struct acpi_header) + nt * 8;
	struct acpi_header rh = acpi_header("RSDT", rlen, ACPI_RSDT_REVISION);
	struct acpi_header xh = acpi_header("XSDT", xlen, ACPI_XSDT_REVISION);
	memcpy(rsdt, &rh, sizeof(rh));
	memcpy(xsdt, &xh, sizeof(xh));
	for (size_t i = 0; i < nt; i++) {
		uint32_t a32 = (uint32_t)tables[i];
		memcpy(rsdt + sizeof(rh) + i * 4, &a32, 4);
		memcpy(xsdt + sizeof(xh) + i * 8, &tables[i], 8);
	}
	acpi_put(m, BOOT_ACPI_RSDT, rsdt, rlen);
	acpi_put(m, BOOT_ACPI_XSDT, xsdt, xlen);

	/* RSDP last, so it only ever points at finished tables. */
	struct acpi_rsdp rsdp = {
		.signature = { 'R', 'S', 'D', ' ', 'P', 'T', 'R', ' ' },
		.revision = ACPI_RSDP_REVISION,
		.rsdt_addr = (uint32_t)BOOT_ACPI_RSDT,
		.length = sizeof(rsdp),
		.xsdt_addr = BOOT_ACPI_XSDT,
	};
	memcpy(rsdp.oem_id, ACPI_OEM_ID, 6);
	rsdp.checksum = acpi_checksum((const uint8_t *)&rsdp, ACPI_RSDP_V1_LEN);
	rsdp.ext_checksum = acpi_checksum((const uint8_t *)&rsdp, sizeof(rsdp));
	memcpy(area, &rsdp, sizeof(rsdp));
	return 0;
}
