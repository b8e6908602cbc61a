/*
 * smp: CPUs from the MP table (MP spec 1.4, what hvmm provides) and the ACPI
 * MADT (what QEMU provides), merged by APIC id, started with INIT-SIPI-SIPI into the
 * trampoline of entry.S. An AP then idles in HLT and wakes on an IPI to run
 * a ring-3 task or to answer a ping with an IPI of its own.
 */
#include "smp.h"

#include <stdint.h>

#include "apic.h"
#include "arch.h"
#include "boot.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "layout.h"
#include "task.h"
#include "user/user.h"

uint64_t ap_boot_stack;           /* read by ap_start64 */
static volatile unsigned ap_index; /* which struct cpu the starting AP takes */

static struct {
	task_fn volatile fn;
	void (*volatile kfn)(void); /* a ring-0 job (test=irqlat's sender) */
	volatile long arg, result;
	volatile bool done;
	volatile uint64_t ping, pong;
} smp_work[MAX_CPUS];

static uint32_t smp_apic_ids[MAX_CPUS];
static unsigned smp_dropped; /* CPUs beyond MAX_CPUS, not started */
static unsigned smp_found;

extern char ap_tramp_start[], ap_tramp_end[], ap_efer_extra[];
extern uint32_t efer_extra;

static struct smp_irq_info smp_irq = { .source = 0 };
static bool smp_irq_init;

static void smp_irq_reset(void)
{
	if (smp_irq_init)
		return;
	for (int i = 0; i < 16; i++)
		smp_irq.isa_pin[i] = -1;
	smp_irq_init = true;
}

static bool smp_sum_ok(const uint8_t *p, unsigned n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s == 0;
}

static bool smp_sig(const uint8_t *p, const char *sig, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i] != (uint8_t)sig[i])
			return false;
	return true;
}

static void smp_add(uint32_t apic_id)
{
	for (unsigned i = 0; i < smp_found; i++)
		if (smp_apic_ids[i] == apic_id)
			return;
	if (smp_found < MAX_CPUS)
		smp_apic_ids[smp_found++] = apic_id;
	else
		smp_dropped++;
}

static const uint8_t *smp_scan(uint64_t lo, uint64_t hi, const char *sig, unsigned n)
{
	for (uint64_t a = lo; a + 16 <= hi; a += 16)
		if (smp_sig((const uint8_t *)a, sig, n))
			return (const uint8_t *)a;
	return 0;
}

static bool smp_from_mptable(void)
{
	smp_irq_reset();
	const uint8_t *fp = smp_scan(0x9fc00, 0xa0000, "_MP_", 4);
	if (!fp)
		fp = smp_scan(0xf0000, 0x100000, "_MP_", 4);
	if (!fp || !smp_sum_ok(fp, 16))
		return false;
	uint32_t cfg = *(const uint32_t *)(fp + 4);
	if (!cfg || cfg >= 0x100000)
		return false;
	const uint8_t *t = (const uint8_t *)(uint64_t)cfg;
	uint16_t len = *(const uint16_t *)(t + 4), count = *(const uint16_t *)(t + 34);
	if (!smp_sig(t, "PCMP", 4))
		return false;
	if (!smp_sum_ok(t, len))
		kprintf("# smp: MP config table checksum is wrong; using it anyway\n");
	const uint8_t *e = t + 44, *end = t + len;
	int isa_bus = -1;
	/* Walk by length as well: qboot (QEMU microvm) leaves the entry count 0. */
	for (unsigned i = 0; e < end && (count == 0 || i < count) && e[0] <= 4; i++) {
		if (e[0] == 0) { /* processor: APIC id, flags bit 0 = usable */
			if (e[3] & 1)
				smp_add(e[1]);
			e += 20;
			continue;
		}
		if (e[0] == 1 && smp_sig(e + 2, "ISA", 3)) { /* bus */
			isa_bus = e[1];
		} else if (e[0] == 2 && (e[3] & 1) && !smp_irq.ioapic_base) { /* IOAPIC */
			smp_irq.ioapic_base = *(const uint32_t *)(e + 4);
			smp_irq.source = "MP table";
		} else if (e[0] == 3 && e[1] == 0 && e[4] == isa_bus && e[5] < 16) {
			/* I/O interrupt, INT type, from the ISA bus (listed before it) */
			smp_irq.isa_pin[e[5]] = e[7];
		}
		e += 8;
	}
	return smp_found > 0;
}

