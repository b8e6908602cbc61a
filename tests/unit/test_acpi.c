/*
 * ACPI tables: found and walked the way an OS does it (scan the BIOS area for
 * the RSDP, follow RSDT and XSDT, FADT -> DSDT), every length and checksum,
 * MADT entries for several CPU counts, FADT flags and reset register, the DSDT's
 * AML, the DMAR table of a VT-d unit, and the RAM and CPU-count limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "memory.h"
#include "util.h"
#include "guest_ram.h"

#define IOAPIC 0xfec00000ull
#define HDR 36 /* SDT header */
#define ECAM 0xe0000000ull


static void write_ok(int ncpus)
{
	char err[256] = "";
	int rc = boot_acpi_write(&m, ncpus, IOAPIC, ECAM, NULL, err, sizeof(err));
	if (rc)
		fail_msg("boot_acpi_write(%d): %s", ncpus, err);
}

/* The OS's search: "RSD PTR " on a 16-byte boundary in [0xe0000, 0x100000)
 * whose ACPI 1.0 checksum is right. Returns its address, or 0. */
static uint64_t find_rsdp(void)
{
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = at(a, 16);
		if (!memcmp(p, "RSD PTR ", 8) && sum(at(a, 20), 20) == 0)
			return a;
	}
	return 0;
}

/* Check a table's common header; returns its length. */
static uint32_t check_sdt(uint64_t addr, const char *sig, uint8_t revision)
{
	const uint8_t *h = at(addr, HDR);
	assert_memory_equal(h, sig, 4);
	uint32_t len = u32(h + 4);
	assert_true(len >= HDR);
	assert_int_equal(h[8], revision);
	assert_int_equal(sum(at(addr, len), len), 0);
	assert_memory_equal(h + 10, "HVMM  ", 6);   /* OEM ID */
	assert_memory_equal(h + 16, "HVMMVM  ", 8); /* OEM table ID */
	assert_memory_equal(h + 28, "HVMM", 4);     /* creator */
	/* inside the reserved BIOS area, clear of the MP table and anything else */
	assert_true(addr >= 0xe0000 && addr + len <= 0xf0000);
	return len;
}

static uint64_t rsdp_checked(void)
{
	uint64_t a = find_rsdp();
	assert_int_equal(a, BOOT_ACPI_RSDP);
	const uint8_t *r = at(a, 36);
	assert_memory_equal(r + 9, "HVMM  ", 6);
	assert_int_equal(r[15], 2);           /* revision: ACPI 2.0+ */
	assert_int_equal(u32(r + 20), 36);    /* length */
	assert_int_equal(sum(r, 36), 0);      /* extended checksum */
	assert_int_equal(u32(r + 16), BOOT_ACPI_RSDT);
	assert_int_equal(u64(r + 24), BOOT_ACPI_XSDT);
	return a;
}

/* Find a table by signature through the XSDT, and check the RSDT agrees. */
static uint64_t find_table(const char *sig)
{
	const uint8_t *r = at(rsdp_checked(), 36);
	uint64_t xsdt = u64(r + 24), rsdt = u32(r + 16);
	uint32_t xlen = check_sdt(xsdt, "XSDT", 1);
	uint32_t rlen = check_sdt(rsdt, "RSDT", 1);
	assert_int_equal((xlen - HDR) % 8, 0);
	assert_int_equal((rlen - HDR) % 4, 0);
	assert_int_equal((xlen - HDR) / 8, (rlen - HDR) / 4);
	uint64_t found = 0;
	for (uint32_t i = 0; i < (xlen - HDR) / 8; i++) {
		uint64_t t = u64(at(xsdt + HDR + i * 8, 8));
		assert_int_equal(u32(at(rsdt + HDR + i * 4, 4)), t);
		if (!memcmp(at(t, 4), sig, 4)) {
			assert_int_equal(found, 0); /* listed once */
			found = t;
		}
	}
	return found;
}

static void test_rsdp_rsdt_xsdt(void **state)
{
	(void)state;
	write_ok(1);
	rsdp_checked();
	assert_int_equal(check_sdt(BOOT_ACPI_RSDT, "RSDT", 1), HDR + 3 * 4);
	assert_int_equal(check_sdt(BOOT_ACPI_XSDT, "XSDT", 1), HDR + 3 * 8);
	assert_int_equal(find_table("FACP"), BOOT_ACPI_FADT);
	assert_int_equal(find_table("APIC"), BOOT_ACPI_MADT);
	assert_int_equal(find_table("MCFG"), BOOT_ACPI_MCFG);
	assert_int_equal(find_table("DSDT"), 0); /* reached through the FADT only */
}

