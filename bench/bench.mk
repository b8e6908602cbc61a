# Benchmarks (bench/run.sh, `make bench`): the raw-KVM lower bound, a wall-time/RSS
# timer, and the bench guests. Included by the top-level Makefile.
BENCH_DIR    := $(BUILD)/bench
# N exits: 200000 on hardware; 20000 in the nested KVM host, where an exit
# costs ~100x more; 2000 under callgrind (instruction counts, not time);
# 20000000 for QEMU TCG, where an OUT costs tens of nanoseconds.
BENCH_NOUTS  := 0 2000 20000 200000 20000000
BENCH_GUESTS := $(BENCH_NOUTS:%=$(BENCH_DIR)/guests/outs_%.elf) \
                $(BENCH_NOUTS:%=$(BENCH_DIR)/guests/cpuid_%.elf)
BENCH_TOOLS  := $(BENCH_DIR)/rawkvm $(BENCH_DIR)/timeit $(BENCH_DIR)/nop

.PHONY: bench-build
bench-build: $(BENCH_TOOLS) $(BENCH_GUESTS)

$(BENCH_DIR)/rawkvm: bench/rawkvm.c
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Static, so that the forked child's pre-exec pages (which count in its
# ru_maxrss) are as few as possible: see docs/benchmarks.md.
$(BENCH_DIR)/timeit: bench/timeit.c
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -static -o $@ $<

$(BENCH_DIR)/nop: bench/nop.S
	@mkdir -p $(dir $@)
	$(CC) -nostdlib -static -o $@ $<

# The test guest tests/guests/outs.S, built for N OUTs and exit value 0x2a.
$(BENCH_DIR)/guests/outs_%.o32: tests/guests/outs.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(CC) -c -nostdlib -ffreestanding -m32 -Itests/guests -DN_OUTS=$* -DEXIT_VALUE=0x2a -o $@ $<
# The same guest with N CPUIDs instead: exits handled inside KVM.
$(BENCH_DIR)/guests/cpuid_%.o32: tests/guests/outs.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(CC) -c -nostdlib -ffreestanding -m32 -Itests/guests -DUSE_CPUID -DN_OUTS=$* -DEXIT_VALUE=0x2a -o $@ $<
$(BENCH_DIR)/guests/%.elf: $(BENCH_DIR)/guests/%.o32 tests/guests/guest.ld
	ld --no-warn-rwx-segments -m elf_i386 -static -nostdlib --build-id=none -N -T tests/guests/guest.ld -o $@ $<

# virtio-blk / virtio-net throughput, hvmm against QEMU (bench/virtio.py).
.PHONY: bench-virtio
bench-virtio: deps all guests
	@python3 bench/virtio.py --build $(BUILD) $(BENCH_VIRTIO_ARGS)

# Live migration of a busy Linux guest, hvmm against QEMU, in the nested KVM
# host (needs root for its network namespaces; bench/migrate.py).
.PHONY: bench-migrate
bench-migrate: deps all
	@scripts/kvm-host -- python3 bench/migrate.py --build $(BUILD) $(BENCH_MIGRATE_ARGS)

# Linux with its own drivers on hvmm, QEMU microvm and QEMU q35 (bench/linux.py).
.PHONY: bench-linux
bench-linux: deps
	@bench/linux.sh $(BENCH_LINUX_ARGS)

# The seccomp filters' price per system call, without KVM (docs/benchmarks.md#seccomp).
$(BENCH_DIR)/seccomp_syscall: bench/seccomp_syscall.c $(BUILD)/libhvmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -Isrc -o $@ $< $(BUILD)/libhvmm.a $(LDLIBS)
bench-build: $(BENCH_DIR)/seccomp_syscall

# Snapshot restore against a cold start (bench/restore.py): the guest spins on
# a flag the bench sets in the snapshot's memory file.
$(BENCH_DIR)/guests/spinflag.o32: tests/guests/spinflag.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(CC) -c -nostdlib -ffreestanding -m32 -Itests/guests -o $@ $<
bench-build: $(BENCH_DIR)/guests/spinflag.elf
.PHONY: bench-restore
bench-restore: deps all bench-build
	@if [ "$$(python3 scripts/kvm_mode.py)" = direct ]; then python3 bench/restore.py --build $(BUILD) $(BENCH_RESTORE_ARGS); \
	else scripts/kvm-host --timeout 1500 -- python3 bench/restore.py --build $(BUILD) $(BENCH_RESTORE_ARGS); fi

# Interrupt latency by path (posted, remapped, KVM's LAPIC, QEMU) and by the
# target vCPU's state (running, ready, halted): bench/irqlat.py. Two CPUs in
# the nested host, so that a spinning target and its sender run at once.
.PHONY: bench-irqlat
bench-irqlat: deps all guests
	@if [ "$$(python3 scripts/kvm_mode.py)" = direct ]; then python3 bench/irqlat.py --build $(BUILD) $(BENCH_IRQLAT_ARGS); \
	else scripts/kvm-host --cpus 2 --timeout 1800 -- python3 bench/irqlat.py --build $(BUILD) $(BENCH_IRQLAT_ARGS); fi

# The same table with Debian's kernel under I/O load (virtio-blk MSI-X,
# O_DIRECT reads): bench/irqlat_linux.py. Linux images first (network).
# One CPU in the nested host: with two, a 2-vCPU Linux guest with KVM's
# in-kernel LAPIC never finished booting, on QEMU+KVM (3 of 3) as on hvmm.
.PHONY: bench-irqlat-linux
bench-irqlat-linux: deps all
	@scripts/linux-images $(BUILD) >/dev/null
	@if [ "$$(python3 scripts/kvm_mode.py)" = direct ]; then python3 bench/irqlat_linux.py --build $(BUILD) $(BENCH_IRQLAT_ARGS); \
	else scripts/kvm-host --mem 4G --timeout 3600 -- python3 bench/irqlat_linux.py --build $(BUILD) $(BENCH_IRQLAT_ARGS); fi
