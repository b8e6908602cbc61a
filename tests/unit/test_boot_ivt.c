/*
 * boot_ivt_write: the real-mode IVT hvmm leaves for guests without firmware.
 * Every vector must lead to a handler that returns; the 8259's vectors to
 * handlers that EOI the right chips. The handlers are decoded byte by byte
 * (they are 16-bit code the guest runs), and must sit in the BIOS area the
 * memory maps report reserved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "memory.h"
#include "util.h"

static struct guest_mem mem;

static int setup(void **state)
{
	(void)state;
	return mem_init(&mem, MIB(2));
}

static int teardown(void **state)
{
	(void)state;
	mem_free(&mem);
	return 0;
}

/* The linear address vector v points at. */
static uint32_t target(unsigned v)
{
	uint16_t e[2];
	assert_int_equal(mem_read(&mem, BOOT_IVT + 4 * v, e, 4), 0);
	return ((uint32_t)e[1] << 4) + e[0];
}

/* The stub at a: which ports it writes 0x20 (EOI) to, in order; it must
 * save and restore AX and end in IRET within BOOT_IVT_CODE_SIZE. */
static unsigned stub_eois(uint32_t a, uint8_t ports[4])
{
	const uint8_t *c = mem_ptr(&mem, a, 16);
	assert_non_null(c);
	assert_true(a >= BOOT_IVT_CODE && a + 16 <= BOOT_IVT_CODE + BOOT_IVT_CODE_SIZE);
	unsigned n = 0, i = 0;
	bool pushed = false, al_eoi = false;
	for (;;) {
		assert_true(i < 16);
		switch (c[i]) {
		case 0x50: /* push %ax */
			pushed = true;
			i++;
			break;
		case 0xb0: /* mov $imm, %al */
			al_eoi = c[i + 1] == 0x20;
			i += 2;
			break;
		case 0xe6: /* out %al, $imm */
			assert_true(pushed && al_eoi);
			assert_true(n < 4);
			ports[n++] = c[i + 1];
			i += 2;
			break;
		case 0x58: /* pop %ax */
			assert_true(pushed);
			pushed = false;
			i++;
			break;
		case 0xcf: /* iret */
			assert_false(pushed);
			return n;
		default:
			fail_msg("unexpected byte 0x%02x at 0x%x", c[i], a + i);
		}
	}
}

static void test_vectors(void **state)
{
	(void)state;
	memset(mem_ptr(&mem, 0, 0x400), 0xee, 0x400);
	assert_int_equal(boot_ivt_write(&mem), 0);
	uint8_t ports[4];
	for (unsigned v = 0; v < BOOT_IVT_VECTORS; v++) {
		unsigned n = stub_eois(target(v), ports);
		if (v >= 0x08 && v < 0x10) {
			assert_int_equal(n, 1);
			assert_int_equal(ports[0], 0x20); /* master */
		} else if (v >= 0x70 && v < 0x78) {
			assert_int_equal(n, 2);
			assert_int_equal(ports[0], 0xa0); /* slave first, then the cascade */
			assert_int_equal(ports[1], 0x20);
		} else {
			assert_int_equal(n, 0); /* a bare IRET */
		}
	}
	/* the vectors the PIC is given are the ones the IVT expects */
	assert_int_equal(BOOT_IVT_MASTER_BASE, 0x08);
	assert_int_equal(BOOT_IVT_SLAVE_BASE, 0x70);
	/* the handlers are in the BIOS area, clear of the ACPI tables */
	assert_true(BOOT_IVT_CODE >= BOOT_ACPI_END && BOOT_IVT_CODE + BOOT_IVT_CODE_SIZE <= MIB(1));
	/* reachable as F000:xxxx */
	uint16_t seg;
	assert_int_equal(mem_read(&mem, BOOT_IVT + 2, &seg, 2), 0);
	assert_int_equal(seg, 0xf000);
}

static void test_small_ram(void **state)
{
	(void)state;
	/* RAM that does not reach the BIOS area (none at all here: every VM has
	 * at least MEM_MIN_SIZE) is an error, not a write outside it */
	struct guest_mem none = { 0 };
	assert_int_equal(boot_ivt_write(&none), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_small_ram),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
