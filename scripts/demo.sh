#!/usr/bin/env bash
# make demo: boot a guest that prints on the serial console, then show hvmm's exit table;
# then the same guest driving a virtio disk from ring 3 (DMA, MSI-X through the
# interrupt remapping table, doorbells absorbed by ioeventfds).
set -u
B=${BUILD:-build}
img=$B/guest/hvmm-guest.elf
args=(--cmdline "test=hello")
if [ ! -f "$img" ]; then
	img=$B/tests/guests/multiboot_info.elf
	args=(--cmdline "hello from make demo")
fi
# Without a usable /dev/kvm the demo runs, whole, in the nested KVM host.
mode=$(python3 "$(dirname "$0")/kvm_mode.py") || exit 1
if [ "$mode" = nested ]; then
	echo "demo: no usable /dev/kvm here (or HVMM_KVM_HOST=nested): running in a nested KVM host"
	echo "demo: (scripts/kvm-host: QEMU TCG emulates AMD-V, Linux KVM runs inside it, hvmm on that; ~7 s to boot)"
	exec "$(dirname "$0")/kvm-host" --timeout 600 -- "$0" "$@"
fi
echo "\$ $B/hvmm run --stats --timeout 60 ${args[*]} $img"
"$B/hvmm" run --stats --timeout 60 "${args[@]}" "$img"
status=$?
echo "(hvmm exit status $status: the guest wrote 0 to isa-debug-exit, so (0<<1)|1 = 1 means success)"
[ $status -eq 1 ] || exit 1
[ "$img" = "$B/guest/hvmm-guest.elf" ] || exit 0
disk=$(mktemp /tmp/hvmm-demo-XXXXXX.img)
trap 'rm -f "$disk"' EXIT
truncate -s 64M "$disk"
echo
echo "\$ $B/hvmm run --stats --timeout 60 --mem 256M --disk $disk --cmdline \"test=virtio-blk mode=irq\" $img"
"$B/hvmm" run --stats --timeout 60 --mem 256M --disk "$disk" --cmdline "test=virtio-blk mode=irq" "$img" 2>&1 |
	grep -v -E '^ +(pio|mmio) +(in|out|read|write) '
status=${PIPESTATUS[0]}
echo "(status $status; the 'interrupt remapping table' lists the disk's MSI-X vectors posted through irqfd,"
echo " and the disk's doorbells (the virtio table's 'notifies') are not among the MMIO exits, which are all"
echo " the driver's set-up: KVM's ioeventfd took them)"
[ $status -eq 1 ]
