/*
 * CPUID policy on a hand-built table shaped like KVM_GET_SUPPORTED_CPUID's:
 * names and LEAF[.SUBLEAF]:REG:BIT set/clear exactly one bit, bad input
 * leaves the table unchanged with one error line, templates clear what they
 * document and nothing else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpuid.h"

#define NENT 9
static struct {
	struct kvm_cpuid2 h;
	struct kvm_cpuid_entry2 e[NENT];
} t;

/* Every register all-ones, so a clear shows as exactly one zero bit; leaf 7
 * and 0xd are indexed (subleaf 0 and 1) as KVM reports them. */
static int setup(void **state)
{
	(void)state;
	static const struct { uint32_t fn, idx; bool indexed; } leaves[NENT] = {
		{ 0, 0, false }, { 1, 0, false }, { 7, 0, true }, { 7, 1, true },
		{ 0xd, 0, true }, { 0xd, 1, true }, { 0x80000001, 0, false }, { 0x80000007, 0, false },
		{ 0x8000000a, 0, false },
	};
	memset(&t, 0, sizeof(t));
	t.h.nent = NENT;
	for (int i = 0; i < NENT; i++)
		t.e[i] = (struct kvm_cpuid_entry2){
			.function = leaves[i].fn, .index = leaves[i].idx,
			.flags = leaves[i].indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
			.eax = ~0u, .ebx = ~0u, .ecx = ~0u, .edx = ~0u };
	return 0;
}

static struct kvm_cpuid_entry2 *E(uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(&t.h, fn, idx);
	assert_non_null(e);
	return e;
}

static void mask_ok(const char *spec)
{
	char err[160] = "";
	if (cpuid_apply_spec(&t.h, spec, false, err, sizeof(err)))
		fail_msg("mask '%s': %s", spec, err);
}

