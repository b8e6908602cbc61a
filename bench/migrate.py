#!/usr/bin/env python3
"""Live migration, hvmm against QEMU, with the same busy Linux guest.

    scripts/kvm-host -- python3 bench/migrate.py [--build DIR] [--hvmm BIN] [--machine microvm|q35]

The guest of tests' migrate/linux (Debian's kernel, 512 MiB, 2 vCPUs, a disk,
user networking; rewriting 64 MiB of RAM and reading and writing its disk)
is moved between two network namespaces joined by a veth pair, once by hvmm
(hvmm run --incoming, PUT /hvmm/migrate) and once by QEMU (-incoming, QMP
migrate, downtime-limit 300 ms as hvmm's default budget), each result
checked the same way. Prints total time, downtime, bytes sent and rounds
for both: QEMU's from query-migrate (total-time, downtime, ram transferred,
dirty-sync-count), hvmm's from the source's "migrated to" line. Needs root
(network namespaces): run it in the nested KVM host as above. One run each;
the guest's workload is not synchronised with the switch-over, so repeat
before quoting a difference.
"""
import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from harness import Ctx  # noqa: E402
from cases_linux_shell import MICROVM, Q35  # noqa: E402
from cases_migrate import HvmmSide, QemuSide, migrate_linux, summary  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--hvmm", default=None)
    ap.add_argument("--machine", choices=("microvm", "q35"), default="microvm")
    a = ap.parse_args()
    ctx = Ctx(a.hvmm or os.path.join(a.build, "hvmm"), a.build)
    try:
        for side in (HvmmSide(), QemuSide(MICROVM if a.machine == "microvm" else Q35)):
            try:
                r = migrate_linux(ctx, side)
                print(summary(side.name if side.name == "hvmm" else f"QEMU {a.machine}", r), flush=True)
            except Exception as e:  # a failed check or a timeout: the other VMM still runs
                print(f"{side.name}: FAILED: {str(e)[:1500]}", flush=True)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
