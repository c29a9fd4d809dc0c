/* DNS capture: the program's datagrams to a destination whose rule says
 * dns (a name server on port 53, say) go to graft's DNS server instead,
 * which listens on 127.0.0.1:port4 and [::1]:port6 (the table's dns
 * message). The program cannot tell, as the principle asks:
 *
 *   - connect and sends with an address are re-addressed to the listener
 *     of the socket's kind (AF_INET: 127.0.0.1:port4; AF_INET6: [::1]:port6
 *     for an IPv6 destination, [::ffff:127.0.0.1]:port4 for a v4-mapped
 *     one), on the stack as TCP redirects are, never in the program's
 *     memory. A socket without a local port first gets one the way the
 *     kernel's autobind would (the wildcard of its family, port 0), so the
 *     Q record can tell graft's DNS server which socket meant which
 *     server before the query arrives; the record goes out at once.
 *   - an answer read with its source (recvfrom with a source pointer,
 *     recvmsg, recvmmsg) shows the server the socket meant, not the
 *     listener: glibc, musl and c-ares drop answers from anyone else.
 *     Unconnected sockets that sent to several servers see the latest
 *     one (musl accepts an answer from any server it asked).
 *   - getpeername and getsockname of a connected one answer as natively
 *     (names.h: the socket is remembered there like a redirect).
 *   - read/recv/write/send without an address need nothing.
 *
 * Coverage by ABI: x86-64 all of it; sendmmsg re-addresses its first
 * message only and returns 1 (the program sends the rest in its next call,
 * each decided by its own destination). x32 and i386 programs: connect and
 * recvfrom (i386 direct and through socketcall); their sends with an
 * address, recvmsg and recvmmsg are not trapped (a DNS client sending
 * unconnected on those ABIs is not captured).
 *
 * The sockets are remembered by inode (DNS_SOCKS slots, probed DNS_PROBE
 * at a time, the oldest replaced), 48 bytes each, allocated at the first. */
#ifndef GRAFT_DNS_H
#define GRAFT_DNS_H

#include <stdint.h>
#include <sys/types.h>

#include "arch/arch.h"
#include "sockaddr.h"
#include "tasks.h"

struct tracer;

#define DNS_SOCKS 4096
#define DNS_PROBE 8

struct dns_sock {
	ino_t ino;     /* 0: free */
	union sa dst;  /* where the program meant to send, latest */
	unsigned port; /* its local port, as the Q record said */
	uint64_t seq;
};

struct dns {
	struct dns_sock *slot; /* DNS_SOCKS, NULL until the first */
	uint64_t seq;
};

/* A connect or a send with an address (`c`, on the tracer's duplicate `s`
 * of a datagram socket described by `si`) to `dst`, whose rule `rule`
 * says dns. Returns 0 when the call goes on re-addressed, 1 when it also
 * needs its syscall-exit stop (a sendmmsg: the task's exit is set up), 2
 * when it is left to the kernel as it is (a v4-mapped destination on an
 * IPv6-only socket: the kernel refuses it; a sendmmsg of no message), or
 * -errno to fail the call
 * with (*why says why). */
int dns_redirect(struct tracer *tr, const struct call *c, int s, const struct sockinfo *si, const union sa *dst, int rule,
		 const char **why);

/* A receive that may read an answer's source (CALL_RECVFROM, RECVMSG,
 * RECVMMSG): on a socket pointed at graft's DNS server, the task's exit is
 * set up; returns 1 then (resume to the exit), else 0. */
int dns_recv_entry(struct tracer *tr, const struct call *c);

/* The exits dns_redirect and dns_recv_entry asked for. */
void dns_recv_exit(struct tracer *tr, pid_t tid, struct task *t);
void dns_sendmmsg_exit(pid_t tid, struct task *t);

#endif
