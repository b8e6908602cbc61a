"""cpio.newc(entries): a newc ("070701") cpio archive, the format Linux unpacks
as an initramfs. Used by scripts/kvm-host and scripts/linux-images, so that
neither needs the cpio package."""


def newc(entries):
    """The archive of (name, mode, data[, (major, minor)]) entries (data None
    for a directory or device node, the target for a symlink; the device
    numbers for a node), with its trailer, padded to 512 bytes."""
    out = bytearray()
    for ino, entry in enumerate(list(entries) + [("TRAILER!!!", 0, b"")], 1):
        name, mode, data = entry[:3]
        rdev = entry[3] if len(entry) > 3 else (0, 0)
        data = data or b""
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
        out += hdr.encode() + nb
        out += b"\0" * (-len(out) % 4)
        out += data + b"\0" * (-len(data) % 4)
    out += b"\0" * (-len(out) % 512)
    return bytes(out)
