/*
 * graft-tracer: runs a program under ptrace with a seccomp filter that traps
 * connect(2) only, and points every TCP connect to a non-loopback address at
 * graft's local proxy. The real destination is written to the proxy over a
 * pipe before the program's connect resumes.
 *
 * Usage (spawned by graft's Node side, not meant to be run by hand):
 *   graft-tracer --channel-fd N --rules-fd N --proxy4 PORT [--proxy6 PORT] -- program [args...]
 * (--rules-fd: the rule table, see rules.h)
 *
 * Exit status: the program's, or 128+signal when it was killed by one; 127/126
 * when it cannot be found/executed; 2 when tracing cannot be set up.
 *
 * Channel records (one line each, fields separated by single spaces):
 *   C <pid> <tid> <dst-addr> <dst-port> <peer-addr> <peer-port> <rule> <exe>
 *       a redirected connect; <peer-*> is the address the proxy will see as
 *       the remote end of the accepted connection; <rule> the index of the
 *       rule that decided it
 *   I <pid> <tid> <dst-addr> <dst-port> <rule> <exe>
 *       a connect let go on in place, with the rule's egress options set
 *   F <pid> <tid> <dst-addr> <dst-port> <errno-name> <rule> <exe> <reason...>
 *       a call the tracer failed on purpose instead of letting it out
 *       another way (<rule> -1 when no rule is the reason)
 *   W <pid> <tid> <dst-addr> <dst-port> <peer-addr> <peer-port> <rule> <hole-port> <fault> <delay-ms> <exe>
 *       a non-blocking connect a delay fault holds in the black hole at
 *       <hole-port> (on the peer's loopback address); the proxy completes
 *       it after <delay-ms> and relays it as <rule> says (later.h)
 *   H <pid> <tid> <dst-addr> <dst-port> <fault> <exe>
 *       a blocking connect a delay fault holds in the tracer
 *   D <pid> <tid> <message...>   diagnostics worth a log line
 * <exe> is percent-encoded (space, %, control bytes) so it stays one field.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/net.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_SYSCALL_INFO_SECCOMP
#define PTRACE_SYSCALL_INFO_SECCOMP 3
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Our own copy of the kernel's struct so the build does not depend on the
 * installed linux headers being new enough to have it. */
struct syscall_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint32_t ret_data;
		} seccomp;
		uint8_t raw[80];
	};
};

#define X32_BIT 0x40000000u
/* x86_64 */
#define NR64_CONNECT 42
#define NR64_SENDTO 44
#define NR64_SENDMSG 46
#define NR64_SOCKET 41
#define NR64_BIND 49
#define NR64_SENDMMSG 307
#define NR64_GETSOCKOPT 55
#define NR_X32_GETSOCKOPT 542 /* x32 has its own number, with X32_BIT */
#define NR_IO_URING_SETUP 425 /* same number on x86_64 and i386 */
/* i386 */
#define NR32_SOCKETCALL 102
#define NR32_CONNECT 362
#define NR32_GETSOCKOPT 365

/* Scratch space for the rewritten sockaddr: below the x86_64 red zone (128
 * bytes) but well within the few hundred bytes any stack (Go's small
 * goroutine stacks included) keeps free below the stack pointer at a
 * syscall. The kernel copies the sockaddr in at syscall entry, so the
 * scratch only has to live until then. */
#define SCRATCH_BELOW_SP 256

static const char *progname = "graft";
static int channel_fd = -1;
static uint16_t proxy4_port, proxy6_port;
/* loopback ports bound but never listening: a connect there is refused by
 * the kernel itself, so a non-blocking one reports it through SO_ERROR */
static uint16_t refuse4_port, refuse6_port;
/* set by a fault while a connect is handled: hold the task this long, and
 * then send this record (or NULL) */
static unsigned hold_ms;
static char *hold_record;
static pid_t main_pid;
static int main_status = -1;
static int main_execed;

/* ---------- small helpers ---------- */

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dprintf(2, "%s: %s\n", progname, buf);
	exit(code);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static long xpidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static long xpidfd_getfd(int pidfd, int fd) { return syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

#include "tasks.h"
#include "timers.h"
#include "channel.h"
#include "sockaddr.h"
#include "tracee.h"
#include "egress.h"
#include "rules.h"

/* ---------- the decision ---------- */

struct sockinfo {
	int domain, type, protocol;
	int state;   /* TCP_* from TCP_INFO, or -1 */
	int v6only;
};

/* Looks at the program's socket through a duplicate (pidfd_getfd). The
 * duplicate shares the open file description, so a bind on it binds the
 * program's socket. Returns the duplicate, or -errno. */
static int grab_socket(pid_t tid, int fd)
{
	struct task *t = task_get(tid);
	int pidfd = t ? t->pidfd : -1;
	if (pidfd < 0) {
		/* a thread's own pidfd: threads may have fd tables of their own */
		pidfd = (int)xpidfd_open(tid, PIDFD_THREAD);
		if (pidfd < 0 && (errno == EINVAL || errno == ENOENT))
			pidfd = (int)xpidfd_open(tgid_of(tid), 0); /* before Linux 6.9 */
		if (pidfd < 0)
			return -errno;
		t = task_get(tid); /* tgid_of may have grown the table */
		if (t && pidfds_cached < pidfds_max) {
			t->pidfd = pidfd;
			pidfds_cached++;
		} else {
			t = NULL; /* not cached: closed below */
		}
	}
	int dup = (int)xpidfd_getfd(pidfd, fd);
	int err = errno;
	if (!t)
		close(pidfd);
	return dup < 0 ? -err : dup;
}

static int inspect_socket(int s, struct sockinfo *si)
{
	socklen_t l = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &si->domain, &l) < 0)
		return -errno;
	l = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_TYPE, &si->type, &l) < 0)
		return -errno;
	l = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &si->protocol, &l) < 0)
		return -errno;
	si->state = -1;
	si->v6only = 0;
	if (si->type == SOCK_STREAM && (si->protocol == IPPROTO_TCP || si->protocol == IPPROTO_MPTCP)) {
		struct tcp_info ti;
		l = sizeof ti;
		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0)
			si->state = ti.tcpi_state;
	}
	if (si->domain == AF_INET6) {
		l = sizeof(int);
		getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &si->v6only, &l);
	}
	return 0;
}