static bool smp_from_madt(void)
{
	smp_irq_reset();
	const uint8_t *rsdp = smp_scan(0xe0000, 0x100000, "RSD PTR ", 8);
	if (!rsdp || !smp_sum_ok(rsdp, 20))
		return false;
	/* RSDT (32-bit entries), or the XSDT (64-bit) of ACPI 2.0 when there is no RSDT (microvm). */
	uint64_t sdt = *(const uint32_t *)(rsdp + 16);
	unsigned esz = 4;
	if (!sdt && rsdp[15] >= 2) {
		sdt = *(const uint64_t *)(rsdp + 24);
		esz = 8;
	}
	if (!sdt || sdt >= 0x40000000 || !smp_sig((const uint8_t *)sdt, esz == 4 ? "RSDT" : "XSDT", 4))
		return false;
	uint32_t rlen = *(const uint32_t *)(sdt + 4);
	for (uint32_t off = 36; off + esz <= rlen; off += esz) {
		uint64_t tab = esz == 4 ? *(const uint32_t *)(sdt + off) : *(const uint64_t *)(sdt + off);
		if (!tab || tab >= 0x40000000 || !smp_sig((const uint8_t *)tab, "APIC", 4))
			continue;
		uint32_t len = *(const uint32_t *)(tab + 4);
		for (uint32_t o = 44; o + 2 <= len;) {
			const uint8_t *e = (const uint8_t *)(tab + o);
			if (e[1] < 2)
				break;
			if (e[0] == 0 && (*(const uint32_t *)(e + 4) & 1))
				smp_add(e[3]);
			else if (e[0] == 1 && !smp_irq.ioapic_base) { /* IOAPIC */
				smp_irq.ioapic_base = *(const uint32_t *)(e + 4);
				smp_irq.source = "ACPI MADT";
			} else if (e[0] == 2 && e[3] < 16) /* interrupt source override */
				smp_irq.isa_pin[e[3]] = (int)*(const uint32_t *)(e + 4);
			else if (e[0] == 9 && (*(const uint32_t *)(e + 8) & 1))
				smp_add(*(const uint32_t *)(e + 4));
			o += e[1];
		}
		return smp_found > 0;
	}
	return false;
}

void ap_main(void);
void ap_main(void)
{
	unsigned id = ap_index;
	cpu_init(id);
	apic_init(boot_opts.no_x2apic);
	struct cpu *c = cpu_self();
	c->apic_id = apic_id();
	__atomic_store_n(&c->online, true, __ATOMIC_RELEASE);
	for (;;) {
		void (*kfn)(void) = smp_work[id].kfn;
		if (kfn) {
			smp_work[id].kfn = 0;
			kfn();
			__atomic_store_n(&smp_work[id].done, true, __ATOMIC_RELEASE);
		}
		task_fn fn = smp_work[id].fn;
		if (fn) {
			smp_work[id].fn = 0;
			smp_work[id].result = task_run(fn, smp_work[id].arg);
			__atomic_store_n(&smp_work[id].done, true, __ATOMIC_RELEASE);
		}
		if (smp_work[id].ping != smp_work[id].pong) {
			smp_work[id].pong = smp_work[id].ping;
			apic_send_ipi(cpus[0].apic_id, VEC_IPI); /* the answer */
		}
		irq_wait(); /* an IPI wakes us; STI;HLT loses no wake-up */
	}
}

static bool smp_wait(volatile bool *flag, uint64_t ns)
{
	uint64_t t0 = clock_ns();
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		if (clock_ns() - t0 > ns)
			return false;
	return true;
}

static bool smp_start_ap(unsigned idx, uint32_t apic)
{
	struct cpu *c = &cpus[idx];
	ap_index = idx;
	ap_boot_stack = (uint64_t)(c->main_stack + sizeof(c->main_stack));
	apic_send_init(apic);
	clock_spin_ns(10000000);
	for (int i = 0; i < 2 && !c->online; i++) {
		apic_send_sipi(apic, AP_TRAMPOLINE >> 12);
		smp_wait(&c->online, i ? 2000000000ull : 200000);
	}
	return c->online;
}

