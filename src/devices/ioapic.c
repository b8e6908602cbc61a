/*
 * IOAPIC for the split irqchip: an 82093AA-style, version 0x20 IOAPIC (the
 * kind KVM and QEMU emulate, with the EOI register) whose pins are KVM GSI
 * routes of type MSI. The LAPICs live in KVM; this device owns no LAPIC. It
 * turns each redirection entry into the MSI message the entry describes and
 * gives it to irq.c (irq_route_msi), and delivers a pin by raising its GSI
 * with KVM_IRQ_LINE, which KVM turns into that MSI.
 *
 * Pins are driven with the "asserted" sense (irq_set_line): the polarity bit
 * is kept for the guest to read back but does not invert anything, because
 * every hvmm device reports assertion, not an electrical level.
 *
 * A level pin awaiting its EOI (Remote IRR set) keeps the route it was
 * delivered through until the EOI arrives, even if the guest reprograms its
 * destination or vector meanwhile: KVM asks hvmm for an EOI (the
 * KVM_EXIT_IOAPIC_EOI exit) only for vectors whose level-triggered routes
 * target the EOI-ing vCPU, so moving the route away at once would swallow the
 * EOI of the interrupt already delivered, and the pin would stay blocked for
 * good (kvm-unit-tests' ioapic "self reconfigure" case, an ISR that retargets
 * its own pin). The new route goes in when Remote IRR clears, before the pin
 * can fire again — nothing is delivered on that pin in between anyway.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../iommu.h"
#include "../util.h"
#include "devices_priv.h"

#define IOAPIC_MMIO_LEN 0x1000
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_EOI 0x40

#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_ARB 0x02
#define IOAPIC_REG_REDTBL 0x10

#define IOAPIC_VERSION 0x20

/* redirection entry, low dword */
#define RTE_VECTOR 0x000000ffu
#define RTE_DELMODE_SHIFT 8
#define RTE_DELMODE 0x00000700u
#define RTE_DESTMODE 0x00000800u /* 1: logical */
#define RTE_DELIVS 0x00001000u   /* delivery status: read-only, always idle here */
#define RTE_POLARITY 0x00002000u
#define RTE_REMOTE_IRR 0x00004000u /* read-only */
#define RTE_LEVEL 0x00008000u
#define RTE_MASK 0x00010000u
#define RTE_LO_WRITABLE (RTE_VECTOR | RTE_DELMODE | RTE_DESTMODE | RTE_POLARITY | RTE_LEVEL | RTE_MASK)
/* high dword: destination in bits 31:24 (bits 63:56 of the entry); bits
 * 23:16 (55:48) go out as MSI address bits 11:4, as on Intel's IOxAPICs —
 * which is how a remappable-format entry (bit 48 set, interrupt index in
 * 63:49 and 11) reaches the IOMMU as a remappable MSI (VT-d spec 5.1.5.1). */
#define RTE_HI_DEST_SHIFT 24
#define RTE_HI_EXT_SHIFT 16
#define RTE_HI_WRITABLE 0xffff0000u

/* MSI message (Intel SDM vol. 3, "Message Address/Data Register Format") */
#define MSI_ADDR_BASE 0xfee00000u
#define MSI_ADDR_DEST_SHIFT 12
#define MSI_ADDR_EXT_SHIFT 4
#define MSI_ADDR_DESTMODE_LOGICAL (1u << 2)
#define MSI_DATA_DELMODE_SHIFT 8
#define MSI_DATA_ASSERT (1u << 14)
#define MSI_DATA_LEVEL (1u << 15)

struct ioapic_pin {
	uint32_t lo, hi;   /* the redirection entry as the guest sees it */
	bool line;         /* asserted by the device right now */
	bool routed;       /* the route below has been given to irq.c */
	uint8_t inflight_vector; /* the vector delivered while Remote IRR is set */
	uint64_t msi_addr;  /* the route: the message after interrupt remapping */
	uint32_t msi_data;
	uint64_t ir_addr;   /* the message before remapping, for a fault record */
	int ir_fault;       /* the IOMMU blocks this pin's message (enum iommu_fault) */
	uint64_t delivered; /* deliveries, for tests and statistics */
	uint64_t blocked;   /* interrupts the IOMMU refused */
};

