/*
 * ACPI tables (ACPI 6.x): RSDP, RSDT, XSDT, FADT, DSDT, MADT, and MCFG (PCI
 * Firmware spec 3.0: where the PCIe ECAM window is) when there is one.
 *
 * hvmm has no firmware, so it writes the tables an OS would otherwise get
 * from the BIOS: into the BIOS read-only area, where the RSDP is found by the
 * scan every OS does of [0xe0000, 0x100000) on 16-byte boundaries (Linux also
 * accepts boot_params.acpi_rsdp_addr, which a loader can point here).
 *
 * The FADT describes a PC's fixed ACPI hardware, as QEMU's does: the PM1a
 * event and control blocks and the PM timer (src/devices/acpi_pm.c, at
 * ICH9's 0x600), SCI on IRQ 9 (level, active high, as the MADT's override
 * says), no GPE blocks, no SMI command port (the platform is in ACPI mode from
 * the start), C2/C3 not supported, no fixed power or sleep button, and a FACS
 * (global lock and waking vector; hvmm never resumes from sleep, so the
 * vector is never used; the DSDT offers S5, soft-off, and no other sleep
 * state). Linux needs all of that to take a PC's paths: on a hardware-reduced
 * platform without EFI it restarts through EFI and the BIOS's reset vector
 * (neither exists here) instead of the reset register, and it leaves the ISA
 * IRQs unmapped, so the 8250 UART driver gets no IRQ 4. Guests
 * read the timer's port from PM_TMR_BLK: kvm-unit-tests' vmexit test times
 * `inl` on it, and Linux uses it as a clocksource. Reset goes through the
 * reset register, hvmm's reset control at 0xcf9.
 *
 * Layout constants are in boot.h; the interrupt wiring matches mptable.c so
 * an OS sees the same machine whichever table it reads.
 */
#include <string.h>

#include "../devices/devices.h"
#include "../pci.h"
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
#define ACPI_FADT_WBINVD (1u << 0)      /* WBINVD flushes caches: always on x86 */
#define ACPI_FADT_PROC_C1 (1u << 2)     /* HLT is C1 on every CPU */
#define ACPI_FADT_PWR_BUTTON (1u << 4)  /* no fixed-hardware power button */
#define ACPI_FADT_SLP_BUTTON (1u << 5)  /* no fixed-hardware sleep button */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
/* P_LVL2_LAT > 100 and P_LVL3_LAT > 1000 say "no C2, no C3" */
#define ACPI_FADT_NO_C2 101
#define ACPI_FADT_NO_C3 1001
#define ACPI_FACS_REVISION 2
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
/* The SCI: ISA IRQ 9 → GSI 9, but level-triggered and active high (ACPI's
 * default for the SCI is level, active low). */
#define ACPI_MPS_INTI_HIGH_LEVEL 0x000d
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

/* FACS: no SDT header, 64-byte aligned, found only through the FADT. */
struct __attribute__((packed)) acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
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

/* DMAR (Intel VT-d spec 8.1): header, host address width - 1, flags, then
 * remapping structures; hvmm has one DRHD with one device scope. */
struct __attribute__((packed)) acpi_dmar {
	struct acpi_header h;
	uint8_t haw, flags;
	uint8_t reserved[10];
};
#define ACPI_DMAR_REVISION 1
#define ACPI_DMAR_INTR_REMAP 0x1
#define ACPI_DMAR_X2APIC_OPT_OUT 0x2 /* no EIM: the OS should stay in xAPIC mode */
struct __attribute__((packed)) acpi_dmar_drhd {
	uint16_t type, length;
	uint8_t flags, reserved;
	uint16_t segment;
	uint64_t base;
	/* device scope: the IOAPIC, path of one (device, function) */
	uint8_t scope_type, scope_length;
	uint16_t scope_reserved;
	uint8_t enum_id, start_bus;
	uint8_t path_dev, path_fn;
};
#define ACPI_DMAR_TYPE_DRHD 0
#define ACPI_DRHD_INCLUDE_PCI_ALL 0x1
#define ACPI_DMAR_SCOPE_IOAPIC 3
#define ACPI_DMAR_SCOPE_LEN 8

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
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS layout");
_Static_assert(BOOT_ACPI_FACS % 64 == 0, "the FACS is 64-byte aligned");
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
 * DSDT body, hand-assembled AML (ACPI 6.x chapter 20) so no iasl is needed:
 * `Scope (\_SB) {}` without PCI, and with it the PCI host bridge an OS with
 * ACPI looks for before it scans a bus (Linux scans no PCI bus without one):
 *
 *   Scope (\_SB) {
 *     Device (PCI0) {
 *       Name (_HID, EisaId ("PNP0A08"))  // PCI Express root bridge (ECAM)
 *       Name (_CID, EisaId ("PNP0A03"))  // compatible: PCI root bridge
 *       Name (_SEG, Zero)  Name (_BBN, Zero)  Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (...0, 0...)              // bus 0 only
 *         IO (Decode16, 0xCF8, 0xCF8, 1, 8)       // configuration ports
 *         WordIO (...0x0000-0x0CF7...)            // the rest of port space
 *         WordIO (...0x0D00-0xFFFF...)            //   is routed below the bridge
 *         DWordMemory (...PCI_MMIO_BASE..END-1...) // the BAR window
 *       })
 *       Name (_PRT, Package () {                  // INTx: pci.h's swizzle
 *         Package () { 0xSSSSFFFF, pin, Zero, 16 + (SS + pin) % 4 }, ...  // slots 1..31
 *       })
 *     }
 *   }
 *
 * `iasl -d` on the resulting table shows exactly that (checked when written).
 */
