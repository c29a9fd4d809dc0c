#define _GNU_SOURCE
#include "sockaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int v4_is_local(uint32_t be)
{
	uint32_t a = ntohl(be);
	return (a >> 24) == 127 || a == 0;
}

int sa_is_local(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return v4_is_local(a->in4.sin_addr.s_addr);
	const struct in6_addr *x = &a->in6.sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(x) || IN6_IS_ADDR_UNSPECIFIED(x))
		return 1;
	if (IN6_IS_ADDR_V4MAPPED(x)) {
		uint32_t v4;
		memcpy(&v4, &x->s6_addr[12], 4);
		return v4_is_local(v4);
	}
	return 0;
}

void sa_format(const union sa *a, char *addr, size_t addrlen, unsigned *port)
{
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(a->in4.sin_port);
	} else {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, addr, (socklen_t)addrlen);
		if (a->in6.sin6_scope_id && !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
			size_t l = strlen(addr);
			snprintf(addr + l, addrlen - l, "%%%u", a->in6.sin6_scope_id);
		}
		*port = ntohs(a->in6.sin6_port);
	}
}

int sa_is_wildcard(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

unsigned sa_port(const union sa *a)
{
	return a->sa.sa_family == AF_INET ? ntohs(a->in4.sin_port) : ntohs(a->in6.sin6_port);
}

void sa_set_port(union sa *a, unsigned port)
{
	if (a->sa.sa_family == AF_INET)
		a->in4.sin_port = htons((uint16_t)port);
	else
		a->in6.sin6_port = htons((uint16_t)port);
}

int sa_is_v4mapped(const union sa *a)
{
	return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr);
}

int sa_is_v4(const union sa *a)
{
	return a->sa.sa_family == AF_INET || IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr);
}

socklen_t sa_len(const union sa *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

void sa_loopback(union sa *a, int family, int mapped, uint16_t port)
{
	memset(a, 0, sizeof *a);
	if (family == AF_INET) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->in4.sin_port = htons(port);
	} else {
		a->in6.sin6_family = AF_INET6;
		if (mapped) {
			a->in6.sin6_addr.s6_addr[10] = 0xff;
			a->in6.sin6_addr.s6_addr[11] = 0xff;
			a->in6.sin6_addr.s6_addr[12] = 127;
			a->in6.sin6_addr.s6_addr[15] = 1;
		} else {
			a->in6.sin6_addr = in6addr_loopback;
		}
		a->in6.sin6_port = htons(port);
	}
}

enum target proxy_target(const struct sockinfo *si, const union sa *dst, const union sa *local, uint16_t port4, uint16_t port6,
			 union sa *to)
{
	int wildcard = sa_is_wildcard(local);
	int dst_mapped = si->domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr);
	int local_mapped = si->domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&local->in6.sin6_addr);
	if (si->domain == AF_INET) {
		sa_loopback(to, AF_INET, 0, port4);
	} else if (dst_mapped || local_mapped) {
		if (si->v6only || !dst_mapped || !(wildcard || local_mapped))
			return TARGET_LEAVE;
		sa_loopback(to, AF_INET6, 1, port4);
	} else if (!si->v6only && wildcard) {
		sa_loopback(to, AF_INET6, 1, port4);
	} else if (port6) {
		sa_loopback(to, AF_INET6, 0, port6);
	} else {
		return TARGET_NO_V6;
	}
	return TARGET_OK;
}

void loopback_for(union sa *to, const struct sockinfo *si, const union sa *dst, uint16_t port4, uint16_t port6)
{
	int mapped = si->domain == AF_INET6 && (IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr) || !si->v6only);
	if (si->domain == AF_INET || mapped)
		sa_loopback(to, si->domain, mapped, port4);
	else
		sa_loopback(to, AF_INET6, 0, port6);
}