struct ioapic {
	struct dev_msi msi; /* its pins are KVM MSI routes, through the IOMMU */
	int vm_fd;          /* KVM_IRQ_LINE on a pin's GSI; -1: no KVM (tests) */
	struct bus *mmio;
	/*
	 * route_lock serialises redirection-entry writes together with their
	 * irq_route_msi() call, which is made without `lock` held: irq.c calls
	 * into us (ioapic_set_line) and must never wait on a lock that is
	 * held while we wait on irq.c's.
	 */
	pthread_mutex_t route_lock;
	pthread_mutex_t lock;
	uint32_t regsel;
	uint32_t id;
	struct ioapic_pin pin[IRQ_IOAPIC_PINS];
};

/* Without a routing handle (unit tests) a route is only recorded. */
static int ioapic_route(struct ioapic *s, unsigned gsi, uint64_t addr, uint32_t data)
{
	return s->msi.route ? s->msi.route(s->msi.ctx, gsi, addr, data) : 0;
}

static void ioapic_msi(const struct ioapic_pin *p, uint64_t *addr, uint32_t *data)
{
	uint32_t dest = p->hi >> RTE_HI_DEST_SHIFT;
	*addr = MSI_ADDR_BASE | dest << MSI_ADDR_DEST_SHIFT |
		((p->hi >> RTE_HI_EXT_SHIFT) & 0xff) << MSI_ADDR_EXT_SHIFT |
		((p->lo & RTE_DESTMODE) ? MSI_ADDR_DESTMODE_LOGICAL : 0);
	uint32_t delmode = (p->lo & RTE_DELMODE) >> RTE_DELMODE_SHIFT;
	*data = (p->lo & RTE_VECTOR) | delmode << MSI_DATA_DELMODE_SHIFT | MSI_DATA_ASSERT |
		((p->lo & RTE_LEVEL) ? MSI_DATA_LEVEL : 0);
}

/* Fire pin n's GSI. Called with lock held. */
static void ioapic_deliver(struct ioapic *s, unsigned n)
{
	struct ioapic_pin *p = &s->pin[n];
	bool level = p->lo & RTE_LEVEL;
	if (p->ir_fault) {
		/* blocked by interrupt remapping: recorded when raised, as on hardware */
		p->blocked++;
		if (s->msi.fault)
			s->msi.fault(s->msi.ctx, IOMMU_IOAPIC_SID, p->ir_addr, p->ir_fault);
		return;
	}
	p->delivered++;
	if (level) {
		p->lo |= RTE_REMOTE_IRR;
		/* what KVM delivers is the route's message, the one the EOI names */
		p->inflight_vector = p->routed ? (uint8_t)p->msi_data : (uint8_t)p->lo;
	}
	/* KVM_IRQ_LINE on the pin's MSI route, or hvmm's APICs (user irqchip) */
	if (s->msi.fire)
		s->msi.fire(s->msi.ctx, n, !level);
}

/* A level pin that is asserted, unmasked and not awaiting EOI fires. */
static void ioapic_service_level(struct ioapic *s, unsigned n)
{
	struct ioapic_pin *p = &s->pin[n];
	if ((p->lo & RTE_LEVEL) && p->line && !(p->lo & RTE_MASK) && !(p->lo & RTE_REMOTE_IRR))
		ioapic_deliver(s, n);
}

void ioapic_set_line(struct ioapic *s, unsigned pin, bool level)
{
	if (!s || pin >= IRQ_IOAPIC_PINS)
		return;
	pthread_mutex_lock(&s->lock);
	struct ioapic_pin *p = &s->pin[pin];
	bool rising = level && !p->line;
	p->line = level;
	if (p->lo & RTE_LEVEL)
		ioapic_service_level(s, pin);
	else if (rising && !(p->lo & RTE_MASK))
		ioapic_deliver(s, pin); /* a masked edge is lost, as on the 82093AA */
	pthread_mutex_unlock(&s->lock);
}

