#define _GNU_SOURCE
#include "egress.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int egress_equal(const struct egress *a, const struct egress *b)
{
	return a->has_mark == b->has_mark && (!a->has_mark || a->mark == b->mark) && !strcmp(a->iface, b->iface) &&
	       a->has_src4 == b->has_src4 && (!a->has_src4 || !memcmp(&a->src4, &b->src4, sizeof a->src4)) && a->has_src6 == b->has_src6 &&
	       (!a->has_src6 || !memcmp(&a->src6, &b->src6, sizeof a->src6));
}

int egress_source_for(const struct egress *eg, int domain, int dst_is_v4, union sa *out)
{
	memset(out, 0, sizeof *out);
	if (domain == AF_INET) {
		if (!eg->has_src4)
			return -ENETUNREACH;
		out->in4.sin_family = AF_INET;
		out->in4.sin_addr = eg->src4;
		return 0;
	}
	out->in6.sin6_family = AF_INET6;
	if (dst_is_v4) {
		if (!eg->has_src4)
			return -ENETUNREACH;
		out->in6.sin6_addr.s6_addr[10] = 0xff;
		out->in6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->in6.sin6_addr.s6_addr[12], &eg->src4, 4);
		return 0;
	}
	if (!eg->has_src6)
		return -ENETUNREACH;
	out->in6.sin6_addr = eg->src6;
	return 0;
}

/* Mark and interface; see apply_egress. */
static int apply_device(const struct egress *eg, int s, const char **why)
{
	if (eg->has_mark && setsockopt(s, SOL_SOCKET, SO_MARK, &eg->mark, sizeof eg->mark) < 0) {
		*why = "cannot set SO_MARK on the socket";
		return -errno;
	}
	if (eg->iface[0]) {
		char cur[IFNAMSIZ] = "";
		socklen_t l = sizeof cur;
		/* rebinding a bound socket needs CAP_NET_RAW: only bind once */
		if (getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, cur, &l) < 0 || strcmp(cur, eg->iface) != 0) {
			if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, eg->iface, (socklen_t)strlen(eg->iface)) < 0) {
				*why = "cannot bind the socket to the interface";
				return -errno;
			}
		}
	}
	return 0;
}

int apply_egress(const struct egress *eg, int s, int domain, int dst_is_v4, const char **why)
{
	int rc = apply_device(eg, s, why);
	if (rc < 0 || !egress_sources(eg))
		return rc;
	union sa local;
	socklen_t ll = sizeof local;
	if (getsockname(s, &local.sa, &ll) < 0) {
		*why = "getsockname failed";
		return -errno;
	}
	if (!sa_is_wildcard(&local))
		return 0; /* bound to an address already: the program's choice (or ours) */
	union sa src;
	rc = egress_source_for(eg, domain, dst_is_v4, &src);
	if (rc < 0) {
		*why = dst_is_v4 ? "no IPv4 --source address for this destination" : "no IPv6 --source address for this destination";
		return rc;
	}
	if (sa_port(&local) != 0) {
		/* bound to the wildcard address with a port: cannot change now */
		*why = "the socket was bound to the wildcard address before --source could apply";
		return -EADDRNOTAVAIL;
	}
	int off = 0;
	setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &off, sizeof off);
	if (bind(s, &src.sa, sa_len(&src)) < 0) {
		*why = "cannot bind the socket to the --source address";
		return -errno;
	}
	return 0;
}