static void test_feature_table(void **state)
{
	(void)state;
	/* spot checks against the SDM / APM */
	static const struct { const char *n; uint32_t l, s; enum cpuid_reg r; unsigned b; } want[] = {
		{ "sse3", 1, 0, CPUID_ECX, 0 },    { "ssse3", 1, 0, CPUID_ECX, 9 },
		{ "fma", 1, 0, CPUID_ECX, 12 },    { "cx16", 1, 0, CPUID_ECX, 13 },
		{ "pcid", 1, 0, CPUID_ECX, 17 },   { "sse4_1", 1, 0, CPUID_ECX, 19 },
		{ "sse4_2", 1, 0, CPUID_ECX, 20 }, { "x2apic", 1, 0, CPUID_ECX, 21 },
		{ "movbe", 1, 0, CPUID_ECX, 22 },  { "popcnt", 1, 0, CPUID_ECX, 23 },
		{ "tsc_deadline", 1, 0, CPUID_ECX, 24 }, { "aes", 1, 0, CPUID_ECX, 25 },
		{ "xsave", 1, 0, CPUID_ECX, 26 },  { "avx", 1, 0, CPUID_ECX, 28 },
		{ "f16c", 1, 0, CPUID_ECX, 29 },   { "rdrand", 1, 0, CPUID_ECX, 30 },
		{ "hypervisor", 1, 0, CPUID_ECX, 31 },
		{ "bmi1", 7, 0, CPUID_EBX, 3 },    { "avx2", 7, 0, CPUID_EBX, 5 },
		{ "smep", 7, 0, CPUID_EBX, 7 },    { "bmi2", 7, 0, CPUID_EBX, 8 },
		{ "erms", 7, 0, CPUID_EBX, 9 },    { "rdseed", 7, 0, CPUID_EBX, 18 },
		{ "adx", 7, 0, CPUID_EBX, 19 },    { "smap", 7, 0, CPUID_EBX, 20 },
		{ "sha", 7, 0, CPUID_EBX, 29 },
		{ "nx", 0x80000001, 0, CPUID_EDX, 20 }, { "pdpe1gb", 0x80000001, 0, CPUID_EDX, 26 },
		{ "rdtscp", 0x80000001, 0, CPUID_EDX, 27 }, { "lm", 0x80000001, 0, CPUID_EDX, 29 },
		{ "invtsc", 0x80000007, 0, CPUID_EDX, 8 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct cpuid_feature *f = cpuid_feature_find(want[i].n);
		if (!f)
			fail_msg("feature %s missing", want[i].n);
		assert_int_equal(f->leaf, want[i].l);
		assert_int_equal(f->subleaf, want[i].s);
		assert_int_equal(f->reg, want[i].r);
		assert_int_equal(f->bit, want[i].b);
	}
	assert_non_null(cpuid_feature_find("AVX2")); /* case-insensitive */
	assert_null(cpuid_feature_find("bogus"));
}

static void test_mask_by_name(void **state)
{
	(void)state;
	mask_ok("xsave");
	assert_int_equal(E(1, 0)->ecx, ~(1u << 26));
	mask_ok("avx2,nx,invtsc");
	assert_int_equal(E(7, 0)->ebx, ~(1u << 5));
	assert_int_equal(E(7, 1)->ebx, ~0u); /* the other subleaf untouched */
	assert_int_equal(E(0x80000001, 0)->edx, ~(1u << 20));
	assert_int_equal(E(0x80000007, 0)->edx, ~(1u << 8));
	assert_int_equal(E(1, 0)->edx, ~0u);
	assert_int_equal(E(0, 0)->eax, ~0u);
}

static void test_set_and_clear_raw(void **state)
{
	(void)state;
	char err[160];
	E(1, 0)->ecx = 0;
	assert_int_equal(cpuid_apply_spec(&t.h, "0x1:ecx:27", true, err, sizeof(err)), 0);
	assert_int_equal(E(1, 0)->ecx, 1u << 27);
	assert_int_equal(cpuid_apply_spec(&t.h, "1:ECX:0,x2apic", true, err, sizeof(err)), 0);
	assert_int_equal(E(1, 0)->ecx, (1u << 27) | (1u << 0) | (1u << 21));
	mask_ok("0x1:ecx:27");
	assert_int_equal(E(1, 0)->ecx, (1u << 0) | (1u << 21));
	mask_ok("7.0:ebx:5,7.1:eax:4,0xd.1:eax:3,0x80000001:edx:31");
	assert_int_equal(E(7, 0)->ebx, ~(1u << 5));
	assert_int_equal(E(7, 1)->eax, ~(1u << 4));
	assert_int_equal(E(0xd, 1)->eax, ~(1u << 3));
	assert_int_equal(E(0xd, 0)->eax, ~0u);
	assert_int_equal(E(0x80000001, 0)->edx, ~(1u << 31));
	/* a non-indexed leaf answers any subleaf, like the CPU */
	mask_ok("1.3:edx:0");
	assert_int_equal(E(1, 0)->edx, ~1u);
	/* setting a set bit / clearing a clear bit is a no-op, not an error */
	mask_ok("1.3:edx:0");
	assert_int_equal(E(1, 0)->edx, ~1u);
}

/* A failing spec: -1, one non-empty line, table byte-for-byte unchanged. */
static void bad(const char *spec, const char *needle)
{
	char err[160] = "";
	__typeof__(t) before = t;
	assert_int_equal(cpuid_apply_spec(&t.h, spec, false, err, sizeof(err)), -1);
	assert_true(err[0] && !strchr(err, '\n'));
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' lacks '%s'", spec, err, needle);
	assert_memory_equal(&before, &t, sizeof(t));
}

static void test_errors(void **state)
{
	(void)state;
	bad("bogus", "unknown CPU feature 'bogus'");
	bad("avx,bogus", "bogus");          /* avx not applied either */
	bad("", "empty");
	bad("avx,", "empty item");
	bad(",avx", "empty item");
	bad("1:ecx", "not a feature name");
	bad("1:ecx:32", "not a feature name");
	bad("1:ecx:-1", "not a feature name");
	bad("1:ecx:x", "not a feature name");
	bad("x:ecx:1", "not a feature name");
	bad("1.:ecx:1", "not a feature name");
	bad("1:ecx:1:2", "not a feature name");
	bad("0x100000000:eax:0", "not a feature name");
	bad("1:esi:1", "register");
	bad(":ecx:1", "not a feature name");
	bad("0x99:eax:1", "does not report that leaf");
	bad("7.2:ebx:0", "does not report that leaf"); /* indexed leaf, missing subleaf */
	bad("avx,0x40000000:eax:0", "0x40000000");
	t.h.nent = 1; /* only leaf 0: named features have no leaf */
	bad("avx2", "avx2 (leaf 0x7.0)");
}

static void test_templates(void **state)
{
	(void)state;
	char err[160];
	__typeof__(t) before = t;
	assert_int_equal(cpuid_apply_template(&t.h, "none", err, sizeof(err)), 0);
	assert_memory_equal(&before, &t, sizeof(t));
	assert_int_equal(cpuid_apply_template(&t.h, "bogus", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown CPU template 'bogus'"));
	assert_memory_equal(&before, &t, sizeof(t));

	assert_int_equal(cpuid_apply_template(&t.h, "no-xsave", err, sizeof(err)), 0);
	uint32_t ecx1 = E(1, 0)->ecx;
	for (int b = 0; b < 32; b++) {
		bool gone = b == 12 || b == 26 || b == 27 || b == 28 || b == 29; /* fma xsave osxsave avx f16c */
		assert_int_equal(!(ecx1 & (1u << b)), gone);
	}
	assert_int_equal(E(7, 0)->ebx & ((1u << 5) | (1u << 16) | (1u << 31)), 0); /* avx2 avx512f/vl */
	assert_true(E(7, 0)->ebx & (1u << 3));      /* bmi1 stays: not XSAVE state */
	assert_int_equal(E(7, 1)->eax & (1u << 4), 0); /* avx_vnni */
	for (uint32_t s = 0; s < 2; s++) {
		struct kvm_cpuid_entry2 *e = E(0xd, s);
		assert_true(!e->eax && !e->ebx && !e->ecx && !e->edx);
	}
	assert_int_equal(E(0x80000001, 0)->edx, ~0u);
	assert_int_equal(E(1, 0)->ecx & (1u << 31), 1u << 31); /* hypervisor stays */

	setup(NULL);
	assert_int_equal(cpuid_apply_template(&t.h, "minimal", err, sizeof(err)), 0);
	assert_int_equal(E(1, 0)->ecx & ((1u << 26) | (1u << 28) | (1u << 22)), 0); /* xsave avx movbe */
	uint32_t keep1 = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 21) |
			 (1u << 23) | (1u << 25) | (1u << 31); /* sse3 ssse3 cx16 sse4 x2apic popcnt aes hv */
	assert_int_equal(E(1, 0)->ecx & keep1, keep1);
	assert_int_equal(E(7, 0)->ebx & ((1u << 3) | (1u << 8) | (1u << 29) | (1u << 18)), 0);
	assert_true(E(7, 0)->ebx & (1u << 7));  /* smep stays */
	assert_true(E(0x80000001, 0)->edx & (1u << 29)); /* lm stays */

	/* a table without leaf 7 or 0xd: templates skip what is not there */
	setup(NULL);
	t.h.nent = 2;
	assert_int_equal(cpuid_apply_template(&t.h, "minimal", err, sizeof(err)), 0);
	assert_int_equal(E(1, 0)->ecx & (1u << 28), 0);
}

/* --nested off (hvmm's default): VMX and SVM cleared, SVM's own leaf zeroed,
 * nothing else touched; on: 0 while either bit is there, -1 without both. */
static void test_nested(void **state)
{
	(void)state;
	assert_int_equal(cpuid_nested(&t.h, true), 0);
	assert_int_equal(cpuid_nested(&t.h, false), 0);
	assert_int_equal(E(1, 0)->ecx, ~(1u << 5));
	assert_int_equal(E(0x80000001, 0)->ecx, ~(1u << 2));
	assert_int_equal(E(0x80000001, 0)->edx, ~0u);
	assert_true(!E(0x8000000a, 0)->eax && !E(0x8000000a, 0)->ebx && !E(0x8000000a, 0)->ecx &&
		    !E(0x8000000a, 0)->edx);
	assert_int_equal(E(7, 0)->ebx, ~0u);
	assert_int_equal(cpuid_nested(&t.h, true), -1);
	/* the names reach them too: --cpuid-mask svm */
	E(0x80000001, 0)->ecx = ~0u;
	mask_ok("svm");
	assert_int_equal(E(0x80000001, 0)->ecx, ~(1u << 2));
	assert_int_equal(cpuid_nested(&t.h, true), -1);
	/* an Intel host: VMX alone is enough */
	E(1, 0)->ecx |= 1u << 5;
	assert_int_equal(cpuid_nested(&t.h, true), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feature_table),
		cmocka_unit_test_setup(test_mask_by_name, setup),
		cmocka_unit_test_setup(test_set_and_clear_raw, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_templates, setup),
		cmocka_unit_test_setup(test_nested, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
