/* Helpers for the unit tests: addresses, rules and faults from text. */
#ifndef GRAFT_TEST_HELPERS_H
#define GRAFT_TEST_HELPERS_H

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../boundary.h"
#include "../sockaddr.h"
#include "../table.h"

/* An AF_INET or AF_INET6 sockaddr for `ip` (a v4-mapped text gives an
 * AF_INET6 one) and `port`. */
static inline union sa addr_of(const char *ip, unsigned port)
{
	union sa a;
	memset(&a, 0, sizeof a);
	if (inet_pton(AF_INET, ip, &a.in4.sin_addr) == 1) {
		a.in4.sin_family = AF_INET;
	} else {
		inet_pton(AF_INET6, ip, &a.in6.sin6_addr);
		a.in6.sin6_family = AF_INET6;
	}
	sa_set_port(&a, port);
	return a;
}

/* "addr port" of a sockaddr, in a static buffer (one at a time). */
static inline const char *text_of(const union sa *a)
{
	static char out[SA_ADDRSTRLEN + 8];
	char addr[SA_ADDRSTRLEN];
	unsigned port;
	sa_format(a, addr, sizeof addr, &port);
	snprintf(out, sizeof out, "%s %u", addr, port);
	return out;
}

/* One rule message through the decoder and into a rule; 0 or -1. */
static inline int parse_rule(const char *line, struct rule *r)
{
	union bnd_any m;
	const char *why;
	return bnd_decode(line, strlen(line), &m, sizeof m, &why) == BND_RULE ? table_rule(&m.rule, r) : -1;
}

/* One fault message through the decoder and into a fault; 0 or -1. */
static inline int parse_fault(const char *line, struct fault *f)
{
	union bnd_any m;
	const char *why;
	return bnd_decode(line, strlen(line), &m, sizeof m, &why) == BND_FAULT ? table_fault(&m.fault, f) : -1;
}

#endif
