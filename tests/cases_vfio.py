"""--device vfio: PCI passthrough of a real (QEMU-emulated) device, end to end.

There is no device to pass through on the outer machine, so each case boots
its own nested KVM host with scripts/kvm-host --passthrough: a q35 with an
emulated VT-d unit and the device at 0000:00:10.0, which the script inside
binds to vfio-pci (scripts/vfio-bind) before it runs hvmm. That makes these
kvm=False cases (they run on the outer machine, like the kvm-host/ and kut/
cases) with one nested-host boot each; every hvmm run inside has its own
--timeout and the launcher has one for the whole script.
"""
import json
import re
import os
import shutil
import subprocess
import sys

from harness import case, expect

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "..", "scripts", "kvm-host")
BIND = os.path.join(HERE, "..", "scripts", "vfio-bind")
BDF = "0000:00:10.0"  # kvm-host's first --passthrough slot
EDU_ID = "1234:11e8"


def nested(ctx, devices, script, timeout=420):
    """Runs script (sh) in a nested host with the --passthrough devices; its
    output directory (in the build tree, which the nested host shares) is
    the first argument. Returns (status, stdout+stderr, outdir)."""
    if not shutil.which("qemu-system-x86_64"):
        from harness import Skip
        raise Skip("no qemu-system-x86_64 for the nested host")
    out = os.path.join(ctx.build, f"vfio-case-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    path = os.path.join(out, "script.sh")
    with open(path, "w") as f:
        f.write(script)
    argv = [sys.executable, LAUNCHER, "--timeout", str(timeout)]
    for d in devices:
        argv += ["--passthrough", d]
    argv += ["--", "sh", path, out]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text, _ = p.communicate(timeout=timeout + 240)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the launcher ends its QEMU (a session of its own,
        # which a SIGKILL to the launcher's group would leave running)
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the launcher's group, nothing else
        p.communicate()
        raise AssertionError(f"kvm-host did not finish within {timeout + 240}s (killed pid {p.pid})")
    return p.returncode, text.decode(errors="replace"), out


def read(out, name, default=""):
    try:
        with open(os.path.join(out, name), errors="replace") as f:
            return f.read()
    except OSError:
        return default


def run_line(ctx, name, *args, vm_timeout=60):
    """A shell line that runs hvmm into OUT/name.{out,err,rc,json}."""
    a = " ".join(f"'{x}'" for x in args)
    return (f"timeout -s KILL {vm_timeout + 30} {ctx.hvmm_bin} run --timeout {vm_timeout} "
            f"--stats-json \"$OUT/{name}.json\" {a} >\"$OUT/{name}.out\" 2>\"$OUT/{name}.err\" "
            f"</dev/null; echo $? >\"$OUT/{name}.rc\"\n")


def result(out, name):
    rc = read(out, f"{name}.rc").strip()
    st = read(out, f"{name}.json")
    return (int(rc) if rc.lstrip("-").isdigit() else None, read(out, f"{name}.out"), read(out, f"{name}.err"),
            json.loads(st) if st else None)


def mmio_exits_in(stats, lo, hi):
    return sum(1 for v in stats["vcpus"] for x in v["io"]
               if x["space"] == "mmio" and lo <= x["addr"] < hi)


@case("vfio/edu", kvm=False, qemu=True)
def t_vfio_edu(ctx):
    """QEMU's edu, passed through: the same guest (tests/guests/edu.S) that
    passes on hvmm's own edu model passes on the real device — registers,
    factorial, DMA into guest RAM both ways, the BAR moved, MSI (and, with
    --irqchip kernel, INTx through an irqfd with resampling) — and its
    register accesses never exit to hvmm (the BAR is a KVM memory slot).
    Also the one-line errors and exit status 2 for a function that does not
    exist, one not bound to vfio-pci, a group that is not viable, and the
    combinations hvmm refuses."""
    g = ctx.guest("edu.elf")
    script = "set -u\nOUT=$1\n"
    script += f"{BIND} {BDF} >\"$OUT/bind.out\" 2>&1 || {{ cat \"$OUT/bind.out\"; exit 90; }}\n"
    script += run_line(ctx, "emu", "--device", "edu", g)
    script += run_line(ctx, "pt", "--stats", "--device", f"vfio,host={BDF}", g)
    gi = ctx.guest("edu_intx.elf")
    script += run_line(ctx, "emu_intx", "--irqchip", "kernel", "--device", "edu", gi)
    script += run_line(ctx, "pt_intx", "--irqchip", "kernel", "--device", f"vfio,host={BDF}", gi)
    script += run_line(ctx, "nodev", "--device", "vfio,host=0000:00:09.0", g)
    script += run_line(ctx, "unbound", "--device", "vfio,host=0000:00:1f.0", g)
    script += run_line(ctx, "iommu", "--device", f"vfio,host={BDF}", "--device", "intel-iommu", g)
    script += run_line(ctx, "badaddr", "--device", "vfio,host=00:10", g)
    # A group that is not viable: the SMBus controller of q35's group
    # 00:1f.* handed to vfio-pci while the ISA bridge keeps lpc_ich.
    script += ("for f in /sys/bus/pci/devices/0000:00:1f.*; do echo \"$f $(basename "
               "$(readlink $f/driver 2>/dev/null) 2>/dev/null)\"; done >\"$OUT/grp.txt\"\n")
    script += f"{BIND} 0000:00:1f.3 >\"$OUT/bind2.out\" 2>&1\n"
    script += run_line(ctx, "notviable", "--device", "vfio,host=0000:00:1f.3", g)
    status, text, out = nested(ctx, ["edu"], script)
    try:
        check_edu(status, text, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check_edu(status, text, out):
    expect(status == 0, f"the nested host ran the script (status {status}):\n{text[-2000:]}")
    expect(read(out, "bind.out").startswith(f"{BDF} group "), f"bound to vfio-pci: {read(out, 'bind.out')!r}")

    rc, sout, serr, emu = result(out, "emu")
    expect(rc == 1 and "edu: all ok" in sout, f"hvmm's own edu: status {rc}\n{sout}{serr}")
    rc, sout, serr, pt = result(out, "pt")
    expect(rc == 1 and "edu: all ok" in sout, f"edu passed through: status {rc}\n{sout}{serr}")
    expect(pt and len(pt["vfio"]) == 1, f"one passed-through device in the statistics: {pt and pt.get('vfio')}")
    v = pt["vfio"][0]
    expect(v["host"] == BDF and v["mapped_bytes"] == 1 << 20, f"edu's 1 MiB BAR mapped: {v}")
    expect(v["maps"] >= 2 and v["unmaps"] >= 1, f"the BAR mapped, unmapped when the guest moved it, mapped again: {v}")
    expect(v["bar_reads"] == 0 and v["bar_writes"] == 0, f"no BAR access reached hvmm: {v}")
    expect(re.search(rf"^vfio {BDF}: 1024 KiB of BARs mapped \(\d+ maps, \d+ unmaps\), forwarded 0 BAR reads, "
                     r"0 BAR writes, \d+ config reads, \d+ config writes$", serr, re.M),
           f"--stats names the device and what it forwarded: {serr!r}")
    for name in ("emu_intx", "pt_intx"):
        rc, sout, serr, _ = result(out, name)
        expect(rc == 1 and "edu: intx ok" in sout and "edu: all ok" in sout,
               f"{name}: INTx through KVM's IOAPIC (--irqchip kernel), raised twice: status {rc}\n{sout}{serr}")
    pt_mmio = mmio_exits_in(pt, 0xc0000000, 0xe0000000)
    emu_mmio = mmio_exits_in(emu, 0xc0000000, 0xe0000000)
    expect(pt_mmio == 0, f"no MMIO exit in the PCI window with passthrough ({pt_mmio})")
    expect(emu_mmio > 10, f"the emulated edu exits on every register access ({emu_mmio})")

    for name, text in (("nodev", "no such PCI function"), ("unbound", "bind it to vfio-pci"),
                       ("iommu", "cannot be combined with --device intel-iommu"),
                       ("badaddr", "is not a PCI address")):
        rc, sout, serr, _ = result(out, name)
        lines = serr.strip().splitlines()
        expect(rc == 2 and len(lines) == 1 and text in lines[0] and lines[0].startswith("hvmm: "),
               f"{name}: status 2 and one line saying '{text}': status {rc}, {serr!r}")
    rc, sout, serr, _ = result(out, "notviable")
    expect(rc == 2 and "/dev/vfio/" in serr and
           "group not viable (bind every device in the group to vfio-pci)" in serr,
           f"00:1f.3 on vfio-pci, 00:1f.0 on lpc_ich: status 2, 'group not viable': {rc} {serr!r}\n"
           f"{read(out, 'grp.txt')}")
    print(f"      edu through VFIO: all checks pass; MMIO exits in the PCI window: "
          f"emulated edu {emu_mmio}, passed through {pt_mmio}; BAR maps {v['maps']}, "
          f"unmaps {v['unmaps']}; errors: {serr.strip()}")


@case("vfio/virtio-blk-linux", kvm=False, qemu=True)
def t_vfio_virtio_blk_linux(ctx):
    """A virtio-blk-pci disk passed through to a Linux guest, which drives it
    with its own virtio_pci and virtio_blk: /dev/vda reads back exactly the
    bytes the host wrote into the image, with its completions coming as
    MSI-X interrupts (the vectors' irqfds, signalled by VFIO), and the
    queue notifies and configuration registers in the mapped BAR never
    reaching hvmm."""
    import hashlib
    from linuxvm import images
    images(ctx.build, "vmlinux", "boot.cpio")  # built here: the nested host has no network
    out_img = os.path.join(ctx.build, f"vfio-blk-{os.getpid()}.img")
    data = b"".join(hashlib.sha256(b"hvmm vfio %d" % i).digest() for i in range(1 << 17))  # 4 MiB
    with open(out_img, "wb") as f:
        f.write(data)
    want = hashlib.sha256(data).hexdigest()
    inner = os.path.join(HERE, "vfio_linux_inner.py")
    script = ("set -u\nOUT=$1\n"
              f"{BIND} {BDF} >\"$OUT/bind.out\" 2>&1 || {{ cat \"$OUT/bind.out\"; exit 90; }}\n"
              f"python3 {inner} \"$OUT\" {BDF} {ctx.hvmm_bin} {ctx.build} {want}\n")
    try:
        status, text, out = nested(ctx, [f"virtio-blk:{out_img}"], script, timeout=600)
    finally:
        os.unlink(out_img)
    res = read(out, "linux.json")
    shutil.rmtree(out, ignore_errors=True)
    expect(res, f"the script inside wrote no result (status {status}):\n{text[-2000:]}")
    res = json.loads(res)
    expect("error" not in res, f"the Linux guest: {res.get('error')}\n{text[-1500:]}")
    expect(re.search(r"0x1af4 0x1042 virtio-pci", res["lspci"]),
           f"the guest's virtio_pci drives 1af4:1042 (modern virtio-blk): {res['lspci']!r}")
    expect(res["sha256"] == want, f"/dev/vda reads sha256 {res['sha256']!r}, the image {want}")
    expect(res.get("status") == 0, f"poweroff ends hvmm with status 0: {res.get('status')}")
    irqs = [l for l in res["interrupts"].splitlines() if "virtio" in l]
    counts = [sum(int(x) for x in re.findall(r"\s(\d+)(?=\s)", l.split(":", 1)[1].split("PCI")[0]))
              for l in irqs if ":" in l]
    expect(irqs and any("MSI" in l for l in irqs) and sum(counts) > 0,
           f"virtio interrupts are MSI-X and arrived: {res['interrupts']!r}")
    st = res["stats"]
    expect(st and len(st["vfio"]) == 1, f"statistics of the passed-through device: {st and st.get('vfio')}")
    v = st["vfio"][0]
    expect(v["mapped_bytes"] > 0 and v["maps"] > 0, f"a BAR mapped into the guest: {v}")
    expect(v["bar_reads"] == 0 and v["bar_writes"] == 0,
           f"no access to the virtio registers reached hvmm (the MSI-X table is pci_msix's): {v}")
    irt = [e for e in st["irt"] if e["device"].startswith("vfio")]
    expect(irt and all(e["irqfd"] for e in irt), f"the vectors are irqfds: {irt}")
    print(f"      virtio-blk through VFIO: prompt at {res['prompt_s']:.1f}s, /dev/vda sha256 matches, "
          f"{sum(counts)} MSI-X interrupts, {len(irt)} vectors; forwarded BAR accesses "
          f"{v['bar_reads']} reads / {v['bar_writes']} writes, {v['mapped_bytes']} bytes mapped")
