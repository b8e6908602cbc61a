#!/bin/sh
# fetch-linux.sh BUILD_DIR — fetch Debian's stock 6.1 kernel for the Linux boot test
# Leaves BUILD_DIR/linux/vmlinuz (bzImage, xz payload), the
# package version in BUILD_DIR/linux/VERSION, the vmlinux ELF inside it
# (BUILD_DIR/linux/vmlinux: QEMU boots it by its PVH note) and a tiny
# newc initrd BUILD_DIR/linux/initrd.cpio. Idempotent: skips what exists.
# The kernel is downloaded, never committed.
set -eu
BUILD=${1:?usage: fetch-linux.sh BUILD_DIR}
OUT="$BUILD/linux"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ ! -s "$OUT/vmlinuz" ]; then
    find_pkg() {
        apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
            awk '{print $1}' | sort -V | tail -n 1
    }
    PKG=$(find_pkg)
    if [ -z "$PKG" ]; then
        echo "fetch-linux: no package lists, running apt-get update" >&2
        apt-get update -qq >&2
        PKG=$(find_pkg)
    fi
    [ -n "$PKG" ] || { echo "fetch-linux: no linux-image-6.1.0-*-amd64 package found" >&2; exit 1; }
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    echo "fetch-linux: apt-get download $PKG" >&2
    # apt-get download writes into the current directory; _apt needs to be able to write there
    chmod 777 "$TMP"
    (cd "$TMP" && apt-get download -q "$PKG" >&2)
    DEB=$(ls "$TMP"/*.deb | head -n 1)
    dpkg-deb -x "$DEB" "$TMP/x"
    K=$(ls "$TMP"/x/boot/vmlinuz-* | head -n 1)
    [ -s "$K" ] || { echo "fetch-linux: no /boot/vmlinuz-* in $DEB" >&2; exit 1; }
    cp "$K" "$OUT/vmlinuz.tmp"
    dpkg-deb -f "$DEB" Package Version > "$OUT/VERSION"
    mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
    echo "fetch-linux: $OUT/vmlinuz from $(basename "$DEB")" >&2
fi

if [ ! -s "$OUT/vmlinux" ]; then
    # The bzImage's payload (setup header: payload_offset 0x248, payload_length
    # 0x24c, relative to the protected-mode code at (setup_sects+1)*512).
    python3 - "$OUT/vmlinuz" "$OUT/vmlinux" <<'EOF'
import gzip, lzma, os, struct, sys
d = open(sys.argv[1], "rb").read()
if d[0x202:0x206] != b"HdrS":
    sys.exit("fetch-linux: vmlinuz is not a bzImage")
off = ((d[0x1f1] or 4) + 1) * 512 + struct.unpack_from("<I", d, 0x248)[0]
pl = d[off:off + struct.unpack_from("<I", d, 0x24c)[0]]
if pl[:6] == b"\xfd7zXZ\0":
    v = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(pl)
elif pl[:2] == b"\x1f\x8b":
    v = gzip.decompress(pl)
else:
    sys.exit("fetch-linux: payload is neither xz nor gzip: %r" % pl[:6])
if v[:4] != b"\x7fELF":
    sys.exit("fetch-linux: payload is not an ELF")
with open(sys.argv[2] + ".tmp", "wb") as f:
    f.write(v)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
EOF
fi

if [ ! -s "$OUT/initrd.cpio" ]; then
    # A newc cpio archive with one file, /hvmm-initrd.txt; written in python3 so
    # that no cpio package is needed.
    python3 - "$OUT/initrd.cpio" "$(dirname "$0")" <<'EOF'
import os, sys
sys.path.insert(0, sys.argv[2])
import cpio
blob = cpio.newc([("hvmm-initrd.txt", 0o100644, b"hvmm test initrd\n")])
with open(sys.argv[1] + ".tmp", "wb") as f:
    f.write(blob)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
EOF
fi
ls -l "$OUT/vmlinuz" "$OUT/vmlinux" "$OUT/initrd.cpio" >&2
