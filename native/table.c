#define _GNU_SOURCE
#include "table.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boundary.h"

/* The tracer's own enums follow the spec's words in order, so a decoded
 * value converts by a cast. */
_Static_assert(TCP_PASS == (int)BND_TCP_ACTION_PASS && TCP_REFUSE == (int)BND_TCP_ACTION_REFUSE &&
		       TCP_REDIRECT == (int)BND_TCP_ACTION_REDIRECT && TCP_INPLACE == (int)BND_TCP_ACTION_INPLACE,
	       "enum tcp_action follows the spec");
_Static_assert(UDP_PASS == (int)BND_UDP_ACTION_PASS && UDP_REFUSE == (int)BND_UDP_ACTION_REFUSE &&
		       UDP_EGRESS == (int)BND_UDP_ACTION_EGRESS && UDP_DNS == (int)BND_UDP_ACTION_DNS,
	       "enum udp_action follows the spec");
_Static_assert(SEL_ALL == (int)BND_SELECT_ALL && SEL_PROB == (int)BND_SELECT_PROB && SEL_FIRST == (int)BND_SELECT_FIRST &&
		       SEL_EVERY == (int)BND_SELECT_EVERY && SEL_AFTER == (int)BND_SELECT_AFTER,
	       "enum select_kind follows the spec");

/* The match fields rules and faults share. */
static int match_of(enum bnd_family family, int has_net, const char *net, uint32_t prefix, uint16_t lo, uint16_t hi, int explicit_net,
		    struct match *m)
{
	memset(m, 0, sizeof *m);
	m->port_lo = lo;
	m->port_hi = hi;
	m->explicit_net = explicit_net;
	m->prefix = (int)prefix;
	switch (family) {
	case BND_FAMILY_ANY:
		return has_net ? -1 : 0;
	case BND_FAMILY_IP4:
		m->family = 4;
		return has_net && prefix <= 32 && inet_pton(AF_INET, net, m->net) == 1 ? 0 : -1;
	case BND_FAMILY_IP6:
		m->family = 6;
		return has_net && prefix <= 128 && inet_pton(AF_INET6, net, m->net) == 1 ? 0 : -1;
	}
	return -1;
}

static int egress_of(const struct bnd_rule *b, struct egress *eg)
{
	memset(eg, 0, sizeof *eg);
	eg->has_mark = b->has_mark;
	eg->mark = b->mark;
	if (b->has_iface) {
		if (strlen(b->iface) >= sizeof eg->iface)
			return -1;
		strcpy(eg->iface, b->iface);
	}
	eg->has_src4 = b->has_src4;
	if (b->has_src4 && inet_pton(AF_INET, b->src4, &eg->src4) != 1)
		return -1;
	eg->has_src6 = b->has_src6;
	if (b->has_src6 && inet_pton(AF_INET6, b->src6, &eg->src6) != 1)
		return -1;
	return 0;
}

/* A rule's SOCKS5 proxy: its address and port, and credentials that fit
 * RFC 1929 (1 to 255 bytes each, both or neither). */
static int socks_of(const struct bnd_rule *b, struct socks_hop *h)
{
	memset(h, 0, sizeof *h);
	h->present = 1;
	if (!b->has_socks_port || b->has_socks_user != b->has_socks_pass)
		return -1;
	if (inet_pton(AF_INET, b->socks_ip, &h->addr.in4.sin_addr) == 1)
		h->addr.in4.sin_family = AF_INET;
	else if (inet_pton(AF_INET6, b->socks_ip, &h->addr.in6.sin6_addr) == 1)
		h->addr.in6.sin6_family = AF_INET6;
	else
		return -1;
	sa_set_port(&h->addr, b->socks_port);
	if (!b->has_socks_user)
		return 0;
	if (strlen(b->socks_user) > SOCKS_CRED_MAX || strlen(b->socks_pass) > SOCKS_CRED_MAX)
		return -1;
	strcpy(h->user, b->socks_user);
	strcpy(h->pass, b->socks_pass);
	return 0;
}

/* Comma-separated errno names into `out` (exactly `n` of them when `exact`,
 * at most `n` otherwise); returns how many, or -1. */
static int errno_list(const char *text, int *out, int n, int exact)
{
	char names[BND_TEXT_MAX + 1];
	snprintf(names, sizeof names, "%s", text);
	int count = 0;
	char *save = NULL;
	for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		int e = bnd_errno_number(name);
		if (e < 0 || count == n)
			return -1;
		out[count++] = e;
	}
	return exact && count != n ? -1 : count;
}

