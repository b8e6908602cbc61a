#!/usr/bin/env python3
"""hvmm lab: the lecture's mechanisms shown working on this host, with numbers.

    hvmm lab                      list the labs
    hvmm lab NAME [--json]        run one lab: a short report, or JSON
    hvmm lab all [--out DIR]      every lab; DIR/report.html with the pictures

hvmm's C binary execs this script (src/labcmd.c) with --hvmm naming itself.
Each lab runs real guests (hvmm's test kernel, build/guest/hvmm-guest.elf)
under hvmm, reads what the guest measured (its TAP and `# ...` lines) and
what hvmm and KVM counted (--stats-json: hvmm's exits by port and address,
KVM's own per-vCPU counters from its binary stats), and checks the evidence:
a lab whose evidence does not hold says so and exits 1.

Where this machine has no usable /dev/kvm, the lab runs itself again inside
the nested KVM host (scripts/kvm-host), as `make test` does.

Exit status: 0 the evidence holds; 1 a check failed; 2 bad usage; 6 a guest
could not be run (hvmm, the guest image or the nested host missing).
"""
import argparse
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from kvm_mode import kvm_mode  # noqa: E402

EXIT_FAIL, EXIT_USAGE, EXIT_HOST = 1, 2, 6
COM1 = range(0x3f8, 0x400)
LABS = {}


class LabError(Exception):
    """A guest could not be run: no evidence either way."""


def lab(name, line):
    def deco(fn):
        LABS[name] = (line, fn)
        return fn
    return deco


class Guest:
    """One run of hvmm's test kernel; out is its console, stats hvmm's JSON."""

    def __init__(self, env, cmdline, cpus=1, timeout=120, extra=()):
        js = os.path.join(env.tmp, "stats.json")
        if os.path.exists(js):
            os.unlink(js)
        argv = [env.hvmm, "run", "--timeout", str(timeout), "--cpus", str(cpus), "--serial", "stdio",
                "--stats-json", js, *extra, "--cmdline", cmdline, env.guest]
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, capture_output=True, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            raise LabError(f"hvmm ({cmdline}) did not end within {timeout + 30} s")
        self.secs = time.monotonic() - t0  # the whole hvmm process
        self.status = p.returncode
        self.out = p.stdout.decode(errors="replace").replace("\r", "")
        self.err = p.stderr.decode(errors="replace")
        if not os.path.exists(js):
            raise LabError(f"hvmm ({cmdline}) ended with status {p.returncode} and no statistics: "
                           + (self.err.strip().splitlines() or [""])[-1])
        with open(js) as f:
            self.stats = json.load(f)
        if p.returncode not in (1, 3, 5):
            raise LabError(f"hvmm {' '.join(extra)} ({cmdline}) failed with status {p.returncode}: "
                           + (self.err.strip().splitlines() or [""])[-1])
        # The test kernel's convention: status 1 = every TAP line ok.
        self.passed = self.status == 1 and not re.search(r"^not ok", self.out, re.M)

    def kvm(self, name):
        """KVM's counter summed over the vCPUs (0 where the kernel lacks it)."""
        return sum(v.get("kvm", {}).get(name, 0) for v in self.stats["vcpus"])

    def io(self, skip_serial=True):
        """{(space, dir, addr): (count, total_ns)} of the accesses hvmm handled."""
        res = {}
        for v in self.stats["vcpus"]:
            for e in v["io"]:
                if skip_serial and e["space"] == "pio" and e["addr"] in COM1:
                    continue
                k = (e["space"], e["dir"], e["addr"])
                c, t = res.get(k, (0, 0))
                res[k] = (c + e["count"], t + e["total_ns"])
        return res


class Env:
    def __init__(self, hvmm, guest):
        self.hvmm, self.guest = hvmm, guest
        self.tmp = tempfile.mkdtemp(prefix="hvmm-lab-")

    def close(self):
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)


class Report:
    """What a lab shows: tables, facts, a picture, and the checks."""

    def __init__(self, name, title):
        self.name, self.title = name, title
        self.tables, self.notes, self.checks, self.bars = [], [], [], None
        self.seconds = 0.0  # the lab's own wall time (its guests, not the nested host's boot)

    def table(self, head, rows):
        self.tables.append((head, rows))

    def note(self, text):
        self.notes.append(text)

    def check(self, ok, text):
        self.checks.append((bool(ok), text))

    def ok(self):
        return all(ok for ok, _ in self.checks)

    def as_json(self):
        return {"lab": self.name, "title": self.title, "ok": self.ok(), "seconds": round(self.seconds, 2),
                "tables": [{"head": h, "rows": r} for h, r in self.tables],
                "notes": self.notes, "checks": [{"ok": o, "text": t} for o, t in self.checks]}

    def text(self):
        out = [f"== hvmm lab {self.name}: {self.title} ({self.seconds:.1f} s)"]
        for head, rows in self.tables:
            cells = [head] + [[str(c) for c in r] for r in rows]
            w = [max(len(r[i]) for r in cells) for i in range(len(head))]
            for i, r in enumerate(cells):
                out.append("  " + "  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j])
                                            for j, c in enumerate(r)).rstrip())
                if i == 0:
                    out.append("  " + "  ".join("-" * x for x in w))
            out.append("")
        out += [f"  {n}" for n in self.notes]
        out += [f"  [{'ok' if o else 'FAILED'}] {t}" for o, t in self.checks]
        return "\n".join(out)

    def svg(self):
        """A horizontal bar chart of self.bars: [(label, [(value, colour, legend)])]."""
        if not self.bars:
            return ""
        rows, unit = self.bars
        top = max(sum(v for v, _, _ in parts) for _, parts in rows) or 1
        h, lw, bw = 22, 150, 420
        s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + bw + 90}" height="{h * len(rows) + 30}" '
             'font-family="sans-serif" font-size="12">']
        for i, (label, parts) in enumerate(rows):
            y, x = i * h + 5, lw
            s.append(f'<text x="{lw - 6}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>')
            for v, colour, legend in parts:
                w = bw * v / top
                s.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h - 6}" fill="{colour}">'
                         f'<title>{html.escape(legend)}: {v:,.0f} {unit}</title></rect>')
                x += w
            s.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{sum(v for v, _, _ in parts):,.0f} {unit}</text>')
        legends = {(c, lg) for _, parts in rows for _, c, lg in parts}
        x = lw
        for c, lg in sorted(legends, key=lambda t: t[1]):
            y = h * len(rows) + 12
            s.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/>'
                     f'<text x="{x + 14}" y="{y + 10}">{html.escape(lg)}</text>')
            x += 14 + 7 * len(lg) + 16
        return "\n".join(s + ["</svg>"])


def need(guest, what):
    if not guest.passed:
        tail = "\n".join(guest.out.strip().splitlines()[-5:])
        raise LabError(f"{what}: the guest's own checks failed (status {guest.status}):\n{tail}")


# ------------------------------------------------------------------ the labs

ENTRY_RX = re.compile(r"^ok \d+ - syscall: round trips through (.+?): (\d+) round trips, ([\d.]+) ns each", re.M)


