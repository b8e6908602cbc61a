"""--config-file: Firecracker's JSON description of a VM, booted by hvmm.

Tooling written for Firecracker describes a VM once (boot-source, drives,
machine-config, ...); hvmm takes the same file. The guest must then be the
machine the file describes, as Linux sees it.
"""
import json
import os
import subprocess

from harness import case, expect, nested_guest_args
from linuxvm import LinuxVM
from cases_linux_shell import BOOT, CMDLINE, VM_TIMEOUT, end_with, images
from linuxvm import PROMPT


@case("config/linux")
def t_config_linux(ctx):
    """A Firecracker-style description (2 vCPUs, 384 MiB, a root drive and a
    read-only data drive with a rate limiter, entropy): Linux sees 2 CPUs,
    384 MiB, vda writable and vdb read-only, root=/dev/vda rw on its command
    line, and a hardware RNG. A bad file: one line, status 2."""
    img = images(ctx)
    root, data = os.path.join(ctx.tmp, "root.img"), os.path.join(ctx.tmp, "data.img")
    for p, mib in ((root, 16), (data, 8)):
        with open(p, "wb") as f:
            f.truncate(mib << 20)
    desc = {
        "boot-source": {"kernel_image_path": img["vmlinux"], "initrd_path": img["boot.cpio"],
                        "boot_args": f"console=ttyS0 {CMDLINE}"},
        "drives": [
            {"drive_id": "data", "path_on_host": data, "is_root_device": False, "is_read_only": True,
             "rate_limiter": {"bandwidth": {"size": 8 << 20, "refill_time": 100}}},
            {"drive_id": "rootfs", "path_on_host": root, "is_root_device": True, "is_read_only": False},
        ],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 384, "smt": False, "track_dirty_pages": False},
        "entropy": {},
    }
    cfg = os.path.join(ctx.tmp, "vm.json")
    with open(cfg, "w") as f:
        json.dump(desc, f)
    argv = [ctx.hvmm_bin, "run", "--stats", "--timeout", str(VM_TIMEOUT), "--config-file", cfg, *nested_guest_args()]
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        vm.expect(PROMPT, BOOT, what="the shell prompt")
        cpus = vm.run("grep -c ^processor /proc/cpuinfo").strip()
        expect(cpus == "2", f"the guest sees {cpus} CPUs, the file says 2")
        kb = int(vm.run("sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo").strip())
        expect(300 << 10 < kb <= 384 << 10, f"MemTotal {kb} kB for mem_size_mib 384")
        cmd = vm.run("cat /proc/cmdline")
        expect("root=/dev/vda rw" in cmd, f"no root=/dev/vda rw on the command line: {cmd!r}")
        sizes = vm.run("cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vda/ro /sys/block/vdb/ro").split()
        expect(sizes == [str(16 << 11), str(8 << 11), "0", "1"],
               f"vda/vdb sizes and ro flags {sizes}: want the root drive (16 MiB, rw) first, data (8 MiB, ro)")
        n = vm.run("head -c 64 /dev/hwrng | wc -c").strip()
        expect(n == "64", f"/dev/hwrng gave {n!r} bytes")
        end_with(vm, "hvmm", "poweroff")
    bad = os.path.join(ctx.tmp, "bad.json")
    for text, want in (('{"machine-config": {"vcpu_count": 2}}', "missing field 'mem_size_mib'"),
                       ('{"vsock": {}}', "vsock is not supported"),
                       ('{"drives": [', "not valid JSON")):
        with open(bad, "w") as f:
            f.write(text)
        p = subprocess.run([ctx.hvmm_bin, "run", "--config-file", bad], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        lines = p.stderr.strip().splitlines()
        expect(p.returncode == 2 and len(lines) == 1 and want in lines[0] and "--config-file" in lines[0],
               f"{text}: status {p.returncode}, stderr {p.stderr!r}; want 2 and one line with {want!r}")


@case("api/preboot-linux")
def t_preboot_linux(ctx):
    """Firecracker's way: `hvmm run --api-sock PATH` alone serves the
    pre-boot API; the VM is described with PUT /machine-config,
    /boot-source, /drives/{id}, /entropy through curl and started with
    InstanceStart. A start the checks refuse (no kernel yet, a disk that does
    not exist) is a 400 naming why and can be retried; the same socket then
    serves the running VM; Linux sees the machine described. A pre-boot hvmm
    ends on SIGTERM (143) and removes its socket."""
    from cases_api import curl, wait_for
    img = images(ctx)
    disk = os.path.join(ctx.tmp, "pb.img")
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    sock = os.path.join(ctx.tmp, "pb.sock")
    argv = [ctx.hvmm_bin, "run", "--stats", "--timeout", str(VM_TIMEOUT), "--api-sock", sock, *nested_guest_args()]
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        wait_for(sock)
        st, body = curl(sock, "/")
        expect(st == 200 and json.loads(body)["state"] == "Not started", f"GET / before the start: {st} {body}")
        start = '{"action_type": "InstanceStart"}'
        st, body = curl(sock, "/actions", "PUT", start)
        expect(st == 400 and "boot-source" in body, f"a start without a kernel: {st} {body}")
        for path, obj in (("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}),
                          ("/boot-source", {"kernel_image_path": img["vmlinux"], "initrd_path": img["boot.cpio"],
                                            "boot_args": f"console=ttyS0 {CMDLINE}"}),
                          ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": disk + ".missing",
                                              "is_root_device": True, "is_read_only": False}),
                          ("/entropy", {}),
                          ("/metrics", {"metrics_path": os.path.join(ctx.tmp, "pb.metrics")})):
            st, body = curl(sock, path, "PUT", json.dumps(obj))
            expect(st == 204, f"PUT {path}: {st} {body}")
        st, body = curl(sock, "/drives/rootfs", "PUT", json.dumps({"drive_id": "other", "path_on_host": disk,
                                                                    "is_root_device": True}))
        expect(st == 400 and "drive_id" in body, f"a body naming another drive: {st} {body}")
        st, body = curl(sock, "/machine-config", "PATCH", '{"vcpu_count": 65}')
        expect(st == 400 and "vcpu_count" in body, f"PATCH with 65 vCPUs: {st} {body}")
        st, body = curl(sock, "/actions", "PUT", start)
        expect(st == 400 and "missing" in body, f"a start with a disk that does not exist: {st} {body}")
        st, body = curl(sock, "/drives/rootfs", "PUT", json.dumps({"path_on_host": disk, "is_root_device": True}))
        expect(st == 204, f"PUT /drives/rootfs again: {st} {body}")
        st, body = curl(sock, "/machine-config")
        expect(st == 200 and json.loads(body)["vcpu_count"] == 2, f"GET /machine-config before the start: {body}")
        st, body = curl(sock, "/actions", "PUT", start)
        expect(st == 204, f"InstanceStart: {st} {body}" + vm.tail())
        vm.expect(PROMPT, BOOT, what="the shell prompt")
        st, body = curl(sock, "/")
        expect(st == 200 and json.loads(body)["state"] == "Running", f"GET / once started: {st} {body}")
        st, body = curl(sock, "/actions", "PUT", '{"action_type": "FlushMetrics"}')
        with open(os.path.join(ctx.tmp, "pb.metrics")) as f:
            line = json.loads(f.readline())
        expect(st == 204 and line["reason"] == "flush" and len(line["hvmm"]["vcpus"]) == 2,
               f"FlushMetrics into the metrics_path given before the start: {st} {body} {line!r:.300}")
        st, body = curl(sock, "/boot-source", "PUT", '{"kernel_image_path": "x"}')
        expect(st == 400 and "already runs" in body, f"PUT /boot-source once running: {st} {body}")
        cpus = vm.run("grep -c ^processor /proc/cpuinfo").strip()
        size = vm.run("cat /sys/block/vda/size").strip()
        expect(cpus == "2" and size == str(16 << 11), f"the guest sees {cpus} CPUs and vda of {size} sectors")
        end_with(vm, "hvmm", "poweroff")
    expect(not os.path.exists(sock), "the socket file is left behind")
    p = subprocess.Popen([ctx.hvmm_bin, "run", "--api-sock", sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(sock)
        p.terminate()
        _, err = p.communicate(timeout=30)
        expect(p.returncode == 128 + 15 and not os.path.exists(sock),
               f"a pre-boot hvmm on SIGTERM: {p.returncode}, socket left: {os.path.exists(sock)}, {err!r}")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
