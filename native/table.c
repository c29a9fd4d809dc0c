#define _GNU_SOURCE
#include "table.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FAMILY and ADDR of a table line into a match. */
static int parse_net(const char *fam, const char *addr, struct match *m)
{
	m->family = atoi(fam);
	if (m->family == 4)
		return inet_pton(AF_INET, addr, m->net) == 1 ? 0 : -1;
	if (m->family == 6)
		return inet_pton(AF_INET6, addr, m->net) == 1 ? 0 : -1;
	return m->family == 0 ? 0 : -1;
}

/* The index of `word` in the NULL-terminated `names`, or -1. */
static int keyword(const char *word, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(word, names[i]))
			return i;
	return -1;
}

static const char *const tcp_names[] = { "pass", "refuse", "redirect", "inplace", NULL };
static const char *const udp_names[] = { "pass", "refuse", "egress", NULL };
static const char *const select_names[] = { "all", "prob", "first", "every", "after", NULL };

/* MARK IFACE SRC4 SRC6 of a rule line, each "-" when not set. */
static int parse_egress(const char *mark, const char *iface, const char *src4, const char *src6, struct egress *eg)
{
	if (strcmp(mark, "-")) {
		char *end;
		unsigned long v = strtoul(mark, &end, 0);
		if (*end || v > UINT32_MAX)
			return -1;
		eg->has_mark = 1;
		eg->mark = (uint32_t)v;
	}
	if (strcmp(iface, "-")) {
		if (strlen(iface) >= sizeof eg->iface)
			return -1;
		strcpy(eg->iface, iface);
	}
	if (strcmp(src4, "-")) {
		if (inet_pton(AF_INET, src4, &eg->src4) != 1)
			return -1;
		eg->has_src4 = 1;
	}
	if (strcmp(src6, "-")) {
		if (inet_pton(AF_INET6, src6, &eg->src6) != 1)
			return -1;
		eg->has_src6 = 1;
	}
	return 0;
}

int table_parse_rule(const char *line, struct rule *r)
{
	char fam[4], addr[64], tcp[16], udp[16], mark[16], iface[IFNAMSIZ + 1], src4[64], src6[64];
	struct match *m = &r->where;
	memset(r, 0, sizeof *r);
	if (sscanf(line, "%3s %63s %d %u %u %d %15s %15s %d %15s %16s %63s %63s", fam, addr, &m->prefix, &m->port_lo, &m->port_hi,
		   &m->explicit_net, tcp, udp, &r->err, mark, iface, src4, src6) != 13)
		return -1;
	if (parse_net(fam, addr, m) < 0)
		return -1;
	int t = keyword(tcp, tcp_names), u = keyword(udp, udp_names);
	if (t < 0 || u < 0)
		return -1;
	r->tcp = (enum tcp_action)t;
	r->udp = (enum udp_action)u;
	return parse_egress(mark, iface, src4, src6, &r->eg);
}

int table_parse_fault(const char *line, struct fault *f)
{
	char fam[4], addr[64], sel[8];
	struct match *m = &f->where;
	memset(f, 0, sizeof *f);
	if (sscanf(line, "%3s %63s %d %u %u %d %d %u %7s %lu %lf", fam, addr, &m->prefix, &m->port_lo, &m->port_hi, &m->explicit_net,
		   &f->err, &f->delay_ms, sel, &f->n, &f->prob) != 11)
		return -1;
	if (parse_net(fam, addr, m) < 0)
		return -1;
	int s = keyword(sel, select_names);
	if (s < 0)
		return -1;
	f->sel = (enum select_kind)s;
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

int table_read(FILE *in, struct rule_table *rules, struct fault_table *faults, char *err, size_t errlen)
{
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof line, in)) {
		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (!strncmp(line, "fault ", 6)) {
			if (!grow((void **)&faults->faults, faults->n, sizeof *faults->faults) ||
			    table_parse_fault(line + 6, &faults->faults[faults->n]) < 0) {
				snprintf(err, errlen, "internal error: bad fault line %d: %s", lineno, line);
				return -1;
			}
			faults->n++;
			continue;
		}
		if (!grow((void **)&rules->rules, rules->n, sizeof *rules->rules)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (table_parse_rule(line, &rules->rules[rules->n]) < 0) {
			snprintf(err, errlen, "internal error: bad rule table line %d: %s", lineno, line);
			return -1;
		}
		rules->n++;
	}
	return 0;
}
