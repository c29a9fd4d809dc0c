#define _GNU_SOURCE
#include "decide.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arch/arch.h"
#include "dns.h"
#include "names.h"
#include "records.h"
#include "tracee.h"
#include "util.h"

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

/* One seccomp stop being decided. */
struct stop {
	struct tracer *tr;
	const struct call *c;
	int rule;  /* the rule that decided, for the records; -1 none */
	int fault; /* the connect fault that decided, for the records; -1 none */
	struct outcome out;
};

static struct rec_who who(struct stop *st)
{
	pid_t pid = task_tgid(&st->tr->tasks, st->c->tid);
	return (struct rec_who){ pid, st->c->tid, task_exe(&st->tr->tasks, pid) };
}

/* The record of a call failed on purpose, kept to be sent now or later. */
static char *failed_record(struct stop *st, const union sa *dst, int err, const char *why)
{
	char line[RECORD_MAX];
	struct rec_who w = who(st);
	return record_keep(line, record_failed(line, sizeof line, &w, dst, err, st->rule, st->fault, why));
}

static void report_failed(struct stop *st, const union sa *dst, int err, const char *why)
{
	channel_send_kept(&st->tr->chan, failed_record(st, dst, err, why));
}

/* Makes the call return `rv` without running; a task already gone is no
 * failure worth a word. */
static void answer_call(pid_t tid, long rv, const char *what)
{
	if (arch_set_return(tid, rv) < 0 && errno != ESRCH)
		note("cannot %s of task %d: %s", what, tid, strerror(errno));
}

/* Fails the call with `err` rather than letting it out another way. */
static void fail_call(struct stop *st, const union sa *dst, int err, const char *why)
{
	report_failed(st, dst, err, why);
	answer_call(st->c->tid, -err, "fail a call");
}

/* Whether a failed call's errno says the tracer is out of descriptors. */
static int out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE;
}

/* A connect the tracer cannot serve for lack of file descriptors fails
 * with ECONNREFUSED, as one graft's proxy cannot serve does (README,
 * "Limits"). The reason begins "graft is out of file descriptors": Node
 * counts such records as lost connections (src/run.ts). */
static void fail_out_of_fds(struct stop *st, const union sa *dst, int err)
{
	char why[128];
	struct rlimit rl;
	if (err == ENFILE)
		snprintf(why, sizeof why, "graft is out of file descriptors (ENFILE: the system's table is full)");
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(why, sizeof why, "graft is out of file descriptors (the tracer's limit %llu)", (unsigned long long)rl.rlim_cur);
	else
		snprintf(why, sizeof why, "graft is out of file descriptors (the tracer's)");
	fail_call(st, dst, ECONNREFUSED, why);
}

/* A record only logged: it may wait (channel_defer). */
static void defer_record(struct stop *st, const char *line, size_t n)
{
	uint64_t flush_at = n ? channel_defer(&st->tr->chan, line, n) : 0;
	if (flush_at)
		wake_at(&st->tr->timers, flush_at);
}

static void report_inplace(struct stop *st, const union sa *dst)
{
	char line[512];
	struct rec_who w = who(st);
	defer_record(st, line, record_inplace(line, sizeof line, &w, dst, st->rule));
}

/* Egress options on the program's own socket; on failure the call fails
 * with the reason logged, never goes out without them. Returns 0 when the
 * call may go on. */
static int egress_or_fail(struct stop *st, const struct egress *eg, int s, const struct sockinfo *si, const union sa *dst)
{
	const char *why = "";
	int rc = apply_egress(eg, s, si->domain, sa_is_v4(dst), &why);
	if (rc < 0)
		fail_call(st, dst, -rc, why);
	return rc;
}

/* A handshake delay fault on a connect handed to the proxy: the proxy
 * completes it no sooner than delay_ms. fault -1: none. */
struct handshake_delay {
	int fault;
	unsigned delay_ms;
};

static const struct handshake_delay NO_DELAY = { -1, 0 };

