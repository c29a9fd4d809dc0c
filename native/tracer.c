/*
 * graft-tracer: runs a program under ptrace with a seccomp filter that traps
 * connect(2) only, and points every TCP connect to a non-loopback address at
 * graft's local proxy. The real destination is written to the proxy over a
 * pipe before the program's connect resumes.
 *
 * Usage (spawned by graft's Node side, not meant to be run by hand):
 *   graft-tracer --channel-fd N --proxy4 PORT [--proxy6 PORT] -- program [args...]
 *
 * Exit status: the program's, or 128+signal when it was killed by one; 127/126
 * when it cannot be found/executed; 2 when tracing cannot be set up.
 *
 * Channel records (one line each, fields separated by single spaces):
 *   C <pid> <tid> <dst-addr> <dst-port> <peer-addr> <peer-port> <exe>
 *       a redirected connect; <peer-*> is the address the proxy will see as
 *       the remote end of the accepted connection
 *   F <pid> <tid> <dst-addr> <dst-port> <errno-name> <exe> <reason...>
 *       a connect the tracer failed on purpose instead of letting it leak
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
#define NR_IO_URING_SETUP 425 /* same number on x86_64 and i386 */
/* i386 */
#define NR32_SOCKETCALL 102
#define NR32_CONNECT 362

/* Scratch space for the rewritten sockaddr: below the x86_64 red zone (128
 * bytes) but well within the few hundred bytes any stack (Go's small
 * goroutine stacks included) keeps free below the stack pointer at a
 * syscall. The kernel copies the sockaddr in at syscall entry, so the
 * scratch only has to live until then. */
#define SCRATCH_BELOW_SP 256

static const char *progname = "graft";
static int channel_fd = -1;
static uint16_t proxy4_port, proxy6_port;
static pid_t main_pid;
static int main_status = -1;
static int main_execed;
static int verbose_diag;

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

/* ---------- task table: tid -> thread group id ---------- */

struct task { pid_t tid; pid_t tgid; };
static struct task *tasks;
static size_t tasks_cap, tasks_len;

static size_t task_slot(pid_t tid)
{
	size_t i = ((uint32_t)tid * 2654435761u) & (tasks_cap - 1);
	while (tasks[i].tid != 0 && tasks[i].tid != tid)
		i = (i + 1) & (tasks_cap - 1);
	return i;
}

static void task_put(pid_t tid, pid_t tgid);

static void tasks_grow(void)
{
	struct task *old = tasks;
	size_t old_cap = tasks_cap;
	tasks_cap = old_cap ? old_cap * 2 : 1024;
	tasks = calloc(tasks_cap, sizeof *tasks);
	if (!tasks)
		die(2, "out of memory");
	tasks_len = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].tid > 0)
			task_put(old[i].tid, old[i].tgid);
	free(old);
}

static void task_put(pid_t tid, pid_t tgid)
{
	if ((tasks_len + 1) * 2 > tasks_cap)
		tasks_grow();
	size_t i = task_slot(tid);
	if (tasks[i].tid == 0)
		tasks_len++;
	tasks[i].tid = tid;
	tasks[i].tgid = tgid;
}

static struct task *task_get(pid_t tid)
{
	if (!tasks_cap)
		return NULL;
	size_t i = task_slot(tid);
	return tasks[i].tid == tid ? &tasks[i] : NULL;
}

static void task_del(pid_t tid)
{
	if (!tasks_cap)
		return;
	size_t i = task_slot(tid);
	if (tasks[i].tid != tid)
		return;
	/* backward-shift deletion keeps linear probing chains intact */
	size_t j = i;
	for (;;) {
		j = (j + 1) & (tasks_cap - 1);
		if (tasks[j].tid == 0)
			break;
		size_t home = ((uint32_t)tasks[j].tid * 2654435761u) & (tasks_cap - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			tasks[i] = tasks[j];
			i = j;
		}
	}
	tasks[i].tid = 0;
	tasks[i].tgid = 0;
	tasks_len--;
}

static pid_t tgid_of(pid_t tid)
{
	struct task *t = task_get(tid);
	if (t && t->tgid)
		return t->tgid;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/status", tid);
	pid_t tgid = tid;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			char *p = strstr(buf, "\nTgid:");
			if (p)
				tgid = (pid_t)atoi(p + 6);
		}
	}
	task_put(tid, tgid);
	return tgid;
}

