/*
 * slirp_poll: libslirp's poll flags (SLIRP_POLL_*) to poll(2)'s and back.
 * Shared by the slirp helper and the guest IP stack's host test, which both
 * drive libslirp from a poll() loop. Include after libslirp.h.
 */
#ifndef HVMM_SLIRP_POLL_H
#define HVMM_SLIRP_POLL_H

#include <poll.h>

static inline short slirp_poll_to_events(int slirp_events)
{
	short ev = 0;
	if (slirp_events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (slirp_events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (slirp_events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	return ev;
}

static inline int slirp_poll_from_revents(short rev)
{
	int r = 0;
	if (rev & POLLIN)
		r |= SLIRP_POLL_IN;
	if (rev & POLLOUT)
		r |= SLIRP_POLL_OUT;
	if (rev & POLLPRI)
		r |= SLIRP_POLL_PRI;
	if (rev & (POLLERR | POLLNVAL))
		r |= SLIRP_POLL_ERR;
	if (rev & POLLHUP)
		r |= SLIRP_POLL_HUP;
	return r;
}

#endif