static const char *errno_name(int e)
{
	const char *name = strerrorname_np(e);
	return name ? name : "EIO";
}

/* The record of a call failed on purpose, for now or for later (see
 * record_printf). */
static char *failed_record(const struct trapped *t, const union sa *dst, int err, const char *why)
{
	char addr[INET6_ADDRSTRLEN + 16];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	pid_t pid = tgid_of(t->tid);
	return record_printf("F %d %d %s %u %s %d %s %s\n", pid, t->tid, addr, port, errno_name(err), t->rule, exe_of(pid), why);
}

static void report_failed(const struct trapped *t, const union sa *dst, int err, const char *why)
{
	send_record(failed_record(t, dst, err, why));
}

/* Fails the call with `err` rather than letting it out another way. */
static void fail_call(const struct trapped *t, const union sa *dst, int err, const char *why)
{
	report_failed(t, dst, err, why);
	if (set_regs_fail(t->tid, err) < 0 && errno != ESRCH)
		dprintf(2, "%s: cannot fail a call of task %d: %s\n", progname, t->tid, strerror(errno));
}

/* Reads the sockaddr a connect/bind/send names. Returns 0 for an IPv4 or
 * IPv6 address the kernel would accept; -1 for anything else, which is
 * left to the kernel so the program gets exactly its native error. */
static int read_sockaddr(const struct trapped *t, union sa *out)
{
	memset(out, 0, sizeof *out);
	if (t->addr == 0 || t->addrlen < sizeof(sa_family_t) || t->addrlen > sizeof(struct sockaddr_storage))
		return -1;
	size_t want = t->addrlen < sizeof *out ? t->addrlen : sizeof *out;
	if (peek(t->tid, t->addr, out, want) < 0)
		return -1; /* EFAULT natively */
	if (out->sa.sa_family == AF_INET)
		return t->addrlen < sizeof(struct sockaddr_in) ? -1 : 0;
	if (out->sa.sa_family == AF_INET6)
		return t->addrlen < 24 ? -1 : 0; /* SIN6_LEN_RFC2133: the kernel accepts 24 */
	return -1;
}

static int is_tcp(const struct sockinfo *si)
{
	return si->type == SOCK_STREAM && (si->protocol == IPPROTO_TCP || si->protocol == IPPROTO_MPTCP);
}

/* UDP, ICMP ping and raw IP sockets: what the proxy cannot carry, so egress
 * options are set on the program's socket itself. */
static int is_datagram(const struct sockinfo *si)
{
	return (si->domain == AF_INET || si->domain == AF_INET6) && (si->type == SOCK_DGRAM || si->type == SOCK_RAW);
}

static void report_inplace(const struct trapped *t, const union sa *dst)
{
	char addr[INET6_ADDRSTRLEN + 16];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	pid_t pid = tgid_of(t->tid);
	channel_defer_printf("I %d %d %s %u %d %s\n", pid, t->tid, addr, port, t->rule, exe_of(pid));
}

/* Egress options on the program's own socket; on failure the call fails
 * with the reason logged, never goes out without them. Returns 0 when the
 * call may go on. */
static int egress_or_fail(const struct trapped *t, const struct egress *eg, int s, const struct sockinfo *si, const union sa *dst)
{
	const char *why = "";
	int rc = apply_egress(eg, s, si->domain, sa_is_v4(dst), &why);
	if (rc < 0)
		fail_call(t, dst, -rc, why);
	return rc;
}

#include "later.h"

/* Where a connect is handed over to: graft's proxy (the proxy accepts it),
 * or the black hole for a handshake the proxy completes later. */
struct handover {
	uint16_t port4, port6;
	int fault;         /* the delay fault; -1: the proxy accepts at once */
	unsigned delay_ms;
};

/* Points a TCP connect at graft's proxy (or the black hole) and registers
 * it with the proxy. */
