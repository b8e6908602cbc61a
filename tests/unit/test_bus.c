/* bus: interval lookup, overlap rejection, frozen bus. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus.h"

static uint64_t rd(void *o, uint64_t off, unsigned size)
{
	(void)o;
	return off + size;
}
static void wr(void *o, uint64_t off, unsigned size, uint64_t v)
{
	(void)o, (void)off, (void)size, (void)v;
}
static const struct bus_ops ops = { rd, wr };

static void test_lookup(void **state)
{
	(void)state;
	struct bus b;
	bus_init(&b, "pio");
	int a = 1, c = 2, d = 3;
	/* registered out of order: the map must still be sorted */
	assert_int_equal(bus_register(&b, 0x3f8, 8, &ops, &a, "uart"), 0);
	assert_int_equal(bus_register(&b, 0xf4, 4, &ops, &c, "exit"), 0);
	assert_int_equal(bus_register(&b, 0xcf9, 1, &ops, &d, "reset"), 0);
	assert_ptr_equal(bus_find(&b, 0x3f8, 1)->opaque, &a);
	assert_ptr_equal(bus_find(&b, 0x3ff, 1)->opaque, &a);
	assert_ptr_equal(bus_find(&b, 0xf4, 4)->opaque, &c);
	assert_ptr_equal(bus_find(&b, 0xf7, 1)->opaque, &c);
	assert_ptr_equal(bus_find(&b, 0xcf9, 1)->opaque, &d);
	assert_null(bus_find(&b, 0x3f7, 1));
	assert_null(bus_find(&b, 0x400, 1));
	assert_null(bus_find(&b, 0xcf8, 1));
	assert_null(bus_find(&b, 0, 1));
	/* an access that starts inside but runs past the end is not the device's */
	assert_null(bus_find(&b, 0xf6, 4));
	assert_null(bus_find(&b, 0xcf9, 2));
	bus_free(&b);
}

static void test_overlap(void **state)
{
	(void)state;
	struct bus b;
	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0x100, &ops, NULL, "a"), 0);
	assert_int_equal(bus_register(&b, 0x10ff, 1, &ops, NULL, "tail"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf00, 0x101, &ops, NULL, "head"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x1080, 4, &ops, NULL, "inside"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x0, 0x10000, &ops, NULL, "around"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf00, 0x100, &ops, NULL, "below"), 0);
	assert_int_equal(bus_register(&b, 0x1100, 0x100, &ops, NULL, "above"), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0, &ops, NULL, "empty"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, &ops, NULL, "wraps"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 1, &ops, NULL, "last"), 0);
	assert_non_null(bus_find(&b, UINT64_MAX, 1));
	assert_null(bus_find(&b, UINT64_MAX, 2));
	bus_freeze(&b);
	assert_int_equal(bus_register(&b, 0x5000, 1, &ops, NULL, "late"), -EINVAL);
	assert_int_equal(b.nr, 4);
	bus_free(&b);
}

static void test_many(void **state)
{
	(void)state;
	struct bus b;
	bus_init(&b, "mmio");
	/* more than the initial capacity, in reverse order */
	for (int i = 99; i >= 0; i--)
		assert_int_equal(bus_register(&b, (uint64_t)i * 0x100, 0x10, &ops, NULL, "d"), 0);
	for (int i = 0; i < 100; i++) {
		const struct bus_range *r = bus_find(&b, (uint64_t)i * 0x100 + 0xf, 1);
		assert_non_null(r);
		assert_int_equal(r->base, (uint64_t)i * 0x100);
		assert_null(bus_find(&b, (uint64_t)i * 0x100 + 0x10, 1));
	}
	bus_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
