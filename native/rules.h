/* The rule table graft's Node side compiles (src/rules/compile.ts) and hands
 * over on a file descriptor before the program starts: one rule a line,
 * first match wins, so a connect is decided here without a round trip.
 *
 *   FAMILY ADDR PREFIX PORTLO PORTHI EXPLICIT TCP UDP ERRNO MARK IFACE SRC4 SRC6
 *
 * FAMILY 0 (any), 4 or 6; ADDR "-" with FAMILY 0; EXPLICIT 1 when the rule
 * names a network, the only kind that may match a loopback destination;
 * TCP pass|refuse|redirect|inplace; UDP pass|refuse|egress; ERRNO a number
 * (for refuse); MARK, IFACE, SRC4, SRC6 the egress options or "-".
 * Included once, by tracer.c. */

enum tcp_action { TCP_PASS, TCP_REFUSE, TCP_REDIRECT, TCP_INPLACE };
enum udp_action { UDP_PASS, UDP_REFUSE, UDP_EGRESS };

struct rule {
	int family; /* 0: any destination */
	unsigned char net[16];
	int prefix;
	unsigned port_lo, port_hi;
	int explicit_net;
	enum tcp_action tcp;
	enum udp_action udp;
	int err;
	struct egress eg;
};

static struct rule *rules;
static int nrules;

/* Connect faults, from "fault" lines of the same table, checked before the
 * rules: the first one selected decides the connect.
 *   fault FAMILY ADDR PREFIX PORTLO PORTHI EXPLICIT ERRNO DELAY_MS SELECT N PROB
 * ERRNO 0: a handshake delay only (the connect goes on after DELAY_MS);
 * else the connect fails with it (after DELAY_MS). SELECT all|prob|first|
 * every|after with N (first N, every Nth, after N) or PROB (0 to 1). */
enum select_kind { SEL_ALL, SEL_PROB, SEL_FIRST, SEL_EVERY, SEL_AFTER };
struct fault {
	struct rule where; /* only the match fields are used */
	int err;
	unsigned delay_ms;
	enum select_kind sel;
	unsigned long n;
	double prob;
	unsigned long seen;   /* matching connects so far */
	unsigned long passed; /* ... of which no fault failed */
	unsigned long last;   /* the connect (connects_seen) it matched last */
};
static unsigned long connects_seen;
static struct fault *faults;
static int nfaults;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: --seed makes probabilistic faults repeat run to run */
static double rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* FAMILY and ADDR of a table line into the rule's match. */
static int parse_net(const char *fam, const char *addr, struct rule *r)
{
	r->family = atoi(fam);
	if (r->family == 4)
		return inet_pton(AF_INET, addr, r->net) == 1 ? 0 : -1;
	if (r->family == 6)
		return inet_pton(AF_INET6, addr, r->net) == 1 ? 0 : -1;
	return r->family == 0 ? 0 : -1;
}

static int parse_rule_line(char *line, struct rule *r)
{
	char fam[4], addr[64], tcp[16], udp[16], mark[16], iface[IFNAMSIZ + 1], src4[64], src6[64];
	memset(r, 0, sizeof *r);
	if (sscanf(line, "%3s %63s %d %u %u %d %15s %15s %d %15s %16s %63s %63s", fam, addr, &r->prefix, &r->port_lo, &r->port_hi,
		   &r->explicit_net, tcp, udp, &r->err, mark, iface, src4, src6) != 13)
		return -1;
	if (parse_net(fam, addr, r) < 0)
		return -1;
	if (!strcmp(tcp, "pass")) r->tcp = TCP_PASS;
	else if (!strcmp(tcp, "refuse")) r->tcp = TCP_REFUSE;
	else if (!strcmp(tcp, "redirect")) r->tcp = TCP_REDIRECT;
	else if (!strcmp(tcp, "inplace")) r->tcp = TCP_INPLACE;
	else return -1;
	if (!strcmp(udp, "pass")) r->udp = UDP_PASS;
	else if (!strcmp(udp, "refuse")) r->udp = UDP_REFUSE;
	else if (!strcmp(udp, "egress")) r->udp = UDP_EGRESS;
	else return -1;
	if (strcmp(mark, "-")) {
		char *end;
		unsigned long v = strtoul(mark, &end, 0);
		if (*end || v > UINT32_MAX)
			return -1;
		r->eg.has_mark = 1;
		r->eg.mark = (uint32_t)v;
	}
	if (strcmp(iface, "-")) {
		if (strlen(iface) >= sizeof r->eg.iface)
			return -1;
		strcpy(r->eg.iface, iface);
	}
	if (strcmp(src4, "-")) {
		if (inet_pton(AF_INET, src4, &r->eg.src4) != 1)
			return -1;
		r->eg.has_src4 = 1;
	}
	if (strcmp(src6, "-")) {
		if (inet_pton(AF_INET6, src6, &r->eg.src6) != 1)
			return -1;
		r->eg.has_src6 = 1;
	}
	return 0;
}