/* ---------- channel ---------- */

static void exe_of(pid_t pid, char *out, size_t outlen)
{
	char path[64], raw[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, raw, sizeof raw - 1);
	if (n <= 0) {
		snprintf(out, outlen, "?");
		return;
	}
	raw[n] = 0;
	size_t o = 0;
	for (ssize_t i = 0; i < n && o + 4 < outlen; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c <= 0x20 || c == '%' || c == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

/* Returns 0 when the whole line reached the proxy. Lines stay below
 * PIPE_BUF, so a pipe write is atomic and never interleaves. */
static int channel_write(const char *line, size_t len)
{
	if (channel_fd < 0)
		return -1;
	for (;;) {
		ssize_t n = write(channel_fd, line, len);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

static void channel_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void channel_printf(const char *fmt, ...)
{
	char line[PIPE_BUF];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	channel_write(line, (size_t)n);
}

/* ---------- addresses ---------- */

union sa {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static int v4_is_local(uint32_t be)
{
	uint32_t a = ntohl(be);
	return (a >> 24) == 127 || a == 0;
}

/* Loopback and unspecified destinations stay on this host: graft passes them. */
static int sa_is_local(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return v4_is_local(a->in4.sin_addr.s_addr);
	const struct in6_addr *x = &a->in6.sin6_addr;
	if (IN6_IS_ADDR_LOOPBACK(x) || IN6_IS_ADDR_UNSPECIFIED(x))
		return 1;
	if (IN6_IS_ADDR_V4MAPPED(x)) {
		uint32_t v4;
		memcpy(&v4, &x->s6_addr[12], 4);
		return v4_is_local(v4);
	}
	return 0;
}

static void sa_format(const union sa *a, char *addr, size_t addrlen, unsigned *port)
{
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, addr, (socklen_t)addrlen);
		*port = ntohs(a->in4.sin_port);
	} else {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, addr, (socklen_t)addrlen);
		if (a->in6.sin6_scope_id && !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
			size_t l = strlen(addr);
			snprintf(addr + l, addrlen - l, "%%%u", a->in6.sin6_scope_id);
		}
		*port = ntohs(a->in6.sin6_port);
	}
}

static int sa_is_wildcard(const union sa *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

static socklen_t sa_len(const union sa *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void sa_loopback(union sa *a, int family, int mapped, uint16_t port)
{
	memset(a, 0, sizeof *a);
	if (family == AF_INET) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->in4.sin_port = htons(port);
	} else {
		a->in6.sin6_family = AF_INET6;
		if (mapped) {
			a->in6.sin6_addr.s6_addr[10] = 0xff;
			a->in6.sin6_addr.s6_addr[11] = 0xff;
			a->in6.sin6_addr.s6_addr[12] = 127;
			a->in6.sin6_addr.s6_addr[15] = 1;
		} else {
			a->in6.sin6_addr = in6addr_loopback;
		}
		a->in6.sin6_port = htons(port);
	}
}

/* ---------- tracee memory and registers ---------- */

static int peek(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int poke(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)(uintptr_t)addr, len };
	if (process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	/* process_vm_writev honours page protections; POKEDATA (like a debugger)
	 * does not, which matters for an unusual stack mapping. */
	const unsigned char *p = buf;
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long word;
		errno = 0;
		word = ptrace(PTRACE_PEEKDATA, tid, (void *)(uintptr_t)(addr + off), NULL);
		if (errno)
			return -1;
		size_t n = len - off < sizeof(long) ? len - off : sizeof(long);
		memcpy(&word, p + off, n);
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(uintptr_t)(addr + off), (void *)word) < 0)
			return -1;
	}
	return 0;
}

/* How the trapped syscall passes its arguments, so the rewrite can point
 * the right register (or socketcall argument block) at the scratch copy. */
enum call_abi { ABI_64, ABI_X32, ABI_I386, ABI_I386_SOCKETCALL };

struct trapped {
	pid_t tid;
	enum call_abi abi;
	int fd;
	uint64_t addr;     /* sockaddr pointer in the tracee */
	uint64_t addrlen;
	uint64_t sp;
	uint64_t sc_args;  /* socketcall: pointer to the u32 argument block */
};

