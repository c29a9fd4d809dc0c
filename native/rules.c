#define _GNU_SOURCE
#include "rules.h"

#include <string.h>

struct dest_key dest_key_of(const union sa *dst)
{
	struct dest_key k;
	memset(&k, 0, sizeof k);
	if (dst->sa.sa_family == AF_INET) {
		memcpy(k.addr, &dst->in4.sin_addr, 4);
		k.family = 4;
	} else if (IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr)) {
		memcpy(k.addr, &dst->in6.sin6_addr.s6_addr[12], 4);
		k.family = 4;
	} else {
		memcpy(k.addr, &dst->in6.sin6_addr, 16);
		k.family = 6;
	}
	k.port = sa_port(dst);
	k.loopback = sa_is_local(dst);
	return k;
}

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

/* Loopback and ports: what every match checks before its addresses. */
static int match_ports(const struct match *m, const struct dest_key *k)
{
	if (k->loopback && !m->explicit_net)
		return 0;
	return k->port >= m->port_lo && k->port <= m->port_hi;
}

int match_covers(const struct match *m, const struct dest_key *k)
{
	if (!match_ports(m, k))
		return 0;
	return !m->family || (m->family == k->family && prefix_match(k->addr, m->net, m->prefix));
}

int rules_match(const struct rule_table *t, const union sa *dst)
{
	struct dest_key k = dest_key_of(dst);
	/* the names map is looked up once, at the first by_name rule */
	const uint64_t *named = NULL;
	int looked_up = 0;
	for (int i = 0; i < t->n; i++) {
		const struct rule *r = &t->rules[i];
		if (!r->by_name) {
			if (match_covers(&r->where, &k))
				return i;
			continue;
		}
		if (!t->names || !match_ports(&r->where, &k))
			continue;
		if (!looked_up) {
			struct byname_key key = byname_key_of(k.family, k.addr);
			named = byname_find(t->names, &key);
			looked_up = 1;
		}
		if (byname_has(named, i))
			return i;
	}
	return -1;
}

void rules_plan_datagrams(struct rule_table *t)
{
	static const struct egress none;
	t->dgram_mode = DGRAM_UNTOUCHED;
	t->dgram_egress = NULL;
	for (int i = 0; i < t->n; i++) {
		const struct rule *r = &t->rules[i];
		const struct egress *e = r->udp == UDP_EGRESS ? &r->eg : &none;
		/* DNS capture is decided per destination too (dns.h) */
		if (r->udp == UDP_REFUSE || r->udp == UDP_DNS || (t->dgram_egress && !egress_equal(t->dgram_egress, e))) {
			t->dgram_mode = DGRAM_PER_DEST;
			t->dgram_egress = NULL;
			return;
		}
		t->dgram_egress = e;
	}
	if (t->dgram_egress && egress_any(t->dgram_egress))
		t->dgram_mode = DGRAM_UNIFORM;
}
