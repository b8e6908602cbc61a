"""Runs inside the nested host of the vfio/virtio-blk-linux case (tests/
cases_vfio.py): boots Debian's kernel on hvmm with the passed-through
virtio-blk-pci and no disk of hvmm's own, and writes what the guest saw to
OUT/linux.json. Arguments: OUT BDF HVMM BUILD SHA256."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linuxvm import PROMPT, LinuxVM  # noqa: E402
from linuxvm import images  # noqa: E402

BOOT = 180
VM_TIMEOUT = 400


def main():
    out, bdf, hvmm, build, want = sys.argv[1:6]
    img = images(build, "vmlinux", "boot.cpio")
    stats = os.path.join(out, "linux-stats.json")
    argv = [hvmm, "run", "--timeout", str(VM_TIMEOUT), "--mem", "512M", "--kernel", img["vmlinux"],
            "--initrd", img["boot.cpio"], "--cmdline", "console=ttyS0 panic=-1 quiet pci=noearly",
            "--device", f"vfio,host={bdf}", "--stats-json", stats]
    res = {"argv": argv}
    try:
        with LinuxVM(argv, VM_TIMEOUT) as vm:
            vm.expect(PROMPT, BOOT, what="the shell prompt")
            res["prompt_s"] = vm.elapsed()
            res["lspci"] = vm.run("for d in /sys/bus/pci/devices/*; do echo ${d##*/} $(cat $d/vendor) "
                                  "$(cat $d/device) $(basename $(readlink $d/driver) 2>/dev/null); done")
            res["vda"] = vm.run("cat /sys/block/vda/size 2>&1; ls -l /sys/block/vda/device/driver 2>&1 | "
                                "sed 's/.*-> //'")
            res["sha256"] = vm.run("sha256sum /dev/vda | cut -d' ' -f1", timeout=120).strip()
            res["interrupts"] = vm.run("grep -i virtio /proc/interrupts")
            vm.send("poweroff\n")
            res["status"] = vm.wait(60)
            res["elapsed"] = vm.elapsed()
    except AssertionError as e:
        res["error"] = str(e)[-3000:]
    res["want"] = want
    try:
        with open(stats) as f:
            res["stats"] = json.load(f)
    except (OSError, ValueError):
        res["stats"] = None
    with open(os.path.join(out, "linux.json"), "w") as f:
        json.dump(res, f)
    m = re.search(r"^[0-9a-f]{64}$", res.get("sha256", ""), re.M)
    return 0 if m and m.group(0) == want else 1


if __name__ == "__main__":
    sys.exit(main())
