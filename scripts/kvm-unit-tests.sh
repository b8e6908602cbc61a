#!/usr/bin/env bash
# Build kvm-unit-tests (the upstream KVM conformance suite) for hvmm's tests.
#
#   scripts/kvm-unit-tests.sh [--out DIR] [SOURCE]
#
# SOURCE is a kvm-unit-tests tarball (*.tar.gz) or source directory; without
# it, $KVM_UNIT_TESTS; without that, the first kvm-unit-tests-*.tar.gz found in
# the directory that holds this checkout or in a directory one level below
# that one (where CI machines, which reach only Debian's packages, keep it).
# Nothing of kvm-unit-tests is ever committed: it is GPL, and upstream.
#
# The build goes to DIR (default: build/kvm-unit-tests in this checkout) and is
# cached: a stamp records which source (tarball checksum, or the source tree's
# file list with sizes and times) it was built from; an unchanged source is not
# rebuilt. DIR/../kvm-unit-tests.status says what the last call found, for the
# test cases (tests/cases_kut.py), which run where this script cannot build.
#
# Exit status: 0 built or up to date; 1 the build failed; 2 usage error;
# 3 no source: one line on stderr saying where it looked.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
out="$top/build/kvm-unit-tests"
src=""
while [ $# -gt 0 ]; do
	case "$1" in
	--out) [ $# -ge 2 ] || { echo "kvm-unit-tests.sh: --out needs a directory" >&2; exit 2; }
		out=$2; shift 2 ;;
	-h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "kvm-unit-tests.sh: unknown option $1" >&2; exit 2 ;;
	*) [ -z "$src" ] || { echo "kvm-unit-tests.sh: one SOURCE only" >&2; exit 2; }
		src=$1; shift ;;
	esac
done
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
status="$out.status"

[ -n "$src" ] || src=${KVM_UNIT_TESTS:-}
if [ -z "$src" ]; then
	parent=$(dirname "$top")
	# The newest name sorts last (the commit is in the name, not a version:
	# any one will do, and the choice is printed).
	src=$(ls -d "$parent"/kvm-unit-tests-*.tar.gz "$parent"/*/kvm-unit-tests-*.tar.gz 2>/dev/null | tail -n 1 || true)
	if [ -z "$src" ]; then
		msg="kvm-unit-tests: no source: give a tarball or directory (argument or KVM_UNIT_TESTS=), or put kvm-unit-tests-*.tar.gz in $parent or a directory below it"
		echo "nosource $msg" >"$status"
		echo "$msg" >&2
		exit 3
	fi
fi
if [ ! -e "$src" ]; then
	msg="kvm-unit-tests: no source: $src does not exist"
	echo "nosource $msg" >"$status"
	echo "$msg" >&2
	exit 3
fi
src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")

# What the build is made from: an unchanged identity means nothing to do.
if [ -d "$src" ]; then
	ident="dir $src $(cd "$src" && find . -path ./.git -prune -o -type f \
		\( -name '*.[chS]' -o -name '*.cfg' -o -name '*.lds' -o -name 'Makefile*' -o -name configure -o -name '*.bash' \) \
		-printf '%P %s %T@\n' | sort | sha256sum | cut -d' ' -f1)"
else
	ident="tar $(sha256sum "$src" | cut -d' ' -f1)"
fi
stamp="$out/.hvmm-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$ident" ] && [ -f "$out/x86/unittests.cfg" ]; then
	echo "ok up to date: $src" >"$status"
	exit 0
fi

echo "kvm-unit-tests: building from $src into $out" >&2
rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
if [ -d "$src" ]; then
	cp -a "$src"/. "$out.tmp"/
	rm -rf "$out.tmp/.git"
else
	tar -xzf "$src" -C "$out.tmp"
	# a tarball holds one top directory (kvm-unit-tests/ or kvm-unit-tests-HASH/)
	inner=$(find "$out.tmp" -mindepth 1 -maxdepth 1)
	if [ "$(echo "$inner" | wc -l)" = 1 ] && [ -d "$inner" ] && [ ! -f "$out.tmp/configure" ]; then
		mv "$inner" "$out.tmp.x" && rmdir "$out.tmp" && mv "$out.tmp.x" "$out.tmp"
	fi
fi
if [ ! -x "$out.tmp/configure" ] || [ ! -f "$out.tmp/x86/unittests.cfg" ]; then
	echo "fail $src is not a kvm-unit-tests source (no configure or x86/unittests.cfg)" >"$status"
	echo "kvm-unit-tests: $src is not a kvm-unit-tests source (no configure or x86/unittests.cfg)" >&2
	rm -rf "$out.tmp"
	exit 1
fi
log="$out.tmp/hvmm-build.log"
if ! (cd "$out.tmp" && ./configure --arch=x86_64 && make -j"$(nproc)") >"$log" 2>&1; then
	echo "fail the build failed: $out.tmp/hvmm-build.log" >"$status"
	echo "kvm-unit-tests: the build failed; its last lines ($log):" >&2
	tail -n 15 "$log" >&2
	exit 1
fi
echo "$ident" >"$out.tmp/.hvmm-stamp"
mv "$out.tmp" "$out"
echo "ok built: $src" >"$status"
echo "kvm-unit-tests: built $(ls "$out"/x86/*.flat | wc -l) x86 test images in $out" >&2