static int set_regs_fail(pid_t tid, int err)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -1;
	r.orig_rax = (unsigned long long)-1; /* skip the syscall ... */
	r.rax = (unsigned long long)(long long)-err; /* ... and return -err */
	return ptrace(PTRACE_SETREGS, tid, NULL, &r);
}

/* Writes `to` into scratch space on the tracee's stack and points the
 * syscall at it; the program's own sockaddr is never touched. */
static int redirect_regs(const struct trapped *t, const union sa *to)
{
	socklen_t len = sa_len(to);
	uint64_t scratch = (t->sp - SCRATCH_BELOW_SP) & ~(uint64_t)15;
	if (t->abi == ABI_X32 || t->abi == ABI_I386 || t->abi == ABI_I386_SOCKETCALL)
		scratch &= 0xffffffffu;
	if (poke(t->tid, scratch, to, len) < 0)
		return -1;
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, t->tid, NULL, &r) < 0)
		return -1;
	switch (t->abi) {
	case ABI_64:
	case ABI_X32:
		r.rsi = scratch;
		r.rdx = len;
		break;
	case ABI_I386:
		r.rcx = scratch;
		r.rdx = len;
		break;
	case ABI_I386_SOCKETCALL: {
		uint32_t block[3] = { (uint32_t)t->fd, (uint32_t)scratch, len };
		uint64_t bscratch = (scratch - 16) & ~(uint64_t)15;
		if (poke(t->tid, bscratch, block, sizeof block) < 0)
			return -1;
		r.rcx = bscratch;
		break;
	}
	}
	return ptrace(PTRACE_SETREGS, t->tid, NULL, &r);
}

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
	int pidfd = (int)xpidfd_open(tid, PIDFD_THREAD);
	if (pidfd < 0 && (errno == EINVAL || errno == ENOENT))
		pidfd = (int)xpidfd_open(tgid_of(tid), 0);
	if (pidfd < 0)
		return -errno;
	int dup = (int)xpidfd_getfd(pidfd, fd);
	int err = errno;
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
	switch (e) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENETUNREACH: return "ENETUNREACH";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EACCES: return "EACCES";
	default: return "EIO";
	}
}

static void report_failed(const struct trapped *t, const union sa *dst, int err, const char *why)
{
	char addr[INET6_ADDRSTRLEN + 16], exe[PATH_MAX * 3 + 1];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	pid_t pid = tgid_of(t->tid);
	exe_of(pid, exe, sizeof exe);
	channel_printf("F %d %d %s %u %s %s %s\n", pid, t->tid, addr, port, errno_name(err), exe, why);
}

/* Fails the connect with `err` rather than letting it out unproxied. */
static void fail_connect(const struct trapped *t, const union sa *dst, int err, const char *why)
{
	report_failed(t, dst, err, why);
	if (set_regs_fail(t->tid, err) < 0 && errno != ESRCH)
		dprintf(2, "%s: cannot fail a connect of task %d: %s\n", progname, t->tid, strerror(errno));
}