/* Fixes the program's local port now, so the proxy can tell this
 * connection from every other by its peer address. bind() fails with
 * EINVAL when the socket already holds a port (the program bound one);
 * otherwise it takes a fresh one, also after an AF_UNSPEC disconnect,
 * where getsockname still shows the port given up. A program's
 * IP_BIND_ADDRESS_NO_PORT is cleared so the bind takes a port now: all its
 * connections go to the one proxy anyway. Updates `local` and `wildcard`;
 * returns 0, or -1 when it failed the call. */
static int bind_local_port(struct stop *st, int s, const union sa *dst, const union sa *to, union sa *local, int *wildcard)
{
	union sa b = *wildcard ? *to : *local;
	sa_set_port(&b, 0);
	int off = 0;
	setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &off, sizeof off);
	if (bind(s, &b.sa, sa_len(&b)) == 0) {
		socklen_t ll = sizeof *local;
		if (getsockname(s, &local->sa, &ll) < 0) {
			fail_call(st, dst, ENETUNREACH, "getsockname failed");
			return -1;
		}
		*wildcard = 0;
	} else if (errno != EINVAL) {
		fail_call(st, dst, errno == EADDRINUSE ? EADDRNOTAVAIL : ENETUNREACH, "cannot bind a local port");
		return -1;
	}
	return 0;
}

/* The proxy must see this connect before the program's connect goes on:
 * the record carries the handover's id, which the proxy answers. Returns
 * 0, or -1 when the call was failed. */
static int announce_handover(struct stop *st, const union sa *dst, const union sa *peer, const struct handover_record *h)
{
	struct rec_who w = who(st);
	char line[RECORD_MAX];
	size_t n = record_redirect(line, sizeof line, &w, dst, peer, h);
	if (!n) {
		fail_call(st, dst, ENETUNREACH, "record too long");
		return -1;
	}
	if (channel_write(&st->tr->chan, line, n) < 0) {
		/* the proxy is gone: nothing may reach the destination */
		answer_call(st->c->tid, -ECONNREFUSED, "fail a connect");
		return -1;
	}
	return 0;
}

/* A blocking connect the proxy may fail: its return is seen (and given
 * the failure's errno, later_connect_returned). */
static void watch_return(struct stop *st, int s)
{
	int flags = fcntl(s, F_GETFL);
	struct task *task = task_get(&st->tr->tasks, st->c->tid);
	if (flags < 0 || (flags & O_NONBLOCK) || !task)
		return;
	task->awaiting_exit = EXIT_CONNECT;
	task->exit_fd = st->c->fd;
	st->out.want_exit = 1;
}

/* Whether the tracer relays this redirect itself (relay.h): its rule says
 * so, no handshake delay fault holds it, and its source, if the rule
 * gives any, is of the destination's family (the Node proxy says why
 * it refuses one that is not). */
static int relayed_here(const struct rule *r, const struct sockinfo *si, const union sa *dst, const struct handshake_delay *delay)
{
	union sa src;
	if (!r->relay || delay->fault >= 0 || delay->delay_ms)
		return 0;
	if (!egress_sources(&r->eg))
		return 1;
	/* through a proxy, the source is for the connection to the proxy */
	if (r->socks.present)
		return egress_source_for(&r->eg, r->socks.addr.sa.sa_family, r->socks.addr.sa.sa_family == AF_INET, &src) == 0;
	return egress_source_for(&r->eg, si->domain, sa_is_v4(dst), &src) == 0;
}

/* The source the relay dials from: the rule's (apply_egress sets it), or
 * the address the program bound its socket to, as the Node proxy's
 * programSource; otherwise (and always through a proxy) the route's. */
static union sa relay_source(const struct rule *r, const union sa *local, int wildcard, const union sa *dst)
{
	union sa src = { .sa.sa_family = AF_UNSPEC };
	if (r->socks.present || egress_sources(&r->eg) || r->eg.iface[0] || wildcard || sa_is_local(local) ||
	    local->sa.sa_family != dst->sa.sa_family)
		return src;
	src = *local;
	sa_set_port(&src, 0);
	return src;
}

/* Hands a redirect to the tracer's own relay: it dials, completes the
 * program's connect or fails it, and relays (relay.h). */
