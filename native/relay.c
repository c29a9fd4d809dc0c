#define _GNU_SOURCE
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "records.h"
#include "util.h"

/* Times here are in microseconds (now_us).
 *
 * The handshake can only complete once the program's task has run the
 * connect it was resumed into, and a dial over a fast path often answers
 * before that: the relay looks at the program's socket first (its state,
 * through the duplicate), every 20 us for the first 2 ms, then every 2 ms,
 * then every 20 ms. A handshake refused is tried again on the same
 * schedule. After 3 s (the Node proxy's patience, which says why) graft
 * concludes the program gave the connect up. */
#define WAIT_STEP_US 20
#define WAIT_STEP_SLOW_US 2000
#define WAIT_STEP_SLOWER_US 20000
#define WAIT_FAST_TRIES 100
#define WAIT_SLOW_TRIES 150
#define HANDSHAKE_PATIENCE_US 3000000
/* A failure for a connect the program's task has not started yet is
 * tried again this often, this long (handover.c's figures). */
#define FAIL_RETRY_US 5000
#define FAIL_GIVE_UP_US 30000000
/* Pipes of 1 MiB move a bulk stream in fewer calls and wake-ups (iperf3:
 * forward 0.75 -> 0.84, reverse 0.57 -> 0.78 of native against the
 * default 64 KiB; growing a pipe only once a burst filled it gave back a
 * tenth). The kernel charges a pipe's capacity to its user's
 * pipe-user-pages-soft (64 MiB by default), which the program shares: at
 * most 16 big pipes exist at once, in lanes and the pool together, and
 * pipes made beyond them keep the default size. */
#define BIG_PIPES_MAX 16
#define PIPE_DEFAULT (1 << 16)
#define PIPE_BIG (1 << 20)
/* Descriptors the relay leaves to the tracer's main thread: out of them,
 * the main thread could not take the duplicate with which it puts a
 * failed connect's errno in place of the kernel's ECONNRESET (SO_ERROR, a
 * blocking connect's return), and the program would read ECONNRESET for
 * the very connects graft could not serve. Descriptors are handed out
 * lowest first, so one numbered this close to the limit means no more
 * than this many are left. */
#define FDS_LEFT_TO_THE_TRACER 16
/* After the program's exit, how often a socket still sending what the
 * program sent is looked at. */
#define AT_EXIT_POLL_US 10000
#define POOL_MAX ((int)(sizeof((struct relay *)0)->pool / sizeof((struct relay *)0)->pool[0]))
/* The epoll tag of the program's side (a connection's pointer is at least
 * 8-aligned; the destination's side is the bare pointer). The wake-up
 * eventfd and the timerfd have keys no pointer has. */
#define TAG_PROGRAM 1u
#define KEY_WAKE 0u
#define KEY_TIMER 2u

/* DIALING: to the destination, or to the SOCKS5 proxy; SOCKS_*: the
 * proxy's handshake, waiting for its method choice, its answer to the
 * user/password, its reply to CONNECT; HANDSHAKING: with the program's
 * socket; then RELAYING. FAILING: the program's connect is failed once its
 * task has started it. */
enum conn_state { DIALING, SOCKS_METHOD, SOCKS_AUTH, SOCKS_REPLY, HANDSHAKING, RELAYING, FAILING, ENDED };

/* The longest SOCKS5 reply: 4 bytes, a name of up to 255 bytes and its
 * length byte, a port. */
#define SOCKS_REPLY_MAX (4 + 1 + 255 + 2)

/* One direction: bytes from `from` through a pipe to `to`. */
struct lane {
	int from, to;
	int pipe[2];    /* pipe[0] < 0: none held */
	size_t size;    /* the pipe's capacity */
	size_t queued;  /* bytes in the pipe */
	uint64_t moved; /* bytes handed to `to` */
	int eof;        /* `from` has ended */
	int shut;       /* `to` was shut for writing after the eof */
};

struct relay_conn {
	enum conn_state state;
	pid_t pid, tid;
	char *exe;
	union sa dst, peer, hole;
	int rule;
	int held; /* the duplicate of the program's socket, until it connected */
	int dial; /* to the destination */
	int prog; /* the program's connection (the handshake's socket) */
	uint64_t started;
	uint64_t due;                         /* when its timer fires, now_us (0: none) */
	uint64_t since;                       /* HANDSHAKING: first look; FAILING: the dial's failure (now_us) */
	int tries;                            /* HANDSHAKING */
	int fail_err;                         /* FAILING: the errno the program's connect gets */
	int at_exit;                          /* the program exited while it was relayed */
	struct lane up, down;                 /* up: program -> destination */
	const struct socks_hop *socks;        /* the rule's SOCKS5 proxy, or NULL */
	unsigned char reply[SOCKS_REPLY_MAX]; /* SOCKS_*: what the proxy said so far */
	size_t have, need;                    /* bytes in reply; bytes this step reads */
	struct relay_conn *prev, *next;       /* r->conns; ENDED: r->ended */
	int timed;                            /* in r->timed */
};

