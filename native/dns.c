#define _GNU_SOURCE
#include "dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"
#include "records.h"
#include "tracee.h"
#include "tracer.h"
#include "util.h"

static unsigned hash_ino(ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 40);
}

/* The entry of socket `ino`; with `add`, a new one when there is none (a
 * free slot in its probe window, else the oldest there). NULL: none, or
 * no memory. */
static struct dns_sock *sock_of(struct dns *d, ino_t ino, int add)
{
	if (!d->slot && (!add || !(d->slot = calloc(DNS_SOCKS, sizeof *d->slot))))
		return NULL;
	unsigned h = hash_ino(ino);
	struct dns_sock *use = NULL;
	for (unsigned i = 0; i < DNS_PROBE; i++) {
		struct dns_sock *e = &d->slot[(h + i) % DNS_SOCKS];
		if (e->ino == ino)
			return e;
		if (!use || (use->ino && (!e->ino || e->seq < use->seq)))
			use = e;
	}
	if (!add)
		return NULL;
	memset(use, 0, sizeof *use);
	use->ino = ino;
	return use;
}

static int inode_of(int s, ino_t *ino)
{
	struct stat st;
	if (fstat(s, &st) < 0)
		return -1;
	*ino = st.st_ino;
	return 0;
}

/* The listener a socket of this kind reaches `dst` at; 0 when the kernel
 * would refuse the destination itself (v4-mapped on an IPv6-only socket). */
static int listener_for(const struct tracer *tr, const struct sockinfo *si, const union sa *dst, union sa *to)
{
	if (si->domain == AF_INET)
		sa_loopback(to, AF_INET, 0, tr->rules.dns_port4);
	else if (sa_is_v4mapped(dst) && si->v6only)
		return 0;
	else if (sa_is_v4mapped(dst))
		sa_loopback(to, AF_INET6, 1, tr->rules.dns_port4);
	else
		sa_loopback(to, AF_INET6, 0, tr->rules.dns_port6);
	return 1;
}

/* The socket's local address, with a port: one the kernel's autobind would
 * have given it at this call (the wildcard of its family, port 0), so the
 * port is known before the query goes out. */
static int local_port(int s, int domain, union sa *local, const char **why)
{
	socklen_t l = sizeof *local;
	if (getsockname(s, &local->sa, &l) < 0) {
		*why = "getsockname failed";
		return -ENETUNREACH;
	}
	if (sa_port(local))
		return 0;
	union sa any;
	memset(&any, 0, sizeof any);
	any.sa.sa_family = (sa_family_t)domain;
	if (bind(s, &any.sa, sa_len(&any)) < 0 && errno != EINVAL) {
		*why = "cannot bind a local port";
		return errno == EADDRINUSE ? -EAGAIN : -errno; /* EAGAIN: the kernel's autobind out of ports */
	}
	l = sizeof *local;
	if (getsockname(s, &local->sa, &l) < 0) {
		*why = "getsockname failed";
		return -ENETUNREACH;
	}
	return 0;
}

static int same_addr(const union sa *a, const union sa *b)
{
	return a->sa.sa_family == b->sa.sa_family && !memcmp(a, b, sa_len(a));
}

/* Remembers where socket `ino` meant to send; the Q record when that is
 * new. Returns 0, or -errno when the record could not go out. */
static int remember(struct tracer *tr, const struct call *c, ino_t ino, unsigned port, const union sa *to, const union sa *dst,
		    const char **why)
{
	union sa meant;
	peers_as_reported(dst, &meant);
	struct dns_sock *e = sock_of(&tr->dns, ino, 1);
	if (e && e->port == port && same_addr(&e->dst, &meant))
		return 0;
	if (e) {
		e->dst = meant;
		e->port = port;
		e->seq = ++tr->dns.seq;
	} else {
		note("cannot remember a DNS socket: its answers will show graft's address");
	}
	pid_t pid = task_tgid(&tr->tasks, c->tid);
	struct rec_who w = { pid, c->tid, task_exe(&tr->tasks, pid) };
	char line[RECORD_MAX];
	int v6 = to->sa.sa_family == AF_INET6 && !sa_is_v4mapped(to);
	size_t n = record_dns_socket(line, sizeof line, &w, v6, port, dst);
	if (!n || channel_write(&tr->chan, line, n) < 0) {
		/* graft's DNS server would not know the socket: no answer */
		if (e)
			e->ino = 0;
		*why = "graft's DNS server cannot be told about this socket";
		return -ECONNREFUSED;
	}
	return 0;
}

