#!/usr/bin/env python3
"""Where guests run: 'direct' on this machine's /dev/kvm, or 'nested' in the
nested KVM host (scripts/kvm-host). Prints the mode; imported by tests/run.py.

HVMM_KVM_HOST=auto (the default) picks direct only where /dev/kvm works and the
CPU has hardware virtualization (the vmx or svm flag): a KVM without either (PVM,
which runs guests as ordinary processes of the host's kernel) emulates ring 0 and
loses int3, int 0x80 and vmcall on the way, so hvmm's tests run nested there, as
where /dev/kvm is missing. HVMM_KVM_HOST=nested or =direct forces a mode (nested on a machine
with KVM tests the launcher; direct without KVM makes every guest run fail).
Inside the nested host (HVMM_IN_KVM_HOST=1, set by kvm-host) it is always
direct, whatever the caller forced.
"""
import fcntl
import os
import sys

KVM_GET_API_VERSION = 0xAE00


def kvm_usable():
    """/dev/kvm opens read-write and answers KVM_GET_API_VERSION with 12."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, KVM_GET_API_VERSION) == 12
    except OSError:
        return False
    finally:
        os.close(fd)


def cpu_has_virt():
    """The first CPU's flags name VT-x (vmx) or AMD-V (svm)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        pass
    return False


def kvm_mode():
    if os.environ.get("HVMM_IN_KVM_HOST") == "1":
        return "direct"
    want = os.environ.get("HVMM_KVM_HOST", "auto")
    if want not in ("auto", "nested", "direct"):
        raise ValueError(f"HVMM_KVM_HOST={want!r}: use auto, nested or direct")
    if want != "auto":
        return want
    return "direct" if kvm_usable() and cpu_has_virt() else "nested"


if __name__ == "__main__":
    try:
        print(kvm_mode())
    except ValueError as e:
        sys.exit(f"kvm_mode: {e}")
