/* Reading the table messages graft's Node side sends (table.h). */
#include "../table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../boundary.h"
#include "check.h"
#include "helpers.h"

TEST(rule_line_redirect)
{
	struct rule r;
	CHECK_INT(parse_rule("rule ip4 10.0.0.0 8 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -\n", &r), 0);
	CHECK_INT(r.where.family, 4);
	CHECK_INT(r.where.prefix, 8);
	CHECK(r.where.net[0] == 10 && r.where.net[1] == 0);
	CHECK_INT(r.where.port_lo, 0);
	CHECK_INT(r.where.port_hi, 65535);
	CHECK_INT(r.where.explicit_net, 1);
	CHECK_INT(r.tcp, TCP_REDIRECT);
	CHECK_INT(r.udp, UDP_REFUSE);
	CHECK_INT(r.err, ENETUNREACH);
	CHECK(!egress_any(&r.eg));
}

TEST(rule_line_with_egress)
{
	struct rule r;
	CHECK_INT(parse_rule("rule any - 0 443 443 0 0 inplace egress 0 0 - - - - - 16 wg0 192.0.2.5 2001:db8::5", &r), 0);
	CHECK_INT(r.where.family, 0);
	CHECK_INT(r.where.port_lo, 443);
	CHECK_INT(r.tcp, TCP_INPLACE);
	CHECK_INT(r.udp, UDP_EGRESS);
	CHECK(r.eg.has_mark && r.eg.mark == 0x10);
	CHECK_STR(r.eg.iface, "wg0");
	char text[INET6_ADDRSTRLEN];
	CHECK(r.eg.has_src4 && r.eg.has_src6);
	CHECK_STR(inet_ntop(AF_INET, &r.eg.src4, text, sizeof text), "192.0.2.5");
	CHECK_STR(inet_ntop(AF_INET6, &r.eg.src6, text, sizeof text), "2001:db8::5");
	CHECK_INT(parse_rule("rule ip6 2001:db8:: 32 0 65535 1 0 pass pass 0 0 - - - - - 4294967295 - - -", &r), 0);
	CHECK_INT(r.where.family, 6);
	CHECK_INT(r.tcp, TCP_PASS);
	CHECK_INT(r.udp, UDP_PASS);
	CHECK(r.eg.mark == 4294967295u);
	CHECK_INT(parse_rule("rule ip4 192.0.2.0 24 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED 16 - - -", &r), 0);
	CHECK_INT(r.tcp, TCP_REFUSE);
	CHECK(r.eg.mark == 16);
}

TEST(bad_rule_lines)
{
	const char *bad[] = {
		"",
		"rule ip4 10.0.0.0 8 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - -",     /* a field short */
		"rule ip5 10.0.0.0 8 0 65535 1 0 redirect refuse ENETUNREACH - - - -",               /* family */
		"rule ip4 10.0.0.300 8 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -", /* address */
		"rule ip6 10.0.0.0 8 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -",   /* v4 address, family 6 */
		"rule ip4 10.0.0.0 33 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -",  /* prefix */
		"rule any 10.0.0.0 0 0 65535 1 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -",   /* a network with family any */
		"rule ip4 10.0.0.0 8 0 65535 1 0 forward refuse 0 ENETUNREACH - - - -",              /* tcp action */
		"rule ip4 10.0.0.0 8 0 65535 1 0 redirect drop 0 ENETUNREACH - - - -",               /* udp action */
		"rule ip4 10.0.0.0 8 0 65535 1 0 redirect refuse 0 0 - - - - 101 - - - -",           /* errno */
		"rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - 4294967296 - - -",            /* mark too big */
		"rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - 0x10 - - -",                  /* mark */
		"rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - - abcdefghijklmnop - -",      /* interface name too long */
		"rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - - - 2001:db8::1 -",           /* source4 */
		"rule any - 0 0 65535 0 0 inplace egress 0 0 - - - - - - - - 192.0.2.1",             /* source6 */
		"fault any - 0 0 65535 0 - 0 all 0 0",                                               /* a fault */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct rule r;
		if (parse_rule(bad[i], &r) == 0)
			check_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
	}
}

TEST(fault_lines)
{
	struct fault f;
	CHECK_INT(parse_fault("fault ip4 192.0.2.0 24 80 80 1 ECONNREFUSED 0 first 3 0\n", &f), 0);
	CHECK_INT(f.where.family, 4);
	CHECK_INT(f.where.prefix, 24);
	CHECK_INT(f.where.port_lo, 80);
	CHECK_INT(f.where.explicit_net, 1);
	CHECK_INT(f.err, ECONNREFUSED);
	CHECK_INT(f.delay_ms, 0);
	CHECK_INT(f.sel, SEL_FIRST);
	CHECK_INT(f.n, 3);
	CHECK_INT(parse_fault("fault any - 0 0 65535 0 - 300 prob 0 0.25", &f), 0);
	CHECK_INT(f.sel, SEL_PROB);
	CHECK_INT(f.delay_ms, 300);
	CHECK(f.prob == 0.25);
	const char *sels[] = { "all", "prob", "first", "every", "after" };
	for (int i = 0; i < 5; i++) {
		char line[80];
		snprintf(line, sizeof line, "fault any - 0 0 65535 0 ETIMEDOUT 0 %s 1 0", sels[i]);
		CHECK_INT(parse_fault(line, &f), 0);
		CHECK_INT(f.sel, i);
	}
	CHECK_INT(parse_fault("fault any - 0 0 65535 0 ETIMEDOUT 0 sometimes 1 0", &f), -1);
	CHECK_INT(parse_fault("fault any - 0 0 65535 0 ETIMEDOUT 0 all 1", &f), -1);
	CHECK_INT(parse_fault("fault ip7 - 0 0 65535 0 ETIMEDOUT 0 all 1 0", &f), -1);
	CHECK_INT(parse_fault("fault any - 0 0 65535 0 ETIMEDOUT 0 prob 0 nan", &f), -1);
}

