/* The rule table graft's Node side compiles (src/routing.ts) and hands
 * over as boundary messages (table.h): first match wins, so a connect is
 * decided here without a round trip. Matching is pure. */
#ifndef GRAFT_RULES_H
#define GRAFT_RULES_H

#include "byname.h"
#include "egress.h"
#include "sockaddr.h"

enum tcp_action { TCP_PASS, TCP_REFUSE, TCP_REDIRECT, TCP_INPLACE };
enum udp_action { UDP_PASS, UDP_REFUSE, UDP_EGRESS, UDP_DNS };

/* Where a rule (or a fault) applies. */
struct match {
	int family; /* 0: any destination, else 4 or 6 */
	unsigned char net[16];
	int prefix;
	unsigned port_lo, port_hi;
	int explicit_net; /* names a network: the only kind that may match loopback */
};

/* A relay rule's one upstream proxy: SOCKS5 at `addr`, with RFC 1929
 * user/password when `user` is not empty (relay.h). */
#define SOCKS_CRED_MAX 255
struct socks_hop {
	int present;
	union sa addr;
	char user[SOCKS_CRED_MAX + 1], pass[SOCKS_CRED_MAX + 1];
};

struct rule {
	struct match where; /* a by_name rule: its ports only */
	int by_name;        /* matches the addresses the names map lists it for (byname.h), never by a network */
	enum tcp_action tcp;
	enum udp_action udp;
	int direct; /* redirect: the proxy dials the destination itself (the local routing applies) */
	int relay;  /* direct or through `socks`, and nothing else concerns it: the tracer relays it (relay.h) */
	struct socks_hop socks;
	int err; /* for refuse */
	struct egress eg;
};

/* How the tracer dials the redirects of relay rules (the table's dial
 * message; relay.h). */
#define DIAL_PASSTHROUGH_MAX 32
#define SOCKS5_REPLY_ERRNOS 9 /* replies 0x01 to 0x08, then any other */
struct dial_settings {
	int present;                           /* a dial message was read */
	unsigned timeout_ms;                   /* graft's own connect timeout; 0: none */
	unsigned upstream_timeout_ms;          /* without it, a dial through a proxy's, handshake included */
	int passthrough[DIAL_PASSTHROUGH_MAX]; /* errnos a failed dial passes on as they are */
	int npassthrough;
	/* the errno each end of a SOCKS5 handshake gives the program's connect */
	int socks_reply[SOCKS5_REPLY_ERRNOS];
	int socks_auth, socks_malformed, socks_closed, socks_timeout;
};

/* How datagram sockets are handled, decided once from the table:
 *   DGRAM_UNTOUCHED   no rule sets anything for them
 *   DGRAM_UNIFORM     every destination gets the same egress (`dgram_egress`):
 *                     a mark is set as the socket is made, interface and
 *                     source before it first sends
 *   DGRAM_PER_DEST    destinations differ (or some are refused): decided at
 *                     each connect and each unconnected send */
enum dgram_mode { DGRAM_UNTOUCHED, DGRAM_UNIFORM, DGRAM_PER_DEST };

struct rule_table {
	struct rule *rules;
	int n;
	enum dgram_mode dgram_mode;
	const struct egress *dgram_egress; /* DGRAM_UNIFORM: the one egress */
	const struct byname *names;        /* what by_name rules match; NULL: nothing */
	/* the table's dns message: graft's DNS server listens on
	 * 127.0.0.1:dns_port4 and [::1]:dns_port6 (dns 0: no such message) */
	int dns;
	uint16_t dns_port4, dns_port6;
	struct dial_settings dial;
};

/* What rules match a destination on, worked out once per call: family and
 * 16 address bytes (v4-mapped counts as IPv4), port, and loopback. */
struct dest_key {
	int family;
	unsigned char addr[16];
	unsigned port;
	int loopback;
};

struct dest_key dest_key_of(const union sa *dst);
int match_covers(const struct match *m, const struct dest_key *k);

/* The index of the first rule matching `dst`, or -1: a loopback
 * destination no rule names explicitly, which graft passes untouched. A
 * by_name rule matches when t->names lists it for the address (v4-mapped
 * looked up as IPv4) and the port is in its range; a loopback address only
 * when the rule is explicit, as for any rule. */
int rules_match(const struct rule_table *t, const union sa *dst);

/* Works out dgram_mode and dgram_egress from the rules. */
void rules_plan_datagrams(struct rule_table *t);

#endif
