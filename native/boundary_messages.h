/* Generated from spec/tracer-boundary.json by scripts/gen-boundary.mjs: do not edit. */
/* clang-format off */
#ifndef GRAFT_BOUNDARY_MESSAGES_H
#define GRAFT_BOUNDARY_MESSAGES_H

#include <stdint.h>

#define BND_LINE_MAX 4096
#define BND_TEXT_MAX 1023
/* an address, with room for an IPv6 scope */
#define BND_ADDR_MAX 64

enum bnd_family {
	BND_FAMILY_ANY,
	BND_FAMILY_IP4,
	BND_FAMILY_IP6,
};

enum bnd_tcp_action {
	BND_TCP_ACTION_PASS,
	BND_TCP_ACTION_REFUSE,
	BND_TCP_ACTION_REDIRECT,
	BND_TCP_ACTION_INPLACE,
};

enum bnd_udp_action {
	BND_UDP_ACTION_PASS,
	BND_UDP_ACTION_REFUSE,
	BND_UDP_ACTION_EGRESS,
	BND_UDP_ACTION_DNS,
};

enum bnd_select {
	BND_SELECT_ALL,
	BND_SELECT_PROB,
	BND_SELECT_FIRST,
	BND_SELECT_EVERY,
	BND_SELECT_AFTER,
};

enum bnd_relay_end {
	BND_RELAY_END_OK,
	BND_RELAY_END_DIAL,
	BND_RELAY_END_HANDSHAKE,
	BND_RELAY_END_PROGRAM,
	BND_RELAY_END_UPSTREAM,
	BND_RELAY_END_EXIT_DIALING,
	BND_RELAY_END_EXIT_CUT,
	BND_RELAY_END_SOCKS_REPLY,
	BND_RELAY_END_SOCKS_AUTH,
	BND_RELAY_END_SOCKS_MALFORMED,
	BND_RELAY_END_SOCKS_CLOSED,
	BND_RELAY_END_SOCKS_TIMEOUT,
};

enum bnd_kind {
	BND_REDIRECT,
	BND_RELAYED,
	BND_OPENED,
	BND_INPLACE,
	BND_KEPT_LOCAL,
	BND_DNS_SOCKET,
	BND_FAILED,
	BND_DELAYED,
	BND_DIAGNOSTIC,
	BND_RULE,
	BND_FAULT,
	BND_DIAL,
	BND_DNS,
	BND_REFUSED,
	BND_NAMES,
	BND_KINDS
};

/* C: a connect handed to graft's proxy: the program's socket waits in SYN_SENT towards the black hole at hole_port (on the loopback address of peer_ip's family) until the proxy answers this id on the control fd; peer_ip/peer_port: the program's end of it; fault and delay_ms: a handshake delay fault (the proxy completes the handshake no sooner than delay_ms after this record) */
struct bnd_redirect {
	int32_t pid;
	int32_t tid;
	uint32_t id;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	char peer_ip[BND_ADDR_MAX];
	uint16_t peer_port;
	uint16_t hole_port;
	int32_t rule;
	int has_fault;
	int32_t fault;
	uint32_t delay_ms;
	char exe[BND_TEXT_MAX + 1];
};