#define AML_SCOPE 0x10
#define AML_NAME 0x08
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5b
#define AML_DEVICE 0x82
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_ROOT '\\'
#define ACPI_DSDT_AML_MAX 2560 /* the DSDT slot is 3 KiB, header included */

struct aml {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void aml_bytes(struct aml *a, const void *b, size_t n)
{
	if (a->overflow || n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->p + a->len, b, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* An integer in its shortest AML encoding. */
static void aml_int(struct aml *a, uint32_t v)
{
	if (v <= 1) {
		aml_byte(a, v ? AML_ONE : AML_ZERO);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		aml_bytes(a, (uint8_t[]){ (uint8_t)v, (uint8_t)(v >> 8) }, 2);
	} else {
		aml_byte(a, AML_DWORD);
		aml_bytes(a, &v, 4);
	}
}

/* Name (NAME, Integer) */
static void aml_name_int(struct aml *a, const char name[4], uint32_t v)
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, name, 4);
	aml_int(a, v);
}

/* Open a package-length construct: reserve the 1..4 PkgLength bytes that
 * aml_close() fills in once the body is there. */
static size_t aml_open(struct aml *a)
{
	size_t at = a->len;
	aml_bytes(a, (uint8_t[4]){ 0 }, 4);
	return at;
}

/* PkgLength counts itself: one byte up to 63, else a lead byte with the
 * count of following bytes in bits 7:6 and the low 4 bits, then 8-bit
 * groups. Moves the body down over the unused reserved bytes. */
static void aml_close(struct aml *a, size_t at)
{
	if (a->overflow)
		return;
	size_t body = a->len - at - 4;
	unsigned n = body + 1 <= 0x3f ? 1 : body + 2 <= 0xfff ? 2 : body + 3 <= 0xfffff ? 3 : 4;
	size_t total = body + n;
	uint8_t *p = a->p + at;
	memmove(p + n, p + 4, body);
	if (n == 1) {
		p[0] = (uint8_t)total;
	} else {
		p[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len = at + n + body;
}

/* EisaId ("PNPxxxx"): three 5-bit letters and four hex digits, big-endian. */
static uint32_t aml_eisaid(const char *id)
{
	uint16_t vendor = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	uint32_t product = 0;
	for (int i = 3; i < 7; i++)
		product = product << 4 | (uint32_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
	return (uint32_t)(vendor >> 8 | (vendor & 0xff) << 8) | (product >> 8 | (product & 0xff) << 8) << 16;
}

/* Large resource descriptors (ACPI 6.x 6.4.3): Word and DWord Address Space. */
#define ACPI_RES_WORD_ADDR 0x88
#define ACPI_RES_DWORD_ADDR 0x87
#define ACPI_RES_IO16 0x47
#define ACPI_RES_END 0x79
enum { ACPI_RES_MEM = 0, ACPI_RES_IO = 1, ACPI_RES_BUS = 2 };
#define ACPI_RES_MIN_MAX_FIXED 0x0c /* producer, positive decode, fixed min and max */
#define ACPI_RES_IO_ENTIRE 0x03     /* ISA and non-ISA ranges */
#define ACPI_RES_MEM_RW 0x01        /* read-write, non-cacheable */

static void aml_res_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint16_t len = (uint16_t)(max - min + 1);
	uint8_t d[16] = { ACPI_RES_WORD_ADDR, 13, 0, type, ACPI_RES_MIN_MAX_FIXED, tflags };
	/* granularity 0, min, max, translation 0, length */
	memcpy(d + 8, &min, 2);
	memcpy(d + 10, &max, 2);
	memcpy(d + 14, &len, 2);
	aml_bytes(a, d, sizeof(d));
}

static void aml_pci_crs(struct aml *a)
{
	struct aml r = { .p = (uint8_t[128]){ 0 }, .cap = 128 };
	aml_res_word(&r, ACPI_RES_BUS, 0, 0, 0);
	aml_bytes(&r, (uint8_t[]){ ACPI_RES_IO16, 1, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8 }, 8);
	aml_res_word(&r, ACPI_RES_IO, ACPI_RES_IO_ENTIRE, 0x0000, 0x0cf7);
	aml_res_word(&r, ACPI_RES_IO, ACPI_RES_IO_ENTIRE, 0x0d00, 0xffff);
	uint8_t m[26] = { ACPI_RES_DWORD_ADDR, 23, 0, ACPI_RES_MEM, ACPI_RES_MIN_MAX_FIXED, ACPI_RES_MEM_RW };
	uint32_t lo = (uint32_t)PCI_MMIO_BASE, hi = (uint32_t)(PCI_MMIO_END - 1),
		 len = (uint32_t)(PCI_MMIO_END - PCI_MMIO_BASE);
	memcpy(m + 10, &lo, 4);
	memcpy(m + 14, &hi, 4);
	memcpy(m + 22, &len, 4);
	aml_bytes(&r, m, sizeof(m));
	aml_bytes(&r, (uint8_t[]){ ACPI_RES_END, 0 }, 2); /* checksum 0: "treat as correct" */
	aml_byte(a, AML_NAME);
	aml_bytes(a, "_CRS", 4);
	aml_byte(a, AML_BUFFER);
	size_t at = aml_open(a);
	aml_int(a, (uint32_t)r.len);
	aml_bytes(a, r.p, r.len);
	aml_close(a, at);
}

static void aml_pci_prt(struct aml *a)
{
	aml_byte(a, AML_NAME);
	aml_bytes(a, "_PRT", 4);
	aml_byte(a, AML_PACKAGE);
	size_t at = aml_open(a);
	aml_byte(a, (PCI_MAX_SLOTS - 1) * 4);
	for (unsigned slot = 1; slot < PCI_MAX_SLOTS; slot++)
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_byte(a, AML_PACKAGE);
			size_t e = aml_open(a);
			aml_byte(a, 4);
			aml_int(a, slot << 16 | 0xffff);
			aml_int(a, pin);
			aml_int(a, 0); /* source: none, the last element is a GSI */
			aml_int(a, 16 + (slot + pin) % 4);
			aml_close(a, e);
		}
	aml_close(a, at);
}

/* The DSDT's AML into out (cap bytes); its length, 0 if it did not fit. */
static size_t acpi_dsdt_aml(uint8_t *out, size_t cap, bool pci)
{
	struct aml a = { .p = out, .cap = cap };
	aml_byte(&a, AML_SCOPE);
	size_t scope = aml_open(&a);
	aml_bytes(&a, (uint8_t[]){ AML_ROOT, '_', 'S', 'B', '_' }, 5);
	if (pci) {
		aml_bytes(&a, (uint8_t[]){ AML_EXT, AML_DEVICE }, 2);
		size_t dev = aml_open(&a);
		aml_bytes(&a, "PCI0", 4);
		aml_name_int(&a, "_HID", aml_eisaid("PNP0A08"));
		aml_name_int(&a, "_CID", aml_eisaid("PNP0A03"));
		aml_name_int(&a, "_SEG", 0);
		aml_name_int(&a, "_BBN", 0);
		aml_name_int(&a, "_UID", 0);
		aml_pci_crs(&a);
		aml_pci_prt(&a);
		aml_close(&a, dev);
	}
	aml_close(&a, scope);
	/* Name (\_S5, Package () { S5, S5, Zero, Zero }): SLP_TYPa/b for
	 * soft-off, what an OS writes to PM1a_CNT to power the machine off
	 * (Linux offers power-off only when the DSDT names \_S5). */
	aml_byte(&a, AML_NAME);
	aml_bytes(&a, (uint8_t[]){ AML_ROOT, '_', 'S', '5', '_' }, 5);
	aml_byte(&a, AML_PACKAGE);
	size_t pkg = aml_open(&a);
	aml_byte(&a, 4);
	aml_int(&a, ACPI_PM_SLP_TYP_S5);
	aml_int(&a, ACPI_PM_SLP_TYP_S5);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_close(&a, pkg);
	return a.overflow ? 0 : a.len;
}

#define ACPI_MAX_TABLES 4 /* FADT, MADT, MCFG, DMAR; the DSDT hangs off the FADT */
#define ACPI_RSDT_LEN (sizeof(struct acpi_header) + ACPI_MAX_TABLES * 4)
#define ACPI_XSDT_LEN (sizeof(struct acpi_header) + ACPI_MAX_TABLES * 8)
#define ACPI_DSDT_LEN (sizeof(struct acpi_header) + ACPI_DSDT_AML_MAX)
#define ACPI_MADT_LEN(n)                                                                    \
	(sizeof(struct acpi_madt) + (size_t)(n) * sizeof(struct acpi_madt_lapic) +          \
	 sizeof(struct acpi_madt_ioapic) + 2 * sizeof(struct acpi_madt_iso) +                \
	 sizeof(struct acpi_madt_lapic_nmi))

_Static_assert(BOOT_ACPI_RSDP % 16 == 0, "the RSDP scan looks on 16-byte boundaries");
_Static_assert(BOOT_ACPI_RSDP + sizeof(struct acpi_rsdp) <= BOOT_ACPI_RSDT &&
		       BOOT_ACPI_RSDT + ACPI_RSDT_LEN <= BOOT_ACPI_XSDT &&
		       BOOT_ACPI_XSDT + ACPI_XSDT_LEN <= BOOT_ACPI_FADT &&
		       BOOT_ACPI_FADT + sizeof(struct acpi_fadt) <= BOOT_ACPI_FACS &&
		       BOOT_ACPI_FACS + sizeof(struct acpi_facs) <= BOOT_ACPI_DSDT &&
		       BOOT_ACPI_DSDT + ACPI_DSDT_LEN <= BOOT_ACPI_MADT &&
		       BOOT_ACPI_MADT + ACPI_MADT_LEN(BOOT_ACPI_MAX_CPUS) <= BOOT_ACPI_MCFG &&
		       BOOT_ACPI_MCFG + sizeof(struct acpi_mcfg) <= BOOT_ACPI_DMAR &&
		       BOOT_ACPI_DMAR + sizeof(struct acpi_dmar) + sizeof(struct acpi_dmar_drhd) <=
			       BOOT_ACPI_END,
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
		    const struct boot_acpi_dmar *dmar, char *err, size_t errlen)
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

	/* DSDT: the PCI host bridge goes with the ECAM window (both mean "PCI") */
	uint8_t dsdt[ACPI_DSDT_LEN];
	size_t aml_len = acpi_dsdt_aml(dsdt + sizeof(struct acpi_header), ACPI_DSDT_AML_MAX, ecam_base != 0);
	if (!aml_len) /* a build-time property: the AML is fixed for a given pci.h */
		return boot_fail(err, errlen, "ACPI: DSDT AML exceeds %d bytes", ACPI_DSDT_AML_MAX);
	struct acpi_header dh = acpi_header("DSDT", sizeof(dh) + aml_len, ACPI_DSDT_REVISION);
	memcpy(dsdt, &dh, sizeof(dh));
	acpi_put(m, BOOT_ACPI_DSDT, dsdt, sizeof(dh) + aml_len);

	/* FACS: no sleep/resume and no firmware owning the global lock */
	struct acpi_facs facs = {
		.signature = { 'F', 'A', 'C', 'S' },
		.length = sizeof(facs),
		.version = ACPI_FACS_REVISION,
	};
	memcpy(mem_ptr(m, BOOT_ACPI_FACS, sizeof(facs)), &facs, sizeof(facs)); /* no checksum */

	/* FADT */
	struct acpi_fadt fadt = {
		.h = acpi_header("FACP", sizeof(fadt), ACPI_FADT_REVISION),
		.firmware_ctrl = (uint32_t)BOOT_ACPI_FACS,
		.x_firmware_ctrl = BOOT_ACPI_FACS,
		.dsdt = (uint32_t)BOOT_ACPI_DSDT,
		.x_dsdt = BOOT_ACPI_DSDT,
		.sci_int = ACPI_PM_SCI_IRQ,
		.pm1a_evt_blk = ACPI_PM_BASE,
		.pm1a_cnt_blk = ACPI_PM_BASE + ACPI_PM1_CNT_OFF,
		.pm_tmr_blk = ACPI_PM_BASE + ACPI_PM_TMR_OFF,
		.pm1_evt_len = ACPI_PM1_EVT_LEN,
		.pm1_cnt_len = ACPI_PM1_CNT_LEN,
		.pm_tmr_len = ACPI_PM_TMR_LEN,
		.p_lvl2_lat = ACPI_FADT_NO_C2,
		.p_lvl3_lat = ACPI_FADT_NO_C3,
		.x_pm1a_evt_blk = { .space_id = ACPI_GAS_SYSTEM_IO, .bit_width = 8 * ACPI_PM1_EVT_LEN,
				    .address = ACPI_PM_BASE },
		.x_pm1a_cnt_blk = { .space_id = ACPI_GAS_SYSTEM_IO, .bit_width = 8 * ACPI_PM1_CNT_LEN,
				    .address = ACPI_PM_BASE + ACPI_PM1_CNT_OFF },
		.x_pm_tmr_blk = { .space_id = ACPI_GAS_SYSTEM_IO, .bit_width = 8 * ACPI_PM_TMR_LEN,
				  .address = ACPI_PM_BASE + ACPI_PM_TMR_OFF },
		.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 |
				  ACPI_IAPC_VGA_NOT_PRESENT | ACPI_IAPC_CMOS_RTC_NOT_PRESENT,
		.flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_PWR_BUTTON |
			 ACPI_FADT_SLP_BUTTON | ACPI_FADT_RESET_REG_SUP,
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
	/* IRQ 0 needs an override (to pin 2), and the SCI its trigger mode: every
	 * other ISA IRQ n is GSI n, edge, active high, which is ACPI's default —
	 * exactly the MP table's wiring. */
	struct acpi_madt_iso iso = { .type = ACPI_MADT_ISO, .length = sizeof(iso),
				     .bus = ACPI_ISA_BUS, .source = ACPI_PIT_IRQ, .gsi = ACPI_PIT_GSI,
				     .flags = ACPI_MPS_INTI_CONFORM };
	memcpy(p, &iso, sizeof(iso));
	p += sizeof(iso);
	struct acpi_madt_iso sci = { .type = ACPI_MADT_ISO, .length = sizeof(sci),
				     .bus = ACPI_ISA_BUS, .source = ACPI_PM_SCI_IRQ,
				     .gsi = ACPI_PM_SCI_IRQ, .flags = ACPI_MPS_INTI_HIGH_LEVEL };
	memcpy(p, &sci, sizeof(sci));
	p += sizeof(sci);
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

	/* DMAR: one remapping unit for segment 0 and every device on it, the
	 * IOAPIC named in its scope (Linux turns interrupt remapping on only
	 * when every IOAPIC is under a unit). */
	if (dmar && dmar->base) {
		struct {
			struct acpi_dmar d;
			struct acpi_dmar_drhd u;
		} __attribute__((packed)) t = {
			.d = { .h = acpi_header("DMAR", sizeof(t), ACPI_DMAR_REVISION),
			       .haw = (uint8_t)(dmar->haw - 1),
			       .flags = (dmar->intremap ? ACPI_DMAR_INTR_REMAP : 0) |
					ACPI_DMAR_X2APIC_OPT_OUT },
			.u = { .type = ACPI_DMAR_TYPE_DRHD, .length = sizeof(t.u),
			       .flags = ACPI_DRHD_INCLUDE_PCI_ALL, .segment = 0, .base = dmar->base,
			       .scope_type = ACPI_DMAR_SCOPE_IOAPIC, .scope_length = ACPI_DMAR_SCOPE_LEN,
			       .enum_id = (uint8_t)ncpus, /* the MADT's IOAPIC ID */
			       .start_bus = (uint8_t)(dmar->ioapic_sid >> 8),
			       .path_dev = (uint8_t)((dmar->ioapic_sid >> 3) & 0x1f),
			       .path_fn = (uint8_t)(dmar->ioapic_sid & 7) },
		};
		acpi_put(m, BOOT_ACPI_DMAR, &t, sizeof(t));
		tables[nt++] = BOOT_ACPI_DMAR;
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