static void ioapic_reroute(struct ioapic *s, unsigned n);

/*
 * EOI of `vector`: clear Remote IRR of the level pins it was delivered
 * through, put in any route the guest changed meanwhile, then re-deliver a
 * pin that is still asserted. Called with route_lock held, lock not held.
 */
static void ioapic_eoi_routed(struct ioapic *s, unsigned vector)
{
	bool cleared[IRQ_IOAPIC_PINS] = { false };
	pthread_mutex_lock(&s->lock);
	for (unsigned n = 0; n < IRQ_IOAPIC_PINS; n++) {
		struct ioapic_pin *p = &s->pin[n];
		if (!(p->lo & RTE_LEVEL) || !(p->lo & RTE_REMOTE_IRR) ||
		    p->inflight_vector != (vector & 0xff))
			continue;
		p->lo &= ~RTE_REMOTE_IRR;
		cleared[n] = true;
	}
	pthread_mutex_unlock(&s->lock);
	for (unsigned n = 0; n < IRQ_IOAPIC_PINS; n++) {
		if (!cleared[n])
			continue;
		ioapic_reroute(s, n); /* a no-op unless the entry changed while in flight */
		/* still asserted: the device has more to say */
		pthread_mutex_lock(&s->lock);
		ioapic_service_level(s, n);
		pthread_mutex_unlock(&s->lock);
	}
}

void ioapic_reroute_all(struct ioapic *s)
{
	if (!s)
		return;
	for (unsigned n = 0; n < IRQ_IOAPIC_PINS; n++) {
		pthread_mutex_lock(&s->route_lock);
		ioapic_reroute(s, n);
		pthread_mutex_unlock(&s->route_lock);
	}
}

void ioapic_eoi(struct ioapic *s, unsigned vector)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->route_lock);
	ioapic_eoi_routed(s, vector);
	pthread_mutex_unlock(&s->route_lock);
}

