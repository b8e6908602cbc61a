#!/usr/bin/env bash
# make demo: Debian's stock kernel on hvmm, to a shell with a virtio disk,
# network and entropy; a few commands typed at it; power-off; the exit table
# (scripts/demo.py). The guest images come from Debian's packages
# (scripts/linux-images, cached in build/linux).
set -u
B=${BUILD:-build}
here=$(dirname "$0")
if [ -z "${HVMM_IN_KVM_HOST:-}" ]; then
	"$here/linux-images" "$B" || exit 1
fi
# Without a usable /dev/kvm the demo runs, whole, in the nested KVM host.
mode=$(python3 "$here/kvm_mode.py") || exit 1
if [ "$mode" = nested ]; then
	echo "demo: no usable hardware-virtualized /dev/kvm here (or HVMM_KVM_HOST=nested): running in a nested KVM host"
	echo "demo: (scripts/kvm-host: QEMU TCG emulates AMD-V, Linux KVM runs inside it, hvmm on that; ~7 s to boot)"
	exec "$here/kvm-host" --timeout 600 -- "$0" "$@"
fi
exec python3 "$here/demo.py" "$B"