static void hand_to_relay(struct stop *st, int s, const union sa *dst, const union sa *peer, const union sa *to, const union sa *local,
			  int wildcard)
{
	struct tracer *tr = st->tr;
	const struct rule *r = &tr->rules.rules[st->rule];
	struct rec_who w = who(st);
	struct relay_request q = { .pid = w.pid,
				   .tid = w.tid,
				   .exe = w.exe,
				   .dst = *dst,
				   .peer = *peer,
				   .hole = *to,
				   .src = relay_source(r, local, wildcard, dst),
				   .eg = &r->eg,
				   .socks = r->socks.present ? &r->socks : NULL,
				   .rule = st->rule,
				   .held = relay_hold(&tr->relay, s) };
	if (q.held < 0) {
		fail_out_of_fds(st, dst, errno);
		return;
	}
	/* handed over only once the connect is pointed at the black hole: a
	 * relay must never complete another connect on this socket */
	if (arch_point_addr(st->c, to) < 0 && errno != ESRCH) {
		close(q.held);
		fail_call(st, dst, ENETUNREACH, "cannot rewrite the connect arguments");
		return;
	}
	if (relay_add(&tr->relay, &q) < 0) {
		fail_call(st, dst, ECONNREFUSED, "graft's relay could not take the connect (out of memory)");
		return;
	}
	names_remember(tr, s, peer, sa_port(local), dst, st->rule, local);
	watch_return(st, s);
}

/* Hands a TCP connect to graft's proxy: the program's socket connects to
 * the black hole, where it waits in SYN_SENT (unanswered, as towards any
 * destination that has not answered yet) until the proxy has reached the
 * destination and completes the handshake itself, or tells the tracer
 * the errno to fail it with (handover.h). */
static void hand_to_proxy(struct stop *st, int s, const struct sockinfo *si, const union sa *dst, const struct handshake_delay *delay)
{
	struct tracer *tr = st->tr;
	/* Where the program's socket stands now: a bind it made is kept. */
	union sa local, to;
	socklen_t ll = sizeof local;
	if (getsockname(s, &local.sa, &ll) < 0) {
		fail_call(st, dst, ENETUNREACH, "getsockname failed");
		return;
	}
	switch (proxy_target(si, dst, &local, tr->later.hole4, tr->later.hole6, &to)) {
	case TARGET_LEAVE:
		return; /* ENETUNREACH natively */
	case TARGET_NO_V6:
		fail_call(st, dst, ENETUNREACH, "IPv6 socket but graft's proxy has no IPv6 listener (::1 unavailable)");
		return;
	case TARGET_OK:
		break;
	}
	/* a connect the local routing refuses fails at once, as natively */
	int no_route = tr->rules.rules[st->rule].direct ? names_route_error(tr, st->rule, dst) : 0;
	if (no_route) {
		fail_call(st, dst, no_route, "the local routing has no way to this destination");
		return;
	}
	int wildcard = sa_is_wildcard(&local);
	if (bind_local_port(st, s, dst, &to, &local, &wildcard) < 0)
		return;
	if (relayed_here(&tr->rules.rules[st->rule], si, dst, delay)) {
		/* the program's end: its own address (the black hole's when it
		 * bound the wildcard one) and its port */
		union sa peer = wildcard ? to : local;
		sa_set_port(&peer, sa_port(&local));
		hand_to_relay(st, s, dst, &peer, &to, &local, wildcard);
		return;
	}
	unsigned id = handover_add(&tr->handover, s);
	if (!id) {
		fail_out_of_fds(st, dst, errno);
		return;
	}
	union sa peer = wildcard ? to : local;
	struct handover_record h = { id, sa_port(&local), sa_port(&to), st->rule, delay->fault, delay->delay_ms };
	if (announce_handover(st, dst, &peer, &h) < 0) {
		handover_drop(&tr->handover, id);
		return;
	}
	names_remember(tr, s, &peer, sa_port(&local), dst, st->rule, &local);
	if (arch_point_addr(st->c, &to) < 0 && errno != ESRCH) {
		fail_call(st, dst, ENETUNREACH, "cannot rewrite the connect arguments");
		return; /* the proxy's handshake finds no socket waiting and lets go */
	}
	watch_return(st, s);
}

