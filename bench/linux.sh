#!/usr/bin/env bash
# `make bench-linux`: Debian's kernel with its own drivers on hvmm, QEMU microvm and
# QEMU q35 in one interleaved run (bench/linux.py): start to /init, virtio-blk with
# fio, virtio-net with iperf3. Extra arguments go to bench/linux.py.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ -z "${HVMM_IN_KVM_HOST:-}" ]; then
	make -s BUILD="$BUILD" all
	scripts/linux-images "$BUILD"
fi
if [ "$(python3 scripts/kvm_mode.py)" = nested ]; then
	echo "bench-linux: no usable /dev/kvm here (or HVMM_KVM_HOST=nested): running in a nested KVM host (scripts/kvm-host)"
	# 5 boot rounds and 5 I/O rounds took 47 minutes here on a slow day:
	# BENCH_LINUX_TIMEOUT (seconds) for longer runs.
	exec scripts/kvm-host --mem 4G --timeout "${BENCH_LINUX_TIMEOUT:-7200}" -- "$0" "$@"
fi
exec python3 bench/linux.py --build "$BUILD" "$@"