static int parse_fault_line(char *line, struct fault *f)
{
	char fam[4], addr[64], sel[8];
	memset(f, 0, sizeof *f);
	struct rule *r = &f->where;
	if (sscanf(line, "%3s %63s %d %u %u %d %d %u %7s %lu %lf", fam, addr, &r->prefix, &r->port_lo, &r->port_hi, &r->explicit_net, &f->err,
		   &f->delay_ms, sel, &f->n, &f->prob) != 11)
		return -1;
	if (parse_net(fam, addr, r) < 0)
		return -1;
	if (!strcmp(sel, "all")) f->sel = SEL_ALL;
	else if (!strcmp(sel, "prob")) f->sel = SEL_PROB;
	else if (!strcmp(sel, "first")) f->sel = SEL_FIRST;
	else if (!strcmp(sel, "every")) f->sel = SEL_EVERY;
	else if (!strcmp(sel, "after")) f->sel = SEL_AFTER;
	else return -1;
	return 0;
}

static void load_rules(int fd)
{
	FILE *f = fdopen(fd, "r");
	if (!f)
		die(2, "--rules-fd %d: %s", fd, strerror(errno));
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (!strncmp(line, "fault ", 6)) {
			faults = realloc(faults, (size_t)(nfaults + 1) * sizeof *faults);
			if (!faults || parse_fault_line(line + 6, &faults[nfaults]) < 0)
				die(2, "internal error: bad fault line %d: %s", lineno, line);
			nfaults++;
			continue;
		}
		rules = realloc(rules, (size_t)(nrules + 1) * sizeof *rules);
		if (!rules)
			die(2, "out of memory");
		if (parse_rule_line(line, &rules[nrules]) < 0)
			die(2, "internal error: bad rule table line %d: %s", lineno, line);
		nrules++;
	}
	fclose(f);
}

/* What rules match a destination on, worked out once per call: family and
 * 16 address bytes (v4-mapped counts as IPv4), port, and loopback. */
struct dest_key {
	int family;
	unsigned char addr[16];
	unsigned port;
	int loopback;
};

static struct dest_key dest_key_of(const union sa *dst)
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

static int rule_covers(const struct rule *r, const struct dest_key *k)
{
	if (k->loopback && !r->explicit_net)
		return 0;
	if (k->port < r->port_lo || k->port > r->port_hi)
		return 0;
	return !r->family || (r->family == k->family && prefix_match(k->addr, r->net, r->prefix));
}

/* The index of the first rule matching `dst`, or -1: a loopback
 * destination no rule names explicitly, which graft passes untouched. */
static int match_rule(const union sa *dst)
{
	struct dest_key k = dest_key_of(dst);
	for (int i = 0; i < nrules; i++)
		if (rule_covers(&rules[i], &k))
			return i;
	return -1;
}

/* The fault that takes this connect, or NULL. Every matching fault counts
 * the connect, selected or not, so "every 3rd" means the connects to its
 * destinations; "after 5" means after five of them went through (a
 * connect another fault failed does not count; a delayed one does). */
static struct fault *select_fault(const union sa *dst)
{
	if (!nfaults)
		return NULL;
	struct fault *chosen = NULL;
	struct dest_key k = dest_key_of(dst);
	unsigned long now = ++connects_seen;
	for (int i = 0; i < nfaults; i++) {
		struct fault *f = &faults[i];
		if (!rule_covers(&f->where, &k))
			continue;
		f->last = now;
		unsigned long seen = ++f->seen;
		int take = 0;
		switch (f->sel) {
		case SEL_ALL: take = 1; break;
		case SEL_PROB: take = rng_next() < f->prob; break;
		case SEL_FIRST: take = seen <= f->n; break;
		case SEL_EVERY: take = f->n && seen % f->n == 0; break;
		case SEL_AFTER: take = f->passed >= f->n; break;
		}
		if (take && !chosen)
			chosen = f;
	}
	if (!chosen || !chosen->err) {
		for (int i = 0; i < nfaults; i++)
			if (faults[i].last == now)
				faults[i].passed++;
	}
	return chosen;
}

/* How datagram sockets are handled, decided once from the table:
 *   DGRAM_UNTOUCHED   no rule sets anything for them
 *   DGRAM_UNIFORM     every destination gets the same egress (`dgram_egress`):
 *                     a mark is set as the socket is made, interface and
 *                     source before it first sends
 *   DGRAM_PER_DEST    destinations differ (or some are refused): decided at
 *                     each connect and each unconnected send */
enum dgram_mode { DGRAM_UNTOUCHED, DGRAM_UNIFORM, DGRAM_PER_DEST };
static enum dgram_mode dgram_mode;
static const struct egress *dgram_egress;

static void plan_datagrams(void)
{
	static const struct egress none;
	dgram_mode = DGRAM_UNTOUCHED;
	dgram_egress = NULL;
	for (int i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];
		const struct egress *e = r->udp == UDP_EGRESS ? &r->eg : &none;
		if (r->udp == UDP_REFUSE || (dgram_egress && !egress_equal(dgram_egress, e))) {
			dgram_mode = DGRAM_PER_DEST;
			dgram_egress = NULL;
			return;
		}
		dgram_egress = e;
	}
	if (dgram_egress && egress_any(dgram_egress))
		dgram_mode = DGRAM_UNIFORM;
}