int dns_redirect(struct tracer *tr, const struct call *c, int s, const struct sockinfo *si, const union sa *dst, int rule, const char **why)
{
	union sa to, local;
	/* (a sendmmsg of no message sends nothing) */
	if ((c->kind == CALL_SENDMMSG && !c->vlen) || !listener_for(tr, si, dst, &to))
		return 2;
	if (!sa_port(&to)) {
		*why = "graft's DNS server has no listener of this family";
		return -ENETUNREACH;
	}
	int rc = local_port(s, si->domain, &local, why);
	ino_t ino;
	if (rc == 0 && inode_of(s, &ino) < 0) {
		*why = "cannot inspect the socket";
		rc = -ENETUNREACH;
	}
	if (rc == 0)
		rc = remember(tr, c, ino, sa_port(&local), &to, dst, why);
	if (rc < 0)
		return rc;
	if (c->kind == CALL_CONNECT) {
		/* getpeername / getsockname as natively; the key is the local
		 * address once connected: the listener's loopback address
		 * unless the program bound one */
		union sa key = sa_is_wildcard(&local) ? to : local;
		names_remember(tr, s, &key, sa_port(&local), dst, rule, &local);
	}
	if (c->kind == CALL_SENDMSG || c->kind == CALL_SENDMMSG) {
		uint64_t copy;
		if (arch_point_msg(c, &to, &copy) < 0)
			goto cannot;
		struct task *t = c->kind == CALL_SENDMMSG ? task_get(&tr->tasks, c->tid) : NULL;
		if (!t)
			return 0;
		t->awaiting_exit = EXIT_DNS_SENDMMSG;
		t->names = (struct exit_names){ .n = 1, .copy = copy, .vec = c->msg };
		return 1;
	}
	if (arch_point_addr(c, &to) < 0)
		goto cannot;
	return 0;
cannot:
	if (errno == ESRCH)
		return 0; /* the task is gone */
	*why = "cannot rewrite the call's arguments";
	return -ENETUNREACH;
}

void dns_sendmmsg_exit(pid_t tid, struct task *t)
{
	/* the kernel set msg_len in graft's copy: the program reads its own */
	long rv;
	uint32_t len;
	if (arch_exit_value(tid, &rv) == 0 && rv == 1 && peek(tid, arch_mmsg_len_at(t->names.copy, 0), &len, sizeof len) == 0)
		poke(tid, arch_mmsg_len_at(t->names.vec, 0), &len, sizeof len);
}

/* The socket's entry, by the task's descriptor. */
static const struct dns_sock *entry_for(struct tracer *tr, pid_t tid, int fd)
{
	int s = grab_socket(&tr->tasks, tid, fd);
	if (s < 0)
		return NULL;
	ino_t ino;
	struct dns_sock *e = inode_of(s, &ino) == 0 ? sock_of(&tr->dns, ino, 0) : NULL;
	close(s);
	/* a use: a long-lived socket (c-ares keeps one) is not the oldest to replace */
	if (e)
		e->seq = ++tr->dns.seq;
	return e;
}