/* A datagram socket connected to a destination only a proxy may reach.
 * The connect sends nothing, and programs make it to learn which source
 * address the kernel would pick (getaddrinfo orders addresses so, RFC
 * 6724): so it is not refused. The tracer makes it on the program's socket
 * (its duplicate), exactly as the kernel would for the program, then binds
 * the socket to the loopback device: what it sends is looped back and
 * dropped, and never leaves this machine. */
static void connect_kept_local(struct stop *st, int s, const union sa *dst)
{
	if (connect(s, &dst->sa, sa_len(dst)) < 0) {
		answer_call(st->c->tid, -errno, "answer a connect");
		return;
	}
	if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2) < 0) {
		struct sockaddr unspec = { .sa_family = AF_UNSPEC };
		connect(s, &unspec, sizeof unspec);
		fail_call(st, dst, ENETUNREACH,
			  "datagrams cannot go through a TCP proxy (and this socket, bound to a device, cannot be kept on this machine)");
		return;
	}
	answer_call(st->c->tid, 0, "answer a connect");
	char line[512];
	struct rec_who w = who(st);
	defer_record(st, line, record_kept_local(line, sizeof line, &w, dst, st->rule));
}

/* A datagram to a destination whose rule says dns goes to graft's DNS
 * server (dns.h). Raw and ping sockets are no DNS clients: left alone. */
static void to_dns_server(struct stop *st, int s, const struct sockinfo *si, const union sa *dst)
{
	if (si->type != SOCK_DGRAM || si->protocol != IPPROTO_UDP)
		return;
	const char *why = "";
	int rc = dns_redirect(st->tr, st->c, s, si, dst, st->rule, &why);
	if (rc < 0)
		fail_call(st, dst, -rc, why);
	else if (rc == 1)
		st->out.want_exit = 1;
}

/* A datagram destination decided by its rule (st->rule, matched by the
 * caller): refused, given the rule's egress options, sent to graft's DNS
 * server, or left alone. A
 * connect to a destination only a proxy may reach is made but kept local
 * (connect_kept_local); a datagram sent there with an address is refused. */
static void datagram_by_rule(struct stop *st, int s, const struct sockinfo *si, const union sa *dst)
{
	if (st->rule < 0)
		return;
	const struct rule *r = &st->tr->rules.rules[st->rule];
	switch (r->udp) {
	case UDP_PASS:
		break;
	case UDP_REFUSE:
		if (r->tcp == TCP_REDIRECT && st->c->kind == CALL_CONNECT) {
			connect_kept_local(st, s, dst);
			break;
		}
		fail_call(st, dst, r->err,
			  r->tcp == TCP_REDIRECT ? "datagrams cannot go through a TCP proxy; add a rule for this destination"
						 : "refused by rule");
		break;
	case UDP_EGRESS:
		if (egress_any(&r->eg))
			egress_or_fail(st, &r->eg, s, si, dst);
		break;
	case UDP_DNS:
		to_dns_server(st, s, si, dst);
		break;
	}
}

/* The rule for `dst`. With by_name rules, the names control messages
 * written so far are applied first: Node sends one before the DNS answer
 * holding the address, so a connect to an answer finds it in force. */
static int match_rule(struct tracer *tr, const union sa *dst)
{
	if (!tr->rules.names)
		return rules_match(&tr->rules, dst);
	handover_sync(&tr->handover);
	pthread_mutex_lock(&tr->handover.names_lock);
	int rule = rules_match(&tr->rules, dst);
	pthread_mutex_unlock(&tr->handover.names_lock);
	return rule;
}

/* A fault whose errno a non-blocking connect learns of later: the socket
 * waits in the black hole and fails at the fault's time. Returns 1 when
 * it decided the call, 0 when there is no black hole for this socket. */
