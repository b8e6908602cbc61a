"""hvmm-jailer: hvmm run as root starts it on a shared host — chrooted, as a
plain uid/gid without capabilities, in namespaces and a cgroup of its own.

Each case runs as root in the nested KVM host (where /sys/fs/cgroup is cgroup
v2) and checks what a host operator relies on, from both sides: the guest
boots and its disk works; the host sees hvmm with the given ids, no
capabilities, NoNewPrivs, other namespaces than its own, chrooted in the jail
and in the cgroup with the limits; a memory.max below what the guest uses
gets hvmm killed by the kernel (and nothing else); every bad input has its
own status.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

from harness import case, expect, nested_guest_args
from linuxvm import PROMPT, LinuxVM
from linuxvm import images as linux_images

UID = GID = 4242
CG = "/sys/fs/cgroup"
MEM_MAX = 256 << 20      # the cgroup's limit: less than the guest's 512M
VM_TIMEOUT = 300
EXIT_USAGE, EXIT_EXISTS, EXIT_SETUP = 12, 14, 16


def jailer(ctx):
    path = os.path.join(ctx.build, "hvmm-jailer")
    expect(os.path.exists(path), f"{path} was not built")
    return path


def jail_argv(ctx, jid, base, extra=(), hvmm=()):
    return ([jailer(ctx), "--id", jid, "--exec-file", ctx.hvmm_bin, "--uid", str(UID), "--gid", str(GID),
             "--chroot-base-dir", base] + list(extra) + ["--", "run"] + list(hvmm))


def run(argv, timeout=60, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_jailed(pid, jid, root):
    """What the host sees of the jailed hvmm (PID in the host's namespace)."""
    st = status_fields(pid)
    expect(st["Uid"].split() == [str(UID)] * 4, f"hvmm's Uid line is {st['Uid']!r}")
    expect(st["Gid"].split() == [str(GID)] * 4, f"hvmm's Gid line is {st['Gid']!r}")
    expect(st["Groups"].strip() == "", f"hvmm keeps supplementary groups {st['Groups']!r}")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        expect(int(st[cap], 16) == 0, f"hvmm's {cap} is {st[cap]}")
    expect(st["NoNewPrivs"] == "1", f"NoNewPrivs is {st['NoNewPrivs']}")
    expect(st["Seccomp"] == "2", f"hvmm's own seccomp filter is not on: Seccomp {st['Seccomp']}")
    expect(st["NSpid"].split() == [str(pid), "1"], f"hvmm is not PID 1 of a new PID namespace: NSpid {st['NSpid']}")
    for ns in ("mnt", "pid", "net", "ipc", "uts"):
        mine, its = os.readlink(f"/proc/self/ns/{ns}"), os.readlink(f"/proc/{pid}/ns/{ns}")
        expect(mine != its, f"hvmm shares the host's {ns} namespace ({its})")
    names = sorted(os.listdir(f"/proc/{pid}/root"))
    expect(names == ["dev", "disk0", "hvmm", "initrd", "kernel"],
           f"hvmm's / holds {names}, not the jail")
    expect(os.path.samefile(f"/proc/{pid}/root/hvmm", os.path.join(root, "hvmm")),
           "hvmm's /hvmm is not the jail's copy")
    with open(f"/proc/{pid}/cgroup") as f:
        cg = f.read().strip()
    expect(cg == f"0::/hvmm/{jid}", f"hvmm's cgroup is {cg!r}")
    d = f"{CG}/hvmm/{jid}"
    with open(f"{d}/memory.max") as f:
        expect(int(f.read()) == MEM_MAX, "memory.max is not the limit given")
    with open(f"{d}/pids.max") as f:
        expect(f.read().strip() == "64", "pids.max is not the limit given")
    with open(f"{d}/cpu.max") as f:
        expect(f.read().strip() == "200000 100000", "cpu.max is not the limit given")
    with open(f"{d}/cgroup.procs") as f:
        procs = f.read().split()
    expect(str(pid) in procs, f"hvmm ({pid}) is not in {d}: {procs}")
    return st


@case("jail/linux")
def t_jail_linux(ctx):
    """Debian's kernel boots to its shell in the jail with its root on a
    virtio-blk disk; the host sees hvmm as uid/gid 4242 without
    capabilities, with NoNewPrivs, as PID 1 of its own PID namespace, in
    other mount/net/IPC/UTS namespaces, with the jail as its root and in the
    cgroup with memory.max, pids.max and cpu.max as given. The guest writes
    and syncs a file; then it fills a tmpfs past memory.max: the kernel's
    OOM killer ends hvmm (status 137 from the jailer), counted in the
    group's memory.events, and the synced file is in the image."""
    img = linux_images(ctx.build, "vmlinuz", "boot.cpio", "rootfs.ext4")
    disk = os.path.join(ctx.tmp, "root.ext4")
    shutil.copyfile(img["rootfs.ext4"], disk)
    os.chown(disk, UID, GID)  # the jailed user must be able to write its disk
    base = os.path.join(ctx.tmp, "jails")
    jid = f"linux-{os.getpid()}"
    root = os.path.join(base, "hvmm", jid, "root")
    argv = jail_argv(ctx, jid, base,
                     ["--new-pid-ns", "--cgroup", f"memory.max={MEM_MAX}", "--cgroup", "pids.max=64",
                      "--cgroup", "cpu.max=200000 100000"],
                     # --seccomp on: the default, but not in the sanitizer build
                     ["--seccomp", "on", *nested_guest_args(), "--timeout", str(VM_TIMEOUT), "--mem", "512M",
                      "--kernel", img["vmlinuz"],
                      "--initrd", img["boot.cpio"], "--cmdline", "console=ttyS0 panic=-1 quiet root=/dev/vda rw",
                      "--disk", disk])
    with LinuxVM(argv, VM_TIMEOUT + 60) as vm:
        vm.expect(PROMPT, 180, what="the shell prompt in the jail")
        t_prompt = vm.elapsed()
        with open(os.path.join(base, "hvmm", jid, "hvmm.pid")) as f:
            pid = int(f.read())
        st = check_jailed(pid, jid, root)
        mnt = vm.run("grep ' / ' /proc/mounts")
        expect(mnt.startswith("/dev/vda / ext4 rw"), f"the guest's / is {mnt.strip()!r}")
        out = vm.run("dd if=/dev/urandom of=/root/jail-proof bs=1M count=4 2>/dev/null && sync && "
                     "echo 3 > /proc/sys/vm/drop_caches && sha256sum /root/jail-proof", timeout=180)
        m = re.search(r"\b([0-9a-f]{64})\b", out)
        expect(m, f"no checksum from the guest: {out!r}")
        # Past memory.max: guest RAM the guest touches is hvmm's memory.
        vm.send("mkdir -p /fill && mount -t tmpfs -o size=480M fill /fill && "
                "dd if=/dev/zero of=/fill/zero bs=1M count=460\n")
        status = vm.wait(240)
    expect(status == 128 + 9, f"the jailer returned {status}, want 137 (hvmm killed by SIGKILL)" + vm.tail())
    with open(f"{CG}/hvmm/{jid}/memory.events") as f:
        ev = dict(line.split() for line in f)
    expect(int(ev.get("oom_kill", 0)) >= 1, f"memory.events counts no OOM kill: {ev}")
    # The kill left the journal unreplayed: e2fsck replays it, as a mount would.
    fsck = subprocess.run(["e2fsck", "-fy", disk], capture_output=True, text=True, timeout=120)
    expect(fsck.returncode in (0, 1), f"e2fsck -fy status {fsck.returncode}: {fsck.stdout[-500:]}")
    p = subprocess.run(["debugfs", "-R", "cat /root/jail-proof", disk], capture_output=True, timeout=60)
    expect(hashlib.sha256(p.stdout).hexdigest() == m.group(1),
           f"the synced file in the image ({len(p.stdout)} bytes) differs from the guest's")
    os.rmdir(f"{CG}/hvmm/{jid}")  # empty now; the test made it through the jailer
    os.unlink(disk)
    return (f"prompt at {t_prompt:.1f}s in the jail (uid {st['Uid'].split()[0]}, CapEff {st['CapEff']}, "
            f"NSpid {st['NSpid']}); 4 MiB synced to the image; OOM-killed past memory.max {MEM_MAX >> 20}M "
            f"(oom_kill {ev['oom_kill']})")


@case("jail/bad-input")
def t_jail_bad_input(ctx):
    """Every bad input: one 'hvmm-jailer:' line and its status, before
    anything is made (12 usage, 14 an existing jail or cgroup, 16 not root);
    a failed cgroup write removes the group this run made and nothing else;
    --reuse runs again in an existing jail; an output file (--stats-json)
    lands at the caller's path, owned by the jail's user."""
    base = os.path.join(ctx.tmp, "jails")
    guest = ctx.guest("exitcode.elf")
    ok = ["--id", "x", "--exec-file", ctx.hvmm_bin, "--uid", "5", "--gid", "5", "--chroot-base-dir", base]
    bad = [
        ([], EXIT_USAGE, "--id is missing"),
        (["--id", "a/b"] + ok[2:] + ["--", "run", guest], EXIT_USAGE, "--id: 'a/b'"),
        (ok[:4] + ["--uid", "0", "--gid", "5", "--", "run", guest], EXIT_USAGE, "--uid: '0'"),
        (ok + ["run", guest], EXIT_USAGE, "after '--'"),
        (ok + ["--", "stop", guest], EXIT_USAGE, "start with 'run'"),
        (ok + ["--cgroup", "cgroup.procs=1", "--", "run", guest], EXIT_USAGE, "cgroup.procs is the jailer's"),
        (ok + ["--cgroup", "memory.max", "--", "run", guest], EXIT_USAGE, "not FILE=VALUE"),
        (ok + ["--parent-cgroup", "../x", "--", "run", guest], EXIT_USAGE, "--parent-cgroup"),
        (ok + ["--chroot-base-dir", "rel", "--", "run", guest], EXIT_USAGE, "not an absolute path"),
        (ok + ["--bogus", "--", "run", guest], EXIT_USAGE, "unknown option '--bogus'"),
        (["--id", "x", "--exec-file", "/nonexistent/hvmm"] + ok[4:] + ["--", "run", guest], EXIT_USAGE,
         "--exec-file /nonexistent/hvmm: No such file"),
        (ok + ["--", "run", "--disk", "/nonexistent.img", guest], EXIT_USAGE,
         "disk0 /nonexistent.img: No such file"),
        (ok + ["--", "run", "--kernel", guest, guest], EXIT_USAGE, "names its kernel twice"),
        (ok + ["--netns", "/nonexistent", "--", "run", guest], EXIT_USAGE, "--netns /nonexistent"),
    ]
    for args, want, text in bad:
        st, out, err = run([jailer(ctx)] + args)
        lines = err.strip().split("\n")
        expect(st == want and len(lines) == 1 and lines[0].startswith("hvmm-jailer: ") and text in err,
               f"{args}: status {st} (want {want}), stderr {err!r} (want one line with {text!r})")
        expect(not os.path.exists(os.path.join(base, "hvmm", "x")), f"{args}: a jail was made")
    st, _, err = run(jail_argv(ctx, "x", base, hvmm=[guest]), preexec_fn=lambda: os.setuid(UID))
    expect(st == EXIT_SETUP and "must be started as root" in err, f"not root: status {st}, {err!r}")

    # A cgroup file that does not exist: usage, and the new group is gone.
    jid = f"bad-{os.getpid()}"
    st, _, err = run(jail_argv(ctx, jid, base, ["--cgroup", "memory.maxx=1"], [guest]))
    expect(st == EXIT_USAGE and "memory.maxx: no such file" in err, f"memory.maxx: status {st}, {err!r}")
    expect(not os.path.exists(f"{CG}/hvmm/{jid}"), "the failed run left its cgroup behind")
    expect(os.path.isdir(f"{CG}/hvmm"), "the shared parent group was removed")

    # Run, refuse the same id, run again with --reuse; the JSON file is the caller's.
    jid = f"again-{os.getpid()}"
    js = os.path.join(ctx.tmp, "jail-stats.json")  # not the harness's stats.json: made here
    hv = ["--timeout", "30", "--stats-json", js, guest]
    st, out, err = run(jail_argv(ctx, jid, base, hvmm=hv), timeout=120)
    expect(st == (0x2a << 1) | 1, f"first jailed run: status {st}, {err!r}")
    expect(os.stat(js).st_uid == UID, "the stats file is not the jail user's")
    with open(js) as f:
        expect("userspace_exits" in json.load(f), "the stats file holds no exit table")
    st, _, err = run(jail_argv(ctx, jid, base, hvmm=hv))
    expect(st == EXIT_EXISTS and "exists already" in err, f"same id again: status {st}, {err!r}")
    st, _, err = run(jail_argv(ctx, jid, base, ["--reuse"], hv), timeout=120)
    expect(st == (0x2a << 1) | 1, f"--reuse: status {st}, {err!r}")
    # --network user: the slirp helper and its shared libraries are in the
    # jail, so it starts (else hvmm stops with status 6, "helper ... failed").
    st, _, err = run(jail_argv(ctx, f"net-{os.getpid()}", base, hvmm=["--timeout", "30", "--network", "user", guest]),
                     timeout=120)
    expect(st == (0x2a << 1) | 1, f"--network user in the jail: status {st}, {err!r}")
    # keep=: the helper's abstract rendezvous socket needs no file in the jail, and
    # (no snapshot taken) it ends with hvmm as always: the jail's cgroup empties.
    st, _, err = run(jail_argv(ctx, f"keep-{os.getpid()}", base,
                               hvmm=["--timeout", "30", "--network", "user,keep=5", guest]), timeout=120)
    expect(st == (0x2a << 1) | 1, f"--network user,keep=5 in the jail: status {st}, {err!r}")
    # An existing output file keeps its owner: root's 0644 is not the jail user's to write.
    theirs = os.path.join(ctx.tmp, "root-owned.json")
    with open(theirs, "w"):
        pass
    st, _, err = run(jail_argv(ctx, f"own-{os.getpid()}", base, hvmm=["--stats-json", theirs, guest]))
    expect(st == 2 and "Permission denied" in err and os.stat(theirs).st_uid == 0,
           f"a root-owned output file: status {st}, {err!r}")
    # hvmm's own errors come through with hvmm's status.
    st, _, err = run(jail_argv(ctx, f"mem-{os.getpid()}", base, hvmm=["--mem", "1T", guest]))
    expect(st == 2 and re.search(r"^hvmm: --mem", err, re.M), f"hvmm's usage error: status {st}, {err!r}")
    return (f"{len(bad) + 1} bad inputs, each one line and its status; --reuse, output file, "
            "--network user's helper, hvmm's own status")


@case("jail/daemonize")
def t_jail_daemonize(ctx):
    """--daemonize: the jailer returns 0 at once, hvmm (named in hvmm.pid)
    runs on in a session of its own with stdin, stdout and stderr on
    /dev/null, in the network namespace --netns names, and ends by itself
    (here at its --timeout, its stats file written)."""
    img = linux_images(ctx.build, "vmlinuz")
    base = os.path.join(ctx.tmp, "jails")
    jid = f"daemon-{os.getpid()}"
    js = os.path.join(ctx.tmp, "daemon.json")
    # A network namespace kept by a bind mount, as `ip netns add` keeps one.
    ns = os.path.join(ctx.tmp, "tenant-net")
    open(ns, "w").close()
    p = subprocess.run(["unshare", f"--net={ns}", "true"], capture_output=True, text=True, timeout=30)
    expect(p.returncode == 0, f"unshare --net={ns}: {p.stderr!r}")
    try:
        return daemon_run(ctx, img, base, jid, js, ns)
    finally:
        subprocess.run(["umount", ns], capture_output=True, timeout=30)


def daemon_run(ctx, img, base, jid, js, ns):
    t0 = time.time()
    st, out, err = run(jail_argv(ctx, jid, base, ["--daemonize", "--netns", ns],
                                 ["--timeout", "20", *nested_guest_args(), "--stats-json", js, "--kernel", img["vmlinuz"],
                                  "--cmdline", "console=ttyS0"]))
    t_ret = time.time() - t0
    expect(st == 0 and out == "" and err == "", f"--daemonize: status {st}, {out!r}, {err!r}")
    with open(os.path.join(base, "hvmm", jid, "hvmm.pid")) as f:
        pid = int(f.read())
    # The jailer returns as soon as it forked: the child enters the jail,
    # drops to the user and execs hvmm afterwards. Look once it is hvmm
    # (a loaded host showed the child still root a moment after the return).
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "hvmm":
                    break
        except OSError:
            break
        time.sleep(0.05)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    expect(int(fields[3]) == pid, f"hvmm ({pid}) is not its own session leader: session {fields[3]}")
    null = os.stat("/dev/null").st_rdev
    for fd in (0, 1, 2):
        expect(os.stat(f"/proc/{pid}/fd/{fd}").st_rdev == null, f"hvmm's fd {fd} is not /dev/null")
    expect(status_fields(pid)["Uid"].split()[0] == str(UID), "the daemon does not run as the jail's user")
    expect(os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(ns).st_ino,
           "hvmm is not in the network namespace --netns names")
    deadline = time.time() + 120
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.5)
    expect(not os.path.exists(f"/proc/{pid}"), "the daemonized hvmm did not end at its --timeout")
    with open(js) as f:
        expect("userspace_exits" in json.load(f), "the daemonized hvmm wrote no stats")
    return f"jailer returned 0 after {t_ret:.2f}s; hvmm {pid} ran detached in --netns and ended at its --timeout"