/* The message headers of a recvmsg / recvmmsg: where each source goes. */
static int read_headers(const struct call *c, struct exit_names *x)
{
	unsigned n = c->vlen < TASK_NAMES_MAX ? (unsigned)c->vlen : TASK_NAMES_MAX;
	for (x->n = 0; x->n < n; x->n++) {
		uint64_t name = 0;
		uint32_t ulen = 0;
		unsigned i = x->n;
		if (peek(c->tid, arch_mmsg_name_at(c->msg, i), &name, sizeof name) < 0 ||
		    peek(c->tid, arch_mmsg_namelen_at(c->msg, i), &ulen, sizeof ulen) < 0)
			return -1;
		x->name[i] = name;
		x->namelen[i] = arch_mmsg_namelen_at(c->msg, i);
		x->ulen[i] = ulen;
	}
	return 0;
}

int dns_recv_entry(struct tracer *tr, const struct call *c)
{
	if (!tr->dns.slot)
		return 0; /* no socket was pointed at graft's DNS server yet */
	struct task *t = task_get(&tr->tasks, c->tid);
	if (!t || !entry_for(tr, c->tid, c->fd))
		return 0;
	struct exit_names x = { 0 };
	if (c->kind == CALL_RECVFROM) {
		x.n = 1;
		x.name[0] = c->addr;
		x.namelen[0] = c->addrlen;
		if (peek(c->tid, c->addrlen, &x.ulen[0], sizeof x.ulen[0]) < 0)
			return 0; /* EFAULT natively */
	} else if (read_headers(c, &x) < 0) {
		return 0;
	}
	t->names = x;
	t->awaiting_exit = EXIT_DNS_RECV;
	t->exit_fd = c->fd;
	return 1;
}

/* Whether the `copy` bytes the kernel wrote at `got` are graft's DNS
 * listener as the kernel reports a source (flowinfo and scope 0): the
 * bytes there must be its, for as many as the program's buffer held. */
static int from_listener(const struct tracer *tr, const union sa *got, uint32_t copy)
{
	union sa l[2];
	int n = 0;
	if (copy < sizeof(sa_family_t))
		return 0;
	if (got->sa.sa_family == AF_INET) {
		sa_loopback(&l[n++], AF_INET, 0, tr->rules.dns_port4);
	} else if (got->sa.sa_family == AF_INET6) {
		sa_loopback(&l[n++], AF_INET6, 0, tr->rules.dns_port6);
		sa_loopback(&l[n++], AF_INET6, 1, tr->rules.dns_port4);
	}
	for (int i = 0; i < n; i++)
		if (!memcmp(got, &l[i], copy < sa_len(&l[i]) ? copy : sa_len(&l[i])))
			return 1;
	return 0;
}

void dns_recv_exit(struct tracer *tr, pid_t tid, struct task *t)
{
	long rv;
	if (arch_exit_value(tid, &rv) < 0 || rv < 0)
		return;
	const struct dns_sock *e = entry_for(tr, tid, t->exit_fd);
	if (!e)
		return;
	struct exit_names *x = &t->names;
	/* recvmmsg returns how many messages it read; the others one */
	unsigned n = t->names.n;
	if (n > 1 && (unsigned long)rv < n)
		n = (unsigned)rv;
	for (unsigned i = 0; i < n; i++) {
		uint32_t klen;
		union sa got;
		memset(&got, 0, sizeof got);
		if (!x->name[i] || peek(tid, x->namelen[i], &klen, sizeof klen) < 0)
			continue;
		/* what the kernel wrote: at most the program's length (a
		 * truncated source is recognised by the bytes it has) */
		uint32_t copy = klen < x->ulen[i] ? klen : x->ulen[i];
		if (copy > sizeof got || peek(tid, x->name[i], &got, copy) < 0 || !from_listener(tr, &got, copy))
			continue;
		/* the meant server, as the kernel would have written it: cut to
		 * the program's buffer, the full length reported */
		uint32_t len = sa_len(&e->dst);
		if (e->dst.sa.sa_family != got.sa.sa_family)
			continue;
		poke(tid, x->name[i], &e->dst, len < x->ulen[i] ? len : x->ulen[i]);
		poke(tid, x->namelen[i], &len, sizeof len);
	}
}
