/* Unit tests for the --network SPEC parser (net_parse_spec). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/net.h"

static char err[256];

static uint32_t ip(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void bad(const char *spec, const char *why)
{
	struct net_spec ns;
	err[0] = 0;
	assert_int_equal(net_parse_spec(spec, &ns, err, sizeof(err)), -EINVAL);
	if (!strstr(err, why))
		fail_msg("spec '%s': error '%s' lacks '%s'", spec, err, why);
}

static void test_user(void **state)
{
	(void)state;
	struct net_spec ns;
	assert_int_equal(net_parse_spec("user", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.kind, NET_USER);
	assert_int_equal(ns.nr_fwd, 0);
	assert_false(ns.host_loopback); /* closed unless asked for */
	assert_int_equal(net_parse_spec("user,host-loopback=on,hostfwd=tcp::1-:2", &ns, err, sizeof(err)), 0);
	assert_true(ns.host_loopback);
	assert_int_equal(ns.nr_fwd, 1);
	assert_int_equal(net_parse_spec("user,host-loopback=on,host-loopback=off", &ns, err, sizeof(err)), 0);
	assert_false(ns.host_loopback);
}

static void test_hostfwd(void **state)
{
	(void)state;
	struct net_spec ns;
	/* the short form: the host's loopback only (not QEMU's every address),
	 * the DHCP guest address */
	assert_int_equal(net_parse_spec("user,hostfwd=tcp::5555-:22", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.nr_fwd, 1);
	assert_false(ns.fwd[0].udp);
	assert_int_equal(ns.fwd[0].haddr.s_addr, ip("127.0.0.1"));
	/* every address, when asked for */
	assert_int_equal(net_parse_spec("user,hostfwd=tcp:0.0.0.0:5555-:22", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.fwd[0].haddr.s_addr, ip("0.0.0.0"));
	assert_int_equal(net_parse_spec("user,hostfwd=tcp::5555-:22", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.fwd[0].hport, 5555);
	assert_int_equal(ns.fwd[0].gaddr.s_addr, ip("10.0.2.15"));
	assert_int_equal(ns.fwd[0].gport, 22);

	/* full form, repeated, udp, and QEMU's empty protocol meaning tcp */
	assert_int_equal(net_parse_spec("user,hostfwd=tcp:127.0.0.1:8080-10.0.2.16:80,"
					"hostfwd=udp:127.0.0.2:5353-:53,hostfwd=::65535-:1",
					&ns, err, sizeof(err)), 0);
	assert_int_equal(ns.nr_fwd, 3);
	assert_int_equal(ns.fwd[0].haddr.s_addr, ip("127.0.0.1"));
	assert_int_equal(ns.fwd[0].gaddr.s_addr, ip("10.0.2.16"));
	assert_int_equal(ns.fwd[0].hport, 8080);
	assert_int_equal(ns.fwd[0].gport, 80);
	assert_true(ns.fwd[1].udp);
	assert_int_equal(ns.fwd[1].haddr.s_addr, ip("127.0.0.2"));
	assert_int_equal(ns.fwd[1].hport, 5353);
	assert_int_equal(ns.fwd[1].gport, 53);
	assert_false(ns.fwd[2].udp);
	assert_int_equal(ns.fwd[2].hport, 65535);
	assert_int_equal(ns.fwd[2].gport, 1);
}

static void test_tap(void **state)
{
	(void)state;
	struct net_spec ns;
	assert_int_equal(net_parse_spec("tap:hvmmtap0", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.kind, NET_TAP);
	assert_string_equal(ns.ifname, "hvmmtap0");
	assert_int_equal(net_parse_spec("tap:abcdefghijklmno", &ns, err, sizeof(err)), 0); /* 15 */
}

static void test_bad(void **state)
{
	(void)state;
	bad("", "empty spec");
	bad("usr", "not user");
	bad("users", "not user");
	bad("tap", "not user");
	bad("tap:", "interface name");
	bad("tap:abcdefghijklmnop", "longer than 15");
	bad("tap:a/b", "not an interface name");
	bad("tap:a,b", "not an interface name");
	bad("user,", "empty option");
	bad("user,,hostfwd=tcp::1-:2", "empty option");
	bad("user,net=10.0.3.0/24", "unknown user-network option 'net=10.0.3.0/24'");
	bad("user,host-loopback=yes", "host-loopback: 'yes' is not on or off");
	bad("user,host-loopback", "unknown user-network option 'host-loopback'");
	bad("user,hostfwd=", "is not tcp|udp");
	bad("user,hostfwd=tcp::5555", "is not tcp|udp");
	bad("user,hostfwd=tcp:5555-:22", "is not tcp|udp");
	bad("user,hostfwd=sctp::1-:2", "protocol must be tcp or udp");
	bad("user,hostfwd=tcp::0-:22", "bad host port '0'");
	bad("user,hostfwd=tcp::65536-:22", "bad host port '65536'");
	bad("user,hostfwd=tcp::x-:22", "bad host port 'x'");
	bad("user,hostfwd=tcp::-:22", "bad host port ''");
	bad("user,hostfwd=tcp::22-:", "bad guest port ''");
	bad("user,hostfwd=tcp::22-:2a", "bad guest port '2a'");
	bad("user,hostfwd=tcp::22-:-1", "bad guest port '-1'");
	bad("user,hostfwd=tcp:localhost:22-:22", "bad host address 'localhost'");
	bad("user,hostfwd=tcp:1.2.3:22-:22", "bad host address '1.2.3'");
	bad("user,hostfwd=tcp::22-10.0.2.300:22", "bad guest address '10.0.2.300'");
	bad("user,hostfwd=tcp::22-:22,bogus", "unknown user-network option 'bogus'");
	/* the limit on rules */
	char spec[2048] = "user";
	for (int i = 0; i <= NET_MAX_HOSTFWD; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), ",hostfwd=tcp::%d-:80", 1000 + i);
	bad(spec, "at most 16 hostfwd rules");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_hostfwd),
		cmocka_unit_test(test_tap),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
