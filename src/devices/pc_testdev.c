/*
 * pc-testdev: QEMU's ISA test device, which kvm-unit-tests' x86 tests drive
 * (QEMU's run script adds `-device pc-testdev` to every test). Same ports and
 * behaviour as QEMU's, so a test sees one platform on both VMMs:
 *
 *   0xe0-0xe3     a 32-bit scratch register. An access of size s at offset o
 *                 reads or writes bytes [o, o+s) of it, clipped to the
 *                 register (the emulator test checks string and sized port
 *                 I/O against it, realmode its 16-bit forms)
 *   0xe4          "flush page": a 4-byte write of a guest-physical address
 *                 makes KVM drop its mapping of that page, so the guest's
 *                 next access to it takes a fresh nested page fault
 *                 (eventinj uses it to fault in the middle of delivering an
 *                 event). Reads 0
 *   0xe8-0xeb     the same scratch register, byte by byte: a wider access is
 *                 split into byte accesses at consecutive offsets
 *   0x2000-0x2017 interrupt lines: a 1-byte write of v at 0x2000 + n sets ISA
 *                 IRQ/GSI n to (v != 0): IOAPIC pin n, except IRQ 0 → pin 2 as
 *                 everywhere else in hvmm. Reads 0. The ioapic test raises
 *                 and lowers its lines through these
 *   MMIO 0xff000000, 64 KiB: plain memory behind MMIO exits (reads return
 *                 what was written), for tests of instructions KVM has to
 *                 emulate against MMIO
 *
 * Accesses QEMU refuses (an interrupt-line access that is not one byte, a
 * flush that is not four) are dropped here as there: reads give 0.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../irq.h"
#include "../util.h"
#include "devices_priv.h"

struct pc_testdev {
	struct guest_mem *mem;                  /* the pages 0xe4 flushes */
	struct irq_line line[IRQ_IOAPIC_PINS];  /* 0x2000 + n drives pin n's */
	struct bus *pio, *mmio;
	pthread_mutex_t lock;
	uint32_t scratch;
	uint64_t flushes; /* for the unit tests */
	uint8_t iomem[PC_TESTDEV_IOMEM_LEN];
};

uint32_t pc_testdev_scratch_read(uint32_t reg, unsigned offset, unsigned size)
{
	if (offset >= 4 || size == 0)
		return 0;
	if (size > 4 - offset)
		size = 4 - offset; /* clip to the register: the guest can ask for more */
	uint32_t mask = size == 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
	return (reg >> (8 * offset)) & mask;
}

uint32_t pc_testdev_scratch_write(uint32_t reg, unsigned offset, unsigned size, uint64_t value)
{
	if (offset >= 4 || size == 0)
		return reg;
	if (size > 4 - offset)
		size = 4 - offset;
	uint32_t mask = size == 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
	return (reg & ~(mask << (8 * offset))) | (((uint32_t)value & mask) << (8 * offset));
}

int pc_testdev_irq_pin(unsigned line)
{
	if (line >= PC_TESTDEV_IRQ_LINES || line >= IRQ_IOAPIC_PINS)
		return -1;
	return line == 0 ? 2 : (int)line; /* ISA IRQ 0 is wired to pin 2 (MADT override) */
}

static uint64_t pc_testdev_scratch_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pc_testdev *t = opaque;
	pthread_mutex_lock(&t->lock);
	uint32_t v = pc_testdev_scratch_read(t->scratch, (unsigned)offset, size);
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void pc_testdev_scratch_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	pthread_mutex_lock(&t->lock);
	t->scratch = pc_testdev_scratch_write(t->scratch, (unsigned)offset, size, value);
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops pc_testdev_scratch_ops = {
	.read = pc_testdev_scratch_pio_read,
	.write = pc_testdev_scratch_pio_write,
};

/* The byte view: QEMU splits a wide access into single bytes at consecutive
 * offsets; bytes past the register's end read 0 and are dropped on write. */
static uint64_t pc_testdev_byte_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pc_testdev *t = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)pc_testdev_scratch_read(t->scratch, (unsigned)offset + i, 1) << (8 * i);
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void pc_testdev_byte_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		t->scratch = pc_testdev_scratch_write(t->scratch, (unsigned)offset + i, 1,
						      (value >> (8 * i)) & 0xff);
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops pc_testdev_byte_ops = {
	.read = pc_testdev_byte_pio_read,
	.write = pc_testdev_byte_pio_write,
};

static uint64_t pc_testdev_zero_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

/*
 * Make KVM forget its mapping of one guest page. KVM follows the host page
 * tables through MMU notifiers: taking write permission away from the host
 * page and giving it back invalidates the range, so KVM zaps the page's
 * nested-paging entry and the guest's next access refaults it (QEMU does the
 * same with PROT_NONE; read-only keeps the page readable for hvmm's other
 * threads in between). The address is the guest's: only a page wholly in RAM
 * is touched.
 */
static void pc_testdev_flush_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	(void)offset;
	if (size != 4)
		return;
	uint64_t gpa = value & 0xfffff000ull;
	uint8_t *hva = mem_ptr(t->mem, gpa, 0x1000);
	if (!hva)
		return;
	long pg = sysconf(_SC_PAGESIZE);
	if (pg != 0x1000 || ((uintptr_t)hva & 0xfff))
		return;
	mprotect(hva, 0x1000, PROT_READ);
	mprotect(hva, 0x1000, PROT_READ | PROT_WRITE);
	pthread_mutex_lock(&t->lock);
	t->flushes++;
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops pc_testdev_flush_ops = {
	.read = pc_testdev_zero_read,
	.write = pc_testdev_flush_write,
};

