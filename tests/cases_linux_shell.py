"""Debian's stock kernel to a shell, on hvmm and on QEMU, with Linux's own
drivers: the judge of a VMM is software nobody here wrote.

Same kernel, same images (scripts/linux-images: busybox initramfs, the ext4
root), same command line on both VMMs. QEMU runs microvm with the same
virtio-pci devices (with ACPI, so that Linux powers it off and resets it the
way it does hvmm), or q35 where the guest restarts (see MICROVM below). Each VMM's stdin and stdout are a pseudo-terminal, typed
at the way a person would (tests/linuxvm.py). What each case asserts is what
a user relies on: answers at the prompt, output that is all there, files on
the disk after the VM is gone, bytes through the network intact, and the VM
ending by itself when the guest powers off, restarts or panics.

hvmm's runs are never retried; a QEMU run that fails is tried once more
(harness.reference_retry), as the nested KVM host has lost a QEMU guest's
interrupt before. Which scenarios run on QEMU in every `make test`: see
QEMU_REFERENCES_ALL.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

from harness import case, expect, free_port, nested_guest_args, nested_qemu_cpu, reference_retry
from linuxvm import PROMPT, LinuxVM
from linuxvm import images as linux_images

MEM = "512M"
BOOT = 120          # s to the prompt (measured in the nested host: 10-20 s)
VM_TIMEOUT = 300    # s a VM may live at all
# pci=noearly: the emulated CPU here is AMD family 0Fh, for which Linux probes
# for an AGP/GART bridge before its PCI layer starts, reading the class of all
# 8192 bus/slot pairs through 0xcf8/0xcfc: ~3 s of every boot in the nested
# KVM host, the same on every boot and on both VMMs. These cases are about
# what comes after; linux/debian-kernel boots with the probe and Linux's
# default command line.
CMDLINE = "panic=-1 quiet pci=noearly"
# The kernel most cases boot: the same Debian kernel as its ELF vmlinux,
# through the PVH entry on both VMMs, because the bzImage costs every boot ~3 s
# of xz decompression under TCG (in hvmm or in QEMU's guest). The bzImage, the
# way a user boots it, is linux/shell-serial's on both VMMs, and
# linux/boot-formats takes hvmm through every other format.
KERNEL = "vmlinux"


def images(ctx):
    return linux_images(ctx.build, "vmlinuz", "vmlinux", "boot.cpio", "rootfs.ext4")


# The IOMMU variant of a case (IOMMU_CASES below): hvmm only, with the VT-d
# unit and Linux's intel_iommu=on, so every virtio device's DMA goes through
# translation. Cases run one after another, so a module flag is enough.
IOMMU = {"on": False, "stats": None}


def vm_timeout():
    """How long a VM may live: longer behind the IOMMU, where Linux maps,
    unmaps and invalidates for every buffer (each invalidation an exit to
    hvmm): linux/network's 128 MiB take ~3x as long in the nested host."""
    return VM_TIMEOUT * 3 if IOMMU["on"] else VM_TIMEOUT


def hvmm_argv(ctx, cpus=1, console="ttyS0", extra=(), cmdline=CMDLINE, kernel=KERNEL, initrd=None):
    img = images(ctx)
    if IOMMU["on"]:
        IOMMU["stats"] = os.path.join(ctx.tmp, "iommu-stats.json")
        extra = tuple(extra) + ("--device", "intel-iommu", "--stats-json", IOMMU["stats"])
        cmdline = cmdline + " intel_iommu=on"
    # --stats: a VM that hangs is ended with SIGTERM (linuxvm.py), and its
    # exit counts and each vCPU's last state are then in the failure message.
    argv = [ctx.hvmm_bin, "run", "--stats", "--timeout", str(vm_timeout()), "--mem", MEM, "--cpus", str(cpus),
            "--kernel", img.get(kernel, kernel), "--initrd", initrd or img["boot.cpio"],
            "--cmdline", f"console={console} {cmdline}", *nested_guest_args()]
    if console == "hvc0":
        argv += ["--console", "virtio", "--serial", "none"]
    return argv + list(extra)


# QEMU's machine types. microvm is the closer peer (no firmware, no legacy
# PC); where the guest restarts, q35: microvm's reset register (in its ACPI
# GED) left QEMU stopped at a KVM emulation failure in 3 of 6 restarts with
# 2 vCPUs in the nested KVM host (a vCPU in 32-bit code at a wild EIP after
# "Requesting system reboot", and QEMU never exits), q35's 0xCF9 in none of 6.
MICROVM = "microvm,x-option-roms=off,acpi=on,rtc=on,pcie=on"
Q35 = "q35"


