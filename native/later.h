/* Connect faults a non-blocking socket learns of later, as it would from
 * the network: connect() answers EINPROGRESS at once, the socket sits in
 * SYN_SENT (poll reports nothing), and when the fault's time comes poll
 * wakes with POLLOUT|POLLERR|POLLHUP and SO_ERROR holds the errno.
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
#ifndef GRAFT_LATER_H
#define GRAFT_LATER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch/arch.h"
#include "channel.h"
#include "tasks.h"

/* A socket waiting for its fault. */
struct doomed {
	int fd; /* the tracer's duplicate of the program's socket */
	uint64_t due;
	int err;
	int tries;
	char *record; /* sent when the socket fails (or NULL) */
};

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

struct later {
	uint16_t hole4, hole6; /* the black holes' ports (0: none) */
	/* guards failed[], nfailed, nunread: the control thread
	 * (handover.h) adds to them too */
	pthread_mutex_t lock;
	struct doomed *doomed;
	int ndoomed, capdoomed;
	struct failed failed[FAILED_MAX];
	int nfailed;
	int nunread;          /* entries whose SO_ERROR is not read yet */
	int so_error_trapped; /* the seccomp filter traps getsockopt(SO_ERROR) */
};

/* A loopback listener that never answers: a filter dropping every packet.
 * SO_REUSEPORT lets the proxy bind its own socket to the same address to
 * complete a delayed handshake. Returns the port, or 0. */
uint16_t black_hole(int family);

/* A loopback port bound but not listening, or 0: a connect there is
 * refused by the kernel itself, so a non-blocking one reports it through
 * SO_ERROR. */
uint16_t closed_port(int family);

/* Whether a non-blocking connect learns of this errno later (pure). */
int answered_later(int err, unsigned delay_ms);

/* Fails socket `s` (a duplicate, kept) with `err` at `due`, then sends
 * `record`. Returns 0 when it waits (the caller wakes the loop at `due`);
 * -1 when it could not (no descriptor for the duplicate), and the record
 * went out now. */
int later_doom(struct later *l, struct channel *ch, int s, uint64_t due, int err, char *record);

/* Fails the sockets whose time has come. Returns when to come back (0:
 * nothing waits). */
uint64_t later_fail_due(struct later *l, struct channel *ch, uint64_t now);

/* A TCP socket's state (-1: unreadable), and in `started` whether a
 * connect has run on it (a connect sets the advertised MSS, which stays:
 * a socket in TCP_CLOSE without one has not started its connect yet).
 * TCP_INFO reads the state before it takes the socket's lock and the MSS
 * after: while the program's task is inside connect(), which holds the
 * lock, one read can give the state from before the connect (TCP_CLOSE)
 * with the MSS from after, as if the connect had already ended. So that
 * combination is read again; the first read waited for the lock. */
int later_tcp_state(int fd, int *started);

/* Fails socket `fd` (a duplicate of a program's socket the proxy could
 * not connect) with `err` now, from the control thread. Returns 1 when
 * the socket's task has not run its connect yet (the proxy answered
 * first: a fast refusal, a busy machine): the caller tries again shortly.
 * One the kernel already failed (its own timeout) keeps the kernel's
 * error. */
int later_fail_handed(struct later *l, int fd, int err);

/* A blocking connect on socket `s` returned `rv` (-errno): the value the
 * program gets (the failure's errno for a socket graft failed). */
long later_connect_returned(struct later *l, int s, long rv);

/* A connect on socket `s` (a duplicate of the call's): answers it when the
 * socket is one graft failed. Returns 1 when it answered the call. */
int later_connect_again(struct later *l, const struct call *c, int s);

/* getsockopt(fd, SOL_SOCKET, SO_ERROR, optval, optlen) trapped: answers
 * it for a socket graft failed, or lets it run. */
void later_so_error(struct later *l, struct task_table *tt, const struct call *c);

#endif