static void handle_connect(const struct trapped *t)
{
	union sa dst;
	memset(&dst, 0, sizeof dst);
	/* Anything odd about the arguments is left to the kernel, which then
	 * gives the program exactly the error it would get natively. */
	if (t->addr == 0 || t->addrlen < sizeof(sa_family_t) || t->addrlen > sizeof(struct sockaddr_storage))
		return;
	size_t want = t->addrlen < sizeof dst ? t->addrlen : sizeof dst;
	if (peek(t->tid, t->addr, &dst, want) < 0)
		return; /* EFAULT natively */
	if (dst.sa.sa_family == AF_INET) {
		if (t->addrlen < sizeof(struct sockaddr_in))
			return;
	} else if (dst.sa.sa_family == AF_INET6) {
		if (t->addrlen < 24) /* SIN6_LEN_RFC2133: the kernel accepts it */
			return;
	} else {
		return;
	}
	if (sa_is_local(&dst))
		return;

	int s = grab_socket(t->tid, t->fd);
	if (s < 0) {
		if (s == -EBADF || s == -ESRCH)
			return; /* EBADF natively / the task is gone */
		fail_connect(t, &dst, ENETUNREACH, "cannot inspect the socket");
		return;
	}
	struct sockinfo si;
	int rc = inspect_socket(s, &si);
	if (rc < 0 || si.type != SOCK_STREAM || (si.protocol != IPPROTO_TCP && si.protocol != IPPROTO_MPTCP) ||
	    si.domain != dst.sa.sa_family || si.state != TCP_CLOSE) {
		/* not TCP (UDP, Unix, ...), not a socket (ENOTSOCK natively),
		 * family mismatch (EAFNOSUPPORT natively), or already connecting
		 * or connected (EALREADY / EISCONN natively) */
		close(s);
		return;
	}

	/* Where the program's socket stands now: a bind it made is kept. */
	union sa local;
	socklen_t ll = sizeof local;
	if (getsockname(s, &local.sa, &ll) < 0) {
		close(s);
		fail_connect(t, &dst, ENETUNREACH, "getsockname failed");
		return;
	}
	int wildcard = sa_is_wildcard(&local);
	int dst_mapped = si.domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&dst.in6.sin6_addr);
	int local_mapped = si.domain == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&local.in6.sin6_addr);

	/* Which listener. A dual-stack socket goes to the IPv4 listener through
	 * ::ffff:127.0.0.1 even for an IPv6 destination: binding it to ::1 would
	 * make it IPv6-only for good, which the program could notice later
	 * (a reconnect to a v4-mapped address after AF_UNSPEC would fail). */
	union sa to;
	if (si.domain == AF_INET) {
		sa_loopback(&to, AF_INET, 0, proxy4_port);
	} else if (dst_mapped || local_mapped) {
		if (si.v6only || !dst_mapped || !(wildcard || local_mapped)) {
			close(s); /* ENETUNREACH natively: v4 and v6 do not mix here */
			return;
		}
		sa_loopback(&to, AF_INET6, 1, proxy4_port);
	} else if (!si.v6only && wildcard) {
		sa_loopback(&to, AF_INET6, 1, proxy4_port);
	} else if (proxy6_port) {
		sa_loopback(&to, AF_INET6, 0, proxy6_port);
	} else {
		close(s);
		fail_connect(t, &dst, ENETUNREACH, "IPv6 socket but graft's proxy has no IPv6 listener (::1 unavailable)");
		return;
	}

	/* Fix the program's local port now, so the proxy can tell this
	 * connection from every other by its peer address. bind() fails with
	 * EINVAL when the socket already holds a port (the program bound one);
	 * otherwise it takes a fresh one, also after an AF_UNSPEC disconnect,
	 * where getsockname still shows the port given up. A program's
	 * IP_BIND_ADDRESS_NO_PORT is cleared so the bind takes a port now:
	 * all its connections go to the one proxy anyway. */
	union sa b;
	if (wildcard) {
		b = to;
	} else {
		b = local;
	}
	if (b.sa.sa_family == AF_INET)
		b.in4.sin_port = 0;
	else
		b.in6.sin6_port = 0;
	int off = 0;
	setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &off, sizeof off);
	if (bind(s, &b.sa, sa_len(&b)) == 0) {
		ll = sizeof local;
		if (getsockname(s, &local.sa, &ll) < 0) {
			close(s);
			fail_connect(t, &dst, ENETUNREACH, "getsockname failed");
			return;
		}
		wildcard = 0;
	} else if (errno != EINVAL) {
		int e = errno;
		close(s);
		fail_connect(t, &dst, e == EADDRINUSE ? EADDRNOTAVAIL : ENETUNREACH, "cannot bind a local port");
		return;
	}
	close(s);

	union sa peer = wildcard ? to : local;
	char daddr[INET6_ADDRSTRLEN + 16], paddr[INET6_ADDRSTRLEN + 16], exe[PATH_MAX * 3 + 1];
	unsigned dport, pport;
	sa_format(&dst, daddr, sizeof daddr, &dport);
	sa_format(&peer, paddr, sizeof paddr, &pport);
	pport = local.sa.sa_family == AF_INET ? ntohs(local.in4.sin_port) : ntohs(local.in6.sin6_port);
	pid_t pid = tgid_of(t->tid);
	exe_of(pid, exe, sizeof exe);

	char line[PIPE_BUF];
	int n = snprintf(line, sizeof line, "C %d %d %s %u %s %u %s\n", pid, t->tid, daddr, dport, paddr, pport, exe);
	if (n <= 0 || (size_t)n >= sizeof line) {
		fail_connect(t, &dst, ENETUNREACH, "record too long");
		return;
	}
	if (channel_write(line, (size_t)n) < 0) {
		/* the proxy is gone: nothing may reach the destination */
		if (set_regs_fail(t->tid, ECONNREFUSED) < 0 && errno != ESRCH)
			dprintf(2, "%s: cannot fail a connect of task %d: %s\n", progname, t->tid, strerror(errno));
		return;
	}
	if (redirect_regs(t, &to) < 0 && errno != ESRCH)
		fail_connect(t, &dst, ENETUNREACH, "cannot rewrite the connect arguments");
}