/* DMAR (--device intel-iommu): one DRHD for every PCI device, the IOAPIC
 * (ID ncpus) in its scope; absent without a unit. */
static void test_dmar(void **state)
{
	(void)state;
	write_ok(2);
	assert_int_equal(find_table("DMAR"), 0);
	const struct boot_acpi_dmar d = { .base = 0xfed90000, .intremap = true, .haw = 48,
					  .ioapic_sid = 0xff00 };
	char err[256];
	assert_int_equal(boot_acpi_write(&m, 2, IOAPIC, ECAM, &d, err, sizeof(err)), 0);
	uint64_t a = find_table("DMAR");
	assert_int_equal(a, BOOT_ACPI_DMAR);
	assert_int_equal(check_sdt(a, "DMAR", 1), HDR + 12 + 16 + 8);
	const uint8_t *t = at(a, HDR + 36);
	assert_int_equal(t[HDR], 47);       /* host address width - 1 */
	assert_int_equal(t[HDR + 1], 0x3);  /* INTR_REMAP, X2APIC_OPT_OUT */
	const uint8_t *u = t + HDR + 12;
	assert_int_equal(u16(u), 0);        /* DRHD */
	assert_int_equal(u16(u + 2), 24);
	assert_int_equal(u[4], 1);          /* INCLUDE_PCI_ALL */
	assert_int_equal(u16(u + 6), 0);    /* segment */
	assert_int_equal(u64(u + 8), 0xfed90000);
	assert_int_equal(u[16], 3);         /* scope: IOAPIC */
	assert_int_equal(u[17], 8);
	assert_int_equal(u[20], 2);         /* enumeration id: the MADT's IOAPIC ID */
	assert_int_equal(u[21], 0xff);      /* bus, then device 0 function 0 */
	assert_int_equal(u[22], 0);
	assert_int_equal(u[23], 0);
	const struct boot_acpi_dmar off = { .base = 0xfed90000, .haw = 48, .ioapic_sid = 0xff00 };
	assert_int_equal(boot_acpi_write(&m, 2, IOAPIC, ECAM, &off, err, sizeof(err)), 0);
	assert_int_equal(at(BOOT_ACPI_DMAR, HDR + 2)[HDR + 1], 0x2);
}

/* MCFG: one allocation, the ECAM window for segment 0, bus 0 only. */
static void test_mcfg(void **state)
{
	(void)state;
	write_ok(2);
	uint64_t a = find_table("MCFG");
	assert_int_equal(a, BOOT_ACPI_MCFG);
	assert_int_equal(check_sdt(a, "MCFG", 1), HDR + 8 + 16);
	const uint8_t *t = at(a, HDR + 24);
	assert_int_equal(u64(t + HDR), 0);          /* reserved */
	assert_int_equal(u64(t + HDR + 8), ECAM);   /* base address */
	assert_int_equal(t[HDR + 16], 0);           /* segment, low byte */
	assert_int_equal(t[HDR + 17], 0);
	assert_int_equal(t[HDR + 18], 0);           /* start bus */
	assert_int_equal(t[HDR + 19], 0);           /* end bus */
	assert_int_equal(u32(t + HDR + 20), 0);
	/* without an ECAM window: no MCFG, two tables listed */
	char err[256] = "";
	assert_int_equal(boot_acpi_write(&m, 2, IOAPIC, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(find_table("MCFG"), 0);
	assert_int_equal(check_sdt(BOOT_ACPI_XSDT, "XSDT", 1), HDR + 2 * 8);
	assert_int_equal(check_sdt(BOOT_ACPI_RSDT, "RSDT", 1), HDR + 2 * 4);
	assert_int_equal(find_table("APIC"), BOOT_ACPI_MADT);
}

/* Walk the MADT for ncpus CPUs and check every entry. */
static void check_madt(int ncpus)
{
	uint64_t a = find_table("APIC");
	assert_int_not_equal(a, 0);
	uint32_t len = check_sdt(a, "APIC", 4);
	assert_int_equal(len, 44 + ncpus * 8 + 12 + 2 * 10 + 6);
	const uint8_t *t = at(a, len);
	assert_int_equal(u32(t + 36), 0xfee00000u); /* local APIC address */
	assert_int_equal(u32(t + 40), 1);           /* PCAT_COMPAT: there is an 8259 pair */

	int lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = t + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(ioapics, 0); /* CPUs first, in order */
			assert_int_equal(e[2], lapics); /* processor UID */
			assert_int_equal(e[3], lapics); /* APIC ID */
			assert_int_equal(u32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ncpus); /* IOAPIC ID after the CPUs' */
			assert_int_equal(e[3], 0);
			assert_int_equal(u32(e + 4), IOAPIC);
			assert_int_equal(u32(e + 8), 0); /* GSI base */
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);        /* ISA */
			if (isos == 0) {
				assert_int_equal(e[3], 0);        /* IRQ 0 (PIT) */
				assert_int_equal(u32(e + 4), 2);  /* -> GSI 2, as the MP table says */
				assert_int_equal(u16(e + 8), 0);  /* conforms to ISA: edge, high */
			} else {
				assert_int_equal(e[3], 9);        /* IRQ 9, the SCI */
				assert_int_equal(u32(e + 4), 9);  /* -> GSI 9 */
				assert_int_equal(u16(e + 8), 0xd); /* level, active high */
			}
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);     /* all processors */
			assert_int_equal(u16(e + 3), 0);
			assert_int_equal(e[5], 1);        /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %d at offset %u", e[0], off);
		}
		off += e[1];
	}
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 2);
	assert_int_equal(nmis, 1);
}

