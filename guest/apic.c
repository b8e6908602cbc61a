/*
 * apic: LAPIC access through one pair of functions so the rest of the kernel
 * does not care whether it is xAPIC (MMIO at the APIC base) or x2APIC (MSR
 * 0x800 + reg/16). The timer runs with divide-by-16.
 */
#include "apic.h"

#include "arch.h"
#include "clock.h"
#include "layout.h"

#define APIC_ID 0x20
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR 0x390
#define APIC_TIMER_DIV 0x3e0
#define APIC_LVT_LINT0 0x350

#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)

bool apic_x2;
uint64_t apic_timer_hz;
const char *apic_timer_source = "uncalibrated";
static uint64_t apic_base = 0xfee00000;

static uint32_t apic_read(uint32_t reg)
{
	if (apic_x2)
		return (uint32_t)rdmsr(0x800 + (reg >> 4));
	return mmio_read32(apic_base + reg);
}

static void apic_write(uint32_t reg, uint32_t v)
{
	if (apic_x2)
		wrmsr(0x800 + (reg >> 4), v);
	else
		mmio_write32(apic_base + reg, v);
}

void apic_init(bool forbid_x2)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	uint64_t base = rdmsr(MSR_APIC_BASE);
	apic_base = base & 0xfffff000;
	base |= 1u << 11; /* global enable */
	apic_x2 = !forbid_x2 && (r[2] & (1u << 21));
	if (apic_x2)
		base |= 1u << 10;
	wrmsr(MSR_APIC_BASE, base);
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);
	/* The legacy 8259 reaches the CPU only as ExtINT on LINT0: masking LINT0
	 * silences it whatever a BIOS left there (SeaBIOS: the PIT on vector 8,
	 * which would look like a #DF), with no port I/O, hence no VM exits. */
	apic_write(APIC_LVT_LINT0, LVT_MASKED);
	apic_write(APIC_TIMER_DIV, 0x3); /* ÷16 */
	apic_write(APIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
}

uint32_t apic_id(void)
{
	uint32_t id = apic_read(APIC_ID);
	return apic_x2 ? id : id >> 24;
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

void apic_timer_calibrate(void)
{
	uint32_t r[4];
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
		cpuid(0x40000010, 0, r);
		if (r[1]) {
			apic_timer_hz = (uint64_t)r[1] * 1000 / 16;
			apic_timer_source = "CPUID 0x40000010 bus kHz";
			return;
		}
	}
	/* Count down from the top for 10 ms of TSC time. The start and the
	 * read each exit to the hypervisor, and a vCPU descheduled on the way
	 * back (a loaded nested host: 8 ms once, which made every timer 1.8x
	 * too slow) puts time on one clock and not the other: each is
	 * bracketed by TSC reads, and the try with the least slack counts. */
	apic_write(APIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	uint64_t best_slack = ~0ull;
	for (int try = 0; try < 5 && best_slack > 100000; try++) {
		uint64_t a = clock_ns();
		apic_write(APIC_TIMER_INIT, 0xffffffff);
		uint64_t b = clock_ns();
		clock_spin_ns(10000000);
		uint64_t c = clock_ns();
		uint32_t left = apic_read(APIC_TIMER_CUR);
		uint64_t d = clock_ns();
		apic_write(APIC_TIMER_INIT, 0);
		uint64_t slack = (b - a) + (d - c);
		if (slack < best_slack) {
			best_slack = slack;
			/* the middle of each bracket */
			uint64_t dt = (c + d) / 2 - (a + b) / 2;
			apic_timer_hz = (uint64_t)(0xffffffffu - left) * 1000000000ull / dt;
		}
	}
	apic_timer_source = "measured against the TSC";
}

void apic_timer_periodic(uint32_t hz)
{
	apic_write(APIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, (uint32_t)(apic_timer_hz / hz));
}

void apic_timer_oneshot_ns(uint64_t ns)
{
	uint64_t n = apic_timer_hz * ns / 1000000000ull;
	if (n == 0)
		n = 1;
	if (n > 0xffffffffu)
		n = 0xffffffffu;
	apic_write(APIC_LVT_TIMER, VEC_TIMER);
	apic_write(APIC_TIMER_INIT, (uint32_t)n);
}

void apic_timer_stop(void)
{
	apic_write(APIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, 0);
}

static void apic_icr(uint32_t dest, uint32_t lo)
{
	if (apic_x2) {
		wrmsr(0x830, ((uint64_t)dest << 32) | lo);
		return;
	}
	apic_write(APIC_ICR_HI, dest << 24);
	apic_write(APIC_ICR_LO, lo);
	while (apic_read(APIC_ICR_LO) & (1u << 12)) /* delivery pending */
		cpu_relax();
}

void apic_send_ipi(uint32_t dest, uint8_t vector)
{
	apic_icr(dest, vector); /* fixed, physical */
}

void apic_send_init(uint32_t dest)
{
	apic_icr(dest, 0x4500); /* INIT, level assert */
}

void apic_send_sipi(uint32_t dest, uint8_t page)
{
	apic_icr(dest, 0x4600 | page);
}