/* R: a connect of a relay rule, dialed and relayed by the tracer itself, once it has ended (sent in batches, at most 100 ms late). end says how: ok (both sides closed; error absent), dial (the destination did not accept: error is its errno, which the program's connect got when the dial message passes it through; ETIMEDOUT also for graft's own connect timeout), handshake (the program's socket no longer waited for the connect: error why; the program's connect failed with ECONNABORTED, or ECONNREFUSED when error is EMFILE or ENFILE), program or upstream (that side failed with error; the other was reset), exit-dialing (the program exited while the destination was dialed), exit-cut (the program exited and its bytes could not be handed on within a second). at_exit: the program exited while this connection was open. A dial that failed for EMFILE or ENFILE failed the program's connect with ECONNREFUSED. For a rule with a SOCKS5 proxy, dial is the connect to the proxy, and its handshake can end: socks-reply (a reply with REP socks_code, not 0), socks-auth (no acceptable method, or the user/password refused), socks-malformed (bytes that are not a SOCKS5 reply), socks-closed (the proxy closed or reset before its reply), socks-timeout (no reply by graft's deadline); the program's connect then got the errno the dial message gives for it */
struct bnd_relayed {
	int32_t pid;
	int32_t tid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	char peer_ip[BND_ADDR_MAX];
	uint16_t peer_port;
	int32_t rule;
	uint64_t bytes_up;
	uint64_t bytes_down;
	uint32_t duration_ms;
	enum bnd_relay_end end;
	int has_error;
	int error;
	int has_socks_code;
	uint32_t socks_code;
	int at_exit;
	char exe[BND_TEXT_MAX + 1];
};

/* O: a connect of a relay rule succeeded (the program's end peer_ip/peer_port is connected to the destination), sent before its R record in the same batching */
struct bnd_opened {
	int32_t pid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	char peer_ip[BND_ADDR_MAX];
	uint16_t peer_port;
	char exe[BND_TEXT_MAX + 1];
};

/* I: a connect let go on in place, with its rule's egress options set on the program's socket */
struct bnd_inplace {
	int32_t pid;
	int32_t tid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	int32_t rule;
	char exe[BND_TEXT_MAX + 1];
};

/* K: a datagram socket connected to a destination only a proxy may reach: the connect went through (the program sees the source address the kernel picked), and what the socket sends stays on this machine */
struct bnd_kept_local {
	int32_t pid;
	int32_t tid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	int32_t rule;
	char exe[BND_TEXT_MAX + 1];
};

/* Q: a datagram socket pointed at graft's DNS server (table message dns), sent at once when it is first pointed there and whenever its meant destination changes: family says which listener (ip4: 127.0.0.1:port4, ip6: [::1]:port6); local_port is the socket's port, the source port the DNS server sees; dst_ip/dst_port where the program meant to send */
struct bnd_dns_socket {
	int32_t pid;
	int32_t tid;
	enum bnd_family family;
	uint16_t local_port;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	char exe[BND_TEXT_MAX + 1];
};

/* F: a call the tracer failed on purpose instead of letting it out another way; rule -1 when no rule is the reason; fault: the connect fault that failed it */
struct bnd_failed {
	int32_t pid;
	int32_t tid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	int error;
	int32_t rule;
	int has_fault;
	int32_t fault;
	char exe[BND_TEXT_MAX + 1];
	char reason[BND_TEXT_MAX + 1];
};

/* H: a blocking connect a delay fault holds in the tracer before it goes on */
struct bnd_delayed {
	int32_t pid;
	int32_t tid;
	char dst_ip[BND_ADDR_MAX];
	uint16_t dst_port;
	int32_t fault;
	char exe[BND_TEXT_MAX + 1];
};

/* D: something worth a log line */
struct bnd_diagnostic {
	int32_t pid;
	int32_t tid;
	char message[BND_TEXT_MAX + 1];
};

