/* Egress options applied to the program's own sockets (in-place mode for
 * TCP, and always for datagram sockets, which the proxy cannot carry). */
#ifndef GRAFT_EGRESS_H
#define GRAFT_EGRESS_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>

#include "sockaddr.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct egress {
	int has_mark;
	uint32_t mark;
	char iface[IFNAMSIZ]; /* empty: none */
	int has_src4, has_src6;
	struct in_addr src4;
	struct in6_addr src6;
};

static inline int egress_sources(const struct egress *eg)
{
	return eg->has_src4 || eg->has_src6;
}

static inline int egress_any(const struct egress *eg)
{
	return eg->has_mark || eg->iface[0] || egress_sources(eg);
}

int egress_equal(const struct egress *a, const struct egress *b);

/* The source address for a destination, in the socket's own family;
 * -ENETUNREACH when the user gave none of that family (that destination
 * is refused rather than sent from another address). */
int egress_source_for(const struct egress *eg, int domain, int dst_is_v4, union sa *out);

/* Sets mark, interface and source on socket `s` (a duplicate of the
 * program's) for a destination of the given family. Idempotent: a second
 * call on a socket already set up changes nothing. Returns 0 or -errno,
 * with `why` saying what could not be applied. */
int apply_egress(const struct egress *eg, int s, int domain, int dst_is_v4, const char **why);

#endif