static void redirect_to_proxy(const struct trapped *t, int s, const struct sockinfo *si, const union sa *dst, const struct handover *via)
{
	/* Where the program's socket stands now: a bind it made is kept. */
	union sa local;
	socklen_t ll = sizeof local;
	if (getsockname(s, &local.sa, &ll) < 0) {
		fail_call(t, dst, ENETUNREACH, "getsockname failed");
		return;
	}
	int wildcard = sa_is_wildcard(&local);
	int dst_mapped = si->domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr);
	int local_mapped = si->domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&local.in6.sin6_addr);

	/* Which listener. A dual-stack socket goes to the IPv4 listener through
	 * ::ffff:127.0.0.1 even for an IPv6 destination: binding it to ::1 would
	 * make it IPv6-only for good, which the program could notice later
	 * (a reconnect to a v4-mapped address after AF_UNSPEC would fail). */
	union sa to;
	if (si->domain == AF_INET) {
		sa_loopback(&to, AF_INET, 0, via->port4);
	} else if (dst_mapped || local_mapped) {
		if (si->v6only || !dst_mapped || !(wildcard || local_mapped))
			return; /* ENETUNREACH natively: v4 and v6 do not mix here */
		sa_loopback(&to, AF_INET6, 1, via->port4);
	} else if (!si->v6only && wildcard) {
		sa_loopback(&to, AF_INET6, 1, via->port4);
	} else if (via->port6) {
		sa_loopback(&to, AF_INET6, 0, via->port6);
	} else {
		fail_call(t, dst, ENETUNREACH, "IPv6 socket but graft's proxy has no IPv6 listener (::1 unavailable)");
		return;
	}

	/* Fix the program's local port now, so the proxy can tell this
	 * connection from every other by its peer address. bind() fails with
	 * EINVAL when the socket already holds a port (the program bound one);
	 * otherwise it takes a fresh one, also after an AF_UNSPEC disconnect,
	 * where getsockname still shows the port given up. A program's
	 * IP_BIND_ADDRESS_NO_PORT is cleared so the bind takes a port now:
	 * all its connections go to the one proxy anyway. */
	union sa b = wildcard ? to : local;
	if (b.sa.sa_family == AF_INET)
		b.in4.sin_port = 0;
	else
		b.in6.sin6_port = 0;
	int off = 0;
	setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &off, sizeof off);
	if (bind(s, &b.sa, sa_len(&b)) == 0) {
		ll = sizeof local;
		if (getsockname(s, &local.sa, &ll) < 0) {
			fail_call(t, dst, ENETUNREACH, "getsockname failed");
			return;
		}
		wildcard = 0;
	} else if (errno != EINVAL) {
		fail_call(t, dst, errno == EADDRINUSE ? EADDRNOTAVAIL : ENETUNREACH, "cannot bind a local port");
		return;
	}

	union sa peer = wildcard ? to : local;
	char daddr[INET6_ADDRSTRLEN + 16], paddr[INET6_ADDRSTRLEN + 16];
	unsigned dport, unused;
	sa_format(dst, daddr, sizeof daddr, &dport);
	sa_format(&peer, paddr, sizeof paddr, &unused);
	pid_t pid = tgid_of(t->tid);
	const char *exe = exe_of(pid);

	char line[PIPE_BUF];
	int n = via->fault < 0
			? snprintf(line, sizeof line, "C %d %d %s %u %s %u %d %s\n", pid, t->tid, daddr, dport, paddr, sa_port(&local), t->rule, exe)
			: snprintf(line, sizeof line, "W %d %d %s %u %s %u %d %u %d %u %s\n", pid, t->tid, daddr, dport, paddr, sa_port(&local),
				   t->rule, sa_port(&to), via->fault, via->delay_ms, exe);
	if (n <= 0 || (size_t)n >= sizeof line) {
		fail_call(t, dst, ENETUNREACH, "record too long");
		return;
	}
	if (channel_write(line, (size_t)n) < 0) {
		/* the proxy is gone: nothing may reach the destination */
		if (set_regs_fail(t->tid, ECONNREFUSED) < 0 && errno != ESRCH)
			dprintf(2, "%s: cannot fail a connect of task %d: %s\n", progname, t->tid, strerror(errno));
		return;
	}
	if (redirect_regs(t, &to) < 0 && errno != ESRCH)
		fail_call(t, dst, ENETUNREACH, "cannot rewrite the connect arguments");
}

/* A datagram destination decided by its rule: refused, given the rule's
 * egress options, or left alone. Returns 0 when the call may go on. */
static int datagram_by_rule(struct trapped *t, int s, const struct sockinfo *si, const union sa *dst)
{
	/* t->rule: the caller matched the destination already */
	if (t->rule < 0)
		return 0;
	const struct rule *r = &rules[t->rule];
	switch (r->udp) {
	case UDP_PASS:
		return 0;
	case UDP_REFUSE:
		fail_call(t, dst, r->err, r->tcp == TCP_REDIRECT ? "datagrams cannot go through a TCP proxy; add a rule for this destination"
								 : "refused by rule");
		return -1;
	case UDP_EGRESS:
		return egress_any(&r->eg) ? egress_or_fail(t, &r->eg, s, si, dst) : 0;
	}
	return 0;
}

/* Applies a selected connect fault. Returns 1 when it decided the call,
 * 0 when the connect goes on as the rules say (after a delay: hold_ms).
 *
 * A blocking connect is held in the tracer for the delay and then fails
 * with the errno (or goes on): the program's thread waits in connect()
 * either way. A non-blocking one must not wait: it gets EINPROGRESS at
 * once and learns the outcome later (later.h), except for the errnos the
 * kernel gives at once (answered_later). An ECONNREFUSED without a delay
 * is a real refusal from the kernel, for both kinds. */
