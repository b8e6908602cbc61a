/* Unit tests for fw_cfg: the port interface, the file directory and DMA. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "vm.h"
#include "fake_vm.h"

#define RAM (16ull << 20)
#define NCPUS 3

/* ---- test doubles (other devices in libhvmm.a reference these) ---- */

void irq_set_line(struct vm *vm, unsigned pin, bool level)
{
	(void)vm, (void)pin, (void)level;
}

/* irq.c's senders (split mode: KVM ioctls; no KVM here) */
void irq_pin_fire(struct vm *vm, unsigned pin, bool edge)
{
	(void)vm, (void)pin, (void)edge;
}

int irq_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm, (void)addr, (void)data;
	return 0;
}

int irq_route_msi(struct vm *vm, unsigned pin, uint64_t addr, uint32_t data)
{
	(void)vm, (void)pin, (void)addr, (void)data;
	return 0;
}

/* ---- harness ---- */

static struct vm vm;

static int setup(void **state)
{
	(void)state;
	fake_vm_init(&vm);
	vm.cfg.mem_size = RAM;
	vm.cfg.ncpus = NCPUS;
	assert_int_equal(mem_init(&vm.mem, RAM), 0);
	assert_int_equal(fw_cfg_create(&vm), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	devices_destroy(&vm);
	snapshot_registry_free(&vm);
	/* the state is gone and no range points at it any more */
	const struct bus_range *r = bus_find(&vm.pio, FW_CFG_PORT_SEL, 2);
	assert_non_null(r);
	assert_null(r->opaque);
	r = bus_find(&vm.pio, FW_CFG_PORT_DMA, 8);
	assert_non_null(r);
	assert_null(r->opaque);
	bus_free(&vm.pio);
	bus_free(&vm.mmio);
	mem_free(&vm.mem);
	return 0;
}

static uint64_t in(uint64_t port, unsigned size)
{
	const struct bus_range *r = bus_find(&vm.pio, port, size);
	assert_non_null(r);
	return r->ops->read(r->opaque, port - r->base, size);
}

static void out(uint64_t port, unsigned size, uint64_t v)
{
	const struct bus_range *r = bus_find(&vm.pio, port, size);
	assert_non_null(r);
	r->ops->write(r->opaque, port - r->base, size, v);
}

static void sel(uint16_t key)
{
	out(FW_CFG_PORT_SEL, 2, key);
}

static uint8_t rd(void)
{
	return (uint8_t)in(FW_CFG_PORT_DATA, 1);
}

static void rdn(void *buf, size_t n)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++)
		p[i] = rd();
}

static uint64_t rd_le(unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)rd() << (8 * i);
	return v;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* ---- traditional interface ---- */

static void test_signature(void **state)
{
	(void)state;
	sel(0x0000);
	assert_int_equal(rd(), 'Q');
	assert_int_equal(rd(), 'E');
	assert_int_equal(rd(), 'M');
	assert_int_equal(rd(), 'U');
	assert_int_equal(rd(), 0); /* past the end */
	/* the 16-bit selector is one range with the data port, as in QEMU */
	assert_ptr_equal(bus_find(&vm.pio, FW_CFG_PORT_SEL, 2),
			 bus_find(&vm.pio, FW_CFG_PORT_DATA, 1));
	assert_null(bus_find(&vm.pio, 0x512, 1));
	assert_null(bus_find(&vm.pio, 0x50f, 1));
}

static void test_id_ram_cpus(void **state)
{
	(void)state;
	sel(0x0001);
	assert_int_equal(rd_le(4), 0x3); /* traditional | DMA */
	sel(0x0003);
	assert_int_equal(rd_le(8), RAM);
	sel(0x0005);
	assert_int_equal(rd_le(2), NCPUS);
	assert_int_equal(rd(), 0);
	sel(0x000f);
	assert_int_equal(rd_le(2), NCPUS);
	assert_int_equal(rd(), 0);
}