int table_rule(const struct bnd_rule *b, struct rule *r)
{
	memset(r, 0, sizeof *r);
	if (match_of(b->family, b->has_net, b->net, b->prefix, b->port_lo, b->port_hi, b->explicit, &r->where) < 0)
		return -1;
	/* a by_name rule matches through the names map only: no network */
	if (b->by_name && (b->family != BND_FAMILY_ANY || b->prefix))
		return -1;
	r->by_name = b->by_name;
	r->tcp = (enum tcp_action)b->tcp;
	r->udp = (enum udp_action)b->udp;
	r->direct = b->direct;
	r->relay = b->relay && (b->direct || b->has_socks_ip);
	r->err = b->has_error ? b->error : 0;
	if (b->has_socks_ip && socks_of(b, &r->socks) < 0)
		return -1;
	return egress_of(b, &r->eg);
}

int table_fault(const struct bnd_fault *b, struct fault *f)
{
	memset(f, 0, sizeof *f);
	if (match_of(b->family, b->has_net, b->net, b->prefix, b->port_lo, b->port_hi, b->explicit, &f->where) < 0)
		return -1;
	f->err = b->has_error ? b->error : 0;
	f->delay_ms = b->delay_ms;
	f->sel = (enum select_kind)b->select;
	f->n = b->n;
	f->prob = b->prob;
	return 0;
}

/* Grows an array of `size`-byte entries by one; NULL when out of memory
 * (the old array is then still `*arr`). */
static void *grow(void **arr, int n, size_t size)
{
	void *p = realloc(*arr, (size_t)(n + 1) * size);
	if (p)
		*arr = p;
	return p;
}

/* The dial message: its timeouts, the errnos a failed dial passes on, and
 * those of a SOCKS5 handshake's ends. */
int table_dial(const struct bnd_dial *b, struct dial_settings *d)
{
	memset(d, 0, sizeof *d);
	d->present = 1;
	d->timeout_ms = b->has_timeout_ms ? b->timeout_ms : 0;
	d->upstream_timeout_ms = b->upstream_timeout_ms;
	d->socks_auth = b->socks_auth;
	d->socks_malformed = b->socks_malformed;
	d->socks_closed = b->socks_closed;
	d->socks_timeout = b->socks_timeout;
	d->npassthrough = errno_list(b->passthrough, d->passthrough, DIAL_PASSTHROUGH_MAX, 0);
	if (d->npassthrough < 0 || errno_list(b->socks_replies, d->socks_reply, SOCKS5_REPLY_ERRNOS, 1) < 0)
		return -1;
	return 0;
}

/* One decoded table message into the tables. */
static int table_add(int kind, const union bnd_any *msg, struct rule_table *rules, struct fault_table *faults, const char **why)
{
	if (kind == BND_DNS) {
		if (rules->dns) {
			*why = "a second dns message";
			return -1;
		}
		rules->dns = 1;
		rules->dns_port4 = msg->dns.port4;
		rules->dns_port6 = msg->dns.port6;
		return 0;
	}
	if (kind == BND_DIAL) {
		if (rules->dial.present) {
			*why = "a second dial message";
			return -1;
		}
		if (table_dial(&msg->dial, &rules->dial) < 0) {
			*why = "a dial message's errnos";
			return -1;
		}
		return 0;
	}
	if (kind == BND_RULE) {
		if (!grow((void **)&rules->rules, rules->n, sizeof *rules->rules)) {
			*why = "out of memory";
			return -1;
		}
		if (table_rule(&msg->rule, &rules->rules[rules->n]) < 0) {
			*why = "a rule's network or egress options";
			return -1;
		}
		rules->n++;
		return 0;
	}
	if (kind == BND_FAULT) {
		if (!grow((void **)&faults->faults, faults->n, sizeof *faults->faults)) {
			*why = "out of memory";
			return -1;
		}
		if (table_fault(&msg->fault, &faults->faults[faults->n]) < 0) {
			*why = "a fault's network";
			return -1;
		}
		faults->n++;
		return 0;
	}
	*why = "not a table message";
	return -1;
}

int table_read(FILE *in, struct rule_table *rules, struct fault_table *faults, char *err, size_t errlen)
{
	char line[BND_LINE_MAX + 2];
	int lineno = 0;
	while (fgets(line, sizeof line, in)) {
		lineno++;
		union bnd_any msg;
		const char *why = "";
		int kind = bnd_decode(line, strlen(line), &msg, sizeof msg, &why);
		if (kind < 0 || table_add(kind, &msg, rules, faults, &why) < 0) {
			snprintf(err, errlen, "internal error: bad rule table line %d (%s): %s", lineno, why, line);
			return -1;
		}
	}
	for (int i = 0; i < rules->n; i++) {
		if (rules->rules[i].udp == UDP_DNS && !rules->dns) {
			snprintf(err, errlen,
				 "internal error: bad rule table: rule %d sends datagrams to a DNS server the table has no dns message for",
				 i);
			return -1;
		}
	}
	return 0;
}