@lab("modes", "guest ring 3 to ring 0 and back (int 0x80, SYSCALL, int3) a million times each: no VM exit")
def lab_modes(env):
    r = Report("modes", "non-root user and system mode without the VMM")
    base = Guest(env, "test=syscall iters=1")
    full = Guest(env, "test=syscall iters=1000000")
    need(base, "test=syscall iters=1")
    need(full, "test=syscall iters=1000000")
    entries = ENTRY_RX.findall(full.out)
    calls = sum(int(n) for _, n, _ in entries)
    d_hvmm = sum(c for c, _ in full.io().values()) - sum(c for c, _ in base.io().values())
    kinds = ("exits", "io_exits", "mmio_exits", "irq_exits", "halt_exits", "hypercalls")
    d_kvm = {k: full.kvm(k) - base.kvm(k) for k in kinds}
    r.table(["entry", "round trips", "ns each (guest clock)"],
            [[name, f"{int(n):,}", ns] for name, n, ns in entries])
    r.table(["counted by", "1 syscall per entry", f"{int(calls / max(1, len(entries))):,} per entry", "added"],
            [["hvmm (exits to user space, serial output aside)", sum(c for c, _ in base.io().values()),
              sum(c for c, _ in full.io().values()), d_hvmm]]
            + [[f"KVM {k}", base.kvm(k), full.kvm(k), d_kvm[k]] for k in kinds])
    per_k = 1000 * d_kvm["exits"] / max(1, calls)
    r.note(f"{calls:,} system calls added {d_kvm['exits']:,} exits inside KVM ({per_k:.2f} per 1000 calls: "
           f"{d_kvm['irq_exits']:,} external interrupts, the host's timer among them, while the loop ran) "
           f"and {d_hvmm} to hvmm.")
    r.check(len(entries) == 3 and all(int(n) == 1000000 for _, n, _ in entries),
            "all three entries made 1,000,000 round trips from ring 3")
    r.check(d_hvmm == 0, f"the system calls caused no exit to hvmm ({d_hvmm} more than one call each)")
    r.check(d_kvm["exits"] * 100 < calls,
            f"fewer than 1 KVM exit per 100 system calls ({d_kvm['exits']:,} for {calls:,})")
    r.bars = ([(name, [(float(ns), "#4a7", "guest time per round trip")]) for name, _, ns in entries], "ns")
    return r


EXITCOST_RX = re.compile(r"^# exitcost (\S+) cycles=(\d+) ns=(\d+) iters=(\d+): (.*)$", re.M)


@lab("exits", "what one VM exit of each kind costs here, and hvmm's share of it")
def lab_exits(env):
    r = Report("exits", "the cost of a VM exit, by who handles it")
    g = Guest(env, "test=exits iters=100000")
    need(g, "test=exits")
    rows = {m[0]: m for m in EXITCOST_RX.findall(g.out)}
    io = g.io()
    # hvmm's own time for the accesses the pio and mmio loops make: COM1's
    # LSR is serial (kept apart by io()), so take it from the full list.
    full_io = g.io(skip_serial=False)
    hvmm_ns = {
        "pio": full_io.get(("pio", "in", 0x3fd)),
        "mmio": next((v for (s, d, a), v in io.items() if s == "mmio" and d == "read" and a in
                      range(0xfec00010, 0xfec00014)), None),
    }
    base = int(rows["none"][2]) if "none" in rows else 0
    table, bars = [], []
    for name, cyc, ns, iters, what in rows.values():
        ns = int(ns)
        share = hvmm_ns.get(name)
        h = share[1] / share[0] if share and share[0] else 0.0
        table.append([name, what, f"{int(cyc):,}", f"{ns:,}",
                      f"{h:,.0f}" if share else "-", f"{100 * h / ns:.0f}%" if share and ns else "-"])
        if name != "none":
            bars.append((name, [(max(0.0, ns - h), "#58c", "guest exit and KVM"), (h, "#d64", "hvmm")]))
    r.table(["kind", "what the loop does (who handles the exit)", "cycles", "ns", "hvmm ns", "hvmm share"], table)
    r.note(f"The empty loop costs {base} ns; 'hvmm ns' is hvmm's own time per access (from KVM_RUN's "
           "return to the device's answer, --stats-json), the rest is the exit and entry and KVM's work.")
    r.note(f"Nested paging: KVM fixed {g.kvm('pf_fixed'):,} nested page faults in the whole run for "
           "the 2048 pages first written here and everything the guest touched before; where the "
           "host backs guest RAM with huge pages one fault maps 2 MiB, so a first write costs "
           "little more than a mapped one.")
    r.note(f"KVM counted {g.kvm('exits'):,} exits in this run: io {g.kvm('io_exits'):,}, mmio "
           f"{g.kvm('mmio_exits'):,}, halt {g.kvm('halt_exits'):,}, hypercalls {g.kvm('hypercalls'):,}, "
           f"external interrupts {g.kvm('irq_exits'):,}.")
    if "extint" in rows:
        gaps, gap_ns = int(rows["extint"][3]), int(rows["extint"][2])
        secs = g.secs
        rate = f", {g.kvm('irq_exits') / secs:,.0f} a second" if secs else ""
        r.note(f"External interrupts: in 200 ms of a TSC loop with interrupts off the guest's vCPU went away "
               f"{gaps:,} times, a median {gap_ns:,} ns each. A host interrupt that arrives while the vCPU is in "
               "guest mode costs an exit, the host's handler and an entry, none of it the guest's own work: KVM "
               f"counted {g.kvm('irq_exits'):,} such exits over the whole {secs:.1f} s run{rate}. Where the host "
               "is itself emulated (the nested KVM host), its CPU also pauses on its own, and from inside the "
               "guest those pauses look the same: there the gaps outnumber the exits.")
    need_kinds = {"none", "cpuid", "msr", "pio", "mmio", "ipi", "hlt", "pause", "extint", "npt", "npt-mapped"}
    r.check(need_kinds <= set(rows), f"every kind measured ({', '.join(sorted(need_kinds - set(rows))) or 'all'})")
    for k in ("pio", "mmio"):
        s = hvmm_ns.get(k)
        n = int(rows[k][3]) if k in rows else 0
        r.check(s and s[0] >= n, f"{k}: every access reached hvmm ({s[0] if s else 0:,} for {n:,} iterations)")
    exits = [k for k in ("cpuid", "msr", "hypercall", "pio", "mmio") if k in rows]
    r.check(all(int(rows[k][2]) >= 10 * max(1, base) for k in exits),
            "each exit costs at least 10 empty loop iterations")
    r.check(g.kvm("hypercalls") >= int(rows["hypercall"][3]) if "hypercall" in rows else True,
            "KVM counted every hypercall")
    r.check("extint" in rows and int(rows["extint"][3]) > 0 and g.kvm("irq_exits") > 0
            and int(rows["extint"][2]) >= 10 * max(1, base),
            "external interrupts: the guest saw its vCPU leave (gaps of at least 10 loop iterations) and KVM "
            "counted irq exits")
    r.bars = (bars, "ns")
    return r


def exitcosts(guest):
    """{kind: (cycles, ns, iterations)} from test=exits' `# exitcost` lines."""
    return {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in EXITCOST_RX.findall(guest.out)}


TSC_AUX = 0xc0000103


def pause_loop_exiting():
    """(on, why) for this host's KVM: AMD's pause filter count or Intel's
    PLE gap, 0 meaning PAUSE is never intercepted."""
    for path, what in (("/sys/module/kvm_amd/parameters/pause_filter_count", "kvm_amd pause_filter_count"),
                       ("/sys/module/kvm_intel/parameters/ple_gap", "kvm_intel ple_gap")):
        try:
            with open(path) as f:
                v = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if v:
            return True, f"this host's KVM does pause-loop exiting ({what}={v})"
        return False, (f"this host's KVM does no pause-loop exiting ({what}=0: the CPU has no pause "
                       "filter, as QEMU's emulated one here)")
    return False, "this host's KVM says nothing of pause-loop exiting (no kvm_amd or kvm_intel parameters)"


