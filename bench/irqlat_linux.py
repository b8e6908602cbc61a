#!/usr/bin/env python3
"""Device interrupts in a Linux guest under I/O load, by path and by the
target vCPU's state: the lecture's table with a real driver.

Debian's kernel on 2 vCPUs reads a virtio disk with O_DIRECT 4 KiB reads
(dd, one request in flight: each completion is one MSI-X interrupt the
reader waits for). Three loads:

  idle    dd alone: the vCPU the interrupt targets is mostly *halted*
  busy    a spinning process on each vCPU besides dd: the target *running*
  ready   busy with hvmm's --pcpus 1: the two vCPUs share one physical-CPU
          slot, so the target is often *ready* (the other has the slot)

and three paths: posted and remapped (--irqchip user, hvmm's APICs; hvmm
sends every MSI-X itself) and split (KVM's in-kernel LAPIC, the interrupt
an irqfd: no exit to hvmm at all). Per run: the guest's time per read (what
an application sees), exits to hvmm per read, and — on hvmm's own APICs —
the device interrupt latency hvmm measures for every interrupt, from its
raise to the vector handed to KVM for the guest's next entry, split by the
state the target was in at the raise (--stats-json's dev_latency).

Usage: make bench-irqlat-linux; where /dev/kvm is missing, in the nested
KVM host (one CPU: with two, this 2-vCPU guest with KVM's in-kernel LAPIC
never finished booting there, on QEMU+KVM as on hvmm — the emulated host's
doing):
  scripts/kvm-host --mem 4G --timeout 3600 -- python3 bench/irqlat_linux.py --build build
Numbers compare within one run only (the nested host is TCG). The latency
samples include the boot's few hundred interrupts beside the reads'.
"""
import argparse
import json
import os
import re
import socket
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from linuxvm import PROMPT, LinuxVM, images, random_disk  # noqa: E402

PATHS = {
    "posted": ["--irqchip", "user"],
    "remapped": ["--irqchip", "user", "--posted-interrupts", "off"],
    "split": [],
}
LOADS = ("idle", "busy", "ready")
STATES = ("running", "ready", "halted")
DISK_MB = 32


def api_exits(sock):
    """Exits to hvmm so far, all vCPUs (GET /hvmm/stats on the API socket)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(sock)
    s.sendall(b"GET /hvmm/stats HTTP/1.1\r\nHost: hvmm\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"GET /hvmm/stats: {len(data)} bytes: {data[:300]!r}")
    st = json.loads(body)
    return sum(st["exits_by_reason"].values())


def one(a, disk, path, load, tmp):
    img = images(a.build, "vmlinuz", "boot.cpio")
    js, sock = os.path.join(tmp, "stats.json"), os.path.join(tmp, "api.sock")
    extra = list(PATHS[path])
    if load == "ready":
        extra += ["--pcpus", "1"]
    argv = [os.path.join(a.build, "hvmm"), "run", "--timeout", "900", "--cpus", "2", "--mem", "256M",
            "--kernel", img["vmlinuz"], "--initrd", img["boot.cpio"], "--disk", disk + ",ro",
            "--stats-json", js, "--api-sock", sock, *extra, "--cmdline", "console=ttyS0 panic=-1 quiet"]
    count = a.reads
    with LinuxVM(argv, 900) as vm:
        vm.expect(PROMPT, 300)
        if load != "idle":
            vm.run("for c in 0 1; do taskset -c $c sh -c 'while :; do :; done' & done; sleep 1")
        # exits during the reads only: the API's counts before and after
        e0 = api_exits(sock)
        out = vm.run(f"time dd if=/dev/vda of=/dev/null bs=4096 count={count} iflag=direct 2>&1", timeout=800)
        e1 = api_exits(sock)
        vm.send("poweroff -f\n")
        vm.wait(120)
    t = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
    if not t:
        raise SystemExit(f"{path}/{load}: no time from dd: {out[-400:]!r}")
    secs = int(t.group(1)) * 60 + float(t.group(2))
    with open(js) as f:
        st = json.load(f)
    exits = e1 - e0
    lat = {}
    for v in st["vcpus"]:
        dl = (v.get("lapic") or {}).get("dev_latency")
        for s in STATES if dl else ():
            if dl[s]["n"]:
                lat.setdefault(s, []).append((dl[s]["n"], dl[s]["median_ns"]))
    return {"us_per_read": secs * 1e6 / count, "exits": exits, "lat": lat}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--reads", type=int, default=4096, help="4 KiB reads per run (default 4096)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    tmp, disk = random_disk("hvmm-irqlat-linux-", DISK_MB)
    res = {}
    for load in LOADS:
        for path in PATHS:
            if load == "ready" and path == "split":
                continue  # --pcpus needs hvmm's own APICs
            r = one(a, disk, path, load, tmp)
            res[f"{path}/{load}"] = r
            lat = ", ".join(f"{s} {sum(n for n, _ in v)}× median {statistics.median(m for _, m in v) / 1e3:.1f} us"
                            for s, v in r["lat"].items())
            print(f"{path:9} {load:6} {r['us_per_read']:9.1f} us/read  {r['exits'] / a.reads:6.2f} exits/read"
                  f"  {lat}", flush=True)
    print(f"\n{a.reads} O_DIRECT 4 KiB reads per run, Debian's kernel on 2 vCPUs; time per read as dd sees it; "
          "exits to hvmm per read (during the reads: the API's counts before and after)")
    print("| load | " + " | ".join(PATHS) + " |")
    print("|---|" + "---:|" * len(PATHS))
    for load in LOADS:
        cells = []
        for path in PATHS:
            r = res.get(f"{path}/{load}")
            cells.append(f"{r['us_per_read']:.0f} us, {r['exits'] / a.reads:.1f} exits" if r else "n/a")
        print(f"| {load} | " + " | ".join(cells) + " |")
    print("\ndevice interrupt latency measured by hvmm (raise → injection), median by the target's state at "
          "the raise (samples):")
    print("| path / load | " + " | ".join(STATES) + " |")
    print("|---|" + "---:|" * len(STATES))
    for key, r in res.items():
        if not r["lat"]:
            continue
        cells = []
        for s in STATES:
            v = r["lat"].get(s)
            cells.append(f"{statistics.median(m for _, m in v) / 1e3:.1f} us ({sum(n for n, _ in v)})" if v else "—")
        print(f"| {key} | " + " | ".join(cells) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
