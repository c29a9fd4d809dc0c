#define _GNU_SOURCE
#include "later.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracee.h"
#include "util.h"

static int prepare_hole(int s, int family)
{
	int one = 1;
	if (setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0))
		return -1;
	return 0;
}

/* A SYN is dropped, unanswered, when a filter on the listener drops every
 * packet; where a socket filter may not be attached (some sandboxes refuse
 * it to unprivileged users), when the listener's accept queue is full: a
 * backlog of 0 holds one connection, which graft makes and never accepts. */
static int drop_every_syn(int s, int family, uint16_t port)
{
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop };
	if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0)
		return listen(s, SOMAXCONN);
	if (listen(s, 0) < 0)
		return -1;
	union sa a;
	sa_loopback(&a, family, 0, port);
	int filler = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (filler < 0 || connect(filler, &a.sa, sa_len(&a)) < 0)
		return -1;
	return 0; /* the filler stays open for the run */
}

/* A loopback TCP socket of graft's, set up by `prepare` (or NULL) and bound
 * to port 0; its address in `a`. Returns the socket, or -1. */
static int bound_loopback(int family, int (*prepare)(int s, int family), union sa *a)
{
	sa_loopback(a, family, 0, 0);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	socklen_t l = sizeof *a;
	if ((prepare && prepare(s, family) < 0) || bind(s, &a->sa, sa_len(a)) < 0 || getsockname(s, &a->sa, &l) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* (Both kept open for the run: the port stays graft's.) */
uint16_t black_hole(int family)
{
	union sa a;
	int s = bound_loopback(family, prepare_hole, &a);
	if (s < 0)
		return 0;
	if (drop_every_syn(s, family, (uint16_t)sa_port(&a)) < 0) {
		close(s);
		return 0;
	}
	return (uint16_t)sa_port(&a);
}

uint16_t closed_port(int family)
{
	union sa a;
	return bound_loopback(family, NULL, &a) < 0 ? 0 : (uint16_t)sa_port(&a);
}

/* A timeout or a reset always comes from the far end; a refusal or an
 * unreachable network/host after a delay comes from the network (a RST,
 * an ICMP error); without a delay the last two are the local routing's
 * answer, which connect() gives at once, as are EACCES and EPERM (local
 * policy). */
int answered_later(int err, unsigned delay_ms)
{
	switch (err) {
	case ETIMEDOUT:
	case ECONNRESET:
		return 1;
	case ECONNREFUSED:
	case ENETUNREACH:
	case EHOSTUNREACH:
		return delay_ms > 0;
	default:
		return 0;
	}
}

/* Removes entry i (the last one takes its place). */
static void forget_failed(struct later *l, int i)
{
	l->nunread -= l->failed[i].unread;
	l->failed[i] = l->failed[--l->nfailed];
}

int later_doom(struct later *l, struct channel *ch, int s, uint64_t due, int err, char *record)
{
	int fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		channel_send_kept(ch, record);
		return -1;
	}
	if (l->ndoomed == l->capdoomed) {
		l->capdoomed = l->capdoomed ? l->capdoomed * 2 : 16;
		l->doomed = realloc(l->doomed, (size_t)l->capdoomed * sizeof *l->doomed);
		if (!l->doomed)
			die(2, "out of memory");
	}
	l->doomed[l->ndoomed++] = (struct doomed){ fd, due, err, 0, record };
	return 0;
}

/* (with l->lock held) */
static void remember_failed(struct later *l, ino_t ino, int err, uint64_t now)
{
	int oldest = 0;
	for (int i = 0; i < l->nfailed; i++) {
		if (l->failed[i].at + FAILED_KEEP_MS < now)
			forget_failed(l, i--);
		else if (l->failed[i].at < l->failed[oldest].at)
			oldest = i;
	}
	if (l->nfailed == FAILED_MAX)
		forget_failed(l, oldest);
	l->failed[l->nfailed++] = (struct failed){ ino, err, 1, now };
	l->nunread++;
}

/* (with l->lock held) */
static struct failed *failed_socket(struct later *l, int s)
{
	struct stat st;
	if (!l->nfailed || fstat(s, &st) < 0)
		return NULL;
	for (int i = 0; i < l->nfailed; i++)
		if (l->failed[i].ino == st.st_ino)
			return &l->failed[i];
	return NULL;
}

/* Remembers the failure, then fails the socket (in this order: a poller
 * woken by the disconnect must find the errno). */
static void fail_now(struct later *l, int fd, ino_t ino, int err, uint64_t now)
{
	pthread_mutex_lock(&l->lock);
	remember_failed(l, ino, err, now);
	pthread_mutex_unlock(&l->lock);
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	connect(fd, &unspec, sizeof unspec);
}

int later_tcp_state(int fd, int *started)
{
	struct tcp_info ti;
	for (int read = 0; read < 2; read++) {
		socklen_t len = sizeof ti;
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
			return -1;
		if (ti.tcpi_state != TCP_CLOSE || !ti.tcpi_advmss)
			break; /* consistent: only a torn read shows CLOSE with an MSS */
	}
	*started = ti.tcpi_advmss != 0;
	return ti.tcpi_state;
}

int later_fail_handed(struct later *l, int fd, int err)
{
	struct stat st;
	int started, state = later_tcp_state(fd, &started);
	if (state < 0 || fstat(fd, &st) < 0)
		return 0;
	if (state == TCP_SYN_SENT) {
		fail_now(l, fd, st.st_ino, err, now_ms());
		return 0;
	}
	return state == TCP_CLOSE && !started;
}

/* A socket still in TCP_CLOSE is one whose task has not run its connect
 * yet (the tracer resumed it a moment ago): it is looked at again shortly. */
uint64_t later_fail_due(struct later *l, struct channel *ch, uint64_t now)
{
	uint64_t next = 0;
	for (int i = 0; i < l->ndoomed; i++) {
		struct doomed *d = &l->doomed[i];
		if (d->due <= now) {
			struct sockinfo si;
			int state = inspect_socket(d->fd, &si) == 0 ? si.state : -1;
			if (state == TCP_CLOSE && d->tries++ < 200) {
				d->due = now + 5;
			} else {
				if (state == TCP_SYN_SENT) {
					struct stat st;
					if (fstat(d->fd, &st) == 0)
						fail_now(l, d->fd, st.st_ino, d->err, now);
				}
				close(d->fd);
				channel_send_kept(ch, d->record);
				l->doomed[i--] = l->doomed[--l->ndoomed];
				continue;
			}
		}
		if (!next || d->due < next)
			next = d->due;
	}
	return next;
}

/* Takes the socket's pending error: ECONNRESET from the disconnect stands
 * for the fault's errno; anything else (or nothing) is the kernel's own. */
static int take_error(int s, const struct failed *f)
{
	int v = 0;
	socklen_t l = sizeof v;
	getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &l);
	return v == ECONNRESET && f->unread ? f->err : v;
}

/* The kernel answers a second connect after an asynchronous failure with
 * the error, or ECONNABORTED once the error was read; then the socket may
 * connect afresh. */
int later_connect_again(struct later *l, const struct call *c, int s)
{
	pthread_mutex_lock(&l->lock);
	struct failed *f = failed_socket(l, s);
	int err = f ? take_error(s, f) : 0;
	if (f)
		forget_failed(l, (int)(f - l->failed));
	pthread_mutex_unlock(&l->lock);
	if (!f)
		return 0;
	if (arch_set_return(c->tid, -(err ? err : ECONNABORTED)) < 0 && errno != ESRCH)
		note("cannot answer a connect of task %d: %s", c->tid, strerror(errno));
	return 1;
}

long later_connect_returned(struct later *l, int s, long rv)
{
	/* The blocked connect woke to graft's disconnect: ECONNRESET, or EPIPE
	 * from kernels that tell a disconnect during connect apart (6.6+). */
	if (rv != -ECONNRESET && rv != -EPIPE)
		return rv;
	pthread_mutex_lock(&l->lock);
	struct failed *f = failed_socket(l, s);
	if (f) {
		/* natively the connect takes the error: none stays pending */
		int pending = 0;
		socklen_t len = sizeof pending;
		getsockopt(s, SOL_SOCKET, SO_ERROR, &pending, &len);
		if (f->unread)
			rv = -f->err;
		forget_failed(l, (int)(f - l->failed));
	}
	pthread_mutex_unlock(&l->lock);
	return rv;
}

void later_so_error(struct later *l, struct task_table *tt, const struct call *c)
{
	if (!__atomic_load_n(&l->nunread, __ATOMIC_RELAXED))
		return;
	int s = grab_socket(tt, c->tid, c->fd);
	if (s < 0)
		return;
	pthread_mutex_lock(&l->lock);
	struct failed *f = failed_socket(l, s);
	uint32_t len;
	if (f && f->unread && peek(c->tid, c->optlen, &len, sizeof len) == 0 && len >= sizeof(int)) {
		/* a read before graft failed it finds no error (or the
		 * kernel's own): the failure stays unread */
		int v = take_error(s, f);
		if (v == f->err) {
			f->unread = 0;
			l->nunread--;
		}
		len = sizeof v;
		if (poke(c->tid, c->optval, &v, sizeof v) == 0 && poke(c->tid, c->optlen, &len, sizeof len) == 0)
			arch_set_return(c->tid, 0);
		else
			arch_set_return(c->tid, -EFAULT);
	}
	pthread_mutex_unlock(&l->lock);
	close(s);
}