static void test_selector_reset_and_past_end(void **state)
{
	(void)state;
	sel(0x0000);
	assert_int_equal(rd(), 'Q');
	assert_int_equal(rd(), 'E');
	sel(0x0000); /* same key again: offset back to 0 */
	assert_int_equal(rd(), 'Q');
	sel(0x0001);
	sel(0x0000);
	assert_int_equal(rd(), 'Q');
	/* far past the end: zeros, never anything else */
	for (int i = 0; i < 1000; i++)
		rd();
	assert_int_equal(rd(), 0);
	sel(0x0000);
	assert_int_equal(rd(), 'Q');
	/* unknown keys, the arch range, unused file keys: empty items */
	static const uint16_t empty[] = { 0x0002, 0x0018, 0x0020, 0x3fff, 0x8000, 0xffff };
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		sel(empty[i]);
		for (int j = 0; j < 8; j++)
			assert_int_equal(rd(), 0);
	}
	/* bit 14 (write mode) does not change which item is read */
	sel(0x4000);
	assert_int_equal(rd(), 'Q');
	/* data writes and byte writes to the selector are ignored */
	sel(0x0000);
	out(FW_CFG_PORT_DATA, 1, 0x55);
	out(FW_CFG_PORT_SEL, 1, 0x01);
	assert_int_equal(rd(), 'Q');
	assert_int_equal(rd(), 'E');
	/* a wider read gets the next bytes in order */
	assert_int_equal(in(FW_CFG_PORT_DATA, 1) | (in(FW_CFG_PORT_DATA, 1) << 8), 'M' | ('U' << 8));
	sel(0x0000);
	assert_int_equal(in(FW_CFG_PORT_SEL, 2), 'Q' | ('E' << 8));
}

/* ---- files and the directory ---- */

static void read_dir(uint8_t *buf, size_t n)
{
	sel(0x0019);
	rdn(buf, n);
}

static void test_empty_dir(void **state)
{
	(void)state;
	uint8_t d[8];
	read_dir(d, sizeof(d));
	assert_int_equal(be(d, 4), 0);
	assert_int_equal(be(d + 4, 4), 0); /* nothing after the count */
}

static void test_dir_format_and_content(void **state)
{
	(void)state;
	assert_int_equal(fw_cfg_add_file(&vm, "etc/b", "hello", 5), 0);
	static uint8_t big[0x10203];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(fw_cfg_add_file(&vm, "etc/a", big, sizeof(big)), 0);

	uint8_t d[4 + 2 * 64 + 4];
	read_dir(d, sizeof(d));
	assert_int_equal(be(d, 4), 2);
	const uint8_t *e = d + 4;
	assert_int_equal(be(e, 4), sizeof(big)); /* big-endian size */
	assert_int_equal(e[0], 0x00);
	assert_int_equal(e[1], 0x01);
	assert_int_equal(e[3], 0x03);
	assert_int_equal(be(e + 4, 2), 0x0020); /* "etc/a" sorts first */
	assert_int_equal(e[4], 0x00);
	assert_int_equal(e[5], 0x20);
	assert_int_equal(be(e + 6, 2), 0);
	assert_memory_equal(e + 8, "etc/a", 5);
	for (int i = 5; i < 56; i++)
		assert_int_equal(e[8 + i], 0); /* NUL-padded */
	e += 64;
	assert_int_equal(be(e, 4), 5);
	assert_int_equal(be(e + 4, 2), 0x0021);
	assert_string_equal((const char *)e + 8, "etc/b");
	assert_int_equal(be(d + 4 + 128, 4), 0); /* directory ends there */

	char s[6] = { 0 };
	sel(0x0021);
	rdn(s, 5);
	assert_string_equal(s, "hello");
	assert_int_equal(rd(), 0);
	sel(0x0020);
	for (size_t i = 0; i < sizeof(big); i++)
		if (rd() != big[i])
			fail_msg("byte %zu of etc/a", i);
	assert_int_equal(rd(), 0);
	/* an empty file is listed with size 0 and reads nothing */
	assert_int_equal(fw_cfg_add_file(&vm, "etc/0", NULL, 0), 0);
	read_dir(d, 4 + 64);
	assert_int_equal(be(d, 4), 3);
	assert_int_equal(be(d + 4, 4), 0);
	assert_string_equal((const char *)d + 4 + 8, "etc/0");
	sel(0x0020);
	assert_int_equal(rd(), 0);
}

static void test_many_files_sorted(void **state)
{
	(void)state;
	enum { N = 100 };
	/* added in a scrambled order (37 is coprime to 100) */
	for (unsigned i = 0; i < N; i++) {
		unsigned k = (i * 37) % N;
		char name[32], data[32];
		snprintf(name, sizeof(name), "opt/f%03u", k);
		snprintf(data, sizeof(data), "data of %u", k);
		assert_int_equal(fw_cfg_add_file(&vm, name, data, strlen(data)), 0);
	}
	static uint8_t d[4 + N * 64];
	read_dir(d, sizeof(d));
	assert_int_equal(be(d, 4), N);
	for (unsigned i = 0; i < N; i++) {
		const uint8_t *e = d + 4 + i * 64;
		char name[32], data[32], got[32] = { 0 };
		snprintf(name, sizeof(name), "opt/f%03u", i);
		snprintf(data, sizeof(data), "data of %u", i);
		assert_string_equal((const char *)e + 8, name);
		assert_int_equal(be(e + 4, 2), 0x20 + i);
		assert_int_equal(be(e, 4), strlen(data));
		sel((uint16_t)(0x20 + i));
		rdn(got, strlen(data));
		assert_string_equal(got, data);
	}
}