/* TCP Fast Open sends the SYN from sendto/sendmsg, bypassing connect. Such
 * a send is failed with EOPNOTSUPP, the errno the kernel itself gives when
 * client TFO is off, so programs fall back to a plain connect. */
static void handle_fastopen(const struct trapped *t)
{
	union sa dst;
	memset(&dst, 0, sizeof dst);
	dst.sa.sa_family = AF_UNSPEC;
	if (t->addr && t->addrlen >= sizeof(sa_family_t) && t->addrlen <= sizeof dst)
		peek(t->tid, t->addr, &dst, t->addrlen);
	if ((dst.sa.sa_family == AF_INET || dst.sa.sa_family == AF_INET6) && sa_is_local(&dst))
		return;
	int s = grab_socket(t->tid, t->fd);
	if (s < 0)
		return;
	struct sockinfo si;
	int rc = inspect_socket(s, &si);
	close(s);
	if (rc < 0 || si.type != SOCK_STREAM || si.state != TCP_CLOSE)
		return;
	if (dst.sa.sa_family != AF_INET && dst.sa.sa_family != AF_INET6) {
		dst.sa.sa_family = AF_INET; /* for the report only */
	}
	fail_connect(t, &dst, EOPNOTSUPP, "TCP Fast Open send refused so the program falls back to connect");
}

static void handle_seccomp_stop(pid_t tid)
{
	struct syscall_info info;
	memset(&info, 0, sizeof info);
	if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof info, &info) <= 0 ||
	    info.op != PTRACE_SYSCALL_INFO_SECCOMP)
		return;
	struct trapped t = { .tid = tid, .sp = info.stack_pointer };
	uint64_t nr = info.seccomp.nr;
	const uint64_t *a = info.seccomp.args;
	int fastopen = 0;
	if (info.arch == AUDIT_ARCH_X86_64) {
		t.abi = (nr & X32_BIT) ? ABI_X32 : ABI_64;
		nr &= ~(uint64_t)X32_BIT;
		t.fd = (int)a[0];
		if (nr == NR64_CONNECT) {
			t.addr = a[1];
			t.addrlen = (uint32_t)a[2];
		} else if (nr == NR64_SENDTO) {
			fastopen = 1;
			t.addr = a[4];
			t.addrlen = (uint32_t)a[5];
		} else if (nr == NR64_SENDMSG) {
			struct msghdr mh;
			fastopen = 1;
			if (t.abi == ABI_64 && peek(tid, a[1], &mh, sizeof mh) == 0) {
				t.addr = (uint64_t)(uintptr_t)mh.msg_name;
				t.addrlen = mh.msg_namelen;
			}
		} else {
			return;
		}
	} else if (info.arch == AUDIT_ARCH_I386) {
		if (nr == NR32_CONNECT) {
			t.abi = ABI_I386;
			t.fd = (int)(uint32_t)a[0];
			t.addr = (uint32_t)a[1];
			t.addrlen = (uint32_t)a[2];
		} else if (nr == NR32_SOCKETCALL && (uint32_t)a[0] == SYS_CONNECT) {
			uint32_t block[3];
			if (peek(tid, (uint32_t)a[1], block, sizeof block) < 0)
				return; /* EFAULT natively */
			t.abi = ABI_I386_SOCKETCALL;
			t.sc_args = (uint32_t)a[1];
			t.fd = (int)block[0];
			t.addr = block[1];
			t.addrlen = block[2];
		} else {
			return;
		}
	} else {
		return;
	}
	if (fastopen)
		handle_fastopen(&t);
	else
		handle_connect(&t);
}