static bool smp_scanned, smp_mp, smp_madt;
static unsigned smp_n_mp;

/* Both sources, merged by APIC id: SeaBIOS's MP table lists only the CPUs it
 * woke itself, QEMU's MADT lists them all. */
static void smp_scan_tables(void)
{
	if (smp_scanned)
		return;
	smp_mp = smp_from_mptable();
	smp_n_mp = smp_found;
	smp_madt = smp_from_madt();
	smp_scanned = true;
}

void smp_irq_info(struct smp_irq_info *out)
{
	smp_scan_tables();
	*out = smp_irq;
}

/* Find and start every AP (once): the number of CPUs up. */
static unsigned smp_bringup(smp_tap_fn tap)
{
	static bool up_done;
	if (up_done)
		return cpu_count;
	up_done = true;
	/* The trampoline must sit below 1 MiB at a page boundary (SIPI vector). */
	uint8_t *dst = (uint8_t *)AP_TRAMPOLINE;
	for (const char *p = ap_tramp_start; p < ap_tramp_end; p++)
		*dst++ = (uint8_t)*p;
	*(uint32_t *)(AP_TRAMPOLINE + (ap_efer_extra - ap_tramp_start)) = efer_extra;

	unsigned n = 1;
	for (unsigned i = 0; i < smp_found && n < MAX_CPUS; i++) {
		if (smp_apic_ids[i] == cpus[0].apic_id)
			continue;
		uint64_t t0 = clock_ns();
		bool up = smp_start_ap(n, smp_apic_ids[i]);
		tap(up, "smp: AP with APIC id %u came up as cpu %u (INIT-SIPI-SIPI, %lu us)", smp_apic_ids[i], n,
		    (clock_ns() - t0) / 1000);
		if (up)
			n++;
	}
	cpu_count = n;
	return n;
}

void smp_test(smp_tap_fn tap, smp_skip_fn skip)
{
	cpus[0].apic_id = apic_id();
	if (!apic_timer_hz)
		apic_timer_calibrate();
	smp_scan_tables();
	bool mp = smp_mp, madt = smp_madt;
	unsigned n_mp = smp_n_mp;
	if (!mp && !madt) {
		skip("smp", "no MP table and no ACPI MADT");
		return;
	}
	tap(true, "smp: %u CPUs found (MP table: %s, %u CPUs; ACPI MADT: %s) BSP APIC id %u", smp_found,
	    mp ? "yes" : "no", n_mp, madt ? "yes" : "no", cpus[0].apic_id);
	if (smp_dropped)
		kprintf("# smp: %u more CPUs listed than this kernel supports (MAX_CPUS %u): not started\n",
			smp_dropped, MAX_CPUS);
	if (smp_found < 2) {
		skip("smp: AP bring-up", "only one CPU");
		return;
	}

	smp_bringup(tap);

	for (unsigned i = 1; i < cpu_count; i++) {
		smp_work[i].done = false;
		smp_work[i].arg = (long)i;
		smp_work[i].fn = u_smp;
		apic_send_ipi(cpus[i].apic_id, VEC_IPI);
	}
	for (unsigned i = 1; i < cpu_count; i++) {
		bool done = smp_wait(&smp_work[i].done, 5000000000ull);
		tap(done && smp_work[i].result == (long)i + 100, "smp: cpu %u ran a ring-3 task (result %ld)", i,
		    done ? smp_work[i].result : -1);
	}

	const unsigned pings = 100;
	for (unsigned i = 1; i < cpu_count; i++) {
		uint64_t got0 = cpus[i].ipis, ans0 = cpus[0].ipis, t0 = clock_ns();
		unsigned k = 0;
		for (; k < pings; k++) {
			uint64_t want = cpus[0].ipis + 1, t1 = clock_ns();
			smp_work[i].ping++;
			/* Wait in HLT, not in a spin that would take the host CPU from
			 * the AP: the answer or a 1 s one-shot timer wakes us. */
			if (apic_timer_hz)
				apic_timer_oneshot_ns(1000000000ull);
			apic_send_ipi(cpus[i].apic_id, VEC_IPI);
			while (cpus[0].ipis < want && clock_ns() - t1 < 1000000000ull) {
				if (apic_timer_hz)
					irq_wait();
				else
					irq_wait_poll();
			}
			if (cpus[0].ipis < want)
				break;
		}
		uint64_t dt = clock_ns() - t0;
		apic_timer_stop();
		tap(k == pings && cpus[i].ipis - got0 >= pings && cpus[0].ipis - ans0 >= pings,
		    "smp: cpu %u answered %u of %u IPIs (%lu us per round trip)", i, k, pings, k ? dt / 1000 / k : 0);
	}
}

