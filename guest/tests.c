/*
 * tests: each test=NAME runs in the kernel as a short driver that starts
 * ring-3 tasks and checks what came back, printing TAP. The run ends with a
 * debug-exit write: EXIT_PASS, EXIT_FAIL, or (from panic) EXIT_PANIC.
 */
#include "tests.h"

#include <stdarg.h>

#include "apic.h"
#include "arch.h"
#include "boot.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "exitcost.h"
#include "ioapic.h"
#include "layout.h"
#include "median.h"
#include "mm.h"
#include "nested.h"
#include "vtd.h"
#include "pci.h"
#include "smp.h"
#include "task.h"
#include "trap.h"
#include "user/unet.h"
#include "user/user.h"
#include "user/virtio.h"
#include "user/vtest.h"

extern char syscall_entry[];

static unsigned tap_n, tap_failed;

static void tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	if (!ok)
		tap_failed++;
	kprintf("%sok %u - ", ok ? "" : "not ", tap_n);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
}

void tests_user_tap(bool ok, const char *msg, unsigned len)
{
	char b[201];
	unsigned n = len < sizeof(b) - 1 ? len : sizeof(b) - 1;
	for (unsigned i = 0; i < n; i++)
		b[i] = msg[i] == '\n' ? ' ' : msg[i];
	b[n] = 0;
	tap(ok, "%s", b);
}

static void tap_skip(const char *what, const char *reason)
{
	tap_n++;
	kprintf("ok %u - %s # SKIP %s\n", tap_n, what, reason);
}

static bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* ---- syscall entries: probing ----------------------------------------------- */

static bool probe_done;
static bool probe_ok[U_ENTRY_COUNT];
static char probe_why[U_ENTRY_COUNT][96];

static void why_set(char *d, const char *a, const char *b)
{
	unsigned n = 0;
	while (*a && n < 95)
		d[n++] = *a++;
	while (*b && n < 95)
		d[n++] = *b++;
	d[n] = 0;
}

/* Runs one ring-3 probe task per entry; a fault means the host did not
 * deliver that entry to ring 0. */
static void probe_entries(void)
{
	static const char *const label[U_ENTRY_COUNT] = { "int 0x80: ", "syscall: ", "int3: " };
	if (probe_done)
		return;
	trap_quiet = 1;
	for (int e = 0; e < U_ENTRY_COUNT; e++) {
		long st = task_run(u_probe, e);
		struct task_fault *f = &cpu_self()->fault;
		probe_ok[e] = st == 0;
		if (st == 0)
			why_set(probe_why[e], label[e], "works");
		else if (!f->killed)
			why_set(probe_why[e], label[e], "wrong result from the kernel");
		else if (e == U_ENTRY_SYSCALL && f->vector == 14 && f->rip == (uint64_t)syscall_entry)
			why_set(probe_why[e], label[e], "#PF at LSTAR in ring 3 (SYSCALL did not enter ring 0)");
		else if (f->vector == 6)
			why_set(probe_why[e], label[e], "#UD from the host, not delivered to ring 0");
		else
			why_set(probe_why[e], label[e], trap_name(f->vector));
	}
	trap_quiet = 0;
	probe_done = true;
}

static void select_entry(void)
{
	const char *s = boot_opts.syscall;
	for (int e = 0; e < U_ENTRY_COUNT; e++) {
		if (str_eq(s, u_entry_names[e])) {
			u_entry = e;
			kprintf("# syscall entry: %s (from the command line)\n", u_entry_names[e]);
			return;
		}
	}
	if (!str_eq(s, "auto"))
		kprintf("# syscall=%s unknown, probing\n", s);
	probe_entries();
	for (int e = 0; e < U_ENTRY_COUNT; e++) {
		kprintf("# probe %s\n", probe_why[e]);
		if (probe_ok[e]) {
			u_entry = e;
			kprintf("# syscall entry: %s (auto: first that works)\n", u_entry_names[e]);
			return;
		}
	}
	panic("no syscall entry reaches ring 0");
}