/* table_read over `text`; returns its result, the message in `err`. */
static int read_text(const char *text, struct rule_table *rt, struct fault_table *ft, char *err, size_t errlen)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	memset(rt, 0, sizeof *rt);
	memset(ft, 0, sizeof *ft);
	err[0] = 0;
	int rc = table_read(in, rt, ft, err, errlen);
	fclose(in);
	return rc;
}

TEST(whole_table)
{
	struct rule_table rt;
	struct fault_table ft;
	char err[1024];
	const char *text = "rule ip4 10.0.0.0 8 0 65535 1 0 refuse refuse 0 0 - - - - ECONNREFUSED - - - -\n"
			   "fault any - 0 0 65535 0 ETIMEDOUT 100 all 0 0\n"
			   "rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -\n";
	CHECK_INT(read_text(text, &rt, &ft, err, sizeof err), 0);
	CHECK_INT(rt.n, 2);
	CHECK_INT(ft.n, 1);
	CHECK_INT(rt.rules[1].tcp, TCP_REDIRECT);
	CHECK_INT(ft.faults[0].delay_ms, 100);
	free(rt.rules);
	free(ft.faults);

	CHECK_INT(read_text("rule any - 0 0 65535 0 0 redirect refuse 0 0 - - - - ENETUNREACH - - - -\nnonsense\n", &rt, &ft, err,
			    sizeof err),
		  -1);
	CHECK_STR(err, "internal error: bad rule table line 2 (unknown message): nonsense\n");
	free(rt.rules);
	CHECK_INT(read_text("fault any - 0 0 65535 0 ETIMEDOUT 100 never 0 0\n", &rt, &ft, err, sizeof err), -1);
	CHECK_STR(err, "internal error: bad rule table line 1 (select): fault any - 0 0 65535 0 ETIMEDOUT 100 never 0 0\n");
	free(ft.faults);
	/* a record is no table message */
	CHECK_INT(read_text("D 1 2 hello\n", &rt, &ft, err, sizeof err), -1);
	CHECK_STR(err, "internal error: bad rule table line 1 (not a table message): D 1 2 hello\n");
	free(ft.faults);
}

TEST(by_name_rules_and_the_dns_message)
{
	struct rule r;
	CHECK_INT(parse_rule("rule any - 0 53 53 0 1 refuse dns 0 0 - - - - ECONNREFUSED - - - -", &r), 0);
	CHECK_INT(r.by_name, 1);
	CHECK_INT(r.udp, UDP_DNS);
	CHECK_INT(r.where.port_lo, 53);
	/* a by_name rule has no network of its own */
	CHECK_INT(parse_rule("rule ip4 10.0.0.0 8 0 65535 1 1 refuse refuse 0 0 - - - - ECONNREFUSED - - - -", &r), -1);
	CHECK_INT(parse_rule("rule any - 8 0 65535 0 1 refuse refuse 0 0 - - - - ECONNREFUSED - - - -", &r), -1);

	struct rule_table rt;
	struct fault_table ft;
	char err[1024];
	const char *text = "rule any - 0 53 53 0 0 pass dns 0 0 - - - - - - - - -\n"
			   "dns 5353 5354\n"
			   "rule any - 0 0 65535 0 0 pass pass 0 0 - - - - - - - - -\n";
	CHECK_INT(read_text(text, &rt, &ft, err, sizeof err), 0);
	CHECK_INT(rt.dns, 1);
	CHECK_INT(rt.dns_port4, 5353);
	CHECK_INT(rt.dns_port6, 5354);
	CHECK_INT(rt.rules[0].udp, UDP_DNS);
	rules_plan_datagrams(&rt);
	CHECK_INT(rt.dgram_mode, DGRAM_PER_DEST);
	free(rt.rules);
	/* no table without a dns message runs DNS capture */
	CHECK_INT(read_text("rule any - 0 53 53 0 0 pass dns 0 0 - - - - - - - - -\n", &rt, &ft, err, sizeof err), -1);
	CHECK_STR(err, "internal error: bad rule table: rule 0 sends datagrams to a DNS server the table has no dns message for");
	free(rt.rules);
	CHECK_INT(read_text("dns 1 2\ndns 3 4\n", &rt, &ft, err, sizeof err), -1);
	CHECK_STR(err, "internal error: bad rule table line 2 (a second dns message): dns 3 4\n");
	CHECK_INT(read_text("rule any - 0 0 65535 0 0 pass pass 0 0 - - - - - - - - -\n", &rt, &ft, err, sizeof err), 0);
	CHECK_INT(rt.dns, 0);
	free(rt.rules);
}
