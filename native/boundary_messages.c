/* Generated from spec/tracer-boundary.json by scripts/gen-boundary.mjs: do not edit. */
/* clang-format off */
#include "boundary.h"

#include <stddef.h>

static const char *const family_words[] = { "any", "ip4", "ip6", NULL };
static const char *const tcp_action_words[] = { "pass", "refuse", "redirect", "inplace", NULL };
static const char *const udp_action_words[] = { "pass", "refuse", "egress", "dns", NULL };
static const char *const select_words[] = { "all", "prob", "first", "every", "after", NULL };
static const char *const relay_end_words[] = { "ok", "dial", "handshake", "program", "upstream", "exit-dialing", "exit-cut", "socks-reply", "socks-auth", "socks-malformed", "socks-closed", "socks-timeout", NULL };

static const struct bnd_field redirect_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_redirect, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_redirect, tid), BND_REQUIRED, NULL },
	{ "id", BND_T_UINT, offsetof(struct bnd_redirect, id), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_redirect, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_redirect, dst_port), BND_REQUIRED, NULL },
	{ "peer_ip", BND_T_ADDR, offsetof(struct bnd_redirect, peer_ip), BND_REQUIRED, NULL },
	{ "peer_port", BND_T_PORT, offsetof(struct bnd_redirect, peer_port), BND_REQUIRED, NULL },
	{ "hole_port", BND_T_PORT, offsetof(struct bnd_redirect, hole_port), BND_REQUIRED, NULL },
	{ "rule", BND_T_INT, offsetof(struct bnd_redirect, rule), BND_REQUIRED, NULL },
	{ "fault", BND_T_INT, offsetof(struct bnd_redirect, fault), offsetof(struct bnd_redirect, has_fault), NULL },
	{ "delay_ms", BND_T_UINT, offsetof(struct bnd_redirect, delay_ms), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_redirect, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field relayed_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_relayed, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_relayed, tid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_relayed, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_relayed, dst_port), BND_REQUIRED, NULL },
	{ "peer_ip", BND_T_ADDR, offsetof(struct bnd_relayed, peer_ip), BND_REQUIRED, NULL },
	{ "peer_port", BND_T_PORT, offsetof(struct bnd_relayed, peer_port), BND_REQUIRED, NULL },
	{ "rule", BND_T_INT, offsetof(struct bnd_relayed, rule), BND_REQUIRED, NULL },
	{ "bytes_up", BND_T_COUNT, offsetof(struct bnd_relayed, bytes_up), BND_REQUIRED, NULL },
	{ "bytes_down", BND_T_COUNT, offsetof(struct bnd_relayed, bytes_down), BND_REQUIRED, NULL },
	{ "duration_ms", BND_T_UINT, offsetof(struct bnd_relayed, duration_ms), BND_REQUIRED, NULL },
	{ "end", BND_T_ENUM, offsetof(struct bnd_relayed, end), BND_REQUIRED, relay_end_words },
	{ "error", BND_T_ERRNO, offsetof(struct bnd_relayed, error), offsetof(struct bnd_relayed, has_error), NULL },
	{ "socks_code", BND_T_UINT, offsetof(struct bnd_relayed, socks_code), offsetof(struct bnd_relayed, has_socks_code), NULL },
	{ "at_exit", BND_T_BOOL, offsetof(struct bnd_relayed, at_exit), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_relayed, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field opened_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_opened, pid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_opened, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_opened, dst_port), BND_REQUIRED, NULL },
	{ "peer_ip", BND_T_ADDR, offsetof(struct bnd_opened, peer_ip), BND_REQUIRED, NULL },
	{ "peer_port", BND_T_PORT, offsetof(struct bnd_opened, peer_port), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_opened, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field inplace_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_inplace, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_inplace, tid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_inplace, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_inplace, dst_port), BND_REQUIRED, NULL },
	{ "rule", BND_T_INT, offsetof(struct bnd_inplace, rule), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_inplace, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field kept_local_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_kept_local, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_kept_local, tid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_kept_local, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_kept_local, dst_port), BND_REQUIRED, NULL },
	{ "rule", BND_T_INT, offsetof(struct bnd_kept_local, rule), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_kept_local, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field dns_socket_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_dns_socket, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_dns_socket, tid), BND_REQUIRED, NULL },
	{ "family", BND_T_ENUM, offsetof(struct bnd_dns_socket, family), BND_REQUIRED, family_words },
	{ "local_port", BND_T_PORT, offsetof(struct bnd_dns_socket, local_port), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_dns_socket, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_dns_socket, dst_port), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_dns_socket, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field failed_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_failed, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_failed, tid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_failed, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_failed, dst_port), BND_REQUIRED, NULL },
	{ "error", BND_T_ERRNO, offsetof(struct bnd_failed, error), BND_REQUIRED, NULL },
	{ "rule", BND_T_INT, offsetof(struct bnd_failed, rule), BND_REQUIRED, NULL },
	{ "fault", BND_T_INT, offsetof(struct bnd_failed, fault), offsetof(struct bnd_failed, has_fault), NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_failed, exe), BND_REQUIRED, NULL },
	{ "reason", BND_T_TEXT, offsetof(struct bnd_failed, reason), BND_REQUIRED, NULL },
};

