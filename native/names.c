#define _GNU_SOURCE
#include "names.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracee.h"
#include "util.h"

void names_remember(struct tracer *tr, int s, const union sa *addr, unsigned port, const union sa *dst, int rule, const union sa *local)
{
	union sa key = *addr;
	sa_set_port(&key, port);
	struct stat st;
	if (fstat(s, &st) < 0 || peers_put(&tr->peers, &key, st.st_ino, dst, rule, local) < 0)
		note("cannot remember a redirected socket: getpeername will show graft's address");
}

/* Graft's loopback ports a redirected socket may be connected to: the
 * black holes (the proxy completes each handshake from the black hole's
 * address), and graft's DNS server (dns.h). */
static int is_graft(const struct tracer *tr, const union sa *peer)
{
	const uint16_t ports[] = { tr->later.hole4, tr->later.hole6, tr->rules.dns_port4, tr->rules.dns_port6 };
	return peers_is_graft(peer, ports, (int)(sizeof ports / sizeof *ports));
}

/* The table's entry for socket `s`, with its local address; NULL when graft
 * did not redirect it. */
static const struct peer *entry_of(const struct tracer *tr, int s, union sa *local)
{
	socklen_t l = sizeof *local;
	struct stat st;
	if (getsockname(s, &local->sa, &l) < 0 || fstat(s, &st) < 0)
		return NULL;
	return peers_find(&tr->peers, local, st.st_ino);
}

/* Writes `a` back as the kernel's move_addr_to_user does and makes the
 * call return without running: 0, or EFAULT / EINVAL. */
static void answer_name(const struct call *c, const union sa *a)
{
	uint32_t actual = sa_len(a), copy;
	int32_t ulen = 0;
	int have_len = peek(c->tid, c->addrlen, &ulen, sizeof ulen) == 0;
	int rc = peers_copy_len(have_len, ulen, actual, &copy);
	if (rc == 0 && copy && poke(c->tid, c->addr, a, copy) < 0)
		rc = -EFAULT;
	if (rc == 0 && poke(c->tid, c->addrlen, &actual, sizeof actual) < 0)
		rc = -EFAULT;
	if (arch_set_return(c->tid, rc) < 0 && errno != ESRCH)
		note("cannot answer a call of task %d: %s", c->tid, strerror(errno));
}

void names_getpeername(struct tracer *tr, const struct call *c)
{
	int s = grab_socket(&tr->tasks, c->tid, c->fd);
	if (s < 0)
		return;
	union sa real, local;
	socklen_t l = sizeof real;
	const struct peer *e;
	/* a socket still connecting: ENOTCONN, from the kernel */
	if (getpeername(s, &real.sa, &l) == 0 && is_graft(tr, &real) && (e = entry_of(tr, s, &local)))
		answer_name(c, &e->dst);
	close(s);
}

/* The source the route picks for `dst` with the rule's mark and interface:
 * a datagram socket connected there (which sends nothing). */
static int route_source(const struct rule *r, const union sa *dst, union sa *out)
{
	union sa to;
	if (sa_is_v4mapped(dst)) {
		memset(&to, 0, sizeof to);
		to.in4.sin_family = AF_INET;
		to.in4.sin_port = dst->in6.sin6_port;
		memcpy(&to.in4.sin_addr, &dst->in6.sin6_addr.s6_addr[12], 4);
	} else {
		to = *dst;
	}
	int u = socket(to.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return -1;
	if (r && r->eg.has_mark)
		setsockopt(u, SOL_SOCKET, SO_MARK, &r->eg.mark, sizeof r->eg.mark);
	if (r && r->eg.iface[0])
		setsockopt(u, SOL_SOCKET, SO_BINDTODEVICE, r->eg.iface, (socklen_t)strlen(r->eg.iface));
	socklen_t l = sizeof *out;
	int rc = connect(u, &to.sa, sa_len(&to)) == 0 && getsockname(u, &out->sa, &l) == 0 ? 0 : -1;
	int err = errno;
	close(u);
	errno = err;
	return rc;
}

static int same_dst(const union sa *a, const union sa *b)
{
	if (a->sa.sa_family != b->sa.sa_family || sa_port(a) != sa_port(b))
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) && a->in6.sin6_scope_id == b->in6.sin6_scope_id;
}

/* route_source, remembered a short while (peers.h: PEERS_ROUTE_MS). */
static int route_source_memo(struct peers *p, const struct rule *r, int rule, const union sa *dst, union sa *out)
{
	uint64_t now = now_ms();
	for (int i = 0; i < PEERS_ROUTES; i++) {
		const struct peer_route *m = &p->routes[i];
		if (m->dst.sa.sa_family && m->rule == rule && now - m->at < PEERS_ROUTE_MS && same_dst(&m->dst, dst)) {
			*out = m->src;
			return 0;
		}
	}
	if (route_source(r, dst, out) < 0)
		return -1;
	struct peer_route *m = &p->routes[p->next_route];
	p->next_route = (p->next_route + 1) % PEERS_ROUTES;
	*m = (struct peer_route){ *dst, rule, *out, now };
	return 0;
}

/* The source address the kernel would have given the socket (in its own
 * family) for the connect to its destination. */
static int source_of(struct tracer *tr, const struct peer *e, int domain, union sa *src)
{
	if (e->bind.sa.sa_family) {
		peers_in_family(&e->bind, domain, src);
		return 0;
	}
	const struct rule *r = e->rule >= 0 && e->rule < tr->rules.n ? &tr->rules.rules[e->rule] : NULL;
	if (r && egress_source_for(&r->eg, domain, sa_is_v4(&e->dst), src) == 0)
		return 0;
	union sa routed;
	if (route_source_memo(&tr->peers, r, e->rule, &e->dst, &routed) < 0)
		return -1;
	peers_in_family(&routed, domain, src);
	return 0;
}

/* Whether a remembered socket is still connected: a TCP one not closed, a
 * datagram one (pointed at graft's DNS server) with a peer. */
static int still_connected(int s)
{
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0)
		return ti.tcpi_state != TCP_CLOSE;
	union sa peer;
	l = sizeof peer;
	return getpeername(s, &peer.sa, &l) == 0;
}

void names_getsockname(struct tracer *tr, const struct call *c)
{
	int s = grab_socket(&tr->tasks, c->tid, c->fd);
	if (s < 0)
		return;
	union sa local, src;
	const struct peer *e = entry_of(tr, s, &local);
	/* a socket disconnected since (AF_UNSPEC) is left to the kernel */
	if (e && still_connected(s) && source_of(tr, e, local.sa.sa_family, &src) == 0) {
		sa_set_port(&src, sa_port(&local));
		answer_name(c, &src);
	}
	close(s);
}

int names_route_error(struct tracer *tr, int rule, const union sa *dst)
{
	union sa src;
	if (route_source_memo(&tr->peers, &tr->rules.rules[rule], rule, dst, &src) == 0)
		return 0;
	switch (errno) {
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EACCES:
	case EPERM:
	case EINVAL:
		return errno;
	default:
		return 0; /* graft's own trouble: the proxy's dial answers */
	}
}
