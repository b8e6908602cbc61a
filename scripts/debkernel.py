"""Debian's stock kernel package, shared by scripts/kvm-host (the nested KVM
host's kernel) and scripts/linux-images (the guest kernel and its root file
system): find the newest linux-image-6.1.0-*-amd64, and the closure of the
modules a boot needs."""
import os
import re
import shutil
import subprocess


class Failure(Exception):
    """A failure of the script itself: one line, which the caller prints."""


def run_quiet(argv, what, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if p.returncode != 0:
        tail = p.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise Failure(f"{what} failed: {tail[0]}")
    return p.stdout.decode(errors="replace")


def newest_kernel_package():
    def search():
        out = subprocess.run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"],
                             capture_output=True, text=True).stdout
        names = [l.split()[0] for l in out.splitlines() if l.strip()]
        return sorted(names, key=lambda n: int(n.split("-")[3]))[-1:] or [None]
    if not shutil.which("apt-get"):
        raise Failure("kernel fetch failed: no apt-get on this machine (Debian's linux-image package is needed)")
    pkg = search()[0]
    if pkg is None:
        run_quiet(["apt-get", "update", "-qq"], "kernel fetch: apt-get update")
        pkg = search()[0]
    if pkg is None:
        raise Failure("kernel fetch failed: no linux-image-6.1.0-*-amd64 package in the apt lists")
    return pkg


def module_closure(tree, wanted):
    """Paths of the modules named in wanted and their dependencies (each .ko's
    depends=), dependencies first."""
    by_name = {}
    for root, _, files in os.walk(tree):
        for f in files:
            if f.endswith(".ko"):
                by_name[f[:-3].replace("-", "_")] = os.path.join(root, f)
    order, seen = [], set()

    def visit(name):
        key = name.replace("-", "_")
        if key in seen:
            return
        seen.add(key)
        if key not in by_name:
            raise Failure(f"kernel package has no module {name}")
        with open(by_name[key], "rb") as f:
            m = re.search(rb"\0depends=([^\0]*)\0", b"\0" + f.read())
        for dep in filter(None, (m.group(1).decode() if m else "").split(",")):
            visit(dep)
        order.append(by_name[key])
    for w in wanted:
        visit(w)
    return order


def download_kernel(pkg, tmp):
    """apt-get download pkg into the empty directory tmp and unpack it there:
    (the .deb's file name, the unpacked tree, the path of its vmlinuz)."""
    os.chmod(tmp, 0o777)  # apt's _apt user downloads into it
    run_quiet(["apt-get", "download", "-q", pkg], f"kernel fetch: apt-get download {pkg}", cwd=tmp)
    debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    if not debs:
        raise Failure(f"kernel fetch failed: apt-get download {pkg} left no .deb")
    x = os.path.join(tmp, "x")
    run_quiet(["dpkg-deb", "-x", os.path.join(tmp, debs[0]), x], "kernel fetch: dpkg-deb -x")
    kernels = [f for f in os.listdir(os.path.join(x, "boot")) if f.startswith("vmlinuz-")]
    if not kernels:
        raise Failure(f"kernel fetch failed: no /boot/vmlinuz-* in {debs[0]}")
    return debs[0], x, os.path.join(x, "boot", kernels[0])
