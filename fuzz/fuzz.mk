# fuzz/: libFuzzer targets for the parsers that take guest (or file) input.
# Included by the top Makefile. `make fuzz` builds them into $(BUILD)/fuzz/
# with their generated seed corpora. `make fuzz-run` runs each target over
# its committed corpus (fuzz/corpus/TARGET) and the seeds for FUZZ_RUNS
# executions (10 million), new inputs going to $(BUILD)/fuzz/corpus/TARGET,
# prints executions, exec/s and coverage per target, and fails if any target
# crashed (all of them run first). `make fuzz-merge` minimizes what the runs
# found into fuzz/corpus/ (-merge=1). `make test` runs each briefly
# (tests/cases_fuzz.py).
#
# The targets link hvmm's own sources, rebuilt with clang's coverage and
# sanitizer instrumentation into $(BUILD)/fuzz/obj (never into build/hvmm),
# from an archive, so each binary pulls in only the modules it reaches.
FUZZ_CC    ?= clang
FUZZ_DIR   := $(BUILD)/fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Wall -Wextra -Wshadow \
	-Wstrict-prototypes -Wno-missing-field-initializers -MMD -MP
FUZZ_RUNS  ?= 10000000
# FUZZ_JOBS=N: each target as N libFuzzer processes (-jobs=N -workers=N) of
# FUZZ_RUNS/N executions each, sharing the corpus directory (each reloads
# what the others found): FUZZ_RUNS in all, N cores' worth of speed. Their
# logs are run-TARGET.job-K.log; the summary adds their executions and
# exec/s and gives the largest cov/ft (each process counts its own).
FUZZ_JOBS  ?= 1
# FUZZ_TARGET=fuzz_uart: just that one (fuzz-run, fuzz-merge)
FUZZ_TARGET ?=
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard fuzz/fuzz_*.c))
# Stress programs (not libFuzzer: two threads race, the interleaving is the input).
FUZZ_RACES := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard fuzz/race_*.c))
FUZZ_LIB_SRCS := $(filter-out src/main.c,$(SRCS))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)

