/* Connect faults a non-blocking socket learns of later, as it would from
 * the network: connect() answers EINPROGRESS at once, the socket sits in
 * SYN_SENT (poll reports nothing), and when the fault's time comes poll
 * wakes with POLLOUT|POLLERR|POLLHUP and SO_ERROR holds the errno. Included
 * once, by tracer.c, after the socket helpers.
 *
 * The waiting: the connect is pointed at a "black hole", a loopback
 * listener of graft's whose socket filter drops every packet, so the SYN
 * goes unanswered and the kernel keeps the socket in SYN_SENT (retrying the
 * SYN on its own schedule, as it would against a silent host).
 *
 * The failing: at the fault's time the tracer disconnects the socket
 * through its duplicate (connect AF_UNSPEC). For a socket in SYN_SENT the
 * kernel sets its error to ECONNRESET and wakes every poller, exactly as an
 * answer from the network does. Only ECONNRESET can be set that way, so
 * for the other errnos graft traps getsockopt(SOL_SOCKET, SO_ERROR) in runs
 * that have such faults and answers the fault's errno for that socket, and
 * a second connect() on it fails with the errno as the kernel's would.
 *
 * A handshake delay (the connect succeeds later) also waits in the black
 * hole; the proxy ends it by opening the connection from the black hole's
 * own address to the program's socket (a simultaneous open, which the
 * kernel completes like any handshake) and relays it; see the W record. */

static uint16_t hole4_port, hole6_port;

/* A loopback listener that never answers: a filter dropping every packet.
 * SO_REUSEPORT lets the proxy bind its own socket to the same address to
 * complete a delayed handshake. Returns the port, or 0. */
static uint16_t black_hole(int family)
{
	union sa a;
	sa_loopback(&a, family, 0, 0);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	int one = 1;
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop };
	socklen_t l = sizeof a;
	if (setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0 ||
	    (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(s, &a.sa, sa_len(&a)) < 0 || listen(s, SOMAXCONN) < 0 || getsockname(s, &a.sa, &l) < 0) {
		close(s);
		return 0;
	}
	return (uint16_t)sa_port(&a); /* kept open for the run */
}

/* Which of graft's loopback ports (IPv4 or IPv6) a socket of this kind
 * reaches for this destination: a dual-stack socket reaches the IPv4 one
 * through ::ffff:127.0.0.1. A 0 port: none here. */
static void loopback_for(union sa *to, const struct sockinfo *si, const union sa *dst, uint16_t port4, uint16_t port6)
{
	int mapped = si->domain == AF_INET6 && (IN6_IS_ADDR_V4MAPPED(&dst->in6.sin6_addr) || !si->v6only);
	if (si->domain == AF_INET || mapped)
		sa_loopback(to, si->domain, mapped, port4);
	else
		sa_loopback(to, AF_INET6, 0, port6);
}

/* Which errnos a non-blocking connect learns of later. A timeout or a
 * reset always comes from the far end; a refusal or an unreachable
 * network/host after a delay comes from the network (a RST, an ICMP
 * error); without a delay the last two are the local routing's answer,
 * which connect() gives at once, as are EACCES and EPERM (local policy). */
static int answered_later(int err, unsigned delay_ms)
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

/* ---------- sockets waiting for their fault ---------- */

struct doomed {
	int fd;       /* the tracer's duplicate of the program's socket */
	uint64_t due;
	int err;
	int tries;
	char *record; /* sent when the socket fails (or NULL) */
};
static struct doomed *doomed;
static int ndoomed, capdoomed;

/* Sockets failed so far, by inode: what their SO_ERROR and a second
 * connect() answer. Socket inode numbers are not reused within a run (a
 * counter hands them out), and the table forgets entries after a minute. */
#define FAILED_KEEP_MS 60000
#define FAILED_MAX 4096
struct failed {
	ino_t ino;
	int err;
	int unread; /* SO_ERROR not read yet */
	uint64_t at;
};
static struct failed failed[FAILED_MAX];
static int nfailed;
static int nunread; /* entries whose SO_ERROR is not read yet */

