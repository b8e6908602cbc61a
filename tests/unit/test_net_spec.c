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
	assert_false(ns.has_mac);
}

/* mac= on either back end: the guest's address, a unicast one. */
static void test_mac(void **state)
{
	(void)state;
	struct net_spec ns;
	assert_int_equal(net_parse_spec("tap:t0,mac=06:00:AC:10:00:02", &ns, err, sizeof(err)), 0);
	assert_true(ns.has_mac);
	assert_memory_equal(ns.mac, ((uint8_t[]){ 0x06, 0, 0xac, 0x10, 0, 2 }), 6);
	assert_int_equal(net_parse_spec("user,hostfwd=tcp::22-:22,mac=52:54:00:00:00:09", &ns, err, sizeof(err)), 0);
	assert_true(ns.has_mac && ns.mac[5] == 9 && ns.nr_fwd == 1);
	bad("user,mac=01:00:5e:00:00:01", "multicast");
	bad("user,mac=52:54:00:00:00", "is not mac=");
	bad("user,mac=52:54:00:00:00:0g", "is not mac=");
	bad("user,mac=52-54-00-00-00-01", "is not mac=");
	bad("tap:t0,mac=52:54:00:00:00:01:02", "is not mac=");
	bad("user,mac= 2:54:00:00:00:01", "is not mac=");
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
	bad("tap:a,b", "unknown tap option 'b'");
	bad("tap:,tx-bw=1M", "interface name");
	bad("tap:t0,max-conns=4", "unknown tap option 'max-conns=4'"); /* no helper, no sockets */
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

/* tx-/rx- rate limits on both back ends, and the helper's connection cap. */
static void test_limits(void **state)
{
	(void)state;
	struct net_spec ns;
	assert_int_equal(net_parse_spec("user", &ns, err, sizeof(err)), 0);
	assert_false(rl_active(&ns.tx_rl));
	assert_false(rl_active(&ns.rx_rl));
	assert_int_equal(ns.max_conns, NET_MAX_CONNS_DEFAULT);
	assert_int_equal(net_parse_spec("user,tx-bw=10M,tx-pps=1000,rx-bw=512K,rx-pps=50,tx-bw-burst=1G,"
					"rx-pps-burst=7,max-conns=8,hostfwd=tcp::1-:2", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.tx_rl.bytes.size, 10u << 20);
	assert_int_equal(ns.tx_rl.ops.size, 1000);
	assert_int_equal(ns.tx_rl.bytes.burst, 1u << 30);
	assert_int_equal(ns.tx_rl.bytes.refill_ns, 1000000000u);
	assert_int_equal(ns.rx_rl.bytes.size, 512u << 10);
	assert_int_equal(ns.rx_rl.ops.size, 50);
	assert_int_equal(ns.rx_rl.ops.burst, 7);
	assert_int_equal(ns.rx_rl.bytes.burst, 0);
	assert_int_equal(ns.max_conns, 8);
	assert_int_equal(ns.nr_fwd, 1);
	/* one direction only */
	assert_int_equal(net_parse_spec("user,rx-pps=100", &ns, err, sizeof(err)), 0);
	assert_false(rl_active(&ns.tx_rl));
	assert_int_equal(ns.rx_rl.ops.size, 100);
	/* tap: the name, then the same limits */
	assert_int_equal(net_parse_spec("tap:hvmmtap0,tx-bw=1M,rx-pps=10", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.kind, NET_TAP);
	assert_string_equal(ns.ifname, "hvmmtap0");
	assert_int_equal(ns.tx_rl.bytes.size, 1u << 20);
	assert_int_equal(ns.rx_rl.ops.size, 10);
	assert_int_equal(net_parse_spec("user,max-conns=65536", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.max_conns, 65536);

	bad("user,tx-bw=0", "bad value in 'tx-bw=0'");
	bad("user,tx-bw=fast", "bad value in 'tx-bw=fast' (tx-bw and tx-bw-burst take a size");
	bad("user,rx-pps=1.5", "bad value in 'rx-pps=1.5' (rx-bw and rx-bw-burst take a size such as 10M, "
			       "rx-pps and rx-pps-burst a frame count)");
	bad("user,rx-pps=", "bad value in 'rx-pps='");
	bad("user,tx-iops=5", "unknown user-network option 'tx-iops=5'");
	bad("user,bw=1M", "unknown user-network option 'bw=1M'");
	bad("user,tx-bw-burst=1M", "a tx burst needs its rate (tx-bw= or tx-pps=)");
	bad("user,tx-bw=1M,rx-pps-burst=5", "an rx burst needs its rate");
	bad("tap:t0,rx-bw-burst=5", "an rx burst needs its rate");
	bad("tap:t0,tx-pps=x", "bad value in 'tx-pps=x'");
	bad("user,max-conns=0", "max-conns: '0' is not a count 1-65536");
	bad("user,max-conns=65537", "max-conns: '65537' is not a count");
	bad("user,max-conns=", "max-conns: '' is not a count");
	bad("user,max-conns=12345678901234567890", "is not a count");
}

/* keep=SECONDS: off unless given; 0 is off; an hour at most; user only. */
static void test_keep(void **state)
{
	(void)state;
	struct net_spec ns;
	assert_int_equal(net_parse_spec("user,hostfwd=tcp::5000-:22", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.keep_secs, 0);
	assert_int_equal(net_parse_spec("user,hostfwd=tcp::5000-:22,keep=30", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.keep_secs, 30);
	assert_int_equal(ns.nr_fwd, 1);
	assert_int_equal(net_parse_spec("user,keep=3600,max-conns=9", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.keep_secs, 3600);
	assert_int_equal(ns.max_conns, 9);
	assert_int_equal(net_parse_spec("user,keep=0", &ns, err, sizeof(err)), 0);
	assert_int_equal(ns.keep_secs, 0);
	bad("user,keep=3601", "keep: '3601' is not a number of seconds 0-3600");
	bad("user,keep=", "keep: '' is not a number of seconds");
	bad("user,keep=-1", "keep: '-1' is not");
	bad("user,keep=10s", "keep: '10s' is not");
	bad("user,keep=99999999999999999999", "is not a number of seconds");
	bad("user,keep", "unknown user-network option 'keep' (hostfwd=, host-loopback=, max-conns=, keep=");
	bad("tap:t0,keep=10", "unknown tap option 'keep=10'"); /* the kernel keeps a tap's state */
}

/* A kept helper's name, as read back from a state file: exactly the prefix
 * and 32 lower-case hex digits, nothing a path or a shell would see more in. */
static void test_slirp_name(void **state)
{
	(void)state;
	assert_true(net_slirp_name_ok("hvmm-net-slirp-0123456789abcdef0123456789abcdef"));
	assert_false(net_slirp_name_ok(""));
	assert_false(net_slirp_name_ok("hvmm-net-slirp-"));
	assert_false(net_slirp_name_ok("hvmm-net-slirp-0123456789abcdef0123456789abcde"));   /* 31 */
	assert_false(net_slirp_name_ok("hvmm-net-slirp-0123456789abcdef0123456789abcdef0")); /* 33 */
	assert_false(net_slirp_name_ok("hvmm-net-slirp-0123456789ABCDEF0123456789abcdef"));
	assert_false(net_slirp_name_ok("hvmm-net-slirp-0123456789abcdef0123456789abcde/"));
	assert_false(net_slirp_name_ok("other-prefix-xx0123456789abcdef0123456789abcdef"));
	assert_true(strlen("hvmm-net-slirp-0123456789abcdef0123456789abcdef") < NET_SLIRP_NAME_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_hostfwd),
		cmocka_unit_test(test_tap),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_slirp_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
