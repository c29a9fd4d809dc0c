#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Same family, address and port (what getsockname reports; the scope id
 * of a loopback key is always 0). */
static int same_key(const union sa *a, const union sa *b)
{
	if (a->sa.sa_family != b->sa.sa_family || sa_port(a) != sa_port(b))
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0;
}

static unsigned hash_key(const union sa *a)
{
	const unsigned char *b;
	size_t n;
	if (a->sa.sa_family == AF_INET) {
		b = (const unsigned char *)&a->in4.sin_addr;
		n = 4;
	} else {
		b = (const unsigned char *)&a->in6.sin6_addr;
		n = 16;
	}
	uint32_t h = 2166136261u ^ sa_port(a) ^ ((uint32_t)a->sa.sa_family << 16);
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h ^ (h >> 15);
}

static int is_own_bind(const union sa *b)
{
	return b && (b->sa.sa_family == AF_INET || b->sa.sa_family == AF_INET6) && !sa_is_local(b);
}

int peers_put(struct peers *p, const union sa *local, ino_t ino, const union sa *dst, int rule, const union sa *bind)
{
	if (!p->slot && !(p->slot = calloc(PEERS_SLOTS, sizeof *p->slot)))
		return -1;
	unsigned h = hash_key(local);
	struct peer *use = NULL;
	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		struct peer *e = &p->slot[(h + i) % PEERS_SLOTS];
		if (e->local.sa.sa_family && same_key(&e->local, local)) {
			use = e; /* a later redirect from the same address and port */
			break;
		}
		if (!e->local.sa.sa_family) {
			if (!use || use->local.sa.sa_family)
				use = e;
		} else if (!use || (use->local.sa.sa_family && e->seq < use->seq)) {
			use = e;
		}
	}
	if (!use->local.sa.sa_family)
		p->count++;
	memset(use, 0, sizeof *use);
	use->local = *local;
	use->ino = ino;
	peers_as_reported(dst, &use->dst);
	if (is_own_bind(bind)) {
		use->bind = *bind;
		sa_set_port(&use->bind, 0);
	}
	use->rule = rule;
	use->seq = ++p->seq;
	return 0;
}

const struct peer *peers_find(const struct peers *p, const union sa *local, ino_t ino)
{
	if (!p->slot || (local->sa.sa_family != AF_INET && local->sa.sa_family != AF_INET6))
		return NULL;
	unsigned h = hash_key(local);
	for (unsigned i = 0; i < PEERS_PROBE; i++) {
		const struct peer *e = &p->slot[(h + i) % PEERS_SLOTS];
		if (e->local.sa.sa_family && same_key(&e->local, local))
			return e->ino == ino ? e : NULL;
	}
	return NULL;
}

void peers_free(struct peers *p)
{
	free(p->slot);
	memset(p, 0, sizeof *p);
}

int peers_is_graft(const union sa *peer, const uint16_t *ports, int n)
{
	static const unsigned char mapped_lo[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 };
	int lo;
	if (peer->sa.sa_family == AF_INET)
		lo = peer->in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	else if (peer->sa.sa_family == AF_INET6)
		lo = IN6_IS_ADDR_LOOPBACK(&peer->in6.sin6_addr) || memcmp(&peer->in6.sin6_addr, mapped_lo, 16) == 0;
	else
		return 0;
	unsigned port = sa_port(peer);
	for (int i = 0; lo && i < n; i++)
		if (ports[i] && ports[i] == port)
			return 1;
	return 0;
}

void peers_as_reported(const union sa *given, union sa *out)
{
	memset(out, 0, sizeof *out);
	if (given->sa.sa_family == AF_INET) {
		out->in4.sin_family = AF_INET;
		out->in4.sin_addr = given->in4.sin_addr;
		out->in4.sin_port = given->in4.sin_port;
	} else if (given->sa.sa_family == AF_INET6) {
		const struct in6_addr *a = &given->in6.sin6_addr;
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_addr = *a;
		out->in6.sin6_port = given->in6.sin6_port;
		if (IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MC_LINKLOCAL(a))
			out->in6.sin6_scope_id = given->in6.sin6_scope_id;
	}
}

void peers_in_family(const union sa *a, int domain, union sa *out)
{
	if (domain == AF_INET6 && a->sa.sa_family == AF_INET) {
		memset(out, 0, sizeof *out);
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = a->in4.sin_port;
		out->in6.sin6_addr.s6_addr[10] = 0xff;
		out->in6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->in6.sin6_addr.s6_addr[12], &a->in4.sin_addr, 4);
	} else {
		peers_as_reported(a, out);
	}
}

int peers_copy_len(int have_len, int32_t ulen, uint32_t actual, uint32_t *copy)
{
	*copy = 0;
	if (!have_len)
		return -EFAULT;
	if (ulen < 0)
		return -EINVAL;
	*copy = (uint32_t)ulen < actual ? (uint32_t)ulen : actual;
	return 0;
}
