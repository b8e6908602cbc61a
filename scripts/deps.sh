#!/usr/bin/env bash
# Install the Debian packages `make test` and `make demo` need, only if missing.
# (zstd and lz4: the CLIs fuzz/gen_seeds.py compresses its bzImage seeds with.
# kvm-unit-tests, built by scripts/kvm-unit-tests.sh, needs nothing more than
# gcc, make, binutils and python3 from this list: its configure and Makefile
# use only those.)
#
# QEMU at least 10: the nested KVM host (scripts/kvm-host) is QEMU's TCG
# emulating AMD-V, and 10.0's runs its Linux guests about 1.5x as fast as
# Debian 12's 7.2 did here. On Debian 12 it comes from bookworm-backports
# (Debian's own build of the version Debian 13 ships), which this adds.
set -euo pipefail
pkgs=(gcc make binutils libc6-dev libcmocka-dev libfuse3-dev libjson-c-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev liburing-dev libseccomp-dev libslirp-dev libhttp-parser-dev curl pkg-config clang libclang-rt-14-dev qemu-system-x86 valgrind python3 busybox-static fio iperf3 e2fsprogs zstd lz4)
QEMU_MIN=1:10.0
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
qemu_old=0
v=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
if [ -n "$v" ] && dpkg --compare-versions "$v" lt "$QEMU_MIN"; then
	qemu_old=1
fi
[ ${#missing[@]} -eq 0 ] && [ $qemu_old -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install ${missing[*]} (apt-get install ${missing[*]}; qemu-system-x86 >= $QEMU_MIN)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
qemu_from=()
if [ "$codename" = bookworm ]; then
	src=/etc/apt/sources.list.d/bookworm-backports.sources
	if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo "deps: adding Debian's bookworm-backports for QEMU >= $QEMU_MIN ($src)" >&2
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$src"
	fi
	qemu_from=(-t bookworm-backports)
fi
want=("${missing[@]}")
[ $qemu_old -eq 0 ] || want+=("qemu-system-x86>=$QEMU_MIN (have $v)")
echo "deps: installing ${want[*]}" >&2
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	# everything but QEMU from the release itself
	rest=()
	for p in "${missing[@]}"; do [ "$p" = qemu-system-x86 ] || rest+=("$p"); done
	[ ${#rest[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${rest[@]}" >/dev/null
fi
apt-get install -y -qq --no-install-recommends "${qemu_from[@]}" qemu-system-x86 >/dev/null
v=$(dpkg-query -W -f='${Version}' qemu-system-x86)
if dpkg --compare-versions "$v" lt "$QEMU_MIN"; then
	echo "deps: qemu-system-x86 $v installed, the tests want >= $QEMU_MIN" >&2
	exit 1
fi
