/* MP table (Intel MP spec 1.4): structure, checksums, entries, CPU bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "memory.h"
#include "util.h"
#include "guest_ram.h"

#define IOAPIC 0xfec00000ull


/* Check the whole table for ncpus; returns the config table's length. */
static size_t check_table(int ncpus)
{
	const uint8_t *fp = at(BOOT_MPTABLE_FP, 16);
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(fp[8], 1);  /* length in paragraphs */
	assert_int_equal(fp[9], 4);  /* spec 1.4 */
	assert_int_equal(sum(fp, 16), 0);
	assert_int_equal(fp[11], 0); /* feature byte 1: a config table follows, no default config */
	uint32_t cfg_addr = u32(fp + 4);
	assert_int_equal(cfg_addr, BOOT_MPTABLE);

	const uint8_t *c = at(cfg_addr, 44);
	assert_memory_equal(c, "PCMP", 4);
	uint16_t len = u16(c + 4);
	assert_true(cfg_addr + len <= BOOT_MPTABLE_FP); /* does not run into the floating pointer */
	assert_int_equal(c[6], 4);
	assert_int_equal(sum(at(cfg_addr, len), len), 0);
	uint16_t count = u16(c + 34);
	assert_int_equal(count, ncpus + 1 + 1 + 16 + 2);
	assert_int_equal(u32(c + 36), 0xfee00000u);
	assert_int_equal(len, 44 + ncpus * 20 + (count - ncpus) * 8);

	const uint8_t *e = at(cfg_addr + 44, len - 44);
	for (int i = 0; i < ncpus; i++, e += 20) {
		assert_int_equal(e[0], 0);
		assert_int_equal(e[1], i); /* APIC id */
		assert_int_equal(e[3], i == 0 ? 0x3 : 0x1); /* enabled, BSP on CPU 0 */
		assert_int_not_equal(u32(e + 4), 0);         /* CPU signature */
		assert_true(u32(e + 8) & (1u << 9));         /* feature flags say APIC */
	}
	assert_int_equal(e[0], 1);
	assert_int_equal(e[1], 0);
	assert_memory_equal(e + 2, "ISA   ", 6);
	e += 8;
	assert_int_equal(e[0], 2);
	assert_int_equal(e[1], ncpus); /* IOAPIC id */
	assert_int_equal(e[2], 0x11);
	assert_int_equal(e[3], 1);
	assert_int_equal(u32(e + 4), IOAPIC);
	e += 8;
	for (int irq = 0; irq < 16; irq++, e += 8) {
		assert_int_equal(e[0], 3);
		assert_int_equal(e[1], 0);        /* INT */
		assert_int_equal(u16(e + 2), 0); /* conforms to bus */
		assert_int_equal(e[4], 0);        /* ISA bus */
		assert_int_equal(e[5], irq);
		assert_int_equal(e[6], ncpus);
		assert_int_equal(e[7], irq == 0 ? 2 : irq);
	}
	const uint8_t lint_type[2] = { 3, 1 }; /* ExtINT → LINT0, NMI → LINT1 */
	for (int i = 0; i < 2; i++, e += 8) {
		assert_int_equal(e[0], 4);
		assert_int_equal(e[1], lint_type[i]);
		assert_int_equal(e[6], 0xff);
		assert_int_equal(e[7], i);
	}
	return len;
}

static void test_one_cpu(void **state)
{
	(void)state;
	assert_int_equal(boot_mptable_write(&m, 1, IOAPIC), 0);
	check_table(1);
}

static void test_many_cpus(void **state)
{
	(void)state;
	const int counts[] = { 2, 4, 16, 64, BOOT_MPTABLE_MAX_CPUS };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		assert_int_equal(boot_mptable_write(&m, counts[i], IOAPIC), 0);
		check_table(counts[i]);
	}
}

static void test_rewrite_shrinks(void **state)
{
	(void)state;
	/* A smaller table written over a bigger one leaves no stale entries behind. */
	assert_int_equal(boot_mptable_write(&m, 64, IOAPIC), 0);
	assert_int_equal(boot_mptable_write(&m, 2, IOAPIC), 0);
	size_t len = check_table(2);
	const uint8_t *rest = at(BOOT_MPTABLE + len, BOOT_MPTABLE_FP - BOOT_MPTABLE - len);
	for (size_t i = 0; i < BOOT_MPTABLE_FP - BOOT_MPTABLE - len; i++)
		assert_int_equal(rest[i], 0);
}

static void test_bounds(void **state)
{
	(void)state;
	memset(mem_ptr(&m, BOOT_MPTABLE, BOOT_MPTABLE_SIZE), 0xaa, BOOT_MPTABLE_SIZE);
	assert_int_equal(boot_mptable_write(&m, BOOT_MPTABLE_MAX_CPUS + 1, IOAPIC), -1);
	assert_int_equal(boot_mptable_write(&m, 255, IOAPIC), -1);
	assert_int_equal(boot_mptable_write(&m, 0, IOAPIC), -1);
	assert_int_equal(boot_mptable_write(&m, -1, IOAPIC), -1);
	assert_int_equal(boot_mptable_write(&m, 1, 0x100000000ull), -1);
	/* a refused table writes nothing */
	assert_int_equal(*at(BOOT_MPTABLE_FP, 1), 0xaa);
	/* the bound is the real capacity: one more processor entry would not fit */
	assert_true(44 + 8 + 8 + 18 * 8 + (BOOT_MPTABLE_MAX_CPUS + 1) * 20 >
		    BOOT_MPTABLE_FP - BOOT_MPTABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_many_cpus),
		cmocka_unit_test(test_rewrite_shrinks),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