/* ---------- seccomp filter ---------- */

#define LD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define TRACE RET(SECCOMP_RET_TRACE)
#define ALLOW RET(SECCOMP_RET_ALLOW)
#define NOSYS RET(SECCOMP_RET_ERRNO | ENOSYS)
/* if (acc == k) fall through to the next statement, else skip `skip` */
#define IF_EQ(k, skip) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), 0, (skip))

static int install_filter(void)
{
	/* Only connect (and fast-open sends) ever stop in the tracer;
	 * everything else runs at native speed. io_uring is refused with
	 * ENOSYS, as in many container runtimes, because IORING_OP_CONNECT
	 * would bypass connect(2); programs then fall back to plain syscalls. */
	struct sock_filter f[] = {
		LD_ARCH,
		IF_EQ(AUDIT_ARCH_X86_64, 18),
		LD_NR,
		IF_EQ(NR64_CONNECT, 1), TRACE,
		IF_EQ(X32_BIT | NR64_CONNECT, 1), TRACE,
		IF_EQ(NR_IO_URING_SETUP, 1), NOSYS,
		IF_EQ(X32_BIT | NR_IO_URING_SETUP, 1), NOSYS,
		IF_EQ(NR64_SENDTO, 3), LD_ARG_LO(3), BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, 0, 5), TRACE,
		IF_EQ(NR64_SENDMSG, 3), LD_ARG_LO(2), BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, 0, 1), TRACE,
		ALLOW,
		/* i386 */
		IF_EQ(AUDIT_ARCH_I386, 10),
		LD_NR,
		IF_EQ(NR32_CONNECT, 1), TRACE,
		IF_EQ(NR_IO_URING_SETUP, 1), NOSYS,
		IF_EQ(NR32_SOCKETCALL, 3), LD_ARG_LO(0), IF_EQ(SYS_CONNECT, 1), TRACE,
		ALLOW,
		ALLOW,
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
		return 0;
	if (errno != EACCES)
		return -1;
	/* Unprivileged: the kernel requires no_new_privs first. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ---------- signals ---------- */

/* Signals sent to graft reach the program once. A terminal's ^C or ^\ goes to
 * the whole foreground process group, so the program already has it; graft's
 * Node side relays every signal it gets to us, so for each terminal-sent
 * signal (SI_KERNEL) we also expect one relay from our parent, which is
 * dropped. Credits expire so a stale one cannot swallow a later kill. */
#define CREDIT_MS 1500
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
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
	if (info->si_code == SI_KERNEL) {
		credits[sig]++;
		credit_at[sig] = t;
	} else if (info->si_pid == parent_pid && credits[sig] > 0 && t - credit_at[sig] < CREDIT_MS) {
		credits[sig]--;
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
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
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
		    PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
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
	dprintf(2, "usage: graft-tracer --channel-fd N --proxy4 PORT [--proxy6 PORT] -- program [args...]\n");
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
		} else if (!strcmp(argv[i], "--diag")) {
			verbose_diag = 1;
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
	int errfd = -1;
	main_pid = start_program(argv + i, &errfd);

	for (;;) {
		int st;
		pid_t tid = waitpid(-1, &st, __WALL);
		if (tid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			die(2, "waitpid: %s", strerror(errno));
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			task_del(tid);
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
		switch (event) {
		case PTRACE_EVENT_SECCOMP:
			handle_seccomp_stop(tid);
			break;
		case PTRACE_EVENT_EXEC: {
			unsigned long former = 0;
			ptrace(PTRACE_GETEVENTMSG, tid, NULL, &former);
			/* the execing thread took over the thread group id */
			if ((pid_t)former != tid)
				task_del((pid_t)former);
			task_put(tid, tid);
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
			inject = sig; /* signal-delivery-stop: deliver it */
			break;
		default:
			break; /* clone/fork/vfork: the new task reports itself */
		}
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)inject) < 0 && errno != ESRCH)
			dprintf(2, "%s: PTRACE_CONT %d: %s\n", progname, tid, strerror(errno));
	}

	if (main_status < 0)
		return 2;
	if (WIFEXITED(main_status))
		return WEXITSTATUS(main_status);
	return 128 + WTERMSIG(main_status);
}
