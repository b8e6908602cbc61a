#!/usr/bin/env bash
# `make bench`: hvmm against the raw-KVM lower bound and QEMU microvm, in one run,
# then the virtio device benchmarks against QEMU (bench/virtio.py).
# Builds what it needs (hvmm, the raw program, the timer, the bench guests), then
# bench/bench.py runs the interleaved rounds, prints the table and rewrites the
# results section of docs/benchmarks.md. Extra arguments go to bench.py
# (e.g. --no-doc, --rounds-start 10, --rounds-exit 3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" all guests bench-build
# Without a usable /dev/kvm the benchmarks run, whole, in the nested KVM host.
if [ "$(python3 scripts/kvm_mode.py)" = nested ]; then
	echo "bench: no usable /dev/kvm here (or HVMM_KVM_HOST=nested): running in a nested KVM host (scripts/kvm-host)"
	# The outer level of the nested stack is timed here, before nesting.
	python3 bench/bench.py --build "$BUILD" --level0-only
	exec scripts/kvm-host --timeout 3000 -- "$0" "$@"
fi
python3 bench/bench.py --build "$BUILD" "$@"
# virtio-blk / virtio-net against QEMU (also alone: make bench-virtio)
python3 bench/virtio.py --build "$BUILD" ${BENCH_VIRTIO_ARGS:-}