static void test_madt_1(void **state) { (void)state; write_ok(1); check_madt(1); }
static void test_madt_2(void **state) { (void)state; write_ok(2); check_madt(2); }
static void test_madt_64(void **state) { (void)state; write_ok(64); check_madt(64); }

static void test_madt_max_and_rewrite(void **state)
{
	(void)state;
	write_ok(BOOT_ACPI_MAX_CPUS);
	check_madt(BOOT_ACPI_MAX_CPUS);
	/* a smaller table over a bigger one: nothing stale is left behind */
	write_ok(2);
	check_madt(2);
	const uint8_t *tail = at(BOOT_ACPI_MADT + 44 + 2 * 8 + 38, 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(tail[i], 0);
}

static void test_fadt(void **state)
{
	(void)state;
	write_ok(2);
	uint64_t a = find_table("FACP");
	assert_int_equal(check_sdt(a, "FACP", 6), 276);
	const uint8_t *f = at(a, 276);
	uint32_t flags = u32(f + 112);
	assert_false(flags & (1u << 20)); /* not HW_REDUCED_ACPI: there is fixed hardware */
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	/* WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (none in fixed hardware) */
	assert_int_equal(flags, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 10));
	/* RESET_REG: system I/O, 8 bits at offset 0, byte access, port 0xcf9 */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(f[118], 0);
	assert_int_equal(f[119], 1);
	assert_int_equal(u64(f + 120), 0xcf9);
	assert_int_equal(f[128], 0x06);   /* RESET_VALUE */
	assert_int_equal(f[131], 0);      /* minor version: 6.0 */
	/* FACS, by both pointers: 64 bytes, "FACS", 64-byte aligned */
	assert_int_equal(u32(f + 36), BOOT_ACPI_FACS);
	assert_int_equal(u64(f + 132), BOOT_ACPI_FACS);
	assert_int_equal(BOOT_ACPI_FACS % 64, 0);
	const uint8_t *facs = at(BOOT_ACPI_FACS, 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(u32(facs + 4), 64);
	assert_int_equal(facs[32], 2); /* version */
	/* SCI 9, no SMI command port: in ACPI mode from the start */
	assert_int_equal(u16(f + 46), 9);
	assert_int_equal(u32(f + 48), 0);
	/* PM1a event 0x600 (4 bytes), PM1a control 0x604 (2), PM timer 0x608 (4);
	 * no PM1b, PM2 or GPE blocks */
	assert_int_equal(u32(f + 56), 0x600);
	assert_int_equal(u32(f + 60), 0);
	assert_int_equal(u32(f + 64), 0x604);
	assert_int_equal(u32(f + 68), 0);
	assert_int_equal(u32(f + 72), 0);
	assert_int_equal(u32(f + 76), 0x608);
	assert_int_equal(u32(f + 80), 0);
	assert_int_equal(u32(f + 84), 0);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[90], 0);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[92], 0);
	assert_int_equal(f[93], 0);
	assert_true(u16(f + 96) > 100 && u16(f + 98) > 1000); /* no C2, no C3 */
	/* the X_ blocks say the same in GAS form: system I/O, width in bits */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(u64(f + 152), 0x600);
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(u64(f + 176), 0x604);
	assert_int_equal(f[208], 1);
	assert_int_equal(f[209], 32);
	assert_int_equal(u64(f + 212), 0x608);
	for (size_t off = 160; off < 172; off++) /* X_PM1b_EVT */
		assert_int_equal(f[off], 0);
	for (size_t off = 184; off < 208; off++) /* X_PM1b_CNT, X_PM2_CNT */
		assert_int_equal(f[off], 0);
	for (size_t off = 220; off < 268; off++) /* GPEs, sleep registers */
		assert_int_equal(f[off], 0);
	/* IAPC_BOOT_ARCH: legacy devices, 8042, no VGA, no CMOS RTC */
	assert_int_equal(u16(f + 109), 0x27);
	assert_memory_equal(f + 268, "HVMM", 4); /* hypervisor vendor */

	/* FADT -> DSDT, by both pointers */
	uint64_t dsdt = u32(f + 40);
	assert_int_equal(dsdt, BOOT_ACPI_DSDT);
	assert_int_equal(u64(f + 140), dsdt);
}