def qemu_argv(ctx, cpus=1, console="ttyS0", extra=(), cmdline=CMDLINE, machine=MICROVM, kernel=KERNEL):
    img = images(ctx)
    argv = ["qemu-system-x86_64", "-M", machine,
            "-enable-kvm", "-cpu", nested_qemu_cpu(), "-m", MEM, "-smp", str(cpus),
            "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
            "-kernel", img[kernel], "-initrd", img["boot.cpio"],
            "-append", f"console={console} {cmdline}"]
    if console == "hvc0":
        argv += ["-serial", "none", "-chardev", "stdio,id=con,signal=off", "-device", "virtio-serial-pci",
                 "-device", "virtconsole,chardev=con"]
    else:
        argv += ["-serial", "stdio"]
    return argv + list(extra)


# The QEMU reference of every scenario costs a second Linux boot under the
# nested host's TCG, and `make test` must end within CI's 30 minutes on two
# cores: the console and power cases (shell-virtio-console, power: q35)
# always run it; the device cases (shell-serial's virtio-rng, the disks,
# the network) and the debian-kernel pair (cases_linux.py, microvm) run it
# with HVMM_QEMU_REFERENCES=all, which runs every scenario on both VMMs.
QEMU_REFERENCES_ALL = os.environ.get("HVMM_QEMU_REFERENCES") == "all"


def both(ctx, scenario, machine=MICROVM, reference=True):
    """scenario(who, argv_fn) on hvmm (never retried), then on QEMU (one
    retry) unless reference is False (see above); each returns a summary
    line, printed."""
    # Each line as soon as its VMM is done: a case of two long runs must not
    # be silent longer than tests/run.py's limit for a lost nested host.
    print(f"      {scenario('hvmm', lambda **kw: hvmm_argv(ctx, **kw))}", flush=True)
    if IOMMU["on"]:
        print(f"      {check_iommu_stats(ctx)}")
        return
    if not reference and not QEMU_REFERENCES_ALL:
        print("      (the same scenario on QEMU: HVMM_QEMU_REFERENCES=all)", flush=True)
        return
    _, q = reference_retry(lambda: None, lambda _: scenario(
        "QEMU" if machine == MICROVM else "QEMU q35", lambda **kw: qemu_argv(ctx, machine=machine, **kw)))
    print(f"      {q}", flush=True)


def boot_to_prompt(vm, who):
    vm.expect(PROMPT, BOOT, what=f"{who}: the shell prompt")
    t = vm.elapsed()
    if IOMMU["on"]:
        check_iommu_guest(vm, who)
    return t


def check_iommu_guest(vm, who):
    """Linux found the VT-d unit, turned translation on, and put every
    virtio function in an IOMMU group whose domain translates (DMA or
    DMA-FQ: not identity), with VIRTIO_F_ACCESS_PLATFORM (bit 33) accepted."""
    dmesg = vm.run("dmesg | grep -E 'DMAR|Virtualization Technology' | head -40")
    expect(re.search(r"Intel\(R\) Virtualization Technology for Directed I/O", dmesg),
           f"{who}: Linux did not enable VT-d translation:\n{dmesg[-1500:]}")
    out = vm.run("for d in /sys/bus/pci/devices/*; do [ $(cat $d/vendor) = 0x1af4 ] || continue; "
                 "g=$(readlink $d/iommu_group); echo \"$(basename $d) group=${g##*/} "
                 "type=$(cat $d/iommu_group/type 2>/dev/null) "
                 "features=$(cat $d/virtio*/features 2>/dev/null)\"; done")
    rows = [l for l in out.split("\n") if "group=" in l]
    expect(rows, f"{who}: no virtio PCI function found: {out!r}")
    for row in rows:
        m = re.search(r"group=(\d+) type=(\S+) features=([01]+)", row)
        expect(m and m.group(2) in ("DMA", "DMA-FQ") and len(m.group(3)) > 33 and m.group(3)[33] == "1",
               f"{who}: a virtio function without a translating IOMMU domain or ACCESS_PLATFORM: {row!r}")


def check_iommu_stats(ctx):
    """hvmm's own count: IOVAs translated for every virtio device, IOTLB
    misses (walks) and hits, no DMA fault. (Translation itself is off by
    the end: Linux turns it off on its way to power-off.)"""
    with open(IOMMU["stats"]) as f:
        st = json.load(f)
    io = st["iommu"]
    expect(io, "no intel-iommu statistics")
    expect(io["iotlb_misses"] > 0 and io["iotlb_hits"] > 0 and io["faults"] == 0,
           f"intel-iommu counters: {io}")
    for d in st["virtio"]:
        expect(d["dma_translations"] > 0 and d["dma_faults"] == 0,
               f"{d['name']} at devfn {d['devfn']:#x}: {d['dma_translations']} IOVA translations, "
               f"{d['dma_faults']} faults")
    devs = ", ".join(f"{d['name']} {d['dma_translations']}" for d in st["virtio"])
    return (f"hvmm+iommu: IOVA translations {devs}; IOTLB {io['iotlb_hits']} hits, "
            f"{io['iotlb_misses']} misses, {io['iotlb_flushes']} flushes")


