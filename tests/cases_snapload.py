"""Diff snapshots (snapshot_type "Diff", hvmm snapshot-merge) and PUT
/snapshot/load into an hvmm started without a VM, on the tiny counting
guests (tests/guests/count.S, pages.S): a restored copy must go on from the
source's count, nothing lost or repeated."""
import json
import os
import re
import shutil
import subprocess
import time

from harness import case, expect
from cases_api import ctl, curl, wait_for
from cases_snapshot import counts, in_sequence, start, stop, wait_counts

RAM = 128 << 20


def allocated(path):
    return os.stat(path).st_blocks * 512


def snap_stats(ctx, sock):
    """The last snapshot's time and RAM bytes, from GET /hvmm/stats."""
    rc, out, err = ctl(ctx, sock, "stats")
    expect(rc == 0, f"stats: {rc} {err!r}")
    s = json.loads(out)["snapshot"]
    return s["save_ns_last"] / 1e6, s["save_mem_bytes"]


def same_ram(a, b):
    """Whether two memory files hold the same RAM (their trailers differ)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for off in range(0, RAM, 1 << 20):
            if fa.read(1 << 20) != fb.read(1 << 20):
                return off
    return None


def ended(p):
    if p.poll() is None:
        p.kill()
        p.communicate()


def snapshot(ctx, sock, state, mem, kind="Full"):
    rc, _, err = ctl(ctx, sock, "snapshot", state, mem, kind)
    expect(rc == 0, f"{kind} snapshot {state}: {rc} {err!r}")
    return snap_stats(ctx, sock)


def merge(ctx, base, *diffs):
    return subprocess.run([ctx.hvmm_bin, "snapshot-merge", base, *diffs], capture_output=True, text=True,
                          timeout=60)


@case("snapshot/diff")
def t_snapshot_diff(ctx):
    """A guest that filled 32 MiB and then writes one page per count: a full
    snapshot, a few counts, a diff snapshot. The diff holds only the pages
    written since (its allocated size a small part of the full one's); a
    Diff without --track-dirty-pages, or before any full snapshot, is
    refused by name; the diff cannot be restored on its own; merged onto its
    base (hvmm snapshot-merge) it gives exactly the RAM a full snapshot
    taken at the same moment has, and a VM restored from it counts on. A
    diff of the restored VM (its first: every page written since the
    restore) merges onto that and restores too; a diff onto the wrong base
    is refused and leaves the base as it was."""
    g = ctx.guest("pages.elf")
    t = ctx.tmp
    sock = os.path.join(t, "d.sock")
    base_s, base_m = os.path.join(t, "base.snap"), os.path.join(t, "base.mem")
    d1_s, d1_m = os.path.join(t, "d1.snap"), os.path.join(t, "d1.mem")
    full_s, full_m = os.path.join(t, "full.snap"), os.path.join(t, "full.mem")
    src_out = os.path.join(t, "src.out")
    # without tracking: a Diff is refused, naming what it needs
    nosock = os.path.join(t, "n.sock")
    p = start(ctx, ["--api-sock", nosock, g], os.path.join(t, "n.out"))
    try:
        wait_for(nosock)
        ctl(ctx, nosock, "pause")
        rc, _, err = ctl(ctx, nosock, "snapshot", d1_s, d1_m, "Diff")
        expect(rc == 1 and "track_dirty_pages" in err and not os.path.exists(d1_m),
               f"a Diff without tracking: {rc} {err!r}")
        stop(p, "the untracked VM")
    finally:
        ended(p)
    p = start(ctx, ["--api-sock", sock, "--track-dirty-pages", g], src_out)
    try:
        wait_for(sock)
        wait_counts(src_out, 3)
        rc, _, err = ctl(ctx, sock, "pause")
        expect(rc == 0, f"pause: {rc} {err!r}")
        rc, _, err = ctl(ctx, sock, "snapshot", d1_s, d1_m, "Diff")
        expect(rc == 1 and "take a Full one first" in err, f"a Diff before any snapshot: {rc} {err!r}")
        t0 = time.time()
        full_ms, full_bytes = snapshot(ctx, sock, base_s, base_m)
        full_wall = time.time() - t0
        n0 = len(re.findall(r"count ", counts(src_out)))
        rc, _, err = ctl(ctx, sock, "resume")
        expect(rc == 0, f"resume: {rc} {err!r}")
        wait_counts(src_out, n0 + 5)
        ctl(ctx, sock, "pause")
        n1 = len(re.findall(r"count ", counts(src_out)))
        t0 = time.time()
        diff_ms, diff_bytes = snapshot(ctx, sock, d1_s, d1_m, "Diff")
        diff_wall = time.time() - t0
        snapshot(ctx, sock, full_s, full_m)  # the truth: the same moment, whole
        time.sleep(0.3)
        src = counts(src_out)
        stop(p, "the source")
    finally:
        ended(p)
    last = in_sequence(src, "the source")
    counted = n1 - n0
    expect(os.path.getsize(d1_m) == os.path.getsize(base_m) == RAM + 4096,
           f"sizes: diff {os.path.getsize(d1_m)}, base {os.path.getsize(base_m)}, want RAM + one page")
    # written since the base: a page per count, the counter's and line's, the stack's
    expect(counted <= diff_bytes // 4096 <= counted + 8,
           f"the diff holds {diff_bytes // 4096} pages for {counted} counts")
    expect(allocated(d1_m) <= diff_bytes + (64 << 10) and allocated(d1_m) * 50 < allocated(base_m),
           f"the diff takes {allocated(d1_m)} bytes on disk, the full one {allocated(base_m)}")
    # a diff is not RAM on its own
    q = subprocess.run([ctx.hvmm_bin, "run", "--timeout", "20", "--restore", d1_s + ",mem=" + d1_m],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    expect(q.returncode == 4 and "merge it onto its base first" in q.stderr and len(q.stderr.splitlines()) == 1,
           f"restoring a diff directly: {q.returncode} {q.stderr!r}")
    # onto the wrong base: refused, that base untouched
    before = open(full_m, "rb").read()
    q = merge(ctx, full_m, d1_m)
    expect(q.returncode == 4 and "is not a diff of" in q.stderr, f"merge onto another base: {q.returncode} "
           f"{q.stderr!r}")
    expect(open(full_m, "rb").read() == before, "a refused merge changed the base")
    merged = os.path.join(t, "merged.mem")
    shutil.copyfile(base_m, merged)
    t0 = time.time()
    q = merge(ctx, merged, d1_m)
    merge_wall = time.time() - t0
    expect(q.returncode == 0, f"snapshot-merge: {q.returncode} {q.stderr!r}")
    off = same_ram(merged, full_m)
    expect(off is None, f"base + diff differs from the full snapshot at {off or 0:#x}")
    # restored from the diff's state and the merged base, tracking on: counts on
    r_out, r_sock = os.path.join(t, "r.out"), os.path.join(t, "r.sock")
    d2_s, d2_m = os.path.join(t, "d2.snap"), os.path.join(t, "d2.mem")
    p = start(ctx, ["--api-sock", r_sock, "--track-dirty-pages", "--restore", d1_s + ",mem=" + merged], r_out)
    try:
        wait_counts(r_out, 3)
        ctl(ctx, r_sock, "pause")
        snapshot(ctx, r_sock, d2_s, d2_m, "Diff")  # the restored VM's first: since the restore
        stop(p, "the restored copy")
    finally:
        ended(p)
    restored = counts(r_out)
    n = in_sequence(src + restored, "restored from base + diff")
    expect(n > last, f"the restored copy did not count on ({last} -> {n})")
    q = merge(ctx, merged, d2_m)
    expect(q.returncode == 0, f"the second merge: {q.returncode} {q.stderr!r}")
    q = merge(ctx, merged, d1_m)
    expect(q.returncode == 4 and "is not a diff of" in q.stderr, f"d1 merged twice: {q.returncode} {q.stderr!r}")
    r2_out = os.path.join(t, "r2.out")
    p = start(ctx, ["--restore", d2_s + ",mem=" + merged], r2_out)
    try:
        wait_counts(r2_out, 3)
        stop(p, "the second restored copy")
    finally:
        ended(p)
    n2 = in_sequence(src + restored + counts(r2_out), "restored from base + diff + diff")
    expect(n2 > n, f"the second restored copy did not count on ({n} -> {n2})")
    print(f"      128 MiB guest with 32 MiB written: full snapshot {full_ms:.1f} ms ({full_bytes >> 20} MiB of RAM "
          f"data, {allocated(base_m) >> 10} KiB on disk, {full_wall * 1000:.0f} ms through the API), diff after "
          f"{counted} counts {diff_ms:.1f} ms ({diff_bytes // 4096} pages, {allocated(d1_m) >> 10} KiB on disk, "
          f"{diff_wall * 1000:.0f} ms through the API); merge {merge_wall * 1000:.0f} ms; counts "
          f"{last} -> {n} -> {n2}", flush=True)


def load(sock, state, mem, resume=False, track=False, legacy=False):
    body = {"snapshot_path": state, "resume_vm": resume, "track_dirty_pages": track}
    if legacy:
        body["mem_file_path"] = mem
    else:
        body["mem_backend"] = {"backend_type": "File", "backend_path": mem}
    return curl(sock, "/snapshot/load", "PUT", json.dumps(body))


def fault(st, body, want, what):
    msg = ""
    try:
        msg = json.loads(body)["fault_message"]
    except (ValueError, KeyError, TypeError):
        pass
    expect(st == 400 and want in msg and "\n" not in msg, f"{what}: {st} {body!r}, want 400 with {want!r}")


def preboot(ctx, sock, out):
    p = subprocess.Popen([ctx.hvmm_bin, "run", "--api-sock", sock, "--timeout", "120", "--stats"],
                         stdin=subprocess.DEVNULL, stdout=open(out, "wb"), stderr=subprocess.PIPE)
    wait_for(sock)
    return p


@case("snapshot/load")
def t_snapshot_load(ctx):
    """A counting guest with 2 vCPUs, 96 MiB, a read-only disk, virtio-rng and
    a PCI test device is snapshotted and ended. A new `hvmm run --api-sock`
    without an image loads it with PUT /snapshot/load (curl): the state file
    carries the VM's options, so nothing else is given. First the refusals,
    each a 400 with a one-line fault_message and the process still there: a
    missing file, a damaged state file, a memory file of another snapshot,
    a load after configuration. Then the load: paused (GET / says so, no
    count comes) until PATCH /vm Resumed, then it counts on from the
    source's count; a second load into it is refused. `hvmm ctl load ...
    resume` and `hvmm run --restore STATE` without options restore it too;
    an explicit option that differs is refused as before."""
    g = ctx.guest("count.elf")
    t = ctx.tmp
    disk = os.path.join(t, "ro.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    sock = os.path.join(t, "s.sock")
    state, mem = os.path.join(t, "vm.snap"), os.path.join(t, "vm.mem")
    other_s, other_m = os.path.join(t, "other.snap"), os.path.join(t, "other.mem")
    src_out = os.path.join(t, "src.out")
    opts = ["--mem", "96M", "--cpus", "2", "--disk", disk + ",ro,iops=1000", "--rng", "--device", "pci-testdev"]
    p = start(ctx, ["--api-sock", sock, *opts, g], src_out)
    try:
        wait_for(sock)
        wait_counts(src_out, 3)
        ctl(ctx, sock, "pause")
        snapshot(ctx, sock, state, mem)
        snapshot(ctx, sock, other_s, other_m)
        time.sleep(0.3)
        src = counts(src_out)
        stop(p, "the source")
    finally:
        ended(p)
    last = in_sequence(src, "the source")
    bad = os.path.join(t, "bad.snap")
    data = bytearray(open(state, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(bad, "wb").write(data)

    s2, out2 = os.path.join(t, "l.sock"), os.path.join(t, "l.out")
    p = preboot(ctx, s2, out2)
    try:
        st, body = curl(s2, "/")
        expect(st == 200 and json.loads(body)["state"] == "Not started", f"GET / before the load: {st} {body}")
        fault(*load(s2, os.path.join(t, "none.snap"), mem), "cannot read", "a missing state file")
        fault(*load(s2, state, os.path.join(t, "none.mem")), "cannot open the memory file", "a missing memory file")
        fault(*load(s2, bad, mem), "corrupt section", "a damaged state file")
        fault(*load(s2, g, mem), "is not an hvmm snapshot", "a kernel as the state file")
        fault(*load(s2, state, other_m, legacy=True), "belongs to another snapshot", "another snapshot's memory")
        st, body = curl(s2, "/snapshot/load", "PUT", '{"snapshot_path": "' + state + '"}')
        fault(st, body, "one of 'mem_backend' and 'mem_file_path'", "no memory file")
        expect(p.poll() is None, "hvmm ended after a refused load")
        # where the metrics go may be said first, as in Firecracker
        metrics = os.path.join(t, "metrics.json")
        st, body = curl(s2, "/metrics", "PUT", json.dumps({"metrics_path": metrics}))
        expect(st == 204, f"PUT /metrics before the load: {st} {body}")
        t0 = time.time()
        st, body = load(s2, state, mem)
        load_wall = time.time() - t0
        expect(st == 204, f"the load: {st} {body}")
        st, body = curl(s2, "/")
        expect(st == 200 and json.loads(body)["state"] == "Paused", f"GET / after the load: {st} {body}")
        time.sleep(0.5)
        expect(counts(out2) == "", f"a paused restored VM printed {counts(out2)[:80]!r}")
        fault(*load(s2, state, mem), "a snapshot is loaded into a new hvmm", "a second load")
        st, body = curl(s2, "/machine-config")
        mc = json.loads(body)
        expect(st == 200 and mc["vcpu_count"] == 2 and mc["mem_size_mib"] == 96,
               f"the loaded VM's machine-config: {st} {body}")
        st, body = curl(s2, "/vm", "PATCH", '{"state": "Resumed"}')
        expect(st == 204, f"PATCH /vm Resumed: {st} {body}")
        wait_counts(out2, 3)
        err = stop(p, "the loaded VM")
    finally:
        ended(p)
    n = in_sequence(src + counts(out2), "loaded through the API")
    lines = open(metrics).read().splitlines() if os.path.exists(metrics) else []
    expect(lines and json.loads(lines[-1]), f"the loaded VM wrote no metrics line to {metrics}")
    expect(n > last, f"the loaded VM did not count on ({last} -> {n})")
    m = re.search(r"restore: ([\d.]+) ms", err)
    expect(m, f"the loaded hvmm's --stats has no restore line: {err[-600:]}")

    # configured first, then a load: refused, as Firecracker refuses it
    s3 = os.path.join(t, "c.sock")
    p = preboot(ctx, s3, os.path.join(t, "c.out"))
    try:
        st, body = curl(s3, "/machine-config", "PUT", '{"vcpu_count": 1, "mem_size_mib": 64}')
        expect(st == 204, f"PUT /machine-config: {st} {body}")
        fault(*load(s3, state, mem), "has been configured", "a load after configuration")
        stop(p, "the configured hvmm")
    finally:
        ended(p)

    # hvmm ctl load, resumed at once, with tracking: then a Diff of it works
    s4, out4 = os.path.join(t, "k.sock"), os.path.join(t, "k.out")
    p = preboot(ctx, s4, out4)
    try:
        rc, _, err = ctl(ctx, s4, "load", state, mem, "resume", "track")
        expect(rc == 0, f"hvmm ctl load: {rc} {err!r}")
        wait_counts(out4, 3)
        ctl(ctx, s4, "pause")
        snapshot(ctx, s4, os.path.join(t, "k.snap"), os.path.join(t, "k.mem"), "Diff")
        stop(p, "the ctl-loaded VM")
    finally:
        ended(p)
    in_sequence(src + counts(out4), "loaded with hvmm ctl")

    # --restore STATE alone: the options come from the file
    out5 = os.path.join(t, "r.out")
    p = start(ctx, ["--restore", state], out5)
    try:
        wait_counts(out5, 3)
        stop(p, "restored without options")
    finally:
        ended(p)
    in_sequence(src + counts(out5), "restored without options")
    q = subprocess.run([ctx.hvmm_bin, "run", "--timeout", "20", "--mem", "64M", "--restore", state],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    expect(q.returncode == 2 and "the snapshot is of a VM with --mem 96M" in q.stderr,
           f"an explicit --mem that differs: {q.returncode} {q.stderr!r}")
    print(f"      loaded through the API in {load_wall * 1000:.0f} ms (restore step {float(m.group(1)):.1f} ms); "
          f"counts {last} -> {n}; {os.path.getsize(state)} bytes of state with the options", flush=True)


@case("snapshot/linux-diff")
def t_snapshot_linux_diff(ctx):
    """Debian's kernel with 2 vCPUs and a disk, --track-dirty-pages: a full
    snapshot at the prompt, then the guest reads 4 MiB from its disk into
    the page cache (virtio-blk's DMA into guest RAM, which KVM's log does
    not see: hvmm records it) and writes 4 MiB into a file in RAM; a diff
    snapshot. The diff is a small part of the full snapshot; merged onto
    it, the restored guest's shell answers and both files read back what
    they held (the data the disk wrote into RAM is in the diff)."""
    from linuxvm import PROMPT, LinuxVM
    from cases_linux_shell import VM_TIMEOUT, boot_to_prompt, end_with, hvmm_argv
    from cases_snapshot import sha
    t = ctx.tmp
    disk = os.path.join(t, "ld.img")
    with open(disk, "wb") as f:
        f.write(os.urandom(8 << 20))
    sock = os.path.join(t, "ld.sock")
    base_s, base_m = os.path.join(t, "lbase.snap"), os.path.join(t, "lbase.mem")
    d_s, d_m = os.path.join(t, "ldiff.snap"), os.path.join(t, "ldiff.mem")
    argv = hvmm_argv(ctx, cpus=2, extra=("--api-sock", sock, "--disk", disk + ",ro", "--track-dirty-pages"))
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        boot_to_prompt(vm, "source")
        vm.run("sync; echo 3 > /proc/sys/vm/drop_caches")
        ctl(ctx, sock, "pause")
        full_ms, full_bytes = snapshot(ctx, sock, base_s, base_m)
        ctl(ctx, sock, "resume")
        disk_sha = sha(vm, "dd if=/dev/vda bs=65536 count=64 2>/dev/null")  # into the page cache
        vm.run("dd if=/dev/urandom of=/tmp/ram bs=65536 count=64 2>/dev/null")
        ram_sha = sha(vm, "cat /tmp/ram")
        ctl(ctx, sock, "pause")
        diff_ms, diff_bytes = snapshot(ctx, sock, d_s, d_m, "Diff")
        vm.p.terminate()
        vm.wait(30)
    expect(diff_bytes < full_bytes // 4 and allocated(d_m) < allocated(base_m) // 4,
           f"the diff holds {diff_bytes} bytes ({allocated(d_m)} on disk), the full one {full_bytes} "
           f"({allocated(base_m)})")
    expect(diff_bytes >= 8 << 20, f"the diff holds {diff_bytes} bytes: less than the 8 MiB the guest wrote")
    t0 = time.time()
    q = merge(ctx, base_m, d_m)
    merge_ms = (time.time() - t0) * 1000
    expect(q.returncode == 0, f"snapshot-merge: {q.returncode} {q.stderr!r}")
    with LinuxVM([ctx.hvmm_bin, "run", "--stats", "--timeout", str(VM_TIMEOUT), "--restore",
                  d_s + ",mem=" + base_m], VM_TIMEOUT) as vm:
        vm.send("\n")
        vm.expect(PROMPT, 60, what="restored from base + diff: the shell prompt")
        expect(sha(vm, "cat /tmp/ram") == ram_sha, "restored: the file written before the diff changed")
        # from the page cache the diff brought back (the disk is the same either way:
        # the cache's pages must be the disk's, not the zeros of the base)
        expect(sha(vm, "dd if=/dev/vda bs=65536 count=64 2>/dev/null") == disk_sha,
               "restored: the disk's data read before the diff is not what the disk holds")
        end_with(vm, "restored", "poweroff")
    print(f"      Linux 2 vCPUs at its prompt: full snapshot {full_ms:.0f} ms, {full_bytes >> 20} MiB of RAM data "
          f"({allocated(base_m) >> 20} MiB on disk); after reading 4 MiB from its disk and writing a 4 MiB "
          f"file, diff {diff_ms:.0f} ms, {diff_bytes >> 20} MiB ({allocated(d_m) >> 20} MiB on disk); "
          f"merge {merge_ms:.0f} ms; restored from base + diff: shell, file and disk data intact", flush=True)