static int fail_later(struct stop *st, int s, const struct sockinfo *si, const union sa *dst, int err, unsigned delay_ms, const char *why)
{
	struct tracer *tr = st->tr;
	union sa to;
	loopback_for(&to, si, dst, tr->later.hole4, tr->later.hole6);
	if (!sa_port(&to))
		return 0;
	/* the duplicate first: without one (out of descriptors) the socket
	 * could not be failed later and would wait at the black hole until
	 * the kernel's SYN retries end it; the call fails now instead (the
	 * fault's record has gone out) */
	uint64_t due = now_ms() + delay_ms;
	if (later_doom(&tr->later, &tr->chan, s, due, err, failed_record(st, dst, err, why)) < 0) {
		answer_call(st->c->tid, -err, "fail a call");
		return 1;
	}
	wake_at(&tr->timers, due);
	/* (the task gone: nothing to answer; otherwise the call fails now and
	 * the doomed socket, never connected, sends the record shortly) */
	if (arch_point_addr(st->c, &to) < 0 && errno != ESRCH)
		answer_call(st->c->tid, -err, "fail a call");
	return 1;
}

/* Applies the selected connect fault `index`. Returns 1 when it decided
 * the call, 0 when the connect goes on as the rules say (after a delay:
 * st->out.hold_ms).
 *
 * A blocking connect is held in the tracer for the delay and then fails
 * with the errno (or goes on): the program's thread waits in connect()
 * either way. A non-blocking one must not wait: it gets EINPROGRESS at
 * once and learns the outcome later (later.h), except for the errnos the
 * kernel gives at once (answered_later). An ECONNREFUSED without a delay
 * is a real refusal from the kernel, for both kinds. */
static int apply_fault(struct stop *st, int s, const struct sockinfo *si, const union sa *dst, int index)
{
	struct tracer *tr = st->tr;
	const struct fault *f = &tr->faults.faults[index];
	const struct rule *r = &tr->rules.rules[st->rule];
	const char *why = "connect fault";
	st->fault = index;
	int flags = fcntl(s, F_GETFL);
	int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
	int err = f->err;
	if (!err && nonblocking && r->tcp == TCP_REFUSE) {
		err = r->err; /* the rule refuses it, after the delay */
		why = "refused by rule";
		st->fault = -1;
	} else if (!err && nonblocking && tr->later.hole4) {
		/* the proxy completes the handshake after the delay */
		struct handshake_delay delay = { index, f->delay_ms };
		hand_to_proxy(st, s, si, dst, &delay);
		return 1;
	}
	if (!err) {
		char line[RECORD_MAX];
		struct rec_who w = who(st);
		st->out.hold_ms = f->delay_ms;
		channel_send_kept(&tr->chan, record_keep(line, record_held(line, sizeof line, &w, dst, index)));
		return 0;
	}
	if (nonblocking && answered_later(err, f->delay_ms)) {
		if (fail_later(st, s, si, dst, err, f->delay_ms, why))
			return 1;
	} else if (err == ECONNREFUSED && !f->delay_ms) {
		/* a real refusal, from the kernel: blocking connects get
		 * ECONNREFUSED, non-blocking ones EINPROGRESS then SO_ERROR */
		union sa to;
		loopback_for(&to, si, dst, tr->ports.refuse4, tr->ports.refuse6);
		report_failed(st, dst, err, why);
		if (sa_port(&to) && arch_point_addr(st->c, &to) == 0)
			return 1;
	}
	if (!f->delay_ms) {
		fail_call(st, dst, err, why);
		return 1;
	}
	st->out.hold_ms = f->delay_ms;
	if (arch_set_return(st->c->tid, -err) == 0)
		st->out.hold_record = failed_record(st, dst, err, why); /* sent as the task resumes */
	else if (errno != ESRCH)
		note("cannot fail a call of task %d: %s", st->c->tid, strerror(errno));
	return 1;
}

/* A TCP connect from a closed socket: an earlier failure's answer, a
 * fault, or the rule. */
