/* Socket addresses: the union the tracer reads sockaddrs into, formatting,
 * loopback tests, and which of graft's loopback listeners a socket of a
 * given kind is pointed at. Pure: no system calls. */
#ifndef GRAFT_SOCKADDR_H
#define GRAFT_SOCKADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

union sa {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

/* What the tracer learnt about one of the program's sockets. */
struct sockinfo {
	int domain, type, protocol;
	int state; /* TCP_* from TCP_INFO, or -1 */
	int v6only;
};

/* Room for an address as sa_format writes it (with a %scope). */
#define SA_ADDRSTRLEN (INET6_ADDRSTRLEN + 16)

static inline int is_tcp(const struct sockinfo *si)
{
	return si->type == SOCK_STREAM && (si->protocol == IPPROTO_TCP || si->protocol == IPPROTO_MPTCP);
}

/* UDP, ICMP ping and raw IP sockets: what the proxy cannot carry, so egress
 * options are set on the program's socket itself. */
static inline int is_datagram(const struct sockinfo *si)
{
	return (si->domain == AF_INET || si->domain == AF_INET6) && (si->type == SOCK_DGRAM || si->type == SOCK_RAW);
}

/* Loopback and unspecified destinations stay on this host: graft passes them. */
int sa_is_local(const union sa *a);
int sa_is_wildcard(const union sa *a);
/* An IPv4 destination: AF_INET, or AF_INET6 holding a v4-mapped address. */
int sa_is_v4(const union sa *a);
int sa_is_v4mapped(const union sa *a);
unsigned sa_port(const union sa *a);
void sa_set_port(union sa *a, unsigned port);
socklen_t sa_len(const union sa *a);
/* The address as text (into addr, SA_ADDRSTRLEN bytes) and the port. */
void sa_format(const union sa *a, char *addr, size_t addrlen, unsigned *port);
/* 127.0.0.1, ::1 or (mapped) ::ffff:127.0.0.1, with the port. */
void sa_loopback(union sa *a, int family, int mapped, uint16_t port);

/* Where a redirected TCP connect goes, worked out by proxy_target. */
enum target {
	TARGET_OK,    /* `to` holds the listener's address */
	TARGET_LEAVE, /* v4 and v6 do not mix here: the kernel fails it (ENETUNREACH) */
	TARGET_NO_V6, /* an IPv6-only socket, but there is no IPv6 listener */
};

/* Which of graft's listeners (IPv4 port4, IPv6 port6; 0: none) a TCP socket
 * of this kind, bound locally to `local` (wildcard or not), reaches for
 * `dst`. A dual-stack socket goes to the IPv4 listener through
 * ::ffff:127.0.0.1 even for an IPv6 destination: binding it to ::1 would
 * make it IPv6-only for good, which the program could notice later (a
 * reconnect to a v4-mapped address after AF_UNSPEC would fail). */
enum target proxy_target(const struct sockinfo *si, const union sa *dst, const union sa *local, uint16_t port4, uint16_t port6,
			 union sa *to);

/* Which of two loopback ports (IPv4 or IPv6) a socket of this kind reaches
 * for `dst` without a bind of graft's: a dual-stack socket reaches the IPv4
 * one through ::ffff:127.0.0.1. A 0 port in `to`: none here. */
void loopback_for(union sa *to, const struct sockinfo *si, const union sa *dst, uint16_t port4, uint16_t port6);

#endif