/* Removes entry i (the last one takes its place). */
static void forget_failed(int i)
{
	nunread -= failed[i].unread;
	failed[i] = failed[--nfailed];
}
/* set when the seccomp filter traps getsockopt(SO_ERROR) */
static int so_error_trapped;

static void doom_socket(int s, uint64_t due, int err, char *record)
{
	int fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		send_record(record);
		return;
	}
	if (ndoomed == capdoomed) {
		capdoomed = capdoomed ? capdoomed * 2 : 16;
		doomed = realloc(doomed, (size_t)capdoomed * sizeof *doomed);
		if (!doomed)
			die(2, "out of memory");
	}
	doomed[ndoomed++] = (struct doomed){ fd, due, err, 0, record };
	wake_at(due);
}

static void remember_failed(ino_t ino, int err, uint64_t now)
{
	int oldest = 0;
	for (int i = 0; i < nfailed; i++) {
		if (failed[i].at + FAILED_KEEP_MS < now)
			forget_failed(i--);
		else if (failed[i].at < failed[oldest].at)
			oldest = i;
	}
	if (nfailed == FAILED_MAX)
		forget_failed(oldest);
	failed[nfailed++] = (struct failed){ ino, err, 1, now };
	nunread++;
}

static struct failed *failed_socket(int s)
{
	struct stat st;
	if (!nfailed || fstat(s, &st) < 0)
		return NULL;
	for (int i = 0; i < nfailed; i++)
		if (failed[i].ino == st.st_ino)
			return &failed[i];
	return NULL;
}

/* Fails the sockets whose time has come. A socket still in TCP_CLOSE is
 * one whose task has not run its connect yet (the tracer resumed it a
 * moment ago): it is looked at again shortly. Returns when to come back
 * (0: nothing waits). */
static uint64_t fail_due_sockets(uint64_t now)
{
	uint64_t next = 0;
	for (int i = 0; i < ndoomed; i++) {
		struct doomed *d = &doomed[i];
		if (d->due <= now) {
			struct sockinfo si;
			int state = inspect_socket(d->fd, &si) == 0 ? si.state : -1;
			if (state == TCP_CLOSE && d->tries++ < 200) {
				d->due = now + 5;
			} else {
				if (state == TCP_SYN_SENT) {
					struct sockaddr unspec = { .sa_family = AF_UNSPEC };
					struct stat st;
					if (connect(d->fd, &unspec, sizeof unspec) == 0 && fstat(d->fd, &st) == 0)
						remember_failed(st.st_ino, d->err, now);
				}
				close(d->fd);
				send_record(d->record);
				doomed[i--] = doomed[--ndoomed];
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

/* A connect on a socket that failed: the kernel answers a second connect
 * after an asynchronous failure with the error, or ECONNABORTED once the
 * error was read; then the socket may connect afresh. Returns 1 when it
 * answered the call. */
static int connect_after_failure(const struct trapped *t, int s)
{
	struct failed *f = failed_socket(s);
	if (!f)
		return 0;
	int err = take_error(s, f);
	forget_failed((int)(f - failed));
	if (set_regs_return(t->tid, -(err ? err : ECONNABORTED)) < 0 && errno != ESRCH)
		dprintf(2, "%s: cannot answer a connect of task %d: %s\n", progname, t->tid, strerror(errno));
	return 1;
}

/* getsockopt(fd, SOL_SOCKET, SO_ERROR, optval, optlen) trapped: answers
 * it for a socket graft failed, or lets it run. */
static void handle_so_error(const struct trapped *t, uint64_t optval, uint64_t optlen)
{
	if (!nunread)
		return;
	int s = grab_socket(t->tid, t->fd);
	if (s < 0)
		return;
	struct failed *f = failed_socket(s);
	uint32_t len;
	if (f && f->unread && peek(t->tid, optlen, &len, sizeof len) == 0 && len >= sizeof(int)) {
		int v = take_error(s, f);
		f->unread = 0;
		nunread--;
		len = sizeof v;
		if (poke(t->tid, optval, &v, sizeof v) == 0 && poke(t->tid, optlen, &len, sizeof len) == 0)
			set_regs_return(t->tid, 0);
		else
			set_regs_return(t->tid, -EFAULT);
	}
	close(s);
}
