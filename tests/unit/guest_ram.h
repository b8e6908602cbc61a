/*
 * Fixture for unit tests that read tables a loader wrote into guest RAM (MP
 * table, ACPI): 16 MiB of RAM in `m`, cmocka setup/teardown for it, a checked
 * pointer into it, little-endian field reads and the byte sum that firmware
 * tables must make zero. Include once per test program, after <cmocka.h>.
 */
#ifndef HVMM_TEST_GUEST_RAM_H
#define HVMM_TEST_GUEST_RAM_H

#include <stdint.h>
#include <string.h>

#include "memory.h"
#include "util.h"

static struct guest_mem m;

static int setup(void **state)
{
	(void)state;
	return mem_init(&m, MIB(16));
}

static int teardown(void **state)
{
	(void)state;
	mem_free(&m);
	return 0;
}

static inline const uint8_t *at(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mem_ptr(&m, gpa, len);
	assert_non_null(p);
	return p;
}

static inline uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static inline uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;
	while (len--)
		s += *p++;
	return s;
}

#endif