static const struct bnd_field delayed_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_delayed, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_delayed, tid), BND_REQUIRED, NULL },
	{ "dst_ip", BND_T_ADDR, offsetof(struct bnd_delayed, dst_ip), BND_REQUIRED, NULL },
	{ "dst_port", BND_T_PORT, offsetof(struct bnd_delayed, dst_port), BND_REQUIRED, NULL },
	{ "fault", BND_T_INT, offsetof(struct bnd_delayed, fault), BND_REQUIRED, NULL },
	{ "exe", BND_T_TEXT, offsetof(struct bnd_delayed, exe), BND_REQUIRED, NULL },
};

static const struct bnd_field diagnostic_fields[] = {
	{ "pid", BND_T_INT, offsetof(struct bnd_diagnostic, pid), BND_REQUIRED, NULL },
	{ "tid", BND_T_INT, offsetof(struct bnd_diagnostic, tid), BND_REQUIRED, NULL },
	{ "message", BND_T_TEXT, offsetof(struct bnd_diagnostic, message), BND_REQUIRED, NULL },
};

static const struct bnd_field rule_fields[] = {
	{ "family", BND_T_ENUM, offsetof(struct bnd_rule, family), BND_REQUIRED, family_words },
	{ "net", BND_T_ADDR, offsetof(struct bnd_rule, net), offsetof(struct bnd_rule, has_net), NULL },
	{ "prefix", BND_T_UINT, offsetof(struct bnd_rule, prefix), BND_REQUIRED, NULL },
	{ "port_lo", BND_T_PORT, offsetof(struct bnd_rule, port_lo), BND_REQUIRED, NULL },
	{ "port_hi", BND_T_PORT, offsetof(struct bnd_rule, port_hi), BND_REQUIRED, NULL },
	{ "explicit", BND_T_BOOL, offsetof(struct bnd_rule, explicit), BND_REQUIRED, NULL },
	{ "by_name", BND_T_BOOL, offsetof(struct bnd_rule, by_name), BND_REQUIRED, NULL },
	{ "tcp", BND_T_ENUM, offsetof(struct bnd_rule, tcp), BND_REQUIRED, tcp_action_words },
	{ "udp", BND_T_ENUM, offsetof(struct bnd_rule, udp), BND_REQUIRED, udp_action_words },
	{ "direct", BND_T_BOOL, offsetof(struct bnd_rule, direct), BND_REQUIRED, NULL },
	{ "relay", BND_T_BOOL, offsetof(struct bnd_rule, relay), BND_REQUIRED, NULL },
	{ "socks_ip", BND_T_ADDR, offsetof(struct bnd_rule, socks_ip), offsetof(struct bnd_rule, has_socks_ip), NULL },
	{ "socks_port", BND_T_PORT, offsetof(struct bnd_rule, socks_port), offsetof(struct bnd_rule, has_socks_port), NULL },
	{ "socks_user", BND_T_TEXT, offsetof(struct bnd_rule, socks_user), offsetof(struct bnd_rule, has_socks_user), NULL },
	{ "socks_pass", BND_T_TEXT, offsetof(struct bnd_rule, socks_pass), offsetof(struct bnd_rule, has_socks_pass), NULL },
	{ "error", BND_T_ERRNO, offsetof(struct bnd_rule, error), offsetof(struct bnd_rule, has_error), NULL },
	{ "mark", BND_T_UINT, offsetof(struct bnd_rule, mark), offsetof(struct bnd_rule, has_mark), NULL },
	{ "iface", BND_T_TEXT, offsetof(struct bnd_rule, iface), offsetof(struct bnd_rule, has_iface), NULL },
	{ "src4", BND_T_ADDR, offsetof(struct bnd_rule, src4), offsetof(struct bnd_rule, has_src4), NULL },
	{ "src6", BND_T_ADDR, offsetof(struct bnd_rule, src6), offsetof(struct bnd_rule, has_src6), NULL },
};

