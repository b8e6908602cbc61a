#!/usr/bin/env bash
# make demo: boot a guest that prints on the serial console, then show hvmm's exit table.
set -u
B=${BUILD:-build}
img=$B/guest/hvmm-guest.elf
args=(--cmdline "test=hello")
if [ ! -f "$img" ]; then
	img=$B/tests/guests/multiboot_info.elf
	args=(--cmdline "hello from make demo")
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "demo: /dev/kvm is missing or not accessible: hvmm needs KVM to run a guest" >&2
	exit 1
fi
echo "\$ $B/hvmm run --stats --timeout 60 ${args[*]} $img"
"$B/hvmm" run --stats --timeout 60 "${args[@]}" "$img"
status=$?
echo "(hvmm exit status $status: the guest wrote 0 to isa-debug-exit, so (0<<1)|1 = 1 means success)"
[ $status -eq 1 ]
