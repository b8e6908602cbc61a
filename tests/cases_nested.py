"""--nested: hvmm's guest may be a hypervisor itself.

What a user relies on: without --nested the guest sees no SVM/VMX (it cannot
load its own KVM behind hvmm's back); with it, the test kernel's tiny guest
hypervisor (guest/nested.c) turns SVM on, runs a guest of its own with
VMRUN and gets its exits, and the host's KVM counts every VMRUN it emulated;
QEMU with the same CPU features gives the same TAP lines.
"""
import os
import re

from cases_guest import check_all_ok, kernel
from harness import case, expect, reference_retry

COST_RX = re.compile(r"^# nested-cost: reflected (\d+) ns \((\d+) cycles\), kvm-only (\d+) ns \((\d+) cycles\), "
                     r"own (\d+) ns \((\d+) cycles\), vmruns (\d+)", re.M)


def nested_costs(out):
    """{reflected, kvm-only, own: ns}, vmruns from test=nested's cost line."""
    m = COST_RX.search(out)
    if not m:
        return None, 0
    v = [int(x) for x in m.groups()]
    return {"reflected": v[0], "kvm-only": v[2], "own": v[4]}, v[6]


@case("nested/svm")
def t_nested_svm(ctx):
    hv = ctx.hvmm("--cmdline", "test=nested", kernel(ctx), timeout=90, vm_timeout=60)
    expect(hv.status == 3 and "not ok 1 - nested SVM in CPUID: none" in hv.out,
           "without --nested the guest sees no SVM", hv)
    # nestedexit=1: the nested guest itself ends the VM (an OUT to
    # isa-debug-exit its hypervisor does not intercept goes from KVM
    # straight to hvmm), so the vCPU ends in guest mode
    hv = ctx.hvmm("--nested", "--cmdline", "test=nested nestedexit=1", kernel(ctx), timeout=150, vm_timeout=120)
    th = check_all_ok("hvmm --nested", hv)
    ns = hv.stats["vcpus"][0]["state"].get("nested", {})
    m = re.search(r"^# nested-exit: .* at rip (0x[0-9a-f]+), VMCB at (0x[0-9a-f]+)", hv.out, re.M)
    expect(m and ns.get("guest_mode") is True and ns.get("vmcb12_pa") == int(m.group(2), 16),
           f"KVM_GET_NESTED_STATE at the end: in guest mode, the guest's VMCB: {ns}", hv)
    rip = hv.stats["vcpus"][0]["state"]["guest_state"]["rip"]
    expect(0 <= rip - int(m.group(1), 16) <= 1, f"the vCPU ended in the nested guest's OUT: rip {rip:#x}", hv)
    cost, vmruns = nested_costs(hv.out)
    expect(cost and vmruns >= 190, f"the guest hypervisor's costs and VMRUN count: {cost}, {vmruns}", hv)
    # KVM emulates each VMRUN of its guest (the CPU has one guest mode): its
    # nested_run counter is the host's view of the guest hypervisor's work.
    runs = sum(v["kvm"].get("nested_run", 0) for v in hv.stats["vcpus"])
    expect(runs >= vmruns - 1, f"KVM's nested_run {runs} for the guest's {vmruns} VMRUNs", hv)
    expect(cost["reflected"] > cost["kvm-only"],
           f"an exit reflected to the guest hypervisor costs more than one KVM keeps: {cost}", hv)
    _, tq = reference_retry(
        lambda: ctx.qemu(kernel(ctx), append="test=nested", timeout=150),
        lambda r: check_all_ok("QEMU-KVM -cpu host", r))
    # (tap() keeps each line's words before its colon: the CPU's SVM revision
    # and ASID count are each VMM's choice, KVM offers 8 ASIDs, QEMU says 16)
    expect(th == tq, f"hvmm --nested and QEMU disagree:\n{th}\n{tq}")
    print(f"      hvmm --nested: {vmruns} VMRUNs, KVM nested_run {runs}; CPUID of the nested guest reflected "
          f"{cost['reflected']} ns, kept by KVM {cost['kvm-only']} ns, the guest's own {cost['own']} ns")


@case("nested/refused", kvm=False)
def t_nested_usage(ctx):
    """--nested is a flag: a value is refused in one line, status 2."""
    r = ctx.hvmm_raw("run", "--nested=on", kernel(ctx))
    expect(r.status == 2 and len(r.err.strip().splitlines()) == 1 and "nested" in r.err,
           "--nested=on: one line, status 2", r)


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace").replace("\r", "")


@case("nested/snapshot")
def t_nested_snapshot(ctx):
    """A snapshot taken while the guest's own guest runs (the vCPU in guest
    mode: KVM_GET_NESTED_STATE holds the guest hypervisor's VMCB) restores
    into a VM where that nested guest runs on: every run of it still ends at
    its own VMMCALL, and the test kernel finishes with every line ok."""
    import json
    import subprocess
    import time
    from cases_api import ctl, wait_for
    from cases_snapshot import start, stop
    sock, src_out = os.path.join(ctx.tmp, "n.sock"), os.path.join(ctx.tmp, "n-src.out")
    state, mem = os.path.join(ctx.tmp, "n.snap"), os.path.join(ctx.tmp, "n.mem")
    p = start(ctx, ["--nested", "--api-sock", sock, "--cmdline", "test=nested nestedloop=8000", kernel(ctx)],
              src_out)
    try:
        wait_for(sock)
        end = time.time() + 90
        while "# nested-loop:" not in read(src_out):
            expect(time.time() < end and p.poll() is None, f"the nested loop never started: {read(src_out)[-800:]}")
            time.sleep(0.1)
        # Pause until the vCPU is caught in guest mode (nearly always: the
        # guest hypervisor runs a few instructions between 2000-CPUID runs).
        for _ in range(10):
            rc, _, err = ctl(ctx, sock, "pause")
            expect(rc == 0, f"pause: {rc} {err!r}")
            rc, out, err = ctl(ctx, sock, "stats")
            expect(rc == 0, f"stats: {rc} {err!r}")
            ns = json.loads(out)["vcpus"][0]["state"].get("nested", {})
            if ns.get("guest_mode"):
                break
            ctl(ctx, sock, "resume")
            time.sleep(0.05)
        expect(ns.get("guest_mode") is True and ns.get("vmcb12_pa"), f"paused in guest mode: {ns}")
        rc, _, err = ctl(ctx, sock, "snapshot", state, mem)
        expect(rc == 0, f"hvmm ctl snapshot: {rc} {err!r}")
        stop(p, "the source")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    r = subprocess.run([ctx.hvmm_bin, "run", "--timeout", "90", "--restore", state], capture_output=True,
                       timeout=120)
    out = r.stdout.decode(errors="replace").replace("\r", "")
    whole = read(src_out) + out
    expect(r.returncode == 1 and re.search(r"^ok \d+ - nested loop: \d+ runs", out, re.M)
           and "not ok" not in whole,
           f"the restored VM's nested guest ran on and the test kernel passed: status {r.returncode}\n{out[-1500:]}")
    print(f"      snapshot in guest mode (VMCB at {ns['vmcb12_pa']:#x}); restored: "
          f"{re.search(r'nested loop: (.*)', out).group(1)}")