uint64_t ioapic_delivered(struct ioapic *s, unsigned pin)
{
	if (!s || pin >= IRQ_IOAPIC_PINS)
		return 0;
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->pin[pin].delivered;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static uint32_t ioapic_reg_read(struct ioapic *s, uint32_t reg)
{
	switch (reg) {
	case IOAPIC_REG_ID:
	case IOAPIC_REG_ARB: /* arbitration ID: the APIC ID after reset */
		return s->id;
	case IOAPIC_REG_VER:
		return (IRQ_IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	}
	if (reg >= IOAPIC_REG_REDTBL && reg < IOAPIC_REG_REDTBL + 2 * IRQ_IOAPIC_PINS) {
		const struct ioapic_pin *p = &s->pin[(reg - IOAPIC_REG_REDTBL) / 2];
		return (reg & 1) ? p->hi : p->lo;
	}
	return 0; /* unknown register: reads as zero */
}

/* Write IOWIN. Called with route_lock held and lock NOT held. */
static void ioapic_reg_write(struct ioapic *s, uint32_t value)
{
	pthread_mutex_lock(&s->lock);
	uint32_t reg = s->regsel;
	if (reg == IOAPIC_REG_ID) {
		s->id = value & 0x0f000000u; /* 4-bit APIC ID in bits 27:24 */
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (reg < IOAPIC_REG_REDTBL || reg >= IOAPIC_REG_REDTBL + 2 * IRQ_IOAPIC_PINS) {
		pthread_mutex_unlock(&s->lock); /* VER, ARB, unknown: read-only */
		return;
	}
	unsigned n = (reg - IOAPIC_REG_REDTBL) / 2;
	struct ioapic_pin *p = &s->pin[n];
	if (reg & 1) {
		p->hi = value & RTE_HI_WRITABLE;
	} else {
		p->lo = (p->lo & ~RTE_LO_WRITABLE) | (value & RTE_LO_WRITABLE);
		if (!(p->lo & RTE_LEVEL))
			p->lo &= ~RTE_REMOTE_IRR; /* meaningless for edge pins */
	}
	pthread_mutex_unlock(&s->lock);

	ioapic_reroute(s, n);

	/* An unmasked level pin that is already asserted fires now. */
	pthread_mutex_lock(&s->lock);
	ioapic_service_level(s, n);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Give pin n's KVM route the message its entry describes now, unless the
 * pin awaits an EOI (then at the EOI, see the top of this file). Called with
 * route_lock held and lock NOT held.
 */
static void ioapic_reroute(struct ioapic *s, unsigned n)
{
	struct ioapic_pin *p = &s->pin[n];
	uint64_t addr;
	uint32_t data;
	pthread_mutex_lock(&s->lock);
	ioapic_msi(p, &addr, &data);
	/* Each route change makes KVM replace its whole routing table. A masked
	 * pin is never delivered, so its route can wait for the unmask (Linux
	 * masks all 24 pins at boot, then programs an entry in several writes
	 * while it is masked); masking and unmasking alone do not change the
	 * message, so they cost nothing either. A pin awaiting its EOI keeps its
	 * route: ioapic_eoi_routed reroutes. */
	bool wait = (p->lo & RTE_MASK) || (p->routed && (p->lo & RTE_REMOTE_IRR));
	pthread_mutex_unlock(&s->lock);
	if (wait)
		return;
	/* Through the IOMMU's interrupt remapping, if there is one (outside our
	 * lock: it takes its own). The IOAPIC's interrupts are not checked
	 * against the IRTE's source id (see iommu_remap_msi). */
	uint64_t orig = addr;
	int fault = s->msi.remap ? s->msi.remap(s->msi.ctx, IOMMU_IOAPIC_SID, false, &addr, &data) : 0;
	pthread_mutex_lock(&s->lock);
	p->ir_addr = orig;
	p->ir_fault = fault;
	bool reroute = !fault && (!p->routed || addr != p->msi_addr || data != p->msi_data);
	pthread_mutex_unlock(&s->lock);
	if (!reroute)
		return;
	int r = ioapic_route(s, n, addr, data);
	pthread_mutex_lock(&s->lock);
	if (r == 0) {
		p->routed = true;
		p->msi_addr = addr;
		p->msi_data = data;
	} else {
		p->routed = false; /* try again on the next write */
		util_err("IOAPIC pin %u: cannot program its MSI route: error %d", n, -r);
	}
	pthread_mutex_unlock(&s->lock);
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct ioapic *s = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&s->lock);
	if (offset == IOAPIC_REGSEL)
		v = s->regsel;
	else if (offset == IOAPIC_WIN)
		v = ioapic_reg_read(s, s->regsel);
	pthread_mutex_unlock(&s->lock);
	/* the IOAPIC is 32-bit only; a narrower read sees the low bytes */
	return size < 4 ? v & ((1u << (8 * size)) - 1) : v;
}

static void ioapic_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct ioapic *s = opaque;
	(void)size;
	switch (offset) {
	case IOAPIC_REGSEL:
		pthread_mutex_lock(&s->lock);
		s->regsel = (uint32_t)value & 0xff;
		pthread_mutex_unlock(&s->lock);
		break;
	case IOAPIC_WIN:
		pthread_mutex_lock(&s->route_lock);
		ioapic_reg_write(s, (uint32_t)value);
		pthread_mutex_unlock(&s->route_lock);
		break;
	case IOAPIC_EOI:
		pthread_mutex_lock(&s->route_lock);
		ioapic_eoi_routed(s, (uint32_t)value & 0xff);
		pthread_mutex_unlock(&s->route_lock);
		break;
	default:
		break; /* everything else in the page is reserved */
	}
}

/*
 * ---- snapshot ----
 *
 * IOREGSEL, the ID and per pin the redirection entry (Remote IRR, the IRR
 * of a level pin, included), the line's level and, for a pin awaiting its
 * EOI, the vector and route it was delivered through. A pin's other route
 * state is derived: the load recomputes it from the entry through the same
 * path a guest write takes (ioapic_reroute: the IOMMU's remapping, then
 * irq_route_msi). A pin awaiting its EOI gets back the route it was
 * delivered through, since KVM asks for the EOI by that route's vector.
 * Statistics (deliveries, blocked interrupts) are the old process's.
 */
struct ioapic_snap_pin {
	uint32_t lo, hi;
	uint8_t line;
	uint8_t inflight_vector;
	uint8_t inflight_routed; /* the next two are the route KVM had */
	uint8_t pad;
	uint32_t inflight_msi_data;
	uint64_t inflight_msi_addr;
};

struct ioapic_snap {
	uint32_t regsel, id;
	struct ioapic_snap_pin pin[IRQ_IOAPIC_PINS];
};

_Static_assert(sizeof(struct ioapic_snap) == 8 + 24 * IRQ_IOAPIC_PINS,
	       "ioapic payload without implicit padding");

static int ioapic_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct ioapic *s = dev;
	(void)err, (void)n;
	struct ioapic_snap w;
	memset(&w, 0, sizeof(w));
	pthread_mutex_lock(&s->lock);
	w.regsel = s->regsel;
	w.id = s->id;
	for (unsigned i = 0; i < IRQ_IOAPIC_PINS; i++) {
		const struct ioapic_pin *p = &s->pin[i];
		struct ioapic_snap_pin *q = &w.pin[i];
		q->lo = p->lo;
		q->hi = p->hi;
		q->line = p->line;
		if (!(p->lo & RTE_REMOTE_IRR))
			continue; /* the rest only means something while in flight */
		q->inflight_vector = p->inflight_vector;
		if (p->routed) {
			q->inflight_routed = 1;
			q->inflight_msi_addr = p->msi_addr;
			q->inflight_msi_data = p->msi_data;
		}
	}
	pthread_mutex_unlock(&s->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static const char *ioapic_snap_check_pin(const struct ioapic_snap_pin *q)
{
	if (q->lo & ~(RTE_LO_WRITABLE | RTE_REMOTE_IRR))
		return "low dword has read-only bits set";
	if (q->hi & ~RTE_HI_WRITABLE)
		return "high dword has reserved bits set";
	if (!devices_snap_is_bool(q->line) || !devices_snap_is_bool(q->inflight_routed) || q->pad)
		return "a flag is neither 0 nor 1";
	if ((q->lo & RTE_REMOTE_IRR) && !(q->lo & RTE_LEVEL))
		return "Remote IRR on an edge-triggered pin";
	if (!(q->lo & RTE_REMOTE_IRR) &&
	    (q->inflight_vector || q->inflight_routed || q->inflight_msi_addr || q->inflight_msi_data))
		return "an in-flight route without Remote IRR";
	if (!q->inflight_routed && (q->inflight_msi_addr || q->inflight_msi_data))
		return "an in-flight message without its route";
	return NULL;
}

static int ioapic_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct ioapic *s = dev;
	struct ioapic_snap w;
	if (devices_snap_version("ioapic", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("ioapic", c, err, n) < 0)
		return -1;
	if (w.regsel & ~0xffu) {
		snprintf(err, n, "ioapic: IOREGSEL 0x%x out of range", w.regsel);
		return -1;
	}
	if (w.id & ~0x0f000000u) {
		snprintf(err, n, "ioapic: ID 0x%x has reserved bits set", w.id);
		return -1;
	}
	for (unsigned i = 0; i < IRQ_IOAPIC_PINS; i++) {
		const char *why = ioapic_snap_check_pin(&w.pin[i]);
		if (why) {
			snprintf(err, n, "ioapic: pin %u: %s", i, why);
			return -1;
		}
	}
	/* As a guest write of the entries would, but nothing is delivered: an
	 * asserted, unmasked level pin without Remote IRR was blocked by the
	 * IOMMU when saved (else it would have fired), and stays so until the
	 * guest or the IOMMU changes something. */
	pthread_mutex_lock(&s->route_lock);
	pthread_mutex_lock(&s->lock);
	s->regsel = w.regsel;
	s->id = w.id;
	for (unsigned i = 0; i < IRQ_IOAPIC_PINS; i++) {
		const struct ioapic_snap_pin *q = &w.pin[i];
		struct ioapic_pin *p = &s->pin[i];
		p->lo = q->lo;
		p->hi = q->hi;
		p->line = q->line;
		p->inflight_vector = q->inflight_vector;
		p->routed = false;
		p->msi_addr = 0;
		p->msi_data = 0;
		p->ir_addr = 0;
		p->ir_fault = 0;
	}
	pthread_mutex_unlock(&s->lock);
	int r = 0;
	for (unsigned i = 0; i < IRQ_IOAPIC_PINS && r == 0; i++) {
		const struct ioapic_snap_pin *q = &w.pin[i];
		if (!q->inflight_routed) {
			ioapic_reroute(s, i); /* a masked pin waits for its unmask, as ever */
			continue;
		}
		r = ioapic_route(s, i, q->inflight_msi_addr, q->inflight_msi_data);
		if (r == 0) {
			pthread_mutex_lock(&s->lock);
			s->pin[i].routed = true;
			s->pin[i].msi_addr = q->inflight_msi_addr;
			s->pin[i].msi_data = q->inflight_msi_data;
			pthread_mutex_unlock(&s->lock);
		} else {
			snprintf(err, n, "ioapic: pin %u: cannot program its MSI route: error %d", i, -r);
		}
	}
	pthread_mutex_unlock(&s->route_lock);
	return r == 0 ? 0 : -1;
}

static const struct bus_ops ioapic_ops = {
	.read = ioapic_mmio_read,
	.write = ioapic_mmio_write,
};

static void ioapic_destroy(void *dev)
{
	struct ioapic *s = dev;
	devices_bus_forget(s->mmio, s);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->route_lock);
	free(s);
}

/* Reset: every pin masked, nothing latched, ID 0 (a guest that wants the
 * firmware's ID writes it). What a pin's route last was stays: it is KVM's
 * table, rewritten when the guest programs the pin again. */
static void ioapic_regs_init(struct ioapic *s)
{
	s->regsel = 0;
	s->id = 0;
	for (unsigned n = 0; n < IRQ_IOAPIC_PINS; n++)
		s->pin[n] = (struct ioapic_pin){ .lo = RTE_MASK };
}

static int ioapic_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct ioapic *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->msi = env->msi;
	s->vm_fd = env->vm_fd;
	s->mmio = env->mmio;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->route_lock, NULL);
	ioapic_regs_init(s);
	int r = bus_register(env->mmio, IRQ_IOAPIC_ADDR, IOAPIC_MMIO_LEN, &ioapic_ops, s, "ioapic");
	if (r < 0) {
		ioapic_destroy(s);
		return r;
	}
	*dev = s;
	return 0;
}

static void ioapic_reset(void *dev)
{
	struct ioapic *s = dev;
	pthread_mutex_lock(&s->route_lock);
	pthread_mutex_lock(&s->lock);
	ioapic_regs_init(s);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->route_lock);
}

/* Only with the split irqchip: KVM's own IOAPIC serves the kernel mode. */
static int ioapic_count(const struct vm_config *cfg)
{
	return irq_user_ioapic(cfg->irqchip);
}

const struct dev_ops ioapic_dev_ops = {
	.name = "ioapic",
	.desc = "IOAPIC",
	.count = ioapic_count,
	.create = ioapic_create,
	.reset = ioapic_reset,
	.snap = { .name = "ioapic", .version = 1, .save = ioapic_snap_save, .load = ioapic_snap_load },
	.destroy = ioapic_destroy,
};
