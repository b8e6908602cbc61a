/*
 * CPUID policy. Bit positions are the Intel SDM's (vol. 2A, CPUID) and AMD's
 * APM for the 0x8000000x leaves; names follow Linux's /proc/cpuinfo so a user
 * can copy them from a host's flags line.
 */
#include "cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define F(n, l, s, r, b) { n, l, s, CPUID_##r, b }
static const struct cpuid_feature cpuid_features[] = {
	/* leaf 1 ECX */
	F("sse3", 1, 0, ECX, 0),   F("pclmulqdq", 1, 0, ECX, 1), F("ssse3", 1, 0, ECX, 9),
	F("fma", 1, 0, ECX, 12),   F("cx16", 1, 0, ECX, 13),     F("pcid", 1, 0, ECX, 17),
	F("sse4_1", 1, 0, ECX, 19), F("sse4_2", 1, 0, ECX, 20),  F("x2apic", 1, 0, ECX, 21),
	F("movbe", 1, 0, ECX, 22), F("popcnt", 1, 0, ECX, 23),   F("tsc_deadline", 1, 0, ECX, 24),
	F("aes", 1, 0, ECX, 25),   F("xsave", 1, 0, ECX, 26),    F("osxsave", 1, 0, ECX, 27),
	F("avx", 1, 0, ECX, 28),   F("f16c", 1, 0, ECX, 29),     F("rdrand", 1, 0, ECX, 30),
	F("hypervisor", 1, 0, ECX, 31), F("vmx", 1, 0, ECX, 5),
	/* leaf 1 EDX */
	F("tsc", 1, 0, EDX, 4),    F("pae", 1, 0, EDX, 6),       F("apic", 1, 0, EDX, 9),
	F("sse", 1, 0, EDX, 25),   F("sse2", 1, 0, EDX, 26),     F("htt", 1, 0, EDX, 28),
	/* leaf 7.0 EBX */
	F("fsgsbase", 7, 0, EBX, 0), F("bmi1", 7, 0, EBX, 3),    F("hle", 7, 0, EBX, 4),
	F("avx2", 7, 0, EBX, 5),   F("smep", 7, 0, EBX, 7),      F("bmi2", 7, 0, EBX, 8),
	F("erms", 7, 0, EBX, 9),   F("invpcid", 7, 0, EBX, 10),  F("rtm", 7, 0, EBX, 11),
	F("mpx", 7, 0, EBX, 14),   F("avx512f", 7, 0, EBX, 16),  F("avx512dq", 7, 0, EBX, 17),
	F("rdseed", 7, 0, EBX, 18), F("adx", 7, 0, EBX, 19),     F("smap", 7, 0, EBX, 20),
	F("avx512ifma", 7, 0, EBX, 21), F("clflushopt", 7, 0, EBX, 23), F("clwb", 7, 0, EBX, 24),
	F("avx512pf", 7, 0, EBX, 26), F("avx512er", 7, 0, EBX, 27), F("avx512cd", 7, 0, EBX, 28),
	F("sha", 7, 0, EBX, 29),   F("avx512bw", 7, 0, EBX, 30), F("avx512vl", 7, 0, EBX, 31),
	/* leaf 7.0 ECX */
	F("avx512vbmi", 7, 0, ECX, 1), F("umip", 7, 0, ECX, 2),  F("pku", 7, 0, ECX, 3),
	F("ospke", 7, 0, ECX, 4),  F("avx512_vbmi2", 7, 0, ECX, 6), F("gfni", 7, 0, ECX, 8),
	F("vaes", 7, 0, ECX, 9),   F("vpclmulqdq", 7, 0, ECX, 10), F("avx512_vnni", 7, 0, ECX, 11),
	F("avx512_bitalg", 7, 0, ECX, 12), F("avx512_vpopcntdq", 7, 0, ECX, 14),
	F("la57", 7, 0, ECX, 16),  F("rdpid", 7, 0, ECX, 22),
	/* leaf 7.0 EDX */
	F("avx512_4vnniw", 7, 0, EDX, 2), F("avx512_4fmaps", 7, 0, EDX, 3),
	F("avx512_vp2intersect", 7, 0, EDX, 8), F("amx_bf16", 7, 0, EDX, 22),
	F("avx512_fp16", 7, 0, EDX, 23), F("amx_tile", 7, 0, EDX, 24), F("amx_int8", 7, 0, EDX, 25),
	/* leaf 7.1 EAX */
	F("avx_vnni", 7, 1, EAX, 4), F("avx512_bf16", 7, 1, EAX, 5),
	/* leaf 0xd.1 EAX */
	F("xsaveopt", 0xd, 1, EAX, 0), F("xsavec", 0xd, 1, EAX, 1), F("xsaves", 0xd, 1, EAX, 3),
	/* leaf 0x80000001 ECX / EDX */
	F("lahf_lm", 0x80000001, 0, ECX, 0), F("svm", 0x80000001, 0, ECX, 2), F("abm", 0x80000001, 0, ECX, 5),
	F("nx", 0x80000001, 0, EDX, 20), F("pdpe1gb", 0x80000001, 0, EDX, 26),
	F("rdtscp", 0x80000001, 0, EDX, 27), F("lm", 0x80000001, 0, EDX, 29),
	/* leaf 0x80000007 EDX */
	F("invtsc", 0x80000007, 0, EDX, 8),
};
#undef F