static const struct bnd_field fault_fields[] = {
	{ "family", BND_T_ENUM, offsetof(struct bnd_fault, family), BND_REQUIRED, family_words },
	{ "net", BND_T_ADDR, offsetof(struct bnd_fault, net), offsetof(struct bnd_fault, has_net), NULL },
	{ "prefix", BND_T_UINT, offsetof(struct bnd_fault, prefix), BND_REQUIRED, NULL },
	{ "port_lo", BND_T_PORT, offsetof(struct bnd_fault, port_lo), BND_REQUIRED, NULL },
	{ "port_hi", BND_T_PORT, offsetof(struct bnd_fault, port_hi), BND_REQUIRED, NULL },
	{ "explicit", BND_T_BOOL, offsetof(struct bnd_fault, explicit), BND_REQUIRED, NULL },
	{ "error", BND_T_ERRNO, offsetof(struct bnd_fault, error), offsetof(struct bnd_fault, has_error), NULL },
	{ "delay_ms", BND_T_UINT, offsetof(struct bnd_fault, delay_ms), BND_REQUIRED, NULL },
	{ "select", BND_T_ENUM, offsetof(struct bnd_fault, select), BND_REQUIRED, select_words },
	{ "n", BND_T_UINT, offsetof(struct bnd_fault, n), BND_REQUIRED, NULL },
	{ "prob", BND_T_DOUBLE, offsetof(struct bnd_fault, prob), BND_REQUIRED, NULL },
};

static const struct bnd_field dial_fields[] = {
	{ "timeout_ms", BND_T_UINT, offsetof(struct bnd_dial, timeout_ms), offsetof(struct bnd_dial, has_timeout_ms), NULL },
	{ "passthrough", BND_T_TEXT, offsetof(struct bnd_dial, passthrough), BND_REQUIRED, NULL },
	{ "upstream_timeout_ms", BND_T_UINT, offsetof(struct bnd_dial, upstream_timeout_ms), BND_REQUIRED, NULL },
	{ "socks_replies", BND_T_TEXT, offsetof(struct bnd_dial, socks_replies), BND_REQUIRED, NULL },
	{ "socks_auth", BND_T_ERRNO, offsetof(struct bnd_dial, socks_auth), BND_REQUIRED, NULL },
	{ "socks_malformed", BND_T_ERRNO, offsetof(struct bnd_dial, socks_malformed), BND_REQUIRED, NULL },
	{ "socks_closed", BND_T_ERRNO, offsetof(struct bnd_dial, socks_closed), BND_REQUIRED, NULL },
	{ "socks_timeout", BND_T_ERRNO, offsetof(struct bnd_dial, socks_timeout), BND_REQUIRED, NULL },
};

static const struct bnd_field dns_fields[] = {
	{ "port4", BND_T_PORT, offsetof(struct bnd_dns, port4), BND_REQUIRED, NULL },
	{ "port6", BND_T_PORT, offsetof(struct bnd_dns, port6), BND_REQUIRED, NULL },
};

static const struct bnd_field refused_fields[] = {
	{ "id", BND_T_UINT, offsetof(struct bnd_refused, id), BND_REQUIRED, NULL },
	{ "error", BND_T_ERRNO, offsetof(struct bnd_refused, error), BND_REQUIRED, NULL },
};

static const struct bnd_field names_fields[] = {
	{ "ip", BND_T_ADDR, offsetof(struct bnd_names, ip), BND_REQUIRED, NULL },
	{ "rules", BND_T_TEXT, offsetof(struct bnd_names, rules), offsetof(struct bnd_names, has_rules), NULL },
};

const struct bnd_message bnd_messages[BND_KINDS] = {
	[BND_REDIRECT] = { "C", "redirect", redirect_fields, 12, sizeof(struct bnd_redirect) },
	[BND_RELAYED] = { "R", "relayed", relayed_fields, 15, sizeof(struct bnd_relayed) },
	[BND_OPENED] = { "O", "opened", opened_fields, 6, sizeof(struct bnd_opened) },
	[BND_INPLACE] = { "I", "inplace", inplace_fields, 6, sizeof(struct bnd_inplace) },
	[BND_KEPT_LOCAL] = { "K", "kept-local", kept_local_fields, 6, sizeof(struct bnd_kept_local) },
	[BND_DNS_SOCKET] = { "Q", "dns-socket", dns_socket_fields, 7, sizeof(struct bnd_dns_socket) },
	[BND_FAILED] = { "F", "failed", failed_fields, 9, sizeof(struct bnd_failed) },
	[BND_DELAYED] = { "H", "delayed", delayed_fields, 6, sizeof(struct bnd_delayed) },
	[BND_DIAGNOSTIC] = { "D", "diagnostic", diagnostic_fields, 3, sizeof(struct bnd_diagnostic) },
	[BND_RULE] = { "rule", "rule", rule_fields, 20, sizeof(struct bnd_rule) },
	[BND_FAULT] = { "fault", "fault", fault_fields, 11, sizeof(struct bnd_fault) },
	[BND_DIAL] = { "dial", "dial", dial_fields, 8, sizeof(struct bnd_dial) },
	[BND_DNS] = { "dns", "dns", dns_fields, 2, sizeof(struct bnd_dns) },
	[BND_REFUSED] = { "fail", "refused", refused_fields, 2, sizeof(struct bnd_refused) },
	[BND_NAMES] = { "names", "names", names_fields, 2, sizeof(struct bnd_names) },
};