static int apply_fault(struct trapped *t, int s, const struct sockinfo *si, const union sa *dst, const struct fault *f)
{
	int index = (int)(f - faults);
	char why[32];
	snprintf(why, sizeof why, "fault %d", index);
	int flags = fcntl(s, F_GETFL);
	int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
	const struct rule *r = &rules[t->rule];
	int err = f->err;
	if (!err && nonblocking && r->tcp == TCP_REFUSE) {
		err = r->err; /* the rule refuses it, after the delay */
		snprintf(why, sizeof why, "refused by rule");
	} else if (!err && nonblocking && hole4_port) {
		/* the proxy completes the handshake after the delay */
		struct handover via = { hole4_port, hole6_port, index, f->delay_ms };
		redirect_to_proxy(t, s, si, dst, &via);
		return 1;
	}
	hold_ms = f->delay_ms;
	if (!err) {
		char addr[INET6_ADDRSTRLEN + 16];
		unsigned port;
		sa_format(dst, addr, sizeof addr, &port);
		pid_t pid = tgid_of(t->tid);
		send_record(record_printf("H %d %d %s %u %d %s\n", pid, t->tid, addr, port, index, exe_of(pid)));
		return 0;
	}
	union sa to;
	if (nonblocking && answered_later(err, f->delay_ms)) {
		loopback_for(&to, si, dst, hole4_port, hole6_port);
		if (sa_port(&to)) {
			hold_ms = 0;
			if (redirect_regs(t, &to) == 0)
				doom_socket(s, now_ms() + f->delay_ms, err, failed_record(t, dst, err, why));
			else if (errno != ESRCH)
				fail_call(t, dst, err, why);
			return 1;
		}
	} else if (err == ECONNREFUSED && !f->delay_ms) {
		/* a real refusal, from the kernel: blocking connects get
		 * ECONNREFUSED, non-blocking ones EINPROGRESS then SO_ERROR */
		loopback_for(&to, si, dst, refuse4_port, refuse6_port);
		report_failed(t, dst, err, why);
		if (sa_port(&to) && redirect_regs(t, &to) == 0)
			return 1;
	}
	if (!hold_ms) {
		fail_call(t, dst, err, why);
	} else if (set_regs_fail(t->tid, err) == 0) {
		hold_record = failed_record(t, dst, err, why); /* sent as the task resumes */
	} else if (errno != ESRCH) {
		dprintf(2, "%s: cannot fail a call of task %d: %s\n", progname, t->tid, strerror(errno));
	}
	return 1;
}

static void handle_connect(struct trapped *t)
{
	union sa dst;
	if (read_sockaddr(t, &dst) < 0)
		return;
	t->rule = match_rule(&dst);
	if (t->rule < 0)
		return; /* loopback: untouched */
	int s = grab_socket(t->tid, t->fd);
	if (s < 0) {
		if (s != -EBADF && s != -ESRCH) /* EBADF natively / the task is gone */
			fail_call(t, &dst, ENETUNREACH, "cannot inspect the socket");
		return;
	}
	struct sockinfo si;
	int rc = inspect_socket(s, &si);
	/* Not a socket (ENOTSOCK natively), or a family mismatch (EAFNOSUPPORT
	 * natively): the kernel answers. */
	if (rc == 0 && si.domain == dst.sa.sa_family) {
		const struct rule *r = &rules[t->rule];
		if (is_datagram(&si)) {
			if (dgram_mode != DGRAM_UNTOUCHED)
				datagram_by_rule(t, s, &si, &dst);
		} else if (is_tcp(&si) && si.state == TCP_CLOSE) {
			/* (a connecting or connected socket gets EALREADY or
			 * EISCONN natively) */
			if (nfailed && connect_after_failure(t, s)) {
				close(s);
				return;
			}
			struct fault *f = select_fault(&dst);
			if (f && apply_fault(t, s, &si, &dst, f)) {
				close(s);
				return;
			}
			switch (r->tcp) {
			case TCP_PASS:
				break;
			case TCP_REFUSE:
				fail_call(t, &dst, r->err, "refused by rule");
				break;
			case TCP_REDIRECT: {
				struct handover via = { proxy4_port, proxy6_port, -1, 0 };
				redirect_to_proxy(t, s, &si, &dst, &via);
				break;
			}
			case TCP_INPLACE:
				if (egress_or_fail(t, &r->eg, s, &si, &dst) == 0)
					report_inplace(t, &dst);
				break;
			}
		}
	}
	close(s);
}

/* An unconnected datagram send (sendto/sendmsg/sendmmsg with an address)
 * is decided by its destination's rule before it goes out. A TCP Fast Open
 * send (MSG_FASTOPEN) on an unconnected socket would send a SYN without
 * connect: it fails with EOPNOTSUPP, the errno the kernel itself gives when
 * client TFO is off, so programs fall back to a plain connect. */
static void handle_send(struct trapped *t, uint64_t flags)
{
	union sa dst;
	int have_dst = read_sockaddr(t, &dst) == 0;
	if (have_dst && (t->rule = match_rule(&dst)) < 0)
		return; /* loopback */
	int s = grab_socket(t->tid, t->fd);
	if (s < 0)
		return;
	struct sockinfo si;
	if (inspect_socket(s, &si) == 0) {
		if (si.type == SOCK_STREAM && (flags & MSG_FASTOPEN) && si.state == TCP_CLOSE) {
			if (!have_dst) {
				memset(&dst, 0, sizeof dst);
				dst.sa.sa_family = AF_INET; /* for the report only */
			}
			fail_call(t, &dst, EOPNOTSUPP, "TCP Fast Open send refused so the program falls back to connect");
		} else if (is_datagram(&si) && have_dst && si.domain == dst.sa.sa_family) {
			if (dgram_mode == DGRAM_UNIFORM)
				egress_or_fail(t, dgram_egress, s, &si, &dst);
			else if (dgram_mode == DGRAM_PER_DEST)
				datagram_by_rule(t, s, &si, &dst);
		}
	}
	close(s);
}