/* ---- test=irqlat: interrupt latency, one IPI at a time ---- */

#define LAT_MAX 1000
static volatile uint64_t lat_send[LAT_MAX], lat_recv[LAT_MAX];
static volatile unsigned lat_n, lat_armed, lat_done;
static volatile uint64_t lat_gap_ns;

/* cpu 1, in ring 0: for each round, wait until cpu 0 is in its state (and
 * a while more, so that a halted one has really gone to sleep in the VMM),
 * read the TSC, send the IPI, wait until cpu 0 took it. */
static void irqlat_sender(void)
{
	for (unsigned k = 0; k < lat_n; k++) {
		while (lat_armed != k + 1)
			__asm__ volatile("pause");
		clock_spin_ns(lat_gap_ns);
		lat_send[k] = rdtsc();
		apic_send_ipi(cpus[0].apic_id, VEC_IPI);
		while (lat_done != k + 1)
			__asm__ volatile("pause");
	}
}

static void irqlat_sort(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

void smp_irqlat(smp_tap_fn tap, smp_skip_fn skip, bool halted, unsigned iters)
{
	cpus[0].apic_id = apic_id();
	smp_scan_tables();
	if (smp_found < 2 || smp_bringup(tap) < 2) {
		skip("irqlat", "needs two CPUs (--cpus 2)");
		return;
	}
	apic_timer_stop(); /* nothing but the IPIs */
	lat_n = iters < LAT_MAX ? iters : LAT_MAX;
	lat_gap_ns = 200000; /* 200 us: a halted target is asleep by then */
	lat_armed = lat_done = 0;
	smp_work[1].done = false;
	smp_work[1].kfn = irqlat_sender;
	apic_send_ipi(cpus[1].apic_id, VEC_IPI); /* wake it to take the job */
	struct cpu *c = cpu_self();
	unsigned got = 0;
	for (unsigned k = 0; k < lat_n; k++) {
		uint64_t before = c->ipis, t0 = clock_ns();
		lat_armed = k + 1;
		if (halted) {
			while (c->ipis == before && clock_ns() - t0 < 2000000000ull)
				irq_wait(); /* sti; hlt */
		} else {
			__asm__ volatile("sti");
			while (c->ipis == before && clock_ns() - t0 < 2000000000ull)
				__asm__ volatile("pause");
		}
		if (c->ipis == before)
			break;
		lat_recv[k] = c->ipi_tsc;
		got++;
		lat_done = k + 1;
	}
	__asm__ volatile("cli");
	static uint64_t ns[LAT_MAX];
	unsigned n = 0;
	for (unsigned k = 0; k < got; k++)
		if (lat_recv[k] > lat_send[k])
			ns[n++] = clock_tsc_to_ns(lat_recv[k] - lat_send[k]);
	irqlat_sort(ns, n);
	bool ok = got == lat_n && n == got && n > 0;
	if (n)
		kprintf("# irqlat: target %s, %u IPIs: median %lu ns, p10 %lu ns, p90 %lu ns, max %lu ns\n",
			halted ? "halted" : "running", n, ns[n / 2], ns[n / 10], ns[n * 9 / 10], ns[n - 1]);
	tap(ok, "irqlat: %u of %u IPIs to a %s cpu 0 arrived and were timed", n, lat_n,
	    halted ? "halted" : "running");
}