def end_with(vm, who, command, want_status=0):
    vm.send(command + "\n")
    st = vm.wait(60)
    expect(st == want_status, f"{who}: `{command}` ended the VMM with status {st}, want {want_status}"
           + vm.tail())
    return vm.elapsed()


def check_output_complete(vm, who, n=3000):
    """Every line of a burst of user-space output arrives, in order."""
    out = vm.run(f"seq 1 {n}", timeout=120)
    got = [l for l in out.split("\n") if l.strip()]
    want = [str(i) for i in range(1, n + 1)]
    expect(got == want, f"{who}: `seq 1 {n}` printed {len(got)} lines, first difference at line "
           f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), n))}")


def check_typing(vm, who):
    """A person types a line the shell reads, and gets it back."""
    vm.send("read -r line; echo \"you typed <$line>\"\n")
    vm.expect(r"read -r line.*\n", 30, what=f"{who}: the echo of the read command")
    vm.send("hello from the terminal 12345\n")
    vm.expect(r"you typed <hello from the terminal 12345>", 30, what=f"{who}: the typed line read back")
    vm.expect(PROMPT, 30)


@case("linux/shell-serial", qemu=True)
def t_shell_serial(ctx):
    """The bzImage (decompressed on the host by hvmm), ttyS0 (the 8250
    driver, interrupt-driven), 1 vCPU, virtio-rng: the
    prompt, answers to typed commands, 3000 lines of output all there,
    /dev/hwrng fed by virtio-rng, and `poweroff` ends the VMM with status 0."""
    def scenario(who, argv):
        extra = ("--rng",) if who == "hvmm" else ("-device", "virtio-rng-pci")
        with LinuxVM(argv(extra=extra, kernel="vmlinuz"), VM_TIMEOUT) as vm:
            t = boot_to_prompt(vm, who)
            kver = vm.run("uname -r").strip()
            expect(kver.startswith("6.1."), f"{who}: uname -r printed {kver!r}")
            check_typing(vm, who)
            check_output_complete(vm, who)
            rng = vm.run("cat /sys/class/misc/hw_random/rng_current; "
                         "dd if=/dev/hwrng bs=32 count=4 2>/dev/null | od -An -tx1 | tr -d ' \\n'")
            name, data = (rng.strip().split("\n") + [""])[:2]
            expect(name.startswith("virtio_rng"), f"{who}: hw_random source is {name!r}")
            expect(len(data) == 256 and len(set(data)) > 8, f"{who}: /dev/hwrng gave {data!r}")
            tend = end_with(vm, who, "poweroff")
        return f"{who}: prompt at {t:.1f}s, kernel {kver}, poweroff -> status 0 at {tend:.1f}s"
    both(ctx, scenario, reference=False)


@case("linux/shell-virtio-console", qemu=True)
def t_shell_hvc0(ctx):
    """hvc0 (virtio-console) as the console, 2 vCPUs: the same answers and
    output, and `reboot` ends the VMM with status 0."""
    def scenario(who, argv):
        with LinuxVM(argv(console="hvc0", cpus=2), VM_TIMEOUT) as vm:
            t = boot_to_prompt(vm, who)
            tty = vm.run("cat /sys/class/tty/console/active").strip()
            expect(tty == "hvc0", f"{who}: the console is {tty!r}, want hvc0")
            check_typing(vm, who)
            check_output_complete(vm, who)
            tend = end_with(vm, who, "reboot")
        return f"{who}: prompt at {t:.1f}s on hvc0, reboot (2 vCPUs) -> status 0 at {tend:.1f}s"
    both(ctx, scenario, machine=Q35)


def debugfs_cat(image, path):
    p = subprocess.run(["debugfs", "-R", f"cat {path}", image], capture_output=True, timeout=60)
    return p.stdout