/* With one source address for all datagrams, a datagram socket's bind to
 * the wildcard address is bound to that source instead (same port), so all
 * it sends comes from there. Binds of other sockets, and to specific
 * addresses, are untouched. */
static void handle_bind(struct trapped *t)
{
	union sa want;
	if (dgram_mode != DGRAM_UNIFORM || read_sockaddr(t, &want) < 0 || !sa_is_wildcard(&want))
		return;
	int s = grab_socket(t->tid, t->fd);
	if (s < 0)
		return;
	struct sockinfo si;
	int rc = inspect_socket(s, &si);
	close(s);
	if (rc < 0 || !is_datagram(&si) || si.domain != want.sa.sa_family)
		return;
	union sa src;
	if (egress_source_for(dgram_egress, si.domain, 0, &src) < 0 &&
	    (si.domain != AF_INET6 || si.v6only || egress_source_for(dgram_egress, AF_INET6, 1, &src) < 0))
		return; /* no source of this family: destinations of it are refused at send */
	if (src.sa.sa_family == AF_INET)
		src.in4.sin_port = want.in4.sin_port;
	else
		src.in6.sin6_port = want.in6.sin6_port;
	if (redirect_regs(t, &src) < 0 && errno != ESRCH)
		fail_call(t, &want, EADDRNOTAVAIL, "cannot rewrite the bind arguments");
}

/* socket() for a datagram socket stops twice: here, at entry, to ask for
 * the exit stop, and at exit, where the new fd exists and gets its mark. */
static void handle_socket_exit(pid_t tid)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return;
	long fd = (long)r.rax;
	if (fd < 0)
		return;
	int s = grab_socket(tid, (int)fd);
	if (s < 0)
		return;
	if (setsockopt(s, SOL_SOCKET, SO_MARK, &dgram_egress->mark, sizeof dgram_egress->mark) < 0) {
		/* the program would hold an unmarked socket: make socket() fail
		 * instead (the fd stays open in the program, unused) */
		r.rax = (unsigned long long)(long long)-errno;
		ptrace(PTRACE_SETREGS, tid, NULL, &r);
		send_record(record_printf("D %d %d cannot mark a new datagram socket: %s\n", tgid_of(tid), tid, strerror((int)-(long long)r.rax)));
	}
	close(s);
}

/* Returns the ptrace request that resumes the task (hold_ms set: resume
 * it that much later instead). */
static enum __ptrace_request handle_seccomp_stop(pid_t tid)
{
	hold_ms = 0;
	struct syscall_info info;
	memset(&info, 0, sizeof info);
	if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof info, &info) <= 0 ||
	    info.op != PTRACE_SYSCALL_INFO_SECCOMP)
		return PTRACE_CONT;
	struct trapped t = { .tid = tid, .sp = info.stack_pointer, .rule = -1 };
	uint64_t nr = info.seccomp.nr;
	const uint64_t *a = info.seccomp.args;
	if (info.arch == AUDIT_ARCH_X86_64) {
		t.abi = (nr & X32_BIT) ? ABI_X32 : ABI_64;
		nr &= ~(uint64_t)X32_BIT;
		t.fd = (int)a[0];
		struct msghdr mh;
		switch (nr) {
		case NR64_CONNECT:
			t.addr = a[1];
			t.addrlen = (uint32_t)a[2];
			handle_connect(&t);
			break;
		case NR64_BIND:
			t.addr = a[1];
			t.addrlen = (uint32_t)a[2];
			handle_bind(&t);
			break;
		case NR64_SENDTO:
			t.addr = a[4];
			t.addrlen = (uint32_t)a[5];
			handle_send(&t, a[3]);
			break;
		case NR64_SENDMSG:
		case NR64_SENDMMSG: /* struct mmsghdr starts with its msghdr */
			if (peek(tid, a[1], &mh, sizeof mh) == 0) {
				t.addr = (uint64_t)(uintptr_t)mh.msg_name;
				t.addrlen = mh.msg_namelen;
			}
			handle_send(&t, nr == NR64_SENDMSG ? a[2] : a[3]);
			break;
		case NR64_GETSOCKOPT:
		case NR_X32_GETSOCKOPT: /* (level and name checked by the filter) */
			handle_so_error(&t, a[3], a[4]);
			break;
		case NR64_SOCKET: {
			struct task *task = task_get(tid);
			if (task) {
				task->awaiting_exit = 1;
				return PTRACE_SYSCALL;
			}
			break;
		}
		}
	} else if (info.arch == AUDIT_ARCH_I386) {
		if (nr == NR32_CONNECT) {
			t.abi = ABI_I386;
			t.fd = (int)(uint32_t)a[0];
			t.addr = (uint32_t)a[1];
			t.addrlen = (uint32_t)a[2];
			handle_connect(&t);
		} else if (nr == NR32_SOCKETCALL && (uint32_t)a[0] == SYS_CONNECT) {
			uint32_t block[3];
			if (peek(tid, (uint32_t)a[1], block, sizeof block) < 0)
				return PTRACE_CONT; /* EFAULT natively */
			t.abi = ABI_I386_SOCKETCALL;
			t.sc_args = (uint32_t)a[1];
			t.fd = (int)block[0];
			t.addr = block[1];
			t.addrlen = block[2];
			handle_connect(&t);
		} else if (nr == NR32_GETSOCKOPT || (nr == NR32_SOCKETCALL && (uint32_t)a[0] == SYS_GETSOCKOPT)) {
			uint32_t g[5]; /* fd, level, name, optval, optlen */
			for (int k = 0; k < 5; k++)
				g[k] = (uint32_t)a[k];
			if (nr == NR32_SOCKETCALL && peek(tid, (uint32_t)a[1], g, sizeof g) < 0)
				return PTRACE_CONT;
			if (g[1] == SOL_SOCKET && g[2] == SO_ERROR) {
				t.abi = nr == NR32_SOCKETCALL ? ABI_I386_SOCKETCALL : ABI_I386;
				t.fd = (int)g[0];
				handle_so_error(&t, g[3], g[4]);
			}
		}
	}
	return PTRACE_CONT;
}

