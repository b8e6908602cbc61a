/* net_tap_open: attach to an existing tap interface through /dev/net/tun. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net.h"

int net_tap_open(const char *ifname)
{
	struct ifreq ifr;
	size_t n = strlen(ifname);
	if (n == 0 || n >= IFNAMSIZ)
		return -EINVAL;
	/* TUNSETIFF on an unknown name would create a new tap (with
	 * CAP_NET_ADMIN). hvmm only attaches to one the user made, so that
	 * networking stays the administrator's decision: refuse a missing one. */
	if (if_nametoindex(ifname) == 0)
		return -ENODEV;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, n + 1);
	/* IFF_NO_PI: no 4-byte packet-info prefix, one read/write = one bare
	 * Ethernet frame, the same contract as the slirp helper's socket. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return -e; /* EINVAL: not a tap (or multi_queue), EPERM: not ours, EBUSY: in use */
	}
	return fd;
}