@case("linux/disk-root", qemu=True)
def t_disk_root(ctx):
    """root=/dev/vda rw on virtio-blk (the ext4 image), a read-only second
    disk, 4 vCPUs on this 2-CPU host: all online and each runs work; a file
    written and synced is in the image after the VMM ends; the read-only
    disk reads back its bytes and refuses writes."""
    img = images(ctx)
    ro = os.path.join(ctx.tmp, "ro.img")
    ro_data = hashlib.sha256(b"hvmm read-only disk").digest() * (1 << 15)  # 1 MiB
    with open(ro, "wb") as f:
        f.write(ro_data)
    ro_sum = hashlib.sha256(ro_data).hexdigest()

    def scenario(who, argv):
        root = os.path.join(ctx.tmp, f"root-{who}.ext4")
        shutil.copyfile(img["rootfs.ext4"], root)
        if who == "hvmm":
            extra = ("--disk", root, "--disk", ro + ",ro")
        else:
            extra = ("-drive", f"file={root},format=raw,if=none,id=d0",
                     "-device", "virtio-blk-pci,drive=d0",
                     "-drive", f"file={ro},format=raw,if=none,id=d1,readonly=on",
                     "-device", "virtio-blk-pci,drive=d1")
        with LinuxVM(argv(cpus=4, extra=extra, cmdline=CMDLINE + " root=/dev/vda rw"), VM_TIMEOUT) as vm:
            t = boot_to_prompt(vm, who)
            mnt = vm.run("grep ' / ' /proc/mounts")
            expect(mnt.startswith("/dev/vda / ext4 rw"), f"{who}: / is {mnt.strip()!r}")
            online = vm.run("cat /sys/devices/system/cpu/online").strip()
            expect(online == "0-3", f"{who}: CPUs online {online!r}, want 0-3")
            # One busy loop pinned to each CPU; each CPU's user time grows.
            work = vm.run("for c in 0 1 2 3; do taskset -c $c sh -c "
                          "'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
                          "echo cpu$0 done on $(cut -d\" \" -f39 /proc/$$/stat)' $c & done; wait", timeout=180)
            for c in range(4):
                expect(re.search(rf"cpu{c} done on {c}\b", work), f"{who}: no work ran on CPU {c}: {work!r}")
            vm.run(f"echo written-by-{who} > /root/hvmm-proof && sync")
            rsum = vm.run("sha256sum /dev/vdb | cut -d' ' -f1").strip()
            expect(rsum == ro_sum, f"{who}: the read-only disk reads {rsum}, wrote {ro_sum}")
            getro = vm.run("blockdev --getro /dev/vdb").strip()
            expect(getro == "1", f"{who}: blockdev --getro /dev/vdb is {getro!r}")
            w = vm.run("dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>&1; echo dd=$?")
            expect("dd=0" not in w and re.search(r"Permission denied|Read-only|not permitted", w),
                   f"{who}: a write to the read-only disk was not refused as such: {w!r}")
            tend = end_with(vm, who, "poweroff")
        proof = debugfs_cat(root, "/root/hvmm-proof")
        expect(proof == f"written-by-{who}\n".encode(),
               f"{who}: after the VMM ended the image holds {proof!r} in /root/hvmm-proof")
        with open(ro, "rb") as f:
            expect(f.read() == ro_data, f"{who}: the read-only disk's file changed")
        os.unlink(root)
        return (f"{who}: prompt at {t:.1f}s (root on vda, 4 vCPUs, work on each), file in the image "
                f"after poweroff at {tend:.1f}s, vdb read-only")
    both(ctx, scenario, reference=False)


@case("linux/disk-sync-kill", qemu=True)
def t_disk_sync_kill(ctx):
    """A Linux guest writes a file on its virtio-blk root, runs `sync`, and
    the VMM is killed with SIGKILL the moment `sync` returns: the file is in
    the image, byte for byte. `sync` ends in a VIRTIO_BLK_T_FLUSH after the
    file's writes: a VMM killed without any chance to clean up must not have
    acknowledged any of them while their data was still in its own hands
    (the host's page cache outlives the process, so this cannot tell a
    flush's fdatasync from none: that takes a host crash, which the unit
    tests' flush rows stand in for). The image is checked as the next boot would
    see it: e2fsck replays the journal first (the kill left the file system
    mounted), then debugfs reads the file out."""
    img = images(ctx)

    def scenario(who, argv):
        root = os.path.join(ctx.tmp, f"kill-{who}.ext4")
        shutil.copyfile(img["rootfs.ext4"], root)
        if who == "hvmm":
            extra = ("--disk", root)
        else:
            extra = ("-drive", f"file={root},format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0")
        with LinuxVM(argv(extra=extra, cmdline=CMDLINE + " root=/dev/vda rw"), VM_TIMEOUT) as vm:
            t = boot_to_prompt(vm, who)
            out = vm.run("head -c 3000000 /dev/urandom > /root/sync-kill && sha256sum /root/sync-kill "
                         "&& sync && echo synced", timeout=120)
            m = re.search(r"\b([0-9a-f]{64})\s+/root/sync-kill", out)
            expect(m and "synced" in out, f"{who}: the guest did not write and sync the file: {out!r}")
            os.kill(vm.p.pid, signal.SIGKILL)  # the VMM alone, by its PID
            st = vm.wait(30)
            expect(st == -signal.SIGKILL, f"{who}: the VMM ended with {st}, not by SIGKILL")
        fsck = subprocess.run(["e2fsck", "-fy", root], capture_output=True, text=True, timeout=120)
        # 0: clean, 1: fixed (the journal replayed); more is damage
        expect(fsck.returncode in (0, 1), f"{who}: e2fsck -fy status {fsck.returncode}: "
               + (fsck.stdout + fsck.stderr)[-800:])
        data = debugfs_cat(root, "/root/sync-kill")
        got = hashlib.sha256(data).hexdigest()
        expect(len(data) == 3000000 and got == m.group(1),
               f"{who}: after SIGKILL the image holds {len(data)} bytes, sha256 {got}; the guest synced "
               f"3000000 bytes, sha256 {m.group(1)}")
        os.unlink(root)
        return (f"{who}: prompt at {t:.1f}s, 3 MB file written and synced, VMM killed (SIGKILL): "
                f"file intact in the image (e2fsck status {fsck.returncode})")
    both(ctx, scenario, reference=False)