#include "filter.h"

/* ---------- signals ---------- */

/* Signals sent to graft reach the program once. A terminal's ^C or ^\ goes to
 * the whole foreground process group, so the program already has it. graft's
 * Node side relays every signal it gets, as a real-time signal of its own
 * (relay_base + the signal's index in `forwarded`): real-time signals queue
 * instead of merging with a pending standard one, and the kernel delivers a
 * pending standard signal before any real-time one. So a terminal-sent
 * signal (SI_KERNEL) is always seen here before Node's relay of it, and
 * gives one credit that the relay uses up; a relay without a credit is a
 * signal sent to graft itself, forwarded. Credits expire so one left over
 * (Node may merge two quick ^C into one) cannot swallow a later kill. */
#define CREDIT_MS 1500
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
#define NFORWARDED ((int)(sizeof forwarded / sizeof forwarded[0]))
static int relay_base;
static volatile sig_atomic_t credits[65];
static volatile uint64_t credit_at[65];
static pid_t parent_pid;

static void forward_to_program(int sig)
{
	if (main_status < 0 && main_pid > 0)
		kill(main_pid, sig);
}

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	int saved = errno;
	uint64_t t = now_ms();
	if (relay_base && sig >= relay_base && sig < relay_base + NFORWARDED) {
		int orig = forwarded[sig - relay_base];
		if (credits[orig] > 0 && t - credit_at[orig] < CREDIT_MS)
			credits[orig]--;
		else
			forward_to_program(orig);
	} else if (info->si_code == SI_KERNEL) {
		credits[sig]++;
		credit_at[sig] = t;
	} else {
		forward_to_program(sig);
	}
	errno = saved;
}

