#!/usr/bin/env python3
"""virtio-blk DMA with and without the VT-d unit, in a Linux guest.

    bench/iommu_blk.py [--build DIR] [--json FILE]

For each block size (4 KiB and 128 KiB, O_DIRECT reads with dd of a 64 MiB
disk) one VM plain and one with --device intel-iommu and intel_iommu=on:
the guest's dd throughput, hvmm's virtio-blk request count (--stats) and,
behind the IOMMU, its IOVA translations, IOTLB hits and misses (walks) and
flushes per request (--stats-json). The counts include the boot's few
partition-table reads (tens of requests against thousands). Run it where
there is /dev/kvm, or in the nested host: scripts/kvm-host -- bench/iommu_blk.py
(numbers are only comparable within one run).
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from linuxvm import PROMPT, LinuxVM, images, random_disk  # noqa: E402

DISK_MB = 64
RUNS = (("4k", 4096, 8192), ("128k", 131072, 512))  # name, bs, count: 32 MiB and 64 MiB


def one(build, disk, iommu, bs, count):
    img = images(build, "vmlinuz", "boot.cpio")
    js = os.path.join(os.path.dirname(disk), "stats.json")
    argv = [os.path.join(build, "hvmm"), "run", "--timeout", "600", "--mem", "512M",
            "--kernel", img["vmlinuz"], "--initrd", img["boot.cpio"], "--disk", disk + ",ro",
            "--stats", "--stats-json", js,
            "--cmdline", "console=ttyS0 panic=-1 quiet" + (" intel_iommu=on" if iommu else "")]
    if iommu:
        argv += ["--device", "intel-iommu"]
    with LinuxVM(argv, 600) as vm:
        vm.expect(PROMPT, 180)
        out = vm.run(f"time dd if=/dev/vda of=/dev/null bs={bs} count={count} iflag=direct 2>&1", timeout=400)
        vm.send("poweroff\n")
        vm.wait(120)
        vm.err_thread.join(5)
    t = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)  # busybox's time; its dd prints no rate
    secs = int(t.group(1)) * 60 + float(t.group(2)) if t else None
    err = vm.err.decode(errors="replace")
    reqs = int(re.search(r"virtio-blk .*?; (\d+) requests", err).group(1))
    with open(js) as f:
        st = json.load(f)
    return {"rate": f"{bs * count / secs / (1 << 20):.1f} MiB/s" if secs else "?", "secs": secs,
            "requests": reqs, "iommu": st["iommu"],
            "blk_translations": next((d["dma_translations"] for d in st["virtio"] if d["name"] == "virtio-blk"), 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--json")
    a = ap.parse_args()
    _, disk = random_disk("hvmm-iommu-bench-", DISK_MB)
    res = {}
    print(f"{'run':<14} {'dd':>12} {'requests':>9} {'xlate/req':>10} {'hits':>9} {'misses':>8} "
          f"{'walks/req':>10} {'hit rate':>9} {'flushes':>8}")
    for name, bs, count in RUNS:
        for iommu in (False, True):
            r = one(a.build, disk, iommu, bs, count)
            key = f"{name}{'+iommu' if iommu else ''}"
            res[key] = r
            io = r["iommu"]
            if io:
                n = io["iotlb_hits"] + io["iotlb_misses"]
                print(f"{key:<14} {r['rate']:>12} {r['requests']:>9} {r['blk_translations'] / r['requests']:>10.2f} "
                      f"{io['iotlb_hits']:>9} {io['iotlb_misses']:>8} {io['iotlb_misses'] / r['requests']:>10.2f} "
                      f"{io['iotlb_hits'] / n:>9.1%} {io['iotlb_flushes']:>8}", flush=True)
            else:
                print(f"{key:<14} {r['rate']:>12} {r['requests']:>9}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    os.unlink(disk)


if __name__ == "__main__":
    main()
