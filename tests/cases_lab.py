"""`hvmm lab`: each lab's evidence, asserted.

The labs check their own evidence (a lab whose evidence does not hold exits
1); these cases also read the numbers a person would look at, so that a lab
that measured nothing cannot pass: the million system calls cost hvmm no
exit, a port or MMIO exit reached hvmm while a CPUID exit did not, HLT exits
switched off left KVM no halt exit, the MSR filter sent RDMSRs to hvmm, and
the report a teacher hands out has every lab, with its picture.
"""
import json
import os

from harness import case, expect


@case("lab/usage", kvm=False)
def t_lab_usage(ctx):
    """`hvmm lab` lists the labs; a lab that does not exist or a bad option
    is one line and status 2."""
    r = ctx.hvmm_raw("lab")
    expect(r.status == 0 and all(n in r.out for n in ("modes", "exits", "controls")),
           "hvmm lab lists modes, exits and controls", r)
    r = ctx.hvmm_raw("lab", "nosuch")
    expect(r.status == 2 and r.err.strip() == "hvmm lab: no lab 'nosuch' (hvmm lab lists them)",
           "an unknown lab: one line, status 2", r)
    r = ctx.hvmm_raw("lab", "exits", "--bogus")
    expect(r.status == 2, "an unknown option: status 2", r)
    r = ctx.hvmm_raw("lab", "modes", "--guest", os.path.join(ctx.tmp, "none.elf"))
    expect(r.status == 6 and "none.elf is missing" in r.err, "a missing guest: one line, status 6", r)


def rows(report, table=0):
    t = report["tables"][table]
    return {r[0]: dict(zip(t["head"], r)) for r in t["rows"]}