@case("linux/disk-rate-limit")
def t_disk_rate_limit(ctx):
    """--disk ...,bw=1M and ...,iops=100 hold a Linux guest's O_DIRECT dd to
    the limit within 10%: 6 MiB at 1 MiB/s is 5 s after the first full
    bucket (1 MiB), 600 4 KiB writes at 100/s are 5 s after the first 100.
    Timed in the guest (/proc/uptime around dd), where the limit is felt."""
    images(ctx)
    disk = os.path.join(ctx.tmp, "limited.img")
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    for opt, dd, want in (("bw=1M", "bs=65536 count=96", 5.0), ("iops=100", "bs=4096 count=600", 5.0)):
        argv = hvmm_argv(ctx, extra=("--disk", f"{disk},{opt}"))
        with LinuxVM(argv, VM_TIMEOUT) as vm:
            boot_to_prompt(vm, "hvmm")
            out = vm.run("a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/dev/vda "
                         f"{dd} oflag=direct 2>/dev/null; b=$(cut -d' ' -f1 /proc/uptime); "
                         "echo took $a $b", timeout=120)
            m = re.search(r"took ([\d.]+) ([\d.]+)", out)
            expect(m, f"{opt}: no timing from the guest: {out!r}")
            took = float(m.group(2)) - float(m.group(1))
            expect(abs(took - want) <= 0.1 * want, f"{opt}: dd {dd} took {took:.2f} s, want {want} s +-10%")
            end_with(vm, "hvmm", "poweroff")
        expect(re.search(r"rate limit .* held back \d+ times", vm.err.decode(errors="replace")),
               f"{opt}: --stats reports the limit" + vm.tail())
    return f"bw=1M and iops=100 held within 10% (the last: {took:.2f} s for {want} s)"


@case("linux/disk-enospc", qemu=True)
def t_disk_enospc(ctx):
    """A disk whose image (8 MiB, sparse) lies on a 2000 KiB tmpfs: the
    guest writes 4 MiB of random data to it, 64 KiB at a time with O_DIRECT,
    and the host file system runs out of space midway, inside a write (its
    first 16 KiB fit: a short write for hvmm to finish). The guest's dd gets
    an I/O error (the virtio-blk request's IOERR), the VM lives on: the
    blocks written before the error read back, are in the image on the host,
    byte for byte, and `poweroff` ends the VMM with status 0. QEMU runs with
    werror=report (its default, enospc, pauses the VM instead)."""
    images(ctx)

    def scenario(who, argv):
        mnt = tempfile.mkdtemp(prefix="enospc-", dir=ctx.tmp)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2000k", "tmpfs", mnt],
                           capture_output=True, text=True, timeout=30)
        expect(p.returncode == 0, f"mount -t tmpfs (this case needs root): {p.stderr.strip()}")
        try:
            disk = os.path.join(mnt, "full.img")
            with open(disk, "wb") as f:
                f.truncate(8 << 20)
            if who == "hvmm":
                extra = ("--disk", disk)
            else:
                extra = ("-drive", f"file={disk},format=raw,if=none,id=d0,werror=report,rerror=report",
                         "-device", "virtio-blk-pci,drive=d0")
            with LinuxVM(argv(extra=extra), VM_TIMEOUT) as vm:
                t = boot_to_prompt(vm, who)
                vm.run("head -c 4194304 /dev/urandom > /pattern")
                out = vm.run("dd if=/pattern of=/dev/vda bs=65536 oflag=direct 2>&1; echo dd=$?", timeout=120)
                m = re.search(r"(\d+)\+(\d+) records out", out)
                expect(m and "dd=0" not in out and re.search(r"I/O error|No space", out),
                       f"{who}: dd onto the full disk did not fail with an I/O error: {out!r}")
                blocks = int(m.group(1))
                expect(0 < blocks < 64, f"{who}: {blocks} blocks of 64 KiB written; the disk has room for ~30")
                log = vm.run("dmesg | grep -c 'I/O error.*vda' || true").strip()
                want = vm.run(f"head -c {blocks * 65536} /pattern | sha256sum | cut -d' ' -f1").strip()
                back = vm.run(f"dd if=/dev/vda bs=65536 count={blocks} iflag=direct 2>/dev/null | sha256sum "
                              "| cut -d' ' -f1").strip()
                expect(back == want, f"{who}: the {blocks} blocks written read back as {back}, wrote {want}")
                tend = end_with(vm, who, "poweroff")
            with open(disk, "rb") as f:
                got = hashlib.sha256(f.read(blocks * 65536)).hexdigest()
            expect(got == want, f"{who}: the image on the host holds {got} where the guest wrote {want}")
        finally:
            subprocess.run(["umount", mnt], capture_output=True, timeout=30)
            os.rmdir(mnt)
        return (f"{who}: prompt at {t:.1f}s, dd hit the full disk after {blocks} x 64 KiB ({log} kernel "
                f"I/O error lines), those read back and are in the image; poweroff -> status 0 at {tend:.1f}s")
    both(ctx, scenario, reference=False)


