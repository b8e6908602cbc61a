#!/usr/bin/env python3
"""hvmm test runner: cmocka unit tests, then guest tests on hvmm and QEMU.

Prints one line per test and ends with `N passed, N failed, N skipped`.
Exit status 0 only when nothing failed.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import importlib  # noqa: E402

# Every tests/cases_*.py registers its cases on import (core first, then by name).
for _mod in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases_*.py")),
                   key=lambda p: (not p.endswith("cases_core.py"), p)):
    importlib.import_module(os.path.basename(_mod)[:-3])


def run_unit(build, counts, pattern):
    for exe in sorted(glob.glob(os.path.join(build, "tests", "unit", "test_*"))):
        if not os.access(exe, os.X_OK) or exe.endswith(".d"):
            continue
        name = os.path.basename(exe)
        if pattern and not re.search(pattern, name):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        try:
            p = subprocess.run([exe], capture_output=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            print(f"FAIL unit/{name}: timed out")
            counts["failed"] += 1
            continue
        out = p.stdout.decode(errors="replace")
        seen = 0
        for line in out.splitlines():
            m = re.match(r"(not ok|ok) \d+(?: -)? (?:# SKIP )?(\S+)(.*)", line)
            if not m:
                continue
            seen += 1
            if "# SKIP" in line:
                counts["skipped"] += 1
                print(f"SKIP unit/{name}/{m.group(2)}{m.group(3)}")
            elif m.group(1) == "ok":
                counts["passed"] += 1
                print(f"PASS unit/{name}/{m.group(2)}")
            else:
                counts["failed"] += 1
                print(f"FAIL unit/{name}/{m.group(2)}{m.group(3)}")
        if p.returncode != 0 and seen == 0 or (p.returncode != 0 and "not ok" not in out):
            counts["failed"] += 1
            err = p.stderr.decode(errors="replace")[-800:]
            print(f"FAIL unit/{name}: exit status {p.returncode}\n{out[-800:]}{err}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hvmm", default="build/hvmm")
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", dest="pattern", help="only tests whose name matches this regex")
    a = ap.parse_args()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    t0 = time.time()
    run_unit(a.build, counts, a.pattern)

    has_kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    has_qemu = shutil.which("qemu-system-x86_64") is not None
    if not has_kvm:
        print("!!! SKIPPING every guest test: /dev/kvm is missing or not accessible !!!")
    ctx = harness.Ctx(a.hvmm, a.build)
    try:
        for name, fn, need_kvm, need_qemu in harness.CASES:
            if a.pattern and not re.search(a.pattern, name):
                continue
            if need_kvm and not has_kvm:
                counts["skipped"] += 1
                print(f"SKIP {name}: no /dev/kvm")
                continue
            if need_qemu and not has_qemu:
                counts["skipped"] += 1
                print(f"SKIP {name}: qemu-system-x86_64 not installed")
                continue
            t = time.time()
            try:
                fn(ctx)
            except harness.Skip as e:
                counts["skipped"] += 1
                print(f"SKIP {name}: {e}")
                continue
            except AssertionError as e:
                counts["failed"] += 1
                print(f"FAIL {name}: {e}")
                continue
            counts["passed"] += 1
            print(f"PASS {name} ({time.time() - t:.2f}s)")
    finally:
        ctx.cleanup()
    print(f"# total time {time.time() - t0:.1f}s")
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