static void setup_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < NFORWARDED; i++) {
		sigaddset(&sa.sa_mask, forwarded[i]);
		if (relay_base)
			sigaddset(&sa.sa_mask, relay_base + i);
	}
	for (int i = 0; i < NFORWARDED; i++) {
		sigaction(forwarded[i], &sa, NULL);
		if (relay_base)
			sigaction(relay_base + i, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	/* no SA_RESTART: the timer must interrupt waitpid */
	struct sigaction alrm;
	memset(&alrm, 0, sizeof alrm);
	alrm.sa_handler = on_alarm;
	sigemptyset(&alrm.sa_mask);
	sigaction(SIGALRM, &alrm, NULL);
}

/* What the alarm woke the loop for: held records, held tasks, sockets due
 * to fail. */
static void run_due_work(void)
{
	alarm_fired = 0;
	alarm_at = 0;
	uint64_t now = now_ms();
	if (flush_at && flush_at <= now)
		channel_flush();
	uint64_t next = flush_at;
	for (int i = 0; i < nheld; i++) {
		if (held[i].due <= now) {
			if (ptrace(PTRACE_CONT, held[i].tid, NULL, NULL) < 0 && errno != ESRCH)
				dprintf(2, "%s: resuming task %d: %s\n", progname, held[i].tid, strerror(errno));
			send_record(held[i].record);
			held[i--] = held[--nheld];
		} else if (!next || held[i].due < next) {
			next = held[i].due;
		}
	}
	uint64_t sockets = ndoomed ? fail_due_sockets(now) : 0;
	if (sockets && (!next || sockets < next))
		next = sockets;
	if (next)
		wake_at(next);
	else
		stop_alarm();
}

/* A loopback port bound but not listening, or 0. */
static uint16_t closed_port(int family)
{
	union sa a;
	sa_loopback(&a, family, 0, 0);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t l = sizeof a;
	if (s < 0 || bind(s, &a.sa, sa_len(&a)) < 0 || getsockname(s, &a.sa, &l) < 0) {
		if (s >= 0)
			close(s);
		return 0;
	}
	return (uint16_t)sa_port(&a); /* kept open for the run: the port stays ours */
}

/* ---------- start-up ---------- */

enum child_stage { STAGE_SYNC = 1, STAGE_SECCOMP, STAGE_EXEC };
struct child_error { int stage; int err; };

static void check_kernel(void)
{
	int pidfd = (int)xpidfd_open(getpid(), 0);
	if (pidfd < 0 && errno == ENOSYS)
		die(2, "this kernel has no pidfd_open; graft needs Linux 5.6 or newer");
	if (pidfd >= 0) {
		int d = (int)xpidfd_getfd(pidfd, 2);
		if (d < 0 && errno == ENOSYS)
			die(2, "this kernel has no pidfd_getfd; graft needs Linux 5.6 or newer");
		if (d >= 0)
			close(d);
		close(pidfd);
	}
}

static pid_t start_program(char **argv, int *errpipe_rd)
{
	int sync[2], errp[2];
	if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		die(2, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die(2, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct child_error ce = { 0, 0 };
		char go;
		close(sync[1]);
		close(errp[0]);
		if (channel_fd >= 0)
			close(channel_fd);
		/* Default dispositions for the program, as if the shell ran it. */
		for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
			signal(forwarded[i], SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (read(sync[0], &go, 1) != 1) {
			ce.stage = STAGE_SYNC;
			goto fail;
		}
		if (install_filter() < 0) {
			ce.stage = STAGE_SECCOMP;
			ce.err = errno;
			goto fail;
		}
		execvp(argv[0], argv);
		ce.stage = STAGE_EXEC;
		ce.err = errno;
fail:
		if (write(errp[1], &ce, sizeof ce) < 0) { /* nothing more to do */ }
		_exit(127);
	}
	close(sync[0]);
	close(errp[1]);
	long opts = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		    PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)opts) < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		if (e == EPERM)
			die(2, "cannot trace %s: ptrace is not permitted here (%s). In a container, allow it "
			       "(e.g. docker run --cap-add SYS_PTRACE, or a seccomp profile that permits ptrace); "
			       "with Yama, check /proc/sys/kernel/yama/ptrace_scope",
			    argv[0], strerror(e));
		die(2, "cannot trace %s: ptrace: %s", argv[0], strerror(e));
	}
	/* Only now, with TRACESECCOMP set, may the child install its filter: a
	 * RET_TRACE filter without a tracer makes connect fail with ENOSYS. */
	if (write(sync[1], "g", 1) != 1)
		die(2, "cannot start %s: %s", argv[0], strerror(errno));
	close(sync[1]);
	task_put(pid, pid);
	*errpipe_rd = errp[0];
	return pid;
}

/* The main child died before its exec: say why, as a shell would. */
static void explain_start_failure(int errfd, const char *prog)
{
	struct child_error ce = { 0, 0 };
	ssize_t n = read(errfd, &ce, sizeof ce);
	if (n != (ssize_t)sizeof ce)
		return;
	switch (ce.stage) {
	case STAGE_EXEC:
		if (ce.err == ENOENT) {
			if (strchr(prog, '/'))
				die(127, "%s: no such file or directory", prog);
			die(127, "%s: command not found", prog);
		}
		if (ce.err == EACCES || ce.err == EISDIR || ce.err == ENOEXEC)
			die(126, "%s: cannot execute: %s", prog, ce.err == ENOEXEC ? "exec format error" : "permission denied");
		die(126, "%s: cannot execute: %s", prog, strerror(ce.err));
	case STAGE_SECCOMP:
		die(2, "cannot install the seccomp filter that traps connect (%s); graft needs a kernel "
		       "with seccomp filters (CONFIG_SECCOMP_FILTER) and a runtime that allows them",
		    strerror(ce.err));
	default:
		die(2, "cannot start %s", prog);
	}
}