static const char *const cpuid_reg_names[] = { "eax", "ebx", "ecx", "edx" };

const struct cpuid_feature *cpuid_feature_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cpuid_features) / sizeof(cpuid_features[0]); i++)
		if (strcasecmp(cpuid_features[i].name, name) == 0)
			return &cpuid_features[i];
	return NULL;
}

struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		/* a leaf that ignores ECX answers every subleaf, as the CPU does */
		if (e->function == leaf &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == subleaf))
			return e;
	}
	return NULL;
}

static uint32_t *cpuid_reg_ptr(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case CPUID_EAX: return &e->eax;
	case CPUID_EBX: return &e->ebx;
	case CPUID_ECX: return &e->ecx;
	default: return &e->edx;
	}
}

static int cpuid_err(char *err, size_t errlen, const char *fmt, const char *item)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, item);
	return -1;
}

/* One strict unsigned number (C syntax: 7, 0xd); false on junk or overflow. */
static bool cpuid_num(const char *s, size_t len, uint32_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof(buf) || s[0] == '-' || s[0] == '+')
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Resolve one item (a name or LEAF[.SUBLEAF]:REG:BIT) into f; 0 or -1 + err. */
static int cpuid_parse_item(const char *item, struct cpuid_feature *f, char *err, size_t errlen)
{
	const char *c1 = strchr(item, ':');
	if (!c1) {
		const struct cpuid_feature *named = cpuid_feature_find(item);
		if (!named)
			return cpuid_err(err, errlen, "unknown CPU feature '%s'", item);
		*f = *named;
		return 0;
	}
	const char *c2 = strchr(c1 + 1, ':');
	const char *dot = memchr(item, '.', (size_t)(c1 - item));
	uint32_t bit;
	f->name = NULL;
	f->subleaf = 0;
	if (!c2 || strchr(c2 + 1, ':') ||
	    !cpuid_num(item, (size_t)((dot ? dot : c1) - item), &f->leaf) ||
	    (dot && !cpuid_num(dot + 1, (size_t)(c1 - dot - 1), &f->subleaf)) ||
	    !cpuid_num(c2 + 1, strlen(c2 + 1), &bit) || bit > 31)
		return cpuid_err(err, errlen, "'%s' is not a feature name or LEAF[.SUBLEAF]:REG:BIT "
					      "(e.g. 0x1:ecx:27, 7.0:ebx:5)", item);
	size_t rlen = (size_t)(c2 - c1 - 1);
	size_t r;
	for (r = 0; r < 4; r++)
		if (rlen == 3 && strncasecmp(c1 + 1, cpuid_reg_names[r], 3) == 0)
			break;
	if (r == 4)
		return cpuid_err(err, errlen, "'%s': the register must be eax, ebx, ecx or edx", item);
	f->reg = (enum cpuid_reg)r;
	f->bit = (uint8_t)bit;
	return 0;
}

