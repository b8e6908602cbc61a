#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/README.md has the input formats).

Seeds are well-formed sessions (a driver setting up a queue and passing good
chains; a guest probing and programming PCI functions) plus a few classic bad
ones, so the fuzzer starts from inputs that reach deep into the parsers.
usage: gen_seeds.py OUTDIR   (writes OUTDIR/fuzz_virtqueue/*, OUTDIR/fuzz_pci_config/*, ...)
"""
import gzip
import lzma
import bz2
import os
import shutil
import struct
import subprocess
import sys

# ---- fuzz_virtqueue -----------------------------------------------------------

R1 = 1 << 30  # address mode 1: region 1 (above the 4 GiB hole)
WRITE, NEXT, INDIRECT = 2, 1, 4


def a(off, mode=0):
    """Encoded guest address: mode 0 region 0 + off, 1 region 1 + off, 2 top - off."""
    return struct.pack("<I", (mode << 30) | off)


class VQ:
    def __init__(self, size=8, desc=0, avail=0x1000, used=0x2000, event_idx=True,
                 indirect=True, two=False, mode=0):
        self.b = bytearray([1 if two else 0])
        self.mode = mode
        self.b += self.hdr(size, desc, avail, used, event_idx, indirect)

    def hdr(self, size, desc, avail, used, event_idx, indirect):
        return (bytes([(1 if event_idx else 0) | (2 if indirect else 0)]) + struct.pack("<H", size)
                + a(desc, self.mode) + a(avail, self.mode) + a(used, self.mode))

    def desc(self, i, addr, length, flags=0, nxt=0):
        self.b += bytes([3]) + struct.pack("<HB", i, 1) + a(addr, self.mode)
        self.b += struct.pack("<IHH", length, flags, nxt)

    def desc_raw(self, i, addr, length, flags=0, nxt=0):
        self.b += bytes([3]) + struct.pack("<HBQIHH", i, 0, addr, length, flags, nxt)

    def poke(self, addr, data):
        for k in range(0, len(data), 256):
            part = data[k:k + 256]
            self.b += bytes([2]) + a(addr + k, self.mode) + bytes([len(part) - 1]) + part

    def offer(self, head, bump=1):
        self.b += bytes([4]) + struct.pack("<HB", head, bump)

    def pop(self):
        self.b += bytes([0])

    def push(self, written):
        self.b += bytes([1]) + struct.pack("<I", written)

    def op(self, code):
        self.b += bytes([code])

    def copy(self, off, length, to_iov):
        self.b += bytes([8]) + struct.pack("<HHB", off, length, 1 if to_iov else 0)


def table(entries):
    return b"".join(struct.pack("<QIHH", ad, ln, fl, nx) for ad, ln, fl, nx in entries)


def vq_seeds():
    s = {}
    q = VQ()
    q.desc(0, 0x4000, 16, NEXT, 1)
    q.desc(1, 0x5000, 512, WRITE)
    q.offer(0)
    q.pop()
    q.copy(0, 16, False)
    q.copy(0, 512, True)
    q.push(512)
    q.op(5)
    q.offer(0)
    q.op(6 | 0x80)
    q.op(9)
    q.op(5)
    s["good_chain"] = q.b

    q = VQ(event_idx=False)
    q.desc(0, 0x6000, 48, INDIRECT)
    q.poke(0x6000, table([(0x4000, 16, NEXT, 1), (0x5000, 64, NEXT | WRITE, 2), (0x5100, 64, WRITE, 0)]))
    q.offer(0)
    q.pop()
    q.push(100)
    q.op(5)
    q.op(6)
    q.offer(0)
    q.op(9)
    s["indirect"] = q.b

    q = VQ(size=256, desc=0x0, avail=0x1000, used=0x1400, mode=1, two=True)
    for i in range(16):
        q.desc(i, 0x2000 + 64 * i, 64, WRITE if i % 2 else 0)
        q.offer(i)
    q.op(9)
    s["region1_many"] = q.b

    q = VQ(size=1024, desc=0, avail=0x4000, used=0x5000)
    q.desc(0, 0x8000, 4096, NEXT, 1)
    q.desc(1, 0x9000, 4096, WRITE | NEXT, 2)
    q.desc(2, 0xa000, 16, WRITE)
    q.offer(0)
    q.op(9)
    s["big_queue"] = q.b

    q = VQ()
    q.desc(0, 0x4000, 16, NEXT, 1)
    q.desc(1, 0x4100, 16, NEXT, 0)  # loop
    q.offer(0)
    q.pop()
    s["loop"] = q.b

    q = VQ()
    q.desc_raw(0, 0xffffffffffffff00, 0x1000, 0)  # wraps
    q.offer(0)
    q.pop()
    q.op(7)
    q.b += q.hdr(8, 0, 0x1000, 0x2000, True, True)
    q.desc_raw(0, 0xc0000000, 16, 0)  # PCI hole
    q.offer(0)
    q.pop()
    s["bad_addr"] = q.b

    q = VQ()
    q.desc(0, 0x6000, 32, INDIRECT)
    q.poke(0x6000, table([(0x7000, 32, INDIRECT, 0), (0x4000, 16, 0, 0)]))  # nested
    q.offer(0)
    q.pop()
    s["nested_indirect"] = q.b

    q = VQ()
    q.offer(0, 200)  # avail idx far ahead
    q.pop()
    s["idx_jump"] = q.b
    return s


# ---- fuzz_pci_config ------------------------------------------------------------
# Operations, one byte each (dispatch: (op & 0x7f) % 10), then their arguments:
#      0 cf8 write(u32) | 1 cfc read(lane, size) | 2 cfc write(lane, size, u32)
#      3 ecam read(u32 off, size) | 4 ecam write(u32 off, size, u64)
#      5 bar read(dev, bar, u32 off, size) | 6 bar write(..., u64)
#      7 msix notify(dev, vec) | 8 intx(dev, level)
#      9 PCI window access(u32 off, size[, u64 if op & 0x80])
# size byte: 1 << (b & 3); dev: index of the fake device (0: slot 1, 1: slot 2).

def cfg_addr(dev, fn, reg):
    return 0x80000000 | (dev << 11) | (fn << 8) | (reg & 0xfc)


SZ = {1: 0, 2: 1, 4: 2, 8: 3}  # access size -> size byte


def pci_seeds():
    s = {}

    def cf8(v):
        return bytes([0]) + struct.pack("<I", v)

    def cfc_w(port, size, v):
        return bytes([2, port, SZ[size]]) + struct.pack("<I", v)

    def cfc_r(port, size):
        return bytes([1, port, SZ[size]])

    def ecam_w(off, size, v):
        return bytes([4]) + struct.pack("<IBQ", off, SZ[size], v)

    def ecam_r(off, size):
        return bytes([3]) + struct.pack("<IB", off, SZ[size])

    def bar_w(dev, bar, off, size, v):
        return bytes([6, dev, bar]) + struct.pack("<IBQ", off, SZ[size], v)

    def bar_r(dev, bar, off, size):
        return bytes([5, dev, bar]) + struct.pack("<IB", off, SZ[size])

    # probe every slot's ID through CF8/CFC, size BAR 0 of device 1
    b = bytearray()
    for slot in range(4):
        b += cf8(cfg_addr(slot, 0, 0)) + cfc_r(0, 4)
    b += cf8(cfg_addr(1, 0, 0x10)) + cfc_w(0, 4, 0xffffffff) + cfc_r(0, 4)
    b += cf8(cfg_addr(1, 0, 0x14)) + cfc_w(0, 4, 0xffffffff) + cfc_r(0, 4)
    b += cf8(cfg_addr(1, 0, 0x34)) + cfc_r(0, 1)
    b += cf8(cfg_addr(1, 0, 0x04)) + cfc_w(0, 2, 0x6) + cfc_r(2, 2)
    s["cf8_probe"] = bytes(b)

    # ECAM: walk capabilities of device 1, enable MSI-X, program and unmask vector 0
    b = bytearray()
    dev1 = 1 << 15
    b += ecam_r(dev1 + 0, 4) + ecam_r(dev1 + 0x34, 1)
    for off in range(0x40, 0x80, 4):
        b += ecam_r(dev1 + off, 4)
    b += ecam_w(dev1 + 0x04, 2, 0x6)
    b += ecam_r(dev1 + 0x10, 4) + ecam_w(dev1 + 0x10, 4, 0xffffffff) + ecam_r(dev1 + 0x10, 4)
    b += ecam_w(dev1 + 0x10, 4, 0)
    s["ecam_walk"] = bytes(b)

    # MSI-X: enable in the capability (found by the harness at a fixed offset
    # for the seed; the fuzzer finds the rest), program the table, notify
    b = bytearray()
    b += ecam_w(dev1 + 0x04, 2, 0x6)
    # MSI-X capability: at 0x64 on device 0 (after two vendor capabilities),
    # at 0x40 on device 1, with pci.c's layout when the seeds were written
    b += ecam_w(dev1 + 0x66, 2, 0xc000)  # enable + function mask
    b += ecam_w(dev1 + 0x66, 2, 0x8000)  # enable, unmask
    # device 0 (slot 1): table at BAR 2 + 0, PBA at BAR 2 + 0x800
    b += bar_w(0, 2, 0x0, 4, 0xfee00000) + bar_w(0, 2, 0x4, 4, 0) + bar_w(0, 2, 0x8, 4, 0x41)
    b += bytes([7, 0, 0])
    b += bar_w(0, 2, 0xc, 4, 0) + bar_r(0, 2, 0xc, 4)
    b += bar_r(0, 2, 0x800, 8)
    b += bytes([7, 0, 0]) + bytes([8, 0, 1]) + bytes([8, 0, 0])
    b += bar_w(0, 0, 0x10, 4, 0x12345678) + bar_r(0, 0, 0x10, 4) + bar_r(0, 0, 0x3ffc, 4)
    # device 1 (slot 2): table at BAR 0 + 0x800, PBA at 0xc00
    b += ecam_w((2 << 15) + 0x04, 2, 0x6) + ecam_w((2 << 15) + 0x42, 2, 0x8000)
    b += bar_w(1, 0, 0x800, 8, 0xfee00000) + bar_w(1, 0, 0x808, 8, 0x42) + bar_r(1, 0, 0xc00, 8)
    b += bytes([7, 1, 0]) + bytes([7, 1, 63]) + bytes([7, 1, 64])
    s["msix"] = bytes(b)

    # unaligned and odd-sized accesses, unpopulated functions, past ECAM
    b = bytearray()
    b += cf8(cfg_addr(31, 7, 0xfc)) + cfc_r(3, 1) + cfc_r(1, 2) + cfc_w(3, 4, 0xdeadbeef)
    b += cf8(0x7fffffff) + cfc_r(0, 4)
    b += ecam_r(0xfffff, 1) + ecam_r(0xffffc, 8) + ecam_w(0xffffe, 4, 0xffffffff)
    b += ecam_r((2 << 15) + 0xfff, 2)
    s["edges"] = bytes(b)
    return s


# ---- fuzz_virtio_pci --------------------------------------------------------------
# Operations (dispatch: (op & 0x7f) % 10; op & 0x80 picks device 1, the echo
# device, else device 0, virtio-rng); arguments as read by fz_run():
#   0 common write(off, size, u64) | 1 common read(off, size) | 2 BAR 0 (u16 off, size, wr[, u64])
#   3 notify(q, u16) | 4 poke(u24 gpa, n-1, bytes) | 5 set-up(features, size log2 q0, q1)
#   6 offer(q, i, sel, addr u24|u64, len u24, flags, next) | 7 BAR 2(u16 off, size, wr[, u64])
#   8 config space(off, size log2, u32) | 9 reset

W, N, I = 2, 1, 4  # descriptor flags: WRITE, NEXT, INDIRECT


def setup(dev, feat, l0, l1):
    """fuzz_virtio.h op 5: reset, features (bit 0: the device's own), queues 2^l0, 2^l1."""
    return bytes([5 | (dev << 7), feat, l0, l1])


def offer(dev, q, i, addr, ln, flags, nxt=0):
    """fuzz_virtio.h op 6: descriptor i of queue q at a 3-byte address, avail entry, kick."""
    return bytes([6 | (dev << 7), q, i, 1]) + struct.pack("<I", addr)[:3] + \
        struct.pack("<I", ln)[:3] + bytes([flags, nxt])


def poke(gpa, data):
    """fuzz_virtio.h op 4: bytes into RAM (up to 256 per op)."""
    out = b""
    for k in range(0, len(data), 256):
        part = data[k:k + 256]
        out += bytes([4]) + struct.pack("<I", gpa + k)[:3] + bytes([len(part) - 1]) + part
    return out


def vp_seeds():
    s = {}

    s["rng"] = setup(0, 6, 3, 3) + offer(0, 0, 0, 0x20000, 64, W) + offer(0, 0, 1, 0x20100, 4096, W)
    ring = 0x4000 * 3  # device 1, queue 0
    s["echo_chain"] = (setup(1, 7, 4, 4) + poke(ring + 16, struct.pack("<QIHH", 0x21000, 64, W, 0))
                       + offer(1, 0, 0, 0x20000, 32, N, 1) + bytes([9 | 0x80]) + setup(1, 3, 2, 2)
                       + offer(1, 1, 0, 0x20000, 16, W))
    s["echo_indirect"] = (setup(1, 2, 3, 3) + poke(0x30000, struct.pack("<QIHHQIHH", 0x20000, 8, N, 1,
                                                                          0x20100, 8, W, 0))
                          + offer(1, 0, 0, 0x30000, 32, I))
    s["common_rw"] = bytes([1, 0x14, 0, 0, 0x14, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x12, 1, 2, 0x00, 0x30, 2, 1]) + \
        bytes([0, 0x16, 1, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0x18, 1])
    s["early_notify"] = bytes([0x80, 0x14, 0, 0xb, 0, 0, 0, 0, 0, 0, 0, 3 | 0x80, 0, 0, 0]) + setup(1, 4, 3, 3)
    return s


# ---- fuzz_iommu -------------------------------------------------------------------

def iommu_seeds():
    """fuzz_iommu: RAM quadwords, unit registers, translations, DMA, MSIs, IOAPIC, edu."""
    def ram(gpa, v):
        return bytes([0]) + struct.pack("<I", gpa // 8)[:3] + struct.pack("<Q", v)

    def reg(off, v, size=8):
        return bytes([3]) + struct.pack("<H", off) + bytes([{1: 0, 2: 1, 4: 2, 8: 3}[size]]) + \
            struct.pack("<Q", v)

    def gcmd(bit, status):
        return reg(0x18, status | bit, 4)

    def xlate(sid, iova, write=False):
        return bytes([4 | (0x80 if write else 0)]) + struct.pack("<HQ", sid, iova)

    def dma(sid, iova, n, write=False):
        return bytes([5 | (0x80 if write else 0)]) + struct.pack("<HQH", sid, iova, n)

    def msi(sid, addr, data, verify=True):
        return bytes([6 | (0x80 if verify else 0)]) + struct.pack("<HII", sid, addr, data)

    root, ctx, pt, irt, iq = 0x10000, 0x11000, 0x12000, 0x20000, 0x30000
    sid = 0x0008  # edu at 00:01.0
    tables = (ram(root, ctx | 1) + ram(ctx + 16 * sid, pt | 1) + ram(ctx + 16 * sid + 8, 1)
              + ram(pt, (pt + 0x1000) | 3) + ram(pt + 0x1000, (pt + 0x2000) | 3)
              + ram(pt + 0x2000, 0x40000 | 3) + ram(pt + 0x2008, 0x41000 | 1))
    on = (reg(0x20, root) + gcmd(1 << 30, 0) + reg(0xb8, irt | 3) + gcmd(1 << 24, 1 << 30)
          + gcmd(1 << 31, 0x41000000) + gcmd(1 << 25, 0xc1000000))
    s = {}
    s["kut_dmar"] = tables + on + xlate(sid, 0x10) + xlate(sid, 0x1008, True) + dma(sid, 0xff0, 64) \
        + dma(sid, 0x0, 8, True) + xlate(0x0100, 0)
    irte = ram(irt + 32, 1 | 0xee << 16) + ram(irt + 40, sid | 1 << 18)
    s["kut_ir"] = tables + on + irte + msi(sid, 0xfee00050, 0) + msi(0x10, 0xfee00050, 0) \
        + msi(sid, 0xfee01000, 0x31) + bytes([7 | 0x80, 17]) + struct.pack("<II", 1 << 17 | 1 << 16, 0xed)
    # edu: bus master on, DMA RAM -> buffer -> RAM through the map, raise, MSI on
    edu = (bytes([9, 4]) + struct.pack("<I", 6) + bytes([8 | 0x80, 0x80, 3]) + struct.pack("<Q", 0)
           + bytes([8 | 0x80, 0x88, 3]) + struct.pack("<Q", 0x40000) + bytes([8 | 0x80, 0x90, 3])
           + struct.pack("<Q", 4) + bytes([8 | 0x80, 0x98, 2]) + struct.pack("<Q", 1)
           + bytes([9, 0x44]) + struct.pack("<I", 0xfee00050) + bytes([9, 0x40]) + struct.pack("<I", 0x810005)
           + bytes([8 | 0x80, 0x60, 2]) + struct.pack("<Q", 1))
    s["edu"] = tables + on + irte + edu
    # queued invalidation: enable, a context, IOTLB, IEC and wait descriptor, the tail
    qi = (reg(0x90, iq) + gcmd(1 << 26, 0) + ram(iq, 0x31) + ram(iq + 16, 0x12) + ram(iq + 32, 4)
          + ram(iq + 48, 0x1234 << 32 | 0x35) + ram(iq + 56, 0x31000) + reg(0xa0, 0, 4) + reg(0x88, 4 << 4))
    s["qi"] = qi + reg(0x38, 0, 4) + tables + on + xlate(sid, 0x1000, True) + reg(0x234, 0, 4)
    return s

# ---- fuzz_boot --------------------------------------------------------------------
# Input: flags (bits 0-2 format: 0 auto 1 flat 2 elf 3 multiboot 4 linux 5 pvh;
# 8 --no-decompress, 0x10 ACPI, 0x20 initrd, 0x40 module, 0x80 cmdline),
# ram (bits 0-2: 1/2/4/8/16 MiB or odd sizes; bits 4-7 ncpus-1),
# [u8 n + cmdline] [u16 n + initrd] [u16 n + module, u8 m + module args], image.

F_FLAT, F_ELF, F_MB, F_LINUX, F_PVH = 1, 2, 3, 4, 5
F_NODECOMP, F_ACPI, F_INITRD, F_MODULE, F_CMDLINE = 8, 0x10, 0x20, 0x40, 0x80
CODE = b"\xfa\xf4\xeb\xfd" * 4  # cli; hlt; jmp $-1


def boot_input(flags, ram, image, cmdline=b"", initrd=b"", module=b"", modargs=b""):
    b = bytes([flags, ram])
    if flags & F_CMDLINE:
        b += bytes([len(cmdline)]) + cmdline
    if flags & F_INITRD:
        b += struct.pack("<H", len(initrd)) + initrd
    if flags & F_MODULE:
        b += struct.pack("<H", len(module)) + module + bytes([len(modargs)]) + modargs
    return b + image


def elf(is64, entry, segs, notes=b"", machine=None):
    """A minimal ELF executable: PT_LOAD per (paddr, data, memsz), a PT_NOTE if notes."""
    ehsize, phsize = (64, 56) if is64 else (52, 32)
    phnum = len(segs) + (1 if notes else 0)
    off = ehsize + phsize * phnum
    body, ph = b"", b""
    for paddr, data, memsz in segs:
        if is64:
            ph += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), paddr, paddr, len(data), memsz, 0x1000)
        else:
            ph += struct.pack("<IIIIIIII", 1, off + len(body), paddr, paddr, len(data), memsz, 7, 0x1000)
        body += data
    if notes:
        if is64:
            ph += struct.pack("<IIQQQQQQ", 4, 4, off + len(body), 0, 0, len(notes), len(notes), 4)
        else:
            ph += struct.pack("<IIIIIIII", 4, off + len(body), 0, 0, len(notes), len(notes), 4, 4)
        body += notes
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + bytes(9)
    mach = machine if machine is not None else (62 if is64 else 3)
    if is64:
        hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, mach, 1, entry, ehsize, 0, 0, ehsize, phsize, phnum, 64, 0, 0)
    else:
        hdr = ident + struct.pack("<HHIIIIIHHHHHH", 2, mach, 1, entry, ehsize, 0, 0, ehsize, phsize, phnum, 40, 0, 0)
    return hdr + ph + body


def xen_note(entry):
    return struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", entry)


def mb_header(flags, extra=b""):
    magic = 0x1BADB002
    return struct.pack("<III", magic, flags, (-(magic + flags)) & 0xffffffff) + extra


def bzimage(payload, pref=0x100000, version=0x020f, init_size=0x10000):
    """A bzImage: one setup sector, the setup header, the protected-mode part = payload."""
    img = bytearray(1024)
    img[0x1f1] = 1                                  # setup_sects
    struct.pack_into("<H", img, 0x1fe, 0xaa55)
    img[0x200:0x202] = bytes([0xeb, 0x268 - 0x202])  # jump past the header
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = 1                                  # loadflags: LOADED_HIGH
    struct.pack_into("<I", img, 0x22c, 0x7fffffff)  # initrd_addr_max
    struct.pack_into("<I", img, 0x230, 0x200000)    # kernel_alignment
    struct.pack_into("<H", img, 0x236, 1)           # xloadflags: XLF_KERNEL_64
    struct.pack_into("<I", img, 0x238, 255)         # cmdline_size
    struct.pack_into("<I", img, 0x248, 0)           # payload_offset (from the pm part)
    struct.pack_into("<I", img, 0x24c, len(payload))
    struct.pack_into("<Q", img, 0x258, pref)        # pref_address
    struct.pack_into("<I", img, 0x260, init_size)
    return bytes(img) + payload


def tool(argv, data):
    """Debian's zstd/lz4 (scripts/deps.sh installs them)."""
    if not shutil.which(argv[0]):
        sys.exit(f"gen_seeds.py: {argv[0]} is missing (apt-get install {argv[0]}): cannot write the "
                 f"{argv[0]} bzImage seed")
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE, check=True).stdout


def boot_seeds():
    s = {}
    vmlinux = elf(True, 0x100000, [(0x100000, CODE * 8, 0x2000)])
    s["flat"] = boot_input(F_FLAT, 1, CODE)
    s["elf64"] = boot_input(F_ELF, 3, elf(True, 0x100000, [(0x100000, CODE, 0x1000), (0x200000, CODE, 0x800)]))
    s["elf32_auto"] = boot_input(0, 2, elf(False, 0x100000, [(0x100000, CODE, 0x1000)]))
    aout = mb_header(0x00010003, struct.pack("<IIIII", 0x100000, 0x100000, 0, 0x108000, 0x100020)) + CODE
    s["multiboot_aout"] = boot_input(F_CMDLINE | F_MODULE, 0x13, aout, cmdline=b"console=ttyS0 quiet",
                                     module=b"module data " * 20, modargs=b"mod arg")
    mbelf = elf(False, 0x100000, [(0x100000, mb_header(3) + CODE, 0x1000)])
    s["multiboot_elf"] = boot_input(F_MB | F_CMDLINE, 2, mbelf, cmdline=b"x")
    pvh = elf(True, 0x100000, [(0x100000, CODE, 0x1000)], notes=xen_note(0x100000))
    s["pvh"] = boot_input(F_ACPI | F_CMDLINE | F_MODULE, 0x22, pvh, cmdline=b"console=hvc0",
                          module=b"initramfs" * 30, modargs=b"rdinit=/bin/sh")
    s["pvh32"] = boot_input(F_PVH, 1, elf(False, 0x100000, [(0x100000, CODE, 0x1000)], notes=xen_note(0x100000)))
    s["vmlinux"] = boot_input(F_LINUX | F_CMDLINE | F_INITRD, 3, vmlinux, cmdline=b"console=ttyS0",
                              initrd=b"\x07\x07\x01" + b"initrd" * 50)
    size = struct.pack("<I", len(vmlinux))  # the kernel's build appends the size
    payloads = {
        "gzip": gzip.compress(vmlinux, mtime=0) + b"",
        "xz": lzma.compress(vmlinux, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32) + size,
        "zstd": tool(["zstd", "-q", "-c", "-19"], vmlinux) + size,
        "lz4": tool(["lz4", "-q", "-l", "-c", "-9"], vmlinux) + size,
        "lzma": lzma.compress(vmlinux, format=lzma.FORMAT_ALONE) + size,  # refused
        "bzip2": bz2.compress(vmlinux) + size,                            # refused
    }
    for name, payload in payloads.items():
        s[f"bzimage_{name}"] = boot_input(F_CMDLINE | F_INITRD, 3, bzimage(payload),
                                          cmdline=b"console=ttyS0 root=/dev/vda", initrd=b"TRAILER!!!" * 8)
    s["bzimage_nodecomp"] = boot_input(F_NODECOMP | F_INITRD, 4, bzimage(payloads["gzip"], init_size=0x80000),
                                       initrd=b"initrd")
    return s


# ---- fuzz_fw_cfg ------------------------------------------------------------------
# Input: u8 files (% 8), each u8 name length (% 60), name, u16 size; then ops (op % 8):
#   0 select(u16) | 1 data read(size; op bit 3: port 0x511) | 2 other write(size, u64)
#   3 DMA register write(off, size, u64) | 4 DMA register read(off, size)
#   5 transfer(u24 gpa | op 0x80: u64 gpa; op 0x40: as two halves)
#   6 descriptor(u24 gpa, u32 control, u16 length, u24 addr | op 0x80: u64 addr) | 7 poke(u24, n-1, bytes)

SZ1, SZ2, SZ4, SZ8 = 0, 1, 2, 3


def fw_cfg_seeds():
    def files(*fs):
        b = bytes([len(fs)])
        for name, size in fs:
            b += bytes([len(name)]) + name + struct.pack("<H", size)
        return b

    def sel(k):
        return bytes([0]) + struct.pack("<H", k)

    def rd(n, size=SZ1, port1=True):
        return bytes([1 | (8 if port1 else 0), size]) * n

    def desc(gpa, control, length, addr):
        return bytes([6]) + struct.pack("<I", gpa)[:3] + struct.pack("<IH", control, length) + \
            struct.pack("<I", addr)[:3]

    def go(gpa, halves=False):
        return bytes([5 | (0x40 if halves else 0)]) + struct.pack("<I", gpa)[:3]

    fs = files((b"etc/acpi/tables", 300), (b"opt/org.example/x", 5), (b"bootorder", 0))
    s = {}
    s["traditional"] = fs + sel(0) + rd(4) + sel(1) + rd(4) + sel(3) + rd(2, SZ4) + sel(5) + rd(1, SZ2) + \
        sel(0x19) + rd(4 + 3 * 64) + sel(0x20) + rd(40, SZ8) + sel(0x4000 | 0x21) + rd(6) + sel(0x8000) + rd(2)
    s["dma"] = fs + bytes([4, 0, SZ8]) + desc(0x1000, 0x19 << 16 | 0x0a, 4 + 3 * 64, 0x2000) + go(0x1000) + \
        desc(0x1000, 0x20 << 16 | 0x0c, 100, 0) + go(0x1000, True) + desc(0x1000, 0x02, 200, 0x3000) + go(0x1000) + \
        desc(0x1000, 0x10, 4, 0x3000) + go(0x1000) + desc(0x1000, 0x0a, 0x100, 0x3fff0) + go(0x1000) + go(0x3fff8)
    # a file read in chunks, as firmware does: the offset carries over between transfers
    s["dma_chunks"] = fs + desc(0x1000, 0x21 << 16 | 0x0a, 64, 0x2000) + go(0x1000) + \
        desc(0x1000, 0x02, 64, 0x2040) + go(0x1000) + desc(0x1000, 0x02, 200, 0x2080) + go(0x1000) + rd(4)
    s["dup_names"] = files((b"a", 1), (b"a", 2), (b"", 3), (b"n" * 56, 4), (b"b", 65535)) + \
        sel(0x19) + rd(8, SZ8) + sel(0x21) + rd(100, SZ8)
    s["ports"] = fs + bytes([2, SZ1]) + struct.pack("<Q", 1) + bytes([2 | 8, SZ4]) + struct.pack("<Q", 7) + \
        bytes([3, 0, SZ4]) + struct.pack("<Q", 0) + bytes([3, 2, SZ2]) + struct.pack("<Q", 0x1234) + \
        bytes([4, 5, SZ8]) + rd(3)
    return s


# ---- fuzz_ioapic ------------------------------------------------------------------
# Ops (op % 9): 0 register(u8 reg, u32) | 1 entry(pin, u32 lo, u8 dest) | 2 page access(u16 off, size
# [, u32: op 0x80 writes the EOI register]) | 3 IOREGSEL(size, u32, window read size)
# 4 line(pin; op 0x80: assert) | 5 EOI(vector) | 6 pulse(pin) | 7 PIC port(sel [, u8: op 0x80])
# 8 PIC INTA

def ioapic_seeds():
    def op(code, bit7=False):
        # an op byte with this code (% 9) and bit 7 as asked
        for v in range(256):
            if v % 9 == code and bool(v & 0x80) == bit7:
                return bytes([v])
        raise ValueError

    def entry(pin, lo, dest=0):
        return op(1) + bytes([pin]) + struct.pack("<IB", lo, dest)

    def line(pin, level):
        return op(4, level) + bytes([pin])

    def eoi(v):
        return op(5) + bytes([v])

    LEVEL, MASK = 0x8000, 0x10000
    s = {}
    s["linux_edge"] = b"".join(entry(p, MASK | (0x20 + p)) for p in range(24)) + entry(4, 0x24) + \
        line(4, True) + line(4, False) + op(6) + bytes([4]) + eoi(0x24)
    s["level_eoi"] = entry(9, LEVEL | 0x29, 1) + line(9, True) + eoi(0x29) + eoi(0x29) + line(9, False) + \
        eoi(0x29) + entry(9, LEVEL | MASK | 0x29) + line(9, True) + entry(9, LEVEL | 0x31) + \
        op(2, True) + struct.pack("<HB", 0x40, 2) + struct.pack("<I", 0x31) + line(9, False) + eoi(0x31)
    s["regs"] = op(0) + bytes([0]) + struct.pack("<I", 0x0f000000) + op(0) + bytes([1]) + struct.pack("<I", 0) + \
        op(3) + bytes([0]) + struct.pack("<I", 0x11) + bytes([2]) + op(2) + struct.pack("<HB", 0x10, 0) + \
        op(0) + bytes([0x3f]) + struct.pack("<I", 0xffffffff) + op(0) + bytes([0x40]) + struct.pack("<I", 1)

    def pic(sel, v):
        return op(7, True) + bytes([sel, v])
    s["pic"] = pic(0, 0x11) + pic(1, 0x08) + pic(1, 4) + pic(1, 1) + pic(2, 0x11) + pic(3, 0x70) + pic(3, 2) + \
        pic(3, 1) + pic(1, 0) + pic(3, 0) + pic(4, 0x20) + line(1, True) + op(8) + pic(0, 0x20) + \
        line(1, False) + line(5, True) + op(8) + op(8) + pic(0, 0x0b) + op(7) + bytes([0]) + line(12, True) + op(8)
    return s


# ---- fuzz_uart --------------------------------------------------------------------
# Input: u8 limit (bytes = limit * 37; 0 none), then ops (op % 6): 0 write (register
# (op >> 3) & 7; op 0x40: size byte, else 1) value | 1 read (same) | 2 input ((op >> 3) & 31) + 1
# bytes | 3 burst(u16 n % 512, u8 c) | 4 Linux 8250 set-up | 5 drain LSR/RBR, IIR, MSR

def uart_op(code, reg=0, wide=False):
    for v in range(256):
        if v % 6 == code and (v >> 3) & 7 == reg and bool(v & 0x40) == wide:
            return bytes([v])
    raise ValueError


def uart_seeds():
    def wr(reg, v):
        return uart_op(0, reg) + bytes([v])

    def rd(reg):
        return uart_op(1, reg)

    def inp(data):
        for v in range(256):
            if v % 6 == 2 and ((v >> 3) & 31) + 1 == len(data):
                return bytes([v]) + data
        raise ValueError

    s = {}
    s["linux"] = bytes([0]) + uart_op(4) + b"".join(wr(0, c) for c in b"hello\n") + rd(2) + rd(5) + \
        inp(b"ls\r") + uart_op(5) + rd(6) + wr(7, 0x5a) + rd(7)
    s["loopback"] = bytes([0]) + wr(4, 0x1f) + rd(6) + wr(0, 0x41) + rd(5) + rd(0) + wr(2, 0x07) + \
        b"".join(wr(0, 0x30 + i) for i in range(18)) + rd(5) + uart_op(5) + wr(4, 0x0b) + rd(6) + rd(2)
    s["limit"] = bytes([2]) + uart_op(3) + struct.pack("<HB", 300, 0x61) + b"".join(wr(0, c) for c in b"tail\n")
    s["dlab_wide"] = bytes([0]) + wr(3, 0x80) + uart_op(0, 0, True) + bytes([1]) + struct.pack("<H", 0x0c01) + \
        uart_op(1, 0, True) + bytes([3]) + wr(3, 0x03) + uart_op(0, 6, True) + bytes([3]) + \
        struct.pack("<Q", 0x1122334455667788) + inp(b"\x01x\x01\x01a")
    return s


# ---- fuzz_virtio_net --------------------------------------------------------------
# Input: u8 mode (bit 0: the slirp rings, else a socket; bit 1: seqpacket recv rather
# than tap read), then ops ((op & 0x7f) % 16): 0-9 fuzz_virtio.h's driver ops (as in
# fuzz_virtio_pci, device 0), 10 frame(u16 len, u8 fill; odd fill: len as is, else
# 14 + len % 1505) | 11 back end takes tx | 12 helper writes a ring field (which, u32)
# | 13 loop turn | 14 doorbell(u8: 1 rings hvmm) + turn | 15 back end dies (u8: 1 says "x") + turn

def net_seeds():
    def frame(n, fill=2):
        return bytes([10]) + struct.pack("<HB", n - 14, fill)

    rx = b"".join(offer(0, 0, i, 0x20000 + 0x800 * i, 0x800, W) for i in range(4))
    pkt = bytes(12) + b"\xff" * 6 + b"\x52\x54\x00\x12\x34\x56\x08\x06" + bytes(46)
    tx = poke(0x30000, pkt) + offer(0, 1, 0, 0x30000, len(pkt), 0)
    s = {}
    for mode, name in ((1, "ring"), (0, "tap"), (2, "socket")):
        s[name] = bytes([mode]) + setup(0, 1, 4, 4) + rx + frame(60) + frame(1514) + bytes([14, 1]) + \
            bytes([13]) + tx + bytes([11]) + frame(1514) + frame(1514) + frame(100) + bytes([13]) + rx + \
            bytes([14, 1]) + bytes([11])
    s["ring_hostile"] = bytes([1]) + setup(0, 1, 3, 3) + rx + bytes([12, 0x00 | 1, 0xff, 0xff, 0, 0]) + \
        bytes([14, 1]) + setup(0, 1, 3, 3) + rx + frame(60) + bytes([12, 8 | 1]) + struct.pack("<I", 9000) + \
        bytes([14, 1]) + bytes([12, 2]) + struct.pack("<I", 0x10000) + tx + tx + bytes([14, 1])
    s["ring_full"] = bytes([1]) + setup(0, 1, 8, 8) + b"".join(
        poke(0x30000, pkt) + offer(0, 1, i, 0x30000, len(pkt), 0) for i in range(40)) + bytes([11, 14, 0])
    # regression: a back end frame longer than the advertised MTU's 1518 went to the driver
    big_rx = b"".join(offer(0, 0, i, 0x20000 + 0x1000 * i, 0x1000, W) for i in range(4))
    s["jumbo"] = bytes([2]) + setup(0, 1, 4, 4) + big_rx + bytes([10]) + struct.pack("<HB", 1600, 3) + \
        bytes([10]) + struct.pack("<HB", 1519, 1) + frame(1514) + bytes([13])
    s["die"] = bytes([0]) + setup(0, 1, 4, 4) + rx + frame(60) + bytes([15, 0]) + tx + bytes([13]) + rx
    return s


# ---- fuzz_virtio_console ----------------------------------------------------------
# Ops ((op & 0x7f) % 14): 0-9 fuzz_virtio.h's driver ops (device 0), 10 host input (u8 n:
# n & 0x80: (n & 0x7f) * 32 + 1 copies of a byte, else n % 32 + 1 bytes) | 11 loop turn
# | 12 host hangs up + turn | 13 turns(u8 % 8 + 1)

def console_seeds():
    def inp(data):
        return bytes([10, len(data) - 1]) + data

    rx = b"".join(offer(0, 0, i, 0x20000 + 0x100 * i, 0x100, W) for i in range(4))
    s = {}
    s["echo"] = setup(0, 1, 3, 3) + rx + inp(b"hello\x01\x01world\x01z!") + bytes([11]) + \
        poke(0x30000, b"login: ") + offer(0, 1, 0, 0x30000, 7, 0)
    s["burst"] = setup(0, 1, 3, 3) + b"".join(bytes([10, 0xff, 0x61 + i]) + bytes([13, 7]) for i in range(3)) + \
        rx + bytes([13, 3]) + rx + bytes([12]) + rx + bytes([13, 7])
    s["quit"] = setup(0, 3, 2, 2) + inp(b"\x01x") + bytes([11]) + rx + bytes([11])
    return s


def api_seeds():
    """Whole requests, one per seed, and a pipelined session; the first byte
    is the feed's chunk size."""
    def req(method, path, body=None, extra=b""):
        r = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + extra
        if body is not None:
            r += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        return r + b"\r\n" + (body or b"")
    s = {
        "root": b"\x3f" + req("GET", "/"),
        "config": b"\x3f" + req("GET", "/machine-config"),
        "pause": b"\x07" + req("PATCH", "/vm", b'{"state": "Paused"}'),
        "resume": b"\x3f" + req("PATCH", "/vm", b'{"state": "Resumed"}'),
        "action": b"\x3f" + req("PUT", "/actions", b'{"action_type": "InstanceStart"}'),
        "stats": b"\x3f" + req("GET", "/hvmm/stats?x=1"),
        "chunked": b"\x05" + b"PATCH /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"12\r\n{\"state\":\"Paused\"}\r\n0\r\n\r\n",
        "http10": b"\x3f" + b"GET /hvmm/irt HTTP/1.0\r\n\r\n",
        "inject-irq": b"\x3f" + req("PUT", "/hvmm/inject", b'{"kind": "irq", "vector": 94}'),
        "inject-exc": b"\x3f" + req("PUT", "/hvmm/inject", b'{"kind": "exception", "vector": 13, "error_code": 4660}'),
        "inject-nmi": b"\x3f" + req("PUT", "/hvmm/inject", b'{"kind": "nmi"}'),
    }
    s["session"] = b"\x10" + b"".join(v[1:] for k, v in s.items() if k not in ("http10", "chunked"))
    return s


def main():
    out = sys.argv[1]
    for target, seeds in (("fuzz_virtqueue", vq_seeds()), ("fuzz_pci_config", pci_seeds()),
                          ("fuzz_virtio_pci", vp_seeds()), ("fuzz_iommu", iommu_seeds()),
                          ("fuzz_boot", boot_seeds()), ("fuzz_fw_cfg", fw_cfg_seeds()),
                          ("fuzz_ioapic", ioapic_seeds()), ("fuzz_uart", uart_seeds()),
                          ("fuzz_virtio_net", net_seeds()), ("fuzz_virtio_console", console_seeds()),
                          ("fuzz_api", api_seeds())):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