int relay_program_errno(const struct dial_settings *d, int err)
{
	for (int i = 0; i < d->npassthrough; i++)
		if (d->passthrough[i] == err)
			return err;
	return ECONNREFUSED;
}

void relay_init(struct relay *r, struct later *l, int chan_fd)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	r->later = l;
	r->chan.fd = chan_fd;
	r->wake = r->epfd = r->timer = -1;
}

/* ---------- records ---------- */

static void send_record(struct relay *r, const char *line, size_t n)
{
	if (n)
		channel_defer(&r->chan, line, n);
}

static void record_socks_end(struct relay *r, struct relay_conn *c, enum bnd_relay_end end, int err, int socks_code)
{
	char line[RECORD_MAX];
	struct rec_who w = { c->pid, c->tid, c->exe ? c->exe : "?" };
	struct relay_outcome o = {
		c->up.moved, c->down.moved, (unsigned)((now_us() - c->started) / 1000), end, err, socks_code, c->at_exit
	};
	send_record(r, line, record_relayed(line, sizeof line, &w, &c->dst, &c->peer, c->rule, &o));
}

static void record_end(struct relay *r, struct relay_conn *c, enum bnd_relay_end end, int err)
{
	record_socks_end(r, c, end, err, -1);
}

/* ---------- connections ---------- */