static void connect_tcp(struct stop *st, int s, const struct sockinfo *si, const union sa *dst)
{
	struct tracer *tr = st->tr;
	if (tr->later.nfailed && later_connect_again(&tr->later, st->c, s))
		return;
	int f = faults_select(&tr->faults, dst);
	if (f >= 0 && apply_fault(st, s, si, dst, f))
		return;
	const struct rule *r = &tr->rules.rules[st->rule];
	switch (r->tcp) {
	case TCP_PASS:
		break;
	case TCP_REFUSE:
		fail_call(st, dst, r->err, "refused by rule");
		break;
	case TCP_REDIRECT:
		hand_to_proxy(st, s, si, dst, &NO_DELAY);
		break;
	case TCP_INPLACE:
		if (egress_or_fail(st, &r->eg, s, si, dst) == 0)
			report_inplace(st, dst);
		break;
	}
}

static void handle_connect(struct stop *st)
{
	struct tracer *tr = st->tr;
	union sa dst;
	if (read_sockaddr(st->c->tid, st->c->addr, st->c->addrlen, &dst) < 0)
		return;
	st->rule = match_rule(tr, &dst);
	if (st->rule < 0)
		return; /* loopback: untouched */
	int s = grab_socket(&tr->tasks, st->c->tid, st->c->fd);
	if (s < 0) {
		if (out_of_fds(-s))
			fail_out_of_fds(st, &dst, -s);
		else if (s != -EBADF && s != -ESRCH) /* EBADF natively / the task is gone */
			fail_call(st, &dst, ENETUNREACH, "cannot inspect the socket");
		return;
	}
	struct sockinfo si;
	/* Not a socket (ENOTSOCK natively), or a family mismatch (EAFNOSUPPORT
	 * natively): the kernel answers. */
	if (inspect_socket(s, &si) == 0 && si.domain == dst.sa.sa_family) {
		if (is_datagram(&si)) {
			if (tr->rules.dgram_mode != DGRAM_UNTOUCHED)
				datagram_by_rule(st, s, &si, &dst);
		} else if (is_tcp(&si) && si.state == TCP_CLOSE) {
			connect_tcp(st, s, &si, &dst);
		} else if (is_tcp(&si) && si.state == TCP_SYN_SENT && tr->later.so_error_trapped) {
			/* a blocking connect restarted after a signal waits on
			 * (EALREADY for a non-blocking one, natively): its
			 * return may need the errno of a failure */
			watch_return(st, s);
		}
	}
	close(s);
}

/* An unconnected datagram send (sendto/sendmsg/sendmmsg with an address)
 * is decided by its destination's rule before it goes out. A TCP Fast Open
 * send (MSG_FASTOPEN) on an unconnected socket would send a SYN without
 * connect: it fails with EOPNOTSUPP, the errno the kernel itself gives when
 * client TFO is off, so programs fall back to a plain connect. */
static void handle_send(struct stop *st)
{
	struct tracer *tr = st->tr;
	union sa dst;
	int have_dst = read_sockaddr(st->c->tid, st->c->addr, st->c->addrlen, &dst) == 0;
	if (have_dst && (st->rule = match_rule(tr, &dst)) < 0)
		return; /* loopback */
	int s = grab_socket(&tr->tasks, st->c->tid, st->c->fd);
	if (s < 0)
		return;
	struct sockinfo si;
	if (inspect_socket(s, &si) == 0) {
		if (si.type == SOCK_STREAM && (st->c->flags & MSG_FASTOPEN) && si.state == TCP_CLOSE) {
			if (!have_dst) {
				memset(&dst, 0, sizeof dst);
				dst.sa.sa_family = AF_INET; /* for the report only */
			}
			fail_call(st, &dst, EOPNOTSUPP, "TCP Fast Open send refused so the program falls back to connect");
		} else if (is_datagram(&si) && have_dst && si.domain == dst.sa.sa_family) {
			if (tr->rules.dgram_mode == DGRAM_UNIFORM)
				egress_or_fail(st, tr->rules.dgram_egress, s, &si, &dst);
			else if (tr->rules.dgram_mode == DGRAM_PER_DEST)
				datagram_by_rule(st, s, &si, &dst);
		}
	}
	close(s);
}

/* With one source address for all datagrams, a datagram socket's bind to
 * the wildcard address is bound to that source instead (same port), so all
 * it sends comes from there. Binds of other sockets, and to specific
 * addresses, are untouched. */
