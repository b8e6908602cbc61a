# guest/: hvmm's test kernel, a multiboot v1 image (ELF64 with the a.out
# kludge, so QEMU's -kernel takes it too). Included by the top Makefile.
GUEST_CC      ?= gcc
GUEST_OBJCOPY ?= objcopy
GUEST_DIR     := $(BUILD)/guest
GUEST_ELF     := $(GUEST_DIR)/hvmm-guest.elf

# Ring 0 may not touch SSE/x87: the kernel never saves a task's FPU state on
# entry, as most kernels (-mgeneral-regs-only). -fno-tree-loop-distribute-patterns
# keeps memset() from compiling into a call to itself.
GUEST_CFLAGS := -std=c17 -O2 -g -ffreestanding -nostdlib -fno-builtin -mno-red-zone \
	-mgeneral-regs-only -fno-pic -fno-pie -mcmodel=small -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-fcf-protection=none -Wall -Wextra -Werror -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=4096 \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -T guest/linker.ld

GUEST_C_SRCS := $(wildcard guest/*.c guest/user/*.c)
GUEST_S_SRCS := $(wildcard guest/*.S)
GUEST_OBJS   := $(GUEST_S_SRCS:%.S=$(BUILD)/%.o) $(GUEST_C_SRCS:%.c=$(BUILD)/%.o)

guests: $(GUEST_ELF)

$(GUEST_ELF): $(GUEST_OBJS) guest/linker.ld
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

$(filter %.o,$(GUEST_C_SRCS:%.c=$(BUILD)/%.o)): $(BUILD)/guest/%.o: guest/%.c guest/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_S_SRCS:%.S=$(BUILD)/%.o): $(BUILD)/guest/%.o: guest/%.S guest/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

-include $(GUEST_OBJS:.o=.d)
