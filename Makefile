# hvmm — build, test, demo. `make` builds build/hvmm.
CC      ?= gcc
BUILD   ?= build
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wno-missing-field-initializers -MMD -MP
LDLIBS  += -lpthread -ljson-c

SRCS     := $(wildcard src/*.c src/*/*.c)
OBJS     := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(filter-out $(BUILD)/src/main.o,$(OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

.PHONY: all deps test test-asan demo unit guests bench clean
all: $(BUILD)/hvmm

$(BUILD)/hvmm: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libhvmm.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libhvmm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libhvmm.a -lcmocka $(LDLIBS)

unit: $(UNIT_BINS)

# The test kernel (guest/) and the tiny test guests (tests/guests/) bring their own rules.
-include guest/guest.mk
-include tests/guests/guests.mk
-include bench/bench.mk

deps:
	@scripts/deps.sh

demo: deps all guests
	@scripts/demo.sh

test: deps all unit guests
	@tests/run.py --hvmm $(BUILD)/hvmm --build $(BUILD)

# Same suite on an ASan+UBSan build in its own directory.
test-asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all unit guests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/run.py --hvmm build-asan/hvmm --build build-asan

bench: deps all guests
	@bench/run.sh

clean:
	rm -rf $(BUILD) build-asan

-include $(OBJS:.o=.d)