static void pc_testdev_irq_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	if (size != 1)
		return;
	int pin = pc_testdev_irq_pin((unsigned)offset);
	if (pin >= 0)
		irq_line_set(&t->line[pin], (value & 0xff) != 0);
}

static const struct bus_ops pc_testdev_irq_ops = {
	.read = pc_testdev_zero_read,
	.write = pc_testdev_irq_write,
};

/* The bus hands us only accesses wholly inside the 64 KiB range, of 1-8 bytes. */
static uint64_t pc_testdev_iomem_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pc_testdev *t = opaque;
	uint64_t v = 0;
	if (size > 8 || offset > PC_TESTDEV_IOMEM_LEN - size)
		return 0;
	pthread_mutex_lock(&t->lock);
	memcpy(&v, t->iomem + offset, size);
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void pc_testdev_iomem_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	if (size > 8 || offset > PC_TESTDEV_IOMEM_LEN - size)
		return;
	pthread_mutex_lock(&t->lock);
	memcpy(t->iomem + offset, &value, size);
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops pc_testdev_iomem_ops = {
	.read = pc_testdev_iomem_read,
	.write = pc_testdev_iomem_write,
};

/* ---- snapshot: the scratch register and the MMIO scratch area (the IRQ
 * lines keep no state here: their levels are the IOAPIC's and PIC's; the
 * flush count is a statistic) ---- */

struct pc_testdev_snap {
	uint32_t scratch;
	uint8_t iomem[PC_TESTDEV_IOMEM_LEN];
};

static int pc_testdev_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct pc_testdev *t = dev;
	(void)err, (void)n;
	pthread_mutex_lock(&t->lock);
	uint32_t scratch = t->scratch;
	snap_put(b, &scratch, sizeof(scratch));
	snap_put(b, t->iomem, sizeof(t->iomem));
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int pc_testdev_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct pc_testdev *t = dev;
	if (devices_snap_version("pc-testdev", version, err, n) < 0)
		return -1;
	/* Read into a copy first: a short payload must leave the device alone. */
	struct pc_testdev_snap *w = malloc(sizeof(*w));
	if (!w) {
		snprintf(err, n, "pc-testdev: out of memory");
		return -1;
	}
	snap_get(c, &w->scratch, sizeof(w->scratch));
	snap_get(c, w->iomem, sizeof(w->iomem));
	if (devices_snap_truncated("pc-testdev", c, err, n) < 0) {
		free(w);
		return -1;
	}
	pthread_mutex_lock(&t->lock);
	t->scratch = w->scratch;
	memcpy(t->iomem, w->iomem, sizeof(t->iomem));
	pthread_mutex_unlock(&t->lock);
	free(w);
	return 0;
}

static void pc_testdev_destroy(void *dev)
{
	struct pc_testdev *t = dev;
	devices_bus_forget(t->pio, t);
	devices_bus_forget(t->mmio, t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int pc_testdev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct pc_testdev *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->mem = env->mem;
	for (unsigned pin = 0; pin < IRQ_IOAPIC_PINS; pin++)
		t->line[pin] = dev_env_line(env, pin);
	t->pio = env->pio;
	t->mmio = env->mmio;
	pthread_mutex_init(&t->lock, NULL);
	int r = bus_register(env->pio, PC_TESTDEV_SCRATCH_PORT, 4, &pc_testdev_scratch_ops, t,
			     "pc-testdev");
	if (!r)
		r = bus_register(env->pio, PC_TESTDEV_FLUSH_PORT, 4, &pc_testdev_flush_ops, t,
				 "pc-testdev flush");
	if (!r)
		r = bus_register(env->pio, PC_TESTDEV_BYTE_PORT, 4, &pc_testdev_byte_ops, t,
				 "pc-testdev bytes");
	if (!r)
		r = bus_register(env->pio, PC_TESTDEV_IRQ_PORT, PC_TESTDEV_IRQ_LINES, &pc_testdev_irq_ops,
				 t, "pc-testdev irq");
	if (!r)
		r = bus_register(env->mmio, PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_LEN, &pc_testdev_iomem_ops,
				 t, "pc-testdev iomem");
	if (r < 0) {
		pc_testdev_destroy(t);
		return r;
	}
	*dev = t;
	return 0;
}

/* Scratch register and MMIO scratch back to zero; the flush count is the
 * host's, kept. */
static void pc_testdev_reset(void *dev)
{
	struct pc_testdev *t = dev;
	pthread_mutex_lock(&t->lock);
	t->scratch = 0;
	memset(t->iomem, 0, sizeof(t->iomem));
	pthread_mutex_unlock(&t->lock);
}

static void pc_testdev_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "flushes", json_object_new_uint64(pc_testdev_flushes(dev)));
}

static int pc_testdev_count(const struct vm_config *cfg)
{
	return cfg->pc_testdev;
}

const struct dev_ops pc_testdev_dev_ops = {
	.name = "pc-testdev",
	.desc = "pc-testdev",
	.count = pc_testdev_count,
	.create = pc_testdev_create,
	.reset = pc_testdev_reset,
	.snap = { .name = "pc-testdev", .version = 1, .save = pc_testdev_snap_save,
		  .load = pc_testdev_snap_load },
	.stats = pc_testdev_stats,
	.destroy = pc_testdev_destroy,
};

uint64_t pc_testdev_flushes(struct pc_testdev *t)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	uint64_t n = t->flushes;
	pthread_mutex_unlock(&t->lock);
	return n;
}
