#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/README.md has the input formats).

Seeds are well-formed sessions (a driver setting up a queue and passing good
chains; a guest probing and programming PCI functions) plus a few classic bad
ones, so the fuzzer starts from inputs that reach deep into the parsers.
usage: gen_seeds.py OUTDIR   (writes OUTDIR/fuzz_virtqueue/*, OUTDIR/fuzz_pci_config/*, ...)
"""
import os
import struct
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

def vp_seeds():
    s = {}
    W, N, I = 2, 1, 4

    def setup(dev, feat, l0, l1):
        return bytes([5 | (dev << 7), feat, l0, l1])

    def offer(dev, q, i, addr, ln, flags, nxt=0):
        return bytes([6 | (dev << 7), q, i, 1]) + struct.pack("<I", addr)[:3] + \
            struct.pack("<I", ln)[:3] + bytes([flags, nxt])

    def poke(gpa, data):
        return bytes([4]) + struct.pack("<I", gpa)[:3] + bytes([len(data) - 1]) + data

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


def main():
    out = sys.argv[1]
    for target, seeds in (("fuzz_virtqueue", vq_seeds()), ("fuzz_pci_config", pci_seeds()),
                          ("fuzz_virtio_pci", vp_seeds()), ("fuzz_iommu", iommu_seeds())):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