NET_BYTES = 64 << 20
GUEST_PORT = 5001


class Sink:
    """A host TCP server that takes NET_BYTES from one connection and
    hashes them."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.srv.settimeout(300)
        self.port = self.srv.getsockname()[1]
        self.digest, self.count, self.error = None, 0, None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            c, _ = self.srv.accept()
            c.settimeout(300)
            h = hashlib.sha256()
            while self.count < NET_BYTES:
                d = c.recv(1 << 20)
                if not d:
                    break
                h.update(d)
                self.count += len(d)
            self.digest = h.hexdigest()
            c.close()
        except OSError as e:
            self.error = e
        finally:
            self.srv.close()


def send_to(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=300) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)


@case("linux/network", qemu=True)
def t_network(ctx):
    """virtio-net through user networking: a DHCP lease (10.0.2.15), then
    64 MiB guest->host (to 10.0.2.2) and 64 MiB host->guest (a host
    forward), SHA-256 equal at both ends. The host end of guest->host
    listens on the host's loopback, which hvmm's guests reach only with
    host-loopback=on (QEMU's guests always do)."""
    # Behind the IOMMU a quarter: Linux maps, unmaps and invalidates per
    # packet buffer, each invalidation an exit, which the nested host makes
    # slow (64 MiB each way outlasted the runner's 300 s silence limit).
    nbytes = NET_BYTES >> 2 if IOMMU["on"] else NET_BYTES
    data = os.urandom(nbytes)
    want = hashlib.sha256(data).hexdigest()

    def scenario(who, argv):
        hport = free_port()
        if who == "hvmm":
            extra = ("--network", f"user,host-loopback=on,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}")
        else:
            extra = ("-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}",
                     "-device", "virtio-net-pci,netdev=n0")
        with LinuxVM(argv(extra=extra), vm_timeout()) as vm:
            t = boot_to_prompt(vm, who)
            lease = vm.run("udhcpc -i eth0 -n -q -t 10 2>&1 | grep lease; ip -4 addr show eth0", timeout=90)
            expect("10.0.2.15" in lease, f"{who}: no DHCP lease 10.0.2.15: {lease!r}")
            sink = Sink()
            vm.run(f"dd if=/dev/urandom of=/tmp/out bs=1M count={nbytes >> 20} 2>/dev/null")
            gsum = vm.run("sha256sum /tmp/out | cut -d' ' -f1").strip()
            vm.run(f"nc 10.0.2.2 {sink.port} < /tmp/out", timeout=vm_timeout())
            sink.t.join(60)
            # a sign of life for the runner's silence limit (300 s)
            print(f"      {who}: guest->host done at {vm.elapsed():.0f}s", flush=True)
            expect(sink.count == nbytes and sink.digest == gsum,
                   f"{who}: guest->host: host got {sink.count} bytes sha256 {sink.digest}, guest sent "
                   f"{nbytes} sha256 {gsum} ({sink.error})")
            vm.send(f"nc -l -p {GUEST_PORT} > /tmp/in; echo RECEIVED-$?\n")
            vm.expect(r"nc -l -p.*\n", 30)
            # The guest's listener is up once nc runs; connect until it answers.
            for _ in range(50):
                try:
                    send_to(hport, data)
                    break
                except OSError:
                    threading.Event().wait(0.2)
            vm.expect(r"RECEIVED-0", vm_timeout(), what=f"{who}: the end of the host->guest transfer")
            vm.expect(PROMPT, 30)
            hsum = vm.run("sha256sum /tmp/in | cut -d' ' -f1").strip()
            expect(hsum == want, f"{who}: host->guest: guest got sha256 {hsum}, host sent {want}")
            tend = end_with(vm, who, "poweroff")
        return f"{who}: prompt at {t:.1f}s, DHCP lease 10.0.2.15, {nbytes >> 20} MiB each way intact, poweroff at {tend:.1f}s"
    both(ctx, scenario, reference=False)


def quick_end(ctx, who, argv, halt, want, stop_msg=None):
    """Boot with hvmm.halt=HALT (the initramfs's /init powers off, restarts
    or panics at once) and wait for the VMM to end by itself. What /init
    printed last may not reach the console before the machine is gone, so
    the VMM's status (and hvmm's reason for stopping) is the evidence."""
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        st = vm.wait(BOOT)
        err = vm.tail()
        expect(st == want, f"{who}: hvmm.halt={halt} ended the VMM with status {st}, want {want}" + err)
        if stop_msg:
            expect(re.search(stop_msg, vm.err.decode(errors="replace")),
                   f"{who}: hvmm did not say why it stopped ({stop_msg!r})" + err)
        # hvmm writes out what the UART holds when it stops, so /init's
        # line proves the end came from /init and not from an earlier crash
        # (a panic restarts too); QEMU has lost that last line before.
        expect(who != "hvmm" or re.search(r"init: (powering off|restarting|crashing)", vm.buf),
               f"{who}: the VMM ended before /init asked it to" + err)
        return vm.elapsed()


@case("linux/power", qemu=True)
def t_power(ctx):
    """Each way a Linux guest ends the VM ends the VMM, with 1 and with N
    vCPUs. The shell cases cover power-off with 1 (serial), 4 (disk) vCPUs
    and restart with 2 (virtio console); here restart with 1, and a kernel
    panic with panic=-1 (which restarts) with 1 and 2: status 0 each time,
    and hvmm names the register (S5 in PM1a_CNT, the reset register 0xCF9)."""
    runs = [("reboot", 1, r"reset via port 0xcf9"), ("panic", 1, r"reset via port 0xcf9"),
            ("panic", 2, r"reset via port 0xcf9")]
    out = []
    for halt, cpus, msg in runs:
        t = quick_end(ctx, "hvmm", hvmm_argv(ctx, cpus=cpus, cmdline=f"{CMDLINE} hvmm.halt={halt}"),
                      halt, 0, msg)
        out.append(f"{halt}/{cpus}: {t:.0f}s")
    print("      hvmm: " + ", ".join(out))
    _, t = reference_retry(lambda: None, lambda _: quick_end(
        ctx, "QEMU", qemu_argv(ctx, cpus=2, cmdline=f"{CMDLINE} hvmm.halt=panic", machine=Q35), "panic", 0))
    print(f"      QEMU q35: panic/2: {t:.0f}s")


@case("linux/reset-paths")
def t_reset_paths(ctx):
    """Linux's other restart methods (reboot= on its command line) each end
    hvmm: the keyboard controller's reset pulse (k), the 0xCF9 register
    through the PCI path (pci), and a triple fault (t), which hvmm reports
    as a guest crash (status 8) as it does for any triple fault."""
    out = []
    for how, want, msg in (("k", 0, r"reset via i8042"), ("pci", 0, r"reset via port 0xcf9"),
                           ("t", 8, r"triple fault")):
        t = quick_end(ctx, "hvmm", hvmm_argv(ctx, cmdline=f"{CMDLINE} reboot={how} hvmm.halt=reboot"),
                      "reboot", want, msg)
        out.append(f"reboot={how}: status {want} at {t:.0f}s")
    print("      hvmm: " + ", ".join(out))


@case("linux/boot-formats")
def t_boot_formats(ctx):
    """The same kernel reaches the shell through every way hvmm loads it:
    the bzImage decompressed on the host (the default: linux/shell-serial),
    the vmlinux ELF through its PVH entry (auto-detected: most other cases),
    and here the bzImage through its own decompressor (--no-decompress) and
    the vmlinux ELF through the 64-bit boot protocol (--boot linux)."""
    img = images(ctx)
    out = []
    for name, kernel, extra in (("--no-decompress", img["vmlinuz"], ("--no-decompress",)),
                                ("vmlinux --boot linux", img["vmlinux"], ("--boot", "linux"))):
        with LinuxVM(hvmm_argv(ctx, kernel=kernel, extra=extra), VM_TIMEOUT) as vm:
            t = boot_to_prompt(vm, f"hvmm {name}")
            kver = vm.run("uname -r").strip()
            expect(kver.startswith("6.1."), f"hvmm {name}: uname -r printed {kver!r}")
            end_with(vm, f"hvmm {name}", "poweroff")
        out.append(f"{name}: prompt at {t:.1f}s")
    print("      hvmm: " + ", ".join(out))


def iommu_variant(name, fn):
    """linux/iommu/NAME: case linux/NAME again on hvmm with --device
    intel-iommu and intel_iommu=on, unchanged otherwise; the in-guest and
    the statistics checks above come on top."""
    def t(ctx):
        IOMMU["on"] = True
        try:
            fn(ctx)
        finally:
            IOMMU["on"] = False
    t.__doc__ = f"{fn.__doc__}\n\n    Behind the VT-d unit (intel_iommu=on): {iommu_variant.__doc__}"
    case(f"linux/iommu/{name}")(t)


# Every virtio device type: rng (shell-serial), console, blk, net.
for _name, _fn in (("shell-serial", t_shell_serial), ("shell-virtio-console", t_shell_hvc0),
                   ("disk-root", t_disk_root), ("network", t_network)):
    iommu_variant(_name, _fn)


EDU_BUF = 0x40000   # edu's buffer, in its own address space


@case("linux/iommu/dmar-fault-edu")
def t_dmar_fault_edu(ctx):
    """A DMA fault on purpose, behind the VT-d unit with intel_iommu=on:
    edu has no Linux driver, but Linux gives it a DMA domain whose IOVA
    space is empty. From user space (root) the test turns on its memory
    decoding and bus mastering (the config file in sysfs) and, through
    /dev/mem at its BAR, has it read 4 bytes from IOVA 0x1000. Linux must
    log the DMAR fault with edu's BDF, the address and reason 6 (read not
    allowed); hvmm stays up and counts it, and the guest goes on using its
    virtio disk (through the IOMMU) as before."""
    disk = os.path.join(ctx.tmp, "edu-disk.img")
    data = hashlib.sha256(b"hvmm dmar fault").digest() * (1 << 15)  # 1 MiB
    with open(disk, "wb") as f:
        f.write(data)
    want = hashlib.sha256(data).hexdigest()
    IOMMU["on"] = True
    try:
        argv = hvmm_argv(ctx, extra=("--device", "edu", "--disk", disk + ",ro"))
    finally:
        IOMMU["on"] = False
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        vm.expect(PROMPT, BOOT, what="the shell prompt")
        t = vm.elapsed()
        check_iommu_guest(vm, "hvmm")
        out = vm.run("for d in /sys/bus/pci/devices/*; do [ $(cat $d/device) = 0x11e8 ] && "
                     "echo edu ${d##*/} $(head -1 $d/resource); done; true")
        m = re.search(r"edu 0000:([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (0x[0-9a-f]+)", out)
        expect(m, f"no edu function in sysfs: {out!r}")
        bdf, bar = m.group(1), int(m.group(2), 16)
        # PCI_COMMAND (offset 4): memory space and bus master
        vm.run(f"printf '\\006' | dd of=/sys/bus/pci/devices/0000:{bdf}/config bs=1 seek=4 "
               "conv=notrunc 2>/dev/null")
        regs = [(0x80, 0x1000), (0x84, 0), (0x88, EDU_BUF), (0x8c, 0), (0x90, 4), (0x94, 0), (0x98, 1)]
        vm.run("; ".join(f"devmem {bar + off:#x} 32 {val:#x}" for off, val in regs))
        vm.run("sleep 1")
        log = vm.run("dmesg | grep -i -A1 'DMAR.*fault' | tail -6")
        expect(re.search(rf"\[{re.escape(bdf)}\].*fault addr (0x)?0*1000\b.*\n?.*reason 0x0?6", log,
                         re.I | re.S),
               f"Linux did not log a DMAR read fault of edu [{bdf}] at 0x1000:\n{log}")
        # the guest goes on, its virtio disk too
        got = vm.run("sha256sum /dev/vda | cut -d' ' -f1").strip()
        expect(got == want, f"after the fault /dev/vda reads sha256 {got}, want {want}")
        tend = end_with(vm, "hvmm", "poweroff")
    with open(IOMMU["stats"]) as f:
        st = json.load(f)
    expect(st["iommu"]["faults"] >= 1, f"hvmm counted no DMA fault: {st['iommu']}")
    expect(all(d["dma_faults"] == 0 and d["dma_translations"] > 0 for d in st["virtio"]),
           f"virtio devices: {st['virtio']}")
    fault = next((l for l in log.split("\n") if "fault addr" in l), log.strip())
    print(f"      hvmm: prompt at {t:.1f}s, edu {bdf} DMA from IOVA 0x1000 -> Linux: {fault.strip()[-120:]}; "
          f"hvmm counted {st['iommu']['faults']} fault(s), vda intact, poweroff at {tend:.1f}s")
