"""A Debian guest that is a hypervisor: Linux on hvmm --nested loads its own
KVM (kvm_amd) and runs hvmm again, which runs hvmm's test kernel. On this
machine that is four levels: QEMU's TCG, the nested host's KVM, hvmm's Linux
with its KVM, and the test kernel under the inner hvmm."""
import os
import re
import shutil
import subprocess

from cases_linux_shell import VM_TIMEOUT, boot_to_prompt, end_with, hvmm_argv, images
from harness import case, expect
from linuxvm import LinuxVM


def kit_disk(ctx):
    """An ext4 image with what the guest needs to be a KVM host running
    hvmm: the kernel's KVM modules (scripts/linux-images' kvm-modules/, with
    their load order), hvmm itself (static) and its test kernel."""
    tree = os.path.join(ctx.tmp, "nested-kit")
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(os.path.join(ctx.build, "linux", "kvm-modules"), os.path.join(tree, "kvm"))
    shutil.copy(ctx.hvmm_bin, os.path.join(tree, "hvmm"))
    shutil.copy(os.path.join(ctx.build, "guest", "hvmm-guest.elf"), tree)
    disk = os.path.join(ctx.tmp, "nested-kit.ext4")
    if os.path.exists(disk):
        os.unlink(disk)
    p = subprocess.run(["mkfs.ext4", "-q", "-d", tree, disk, "64M"], capture_output=True, text=True, timeout=120)
    expect(p.returncode == 0, f"mkfs.ext4 -d (e2fsprogs): {p.stderr.strip()}")
    return disk


@case("linux/nested-hvmm")
def t_linux_nested_hvmm(ctx):
    """Linux with --nested sees SVM, loads kvm_amd (its /dev/kvm appears)
    and runs hvmm on it: the inner hvmm's test kernel passes test=exits,
    whose costs are printed beside the same run one level up. Without
    --nested, the same Linux has no SVM and kvm_amd refuses to load."""
    images(ctx)
    disk = kit_disk(ctx)
    with LinuxVM(hvmm_argv(ctx, extra=("--disk", disk + ",ro")), VM_TIMEOUT) as vm:
        boot_to_prompt(vm, "hvmm without --nested")
        out = vm.run("grep -c -w svm /proc/cpuinfo; mount -o ro /dev/vda /mnt && "
                     "for m in $(cat /mnt/kvm/order); do insmod /mnt/kvm/$m 2>/dev/null; done; "
                     "ls /dev/kvm 2>&1 | tail -1", timeout=120)
        expect(out.split("\n")[0].strip() == "0" and "No such file" in out,
               f"without --nested: no svm flag, no /dev/kvm: {out!r}")
        end_with(vm, "hvmm", "poweroff")
    argv = hvmm_argv(ctx, extra=("--nested", "--disk", disk + ",ro"))
    # room for the inner VM's RAM, and time for four levels
    argv[argv.index("--mem") + 1] = "1G"
    argv[argv.index("--timeout") + 1] = str(VM_TIMEOUT * 2)
    with LinuxVM(argv, VM_TIMEOUT * 2) as vm:
        t_prompt = boot_to_prompt(vm, "hvmm --nested")
        out = vm.run("grep -c -w svm /proc/cpuinfo; mount -o ro /dev/vda /mnt && "
                     "for m in $(cat /mnt/kvm/order); do insmod /mnt/kvm/$m 2>/dev/null; done; "
                     "ls /dev/kvm; lsmod | grep -o '^kvm_amd'", timeout=120)
        expect(out.split("\n")[0].strip() != "0" and "/dev/kvm" in out and "kvm_amd" in out,
               f"with --nested: the svm flag, kvm_amd loaded, /dev/kvm: {out!r}")
        t0 = vm.elapsed()
        # The inner hvmm: its serial port is the Linux guest's console. One
        # vCPU, 64 MiB; seccomp as always.
        # test=exits: the guest's own clock on each kind of exit, one
        # level further down than the same run on this hvmm (below)
        out = vm.run("/mnt/hvmm run --timeout 240 --mem 64M --cmdline test=exits "
                     "/mnt/hvmm-guest.elf; echo inner-status=$?", timeout=300).replace("\r", "")
        t_inner = vm.elapsed() - t0
        m = re.search(r"inner-status=(\d+)", out)
        expect(m and m.group(1) == "1" and re.search(r"^ok \d+ - ", out, re.M) and "not ok" not in out,
               f"the inner hvmm's test kernel passed test=exits (status 1): {out[-2000:]!r}")
        end_with(vm, "hvmm", "poweroff")
    here = ctx.hvmm("--cmdline", "test=exits", os.path.join(ctx.build, "guest", "hvmm-guest.elf"),
                    timeout=150, vm_timeout=120)
    expect(here.status == 1, "test=exits on this hvmm", here)
    inner, outer = costs(out), costs(here.out)
    expect(inner.get("cpuid") and outer.get("cpuid"), f"exit costs at both levels: {inner}, {outer}")
    print(f"      Linux on hvmm --nested: prompt at {t_prompt:.1f} s, kvm_amd loaded; the inner hvmm's "
          f"test=exits passed in {t_inner:.1f} s")
    for k in ("cpuid", "pio", "mmio", "hlt"):
        if k in inner and k in outer:
            print(f"      {k:5}: {outer[k]:>9,} ns in hvmm's guest, {inner[k]:>10,} ns one level further down "
                  f"({inner[k] / max(outer[k], 1):.1f}x)")


def costs(out):
    """{kind: ns} from test=exits' lines."""
    return {m[0]: int(m[1]) for m in re.findall(r"^# exitcost (\S+) cycles=\d+ ns=(\d+) ", out, re.M)}
