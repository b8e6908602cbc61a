# hvmm — build, test, demo. `make` builds build/hvmm.
CC      ?= gcc
BUILD   ?= build
# CFLAGS is the user's (optimisation, sanitizers); HVMM_CFLAGS is what the code
# needs whatever CFLAGS says — a command-line CFLAGS= replaces, never drops them.
CFLAGS  ?= -O2 -g
HVMM_CFLAGS := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wno-missing-field-initializers -MMD -MP
LDLIBS  += -lpthread -ljson-c -lz -llzma -lzstd -llz4 -luring -lseccomp -lhttp_parser
# Static: no dynamic loader at start-up and no shared-library pages in the
# footprint (peak RSS 1.9 -> ~1.0 MiB, start -0.1..0.2 ms; docs/benchmarks.md).
# The sanitizer build links dynamically (ASan needs it).
HVMM_LDFLAGS ?= -static

# src/jailer/ is its own program (hvmm-jailer), not part of hvmm.
SRCS     := $(filter-out src/jailer/%,$(wildcard src/*.c src/*/*.c))
OBJS     := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(filter-out $(BUILD)/src/main.o,$(OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

# fuzz, fuzz-run: fuzz/fuzz.mk
.PHONY: all deps test test-asan demo unit guests bench clean kvm-unit-tests
all: $(BUILD)/hvmm

# hvmm-net-slirp: libslirp user networking (--network user) in its own,
# dynamically linked process, started by hvmm from its own directory: Debian
# has no static libslirp, and libslirp is better kept out of the VMM process
# anyway (src/net/net.h). libslirp.h needs no GLib headers, so plain -lslirp
# (pkg-config's slirp.pc would demand glib-2.0's .pc from libglib2.0-dev).
NET_SLIRP_OBJS := $(BUILD)/src/net/helper/slirp_helper.o $(BUILD)/src/net/spec.o $(BUILD)/src/sandbox.o \
	$(BUILD)/src/landlock.o $(BUILD)/src/ratelimit.o $(BUILD)/src/util.o
all: $(BUILD)/hvmm-net-slirp
$(BUILD)/hvmm-net-slirp: $(NET_SLIRP_OBJS)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lslirp -lseccomp
-include $(BUILD)/src/net/helper/slirp_helper.d

# hvmm-jailer: runs as root, sets up a jail and execs hvmm in it (README,
# docs/security.md). Static like hvmm: it copies nothing of its own in.
JAILER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/jailer/*.c))
all: $(BUILD)/hvmm-jailer
$(BUILD)/hvmm-jailer: $(JAILER_OBJS)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) $(HVMM_LDFLAGS) -o $@ $^
-include $(JAILER_OBJS:.o=.d)

$(BUILD)/hvmm: $(OBJS)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) $(HVMM_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libhvmm.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) -c -o $@ $<

# test_blk_faults serves its own FUSE file system (libfuse3) to inject EIO.
UNIT_LIBS_test_blk_faults := -lfuse3
# test_jailer: the jailer's options, hvmm's argv rewritten, the ELF library walk.
JAILER_UNIT_OBJS := $(BUILD)/src/jailer/jail_args.o $(BUILD)/src/jailer/jail_elf.o $(BUILD)/src/jailer/jail_setup.o
UNIT_LIBS_test_jailer := $(JAILER_UNIT_OBJS) -DHVMM_OPTIONS_C='"$(CURDIR)/src/options.c"'
$(BUILD)/tests/unit/test_jailer: $(JAILER_UNIT_OBJS)
# test_api_openapi: reads docs/api.openapi.json at run time (not built in:
# editing the document needs no rebuild to be checked again).
UNIT_LIBS_test_api_openapi := -DHVMM_OPENAPI='"$(CURDIR)/docs/api.openapi.json"'
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libhvmm.a
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -Isrc -o $@ $< $(BUILD)/libhvmm.a -lcmocka $(UNIT_LIBS_$*) $(LDLIBS)

unit: $(UNIT_BINS)

# Host-side test of the guest's network stack against libslirp.
-include tests/unit/netstack.mk

# The test kernel (guest/) and the tiny test guests (tests/guests/) bring their own rules.
-include guest/guest.mk
-include tests/guests/guests.mk
-include bench/bench.mk
-include fuzz/fuzz.mk

deps:
	@scripts/deps.sh

demo: deps all guests
	@scripts/demo.sh

test: deps all unit guests fuzz
	@tests/run.py --hvmm $(BUILD)/hvmm --build $(BUILD)

# Same suite on an ASan+UBSan build in its own directory.
test-asan: deps
	$(MAKE) BUILD=build-asan HVMM_LDFLAGS= CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all unit guests fuzz
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/run.py --hvmm build-asan/hvmm --build build-asan

# kvm-unit-tests into $(BUILD)/kvm-unit-tests (from KVM_UNIT_TESTS=, or a
# kvm-unit-tests-*.tar.gz beside the checkout); `make test` builds it too.
kvm-unit-tests: deps
	@scripts/kvm-unit-tests.sh --out $(BUILD)/kvm-unit-tests

bench: deps all guests
	@bench/run.sh

clean:
	rm -rf $(BUILD) build-asan

-include $(OBJS:.o=.d)
