#!/usr/bin/env bash
# Install the Debian packages `make test` and `make demo` need, only if missing.
# (zstd and lz4: the CLIs fuzz/gen_seeds.py compresses its bzImage seeds with.
# kvm-unit-tests, built by scripts/kvm-unit-tests.sh, needs nothing more than
# gcc, make, binutils and python3 from this list: its configure and Makefile
# use only those.)
set -euo pipefail
pkgs=(gcc make binutils libc6-dev libcmocka-dev libfuse3-dev libjson-c-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev liburing-dev libseccomp-dev libslirp-dev libhttp-parser-dev curl pkg-config clang libclang-rt-14-dev qemu-system-x86 valgrind python3 busybox-static fio iperf3 e2fsprogs zstd lz4)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install ${missing[*]} (apt-get install ${missing[*]})" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