int cpuid_apply_spec(struct kvm_cpuid2 *c, const char *spec, bool set, char *err, size_t errlen)
{
	if (!spec || !*spec)
		return cpuid_err(err, errlen, "empty CPUID spec%s", "");
	/* Two passes: check every item first so a bad one leaves c untouched. */
	for (int apply = 0; apply < 2; apply++) {
		const char *p = spec;
		for (;;) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			char item[64];
			if (len == 0)
				return cpuid_err(err, errlen, "empty item in CPUID spec '%s'", spec);
			if (len >= sizeof(item)) {
				snprintf(item, sizeof(item), "%.*s...", (int)sizeof(item) - 4, p);
				return cpuid_err(err, errlen, "CPUID spec item too long: '%s'", item);
			}
			memcpy(item, p, len);
			item[len] = '\0';
			struct cpuid_feature f;
			if (cpuid_parse_item(item, &f, err, errlen) < 0)
				return -1;
			struct kvm_cpuid_entry2 *e = cpuid_entry(c, f.leaf, f.subleaf);
			if (!e) {
				char where[96];
				snprintf(where, sizeof(where), "%s (leaf 0x%x.%u)", item, f.leaf, f.subleaf);
				return cpuid_err(err, errlen,
						 "%s: this host's KVM does not report that leaf", where);
			}
			if (apply) {
				uint32_t *reg = cpuid_reg_ptr(e, f.reg);
				*reg = set ? (*reg | (1u << f.bit)) : (*reg & ~(1u << f.bit));
			}
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	return 0;
}

/* Clear each named feature whose leaf exists: a missing leaf means the guest
 * could not see the feature anyway, so templates are not host-specific. */
static void cpuid_clear_all(struct kvm_cpuid2 *c, const char *const *names)
{
	for (; *names; names++) {
		const struct cpuid_feature *f = cpuid_feature_find(*names);
		struct kvm_cpuid_entry2 *e = f ? cpuid_entry(c, f->leaf, f->subleaf) : NULL;
		if (e)
			*cpuid_reg_ptr(e, f->reg) &= ~(1u << f->bit);
	}
}

/* Everything whose state lives in an XSAVE area (YMM/ZMM/tiles) or that is
 * VEX/EVEX-encoded: without XSAVE the OS cannot enable it, and a guest that
 * trusted the bit would take #UD. */
static const char *const cpuid_xsave_dependents[] = {
	"xsave", "osxsave", "avx", "avx2", "fma", "f16c", "vaes", "vpclmulqdq",
	"avx512f", "avx512dq", "avx512ifma", "avx512pf", "avx512er", "avx512cd", "avx512bw",
	"avx512vl", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg",
	"avx512_vpopcntdq", "avx512_4vnniw", "avx512_4fmaps", "avx512_vp2intersect",
	"avx512_fp16", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_tile", "amx_int8",
	NULL,
};

/* minimal, beyond no-xsave: features that differ between CPU generations or
 * vendors still in service, so an image tested under `minimal` runs on any
 * x86-64-v2 host (Nehalem / Bulldozer and later). */
static const char *const cpuid_minimal_extra[] = {
	"movbe", "bmi1", "bmi2", "adx", "abm", /* x86-64-v3 (Haswell+, Excavator+) */
	"hle", "rtm",                           /* TSX: withdrawn by microcode on many parts */
	"mpx",                                  /* dropped from Ice Lake on */
	"sha", "rdseed", "clflushopt", "clwb",  /* Goldmont/Skylake+ */
	"pku", "ospke", "la57", "umip", "rdpid", "gfni", /* recent; la57 changes paging */
	NULL,
};

static void cpuid_no_xsave(struct kvm_cpuid2 *c)
{
	cpuid_clear_all(c, cpuid_xsave_dependents);
	/* Leaf 0xd describes the XSAVE area; with XSAVE off it must say nothing. */
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd)
			c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = c->entries[i].edx = 0;
}

int cpuid_apply_template(struct kvm_cpuid2 *c, const char *name, char *err, size_t errlen)
{
	if (strcmp(name, "none") == 0)
		return 0; /* what KVM supports on this host, unchanged */
	if (strcmp(name, "no-xsave") == 0) {
		cpuid_no_xsave(c);
		return 0;
	}
	if (strcmp(name, "minimal") == 0) {
		cpuid_no_xsave(c);
		cpuid_clear_all(c, cpuid_minimal_extra);
		return 0;
	}
	return cpuid_err(err, errlen, "unknown CPU template '%s' (none|minimal|no-xsave)", name);
}

int cpuid_nested(struct kvm_cpuid2 *c, bool on)
{
	struct kvm_cpuid_entry2 *std = cpuid_entry(c, 1, 0), *ext = cpuid_entry(c, 0x80000001, 0);
	const uint32_t vmx = 1u << 5, svm = 1u << 2;
	if (on)
		return (std && (std->ecx & vmx)) || (ext && (ext->ecx & svm)) ? 0 : -1;
	/* KVM offers SVM/VMX whenever kvm_amd/kvm_intel run with nested=1; a
	 * guest that saw the bit would load its own KVM and run guests at a
	 * level hvmm never asked for (and snapshots would carry nested state). */
	if (std)
		std->ecx &= ~vmx;
	if (ext)
		ext->ecx &= ~svm;
	/* leaf 0x8000000A describes SVM (revision, ASIDs, NPT, ...): without
	 * SVM it must say nothing, as on a CPU without it */
	struct kvm_cpuid_entry2 *f = cpuid_entry(c, 0x8000000a, 0);
	if (f)
		f->eax = f->ebx = f->ecx = f->edx = 0;
	return 0;
}

void cpuid_user_apic(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 1, 0);
	if (e)
		e->ecx |= 1u << 21 | 1u << 24; /* x2APIC, TSC-deadline */
	e = cpuid_entry(c, 0x40000001, 0);
	if (e) {
		/* KVM_FEATURE_PV_EOI 6, PV_UNHALT 7, PV_SEND_IPI 11,
		 * PV_SCHED_YIELD 13, ASYNC_PF_INT 14, MSI_EXT_DEST_ID 15 */
		e->eax &= ~(1u << 6 | 1u << 7 | 1u << 11 | 1u << 13 | 1u << 14 | 1u << 15);
	}
}