static void handle_bind(struct stop *st)
{
	struct tracer *tr = st->tr;
	const struct egress *eg = tr->rules.dgram_egress;
	union sa want;
	if (tr->rules.dgram_mode != DGRAM_UNIFORM || read_sockaddr(st->c->tid, st->c->addr, st->c->addrlen, &want) < 0 ||
	    !sa_is_wildcard(&want))
		return;
	int s = grab_socket(&tr->tasks, st->c->tid, st->c->fd);
	if (s < 0)
		return;
	struct sockinfo si;
	int rc = inspect_socket(s, &si);
	close(s);
	if (rc < 0 || !is_datagram(&si) || si.domain != want.sa.sa_family)
		return;
	union sa src;
	if (egress_source_for(eg, si.domain, 0, &src) < 0 &&
	    (si.domain != AF_INET6 || si.v6only || egress_source_for(eg, AF_INET6, 1, &src) < 0))
		return; /* no source of this family: destinations of it are refused at send */
	sa_set_port(&src, sa_port(&want));
	if (arch_point_addr(st->c, &src) < 0 && errno != ESRCH)
		fail_call(st, &want, EADDRNOTAVAIL, "cannot rewrite the bind arguments");
}

/* socket() for a datagram socket stops twice: at entry, to ask for the
 * exit stop, and at exit (here), where the new fd exists and gets its
 * mark. */
void decide_socket_exit(struct tracer *tr, pid_t tid)
{
	long fd;
	if (arch_exit_value(tid, &fd) < 0 || fd < 0)
		return;
	int s = grab_socket(&tr->tasks, tid, (int)fd);
	if (s < 0)
		return;
	const struct egress *eg = tr->rules.dgram_egress;
	if (setsockopt(s, SOL_SOCKET, SO_MARK, &eg->mark, sizeof eg->mark) < 0) {
		/* the program would hold an unmarked socket: make socket() fail
		 * instead (the fd stays open in the program, unused) */
		int err = errno;
		arch_set_exit_value(tid, -err);
		char msg[256], line[RECORD_MAX];
		snprintf(msg, sizeof msg, "cannot mark a new datagram socket: %s", strerror(err));
		size_t n = record_diag(line, sizeof line, task_tgid(&tr->tasks, tid), tid, msg);
		if (n)
			channel_write(&tr->chan, line, n);
	}
	close(s);
}

void decide_connect_exit(struct tracer *tr, pid_t tid, int fd)
{
	long rv;
	if (arch_exit_value(tid, &rv) < 0 || (rv != -ECONNRESET && rv != -EPIPE))
		return;
	int s = grab_socket(&tr->tasks, tid, fd);
	if (s < 0)
		return;
	long answer = later_connect_returned(&tr->later, s, rv);
	if (answer != rv)
		arch_set_exit_value(tid, answer);
	close(s);
}

struct outcome decide_seccomp_stop(struct tracer *tr, pid_t tid)
{
	struct call c;
	arch_decode(tid, &c);
	struct stop st = { .tr = tr, .c = &c, .rule = -1, .fault = -1 };
	switch (c.kind) {
	case CALL_CONNECT:
		handle_connect(&st);
		break;
	case CALL_BIND:
		handle_bind(&st);
		break;
	case CALL_SENDTO:
	case CALL_SENDMSG:
	case CALL_SENDMMSG:
		handle_send(&st);
		break;
	case CALL_GETSOCKOPT_SO_ERROR:
		later_so_error(&tr->later, &tr->tasks, &c);
		break;
	case CALL_GETPEERNAME:
		names_getpeername(tr, &c);
		break;
	case CALL_GETSOCKNAME:
		names_getsockname(tr, &c);
		break;
	case CALL_RECVFROM:
	case CALL_RECVMSG:
	case CALL_RECVMMSG:
		st.out.want_exit = dns_recv_entry(tr, &c);
		break;
	case CALL_SOCKET: {
		struct task *task = task_get(&tr->tasks, tid);
		if (task) {
			task->awaiting_exit = EXIT_SOCKET;
			st.out.want_exit = 1;
		}
		break;
	}
	case CALL_NONE:
		break;
	}
	return st.out;
}