/* AML PkgLength at p: the value, and its own size in *n. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	*n = (p[0] >> 6) + 1;
	if (*n == 1)
		return p[0] & 0x3f;
	uint32_t v = p[0] & 0xf;
	for (unsigned i = 1; i < *n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static const uint8_t *find_bytes(const uint8_t *h, size_t hl, const void *n, size_t nl)
{
	for (size_t i = 0; i + nl <= hl; i++)
		if (!memcmp(h + i, n, nl))
			return h + i;
	return NULL;
}

/* With PCI: \_SB.PCI0, a PCIe root bridge with its resources and _PRT. */
static void test_dsdt_pci(void **state)
{
	(void)state;
	write_ok(2);
	uint64_t a = u64(at(find_table("FACP"), 276) + 140);
	uint32_t len = check_sdt(a, "DSDT", 2);
	const uint8_t *aml = at(a + HDR, len - HDR);
	const uint32_t n = len - HDR;
	unsigned pl;
	assert_int_equal(aml[0], 0x10); /* Scope */
	/* the scope covers the whole body but the \_S5 package after it (13 bytes) */
	assert_int_equal(pkglen(aml + 1, &pl), n - 1 - 13);
	assert_memory_equal(aml + 1 + pl, "\\_SB_", 5);
	const uint8_t *dev = aml + 1 + pl + 5;
	assert_int_equal(dev[0], 0x5b); /* Device (PCI0) */
	assert_int_equal(dev[1], 0x82);
	assert_int_equal(pkglen(dev + 2, &pl), n - 13 - (uint32_t)(dev + 2 - aml));
	assert_memory_equal(dev + 2 + pl, "PCI0", 4);
	/* _HID PNP0A08, _CID PNP0A03 (EISA ids as DWord constants) */
	assert_non_null(find_bytes(aml, n, (uint8_t[]){ 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08 }, 10));
	assert_non_null(find_bytes(aml, n, (uint8_t[]){ 0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 }, 10));
	assert_non_null(find_bytes(aml, n, (uint8_t[]){ 0x08, '_', 'S', 'E', 'G', 0x00 }, 6));
	assert_non_null(find_bytes(aml, n, (uint8_t[]){ 0x08, '_', 'B', 'B', 'N', 0x00 }, 6));
	/* _CRS: bus 0..0, the config ports, and the BAR window 0xc0000000-0xdfffffff */
	const uint8_t *crs = find_bytes(aml, n, "_CRS", 4);
	assert_non_null(crs);
	assert_int_equal(crs[4], 0x11); /* Buffer */
	assert_non_null(find_bytes(crs, 160, (uint8_t[]){ 0x88, 13, 0, 2 }, 4)); /* bus numbers */
	assert_non_null(find_bytes(crs, 160, (uint8_t[]){ 0x47, 1, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8 }, 8));
	const uint8_t *mem = find_bytes(crs, 160, (uint8_t[]){ 0x87, 23, 0, 0 }, 4);
	assert_non_null(mem);
	assert_int_equal(u32(mem + 10), 0xc0000000u);
	assert_int_equal(u32(mem + 14), 0xdfffffffu);
	assert_int_equal(u32(mem + 22), 0x20000000u);
	assert_non_null(find_bytes(crs, 160, (uint8_t[]){ 0x79, 0 }, 2)); /* end tag */
	/* _PRT: 31 slots x 4 pins; slot 1 INTA -> GSI 17 (pci.h's swizzle) */
	const uint8_t *prt = find_bytes(aml, n, "_PRT", 4);
	assert_non_null(prt);
	assert_int_equal(prt[4], 0x12);
	assert_int_equal(prt[5 + (prt[5] >> 6) + 1], 124);
	assert_non_null(find_bytes(prt, n - (size_t)(prt - aml),
				   (uint8_t[]){ 0x04, 0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x11 }, 10));
	assert_non_null(find_bytes(prt, n - (size_t)(prt - aml), /* slot 31 INTD -> 16 + 34 % 4 = 18 */
				   (uint8_t[]){ 0x04, 0x0c, 0xff, 0xff, 0x1f, 0x00, 0x0a, 0x03, 0x00, 0x0a, 0x12 }, 11));
}