# Can this clang link a libFuzzer binary? (Debian: clang + libclang-rt-14-dev.)
FUZZ_OK := $(shell printf 'int LLVMFuzzerTestOneInput(const char *d, long n){(void)d;(void)n;return 0;}' | \
	$(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1 && echo yes)

.PHONY: fuzz fuzz-run fuzz-merge
FUZZ_RUN_TARGETS := $(if $(FUZZ_TARGET),$(FUZZ_DIR)/$(FUZZ_TARGET),$(FUZZ_TARGETS))
ifeq ($(FUZZ_OK),yes)
fuzz: $(FUZZ_TARGETS) $(FUZZ_RACES) $(FUZZ_DIR)/seeds.stamp $(FUZZ_DIR)/seeds-snapshot.stamp

# One log per target ($(FUZZ_DIR)/run-TARGET.log); its summary line takes the
# final "DONE cov: ... ft: ..." line and -print_final_stats' counters. The
# targets are independent rules, so `make -j2 fuzz-run` runs two at a time;
# fuzz-run itself reports last and fails if any target crashed (all run first).
# -timeout=60: at nice 19 on a busy host an input can take seconds of wall
# time; a minute is a hang, not a slow CPU.
FUZZ_RUN_RULES := $(patsubst $(FUZZ_DIR)/%,fuzz-run-%,$(FUZZ_RUN_TARGETS))
.PHONY: $(FUZZ_RUN_RULES)
fuzz-run: $(FUZZ_RUN_RULES)
	@failed=""; for r in $(FUZZ_RUN_RULES); do n=$${r#fuzz-run-}; \
		cat $(FUZZ_DIR)/run-$$n.summary; grep -q ' status 0$$' $(FUZZ_DIR)/run-$$n.summary || failed="$$failed $$n"; \
	done; \
	if [ -n "$$failed" ]; then echo "!!! fuzz-run: crashes in:$$failed (reproducers: $(FUZZ_DIR)/crash-*) !!!"; exit 1; fi

$(FUZZ_RUN_RULES): fuzz-run-%: fuzz
	@n=$*; t=$$(realpath $(FUZZ_DIR)/$$n); mkdir -p $(FUZZ_DIR)/corpus/$$n fuzz/corpus/$$n; \
	log=$(FUZZ_DIR)/run-$$n.log; start=$$(date +%s); rm -f $(FUZZ_DIR)/run-$$n.summary $(FUZZ_DIR)/run-$$n.job-*.log; \
	jobs=$(FUZZ_JOBS); par=""; [ "$$jobs" -gt 1 ] 2>/dev/null && par="-jobs=$$jobs -workers=$$jobs" || jobs=1; \
	echo "fuzz: $$n: $(FUZZ_RUNS) runs in $$jobs process(es) (log $$log)"; \
	d=$$(realpath $(FUZZ_DIR)); jd=$$d/jobs-$$n; rm -rf $$jd; mkdir -p $$jd; \
	(cd $$jd && $$t $$par -runs=$$(( $(FUZZ_RUNS) / jobs )) -timeout=60 -report_slow_units=60 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=$$d/crash-$$n- \
		$$d/corpus/$$n $(CURDIR)/fuzz/corpus/$$n $$d/seeds/$$n) >$$log 2>&1; rc=$$?; \
	logs=$$log; if [ $$jobs -gt 1 ]; then logs=""; for k in $$(seq 0 $$(( jobs - 1 ))); do \
		mv $$jd/fuzz-$$k.log $(FUZZ_DIR)/run-$$n.job-$$k.log 2>/dev/null && logs="$$logs $(FUZZ_DIR)/run-$$n.job-$$k.log"; done; fi; \
	rm -rf $$jd; \
	cov=$$(for l in $$logs; do grep -E '^#[0-9]+[[:space:]]+DONE' $$l | tail -1; done | \
		sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/' | sort -n -k1,1 -k2,2 | tail -1 | sed -E 's/(.*) (.*)/cov: \1 ft: \2/'); \
	execs=$$(cat $$logs | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s += $$1} END {if (NR) print s}'); \
	rate=$$(cat $$logs | sed -n 's/^stat::average_exec_per_sec: *//p' | awk '{s += $$1} END {if (NR) print s}'); \
	echo "fuzz: $$n: $${execs:-?} executions, $${rate:-?} exec/s, $${cov:-cov: ?}, $$(( $$(date +%s) - start )) s, status $$rc" \
		| tee $(FUZZ_DIR)/run-$$n.summary; \
	if [ $$rc -ne 0 ]; then for l in $$logs; do tail -40 $$l; done; fi

# Minimize committed corpus + seeds + what fuzz-run found into fuzz/corpus/TARGET:
# the fewest inputs that reach every edge (set cover, hit counts ignored), so
# the committed corpora stay a few KiB each; the counters' finer features live
# in $(FUZZ_DIR)/corpus, which fuzz-run keeps growing.
fuzz-merge: fuzz
	@for t in $(FUZZ_RUN_TARGETS); do \
		n=$$(basename $$t); rm -rf $(FUZZ_DIR)/merge-$$n; mkdir -p $(FUZZ_DIR)/merge-$$n fuzz/corpus/$$n $(FUZZ_DIR)/corpus/$$n; \
		$$t -set_cover_merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 $(FUZZ_DIR)/merge-$$n fuzz/corpus/$$n \
			$(FUZZ_DIR)/seeds/$$n $(FUZZ_DIR)/corpus/$$n >$(FUZZ_DIR)/merge-$$n.log 2>&1 || \
			{ tail -20 $(FUZZ_DIR)/merge-$$n.log; exit 1; }; \
		rm -rf fuzz/corpus/$$n && mv $(FUZZ_DIR)/merge-$$n fuzz/corpus/$$n; \
		echo "fuzz-merge: $$n: $$(ls fuzz/corpus/$$n | wc -l) inputs, $$(du -sk fuzz/corpus/$$n | cut -f1) KiB"; \
	done
else
fuzz fuzz-run fuzz-merge $(FUZZ_RUN_RULES):
	@echo "!!! fuzz: $(FUZZ_CC) cannot build libFuzzer targets (apt-get install clang libclang-rt-14-dev): fuzz targets NOT built !!!"
endif

# Sources of the code under test: sanitizers and coverage, no libFuzzer main.
# Warnings stay on but not fatal here: they are gcc's job in the real build.
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libhvmm-fuzz.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# Every target: hvmm's error lines only under FUZZ_DEBUG, and ioctls on the
# fake VM's fd -1 failing without a syscall (fuzz_common.h).
FUZZ_WRAP_ERR := -Wl,--wrap=util_err,--wrap=ioctl
# Targets that check every chain a model pops and pushes (fuzz_virtio.h's FZ_WRAP_VQ).
FUZZ_WRAP_VQ := -Wl,--wrap=vq_pop,--wrap=vq_push,--wrap=vq_push_elem
# Targets whose eventfds come from a pool (fuzz_common.h's FZ_EFD_POOL).
FUZZ_WRAP_EFD := -Wl,--wrap=eventfd,--wrap=close,--wrap=write
FUZZ_LDFLAGS_virtio_net := $(FUZZ_WRAP_VQ) $(FUZZ_WRAP_EFD)
FUZZ_LDFLAGS_virtio_console := $(FUZZ_WRAP_VQ) $(FUZZ_WRAP_EFD)
FUZZ_LDFLAGS_virtio_pci := $(FUZZ_WRAP_EFD)
FUZZ_LDFLAGS_pci_config := $(FUZZ_WRAP_EFD)
# fuzz_snapshot: large callocs (virtio-blk's request table) from a cache.
FUZZ_LDFLAGS_snapshot := -Wl,--wrap=calloc,--wrap=free

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_DIR)/libhvmm-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_WRAP_ERR) $(FUZZ_LDFLAGS_$*) \
		$(FUZZ_DIR)/libhvmm-fuzz.a $(LDLIBS)

$(FUZZ_DIR)/race_%: fuzz/race_%.c $(FUZZ_DIR)/libhvmm-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -Isrc -o $@ $< $(FUZZ_DIR)/libhvmm-fuzz.a -lpthread

# Seeds are generated (well-formed rings and config-space sessions), not committed.
$(FUZZ_DIR)/seeds.stamp: fuzz/gen_seeds.py
	python3 fuzz/gen_seeds.py $(FUZZ_DIR)/seeds
	touch $@

# fuzz_snapshot's seeds are device saves: the target writes them itself
# (FUZZ_SNAPSHOT_SEEDS=DIR), from fake VMs fresh and driven, so they follow
# every change of a payload's layout.
$(FUZZ_DIR)/seeds-snapshot.stamp: $(FUZZ_DIR)/fuzz_snapshot
	rm -rf $(FUZZ_DIR)/seeds/fuzz_snapshot
	FUZZ_SNAPSHOT_SEEDS=$(FUZZ_DIR)/seeds/fuzz_snapshot $<
	touch $@

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_TARGETS:=.d) $(FUZZ_RACES:=.d)
