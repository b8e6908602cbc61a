/*
 * lapic_route: which local APICs a message reaches. Physical destinations
 * compare APIC IDs; logical ones the message's destination against each
 * APIC's LDR in its DFR model (flat: a bit per APIC; cluster: a 4-bit
 * cluster and a 4-bit member mask; x2APIC: a 16-bit cluster and a 16-bit
 * mask); shorthands ignore the destination. Lowest priority delivers to one
 * APIC only. Pure: the caller holds whatever locks make the snapshot of the
 * APICs meaningful.
 */
#include "lapic.h"

bool lapic_msi_decode(uint64_t addr, uint32_t data, struct lapic_msg *m)
{
	if ((addr & 0xfff00000u) != 0xfee00000u || (addr >> 32))
		return false;
	*m = (struct lapic_msg){
		.dest = (uint32_t)(addr >> 12) & 0xff,
		.logical = addr & (1u << 2),
		.dm = (uint8_t)((data >> 8) & 7),
		.vector = (uint8_t)data,
		.level = data & (1u << 15),
		.assert = data & (1u << 14),
	};
	/* an edge message is always an assertion, whatever bit 14 says */
	if (!m->level)
		m->assert = true;
	return true;
}

void lapic_icr_msg(const struct lapic_regs *src, struct lapic_msg *m)
{
	uint32_t lo = src->icr_lo;
	bool x2 = lapic_x2apic(src);
	*m = (struct lapic_msg){
		.dest = x2 ? src->icr_hi : src->icr_hi >> 24,
		.logical = lo & (1u << 11),
		.shorthand = (uint8_t)((lo >> 18) & 3),
		.dm = (uint8_t)((lo >> 8) & 7),
		.vector = (uint8_t)lo,
		.level = lo & (1u << 15),
		.assert = lo & (1u << 14),
		.x2apic_dest = x2,
	};
	if (!m->level)
		m->assert = true;
}

static bool lapic_match_logical(const struct lapic_regs *r, const struct lapic_msg *m)
{
	if (lapic_x2apic(r)) {
		uint32_t dest = m->dest;
		if (!m->x2apic_dest) {
			if (dest == 0xff)
				return true;
			/* an 8-bit cluster message to an x2APIC: cluster in the
			 * high nibble, members in the low one */
			dest = (dest >> 4) << 16 | (dest & 0xf);
		} else if (dest == 0xffffffffu) {
			return true;
		}
		return (dest >> 16) == (r->ldr >> 16) && (dest & r->ldr & 0xffff);
	}
	uint32_t mda = m->dest & 0xff, ldr = r->ldr >> 24;
	if (mda == 0xff)
		return true;
	if ((r->dfr >> 28) == 0xf) /* flat */
		return ldr & mda;
	/* cluster: cluster 15 is the broadcast to every cluster */
	return ((mda >> 4) == 0xf || (mda >> 4) == (ldr >> 4)) && (mda & ldr & 0xf);
}

bool lapic_match_dest(const struct lapic_regs *r, const struct lapic_msg *m)
{
	if (!lapic_hw_enabled(r))
		return false;
	if (m->logical)
		return lapic_match_logical(r, m);
	if (m->x2apic_dest)
		return m->dest == 0xffffffffu || m->dest == lapic_cur_id(r);
	return m->dest == 0xff || m->dest == lapic_cur_id(r);
}

uint64_t lapic_route(struct lapic_regs *const *apics, int n, int self, const struct lapic_msg *m,
		     unsigned *rr)
{
	uint64_t hit = 0;
	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		bool on;
		switch (m->shorthand) {
		case 1:
			on = i == self;
			break;
		case 2:
			on = true;
			break;
		case 3:
			on = i != self;
			break;
		default:
			on = lapic_match_dest(apics[i], m);
		}
		if (on)
			hit |= 1ull << i;
	}
	if (m->dm != LAPIC_DM_LOWEST || !hit || (hit & (hit - 1)) == 0)
		return hit;
	/* Lowest priority: the enabled APIC with the lowest task priority;
	 * among equals, the next one after the last chosen, so a device's
	 * interrupts spread over the CPUs. */
	int best = -1;
	uint32_t best_tpr = 0x100;
	unsigned start = rr ? *rr % (unsigned)n : 0;
	for (int k = 0; k < n; k++) {
		int i = (int)((start + (unsigned)k) % (unsigned)n);
		if (!(hit & (1ull << i)))
			continue;
		uint32_t tpr = lapic_sw_enabled(apics[i]) ? apics[i]->tpr & 0xf0 : 0xff;
		if (tpr < best_tpr) {
			best = i;
			best_tpr = tpr;
		}
	}
	if (best < 0)
		best = __builtin_ctzll(hit);
	if (rr)
		*rr = (unsigned)best + 1;
	return 1ull << best;
}
