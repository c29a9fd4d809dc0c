/* The native relay: redirects of relay rules (a direct dial, or one
 * through a single SOCKS5 proxy, that no toxic, name or control API can
 * concern) are dialed, handed to the program and relayed by the tracer
 * itself, in a thread of their own, so Node is not woken for each connect
 * or each byte.
 *
 * The program's socket waits in SYN_SENT towards the black hole, as for
 * any redirect (handover.h). The relay thread dials the destination with
 * the rule's egress options (or dials the proxy with them, and asks it to
 * CONNECT to the destination's address: RFC 1928, with RFC 1929
 * user/password when the rule has them; a handshake that fails fails the
 * program's connect with the errno the dial message gives for how it
 * failed); when it answers, a socket bound to the black
 * hole's address opens the connection to the program's socket (a
 * simultaneous open), which connects it only now; when it does not, the
 * program's socket fails with the dial's errno (later_fail_handed). Bytes
 * move with splice(2) through a pipe per direction taken from a pool only
 * while bytes are in flight, so an idle connection holds two sockets and
 * no pipe. Half-closes pass as FINs, a reset on one side as a reset on the
 * other, as graft's Node relay does.
 *
 * Each connection's record (R) and opening (O) go to Node on the channel,
 * batched as the channel batches logged records (channel.h). */
#ifndef GRAFT_RELAY_H
#define GRAFT_RELAY_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "egress.h"
#include "later.h"
#include "rules.h"
#include "sockaddr.h"

/* A connect the main thread hands to the relay. */
struct relay_request {
	pid_t pid, tid;
	const char *exe;               /* copied */
	union sa dst;                  /* where the program connects */
	union sa peer;                 /* the program's end, which the handshake connects to */
	union sa hole;                 /* the black hole's address, the handshake's source */
	union sa src;                  /* the dial's source (port 0); AF_UNSPEC: the route's */
	const struct egress *eg;       /* the rule's mark and interface (its source is in src) */
	const struct socks_hop *socks; /* the rule's SOCKS5 proxy, or NULL: dialed directly */
	int rule;
	int held; /* the tracer's duplicate of the program's socket: the relay owns it */
};

struct relay_conn;

struct relay {
	pthread_mutex_t lock; /* guards the queue */
	struct relay_request *queue;
	size_t nqueue, capqueue;
	int finishing; /* the program has exited (under lock) */
	unsigned finish_limit_ms;
	int fd_cap;     /* the relay keeps no descriptor numbered this or higher */
	int wake;       /* eventfd: the queue changed */
	int timer;      /* timerfd: the next connection's time, or the batch's */
	uint64_t armed; /* what the timer is set to (now_us; 0: disarmed) */
	int epfd;
	pthread_t thread;
	int started;
	struct later *later;
	struct channel chan;       /* the relay thread's own batching onto the channel's fd */
	struct dial_settings dial; /* the table's dial message */
	/* the relay thread's only: */
	struct relay_conn *conns;  /* every connection */
	struct relay_conn *ended;  /* to be freed after this round of events */
	struct relay_conn **timed; /* connections waiting for a time (dial timeout, handshake retry) */
	size_t ntimed, captimed;
	struct relay_conn *failing; /* program sockets whose connect has not started yet, to fail */
	size_t nconns;
	struct pooled_pipe {
		int fds[2];
		size_t size;
	} pool[16]; /* empty pipes kept for the next burst */
	int npool;
	int nbig; /* big pipes (relay.c), in lanes and the pool */
};

/* After the program has exited, how long the bytes it sent may take to be
 * handed on before graft cuts its connections (src/proxy/server.ts has
 * the same figure for the connections Node relays). */
#define RELAY_EXIT_FLUSH_MS 1000

void relay_init(struct relay *r, struct later *l, int chan_fd);

/* Starts the thread (after the program is forked), when a rule relays. */
void relay_start(struct relay *r);

/* The duplicate of the program's socket `s` a request holds, within the
 * relay's share of descriptors; -1 (errno set, EMFILE when the share is
 * out) otherwise. */
int relay_hold(const struct relay *r, int s);

/* Hands a connect over; the relay owns req->held from now on. Returns 0,
 * or -1 (errno set) when it could not take it (held is then closed). */
int relay_add(struct relay *r, const struct relay_request *req);

/* The program has exited: connections still dialing end, relayed ones
 * once what the program sent has been handed on (cut after `limit_ms`).
 * Returns when every record is written. */
void relay_finish(struct relay *r, unsigned limit_ms);

/* The errno a failed dial's `err` gives the program's connect (pure). */
int relay_program_errno(const struct dial_settings *d, int err);

#endif
