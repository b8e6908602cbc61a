/*
 * clock: ns from the TSC. The frequency comes, in order, from CPUID 0x15
 * (crystal ratio), KVM/VMware's 0x40000010 leaf (TSC kHz), kvmclock's
 * tsc_to_system_mul (any KVM: QEMU and hvmm alike), CPUID 0x16 (base MHz) or,
 * failing those, a 10 ms PIT channel-2 count. The PIT wait is the only slow
 * path and happens once.
 */
#include "clock.h"

#include "arch.h"
#include "user/user.h"

uint64_t clock_tsc_hz;
const char *clock_source = "none";
static uint64_t clock_tsc0, clock_mult; /* ns = cycles * mult >> 32 */

static uint16_t clock_pit_read0(void)
{
	outb(0x43, 0x00); /* latch channel 0 */
	uint8_t lo = inb(0x40);
	return (uint16_t)(lo | inb(0x40) << 8);
}

/* PIT channel 0 in mode 2 (rate generator, 65536 counts per wrap), read back
 * with latch commands: needs no port 0x61 gate (microvm has none) and no IRQ
 * (IRQ 0 stays unrouted). Counts 10 ms = 11932 ticks of 1.193182 MHz. */
static uint64_t clock_from_pit(void)
{
	outb(0x43, 0x34);
	outb(0x40, 0);
	outb(0x40, 0);
	uint16_t prev = clock_pit_read0(), first = prev;
	uint64_t t0 = rdtsc(), t1, elapsed = 0;
	for (;;) {
		uint16_t cur = clock_pit_read0();
		elapsed += (uint16_t)(prev - cur);
		prev = cur;
		t1 = rdtsc();
		if (elapsed >= 11932)
			break;
		if (t1 - t0 > 20000000000ull || (cur == first && t1 - t0 > 100000000ull))
			return 0; /* no PIT, or a counter that does not move */
	}
	return (t1 - t0) * 1193182 / elapsed;
}

/* KVM's pvclock: ns = (tsc_delta shifted by tsc_shift) * mul >> 32. */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
};
static struct pvclock clock_pv __attribute__((aligned(64)));

static uint64_t clock_from_kvmclock(void)
{
	uint32_t r[4];
	cpuid(0x40000000, 0, r);
	/* "KVMKVMKVM\0\0\0" */
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d)
		return 0;
	cpuid(0x40000001, 0, r);
	if (!(r[0] & (1u << 3))) /* KVM_FEATURE_CLOCKSOURCE2 */
		return 0;
	wrmsr(0x4b564d01, (uint64_t)&clock_pv | 1);
	uint32_t mul = *(volatile uint32_t *)&clock_pv.tsc_to_system_mul;
	int8_t shift = *(volatile int8_t *)&clock_pv.tsc_shift;
	wrmsr(0x4b564d01, 0);
	if (!mul)
		return 0;
	uint64_t hz = (1000000000ull << 32) / mul;
	return shift >= 0 ? hz >> shift : hz << -shift;
}

void clock_init(void)
{
	uint32_t r[4];
	clock_tsc0 = rdtsc();
	cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2]) {
			clock_tsc_hz = (uint64_t)r[2] * r[1] / r[0];
			clock_source = "CPUID 0x15";
		}
	}
	if (!clock_tsc_hz) {
		cpuid(0x40000000, 0, r);
		if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
			cpuid(0x40000010, 0, r);
			if (r[0]) {
				clock_tsc_hz = (uint64_t)r[0] * 1000;
				clock_source = "CPUID 0x40000010";
			}
		}
	}
	if (!clock_tsc_hz) {
		clock_tsc_hz = clock_from_kvmclock();
		clock_source = "kvmclock";
	}
	if (!clock_tsc_hz && max >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0] & 0xffff) {
			clock_tsc_hz = (uint64_t)(r[0] & 0xffff) * 1000000;
			clock_source = "CPUID 0x16";
		}
	}
	if (!clock_tsc_hz) {
		clock_tsc_hz = clock_from_pit();
		clock_source = "PIT channel 0";
	}
	if (!clock_tsc_hz) {
		clock_tsc_hz = 1000000000; /* keeps arithmetic sane; tests say so */
		clock_source = "none (assumed 1 GHz)";
	}
	clock_mult = (1000000000ull << 32) / clock_tsc_hz;
	u_tsc_khz = clock_tsc_hz / 1000;
}

uint64_t clock_tsc_to_ns(uint64_t cycles)
{
	return (uint64_t)(((unsigned __int128)cycles * clock_mult) >> 32);
}

uint64_t clock_ns(void)
{
	return clock_tsc_to_ns(rdtsc() - clock_tsc0);
}

void clock_spin_ns(uint64_t ns)
{
	uint64_t end = clock_ns() + ns;
	while (clock_ns() < end)
		cpu_relax();
}
