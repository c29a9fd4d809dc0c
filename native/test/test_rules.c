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
		"rule ip4 10.1.0.0 16 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
		"rule ip4 10.0.0.0 8 0 65535 1 0 inplace egress 0 0 - - - - - 16 - - -",
		"rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -",
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
	const char *lines[] = { "rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 1);
	CHECK_INT(match(&t, "127.0.0.1", 80), -1);
	CHECK_INT(match(&t, "0.0.0.0", 80), -1);
	CHECK_INT(match(&t, "::1", 80), -1);
	CHECK_INT(match(&t, "::ffff:127.0.0.1", 80), -1);
	free(t.rules);

	const char *explicit[] = { "rule ip4 127.0.0.0 8 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				   "rule ip6 ::1 128 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				   "rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
	t = table_of(explicit, 3);
	CHECK_INT(match(&t, "127.0.0.53", 53), 0);
	CHECK_INT(match(&t, "::ffff:127.0.0.1", 80), 0);
	CHECK_INT(match(&t, "::1", 80), 1);
	CHECK_INT(match(&t, "::", 80), -1); /* no rule names :: */
	free(t.rules);
}

TEST(v4_mapped_matches_ipv4_rules_only)
{
	const char *lines[] = { "rule ip6 ::ffff:0.0.0.0 96 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				"rule ip4 192.0.2.0 24 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
	struct rule_table t = table_of(lines, 2);
	CHECK_INT(match(&t, "::ffff:192.0.2.7", 80), 1);
	CHECK_INT(match(&t, "192.0.2.7", 80), 1);
	CHECK_INT(match(&t, "::ffff:198.51.100.1", 80), -1);
	free(t.rules);
}

TEST(port_ranges)
{
	const char *lines[] = { "rule any - 0 443 443 0 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				"rule any - 0 1000 2000 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
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
	const char *lines[] = { "rule ip4 198.51.100.128 25 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				"rule ip6 2001:db8:8000:: 33 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
				"rule ip4 0.0.0.0 0 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
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
	const char *untouched[] = { "rule any - 0 0 65535 0 0 redirect pass 0 0 - - - - - - - - -" };
	const char *uniform[] = { "rule ip4 10.0.0.0 8 0 65535 1 0 inplace egress 0 0 - - - - - 16 - - -",
				  "rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - 16 - - -" };
	const char *per_dest[] = { "rule ip4 10.0.0.0 8 0 65535 1 0 inplace egress 0 0 - - - - - 16 - - -",
				   "rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -" };
	const char *differ[] = { "rule ip4 10.0.0.0 8 0 65535 1 0 inplace egress 0 0 - - - - - 16 - - -",
				 "rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - 32 - - -" };
	struct egress eg = { 0 };
	CHECK_INT(plan_of(untouched, 1, &eg), DGRAM_UNTOUCHED);
	CHECK_INT(plan_of(uniform, 2, &eg), DGRAM_UNIFORM);
	CHECK(eg.has_mark && eg.mark == 0x10);
	CHECK_INT(plan_of(per_dest, 2, &eg), DGRAM_PER_DEST);
	CHECK_INT(plan_of(differ, 2, &eg), DGRAM_PER_DEST);
}

/* Sets `ip`'s by_name rules in the map, as a names message does. */
static void name(struct byname *m, const char *ip, const char *rules)
{
	struct byname_key k;
	if (byname_key_parse(ip, &k) < 0 || byname_set(m, &k, rules) < 0)
		check_fail(__FILE__, __LINE__, "cannot set %s to %s", ip, rules ? rules : "(forget)");
}

TEST(by_name_rules_match_only_through_the_names_map)
{
	const char *lines[] = {
		"rule any - 0 443 443 0 1 refuse refuse 0 0 - - - - ECONNREFUSED - - - -",
		"rule ip4 198.51.100.0 24 0 65535 1 0 inplace egress 0 0 - - - - - 16 - - -",
		"rule any - 0 0 65535 0 1 redirect refuse 0 0 - - - - ENETUNREACH - - - -",
		"rule any - 0 0 65535 0 0 pass pass 0 0 - - - - - - - - -",
	};
	struct rule_table t = table_of(lines, 4);
	struct byname m;
	byname_init(&m, t.n);
	/* no map: by_name rules match nothing */
	CHECK_INT(match(&t, "198.51.100.7", 443), 1);
	t.names = &m;
	CHECK_INT(match(&t, "198.51.100.7", 443), 1);
	name(&m, "198.51.100.7", "0,2");
	CHECK_INT(match(&t, "198.51.100.7", 443), 0); /* first match, in table order */
	CHECK_INT(match(&t, "198.51.100.7", 80), 1);  /* rule 0's ports; rule 1 comes before rule 2 */
	CHECK_INT(match(&t, "198.51.100.8", 443), 1); /* another address */
	name(&m, "2001:db8::7", "2");
	CHECK_INT(match(&t, "2001:db8::7", 443), 2);
	CHECK_INT(match(&t, "2001:db8::8", 443), 3);
	/* v4-mapped looks up IPv4, and an IPv4 entry set as v4-mapped is the same */
	name(&m, "::ffff:203.0.113.9", "2");
	CHECK_INT(match(&t, "203.0.113.9", 80), 2);
	CHECK_INT(match(&t, "::ffff:198.51.100.7", 443), 0);
	/* set again: replaced; "" and NULL forget */
	name(&m, "198.51.100.7", "2");
	CHECK_INT(match(&t, "198.51.100.7", 443), 1);
	name(&m, "2001:db8::7", "");
	CHECK_INT(match(&t, "2001:db8::7", 443), 3);
	name(&m, "203.0.113.9", NULL);
	CHECK_INT(match(&t, "203.0.113.9", 80), 3);
	CHECK_INT(m.count, 1);
	/* loopback: only an explicit rule, as for any rule */
	name(&m, "127.0.0.1", "2");
	CHECK_INT(match(&t, "127.0.0.1", 80), -1);
	byname_free(&m);
	free(t.rules);
}

TEST(names_lists_are_checked)
{
	struct byname m;
	byname_init(&m, 70);
	struct byname_key k;
	CHECK_INT(byname_key_parse("192.0.2.1", &k), 0);
	CHECK_INT(byname_key_parse("example.com", &k), -1);
	const char *bad[] = { "2,1", "1,1", "70", "a", "1,", ",1", "-1", "1;2", " 1", "+1" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (byname_set(&m, &k, bad[i]) == 0)
			check_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
	CHECK_INT(m.count, 0);
	CHECK_INT(byname_set(&m, &k, "0,63,64,69"), 0); /* past one word of bits */
	const uint64_t *bits = byname_find(&m, &k);
	CHECK(byname_has(bits, 0) && byname_has(bits, 63) && byname_has(bits, 64) && byname_has(bits, 69));
	CHECK(!byname_has(bits, 1) && !byname_has(bits, 65));
	byname_free(&m);
}

TEST(names_map_is_bounded_least_recently_set_replaced)
{
	struct byname m;
	byname_init(&m, 2);
	struct byname_key first = byname_key_of(4, (const unsigned char[]){ 10, 0, 0, 0 });
	for (unsigned i = 0; i < BYNAME_MAX; i++) {
		unsigned char a[4] = { 10, (unsigned char)(i >> 16), (unsigned char)(i >> 8), (unsigned char)i };
		struct byname_key k = byname_key_of(4, a);
		if (byname_set(&m, &k, "1") < 0)
			check_fail(__FILE__, __LINE__, "set %u failed", i);
	}
	CHECK_INT(m.count, BYNAME_MAX);
	/* the first set again: now the newest, so the second goes next */
	CHECK_INT(byname_set(&m, &first, "0"), 0);
	struct byname_key second = byname_key_of(4, (const unsigned char[]){ 10, 0, 0, 1 });
	struct byname_key extra = byname_key_of(4, (const unsigned char[]){ 10, 9, 9, 9 });
	CHECK_INT(byname_set(&m, &extra, "1"), 0);
	CHECK_INT(m.count, BYNAME_MAX);
	CHECK(byname_find(&m, &second) == NULL);
	CHECK(byname_has(byname_find(&m, &first), 0));
	CHECK(byname_has(byname_find(&m, &extra), 1));
	CHECK_INT(m.cap, BYNAME_MAX);
	byname_free(&m);
}