/* rule: family any: every destination (net absent); explicit: the rule names a network, the only kind that may match a loopback destination; by_name: the rule matches an address only through the names control message (family any, net absent, prefix 0; its ports still apply), never by a network of its own; udp dns: datagrams go to graft's DNS server (table message dns); direct: a redirect the proxy dials itself, without an upstream proxy, so the local routing's answer for the destination (no route, prohibited) is the connect's, at once; relay (direct, or socks_ip given): no toxic, name or control API can concern this rule's redirects, so the tracer dials and relays them itself (R and O records, no C record) unless a handshake delay fault or a source of the other family only applies; socks_ip/socks_port: a relay rule's one upstream proxy, SOCKS5 at this address, asked to CONNECT to the destination's address, with RFC 1929 user/password when socks_user and socks_pass are given (the egress options then apply to the connection to the proxy); error: what refuse fails with, and what a datagram to a proxy-only destination gets */
struct bnd_rule {
	enum bnd_family family;
	int has_net;
	char net[BND_ADDR_MAX];
	uint32_t prefix;
	uint16_t port_lo;
	uint16_t port_hi;
	int explicit;
	int by_name;
	enum bnd_tcp_action tcp;
	enum bnd_udp_action udp;
	int direct;
	int relay;
	int has_socks_ip;
	char socks_ip[BND_ADDR_MAX];
	int has_socks_port;
	uint16_t socks_port;
	int has_socks_user;
	char socks_user[BND_TEXT_MAX + 1];
	int has_socks_pass;
	char socks_pass[BND_TEXT_MAX + 1];
	int has_error;
	int error;
	int has_mark;
	uint32_t mark;
	int has_iface;
	char iface[BND_TEXT_MAX + 1];
	int has_src4;
	char src4[BND_ADDR_MAX];
	int has_src6;
	char src6[BND_ADDR_MAX];
};

/* fault: a connect fault: error absent means a handshake delay only (the connect goes on after delay_ms), else the connect fails with it after delay_ms; select with n (first n, every nth, after n went through) or prob (0 to 1) */
struct bnd_fault {
	enum bnd_family family;
	int has_net;
	char net[BND_ADDR_MAX];
	uint32_t prefix;
	uint16_t port_lo;
	uint16_t port_hi;
	int explicit;
	int has_error;
	int error;
	uint32_t delay_ms;
	enum bnd_select select;
	uint32_t n;
	double prob;
};

/* dial: how the tracer dials the redirects of relay rules: timeout_ms is graft's own connect timeout (absent: the kernel's SYN retries decide); passthrough, the errnos (comma-separated names) a failed dial passes on to the program's connect as they are: any other fails it with ECONNREFUSED; upstream_timeout_ms: without timeout_ms, how long a dial through a SOCKS5 proxy may take, its handshake included; socks_replies: the errnos (nine comma-separated names) for SOCKS5 replies 0x01 to 0x08 and then any other; socks_auth, socks_malformed, socks_closed, socks_timeout: the errnos for the other ends of a handshake (relay_end); at most one */
struct bnd_dial {
	int has_timeout_ms;
	uint32_t timeout_ms;
	char passthrough[BND_TEXT_MAX + 1];
	uint32_t upstream_timeout_ms;
	char socks_replies[BND_TEXT_MAX + 1];
	int socks_auth;
	int socks_malformed;
	int socks_closed;
	int socks_timeout;
};

/* dns: graft's DNS server listens (UDP) on 127.0.0.1:port4 and [::1]:port6; at most one; a rule with udp dns needs it */
struct bnd_dns {
	uint16_t port4;
	uint16_t port6;
};

/* fail: the destination (or an upstream proxy) did not accept: the program's connect fails with error, as the kernel would have failed it */
struct bnd_refused {
	uint32_t id;
	int error;
};

/* names: from now on, destination ip (v4-mapped counts as IPv4) also matches the by_name rules listed in rules (their indices, comma-separated ascending decimals); rules absent forgets ip. Written before the DNS answer holding ip reaches the program. The tracer keeps at most 65536 addresses, the least recently set replaced */
struct bnd_names {
	char ip[BND_ADDR_MAX];
	int has_rules;
	char rules[BND_TEXT_MAX + 1];
};

/* room for any message, for a decoder that does not know which comes */
union bnd_any {
	struct bnd_redirect redirect;
	struct bnd_relayed relayed;
	struct bnd_opened opened;
	struct bnd_inplace inplace;
	struct bnd_kept_local kept_local;
	struct bnd_dns_socket dns_socket;
	struct bnd_failed failed;
	struct bnd_delayed delayed;
	struct bnd_diagnostic diagnostic;
	struct bnd_rule rule;
	struct bnd_fault fault;
	struct bnd_dial dial;
	struct bnd_dns dns;
	struct bnd_refused refused;
	struct bnd_names names;
};

#endif