static void test_add_file_errors(void **state)
{
	(void)state;
	char name[FW_CFG_NAME_MAX + 2];
	memset(name, 'x', sizeof(name));
	name[FW_CFG_NAME_MAX + 1] = 0; /* 56 characters: no room for the NUL */
	assert_int_equal(fw_cfg_add_file(&vm, name, "a", 1), -EINVAL);
	name[FW_CFG_NAME_MAX] = 0; /* 55: fits exactly */
	assert_int_equal(fw_cfg_add_file(&vm, name, "a", 1), 0);
	assert_int_equal(fw_cfg_add_file(&vm, "", "a", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(&vm, NULL, "a", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(&vm, "etc/x", NULL, 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(&vm, "etc/x", "a", 1), 0);
	assert_int_equal(fw_cfg_add_file(&vm, "etc/x", "b", 1), -EEXIST);

	uint8_t d[4 + 2 * 64];
	read_dir(d, sizeof(d));
	assert_int_equal(be(d, 4), 2);
	assert_string_equal((const char *)d + 4 + 8, "etc/x");
	assert_memory_equal(d + 4 + 64 + 8, name, FW_CFG_NAME_MAX);
	assert_int_equal(d[4 + 64 + 8 + 55], 0); /* still NUL-terminated */
	sel(0x0020);
	assert_int_equal(rd(), 'a'); /* the rejected duplicate did not replace it */

	/* no fw_cfg on this VM */
	struct vm bare;
	memset(&bare, 0, sizeof(bare));
	bus_init(&bare.pio, "pio");
	assert_int_equal(fw_cfg_add_file(&bare, "etc/x", "a", 1), -ENODEV);
	assert_int_equal(debug_exit_create(&bare), 0);
	assert_int_equal(fw_cfg_add_file(&bare, "etc/x", "a", 1), -ENODEV);
	bus_free(&bare.pio);
	/* a second fw_cfg on the same VM is refused by the bus */
	assert_int_equal(fw_cfg_create(&vm), -EEXIST);
}

static void test_file_limit(void **state)
{
	(void)state;
	for (unsigned i = 0; i < FW_CFG_MAX_FILES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%05u", i);
		assert_int_equal(fw_cfg_add_file(&vm, name, "", 0), 0);
	}
	assert_int_equal(fw_cfg_add_file(&vm, "z", "", 0), -ENOSPC);
	uint8_t d[4];
	read_dir(d, 4);
	assert_int_equal(be(d, 4), FW_CFG_MAX_FILES);
}

/* ---- DMA ---- */

#define DESC 0x1000ull
#define BUF 0x2000ull

static uint8_t *gmem(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_ptr(&vm.mem, gpa, len);
	assert_non_null(p);
	return p;
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void desc(uint64_t gpa, uint32_t control, uint32_t length, uint64_t addr)
{
	uint8_t *p = gmem(gpa, 16);
	put_be(p, control, 4);
	put_be(p + 4, length, 4);
	put_be(p + 8, addr, 8);
}

/* What a guest's iowrite32be(v, port) delivers: the bytes of v
 * most-significant first, i.e. the swapped value on a little-endian bus. */
static void out_be32(uint64_t port, uint32_t v)
{
	out(port, 4, __builtin_bswap32(v));
}

static void dma(uint64_t desc_gpa)
{
	out_be32(FW_CFG_PORT_DMA, (uint32_t)(desc_gpa >> 32));
	out_be32(FW_CFG_PORT_DMA + 4, (uint32_t)desc_gpa);
}

static uint32_t control_of(uint64_t gpa)
{
	return (uint32_t)be(gmem(gpa, 4), 4);
}

#define CTL_ERROR 0x01
#define CTL_READ 0x02
#define CTL_SKIP 0x04
#define CTL_SELECT 0x08
#define CTL_WRITE 0x10

static void test_dma_signature_register(void **state)
{
	(void)state;
	/* "QEMU CFG" big-endian: the bytes in port order */
	assert_int_equal(in(FW_CFG_PORT_DMA, 4), 'Q' | 'E' << 8 | 'M' << 16 | (uint32_t)'U' << 24);
	assert_int_equal(in(FW_CFG_PORT_DMA + 4, 4), ' ' | 'C' << 8 | 'F' << 16 | (uint32_t)'G' << 24);
	assert_int_equal(in(FW_CFG_PORT_DMA + 7, 1), 'G');
	assert_null(bus_find(&vm.pio, FW_CFG_PORT_DMA + 8, 1));
}

static void test_dma_read(void **state)
{
	(void)state;
	assert_int_equal(fw_cfg_add_file(&vm, "etc/test", "0123456789", 10), 0);
	uint8_t *buf = gmem(BUF, 64);

	/* select + read the signature */
	memset(buf, 0xee, 64);
	desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_READ, 4, BUF);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_memory_equal(buf, "QEMU", 4);
	assert_int_equal(buf[4], 0xee); /* exactly length bytes */

	/* select the file, skip 3, read 4, then the data port continues */
	desc(DESC, (0x0020u << 16) | CTL_SELECT | CTL_SKIP, 3, 0);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	desc(DESC, CTL_READ, 4, BUF);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_memory_equal(buf, "3456", 4);
	assert_int_equal(rd(), '7');

	/* reading past the end zero-fills */
	memset(buf, 0xee, 64);
	desc(DESC, (0x0020u << 16) | CTL_SELECT | CTL_READ, 16, BUF);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_memory_equal(buf, "0123456789\0\0\0\0\0\0", 16);
	assert_int_equal(buf[16], 0xee);

	/* the directory through DMA, as Linux's driver reads it */
	desc(DESC, (0x0019u << 16) | CTL_SELECT | CTL_READ, 4 + 64, BUF);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_int_equal(be(buf, 4), 1);
	assert_int_equal(be(buf + 4, 4), 10);
	assert_int_equal(be(buf + 8, 2), 0x20);
	assert_string_equal((const char *)buf + 12, "etc/test");

	/* a 32-bit descriptor address needs only the low write */
	desc(DESC, (0x0001u << 16) | CTL_SELECT | CTL_READ, 4, BUF);
	out_be32(FW_CFG_PORT_DMA + 4, (uint32_t)DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_int_equal(buf[0], 0x03);

	/* write is refused: every item is read-only */
	desc(DESC, (0x0020u << 16) | CTL_SELECT | CTL_WRITE, 2, BUF);
	dma(DESC);
	assert_int_equal(control_of(DESC), CTL_ERROR);
	sel(0x0020);
	assert_int_equal(rd(), '0');
}

static void test_dma_hostile(void **state)
{
	(void)state;
	uint8_t *buf = gmem(BUF, 16);
	memset(buf, 0xee, 16);

	/* buffer outside RAM, straddling its end, wrapping, in the PCI hole */
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ RAM, 1 },
		{ RAM - 4, 8 },
		{ ~0ull - 1, 4 },
		{ MEM_HOLE_START, 4 },
		{ BUF, 0xffffffffu },
		{ 0xffffffffffff0000ull, 0x10000 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_READ, bad[i].len, bad[i].addr);
		dma(DESC);
		assert_int_equal(control_of(DESC), CTL_ERROR);
	}
	assert_int_equal(buf[0], 0xee); /* nothing written anywhere we could see */

	/* descriptor outside RAM or straddling its end: dropped, no crash */
	dma(RAM);
	dma(RAM - 8);
	dma(0xfffffffffffffff8ull);
	dma(0x123456789abcdef0ull);
	/* ... and the register is back to 0, so a low-only write works again */
	desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_READ, 4, BUF);
	out_be32(FW_CFG_PORT_DMA, 0x12345678);
	out_be32(FW_CFG_PORT_DMA + 4, (uint32_t)DESC);
	/* the high half made it a descriptor far outside RAM: ours is untouched */
	assert_int_equal(control_of(DESC), CTL_SELECT | CTL_READ);
	desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_READ, 4, BUF);
	out_be32(FW_CFG_PORT_DMA + 4, (uint32_t)DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_memory_equal(buf, "QEMU", 4);

	/* odd access sizes and offsets do not trigger anything */
	desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_READ, 4, BUF);
	out(FW_CFG_PORT_DMA + 4, 2, 0x1000);
	out(FW_CFG_PORT_DMA + 5, 1, 0x10);
	out(FW_CFG_PORT_DMA + 2, 4, 0);
	assert_int_equal(control_of(DESC), CTL_SELECT | CTL_READ);

	/* a skip far past the end saturates; reads stay zero */
	desc(DESC, (0x0000u << 16) | CTL_SELECT | CTL_SKIP, 0xffffffffu, 0);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
	assert_int_equal(rd(), 0);
	/* a zero-length read at a bad address is a no-op, not an error */
	desc(DESC, CTL_READ, 0, RAM + 100);
	dma(DESC);
	assert_int_equal(control_of(DESC), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_ram_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selector_reset_and_past_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_format_and_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_files_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_signature_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_hostile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