static void set_due(struct relay *r, struct relay_conn *c, uint64_t due)
{
	c->due = due;
	if (!due || c->timed)
		return;
	if (r->ntimed == r->captimed) {
		size_t cap = r->captimed ? r->captimed * 2 : 64;
		struct relay_conn **t = realloc(r->timed, cap * sizeof *t);
		if (!t)
			die(2, "out of memory");
		r->timed = t;
		r->captimed = cap;
	}
	r->timed[r->ntimed++] = c;
	c->timed = 1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A socket closed with a reset (SO_LINGER 0), as a reset is passed on. */
static void reset_fd(int *fd)
{
	if (*fd < 0)
		return;
	struct linger lg = { 1, 0 };
	setsockopt(*fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close_fd(fd);
}

/* A descriptor the relay just made, or -1 (errno EMFILE) when it is among
 * the last ones, which the relay leaves to the main thread. */
static int keep_fd(const struct relay *r, int fd)
{
	if (fd < 0 || fd < r->fd_cap)
		return fd;
	close(fd);
	errno = EMFILE;
	return -1;
}

int relay_hold(const struct relay *r, int s)
{
	return keep_fd(r, fcntl(s, F_DUPFD_CLOEXEC, 0));
}

/* socket(), within the relay's share of descriptors */
static int relay_socket(const struct relay *r, int family)
{
	return keep_fd(r, socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

static void close_pipe(struct relay *r, const int fds[2], size_t size)
{
	close(fds[0]);
	close(fds[1]);
	if (size > PIPE_DEFAULT)
		r->nbig--;
}

/* A lane's pipe goes back to the pool when empty (closed otherwise). */
static void put_pipe(struct relay *r, struct lane *l)
{
	if (l->pipe[0] < 0)
		return;
	if (l->queued == 0 && r->npool < POOL_MAX)
		r->pool[r->npool++] = (struct pooled_pipe){ { l->pipe[0], l->pipe[1] }, l->size };
	else
		close_pipe(r, l->pipe, l->size);
	l->pipe[0] = l->pipe[1] = -1;
	l->queued = 0;
	l->size = 0;
}

/* A pipe for a lane with bytes to move: a pooled one, or a new one (big
 * while fewer than BIG_PIPES_MAX exist; a failed resize keeps 64 KiB). */
static int get_pipe(struct relay *r, struct lane *l)
{
	if (l->pipe[0] >= 0)
		return 0;
	if (r->npool) {
		struct pooled_pipe p = r->pool[--r->npool];
		l->pipe[0] = p.fds[0];
		l->pipe[1] = p.fds[1];
		l->size = p.size;
		return 0;
	}
	if (pipe2(l->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	if (keep_fd(r, l->pipe[0] > l->pipe[1] ? l->pipe[0] : l->pipe[1]) < 0) {
		close(l->pipe[0] > l->pipe[1] ? l->pipe[1] : l->pipe[0]);
		l->pipe[0] = l->pipe[1] = -1;
		return -1;
	}
	l->size = PIPE_DEFAULT;
	if (r->nbig < BIG_PIPES_MAX && fcntl(l->pipe[1], F_SETPIPE_SZ, PIPE_BIG) >= 0) {
		l->size = PIPE_BIG;
		r->nbig++;
	}
	return 0;
}

/* Ends a connection: its sockets closed, its memory freed once the
 * current round of events is through (a later event of the round may
 * name it: it is ENDED then). */
static void conn_free(struct relay *r, struct relay_conn *c)
{
	put_pipe(r, &c->up);
	put_pipe(r, &c->down);
	close_fd(&c->held);
	close_fd(&c->dial);
	close_fd(&c->prog);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nconns--;
	if (c->timed) {
		for (size_t i = 0; i < r->ntimed; i++)
			if (r->timed[i] == c)
				r->timed[i] = r->timed[--r->ntimed];
		c->timed = 0;
	}
	c->state = ENDED;
	/* with nothing relayed, the pool's pipes go too: graft holds no
	 * descriptor for connections that are gone */
	while (!r->nconns && r->npool) {
		r->npool--;
		close_pipe(r, r->pool[r->npool].fds, r->pool[r->npool].size);
	}
	c->prev = NULL;
	c->next = r->ended;
	r->ended = c;
}

static void free_ended(struct relay *r)
{
	while (r->ended) {
		struct relay_conn *c = r->ended;
		r->ended = c->next;
		free(c->exe);
		free(c);
	}
}

/* Fails the program's connect with `err` (its socket still waits). When
 * its task has not run the connect yet, tried again later. */
static void fail_program(struct relay *r, struct relay_conn *c, int err)
{
	close_fd(&c->dial);
	close_fd(&c->prog);
	if (c->held >= 0 && later_fail_handed(r->later, c->held, err)) {
		c->state = FAILING;
		c->fail_err = err;
		c->since = now_us();
		set_due(r, c, c->since + FAIL_RETRY_US);
		return;
	}
	conn_free(r, c);
}

static void dial_failed(struct relay *r, struct relay_conn *c, int err)
{
	record_end(r, c, BND_RELAY_END_DIAL, err);
	fail_program(r, c, relay_program_errno(&r->dial, err));
}

/* The program's connect cannot be completed: it fails cleanly (ECONNREFUSED
 * when graft is out of descriptors, as the Node proxy answers). */
static void handshake_failed(struct relay *r, struct relay_conn *c, int err)
{
	record_end(r, c, BND_RELAY_END_HANDSHAKE, err);
	fail_program(r, c, err == EMFILE || err == ENFILE ? ECONNREFUSED : ECONNABORTED);
}

static void watch(struct relay *r, int fd, struct relay_conn *c, unsigned tag, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(uintptr_t)c | tag };
	epoll_ctl(r->epfd, op, fd, &ev);
}

static void relay_pump(struct relay *r, struct relay_conn *c);
static void socks_greet(struct relay *r, struct relay_conn *c);
static void handshake_start(struct relay *r, struct relay_conn *c);

/* The program's socket connected: the bytes go both ways from now on. */
static void start_relaying(struct relay *r, struct relay_conn *c)
{
	int one = 1;
	setsockopt(c->prog, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	close_fd(&c->held);
	c->state = RELAYING;
	c->due = 0;
	c->up = (struct lane){ .from = c->prog, .to = c->dial, .pipe = { -1, -1 } };
	c->down = (struct lane){ .from = c->dial, .to = c->prog, .pipe = { -1, -1 } };
	const uint32_t all = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	watch(r, c->prog, c, TAG_PROGRAM, all, EPOLL_CTL_MOD);
	watch(r, c->dial, c, 0, all, EPOLL_CTL_MOD);
	char line[RECORD_MAX];
	struct rec_who w = { c->pid, c->tid, c->exe ? c->exe : "?" };
	send_record(r, line, record_opened(line, sizeof line, &w, &c->dst, &c->peer));
	/* what the destination sent meanwhile waits in its socket: its edge
	 * may have gone by, so both lanes run once now */
	relay_pump(r, c);
}

/* When the program's socket is looked at again, after `tries` looks. */
static uint64_t wait_step(int tries)
{
	return tries < WAIT_FAST_TRIES ? WAIT_STEP_US : tries < WAIT_SLOW_TRIES ? WAIT_STEP_SLOW_US : WAIT_STEP_SLOWER_US;
}

/* The handshake is not possible yet (the program's task has not run its
 * connect, or refused it): again shortly, unless graft's patience is out. */
static void handshake_later(struct relay *r, struct relay_conn *c, int err)
{
	uint64_t now = now_us();
	if (now - c->since >= HANDSHAKE_PATIENCE_US) {
		handshake_failed(r, c, err);
		return;
	}
	set_due(r, c, now + wait_step(c->tries));
}

/* Opens the handshake with the program's socket from the black hole's
 * address (a simultaneous open: handover.h), once the program's connect
 * has started. */
static void handshake_try(struct relay *r, struct relay_conn *c)
{
	if (!c->tries++)
		c->since = now_us();
	int started, state = later_tcp_state(c->held, &started);
	if (state == TCP_CLOSE && !started) {
		handshake_later(r, c, ECONNREFUSED);
		return;
	}
	int s = relay_socket(r, c->peer.sa.sa_family);
	if (s < 0) {
		handshake_failed(r, c, errno);
		return;
	}
	int one = 1;
	if (setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 || bind(s, &c->hole.sa, sa_len(&c->hole)) < 0) {
		int err = errno;
		close(s);
		handshake_failed(r, c, err);
		return;
	}
	if (connect(s, &c->peer.sa, sa_len(&c->peer)) == 0 || errno == EINPROGRESS) {
		c->prog = s;
		watch(r, s, c, TAG_PROGRAM, EPOLLOUT | EPOLLET, EPOLL_CTL_ADD);
		/* its event says how it went (handshake_settled); graft's
		 * patience bounds an open that is never answered */
		set_due(r, c, c->since + HANDSHAKE_PATIENCE_US);
		return;
	}
	int err = errno;
	close(s);
	if (err != ECONNREFUSED)
		handshake_failed(r, c, err);
	else
		handshake_later(r, c, err);
}

static int socket_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* How a non-blocking connect on `fd` stands: -1 still under way, 0
 * connected, or its errno. */
static int connect_outcome(int fd)
{
	int err = socket_error(fd);
	if (err)
		return err;
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_SYN_SENT ? -1 : 0;
}

/* The handshake's socket reported: connected, refused (the program's task
 * has not run its connect yet: again shortly), or failed. */
static void handshake_settled(struct relay *r, struct relay_conn *c)
{
	int err = connect_outcome(c->prog);
	if (err < 0)
		return;
	if (!err) {
		start_relaying(r, c);
		return;
	}
	close_fd(&c->prog);
	if (err != ECONNREFUSED)
		handshake_failed(r, c, err);
	else
		handshake_later(r, c, err);
}

/* The destination is reached (directly, or through the proxy): the
 * program's connect can complete. */
static void handshake_start(struct relay *r, struct relay_conn *c)
{
	c->state = HANDSHAKING;
	c->due = 0;
	handshake_try(r, c);
}

/* ---------- the SOCKS5 handshake (RFC 1928, RFC 1929) ---------- */

/* The handshake failed: recorded, and the program's connect fails with the
 * errno the dial message gives for it. */
static void socks_failed(struct relay *r, struct relay_conn *c, enum bnd_relay_end end, int code)
{
	const struct dial_settings *d = &r->dial;
	int err = end == BND_RELAY_END_SOCKS_AUTH        ? d->socks_auth
		  : end == BND_RELAY_END_SOCKS_MALFORMED ? d->socks_malformed
		  : end == BND_RELAY_END_SOCKS_TIMEOUT   ? d->socks_timeout
		  : end == BND_RELAY_END_SOCKS_REPLY     ? d->socks_reply[code >= 1 && code <= 8 ? code - 1 : 8]
							 : d->socks_closed;
	record_socks_end(r, c, end, 0, end == BND_RELAY_END_SOCKS_REPLY ? code : -1);
	fail_program(r, c, err);
}

/* Sends one step of the handshake (a few bytes, on a socket with nothing
 * queued: sent whole), then reads `need` bytes of the answer. */
static void socks_send(struct relay *r, struct relay_conn *c, const unsigned char *msg, size_t len, enum conn_state next, size_t need)
{
	if (send(c->dial, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		socks_failed(r, c, BND_RELAY_END_SOCKS_CLOSED, 0);
		return;
	}
	c->state = next;
	c->have = 0;
	c->need = need;
	watch(r, c->dial, c, 0, EPOLLIN | EPOLLRDHUP | EPOLLET, EPOLL_CTL_MOD);
}

/* The methods graft offers: none, and user/password when it has them. */
static void socks_greet(struct relay *r, struct relay_conn *c)
{
	static const unsigned char plain[] = { 5, 1, 0 }, with_auth[] = { 5, 2, 0, 2 };
	if (c->socks->user[0])
		socks_send(r, c, with_auth, sizeof with_auth, SOCKS_METHOD, 2);
	else
		socks_send(r, c, plain, sizeof plain, SOCKS_METHOD, 2);
}

static void socks_connect(struct relay *r, struct relay_conn *c)
{
	unsigned char msg[4 + 16 + 2] = { 5, 1, 0 };
	size_t len;
	if (c->dst.sa.sa_family == AF_INET) {
		msg[3] = 1;
		memcpy(msg + 4, &c->dst.in4.sin_addr, 4);
		len = 4 + 4;
	} else {
		msg[3] = 4; /* v4-mapped too, as graft's Node proxy asks */
		memcpy(msg + 4, &c->dst.in6.sin6_addr, 16);
		len = 4 + 16;
	}
	uint16_t port = htons((uint16_t)sa_port(&c->dst));
	memcpy(msg + len, &port, 2);
	socks_send(r, c, msg, len + 2, SOCKS_REPLY, 4);
}

static void socks_login(struct relay *r, struct relay_conn *c)
{
	unsigned char msg[3 + 2 * SOCKS_CRED_MAX];
	size_t ulen = strlen(c->socks->user), plen = strlen(c->socks->pass), at = 0;
	msg[at++] = 1;
	msg[at++] = (unsigned char)ulen;
	memcpy(msg + at, c->socks->user, ulen);
	at += ulen;
	msg[at++] = (unsigned char)plen;
	memcpy(msg + at, c->socks->pass, plen);
	at += plen;
	socks_send(r, c, msg, at, SOCKS_AUTH, 2);
}

/* An answer is whole: what it says decides the next step. */
static void socks_answered(struct relay *r, struct relay_conn *c)
{
	const unsigned char *b = c->reply;
	switch (c->state) {
	case SOCKS_METHOD:
		if (b[0] != 5)
			socks_failed(r, c, BND_RELAY_END_SOCKS_MALFORMED, 0);
		else if (b[1] == 0xff)
			socks_failed(r, c, BND_RELAY_END_SOCKS_AUTH, 0);
		else if (b[1] == 0x02 && c->socks->user[0])
			socks_login(r, c);
		else if (b[1] == 0x00)
			socks_connect(r, c);
		else
			socks_failed(r, c, BND_RELAY_END_SOCKS_MALFORMED, 0); /* a method graft did not offer */
		return;
	case SOCKS_AUTH:
		if (b[1] != 0)
			socks_failed(r, c, BND_RELAY_END_SOCKS_AUTH, 0);
		else
			socks_connect(r, c);
		return;
	case SOCKS_REPLY:
		if (b[0] != 5) {
			socks_failed(r, c, BND_RELAY_END_SOCKS_MALFORMED, 0);
			return;
		}
		if (b[1] != 0) {
			socks_failed(r, c, BND_RELAY_END_SOCKS_REPLY, b[1]);
			return;
		}
		/* the bound address that follows: read to its end, no further
		 * (what comes after it is the destination's) */
		size_t whole = b[3] == 1 ? 4 + 4 + 2 : b[3] == 4 ? 4 + 16 + 2 : b[3] == 3 ? (c->have > 4 ? 4 + 1 + b[4] + 2u : 5) : 0;
		if (!whole) {
			socks_failed(r, c, BND_RELAY_END_SOCKS_MALFORMED, 0);
		} else if (c->have < whole) {
			c->need = whole; /* (a name's length byte first) */
		} else {
			watch(r, c->dial, c, 0, EPOLLET, EPOLL_CTL_MOD); /* quiet until the relay starts */
			handshake_start(r, c);
		}
		return;
	default:
		return;
	}
}

/* The proxy's socket is readable during the handshake: reads no more than
 * the step's answer. */
static void socks_readable(struct relay *r, struct relay_conn *c)
{
	while (c->have < c->need) {
		ssize_t n = recv(c->dial, c->reply + c->have, c->need - c->have, 0);
		if (n > 0) {
			c->have += (size_t)n;
			if (c->have == c->need) {
				enum conn_state before = c->state;
				size_t need = c->need;
				socks_answered(r, c);
				/* the same step asks for more (a reply's address), or is done */
				if (c->state != before || c->need == need)
					return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* closed or reset before the answer */
		socks_failed(r, c, BND_RELAY_END_SOCKS_CLOSED, 0);
		return;
	}
}

/* The dial reported: connected, or failed with its errno. */
static void dial_settled(struct relay *r, struct relay_conn *c)
{
	int err = connect_outcome(c->dial);
	if (err < 0)
		return;
	if (err) {
		dial_failed(r, c, err);
		return;
	}
	int one = 1;
	setsockopt(c->dial, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->socks) {
		socks_greet(r, c);
		return;
	}
	handshake_start(r, c);
}

/* Starts the dial of a connect handed over. */
static void dial_start(struct relay *r, const struct relay_request *q)
{
	struct relay_conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(q->held);
		free((char *)q->exe);
		return;
	}
	*c = (struct relay_conn){ .state = DIALING,
				  .pid = q->pid,
				  .tid = q->tid,
				  .exe = (char *)q->exe,
				  .dst = q->dst,
				  .peer = q->peer,
				  .hole = q->hole,
				  .rule = q->rule,
				  .held = q->held,
				  .dial = -1,
				  .prog = -1,
				  .started = now_us(),
				  .up.pipe = { -1, -1 },
				  .down.pipe = { -1, -1 },
				  .socks = q->socks };
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	r->nconns++;
	/* the connection goes to the proxy, when there is one: the egress
	 * options apply to it */
	const union sa *to = q->socks ? &q->socks->addr : &q->dst;
	int family = to->sa.sa_family;
	int s = relay_socket(r, family);
	if (s < 0) {
		dial_failed(r, c, errno);
		return;
	}
	c->dial = s;
	const char *why = "";
	int rc = apply_egress(q->eg, s, family, sa_is_v4(to) || sa_is_v4mapped(to), &why);
	if (rc == 0 && q->src.sa.sa_family != AF_UNSPEC) {
		int on = 1;
		setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
		rc = bind(s, &q->src.sa, sa_len(&q->src)) < 0 ? -errno : 0;
	}
	if (rc < 0) {
		dial_failed(r, c, -rc);
		return;
	}
	if (connect(s, &to->sa, sa_len(to)) < 0 && errno != EINPROGRESS) {
		dial_failed(r, c, errno);
		return;
	}
	watch(r, s, c, 0, EPOLLOUT | EPOLLET, EPOLL_CTL_ADD);
	/* through a proxy, one deadline for the dial and its handshake (its
	 * own without graft's connect timeout: a proxy that never answers) */
	unsigned limit = r->dial.timeout_ms ? r->dial.timeout_ms : q->socks ? r->dial.upstream_timeout_ms : 0;
	if (limit)
		set_due(r, c, c->started + (uint64_t)limit * 1000);
}

/* ---------- moving bytes ---------- */

enum lane_end { LANE_FROM, LANE_TO };

/* Moves what `from` has to `to` until one of them would block. Returns 0,
 * or -1 with the errno and which end failed. */
static int lane_pump(struct relay *r, struct lane *l, int *err, enum lane_end *where)
{
	for (;;) {
		if (l->queued) {
			ssize_t n = splice(l->pipe[0], NULL, l->to, NULL, l->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				l->queued -= (size_t)n;
				l->moved += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return 0; /* `to` is full: its EPOLLOUT comes */
			*err = n < 0 ? errno : EPIPE;
			*where = LANE_TO;
			return -1;
		}
		if (l->eof) {
			put_pipe(r, l);
			if (!l->shut) {
				l->shut = 1;
				shutdown(l->to, SHUT_WR);
			}
			return 0;
		}
		if (get_pipe(r, l) < 0) {
			*err = errno;
			*where = LANE_TO;
			return -1;
		}
		ssize_t n = splice(l->from, NULL, l->pipe[1], NULL, l->size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			l->queued = (size_t)n;
			continue;
		}
		if (n == 0) {
			l->eof = 1;
			continue;
		}
		if (errno == EINTR)
			continue;
		put_pipe(r, l); /* empty: back to the pool while `from` is quiet */
		if (errno == EAGAIN)
			return 0;
		*err = errno;
		*where = LANE_FROM;
		return -1;
	}
}

/* A side failed: the other is reset, as the Node relay passes a reset on. */
static void relay_failed(struct relay *r, struct relay_conn *c, int program_side, int err)
{
	record_end(r, c, program_side ? BND_RELAY_END_PROGRAM : BND_RELAY_END_UPSTREAM, err);
	reset_fd(program_side ? &c->dial : &c->prog);
	conn_free(r, c);
}

/* The program has exited and what it sent is handed to the destination's
 * socket: what the destination sends now has nobody to go to (read and
 * dropped, so the close is a FIN, not a reset that would discard what is
 * still queued), and the socket is closed once the kernel has sent it all
 * (or at the cut). */
static void finish_at_exit(struct relay *r, struct relay_conn *c)
{
	char sink[4096];
	while (recv(c->dial, sink, sizeof sink, MSG_DONTWAIT) > 0)
		;
	int unsent = 0;
	if (ioctl(c->dial, SIOCOUTQ, &unsent) == 0 && unsent > 0) {
		set_due(r, c, now_us() + AT_EXIT_POLL_US);
		return;
	}
	record_end(r, c, BND_RELAY_END_OK, 0);
	conn_free(r, c);
}

static void relay_pump(struct relay *r, struct relay_conn *c)
{
	int err = 0;
	enum lane_end where;
	if (lane_pump(r, &c->up, &err, &where) < 0) {
		relay_failed(r, c, where == LANE_FROM, err);
		return;
	}
	if (c->at_exit && c->up.shut) {
		finish_at_exit(r, c);
		return;
	}
	if (lane_pump(r, &c->down, &err, &where) < 0) {
		relay_failed(r, c, where == LANE_TO, err);
		return;
	}
	/* both directions ended */
	if (c->up.shut && c->down.shut) {
		record_end(r, c, BND_RELAY_END_OK, 0);
		conn_free(r, c);
	}
}

/* An event of a relayed connection; an error on a side that is not read
 * any more (it ended) shows only here. */
static void relay_event(struct relay *r, struct relay_conn *c, int program_side, uint32_t events)
{
	relay_pump(r, c);
	/* a side still read shows its error through the read, after its last
	 * bytes, as recv does; one whose end was read shows it only here */
	const struct lane *reading = program_side ? &c->up : &c->down;
	if (c->state != RELAYING || !(events & EPOLLERR) || !reading->eof)
		return;
	int err = socket_error(program_side ? c->prog : c->dial);
	if (err)
		relay_failed(r, c, program_side, err);
}

static void conn_event(struct relay *r, struct relay_conn *c, int program_side, uint32_t events)
{
	switch (c->state) {
	case DIALING:
		if (!program_side)
			dial_settled(r, c);
		break;
	case SOCKS_METHOD:
	case SOCKS_AUTH:
	case SOCKS_REPLY:
		socks_readable(r, c);
		break;
	case HANDSHAKING:
		if (program_side)
			handshake_settled(r, c);
		break;
	case RELAYING:
		relay_event(r, c, program_side, events);
		break;
	case FAILING:
	case ENDED:
		break;
	}
}

/* ---------- timers ---------- */

static void timer_fired(struct relay *r, struct relay_conn *c, uint64_t now)
{
	c->due = 0;
	switch (c->state) {
	case DIALING: /* graft's own connect timeout, or the proxy's deadline */
		dial_failed(r, c, ETIMEDOUT);
		break;
	case SOCKS_METHOD:
	case SOCKS_AUTH:
	case SOCKS_REPLY:
		socks_failed(r, c, BND_RELAY_END_SOCKS_TIMEOUT, 0);
		break;
	case HANDSHAKING:
		if (c->prog < 0) {
			handshake_try(r, c);
			break;
		}
		close_fd(&c->prog); /* the open went unanswered */
		handshake_failed(r, c, ETIMEDOUT);
		break;
	case FAILING:
		if (now - c->since < FAIL_GIVE_UP_US && later_fail_handed(r->later, c->held, c->fail_err))
			set_due(r, c, now + FAIL_RETRY_US);
		else
			conn_free(r, c);
		break;
	case RELAYING: /* after the program's exit: its bytes still leaving */
		relay_pump(r, c);
		break;
	case ENDED:
		break;
	}
}

/* Runs the timers that are due, and sets the timerfd to the next (the
 * channel's batch included). */
static void run_timers(struct relay *r)
{
	uint64_t now = now_us();
	for (size_t i = 0; i < r->ntimed;) {
		struct relay_conn *c = r->timed[i];
		if (c->due && c->due <= now) {
			timer_fired(r, c, now); /* may end c and reorder r->timed */
			continue;
		}
		if (!c->due) {
			c->timed = 0;
			r->timed[i] = r->timed[--r->ntimed];
			continue;
		}
		i++;
	}
	if (r->chan.flush_at && r->chan.flush_at * 1000 <= now)
		channel_flush(&r->chan);
	uint64_t next = r->chan.flush_at * 1000;
	for (size_t i = 0; i < r->ntimed; i++)
		if (!next || r->timed[i]->due < next)
			next = r->timed[i]->due;
	if (next == r->armed)
		return;
	r->armed = next;
	struct itimerspec at = { .it_value = { (time_t)(next / 1000000), (long)(next % 1000000) * 1000 } };
	timerfd_settime(r->timer, TFD_TIMER_ABSTIME, &at, NULL); /* 0: disarmed */
}

/* ---------- the thread ---------- */

/* Takes the connects queued since; returns whether the program has exited. */
static int take_queue(struct relay *r)
{
	uint64_t count;
	if (read(r->wake, &count, sizeof count) < 0 && errno != EAGAIN)
		note("relay: reading its wake-up: %s", strerror(errno));
	pthread_mutex_lock(&r->lock);
	struct relay_request *q = r->queue;
	size_t n = r->nqueue;
	r->queue = NULL;
	r->nqueue = r->capqueue = 0;
	int finishing = r->finishing;
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < n; i++)
		dial_start(r, &q[i]);
	free(q);
	return finishing;
}

/* The program has exited: connects still dialing end now; relayed ones
 * end once what the program sent has been handed on. */
static void wind_down(struct relay *r)
{
	for (struct relay_conn *c = r->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == RELAYING) {
			c->at_exit = 1;
			relay_pump(r, c);
		} else if (c->state == FAILING) {
			conn_free(r, c);
		} else {
			record_end(r, c, BND_RELAY_END_EXIT_DIALING, 0);
			conn_free(r, c);
		}
	}
}

/* What is still relayed when the limit comes is cut. */
static void cut_all(struct relay *r)
{
	while (r->conns) {
		struct relay_conn *c = r->conns;
		record_end(r, c, BND_RELAY_END_EXIT_CUT, 0);
		conn_free(r, c);
	}
}

static void *relay_loop(void *arg)
{
	struct relay *r = arg;
	/* the handshake's 20 us steps: the default slack (50 us) would
	 * stretch each */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	struct epoll_event events[128];
	uint64_t cut_at = 0;
	for (;;) {
		run_timers(r);
		int timeout = -1;
		if (cut_at) {
			uint64_t now = now_ms();
			if (!r->nconns || now >= cut_at)
				break;
			timeout = (int)(cut_at - now);
		}
		int n = epoll_wait(r->epfd, events, 128, timeout);
		if (n < 0 && errno != EINTR)
			die(2, "relay: epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			uint64_t key = events[i].data.u64;
			if (key == KEY_TIMER) {
				uint64_t expirations;
				if (read(r->timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
					note("relay: reading its timer: %s", strerror(errno));
				continue;
			}
			if (key == KEY_WAKE) {
				if (take_queue(r) && !cut_at) {
					cut_at = now_ms() + r->finish_limit_ms;
					wind_down(r);
				}
				continue;
			}
			struct relay_conn *c = (struct relay_conn *)(uintptr_t)(key & ~(uint64_t)TAG_PROGRAM);
			conn_event(r, c, (key & TAG_PROGRAM) != 0, events[i].events);
		}
		free_ended(r);
	}
	cut_all(r);
	free_ended(r);
	channel_flush(&r->chan);
	return NULL;
}

void relay_start(struct relay *r)
{
	struct rlimit rl;
	r->fd_cap = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < INT_MAX ? (int)rl.rlim_cur - FDS_LEFT_TO_THE_TRACER : INT_MAX;
	r->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event wake = { .events = EPOLLIN, .data.u64 = KEY_WAKE }, timer = { .events = EPOLLIN, .data.u64 = KEY_TIMER };
	if (r->wake < 0 || r->timer < 0 || r->epfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wake, &wake) < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->timer, &timer) < 0)
		die(2, "relay: cannot set up: %s", strerror(errno));
	/* signals are the main thread's */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&r->thread, NULL, relay_loop, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		die(2, "relay: cannot start its thread: %s", strerror(rc));
	r->started = 1;
}

static void nudge(struct relay *r)
{
	uint64_t one = 1;
	if (write(r->wake, &one, sizeof one) < 0 && errno != EAGAIN)
		note("relay: waking it: %s", strerror(errno));
}

int relay_add(struct relay *r, const struct relay_request *req)
{
	struct relay_request q = *req;
	q.exe = strdup(req->exe ? req->exe : "?");
	pthread_mutex_lock(&r->lock);
	int ok = r->started && !r->finishing && q.exe;
	if (ok && r->nqueue == r->capqueue) {
		size_t cap = r->capqueue ? r->capqueue * 2 : 16;
		struct relay_request *grown = realloc(r->queue, cap * sizeof *grown);
		if (grown) {
			r->queue = grown;
			r->capqueue = cap;
		}
		ok = grown != NULL;
	}
	if (ok)
		r->queue[r->nqueue++] = q;
	pthread_mutex_unlock(&r->lock);
	if (!ok) {
		free((char *)q.exe);
		close(req->held);
		errno = ENOMEM;
		return -1;
	}
	nudge(r);
	return 0;
}

void relay_finish(struct relay *r, unsigned limit_ms)
{
	if (!r->started)
		return;
	pthread_mutex_lock(&r->lock);
	r->finishing = 1;
	r->finish_limit_ms = limit_ms;
	pthread_mutex_unlock(&r->lock);
	nudge(r);
	pthread_join(r->thread, NULL);
	r->started = 0;
}