@case("lab/all")
def t_lab_all(ctx):
    """Every lab on real guests, as `hvmm lab all --json` reports it."""
    r = ctx.hvmm_raw("lab", "all", "--json", "--out", ctx.tmp, timeout=600)
    expect(r.status == 0, "every lab's evidence holds", r)
    labs = {x["lab"]: x for x in json.loads(r.out)}
    expect(set(labs) == {"modes", "exits", "controls", "io", "inject", "vmcs", "ept", "irq", "states", "nested",
                         "iommu"},
           f"labs run: {sorted(labs)}", r)
    for name, x in labs.items():
        bad = [c["text"] for c in x["checks"] if not c["ok"]]
        expect(x["ok"] and x["checks"] and not bad, f"{name}: failed checks {bad}", r)

    modes = labs["modes"]
    entries = rows(modes, 0)
    expect(len(entries) == 3 and all(e["round trips"] == "1,000,000" for e in entries.values()),
           f"modes: three entries, a million round trips each: {entries}", r)
    counted = rows(modes, 1)
    expect(counted["hvmm (exits to user space, serial output aside)"]["added"] == 0,
           f"modes: the system calls added no exit to hvmm: {counted}", r)

    exits = rows(labs["exits"], 0)
    for k in ("pio", "mmio"):
        expect(exits[k]["hvmm ns"] != "-" and exits[k]["hvmm share"] != "-",
               f"exits: {k} reached hvmm and has a share: {exits[k]}", r)
    for k in ("cpuid", "msr", "hypercall", "ipi", "hlt"):
        expect(exits[k]["hvmm ns"] == "-", f"exits: KVM handled {k} without hvmm: {exits[k]}", r)
    ns = {k: int(v["ns"].replace(",", "")) for k, v in exits.items()}
    expect(ns["cpuid"] > 10 * max(1, ns["none"]), f"exits: an exit costs more than the loop: {ns}", r)
    expect("pause" in ns and ns.get("extint", 0) > 10 * max(1, ns["none"]),
           f"exits: PAUSE measured; the host's interrupts seen as gaps longer than the loop: {ns}", r)

    counted = rows(labs["controls"], 1)
    d, ctl, xa = labs["controls"]["tables"][1]["head"][1:]
    expect(counted["KVM halt exits"][ctl] == "0" and counted["KVM halt exits"][d] != "0",
           f"controls: --no-hlt-exits took the halt exits away: {counted['KVM halt exits']}", r)
    rdmsr = counted["hvmm RDMSR exits (X86_RDMSR)"]
    expect(rdmsr[d] == "0" and int(rdmsr[ctl].replace(",", "")) > 0,
           f"controls: the MSR filter sent RDMSRs to hvmm: {rdmsr}", r)
    expect(counted["LAPIC mode the guest chose"][xa] == "xAPIC", "controls: the CPUID policy reached the guest", r)

    io = rows(labs["io"], 0)
    default, no_ioev = io["ioeventfd + irqfd (default)"], io["--no-ioeventfd"]
    expect(default["doorbell exits to hvmm"] == "0" and no_ioev["doorbell exits to hvmm"] != "0",
           f"io: doorbells exit to hvmm only without ioeventfd: {default}, {no_ioev}", r)
    expect(default["interrupt path"] == "irqfd" and io["--no-irqfd"]["interrupt path"] == "injected",
           "io: interrupts posted through irqfds, injected by hvmm with --no-irqfd", r)

    with open(os.path.join(ctx.tmp, "report.html")) as f:
        page = f.read()
    inj = rows(labs["inject"], 0)
    expect([v["vector seen"] for v in inj.values()] == ["0x5e", "0x2", "0xd"] and
           inj["exception:13:0x1234@500"]["error code seen"] == "0x1234",
           f"inject: the guest saw each event with its vector and error code: {inj}", r)
    expect(all(v["latency (us)"] != "-" for v in inj.values()), f"inject: a latency for each: {inj}", r)

    vmcs = {row[0]: row for t in labs["vmcs"]["tables"] for row in t["rows"]}
    expect(vmcs["exit reason"][3].startswith("KVM_EXIT_IO") and "port 0xf4" in vmcs["qualification"][3],
           f"vmcs: the last exit and its qualification: {vmcs.get('exit reason')}", r)
    expect("LMA" in vmcs["EFER"][3] and "PG" in vmcs["CR0"][3], f"vmcs: 64-bit paging: {vmcs['EFER']}", r)
    walks = rows(labs["ept"], 1)
    expect(walks["RIP"][list(walks["RIP"])[-1]] == 24 and walks["0x40000000"][list(walks["RIP"])[-1]] == 19,
           f"ept: 24 accesses for 4 KiB, 19 for a 2 MiB guest page: {walks}", r)

    dirty = rows(labs["ept"], 2)
    w, i = dirty["harvested every 50 ms: writing"], dirty["harvested every 50 ms: idle"]
    key = "pages written per 50 ms (median)"
    expect(w[key] > 10 * max(1, i[key]), f"ept: the dirty log saw the writing phase, not the idle one: {dirty}", r)

    nest = rows(labs["nested"], 1)
    runs = int(nest["VMRUNs KVM emulated for it (KVM's nested_run)"]["value"].replace(",", ""))
    expect(runs >= 190, f"nested: KVM emulated the guest hypervisor's VMRUNs: {nest}", r)

    # vmcs has no picture: a table of fields is what a person reads there
    irq = rows(labs["irq"], 0)
    expect(set(irq) == {"posted", "remapped", "KVM"} and all(v["median us"] != "-" for v in irq.values()),
           f"irq: a latency for each path: {irq}", r)
    states = rows(labs["states"], 0)
    expect(len(states) == 2 and all(float(v["ready ms"].replace(",", "")) >= 0 for v in states.values()),
           f"states: both vCPUs' times: {states}", r)

    iommu = rows(labs["iommu"], 2)
    counts = list(iommu.values())[0]
    expect(int(counts["IOTLB hits"].replace(",", "")) >= 100 and int(counts["misses (walks)"].replace(",", "")) >= 100
           and counts["faults"] == 3, f"iommu: the unit's counters: {counts}", r)

    expect(page.count("<svg") == 10 and all(f"{n}:" in page for n in labs),
           "report.html has every lab, each but vmcs with its picture", r)
