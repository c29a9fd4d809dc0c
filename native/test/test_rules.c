/* Rule matching: CIDR, ports, loopback, v4-mapped, first match wins. */
#include "../rules.h"

#include <stdlib.h>

#include "../table.h"
#include "check.h"
#include "helpers.h"

/* A table of the given rule messages. */
static struct rule_table table_of(const char *const *lines, int n)
{
	struct rule_table t = { .rules = calloc((size_t)n, sizeof(struct rule)), .n = n };
	for (int i = 0; i < n; i++)
		if (parse_rule(lines[i], &t.rules[i]) < 0)
			check_fail(__FILE__, __LINE__, "bad line %s", lines[i]);
	return t;
}

static int match(const struct rule_table *t, const char *ip, unsigned port)
{
	union sa a = addr_of(ip, port);
	return rules_match(t, &a);
}

TEST(first_match_wins)
{
	const char *lines[] = {
		"rule ip4 10.1.0.0 16 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
		"rule ip4 10.0.0.0 8 0 65535 1 inplace egress 0 - 16 - - -",
		"rule any - 0 0 65535 0 redirect refuse 0 ENETUNREACH - - - -",
	};
	struct rule_table t = table_of(lines, 3);
	CHECK_INT(match(&t, "10.1.2.3", 80), 0);
	CHECK_INT(match(&t, "10.2.2.3", 80), 1);
	CHECK_INT(match(&t, "192.0.2.1", 80), 2);
	CHECK_INT(match(&t, "2001:db8::1", 80), 2);
	free(t.rules);
}

TEST(loopback_only_matched_by_explicit_nets)
{
	const char *lines[] = { "rule any - 0 0 65535 0 redirect refuse 0 ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 1);
	CHECK_INT(match(&t, "127.0.0.1", 80), -1);
	CHECK_INT(match(&t, "0.0.0.0", 80), -1);
	CHECK_INT(match(&t, "::1", 80), -1);
	CHECK_INT(match(&t, "::ffff:127.0.0.1", 80), -1);
	free(t.rules);

	const char *explicit[] = { "rule ip4 127.0.0.0 8 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
				   "rule ip6 ::1 128 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
				   "rule any - 0 0 65535 0 redirect refuse 0 ENETUNREACH - - - -" };
	t = table_of(explicit, 3);
	CHECK_INT(match(&t, "127.0.0.53", 53), 0);
	CHECK_INT(match(&t, "::ffff:127.0.0.1", 80), 0);
	CHECK_INT(match(&t, "::1", 80), 1);
	CHECK_INT(match(&t, "::", 80), -1); /* no rule names :: */
	free(t.rules);
}

TEST(v4_mapped_matches_ipv4_rules_only)
{
	const char *lines[] = { "rule ip6 ::ffff:0.0.0.0 96 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
				"rule ip4 192.0.2.0 24 0 65535 1 redirect refuse 0 ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 2);
	CHECK_INT(match(&t, "::ffff:192.0.2.7", 80), 1);
	CHECK_INT(match(&t, "192.0.2.7", 80), 1);
	CHECK_INT(match(&t, "::ffff:198.51.100.1", 80), -1);
	free(t.rules);
}

TEST(port_ranges)
{
	const char *lines[] = { "rule any - 0 443 443 0 refuse refuse 0 ECONNREFUSED - - - -",
				"rule any - 0 1000 2000 0 redirect refuse 0 ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 2);
	CHECK_INT(match(&t, "192.0.2.1", 443), 0);
	CHECK_INT(match(&t, "192.0.2.1", 442), -1);
	CHECK_INT(match(&t, "192.0.2.1", 444), -1);
	CHECK_INT(match(&t, "192.0.2.1", 1000), 1);
	CHECK_INT(match(&t, "2001:db8::1", 2000), 1);
	CHECK_INT(match(&t, "192.0.2.1", 2001), -1);
	CHECK_INT(match(&t, "192.0.2.1", 999), -1);
	free(t.rules);
}

TEST(prefixes_of_any_length)
{
	const char *lines[] = { "rule ip4 198.51.100.128 25 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
				"rule ip6 2001:db8:8000:: 33 0 65535 1 refuse refuse 0 ECONNREFUSED - - - -",
				"rule ip4 0.0.0.0 0 0 65535 1 redirect refuse 0 ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 3);
	CHECK_INT(match(&t, "198.51.100.200", 80), 0);
	CHECK_INT(match(&t, "198.51.100.127", 80), 2);
	CHECK_INT(match(&t, "2001:db8:8000::1", 80), 1);
	CHECK_INT(match(&t, "2001:db8:ffff::1", 80), 1);
	CHECK_INT(match(&t, "2001:db8:7fff::1", 80), -1); /* /0 of family 4 is no IPv6 rule */
	free(t.rules);
}

/* The datagram plan of a table of these lines. */
static enum dgram_mode plan_of(const char *const *lines, int n, struct egress *uniform)
{
	struct rule_table t = table_of(lines, n);
	rules_plan_datagrams(&t);
	if (t.dgram_egress)
		*uniform = *t.dgram_egress;
	enum dgram_mode mode = t.dgram_mode;
	free(t.rules);
	return mode;
}

TEST(datagram_plan)
{
	const char *untouched[] = { "rule any - 0 0 65535 0 redirect pass 0 - - - - -" };
	const char *uniform[] = { "rule ip4 10.0.0.0 8 0 65535 1 inplace egress 0 - 16 - - -",
				  "rule any - 0 0 65535 0 inplace egress 0 - 16 - - -" };
	const char *per_dest[] = { "rule ip4 10.0.0.0 8 0 65535 1 inplace egress 0 - 16 - - -",
				   "rule any - 0 0 65535 0 redirect refuse 0 ENETUNREACH - - - -" };
	const char *differ[] = { "rule ip4 10.0.0.0 8 0 65535 1 inplace egress 0 - 16 - - -",
				 "rule any - 0 0 65535 0 inplace egress 0 - 32 - - -" };
	struct egress eg = { 0 };
	CHECK_INT(plan_of(untouched, 1, &eg), DGRAM_UNTOUCHED);
	CHECK_INT(plan_of(uniform, 2, &eg), DGRAM_UNIFORM);
	CHECK(eg.has_mark && eg.mark == 0x10);
	CHECK_INT(plan_of(per_dest, 2, &eg), DGRAM_PER_DEST);
	CHECK_INT(plan_of(differ, 2, &eg), DGRAM_PER_DEST);
}