@lab("controls", "execution controls: HLT exits off, an MSR filter, a CPUID policy: what exits and what it costs")
def lab_controls(env):
    r = Report("controls", "which guest actions exit, as the VMM chooses")
    runs = [("default", ()),
            ("--no-hlt/pause-exits --msr-filter", ("--no-hlt-exits", "--no-pause-exits", "--msr-filter", hex(TSC_AUX))),
            ("--cpuid-mask x2apic", ("--cpuid-mask", "x2apic"))]
    g = {}
    for name, extra in runs:
        g[name] = Guest(env, "test=exits iters=100000", extra=extra)
        need(g[name], f"test=exits {' '.join(extra)}")
    c = {n: exitcosts(x) for n, x in g.items()}
    apic = {n: (re.search(r"^# exits: LAPIC in (\S+) mode", x.out, re.M) or [None, "?"])[1] for n, x in g.items()}
    msr_exits = {n: x.stats["exits_by_reason"].get("X86_RDMSR", 0) for n, x in g.items()}
    names = [n for n, _ in runs]
    head = ["kind"] + [f"{n}: ns" for n in names]
    r.table(head, [[k] + [f"{c[n][k][1]:,}" if k in c[n] else "-" for n in names]
                   for k in ("cpuid", "msr", "ipi", "hlt", "pause", "pio")])
    r.table(["counted", *names],
            [["KVM halt exits", *(f"{g[n].kvm('halt_exits'):,}" for n in names)],
             ["hvmm RDMSR exits (X86_RDMSR)", *(f"{msr_exits[n]:,}" for n in names)],
             ["KVM exits, all kinds", *(f"{g[n].kvm('exits'):,}" for n in names)],
             ["LAPIC mode the guest chose", *(apic[n] for n in names)]])
    d, ctl, xa = names
    r.note("HLT: with HLT exits on, KVM takes the exit, sees the pending interrupt and enters again; "
           "with --no-hlt-exits the guest's HLT halts the CPU itself and the interrupt wakes it there "
           f"(KVM halt exits {g[d].kvm('halt_exits'):,} → {g[ctl].kvm('halt_exits'):,}).")
    ple, ple_what = pause_loop_exiting()
    pauses = c[d]["pause"][2]
    r.note(f"PAUSE: {ple_what}. "
           + (f"With it, {pauses:,} PAUSEs in a row trip it: KVM takes the exit (and would yield the CPU to "
              f"another vCPU); --no-pause-exits leaves every PAUSE to the guest (KVM exits in all "
              f"{g[d].kvm('exits'):,} → {g[ctl].kvm('exits'):,})." if ple else
              f"So no PAUSE ever exits here, and --no-pause-exits (accepted by KVM) changes nothing: "
              f"{c[d]['pause'][1]:,} ns per PAUSE by default, {c[ctl]['pause'][1]:,} ns with --no-pause-exits."))
    r.note(f"RDMSR of IA32_TSC_AUX: KVM answers it ({c[d]['msr'][1]:,} ns); denied by the MSR filter it "
           f"exits to hvmm, which answers 0 ({c[ctl]['msr'][1]:,} ns, {msr_exits[ctl]:,} exits to hvmm).")
    r.note("CPUID always exits (the instruction is intercepted unconditionally); a CPUID policy changes "
           f"what it returns: without x2APIC the guest drives its LAPIC through MMIO, and the same "
           f"self-IPI costs {c[xa]['ipi'][1]:,} ns instead of {c[d]['ipi'][1]:,} ns through the x2APIC MSR.")
    hlt_iters = c[d]["hlt"][2]
    r.check(g[d].kvm("halt_exits") >= hlt_iters,
            f"HLT exits on: KVM counted a halt exit per HLT ({g[d].kvm('halt_exits'):,} for {hlt_iters:,})")
    r.check(g[ctl].kvm("halt_exits") == 0, f"--no-hlt-exits: no halt exit ({g[ctl].kvm('halt_exits')})")
    r.check(msr_exits[d] == 0, f"no MSR filter: no RDMSR exit reached hvmm ({msr_exits[d]})")
    if ple:
        r.check(g[d].kvm("exits") > g[ctl].kvm("exits") + pauses // 10000,
                f"pause-loop exiting on: the PAUSE loop exited, with --no-pause-exits it did not "
                f"({g[d].kvm('exits'):,} against {g[ctl].kvm('exits'):,} exits)")
    else:
        r.check("pause" in c[d] and "pause" in c[ctl],
                f"no pause-loop exiting on this host: PAUSE measured with and without --no-pause-exits ({ple_what})")
    r.check(msr_exits[ctl] >= c[ctl]["msr"][2],
            f"--msr-filter: every RDMSR of TSC_AUX reached hvmm ({msr_exits[ctl]:,} for {c[ctl]['msr'][2]:,})")
    r.check(apic[d] == "x2APIC" and apic[xa] == "xAPIC",
            f"--cpuid-mask x2apic: the guest used xAPIC ({apic[d]} by default, {apic[xa]} masked)")
    r.bars = ([(f"{k} ({n})", [(float(c[n][k][1]), colour, n)])
               for k in ("msr", "ipi", "hlt") for n, colour in zip(names, ("#58c", "#d64", "#4a7"))], "ns")
    return r


VIRTIO_BLK = 0x1042


def notify_region(out, device_id):
    """[start, end) of a virtio function's notify capability, from the test
    kernel's '# pci' line (BAR base + the capability's offset and length)."""
    for line in out.splitlines():
        m = re.match(r"# pci \S+ 1af4:([0-9a-f]{4}) ", line)
        if not m or int(m.group(1), 16) != device_id:
            continue
        bars = {int(b): int(base, 16) for b, base in re.findall(r" bar(\d) mem\d\d (0x[0-9a-f]+)\+", line)}
        for t, b, off, ln in re.findall(r" vcap(\d) bar(\d)\+0x([0-9a-f]+)/0x([0-9a-f]+)", line):
            if int(t) == 2:
                start = bars[int(b)] + int(off, 16)
                return start, start + int(ln, 16)
    return None


