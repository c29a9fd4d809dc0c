#define _GNU_SOURCE
#include "tracee.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

long xpidfd_open(pid_t pid, unsigned flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

long xpidfd_getfd(int pidfd, int fd)
{
	return syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

int peek(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

int poke(pid_t tid, uint64_t addr, const void *buf, size_t len)
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

int grab_socket(struct task_table *tt, pid_t tid, int fd)
{
	struct task *t = task_get(tt, tid);
	int pidfd = t ? t->pidfd : -1;
	if (pidfd < 0) {
		/* a thread's own pidfd: threads may have fd tables of their own */
		pidfd = (int)xpidfd_open(tid, PIDFD_THREAD);
		if (pidfd < 0 && (errno == EINVAL || errno == ENOENT))
			pidfd = (int)xpidfd_open(task_tgid(tt, tid), 0); /* before Linux 6.9 */
		if (pidfd < 0)
			return -errno;
		t = task_get(tt, tid); /* task_tgid may have grown the table */
		if (t && tt->pidfds_cached < tt->pidfds_max) {
			t->pidfd = pidfd;
			tt->pidfds_cached++;
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

/* One int-sized socket option; 0 or -errno. */
static int sockopt_int(int s, int level, int name, int *v)
{
	socklen_t l = sizeof(int);
	return getsockopt(s, level, name, v, &l) < 0 ? -errno : 0;
}

int inspect_socket(int s, struct sockinfo *si)
{
	int rc;
	if ((rc = sockopt_int(s, SOL_SOCKET, SO_DOMAIN, &si->domain)) < 0 || (rc = sockopt_int(s, SOL_SOCKET, SO_TYPE, &si->type)) < 0 ||
	    (rc = sockopt_int(s, SOL_SOCKET, SO_PROTOCOL, &si->protocol)) < 0)
		return rc;
	si->state = -1;
	si->v6only = 0;
	if (is_tcp(si)) {
		struct tcp_info ti;
		socklen_t l = sizeof ti;
		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0)
			si->state = ti.tcpi_state;
	}
	if (si->domain == AF_INET6)
		sockopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY, &si->v6only);
	return 0;
}

int read_sockaddr(pid_t tid, uint64_t addr, uint64_t addrlen, union sa *out)
{
	memset(out, 0, sizeof *out);
	if (addr == 0 || addrlen < sizeof(sa_family_t) || addrlen > sizeof(struct sockaddr_storage))
		return -1;
	size_t want = addrlen < sizeof *out ? addrlen : sizeof *out;
	if (peek(tid, addr, out, want) < 0)
		return -1; /* EFAULT natively */
	if (out->sa.sa_family == AF_INET)
		return addrlen < sizeof(struct sockaddr_in) ? -1 : 0;
	if (out->sa.sa_family == AF_INET6)
		return addrlen < 24 ? -1 : 0; /* SIN6_LEN_RFC2133: the kernel accepts 24 */
	return -1;
}
