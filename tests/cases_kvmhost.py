"""scripts/kvm-host, the nested KVM host, on its own: what a command sees
inside, and that every way it can end comes back as a status and one line.

These run on the outer machine (they start the launcher), with KVM or without.
Each boot costs ~7 s here; the cases that need no boot come first.
"""
import os
import shutil
import subprocess
import sys
import time

from harness import case, expect, Result

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "..", "scripts", "kvm-host")


def kvm_host(ctx, *args, timeout=300, env=None):
    """Runs the launcher (through this Python, whatever PATH says)."""
    argv = [sys.executable, LAUNCHER, *[str(a) for a in args]]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the launcher ends its QEMU (a session of its own,
        # which a SIGKILL to the launcher's group would leave running)
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the launcher's group, nothing else
        out, err = p.communicate()
        raise AssertionError(f"kvm-host did not finish within {timeout}s (killed pid {p.pid})")
    return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def one_line(r, text):
    lines = [l for l in r.err.splitlines() if l.startswith("kvm-host: ")]
    return any(text in l for l in lines)


@case("kvm-host/no-qemu", kvm=False)
def t_no_qemu(ctx):
    empty = os.path.join(ctx.tmp, "empty-path")
    os.makedirs(empty, exist_ok=True)
    r = kvm_host(ctx, "--", "true", env=dict(os.environ, PATH=empty))
    expect(r.status == 125 and one_line(r, "no qemu-system-x86_64"), "status 125, one line", r)


@case("kvm-host/kernel-fetch-fails", kvm=False)
def t_fetch_fails(ctx):
    # a PATH with a QEMU but no apt-get, and an empty cache
    bin_dir = os.path.join(ctx.tmp, "qemu-only")
    os.makedirs(bin_dir, exist_ok=True)
    os.symlink(shutil.which("qemu-system-x86_64"), os.path.join(bin_dir, "qemu-system-x86_64"))
    r = kvm_host(ctx, "--cache", os.path.join(ctx.tmp, "fresh-cache"), "--", "true",
                 env=dict(os.environ, PATH=bin_dir))
    expect(r.status == 125 and one_line(r, "kernel fetch failed"), "status 125, one line", r)


@case("kvm-host/usage-errors", kvm=False)
def t_usage(ctx):
    for args in (["--"], ["--mem", "12X", "true"], ["--timeout", "0", "true"], ["--share", "/nonexistent", "true"],
                 ["--passthrough", "e1000", "true"], ["--passthrough", "virtio-blk:/nonexistent.img", "true"]):
        r = kvm_host(ctx, *args)
        expect(r.status == 2 and "kvm-host: error:" in r.err, f"{args}: status 2 and a usage line", r)


@case("kvm-host/inside", kvm=False, qemu=True)
def t_inside(ctx):
    """One boot: /dev/kvm works, the caller's cwd and files, / read-only, the
    share and the scratch directories writable, loopback up; stdout and stderr
    apart; the command's status comes back."""
    script = ("set -e; test -c /dev/kvm; grep -qw svm /proc/cpuinfo; pwd; "
              "test -f tests/cases_kvmhost.py; "
              "if touch /usr/kvm-host-probe 2>/dev/null; then echo root-writable; fi; "
              "touch /tmp/x /var/tmp/x /run/x; "
              f"echo shared > {os.path.join(ctx.build, 'kvm-host-probe')}; "
              "ip -o link show lo | grep -q UP && echo lo-up; "
              "python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen()' && echo bind-ok; "
              "echo to-stderr >&2; echo \"env=$KVM_HOST_TEST_VAR\"; exit 3")
    probe = os.path.join(ctx.build, "kvm-host-probe")
    if os.path.exists(probe):
        os.unlink(probe)
    r = kvm_host(ctx, "--", "sh", "-c", script, env=dict(os.environ, KVM_HOST_TEST_VAR="passed-in"))
    expect(r.status == 3, "the command's exit status comes back", r)
    lines = r.out.splitlines()
    expect(lines[:1] == [os.getcwd()], "the caller's working directory", r)
    expect("root-writable" not in lines, "/ is read-only", r)
    expect("lo-up" in lines and "bind-ok" in lines, "loopback is up", r)
    expect("env=passed-in" in lines, "the caller's environment", r)
    expect("to-stderr" in r.err and "to-stderr" not in r.out, "stderr kept apart", r)
    with open(probe) as f:
        expect(f.read() == "shared\n", "what the command wrote in the share is on the host")
    os.unlink(probe)
    r = kvm_host(ctx, "--", "sh", "-c", "kill -KILL $$")
    expect(r.status == 128 + 9, "a command killed by a signal: 128+N", r)


@case("kvm-host/timeout", kvm=False, qemu=True)
def t_timeout(ctx):
    t0 = time.monotonic()
    r = kvm_host(ctx, "--timeout", "3", "--", "sleep", "600")
    expect(r.status == 124 and one_line(r, "timed out"), "status 124 and one line", r)
    expect(time.monotonic() - t0 < 60, f"ended soon after the timeout ({time.monotonic() - t0:.0f}s)", r)
    r = kvm_host(ctx, "--", "/nonexistent-command")
    expect(r.status == 127, "a missing command: 127", r)


@case("kvm-host/module-fails", kvm=False, qemu=True)
def t_module(ctx):
    # a cache whose kvm-amd.ko is cut short: the nested host must say which
    # module failed and stop, not run the command without KVM
    subprocess.run([sys.executable, LAUNCHER, "--", "true"], capture_output=True)  # the real cache
    real = os.path.join(os.environ.get("HVMM_KVM_HOST_CACHE") or os.path.join(HERE, "..", "build", "kvm-host"),
                        "kernel")
    cache = os.path.join(ctx.tmp, "broken-cache")
    shutil.copytree(real, os.path.join(cache, "kernel"))
    ko = os.path.join(cache, "kernel", "modules", "kvm-amd.ko")
    with open(ko, "r+b") as f:
        f.truncate(4096)
    r = kvm_host(ctx, "--cache", cache, "--", "true")
    expect(r.status == 125 and one_line(r, "module kvm-amd.ko did not load"), "status 125, names the module", r)


@case("kvm-host/no-svm", kvm=False, qemu=True)
def t_no_svm(ctx):
    r = kvm_host(ctx, "--cpu", "max,-svm", "--", "true")
    expect(r.status == 125 and one_line(r, "no SVM in the emulated CPU"), "status 125, one line", r)
