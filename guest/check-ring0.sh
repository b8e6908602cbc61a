#!/bin/sh
# check-ring0.sh ELF: fails if the kernel's ring-0 code (.text) contains an
# instruction that this host's KVM cannot run in emulated ring 0: SSE/AVX/x87,
# cmpxchg16b, xsave/xrstor, int3 or vmcall (int3 is for ring 3 only, .utext).
set -eu
elf=$1
bad=$(objdump -d --no-show-raw-insn -j .text "$elf" | awk -F'\t' 'NF >= 2 { print $1 "\t" $2 }' |
	grep -iE '	(f[a-z0-9]+|fx(save|rstor)[a-z0-9]*|xsave[a-z0-9]*|xrstor[a-z0-9]*|cmpxchg16b|vmcall|int3|v[a-z0-9]+|(mov|p)[a-z0-9]*(dq|aps|apd|ups|upd|ss|sd)|p(xor|add|sub|and|or|cmp|shuf|unpck)[a-z0-9]*)( |$)|%[xyz]mm|%st' || true)
if [ -n "$bad" ]; then
	echo "check-ring0: $elf: instructions ring 0 cannot run on this host:" >&2
	echo "$bad" >&2
	exit 1
fi
