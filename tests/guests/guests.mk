# Tiny test guests: multiboot ELF32 kernels, one plain ELF32, one ELF64, one flat binary.
TG_DIR  := $(BUILD)/tests/guests
TG_MB   := hello exitcode outs mmio multiboot_info smp triple int3 spin halt reset_i8042 reset_cf9 reset_cf9_halt ioapic ioapic_level echo cpuid fwcfg pciscan ecam emulfail flood edu edu_intx count pages
TG_ALL  := $(TG_MB:%=$(TG_DIR)/%.elf) $(TG_DIR)/elf32.elf $(TG_DIR)/elf64.elf $(TG_DIR)/flat16.bin
TG_AS   := $(CC) -c -nostdlib -ffreestanding -Itests/guests

guests: $(TG_ALL)

# Keep every intermediate file: otherwise make deletes them after the run and
# its "rm ..." line would follow the test summary, which must be the last line.
.SECONDARY:

$(TG_DIR)/ioapic_level.o32: tests/guests/ioapic.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(TG_AS) -m32 -DLEVEL -o $@ $<

$(TG_DIR)/edu_intx.o32: tests/guests/edu.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(TG_AS) -m32 -DINTX -o $@ $<

$(TG_DIR)/%.o32: tests/guests/%.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(TG_AS) -m32 -o $@ $<
$(TG_DIR)/%.elf: $(TG_DIR)/%.o32 tests/guests/guest.ld
	ld --no-warn-rwx-segments -m elf_i386 -static -nostdlib --build-id=none -N -T tests/guests/guest.ld -o $@ $<
$(TG_DIR)/elf64.elf: tests/guests/elf64.S
	@mkdir -p $(dir $@)
	$(TG_AS) -m64 -o $(TG_DIR)/elf64.o $<
	ld --no-warn-rwx-segments -m elf_x86_64 -static -nostdlib --build-id=none -N -T tests/guests/guest.ld -o $@ $(TG_DIR)/elf64.o
$(TG_DIR)/flat16.bin: tests/guests/flat16.S
	@mkdir -p $(dir $@)
	$(TG_AS) -m32 -o $(TG_DIR)/flat16.o $<
	ld -m elf_i386 -nostdlib --build-id=none -Ttext=0 --oformat binary -e _start -o $@ $(TG_DIR)/flat16.o
