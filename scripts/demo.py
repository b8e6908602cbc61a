#!/usr/bin/env python3
"""make demo: Debian's stock kernel boots on hvmm to a shell, with its root
file system on a virtio disk, a virtio network card and virtio-rng; a few
commands are typed at the shell (as a person would, through a terminal);
the guest powers off, and hvmm prints its exit table.

    scripts/demo.py [BUILD_DIR]

Everything the guest prints is shown as it comes. Exit status 0 when the
session went as it should (the VM powered off by itself, status 0).
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import nested_guest_args  # noqa: E402
from linuxvm import PROMPT, LinuxVM  # noqa: E402

COMMANDS = [
    ("the kernel", "uname -a"),
    ("the CPUs it was given", "grep -c ^processor /proc/cpuinfo; grep -m1 'model name' /proc/cpuinfo"),
    ("the PCI devices hvmm emulates, and the Linux driver bound to each",
     "for d in /sys/bus/pci/devices/*; do echo \"${d##*/} $(cat $d/vendor):$(cat $d/device) "
     "$(basename $(readlink $d/driver) 2>/dev/null)\"; done"),
    ("the root file system is the virtio disk", "grep ' / ' /proc/mounts; df -h /"),
    ("a file written to it and flushed", "echo 'written in the guest' > /root/demo.txt && sync && cat /root/demo.txt"),
    ("a DHCP lease through user networking", "udhcpc -i eth0 -n -q -t 10 2>&1 | grep lease"),
    ("entropy from virtio-rng", "cat /sys/class/misc/hw_random/rng_current; head -c 16 /dev/hwrng | od -An -tx1"),
]


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    linux = os.path.join(build, "linux")
    tmp = tempfile.mkdtemp(prefix="hvmm-demo-")
    try:
        root = os.path.join(tmp, "root.ext4")
        shutil.copyfile(os.path.join(linux, "rootfs.ext4"), root)
        argv = [os.path.join(build, "hvmm"), "run", "--stats", "--timeout", "240", "--mem", "512M",
                "--cpus", "2", "--kernel", os.path.join(linux, "vmlinuz"),
                "--initrd", os.path.join(linux, "boot.cpio"),
                "--cmdline", "console=ttyS0 root=/dev/vda rw panic=-1 quiet",
                "--disk", root, "--network", "user", "--rng"]
        # the nested host's workarounds, as every Linux case gets them
        argv += nested_guest_args()
        print("$ " + " ".join(argv), flush=True)
        with LinuxVM(argv, 280, mirror=sys.stdout) as vm:
            vm.expect(PROMPT, 150, what="the shell prompt")
            print(f"\n\n[demo: a shell after {vm.elapsed():.1f} s; typing]", flush=True)
            for what, cmd in COMMANDS:
                print(f"\n[demo: {what}]", flush=True)
                vm.send(cmd + "\n")
                vm.expect(PROMPT, 120, what=f"the prompt after `{cmd}`")
            print("\n[demo: poweroff — the guest ends the VM itself (ACPI S5), and hvmm prints its exit table]",
                  flush=True)
            vm.send("poweroff\n")
            status = vm.wait(90)
            vm.err_thread.join(5)
            sys.stdout.write("\n" + vm.err.decode(errors="replace"))
        print(f"[demo: hvmm exited with status {status} after {vm.elapsed():.1f} s]")
        return 0 if status == 0 else 1
    except AssertionError as e:
        print(f"\ndemo: failed: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