/* ---- the tests ----------------------------------------------------------------- */

static void test_hello(void)
{
	long st = task_run(u_hello, 0);
	tap(st == 0, "hello: ring-3 task printed through %s and exited 0 (status %ld)",
	    u_entry_names[u_entry], st);
}

static void test_exceptions(void)
{
	static const struct {
		int kind;
		uint32_t vector;
		const char *what;
	} cases[] = {
		{ U_FAULT_DE, 0, "#DE divide by zero" },
		{ U_FAULT_UD, 6, "#UD ud2" },
		{ U_FAULT_GP, 13, "#GP cli at IOPL 0" },
		{ U_FAULT_PF, 14, "#PF unmapped user address" },
		{ U_FAULT_KERNEL_WRITE, 14, "#PF write to a kernel-only page" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long st = task_run(u_fault, cases[i].kind);
		struct task_fault *f = &cpu_self()->fault;
		bool ok = st == TASK_KILLED && f->killed && f->vector == cases[i].vector;
		if (ok && cases[i].vector == 14)
			ok = (f->err & 4) && (cases[i].kind == U_FAULT_PF ? !(f->err & 1) : (f->err & 3) == 3);
		tap(ok, "exceptions: %s in ring 3 caught, task killed (vector %u err 0x%lx)", cases[i].what,
		    f->vector, f->err);
	}
	long st = task_run(u_hello, 0);
	tap(st == 0, "exceptions: the kernel goes on, a new task runs (status %ld)", st);
}

static void test_yield(void);

static void test_syscall(void)
{
	static const char *const what[U_ENTRY_COUNT] = { "int 0x80 (DPL3 gate, IRETQ)",
							 "SYSCALL/SYSRET", "int3 (DPL3 gate, IRETQ)" };
	probe_entries();
	if (boot_opts.iters)
		u_bench_iters = boot_opts.iters;
	for (int e = 0; e < U_ENTRY_COUNT; e++) {
		char name[64];
		why_set(name, "syscall: round trips through ", what[e]);
		if (!probe_ok[e]) {
			tap_skip(name, probe_why[e]);
			continue;
		}
		uint64_t t0 = clock_ns();
		long st = task_run(u_bench, e);
		uint64_t dt = clock_ns() - t0;
		tap(st == 0, "%s: %lu round trips, %lu.%lu ns each", name, u_bench_iters,
		    u_bench_ns_x10 / 10, u_bench_ns_x10 % 10);
		kprintf("# syscall %s: %lu.%lu ns per round trip (TSC %s, %lu ms total)\n",
			u_entry_names[e], u_bench_ns_x10 / 10, u_bench_ns_x10 % 10, clock_source,
			dt / 1000000);
	}
	test_yield();
}

/* Three ring-3 tasks on one CPU that yield after each step must interleave. */
static void test_yield(void)
{
	const task_fn fns[3] = { u_yield_worker, u_yield_worker, u_yield_worker };
	const long args[3] = { 0, 1, 2 };
	long st[3];
	u_yield_len = 0;
	for (unsigned i = 0; i < sizeof(u_yield_log); i++)
		u_yield_log[i] = 0;
	task_run_group(3, fns, args, st, 0);
	const char *want = "abcabcabcabc";
	bool ok = st[0] == 0 && st[1] == 1 && st[2] == 2;
	for (unsigned i = 0; want[i]; i++)
		ok = ok && u_yield_log[i] == want[i];
	tap(ok && u_yield_len == 12, "syscall: yield switches between 3 ring-3 tasks round-robin (\"%s\", want \"%s\")",
	    (const char *)u_yield_log, want);
}

static void test_paging(void)
{
	const long pages = 64;
	uint64_t before = task_demand_faults;
	long st = task_run(u_demand, pages);
	uint64_t n = task_demand_faults - before;
	tap(st == 0 && n == (uint64_t)pages, "paging: %ld ring-3 demand faults handled, data intact (%lu faults, status %ld)",
	    pages, n, st);
	if (cpu_has_nx) {
		trap_quiet = 1;
		st = task_run(u_exec_data, 0);
		trap_quiet = 0;
		struct task_fault *f = &cpu_self()->fault;
		tap(st == TASK_KILLED && f->vector == 14 && (f->err & 0x10),
		    "paging: executing a NX user data page faults (#PF err 0x%lx)", f->err);
	} else {
		tap_skip("paging: NX on user data pages", "CPU lacks NX (CPUID 0x80000001 EDX.20)");
	}
	for (uint64_t va = USER_DEMAND_BASE; va < USER_DEMAND_BASE + USER_DEMAND_SIZE; va += PAGE_SIZE) {
		uint64_t pa = mm_unmap_user(va);
		if (pa)
			mm_free_page(pa);
	}
	st = task_run(u_demand, 1);
	tap(st == 0 && task_demand_faults - before == (uint64_t)pages + 2,
	    "paging: unmapped pages fault in again after being freed");
}

static bool timer_ready(void)
{
	if (!apic_timer_hz)
		apic_timer_calibrate();
	kprintf("# LAPIC timer: %s mode, %lu Hz after /16 (%s); reference clock TSC %lu kHz (%s)\n",
		apic_x2 ? "x2APIC" : "xAPIC", apic_timer_hz, apic_timer_source, clock_tsc_hz / 1000,
		clock_source);
	return apic_timer_hz != 0;
}

static void within(const char *what, uint64_t got, uint64_t want, const char *unit)
{
	tap(got * 10 >= want * 9 && got * 10 <= want * 11, "%s: %lu %s, want %lu ±10%%", what, got, unit, want);
}


/* Spin for ns with interrupts let in between (ring 0 runs with IF clear). */
static void spin_irqs_open(uint64_t ns)
{
	uint64_t end = clock_ns() + ns;
	while (clock_ns() < end)
		irq_wait_poll();
}

static void test_timer(void)
{
	if (!timer_ready()) {
		tap_skip("timer", "LAPIC timer frequency unknown");
		return;
	}
	struct cpu *c = cpu_self();
	const uint32_t hz = 1000;
	const uint64_t window = 200000000; /* ns */
	/* The period is judged by the median interval between ticks, not by
	 * the count alone: a host that stalls the whole VM for a few ms (a
	 * nested host under TCG does) makes KVM coalesce the ticks it missed,
	 * which says nothing about the period. The count still may not exceed
	 * the window's worth (no extra ticks) nor fall below half of it. */
	/* Up to three windows, the first within bounds counts (as the one-shot
	 * checks below take the shortest of three): a loaded nested host
	 * stretched one window's median to 1116 us (a full test run,
	 * 2026-12-07); a timer that is off is off in every window. */
	static uint64_t gap[256];
	uint64_t n = 0, median = 0, want = hz * window / 1000000000;
	bool ok = false;
	for (int w = 0; w < 3 && !ok; w++) {
		uint32_t ngap = 0;
		apic_timer_periodic(hz);
		uint64_t t0 = clock_ns(), k0 = c->ticks, last = 0, seen = k0;
		while (clock_ns() - t0 < window) {
			irq_wait();
			if (c->ticks != seen) {
				uint64_t now = clock_ns();
				if (last && c->ticks == seen + 1 && ngap < sizeof(gap) / sizeof(gap[0]))
					gap[ngap++] = now - last;
				last = now;
				seen = c->ticks;
			}
		}
		n = c->ticks - k0;
		apic_timer_stop();
		median = median_u64(gap, ngap) / 1000;
		ok = n * 2 >= want && n * 10 <= want * 11 && median * 10 >= 9000 && median * 10 <= 11000;
		if (!ok) {
			kprintf("# timer: periodic window %d: median %lu us, %lu ticks\n", w + 1, median, n);
			spin_irqs_open(2000000); /* a tick raised before the stop lands here */
		}
	}
	tap(ok,
	    "timer: periodic 1000 Hz, median tick interval: %lu us, want 1000 ±10%% (%lu ticks in 200 ms of TSC time, want %lu, at least half)",
	    median, n, want);
	/* A periodic tick already raised when the timer stopped is still
	 * delivered; let it land now, or it ends the first one-shot wait early
	 * (seen on QEMU TCG: "one-shot 50 ms: 71 us"). */
	spin_irqs_open(2000000);

	/* 50 and 100 ms: the wake-up latency of a halted vCPU on a busy 2-core
	 * host is up to a few ms, too much for ±10% of 10 ms. Three tries each,
	 * the shortest within 10%: no try may fire early (the shortest would
	 * show it), and a nested host descheduled for 12 ms in one try (seen:
	 * 61.7 ms for 50) says nothing about the timer; one always late does. */
	for (int i = 0; i < 2; i++) {
		const uint64_t want = i ? 100000000 : 50000000;
		uint64_t best = ~0ull;
		for (int try = 0; try < 3; try++) {
			uint64_t k0 = c->ticks, t0 = clock_ns();
			apic_timer_oneshot_ns(want);
			while (c->ticks == k0 && clock_ns() - t0 < 10 * want)
				irq_wait();
			uint64_t dt = clock_ns() - t0;
			best = dt < best ? dt : best;
		}
		within(i ? "timer: one-shot 100 ms (shortest of 3)" : "timer: one-shot 50 ms (shortest of 3)",
		       best / 1000, want / 1000, "us");
	}
	uint64_t k0 = c->ticks;
	spin_irqs_open(30000000); /* interrupts open: a second firing would count */
	tap(c->ticks == k0, "timer: a one-shot fires once (%lu extra ticks in 30 ms)", c->ticks - k0);
}

static void test_halt(void)
{
	if (!timer_ready()) {
		tap_skip("halt", "LAPIC timer frequency unknown");
		return;
	}
	struct cpu *c = cpu_self();
	uint64_t k0 = c->ticks, t0 = clock_ns();
	apic_timer_oneshot_ns(20000000);
	irq_wait(); /* one HLT: the only wake-up source armed is the timer */
	uint64_t dt = clock_ns() - t0;
	tap(c->ticks == k0 + 1 && dt >= 18000000, "halt: HLT idles until the timer wakes it (%lu us, %lu ticks)",
	    dt / 1000, c->ticks - k0);
	long ms = task_run(u_sleep_test, 30);
	tap(ms >= 29 && ms <= 45, "halt: ring-3 sleep(30 ms) through %s idles in HLT: %ld ms",
	    u_entry_names[u_entry], ms);
}

/* COM1 in loopback: each byte sent comes back as a receive interrupt on ISA
 * IRQ 4, routed by the IOAPIC to the BSP. Nothing may print meanwhile (the
 * console is looped back). */
static void test_serial(void)
{
	if (!timer_ready()) {
		tap_skip("serial", "LAPIC timer frequency unknown (needed for the timeout)");
		return;
	}
	if (!ioapic_route_isa(4, VEC_SERIAL, apic_id())) {
		tap_skip("serial: IOAPIC routing of IRQ 4", "no IOAPIC");
		return;
	}
	static const char msg[] = "hvmm-loop";
	char got[sizeof(msg)] = { 0 };
	unsigned n = 0, irqs0 = console_rx_irqs;
	uint64_t t0 = clock_ns();
	console_loopback(1);
	for (unsigned i = 0; i + 1 < sizeof(msg); i++) {
		outb(0x3f8, (uint8_t)msg[i]);
		apic_timer_oneshot_ns(100000000); /* 100 ms per byte at most */
		int c;
		uint64_t t1 = clock_ns();
		while ((c = console_rx_pop()) < 0 && clock_ns() - t1 < 100000000)
			irq_wait();
		if (c < 0)
			break;
		got[n++] = (char)c;
	}
	apic_timer_stop();
	console_loopback(0);
	ioapic_mask_isa(4);
	uint64_t dt = clock_ns() - t0;
	unsigned irqs = console_rx_irqs - irqs0;
	tap(n == sizeof(msg) - 1 && irqs >= n, "serial: %u loopback bytes \"%s\" received by IRQ 4 through the IOAPIC at 0x%lx (%u interrupts, %lu us per byte; routing from %s)",
	    n, got, ioapic_base, irqs, n ? dt / 1000 / n : 0, ioapic_source);
}

/* A deliberate ring-0 page fault: shows the panic report and the panic
 * exit value (EXIT_PANIC, status 5) to the runner. Never part of "all". */
static void test_panic(void)
{
	kprintf("# reading address 0x8 in ring 0 (page 0 is unmapped): expect a #PF report and a panic\n");
	uint64_t v;
	__asm__ volatile("mov 0x8, %0" : "=r"(v));
	tap(false, "panic: the ring-0 fault did not trap (read 0x%lx)", v);
}

/* A ring-0 push onto an unmapped stack: the #PF cannot be delivered on that
 * stack, so the CPU raises #DF, which runs on IST1 (its own stack) and
 * panics with a report. Shows that the TSS and IST are right. Not in "all". */
static void test_doublefault(void)
{
	kprintf("# ring-0 push with RSP in unmapped page 0: expect a #DF report (on IST1) and a panic\n");
	__asm__ volatile("mov $0x800, %%rsp; push %%rax" ::: "memory");
	tap(false, "doublefault: still running after the push");
}

static void test_smp(void)
{
	smp_test(tap, tap_skip);
}

static const char *opt_value(const char *key);

/* test=irqlat [target=running|halted] [iters=N]: see smp_irqlat. */
static void test_irqlat(void)
{
	const char *t = opt_value("target");
	smp_irqlat(tap, tap_skip, t && str_eq(t, "halted"), boot_opts.iters ? (unsigned)boot_opts.iters : 200);
}

/* ---- virtio: the ring-3 drivers (user/virtio.c and the user/v*.c tests) ---- */

static const char *opt_value(const char *key)
{
	for (unsigned i = 0; i < boot_opts.nextra; i++) {
		const char *w = boot_opts.extra[i], *k = key;
		while (*k && *w == *k)
			w++, k++;
		if (!*k && *w == '=')
			return w + 1;
	}
	return 0;
}

static unsigned opt_uint(const char *key, unsigned def)
{
	const char *v = opt_value(key);
	if (!v || *v < '0' || *v > '9')
		return def;
	unsigned n = 0;
	while (*v >= '0' && *v <= '9')
		n = n * 10 + (unsigned)(*v++ - '0');
	return n;
}

/* Is word w one of the comma-separated items of list? */
static bool opt_has(const char *list, const char *w)
{
	while (list && *list) {
		const char *a = list, *b = w;
		while (*b && *a == *b)
			a++, b++;
		if (!*b && (*a == ',' || !*a))
			return true;
		while (*list && *list != ',')
			list++;
		if (*list == ',')
			list++;
	}
	return false;
}

/* mode=poll|irq|both (default both: polling, then interrupts); vq=noevent,noindirect;
 * blkbench=seq|rand|all; blkmib=N; benchms=N; qd=N. */
static void test_virtio(const char *name, task_fn fn, bool both_in_one)
{
	if (!timer_ready()) {
		tap_skip(name, "LAPIC timer frequency unknown (needed for interrupt waits)");
		return;
	}
	unsigned n = pci_scan(true);
	kprintf("# pci: %u functions on bus 0\n", n);
	const char *vq = opt_value("vq"), *mode = opt_value("mode"), *bench = opt_value("blkbench");
	vt_opts.vio_flags = (opt_has(vq, "noevent") ? VIO_NO_EVENT_IDX : 0) |
			    (opt_has(vq, "noindirect") ? VIO_NO_INDIRECT : 0);
	vt_opts.bench = opt_has(bench, "all") ? VT_BENCH_ALL :
			(opt_has(bench, "seq") ? VT_BENCH_SEQ : 0) | (opt_has(bench, "rand") ? VT_BENCH_RAND : 0);
	vt_opts.blk_mib = opt_uint("blkmib", 8);
	vt_opts.bench_ms = opt_uint("benchms", 2000);
	vt_opts.qd = opt_uint("qd", 16);
	long modes[2];
	unsigned nm = 0;
	if (mode && str_eq(mode, "poll"))
		modes[nm++] = VT_POLL;
	else if (mode && str_eq(mode, "irq"))
		modes[nm++] = VT_IRQ;
	else if (both_in_one)
		modes[nm++] = VT_BOTH;
	else
		modes[nm++] = VT_POLL, modes[nm++] = VT_IRQ;
	for (unsigned i = 0; i < nm; i++) {
		kprintf("# %s: %s mode%s%s\n", name, vt_mode_name[modes[i]],
			vt_opts.vio_flags & VIO_NO_EVENT_IDX ? ", EVENT_IDX off" : "",
			vt_opts.vio_flags & VIO_NO_INDIRECT ? ", INDIRECT_DESC off" : "");
		unsigned failed0 = tap_failed;
		long st = task_run(fn, modes[i]);
		struct task_fault *f = &cpu_self()->fault;
		if (st == TASK_KILLED)
			tap(false, "%s (%s): the ring-3 driver was killed: %s at rip 0x%lx (cr2 0x%lx)", name,
			    vt_mode_name[modes[i]], trap_name(f->vector), f->rip, f->cr2);
		else if (st != 0 && tap_failed == failed0)
			tap(false, "%s (%s): the ring-3 test failed (status %ld) without saying why", name,
			    vt_mode_name[modes[i]], st);
	}
}

static void test_virtio_rng(void) { test_virtio("virtio-rng", u_vrng_test, false); }
static void test_virtio_console(void) { test_virtio("virtio-console", u_vcons_test, true); }
static void test_virtio_console_stall(void) { test_virtio("virtio-console-stall", u_vcons_stall_test, true); }
static void test_virtio_blk(void) { test_virtio("virtio-blk", u_vblk_test, false); }
static void test_virtio_net(void) { test_virtio("virtio-net", u_vnet_test, false); }

/* test=exits (exitcost.c): what each kind of VM exit costs, seen from the
 * guest; `hvmm lab exits` reads the `# exitcost` lines. Each kind that exits
 * must cost more than the empty loop. The first writes to fresh pages are
 * measured but not judged: where the host backs guest RAM with huge pages,
 * one nested page fault maps 2 MiB and most first writes do not exit. */
static void test_exits(void)
{
	struct exitcost e[16];
	kprintf("# exits: LAPIC in %s mode\n", apic_x2 ? "x2APIC" : "xAPIC");
	unsigned n = exitcost_run(e, 16, boot_opts.iters ? boot_opts.iters : 100000);
	uint64_t base = n ? e[0].cycles : 0;
	for (unsigned i = 0; i < n; i++) {
		kprintf("# exitcost %s cycles=%lu ns=%lu iters=%lu: %s\n", e[i].name, e[i].cycles, e[i].ns,
			e[i].iters, e[i].what);
		if (i > 0 && !str_eq(e[i].name, "npt") && !str_eq(e[i].name, "npt-mapped"))
			tap(e[i].cycles > base, "exits: %s costs more than the empty loop (%lu cycles, loop %lu)",
			    e[i].name, e[i].cycles, base);
	}
	tap(n >= 9, "exits: %u kinds measured", n);
}

/* test=inject: waits (halted, woken by a 100 Hz tick) for iters=N events
 * (default 3) the host injects — `hvmm run --inject ...` — and reports each:
 * vector, error code, and where it interrupted. */
static void test_inject(void)
{
	unsigned want = boot_opts.iters ? (unsigned)boot_opts.iters : 3;
	if (want > TRAP_INJECTED_MAX)
		want = TRAP_INJECTED_MAX;
	trap_injected_n = 0;
	trap_inject_mode = 1;
	/* From here on an injected event is taken (the API's injections wait
	 * for this line: earlier, the vector would find no handler ready). */
	kprintf("# inject: waiting for %u events\n", want);
	apic_timer_periodic(100);
	uint64_t t0 = clock_ns();
	while (trap_injected_n < want && clock_ns() - t0 < 10000000000ull)
		irq_wait();
	apic_timer_stop();
	trap_inject_mode = 0;
	unsigned n = trap_injected_n;
	for (unsigned i = 0; i < n && i < TRAP_INJECTED_MAX; i++)
		kprintf("# injected vector=%lu error=0x%lx rip=0x%lx\n", trap_injected[i].vector,
			trap_injected[i].err, trap_injected[i].rip);
	tap(n >= want, "inject: %u of %u injected events arrived within 10 s", n, want);
}

/* test=dirty: 400 ms writing one word per page of a 16 MiB buffer over and
 * over, then 400 ms halted; the host's dirty log (`hvmm run --dirty-log`)
 * should see the whole buffer written in each interval of the first phase
 * and almost nothing in the second. The sweep rate is what the tracking
 * costs: each first write after a harvest faults into KVM. */
static void test_dirty(void)
{
	const uint64_t pages = 4096;
	if (!timer_ready()) {
		tap_skip("dirty", "LAPIC timer frequency unknown");
		return;
	}
	uint64_t buf = mm_alloc_contig(pages * PAGE_SIZE);
	if (!buf) {
		tap(false, "dirty: no 16 MiB of free RAM");
		return;
	}
	kprintf("# dirty: phase write\n");
	outl(BOOT_MARKER_PORT, BOOT_MARK_DIRTY_WRITE); /* the host's clock on the phases */
	uint64_t t0 = clock_ns(), sweeps = 0, written = 0;
	while (clock_ns() - t0 < 400000000ull) {
		for (uint64_t p = 0; p < pages; p++)
			*(volatile uint64_t *)(buf + p * PAGE_SIZE) = sweeps;
		sweeps++;
		written += pages;
	}
	uint64_t dt = clock_ns() - t0;
	kprintf("# dirty: wrote %lu pages in %lu ms: %lu sweeps of %lu pages, %lu pages/s\n", written,
		dt / 1000000, sweeps, pages, written * (uint64_t)1000000000 / dt);
	kprintf("# dirty: phase idle\n");
	outl(BOOT_MARKER_PORT, BOOT_MARK_DIRTY_IDLE);
	apic_timer_periodic(100);
	t0 = clock_ns();
	while (clock_ns() - t0 < 400000000ull)
		irq_wait();
	apic_timer_stop();
	outl(BOOT_MARKER_PORT, BOOT_MARK_DIRTY_END);
	tap(sweeps >= 1, "dirty: %lu sweeps over 16 MiB in 400 ms, then 400 ms idle", sweeps);
}

/* test=virtio-hostile (user/uhostile.c): malformed rings handed to rng and blk.
 * rammib=N (default 128, hvmm's and QEMU's default) says where RAM ends. */
long u_vhostile_test(long ram_top);
static void test_virtio_hostile(void)
{
	kprintf("# pci: %u functions on bus 0\n", pci_scan(true));
	uint64_t top = (uint64_t)opt_uint("rammib", 128) << 20;
	long st = task_run(u_vhostile_test, (long)(top < 0xc0000000ull ? top : 0xc0000000ull));
	struct task_fault *f = &cpu_self()->fault;
	if (st == TASK_KILLED)
		tap(false, "virtio-hostile: the ring-3 driver was killed: %s at rip 0x%lx (cr2 0x%lx)",
		    trap_name(f->vector), f->rip, f->cr2);
}

/* DHCP, then a TCP exchange with the host through hostfwd (helper gnet's
 * user/net.c and user/unet.c); netport=PORT, netbench=MIB. */
static void test_virtio_net_tcp(void)
{
	u_net_port = opt_uint("netport", 8080);
	u_net_mib = opt_uint("netbench", 0);
	test_virtio("virtio-net-tcp", u_net, false);
}


/* test=nested (nested.c): needs hvmm --nested (or QEMU -cpu ...,+svm).
 * nestedloop=MS: the nested guest runs on that long at the end. */
static void test_nested(void) { nested_test(tap, tap_skip, opt_uint("nestedloop", 0)); }

/* test=iommu (vtd.c): needs hvmm --device intel-iommu,intremap=on --device edu
 * (or QEMU's q35 with the same two devices). iters=N: DMAs per cost (50). */
static void test_iommu(void) { vtd_test(tap, tap_skip, boot_opts.iters ? (unsigned)boot_opts.iters : 50); }

struct test {
	const char *name;
	void (*run)(void);
	bool device; /* needs a device beyond CPU, LAPIC and console: not in "all" */
};

static const struct test tests[] = {
	{ "hello", test_hello, false },   { "exceptions", test_exceptions, false },
	{ "syscall", test_syscall, false }, { "paging", test_paging, false },
	{ "timer", test_timer, false },   { "halt", test_halt, false },
	{ "smp", test_smp, false },       { "serial", test_serial, true },
	{ "panic", test_panic, true },
	{ "doublefault", test_doublefault, true },
	{ "virtio-rng", test_virtio_rng, true },
	{ "virtio-console", test_virtio_console, true },
	{ "virtio-console-stall", test_virtio_console_stall, true },
	{ "virtio-blk", test_virtio_blk, true },
	{ "virtio-net", test_virtio_net, true },
	{ "virtio-net-tcp", test_virtio_net_tcp, true },
	{ "virtio-hostile", test_virtio_hostile, true },
	{ "exits", test_exits, true },
	{ "inject", test_inject, true },
	{ "dirty", test_dirty, true },
	{ "irqlat", test_irqlat, true },
	{ "nested", test_nested, true },
	{ "iommu", test_iommu, true },
};

void tests_main(void)
{
	/* test=boot: straight to ring 3 and back out, skipping the clock, LAPIC
	 * and syscall-entry probes, so its run time is the time to the first
	 * ring-3 instruction plus one syscall and the exit. int3 is the entry
	 * every host here delivers. */
	if (str_eq(boot_opts.test, "boot")) {
		long st = task_run(u_boot, 0);
		tap(st == 0, "boot: first ring-3 instruction reached, task exited (status %ld)", st);
		kprintf("1..1\n");
		console_exit(tap_failed ? EXIT_FAIL : EXIT_PASS);
	}
	clock_init();
	apic_init(boot_opts.no_x2apic);
	select_entry();
	bool all = str_eq(boot_opts.test, "all"), found = false;
	for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if ((all && !tests[i].device) || str_eq(boot_opts.test, tests[i].name)) {
			kprintf("# test %s\n", tests[i].name);
			tests[i].run();
			found = true;
		}
	}
	if (!found)
		tap(false, "unknown test '%s' (boot hello exceptions syscall paging timer halt smp serial panic doublefault virtio-rng virtio-console virtio-console-stall virtio-blk virtio-net virtio-net-tcp virtio-hostile exits inject dirty irqlat nested iommu all)", boot_opts.test);
	kprintf("1..%u\n# %u passed, %u failed, %lu ms since boot\n", tap_n, tap_n - tap_failed, tap_failed,
		clock_ns() / 1000000);
	/* nestedexit=1 (with test=nested): the nested guest ends the VM */
	if (opt_uint("nestedexit", 0))
		nested_exit_in_guest(tap_failed ? EXIT_FAIL : EXIT_PASS);
	console_exit(tap_failed ? EXIT_FAIL : EXIT_PASS);
}