static void test_dsdt(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_equal(boot_acpi_write(&m, 1, IOAPIC, 0, NULL, err, sizeof(err)), 0); /* no PCI */
	const uint8_t *f = at(find_table("FACP"), 276);
	uint64_t a = u64(f + 140);
	uint32_t len = check_sdt(a, "DSDT", 2);
	const uint8_t *aml = at(a + HDR, len - HDR);
	/* Scope (\_SB) {}: ScopeOp, a one-byte PkgLength covering the scope's
	 * body exactly, then the root-anchored name */
	assert_int_equal(aml[0], 0x10);
	assert_int_equal(aml[1] & 0xc0, 0); /* one-byte PkgLength form */
	assert_int_equal(aml[1], 6);
	assert_memory_equal(aml + 2, "\\_SB_", 5);
	/* then Name (\_S5, Package () { 0, 0, 0, 0 }): PM1a_CNT's SLP_TYP for
	 * soft-off (QEMU's value), without which Linux offers no power-off */
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 6, 4, 0, 0, 0, 0 };
	assert_int_equal(len, HDR + 7 + sizeof(s5));
	assert_memory_equal(aml + 7, s5, sizeof(s5));
}

static void test_ram_1mib(void **state)
{
	(void)state;
	struct guest_mem saved = m;
	struct guest_mem small;
	assert_int_equal(mem_init(&small, MIB(1)), 0);
	m = small;
	write_ok(4);
	check_madt(4);
	assert_int_equal(find_table("FACP"), BOOT_ACPI_FADT);
	mem_free(&m);
	m = saved;
}

/* mem_init refuses under 1 MiB, so make such RAM by hand. */
static void check_refused_ram(uint64_t size)
{
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	memset(buf, 0xa5, size);
	struct guest_mem g = { .base = buf, .ram_size = size, .nr_regions = 1 };
	g.regions[0] = (struct mem_region){ .gpa = 0, .size = size, .hva = buf };
	char err[256] = "";
	assert_int_equal(boot_acpi_write(&g, 1, IOAPIC, ECAM, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "RAM"));
	for (uint64_t i = 0; i < size; i++) /* nothing written */
		if (buf[i] != 0xa5)
			fail_msg("byte 0x%llx written", (unsigned long long)i);
	free(buf);
}

static void test_ram_below_1mib(void **state)
{
	(void)state;
	check_refused_ram(KIB(640));
	check_refused_ram(0xf0000); /* the tables would fit, the RSDP scan range would not */
	check_refused_ram(MIB(1) - KIB(4));
}

static void test_bad_args(void **state)
{
	(void)state;
	char err[256];
	err[0] = 0;
	assert_int_equal(boot_acpi_write(&m, 0, IOAPIC, ECAM, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CPUs"));
	err[0] = 0;
	assert_int_equal(boot_acpi_write(&m, -1, IOAPIC, ECAM, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CPUs"));
	err[0] = 0;
	assert_int_equal(boot_acpi_write(&m, BOOT_ACPI_MAX_CPUS + 1, IOAPIC, ECAM, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "254"));
	err[0] = 0;
	assert_int_equal(boot_acpi_write(&m, 1, 1ull << 32, ECAM, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "IOAPIC"));
	/* and none of these left an RSDP behind */
	assert_int_equal(find_rsdp(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rsdp_rsdt_xsdt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mcfg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dmar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_max_and_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fadt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_pci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_1mib, setup, teardown),
		cmocka_unit_test(test_ram_below_1mib),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