static void usage(void)
{
	dprintf(2, "usage: graft-tracer --channel-fd N --rules-fd N --proxy4 PORT [--proxy6 PORT] -- program [args...]\n");
	exit(2);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die(2, "bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--channel-fd") && i + 1 < argc) {
			channel_fd = (int)parse_num(argv[++i], 0, INT_MAX, "--channel-fd");
		} else if (!strcmp(argv[i], "--proxy4") && i + 1 < argc) {
			proxy4_port = (uint16_t)parse_num(argv[++i], 1, 65535, "--proxy4");
		} else if (!strcmp(argv[i], "--proxy6") && i + 1 < argc) {
			proxy6_port = (uint16_t)parse_num(argv[++i], 0, 65535, "--proxy6");
		} else if (!strcmp(argv[i], "--relay-base") && i + 1 < argc) {
			relay_base = (int)parse_num(argv[++i], SIGRTMIN, SIGRTMAX - NFORWARDED + 1, "--relay-base");
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			rng_state = (uint64_t)parse_num(argv[++i], 0, LONG_MAX, "--seed") * 0x9e3779b97f4a7c15ull | 1;
		} else if (!strcmp(argv[i], "--rules-fd") && i + 1 < argc) {
			load_rules((int)parse_num(argv[++i], 0, INT_MAX, "--rules-fd"));
		} else {
			usage();
		}
	}
	if (i >= argc || !proxy4_port)
		usage();
	if (channel_fd >= 0 && fcntl(channel_fd, F_SETFD, FD_CLOEXEC) < 0)
		die(2, "--channel-fd %d: %s", channel_fd, strerror(errno));

	/* Die with graft; EXITKILL then takes the traced tree down too. */
	parent_pid = getppid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		exit(2);

	check_kernel();
	setup_signals();
	if (nrules == 0)
		die(2, "internal error: no rule table (--rules-fd)");
	plan_datagrams();
	for (int f = 0; f < nfaults; f++) {
		if (faults[f].err == ECONNREFUSED && !refuse4_port) {
			refuse4_port = closed_port(AF_INET);
			refuse6_port = closed_port(AF_INET6);
		}
		if (!hole4_port) {
			hole4_port = black_hole(AF_INET);
			hole6_port = proxy6_port ? black_hole(AF_INET6) : 0;
		}
		/* an errno other than ECONNRESET is answered through SO_ERROR
		 * (a delay can end in a rule's refusal) */
		if (faults[f].err != ECONNRESET)
			so_error_trapped = faults[f].err || so_error_trapped;
		for (int r = 0; !faults[f].err && r < nrules; r++)
			so_error_trapped |= rules[r].tcp == TCP_REFUSE && rules[r].err != ECONNRESET;
	}
	for (int r = 0; r < nrules; r++) {
		if (!rules[r].eg.has_mark || (rules[r].tcp != TCP_INPLACE && rules[r].udp != UDP_EGRESS))
			continue;
		/* the tracer marks the program's sockets itself: check it may */
		int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && setsockopt(probe, SOL_SOCKET, SO_MARK, &rules[r].eg.mark, sizeof rules[r].eg.mark) < 0 && (errno == EPERM || errno == EACCES))
			die(2, "--mark needs the CAP_NET_ADMIN capability in graft's tracer (%s); run graft as root or grant it "
			       "(setcap cap_net_admin+ep build/graft-tracer)", strerror(errno));
		if (probe >= 0)
			close(probe);
		break;
	}
	struct filter_needs need = {
		.socket_create = dgram_mode == DGRAM_UNIFORM && dgram_egress->has_mark,
		.datagram_sends = dgram_mode == DGRAM_PER_DEST ||
				  (dgram_mode == DGRAM_UNIFORM && (dgram_egress->iface[0] || egress_sources(dgram_egress))),
		.binds = dgram_mode == DGRAM_UNIFORM && egress_sources(dgram_egress),
		.so_error = so_error_trapped,
	};
	build_filter(&filter_prog, &need);
	int errfd = -1;
	main_pid = start_program(argv + i, &errfd);
	/* Room for the pidfd cache; only now, so the program keeps the limits
	 * it would have had without graft. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur > 1024)
			pidfds_max = (long)(rl.rlim_cur > 1 << 20 ? 1 << 19 : rl.rlim_cur / 2);
	}

	for (;;) {
		int st;
		if (alarm_fired)
			run_due_work();
		pid_t tid = waitpid(-1, &st, __WALL);
		if (tid < 0) {
			if (errno == EINTR) {
				if (alarm_fired)
					run_due_work();
				continue;
			}
			if (errno == ECHILD)
				break;
			die(2, "waitpid: %s", strerror(errno));
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			task_del(tid);
			forget_held(tid);
			if (tid == main_pid && main_status < 0) {
				main_status = st;
				if (!main_execed)
					explain_start_failure(errfd, argv[i]);
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		if (!task_get(tid))
			task_put(tid, 0);
		int sig = WSTOPSIG(st);
		int event = st >> 16;
		int inject = 0;
		enum __ptrace_request resume = PTRACE_CONT;
		switch (event) {
		case PTRACE_EVENT_SECCOMP:
			resume = handle_seccomp_stop(tid);
			if (hold_ms) {
				hold_task(tid, now_ms() + hold_ms, hold_record);
				hold_record = NULL;
				continue;
			}
			break;
		case PTRACE_EVENT_EXEC: {
			unsigned long former = 0;
			ptrace(PTRACE_GETEVENTMSG, tid, NULL, &former);
			/* the execing thread took over the thread group id */
			if ((pid_t)former != tid)
				task_del((pid_t)former);
			task_put(tid, tid);
			task_forget_image(task_get(tid));
			if (tid == main_pid && !main_execed) {
				main_execed = 1;
				close(errfd);
				errfd = -1;
			}
			break;
		}
		case PTRACE_EVENT_STOP:
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				/* group-stop: stay stopped (job control) but let us
				 * see the SIGCONT that ends it */
				if (ptrace(PTRACE_LISTEN, tid, NULL, NULL) < 0 && errno != ESRCH)
					dprintf(2, "%s: PTRACE_LISTEN %d: %s\n", progname, tid, strerror(errno));
				continue;
			}
			break;
		case 0:
			if (sig == (SIGTRAP | 0x80)) {
				/* syscall-exit-stop, asked for by a socket() trap */
				struct task *task = task_get(tid);
				if (task && task->awaiting_exit) {
					task->awaiting_exit = 0;
					handle_socket_exit(tid);
				}
				break;
			}
			inject = sig; /* signal-delivery-stop: deliver it */
			break;
		default:
			break; /* clone/fork/vfork: the new task reports itself */
		}
		if (ptrace(resume, tid, NULL, (void *)(long)inject) < 0 && errno != ESRCH)
			dprintf(2, "%s: resuming task %d: %s\n", progname, tid, strerror(errno));
	}

	channel_flush();
	if (main_status < 0)
		return 2;
	if (WIFEXITED(main_status))
		return WEXITSTATUS(main_status);
	return 128 + WTERMSIG(main_status);
}

