"""seccomp: every thread kind's filter traps a forbidden call with one line
naming the kind and the call, and ends hvmm with status 10; the slirp
helper's ends only the helper, and hvmm takes its network link down.

HVMM_SECCOMP_TEST=KIND makes the thread of that kind call personality(2)
right after it confined itself (src/sandbox.c): no list allows it. The rest
of the suite is the other half of the proof: it runs with the filters on,
hvmm's default.
"""
import os
import subprocess

from harness import case, expect

KINDS = ("main", "vcpu", "evloop", "serial", "api")


def _hvmm(ctx, args, test_kind=None, timeout=30, probe_open=None):
    env = dict(os.environ)
    env.pop("HVMM_SECCOMP_TEST", None)
    env.pop("HVMM_SANDBOX_PROBE_OPEN", None)
    if test_kind:
        env["HVMM_SECCOMP_TEST"] = test_kind
    if probe_open:
        env["HVMM_SANDBOX_PROBE_OPEN"] = probe_open
    if "--seccomp" in args and args[args.index("--seccomp") + 1] == "on":
        # The sanitizer build confined on purpose: its leak check at exit needs
        # calls the main thread's list forbids (prctl, clone, ptrace), so it is
        # left out of these runs (docs/security.md).
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    p = subprocess.run([ctx.hvmm_bin, "run"] + [str(a) for a in args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def _on_args(ctx):
    """No option where the filters are on by default (the normal build); the
    sanitizer build defaults to off (README), so it is asked for there."""
    out = subprocess.run([ctx.hvmm_bin, "--help"], capture_output=True, text=True, timeout=10).stdout
    line = [ln for ln in out.splitlines() if "--seccomp" in ln][0]
    return [] if "(default on)" in line else ["--seccomp", "on"]


@case("seccomp/each-thread-kind")
def t_each_kind(ctx):
    spin = ctx.guest("spin.elf")
    on = _on_args(ctx)
    for kind in KINDS:
        api = ["--api-sock", os.path.join(ctx.tmp, f"seccomp-{kind}.sock")] if kind == "api" else []
        st, _, err = _hvmm(ctx, on + api + ["--timeout", "10", spin], kind)
        want = f"hvmm: seccomp: the {kind} thread made a forbidden system call: personality (nr 135"
        lines = err.splitlines()
        expect(st == 10, f"{kind}: status {st}, want 10; stderr {err!r}")
        expect(len(lines) == 1 and lines[0].startswith(want) and lines[0].endswith("; stopping"),
               f"{kind}: stderr {err!r}, want one line '{want}...'")
    # The same call with the filters off goes through: the VM runs to its timeout.
    for kind in KINDS:
        api = ["--api-sock", os.path.join(ctx.tmp, f"seccomp-off-{kind}.sock")] if kind == "api" else []
        st, _, err = _hvmm(ctx, ["--seccomp", "off", "--timeout", "1"] + api + [spin], kind)
        expect(st == 124 and "seccomp" not in err, f"--seccomp off, {kind}: status {st}, stderr {err!r}")


@case("seccomp/net-helper")
def t_net_helper(ctx):
    spin = ctx.guest("spin.elf")
    st, _, err = _hvmm(ctx, _on_args(ctx) + ["--network", "user", "--timeout", "3", spin], "net-helper")
    want = ("hvmm-net-slirp: seccomp: the net-helper thread made a forbidden system call: "
            "personality (nr 135")
    expect(want in err, f"the helper's line missing: {err!r}")
    expect("virtio-net: back end slirp helper" in err and "link down" in err,
           f"hvmm must report its back end gone: {err!r}")
    # only the helper died: the VM ran on to its --timeout
    expect(st == 124, f"status {st}, want 124 (the VM goes on without its network); {err!r}")


@case("seccomp/net-helper-files")
def t_net_helper_files(ctx):
    """Beyond its seccomp list the helper keeps no file system but the
    resolver's configuration (Landlock), and drops root: as root its
    read-only openat could read any file. The suite runs as root in the
    nested KVM host, which is the case that matters."""
    spin = ctx.guest("spin.elf")
    root = os.geteuid() == 0
    uid = 65534 if root else os.getuid()
    for path, want in (("/etc/passwd", "Permission denied"), ("/etc/resolv.conf", "ok"),
                       (ctx.hvmm_bin, "Permission denied")):
        st, _, err = _hvmm(ctx, _on_args(ctx) + ["--network", "user", "--timeout", "2", spin],
                           probe_open=path)
        line = f"hvmm-net-slirp: probe: landlock on, uid {uid}: open {path}: {want}"
        expect(line in err.splitlines(), f"want {line!r} in stderr: {err!r}")
        expect(st == 124 and "link down" not in err, f"the network stays up: status {st}; {err!r}")
    # Confinement off (debugging): the helper keeps its files and its uid.
    st, _, err = _hvmm(ctx, ["--seccomp", "off", "--network", "user", "--timeout", "2", spin],
                       probe_open="/etc/passwd")
    expect("probe" not in err, f"--seccomp off: the helper confines nothing: {err!r}")


@case("seccomp/usage", kvm=False)
def t_usage(ctx):
    p = subprocess.run([ctx.hvmm_bin, "run", "--seccomp", "maybe", "x"], capture_output=True, text=True,
                       timeout=10)
    expect(p.returncode == 2 and p.stderr == "hvmm: --seccomp: 'maybe' is not on or off (see hvmm --help)\n",
           f"status {p.returncode} stderr {p.stderr!r}")
    out = subprocess.run([ctx.hvmm_bin, "--help"], capture_output=True, text=True, timeout=10).stdout
    expect("--seccomp on|off" in out and "10 a forbidden" in out, "--help documents --seccomp and status 10")