@lab("io", "a virtio disk's doorbells and interrupts with and without ioeventfd/irqfd; coalesced port writes")
def lab_io(env):
    r = Report("io", "exits per I/O: doorbells, interrupts and buffered writes")
    img = os.path.join(env.tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    runs = [("ioeventfd + irqfd (default)", ()), ("--no-ioeventfd", ("--no-ioeventfd",)),
            ("--no-irqfd", ("--no-irqfd",)), ("both off", ("--no-ioeventfd", "--no-irqfd"))]
    rows, got = [], {}
    for name, extra in runs:
        # vq=noevent: no EVENT_IDX, so the driver rings and the device
        # interrupts for every batch it hands over, as without suppression.
        g = Guest(env, "test=virtio-blk mode=irq blkmib=4 vq=noevent", extra=("-m", "256M", "--disk", img, *extra))
        need(g, f"test=virtio-blk {' '.join(extra)}")
        blk = next(v for v in g.stats["virtio"] if v["name"] == "virtio-blk")
        region = notify_region(g.out, VIRTIO_BLK)
        doorbell = sum(c for (sp, d, a), (c, _) in g.io().items()
                       if region and sp == "mmio" and d == "write" and region[0] <= a < region[1])
        irt = [e for e in g.stats["irt"] if e["device"].startswith("virtio-blk") and e["sent"]]
        delivery = ",".join(sorted({e["delivery"] for e in irt})) or "-"
        got[name] = (blk["notifies"], doorbell, blk["interrupts"], delivery, g)
        rows.append([name, f"{blk['notifies']:,}", f"{doorbell:,}", f"{blk['interrupts']:,}", delivery,
                     f"{sum(c for c, _ in g.io().values()):,}", f"{g.kvm('exits'):,}"])
    r.table(["configuration", "doorbells (notifies)", "doorbell exits to hvmm", "interrupts",
             "interrupt path", "exits to hvmm (serial aside)", "KVM exits"], rows)
    d = got[runs[0][0]][4]
    cf8 = sum(c for (sp, dr, a), (c, _) in d.io().items() if sp == "pio" and dr == "out" and a == 0xcf8)
    cfc = sum(c for (sp, dr, a), (c, _) in d.io().items() if sp == "pio" and 0xcfc <= a < 0xd00)
    r.table(["PCI configuration (the guest's bus scan, default run)", "count"],
            [["0xcf8 address writes buffered by KVM (coalesced I/O)", f"{d.stats['coalesced_writes']:,}"],
             ["0xcf8 address writes that exited to hvmm", f"{cf8:,}"],
             ["0xcfc data accesses (exits to hvmm)", f"{cfc:,}"]])
    r.note("A doorbell with ioeventfd is a write KVM completes itself, signalling an eventfd hvmm's "
           "event loop reads; without, each is an MMIO exit to hvmm on the vCPU. An interrupt with irqfd "
           "is an eventfd write KVM turns into a LAPIC update; without, hvmm injects it with "
           "KVM_SIGNAL_MSI. Coalesced I/O: KVM appends the 0xcf8 write to a ring hvmm reads before the "
           "next exit, so only the 0xcfc access that uses it exits.")
    dn, dx, di, dd, _ = got[runs[0][0]]
    nn, nx, _, _, _ = got["--no-ioeventfd"]
    _, _, qi, qd, _ = got["--no-irqfd"]
    r.check(dn > 0 and dx == 0, f"ioeventfd: {dn:,} doorbells, none an exit to hvmm ({dx})")
    r.check(nx >= nn > 0, f"--no-ioeventfd: every doorbell exited to hvmm ({nx:,} exits, {nn:,} doorbells)")
    r.check(di > 0 and dd == "irqfd", f"irqfd: {di:,} interrupts posted through irqfds ({dd})")
    r.check(qi > 0 and qd == "injected", f"--no-irqfd: {qi:,} interrupts injected by hvmm ({qd})")
    r.check(d.stats["coalesced_writes"] > 0 and cf8 == 0,
            f"coalesced: {d.stats['coalesced_writes']:,} 0xcf8 writes buffered, {cf8} exited")
    r.bars = ([(name, [(float(sum(c for c, _ in x[4].io().values())), "#d64", "exits to hvmm (serial aside)")])
               for name, x in got.items()], "exits")
    return r


INJECTED_RX = re.compile(r"^# injected vector=(\d+) error=0x([0-9a-f]+) rip=0x([0-9a-f]+)", re.M)
BOOT_MARK_INJECTED = 0x1000


@lab("inject", "an interrupt, an NMI and an exception injected by hvmm into a running guest, and how long each took")
def lab_inject(env):
    r = Report("inject", "event injection: the VMM names the event, the CPU delivers it at VM entry")
    asks = [("irq:0x5e@300", "interrupt (MSI to the LAPIC: KVM_SIGNAL_MSI)", 0x5e, None),
            ("nmi@400", "NMI (KVM_NMI)", 2, None),
            ("exception:13:0x1234@500", "#GP with error code 0x1234 (KVM_SET_VCPU_EVENTS)", 13, 0x1234)]
    extra = [x for spec, *_ in asks for x in ("--inject", spec)]
    g = Guest(env, "test=inject iters=3", extra=extra)
    need(g, "test=inject")
    seen = [(int(v), int(e, 16), int(rip, 16)) for v, e, rip in INJECTED_RX.findall(g.out)]
    marks = {m["value"] - BOOT_MARK_INJECTED: m["ns"] for m in g.stats["boot_marks"]
             if m["value"] & BOOT_MARK_INJECTED}
    inj = {(x["vector"]): x for x in g.stats["injections"]}
    rows = []
    for spec, what, vec, code in asks:
        got = next((s for s in seen if s[0] == vec), None)
        lat = (marks[vec] - inj[vec]["injected_ns"]) / 1000 if vec in marks and inj.get(vec, {}).get(
            "injected_ns") else None
        rows.append([spec, what, f"{vec:#x}" if got else "-", f"{got[1]:#x}" if got and code is not None else "-",
                     f"{got[2]:#x}" if got else "-", f"{lat:,.0f}" if lat is not None else "-"])
        r.check(got is not None, f"{spec}: the guest's handler ran for vector {vec}")
        if code is not None:
            r.check(got is not None and got[1] == code,
                    f"{spec}: the handler found error code {code:#x} on its stack ({got[1] if got else None})")
        r.check(lat is not None and 0 < lat < 1e6,
                f"{spec}: handled {lat or 0:,.0f} us after hvmm injected it (under a second)")
    r.table(["--inject", "event", "vector seen", "error code seen", "interrupted at", "latency (us)"], rows)
    r.note("Latency: from hvmm's injection (the ioctl) to the guest handler's first instruction that "
           "reaches hvmm (a write to its boot-timer port), both on the host's clock. The IRQ needs no "
           "vCPU: KVM puts the vector in the LAPIC and kicks the vCPU out of HLT. The NMI and the "
           "exception are vCPU state: the event loop kicks vCPU 0, whose thread sets them between two "
           "KVM_RUNs.")
    r.bars = ([(spec, [(float(row[-1].replace(",", "")) if row[-1] != "-" else 0.0, "#58c", "latency")])
               for (spec, *_), row in zip(asks, rows)], "us")
    return r


def flags(value, names):
    return " ".join(n for bit, n in names if value >> bit & 1) or "-"


CR0_BITS = [(0, "PE"), (1, "MP"), (4, "ET"), (5, "NE"), (16, "WP"), (18, "AM"), (31, "PG")]
CR4_BITS = [(5, "PAE"), (7, "PGE"), (9, "OSFXSR"), (10, "OSXMMEXCPT"), (18, "OSXSAVE"), (20, "SMEP"), (21, "SMAP")]
EFER_BITS = [(0, "SCE"), (8, "LME"), (10, "LMA"), (11, "NXE"), (12, "SVME")]
EXIT_NAMES = {"IO": ("30 I/O instruction", "0x7b IOIO"), "MMIO": ("48 EPT violation", "0x400 NPF"),
              "HLT": ("12 HLT", "0x78 HLT"), "SHUTDOWN": ("2 triple fault", "0x7f SHUTDOWN")}


def seg(x):
    return (f"sel {x['selector']:#06x} base {x['base']:#x} limit {x['limit']:#x} type {x['type']} "
            f"dpl {x['dpl']}{' L' if x['l'] else ''}{' P' if x['present'] else ''}")


@lab("vmcs", "the VMCS/VMCB fields of a vCPU stopped at an exit, as KVM shows them to hvmm")
def lab_vmcs(env):
    r = Report("vmcs", "the VMCS (VMCB on AMD) of a vCPU at its last exit")
    g = Guest(env, "test=hello")
    need(g, "test=hello")
    st = g.stats["vcpus"][0]["state"]
    gs, nr, ex = st["guest_state"], st["non_register_state"], st["last_exit"]
    rows = [
        ["guest RIP", "GUEST_RIP", "save.rip", f"{gs['rip']:#x}"],
        ["guest RSP", "GUEST_RSP", "save.rsp", f"{gs['rsp']:#x}"],
        ["guest RFLAGS", "GUEST_RFLAGS", "save.rflags", f"{gs['rflags']:#x}"],
        ["CR0", "GUEST_CR0", "save.cr0", f"{gs['cr0']:#x} ({flags(gs['cr0'], CR0_BITS)})"],
        ["CR3", "GUEST_CR3", "save.cr3", f"{gs['cr3']:#x}"],
        ["CR4", "GUEST_CR4", "save.cr4", f"{gs['cr4']:#x} ({flags(gs['cr4'], CR4_BITS)})"],
        ["EFER", "GUEST_IA32_EFER", "save.efer", f"{gs['efer']:#x} ({flags(gs['efer'], EFER_BITS)})"],
        ["CS", "GUEST_CS_{SELECTOR,BASE,LIMIT,AR_BYTES}", "save.cs", seg(gs["cs"])],
        ["SS", "GUEST_SS_*", "save.ss", seg(gs["ss"])],
        ["TR", "GUEST_TR_*", "save.tr", seg(gs["tr"])],
        ["GDTR", "GUEST_GDTR_{BASE,LIMIT}", "save.gdtr", f"base {gs['gdtr']['base']:#x} limit {gs['gdtr']['limit']:#x}"],
        ["IDTR", "GUEST_IDTR_{BASE,LIMIT}", "save.idtr", f"base {gs['idtr']['base']:#x} limit {gs['idtr']['limit']:#x}"],
    ]
    r.table(["guest-state area", "VMCS field (Intel)", "VMCB field (AMD)", "value"], rows)
    r.table(["guest non-register state", "VMCS field (Intel)", "VMCB field (AMD)", "value"], [
        ["activity", "GUEST_ACTIVITY_STATE", "(KVM's mp_state)", nr.get("activity", "?")],
        ["interrupt shadow (STI, MOV SS)", "GUEST_INTERRUPTIBILITY_INFO", "control.int_state",
         nr.get("interrupt_shadow", "?")],
        ["NMI blocked", "GUEST_INTERRUPTIBILITY_INFO bit 3", "(KVM: hflags)", nr.get("nmi_masked", "?")],
        ["event pending injection", "VM_ENTRY_INTR_INFO_FIELD", "control.event_inj",
         "yes" if nr.get("exception_pending") or nr.get("interrupt_injected") else "no"]])
    intel, amd = EXIT_NAMES.get(ex["reason"], ("?", "?"))
    qual = (f"port {ex['port']:#x}, {ex['size']} bytes, {ex['direction']}" if ex["reason"] == "IO" else
            f"address {ex.get('address', 0):#x}" if ex["reason"] == "MMIO" else "-")
    r.table(["VM-exit information", "VMCS field (Intel)", "VMCB field (AMD)", "value (kvm_run)"], [
        ["exit reason", "VM_EXIT_REASON", "control.exit_code", f"KVM_EXIT_{ex['reason']} (hardware: {intel} / {amd})"],
        ["qualification", "EXIT_QUALIFICATION", "control.exit_info_1", qual]])
    r.note("KVM keeps the real VMCS/VMCB: a VMM reads and writes these fields through KVM_GET/SET_REGS, "
           "_SREGS, _VCPU_EVENTS and _MP_STATE, and gets each exit's reason and qualification decoded "
           "in kvm_run. This vCPU stopped at the test kernel's last exit: its write to isa-debug-exit.")
    r.check(ex["reason"] == "IO" and ex.get("port") == 0xf4 and ex.get("direction") == "out",
            f"the last exit is the guest's OUT to isa-debug-exit (0xf4): {ex}")
    r.check(gs["cr0"] >> 31 & 1 and gs["efer"] >> 10 & 1 and gs["cs"]["l"] == 1,
            "the guest is in 64-bit mode: CR0.PG, EFER.LMA, CS.L")
    r.check(gs["cr3"] & ~0xfff == st["walk_rip"]["levels"][0]["entry_gpa"] & ~0xfff if st["walk_rip"]["levels"] else False,
            "the guest's page walk starts at CR3")
    return r


DIRTY_RATE_RX = re.compile(r"^# dirty: wrote (\d+) pages in (\d+) ms.* (\d+) pages/s", re.M)


def dirty_log(env, r):
    """The second half of the ept lab: the guest writes a 16 MiB buffer for
    400 ms, then idles 400 ms, once with KVM's dirty log harvested every
    50 ms (--dirty-log 50) and once without."""
    runs = {}
    for name, extra in (("--dirty-log 50", ("--dirty-log", "50")), ("no dirty log", ())):
        g = Guest(env, "test=dirty", extra=("-m", "256M", *extra))
        need(g, f"test=dirty {' '.join(extra)}")
        m = DIRTY_RATE_RX.search(g.out)
        runs[name] = (g, int(m.group(3)) if m else 0)
    g, rate = runs["--dirty-log 50"]
    marks = {m["value"]: m["ns"] / 1e6 for m in g.stats["boot_marks"]}
    start = g.stats["run_ns"] / 1e6
    phase = {"writing": [], "idle": []}
    for s in g.stats["dirty_log"]["samples"]:
        t = start + s["ms"]  # when the interval ended, on hvmm's clock
        if marks.get(0x2001, 1e18) + 50 <= t <= marks.get(0x2002, 0):
            phase["writing"].append(s["pages"])
        elif marks.get(0x2002, 1e18) + 50 <= t <= marks.get(0x2003, 0):
            phase["idle"].append(s["pages"])
    med = {k: sorted(v)[len(v) // 2] if v else None for k, v in phase.items()}
    plain = runs["no dirty log"][1]
    r.table(["dirty log (16 MiB written for 400 ms, then 400 ms idle)", "intervals", "pages written per 50 ms (median)",
             "guest's page writes per second"],
            [["harvested every 50 ms: writing", len(phase["writing"]), med["writing"], f"{rate:,}"],
             ["harvested every 50 ms: idle", len(phase["idle"]), med["idle"], "-"],
             ["no dirty log: writing", "-", "-", f"{plain:,}"]])
    r.note(f"Dirty logging: after each harvest KVM write-protects the pages again, so the guest's first "
           f"write to each faults into KVM; the same loop made {plain:,} page writes per second untracked "
           f"and {rate:,} tracked. That is the price of each pre-copy round of live migration.")
    r.check(med["writing"] and med["idle"] is not None and med["writing"] > 10 * max(1, med["idle"]),
            f"the log sees the writes: {med['writing']} pages per interval writing, {med['idle']} idle")
    r.check(plain > rate > 0, f"tracking slows the writer ({plain:,} → {rate:,} pages/s)")


@lab("ept", "two-dimensional page walks (the guest's tables, each entry through the NPT/EPT) and dirty-page tracking")
def lab_ept(env):
    r = Report("ept", "nested paging: a guest walk, and the 24 accesses behind a TLB miss")
    far = 0x40000000
    g = Guest(env, "test=hello", extra=("--walk", hex(far)))
    need(g, "test=hello")
    st = g.stats["vcpus"][0]["state"]
    host_levels = 4  # x86-64 NPT/EPT with 4-level paging (5 with LA57 hosts)
    rows, counts = [], {}
    for key, what in (("walk_rip", "the guest's RIP (kernel text, 4 KiB pages)"),
                      ("walk", f"{far:#x} (the test kernel's 2 MiB mappings)")):
        w = st[key]
        for lv in w["levels"]:
            rows.append([what, f"L{lv['level']}[{lv['index']}]", f"{lv['entry_gpa']:#x}",
                         f"slot {lv.get('slot', '?')} +{lv.get('slot_offset', 0):#x}", f"{lv['entry']:#x}",
                         f"{host_levels} NPT reads, then this entry"])
        gl = len(w["levels"])
        counts[key] = (gl, w.get("page_size", 0), (gl + 1) * (host_levels + 1) - 1)
    r.table(["address", "guest level", "entry's guest-physical address", "in hvmm's memory", "entry",
             "to read it, the CPU does"], rows)
    r.table(["walk", "guest levels", "guest page", "memory accesses on a TLB miss (2D walk)"],
            [["RIP", counts["walk_rip"][0], f"{counts['walk_rip'][1] >> 10} KiB", counts["walk_rip"][2]],
             [f"{far:#x}", counts["walk"][0], f"{counts['walk'][1] >> 10} KiB", counts["walk"][2]],
             ["(computed) RIP with a 2 MiB host page: 3 NPT levels", 4, "4 KiB", (4 + 1) * (3 + 1) - 1]])
    r.note("Each guest page-table entry is at a guest-physical address, which the CPU must itself "
           f"translate through the {host_levels}-level nested table before it can read the entry; the "
           "final guest-physical address needs one more nested walk: (g + 1) x (h + 1) - 1 accesses, 24 "
           "for 4 x 4 levels. A larger page on either side removes a level from that side.")
    r.check(counts["walk_rip"] == (4, 4096, 24), f"a 4 KiB guest page costs 24 accesses: {counts['walk_rip']}")
    r.check(counts["walk"][0] == 3 and counts["walk"][1] == 2 << 20 and counts["walk"][2] == 19,
            f"a 2 MiB guest page cuts a guest level: {counts['walk']}")
    r.check(all("slot" in lv for k in ("walk_rip", "walk") for lv in st[k]["levels"]),
            "every guest page-table entry lies in one of hvmm's memory slots")
    dirty_log(env, r)
    r.bars = ([("4 KiB / 4 KiB", [(24.0, "#58c", "accesses")]), ("2 MiB guest", [(19.0, "#58c", "accesses")]),
               ("4 KiB guest, 2 MiB host", [(19.0, "#58c", "accesses")]), ("native 4 KiB", [(4.0, "#4a7", "accesses")])],
              "accesses")
    return r


NESTED_COST_RX = re.compile(r"^# nested-cost: reflected (\d+) ns \((\d+) cycles\), kvm-only (\d+) ns \((\d+) cycles\), "
                            r"own (\d+) ns \((\d+) cycles\), vmruns (\d+)", re.M)


IRQLAT_RX = re.compile(r"^# irqlat: target (\w+), (\d+) IPIs: median (\d+) ns, p10 (\d+) ns, p90 (\d+) ns", re.M)
IRQ_PATHS = [("posted", "hvmm's PID: PIR bit, then a notification per SN/ON", ("--irqchip", "user")),
             ("remapped", "hvmm puts the vector in IRR itself (--posted-interrupts off)",
              ("--irqchip", "user", "--posted-interrupts", "off")),
             ("KVM", "KVM's in-kernel LAPIC (split irqchip): hvmm not on the path", ())]


@lab("irq", "one interrupt's path: posted to a PID, remapped by hvmm, or KVM's own APIC; latency to a halted vCPU")
def lab_irq(env):
    r = Report("irq", "interrupt delivery paths: posted, remapped, in-kernel")
    rows, bars = [], []
    for name, what, extra in IRQ_PATHS:
        g = Guest(env, "test=irqlat target=halted iters=40", cpus=2, extra=extra)
        need(g, f"test=irqlat ({name})")
        m = IRQLAT_RX.search(g.out)
        if not m:
            raise LabError(f"test=irqlat ({name}) printed no latency line")
        med, p10, p90 = int(m.group(3)), int(m.group(4)), int(m.group(5))
        l0 = g.stats["vcpus"][0].get("lapic")
        posted = sum(e["posted"] for e in l0["irt"].values()) if l0 else 0
        remapped = sum(e["remapped"] for e in l0["irt"].values()) if l0 else 0
        pid = l0["posted"] if l0 else {}
        rows.append([name, what, f"{med / 1000:,.1f}", f"{p10 / 1000:,.1f}-{p90 / 1000:,.1f}",
                     f"{posted:,}" if l0 else "-", f"{remapped:,}" if l0 else "-",
                     f"{pid.get('notify_wakeup', 0):,}" if l0 else "-", f"{g.kvm('halt_wakeup'):,}"])
        bars.append((name, [(med / 1000, "#58c", "median latency")]))
        if name == "posted":
            r.check(posted > 0 and remapped == 0 and pid.get("notify_wakeup", 0) > 0,
                    f"posted: vCPU 0's IPIs went through its PID and woke it ({posted} posted, "
                    f"{pid.get('notify_wakeup', 0)} wake-up notifications)")
        elif name == "remapped":
            r.check(remapped > 0 and posted == 0, f"remapped: every IPI delivered by hvmm ({remapped}), none posted")
        else:
            r.check(l0 is None and g.kvm("halt_wakeup") > 0,
                    "KVM: no hvmm APIC; KVM woke the halted vCPU itself (halt_wakeup)")
    r.table(["path", "who delivers", "median us", "p10-p90 us", "IRT posted", "IRT remapped",
             "wake-up notifications", "KVM halt wake-ups"], rows)
    r.note("vCPU 1 sends vCPU 0 forty IPIs, one at a time, while vCPU 0 waits in HLT (the lecture's halted "
           "state); each is timed from the sender's TSC before its ICR write to vCPU 0's handler. Posted: the "
           "IPI's IRT entry names vCPU 0's posted-interrupt descriptor; posting sets the PIR bit and, as the "
           "target is halted (SN clear, NV the wake-up vector), sends the wake-up notification; the vCPU takes "
           "PIR into its IRR as it returns to running. Remapped: hvmm sets the IRR bit itself and wakes the "
           "vCPU. KVM: the ICR write never leaves KVM, which wakes the vCPU in the kernel.")
    r.bars = (bars, "us")
    return r


@lab("states", "running, ready and halted: two vCPUs on one slot (--pcpus 1), time in each state, PID updates")
def lab_states(env):
    r = Report("states", "vCPU states running / ready / halted, and what posting does in each")
    g = Guest(env, "test=smp", cpus=2, extra=("--irqchip", "user", "--pcpus", "1"))
    need(g, "test=smp --pcpus 1")
    rows, bars = [], []
    for i, v in enumerate(g.stats["vcpus"]):
        st, pid = v["lapic"]["states"], v["lapic"]["posted"]
        ms = {k: st[k]["ns"] / 1e6 for k in ("running", "ready", "halted")}
        rows.append([f"vCPU {i}", f"{ms['running']:,.1f}", f"{st['running']['entered']:,}", f"{ms['ready']:,.1f}",
                     f"{st['ready']['entered']:,}", f"{ms['halted']:,.1f}", f"{st['halted']['entered']:,}",
                     f"{pid['notify_active']:,}", f"{pid['notify_wakeup']:,}", f"{pid['suppressed']:,}"])
        bars.append((f"vCPU {i}", [(ms["running"], "#4a7", "running"), (ms["ready"], "#eb4", "ready"),
                                   (ms["halted"], "#58c", "halted")]))
    r.table(["vCPU", "running ms", "times", "ready ms", "times", "halted ms", "times",
             "active notifications", "wake-up notifications", "suppressed (SN: ready)"], rows)
    r.note("hvmm's own APICs (--irqchip user) and its scheduler with one physical-CPU slot (--pcpus 1): a "
           "vCPU is running inside KVM_RUN, ready when it has work but hvmm (or the other vCPU) has the CPU, "
           "halted after HLT until an interrupt it can take arrives. At each change hvmm updates the "
           "vCPU's posted-interrupt descriptor as the lecture's slide says: running: SN clear, NV the active "
           "vector (a post kicks it); ready: SN set (a post only sets PIR; it is taken when the vCPU is "
           "scheduled in); halted: SN clear, NV the wake-up vector (a post wakes it).")
    total = {k: sum(v["lapic"]["states"][k]["entered"] for v in g.stats["vcpus"]) for k in ("running", "ready", "halted")}
    r.check(all(total[k] > 0 for k in total), f"both vCPUs went through all three states: {total}")
    ready_ns = sum(v["lapic"]["states"]["ready"]["ns"] for v in g.stats["vcpus"])
    r.check(ready_ns > 0, "with one slot for two vCPUs, time was spent ready")
    posts = sum(v["lapic"]["posted"][k] for v in g.stats["vcpus"] for k in ("notify_active", "notify_wakeup", "suppressed"))
    r.check(posts > 0, f"interrupts were posted in these states ({posts})")
    r.bars = (bars, "ms")
    return r


NESTED_EXIT_RX = re.compile(r"^# nested-exit: the nested guest writes isa-debug-exit at rip (0x[0-9a-f]+), "
                            r"VMCB at (0x[0-9a-f]+)", re.M)
# VMCB intercept vectors 3 and 4 (AMD64 APM vol. 2, appendix B), the bits hvmm's guest sets or might
SVM_MISC1 = [(0, "INTR"), (1, "NMI"), (18, "CPUID"), (23, "PAUSE"), (24, "HLT"), (27, "IOIO"), (28, "MSR"),
             (31, "SHUTDOWN")]
SVM_MISC2 = [(0, "VMRUN"), (1, "VMMCALL"), (2, "VMLOAD"), (3, "VMSAVE")]
EXC_NAMES = [(0, "#DE"), (6, "#UD"), (8, "#DF"), (13, "#GP"), (14, "#PF")]


@lab("nested", "the guest as a hypervisor: its guest's exits, reflected to it or kept by KVM, and what each costs")
def lab_nested(env):
    r = Report("nested", "nested virtualization: a guest hypervisor's exits, multiplexed by the host's KVM")
    plain = Guest(env, "test=nested")
    r.check(not plain.passed and "nested SVM in CPUID: none" in plain.out,
            "without --nested the guest sees no SVM: hvmm hides it")
    g = Guest(env, "test=nested nestedexit=1", extra=("--nested",))
    need(g, "test=nested --nested")
    m = NESTED_COST_RX.search(g.out)
    if not m:
        raise LabError("test=nested printed no '# nested-cost' line")
    ref_ns, ref_c, kvm_ns, kvm_c, own_ns, own_c, vmruns = (int(x) for x in m.groups())
    runs = g.kvm("nested_run")
    svm = re.search(r"^ok \d+ - nested SVM in CPUID: (.*)$", g.out, re.M)
    r.table(["the exit", "who handles it", "ns", "cycles", "x the guest's own"], [
        ["CPUID in the nested guest, intercepted by the guest hypervisor",
         "KVM, then the guest hypervisor (reflected: two VMRUNs)", f"{ref_ns:,}", f"{ref_c:,}",
         f"{ref_c / max(own_c, 1):.1f}"],
        ["CPUID in the nested guest, not intercepted by it", "KVM alone (the guest hypervisor never knows)",
         f"{kvm_ns:,}", f"{kvm_c:,}", f"{kvm_c / max(own_c, 1):.1f}"],
        ["CPUID in the guest hypervisor itself (an ordinary guest exit)", "KVM", f"{own_ns:,}", f"{own_c:,}", "1.0"]])
    r.table(["counted", "value"], [
        ["SVM as the guest sees it (CPUID 0x8000000A)", svm.group(1) if svm else "?"],
        ["VMRUNs the guest hypervisor executed", f"{vmruns:,}"],
        ["VMRUNs KVM emulated for it (KVM's nested_run)", f"{runs:,}"],
        ["all exits KVM took from this vCPU", f"{g.kvm('exits'):,}"]])
    ns = g.stats["vcpus"][0]["state"].get("nested", {})
    ctl, hyp = ns.get("vmcb12_control", {}), ns.get("guest_hypervisor", {})
    regs = g.stats["vcpus"][0]["state"]["guest_state"]
    ex = NESTED_EXIT_RX.search(g.out)
    out_rip, vmcb = (int(ex.group(1), 16), int(ex.group(2), 16)) if ex else (None, None)
    misc1, misc2 = ctl.get("intercept_misc1", 0), ctl.get("intercept_misc2", 0)
    r.table(["at the end (the nested guest's OUT to isa-debug-exit)", "VMCB field", "value"], [
        ["vCPU in guest mode (the nested guest was running)", "(KVM_STATE_NESTED_GUEST_MODE)", ns.get("guest_mode", "?")],
        ["the guest hypervisor's VMCB (vmcb12)", "(VM_HSAVE / RAX of VMRUN)", f"{ns.get('vmcb12_pa', 0):#x}"],
        ["intercepted instructions", "control.intercepts",
         flags(misc1, SVM_MISC1) + " " + flags(misc2, SVM_MISC2)],
        ["intercepted exceptions", "control.intercept_exceptions",
         flags(ctl.get("intercept_exceptions", 0), [(v, n) for v, n in EXC_NAMES])],
        ["ASID", "control.asid", ctl.get("asid", "?")],
        ["nested paging", "control.np_enable / n_cr3",
         f"{ctl.get('np_enable', '?')} / {ctl.get('n_cr3', 0):#x}"],
        ["the vCPU's RIP (KVM_GET_REGS: the nested guest's)", "save.rip (vmcb02)", f"{regs['rip']:#x}"],
        ["the guest hypervisor's RIP (after its VMRUN)", "save.rip (vmcb01)", f"{hyp.get('rip', 0):#x}"]])
    r.check(ns.get("guest_mode") is True and ns.get("vmcb12_pa") == vmcb,
            f"KVM_GET_NESTED_STATE: guest mode, the VMCB at the address the guest used ({ns.get('vmcb12_pa')}, {vmcb})")
    r.check(out_rip is not None and 0 <= regs["rip"] - out_rip <= 1,
            "the vCPU stopped in the nested guest, at its OUT: an exit the guest hypervisor did not ask for "
            "went from KVM straight to hvmm")
    r.check(misc2 & 1 and misc2 & 2 and not misc1 & (1 << 27),
            "the guest hypervisor's intercepts: VMRUN and VMMCALL, no port I/O")
    r.note("The CPU has one guest mode, so the guest hypervisor's VMRUN is itself an exit: KVM merges the "
           "guest hypervisor's VMCB (its intercepts, its guest's registers) with its own and runs the nested "
           "guest directly. When the nested guest exits, KVM asks whether the guest hypervisor intercepts "
           "that event: if so it writes the exit into the guest hypervisor's VMCB and resumes the guest "
           "hypervisor after its VMRUN (reflected), if not it handles the exit itself and resumes the nested "
           "guest at once. Under the nested KVM host this is one level deeper still: QEMU's TCG emulates "
           "SVM for Linux KVM, which runs hvmm's guest, which runs its own.")
    r.check(runs >= vmruns - 1, f"KVM emulated the guest's VMRUNs: nested_run {runs} for {vmruns}")
    r.check(ref_c > kvm_c, f"a reflected exit costs more than one KVM keeps ({ref_c:,} > {kvm_c:,} cycles)")
    r.check(ref_c > own_c, f"a reflected exit costs more than an ordinary one ({ref_c:,} > {own_c:,} cycles)")
    r.bars = ([("reflected", [(float(ref_ns), "#c55", "ns")]), ("kept by KVM", [(float(kvm_ns), "#58c", "ns")]),
               ("ordinary exit", [(float(own_ns), "#4a7", "ns")])], "ns")
    return r


IOMMU_COST_RX = re.compile(r"^# iommu-cost: off (\d+) ns, hit (\d+) ns, miss (\d+) ns, (\d+) DMAs of (\d+) bytes", re.M)
IOMMU_UNIT_RX = re.compile(r"^# iommu: VT-d .*?, (\d)-level tables, (\d+) fault records; edu at (\S+) BAR0 (0x[0-9a-f]+)", re.M)
IOMMU_FAULT_RX = re.compile(r"^ok \d+ - DMA (read of unmapped|write to read-only) IOVA (0x[0-9a-f]+) refused.*?: "
                            r"fault record \d+: (read|write), reason (\d+)", re.M)
EDU_DMA_CMD = 0x98


@lab("iommu", "DMA through the IOMMU: translation, the IOTLB and its invalidation, faults, interrupt remapping")
def lab_iommu(env):
    r = Report("iommu", "the IOMMU as a guest programs it: DMA remapping, faults, interrupt remapping")
    iters = 100
    g = Guest(env, f"test=iommu iters={iters}", extra=("--device", "intel-iommu,intremap=on", "--device", "edu"))
    need(g, "test=iommu")
    io = g.stats["iommu"]
    unit, cost = IOMMU_UNIT_RX.search(g.out), IOMMU_COST_RX.search(g.out)
    faults = IOMMU_FAULT_RX.findall(g.out)
    if not unit or not cost or len(faults) != 2:
        raise LabError("test=iommu printed no unit, cost or fault lines")
    stale = re.search(r"^# iommu-stale: (\w+)", g.out, re.M).group(1)
    blocked = re.search(r"^# iommu-ir-blocked: fault record (\w+), reason (0x[0-9a-f]+)", g.out, re.M)
    r.table(["mechanism", "what the guest did", "what the unit did"], [
        ["DMA remapping", f"root table -> edu's context entry -> {unit.group(1)}-level table; edu DMAs to IOVAs",
         "walked the IOVAs to the pages the table names: the data arrived"],
        ["IOTLB", "re-pointed a cached IOVA at another page, no invalidation",
         f"served the {'old page (cached walk)' if stale == 'old' else 'new page'}"],
        ["invalidation", "global IOTLB invalidation, same DMA again", "walked again: the new page"],
        ["DMA fault", f"edu reads unmapped IOVA {faults[0][1]}",
         f"refused; record: {faults[0][2]}, reason {faults[0][3]}; fault event interrupt"],
        ["DMA fault", f"edu writes read-only IOVA {faults[1][1]}",
         f"refused, page intact; record: {faults[1][2]}, reason {faults[1][3]}; fault event"],
        ["interrupt remapping", "edu's MSI carries handle 5 (remappable format)", "vector and destination from IRTE 5"],
        ["interrupt remapping", "edu's MSI carries handle 6, IRTE not present",
         f"blocked; fault record {blocked.group(1)}, reason {blocked.group(2)}" if blocked else "blocked"],
    ])
    n = int(cost.group(4))
    us = [int(cost.group(i)) / 1000 for i in (1, 2, 3)]
    # hvmm counted the exits of edu's DMA command register: one write and
    # the polls for "done" per DMA (hvmm's edu completes in the write)
    edu_bar = int(unit.group(4), 16)
    cmd_exits = sum(c for (space, _, addr), (c, _) in g.io().items() if space == "mmio" and addr == edu_bar + EDU_DMA_CMD)
    r.table(["a DMA of " + cost.group(5) + " bytes", "median us", "the unit's work"], [
        ["translation off", f"{us[0]:,.1f}", "none: the bus address is guest-physical"],
        ["on, IOVA in the IOTLB", f"{us[1]:,.1f}", "one IOTLB lookup"],
        ["on, after an invalidation", f"{us[2]:,.1f}", f"a {unit.group(1)}-level walk: {unit.group(1)} table reads, then the IOTLB fill"],
    ])
    r.table(["translations", "IOTLB hits", "misses (walks)", "flushes", "faults", "fault events", "MSIs remapped",
             "MSIs blocked", "exits at edu's DMA command"],
            [[f"{io['translations']:,}", f"{io['iotlb_hits']:,}", f"{io['iotlb_misses']:,}", f"{io['iotlb_flushes']:,}",
              io["faults"], io["events"], io["remapped"], io["blocked"], f"{cmd_exits:,}"]])
    r.note(f"The test kernel is its own IOMMU driver (guest/vtd.c): it writes the root, context and second-level "
           f"tables, turns translation on through the unit's global command register and invalidates with its "
           f"context and IOTLB registers. Each cost is the median of {n} DMAs timed from edu's command write to "
           "its 'done': in a VM every register access is an exit, so the exits dominate and a walk adds only the "
           "few table reads hvmm does in the exit's handler. Before the invalidation the spec lets the unit use "
           "either page; after it, only the new one.")
    r.check(stale == "old", "the IOTLB kept the old translation until the guest invalidated it")
    r.check(io["iotlb_hits"] >= n and io["iotlb_misses"] >= n,
            f"{n} DMAs hit the IOTLB and {n} walked after invalidations ({io['iotlb_hits']} hits, {io['iotlb_misses']} misses)")
    r.check(io["faults"] == 3 and io["events"] == 3, f"two DMA faults and a blocked MSI recorded and signalled ({io})")
    r.check(faults[0][2:] == ("read", "6") and faults[1][2:] == ("write", "5"),
            "fault reasons as the spec numbers them: 6 read not permitted, 5 write not permitted")
    r.check(io["remapped"] == 1 and io["blocked"] == 1, "one MSI remapped through its IRTE, one blocked")
    r.check(cmd_exits >= 3 * n, f"every DMA command was an exit to hvmm ({cmd_exits} for {3 * n} timed DMAs)")
    r.bars = ([("off", [(us[0], "#4a7", "median DMA")]), ("IOTLB hit", [(us[1], "#58c", "median DMA")]),
               ("walk", [(us[2], "#eb4", "median DMA")])], "us")
    return r


# ------------------------------------------------------------------ driver

def find_guest(hvmm):
    return os.path.join(os.path.dirname(os.path.abspath(hvmm)), "guest", "hvmm-guest.elf")


def html_report(reports):
    parts = ["<!doctype html><meta charset='utf-8'><title>hvmm lab</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
             "td{text-align:right}td:first-child{text-align:left}.bad{color:#c00}</style>",
             "<h1>hvmm lab</h1>"]
    for r in reports:
        parts.append(f"<h2>{html.escape(r.name)}: {html.escape(r.title)}</h2>")
        for head, rows in r.tables:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
            parts.append("</table><p>")
        parts.append(r.svg())
        parts += [f"<p>{html.escape(n)}</p>" for n in r.notes]
        parts.append("<ul>" + "".join(f"<li class='{'' if o else 'bad'}'>{'ok' if o else 'FAILED'}: "
                                      f"{html.escape(t)}</li>" for o, t in r.checks) + "</ul>")
    return "\n".join(parts)


def nested(argv):
    """The same command inside the nested KVM host; its exit status."""
    launcher = os.path.join(ROOT, "scripts", "kvm-host")
    print("hvmm lab: no usable /dev/kvm here: running in the nested KVM host (scripts/kvm-host)",
          file=sys.stderr, flush=True)
    p = subprocess.run([sys.executable, launcher, "--timeout", "900", "--", sys.executable,
                        os.path.abspath(__file__)] + argv)
    return EXIT_HOST if p.returncode in (124, 125) else p.returncode


def main(argv):
    ap = argparse.ArgumentParser(prog="hvmm lab", add_help=True)
    ap.add_argument("--hvmm", required=True, help=argparse.SUPPRESS)
    ap.add_argument("name", nargs="?", help="a lab, or 'all'")
    ap.add_argument("--json", action="store_true", help="JSON instead of the report")
    ap.add_argument("--out", help="all: the directory for report.html (default: the current one)")
    ap.add_argument("--guest", help="hvmm's test kernel (default: guest/hvmm-guest.elf beside hvmm)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else 0
    if not a.name:
        print("hvmm lab NAME [--json] runs one; hvmm lab all [--out DIR] runs every one:")
        for name, (line, _) in LABS.items():
            print(f"  {name:8} {line}")
        return 0
    names = list(LABS) if a.name == "all" else [a.name]
    if a.name != "all" and a.name not in LABS:
        print(f"hvmm lab: no lab '{a.name}' (hvmm lab lists them)", file=sys.stderr)
        return EXIT_USAGE
    guest = a.guest or find_guest(a.hvmm)
    if not os.path.exists(guest):
        print(f"hvmm lab: the test kernel {guest} is missing (make guests builds it)", file=sys.stderr)
        return EXIT_HOST
    try:
        mode = kvm_mode()
    except ValueError as e:
        print(f"hvmm lab: {e}", file=sys.stderr)
        return EXIT_USAGE
    if mode == "nested":
        return nested(argv)
    env = Env(a.hvmm, guest)
    reports = []
    try:
        for n in names:
            t0 = time.monotonic()
            reports.append(LABS[n][1](env))
            reports[-1].seconds = time.monotonic() - t0
    except LabError as e:
        print(f"hvmm lab {n}: {e}", file=sys.stderr)
        return EXIT_HOST
    finally:
        env.close()
    if a.json:
        print(json.dumps([r.as_json() for r in reports] if a.name == "all" else reports[0].as_json(), indent=1))
    else:
        print("\n\n".join(r.text() for r in reports))
    if a.name == "all":
        out = os.path.join(a.out or ".", "report.html")
        with open(out, "w") as f:
            f.write(html_report(reports))
        print(f"hvmm lab: report written to {out}", file=sys.stderr)
    return 0 if all(r.ok() for r in reports) else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
