# fuzz/: libFuzzer targets for the parsers that take guest input.
# Included by the top Makefile. `make fuzz` builds them into $(BUILD)/fuzz/
# with their generated seed corpora; `make fuzz-run FUZZ_TIME=300` runs each
# for that many seconds. `make test` runs each briefly (tests/cases_fuzz.py).
#
# The targets link hvmm's own sources, rebuilt with clang's coverage and
# sanitizer instrumentation into $(BUILD)/fuzz/obj (never into build/hvmm),
# from an archive, so each binary pulls in only the modules it reaches.
FUZZ_CC    ?= clang
FUZZ_DIR   := $(BUILD)/fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Wall -Wextra -Wshadow \
	-Wstrict-prototypes -Wno-missing-field-initializers -MMD -MP
FUZZ_TIME  ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard fuzz/fuzz_*.c))
# Stress programs (not libFuzzer: two threads race, the interleaving is the input).
FUZZ_RACES := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard fuzz/race_*.c))
FUZZ_LIB_SRCS := $(filter-out src/main.c,$(SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)

# Can this clang link a libFuzzer binary? (Debian: clang + libclang-rt-14-dev.)
FUZZ_OK := $(shell printf 'int LLVMFuzzerTestOneInput(const char *d, long n){(void)d;(void)n;return 0;}' | \
	$(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1 && echo yes)

.PHONY: fuzz fuzz-run
ifeq ($(FUZZ_OK),yes)
fuzz: $(FUZZ_TARGETS) $(FUZZ_RACES) $(FUZZ_DIR)/seeds.stamp

fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
		n=$$(basename $$t); mkdir -p $(FUZZ_DIR)/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_TIME) s"; \
		$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$n- \
			$(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/seeds/$$n || exit 1; \
	done
else
fuzz fuzz-run:
	@echo "!!! fuzz: $(FUZZ_CC) cannot build libFuzzer targets (apt-get install clang libclang-rt-14-dev): fuzz targets NOT built !!!"
endif

# Sources of the code under test: sanitizers and coverage, no libFuzzer main.
# Warnings stay on but not fatal here: they are gcc's job in the real build.
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libhvmm-fuzz.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# Targets that check every chain a model pops and pushes (fuzz_virtio.h's FZ_WRAP_VQ).
FUZZ_WRAP_VQ := -Wl,--wrap=vq_pop,--wrap=vq_push
FUZZ_LDFLAGS_virtio_net := $(FUZZ_WRAP_VQ)
FUZZ_LDFLAGS_virtio_console := $(FUZZ_WRAP_VQ)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_DIR)/libhvmm-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_LDFLAGS_$*) \
		$(FUZZ_DIR)/libhvmm-fuzz.a $(LDLIBS)

$(FUZZ_DIR)/race_%: fuzz/race_%.c $(FUZZ_DIR)/libhvmm-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -Isrc -o $@ $< $(FUZZ_DIR)/libhvmm-fuzz.a -lpthread

# Seeds are generated (well-formed rings and config-space sessions), not committed.
$(FUZZ_DIR)/seeds.stamp: fuzz/gen_seeds.py
	python3 fuzz/gen_seeds.py $(FUZZ_DIR)/seeds
	touch $@

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_TARGETS:=.d) $(FUZZ_RACES:=.d)
