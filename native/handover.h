/* Connects handed to graft's proxy. The program's socket waits in SYN_SENT
 * towards a black hole (later.h) while the proxy dials its destination, so
 * the program sees what a real connect shows: no answer yet. Then either
 * the proxy completes the handshake with the program's socket itself (a
 * simultaneous open from the black hole's address, which only graft's
 * user can bind: SO_REUSEPORT groups are per user), and the socket,
 * watched with epoll, reports itself connected; or the proxy answers the
 * connect's id on the control fd (spec: direction "control") with
 * "fail", and the socket fails with the errno the kernel would have given
 * (later.h says how). Until then the tracer holds a duplicate of the
 * socket. Holding it keeps
 * the program's local port taken: no other socket (another local user's)
 * can take that port and be handed the program's connection, even when
 * the program closed its socket meanwhile.
 *
 * The control fd and the held sockets are watched by a thread of its own,
 * which only touches this table, the failed-socket table and the names
 * map (all locked): waitpid cannot also wait for a pipe, and a
 * signal-driven read could miss a wake-up between the loop's check and
 * its wait.
 *
 * The control fd also carries names messages: the addresses graft's DNS
 * server hands out and the by_name rules each matches (byname.h). Node
 * writes one before the program gets the answer holding the address, so
 * the main thread, before it decides a connect or a send by the rules,
 * waits until every control line written so far has been applied
 * (handover_sync: one poll of the control fd when nothing is pending). */
#ifndef GRAFT_HANDOVER_H
#define GRAFT_HANDOVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "byname.h"
#include "later.h"

struct handed {
	unsigned id; /* 0: free slot */
	int fd;      /* the tracer's duplicate of the program's socket */
};

/* A failure the proxy answered before the program's task ran its connect
 * (the control thread's own: tried again until the connect has started). */
struct unstarted {
	int fd; /* the tracer's duplicate */
	int err;
	uint64_t until; /* then given up: the program gave the connect up */
};

struct handover {
	pthread_mutex_t lock;
	struct handed *slots; /* by id modulo cap (a power of two) */
	size_t cap, n;
	unsigned next_id;
	struct later *later;         /* where failed sockets are remembered */
	int control_fd;              /* -1: none (no connect is handed over) */
	int epfd;                    /* the control fd and the held sockets */
	struct unstarted *unstarted; /* the control thread's only */
	size_t nunstarted, capunstarted;
	/* the names map names messages fill (NULL: the table has no by_name
	 * rule, and names messages are ignored); names_lock guards it */
	struct byname *names;
	pthread_mutex_t names_lock;
	/* handover_sync: the control thread is reading the control fd (busy),
	 * or has ended (gone); synced is signalled when either changes */
	pthread_mutex_t sync_lock;
	pthread_cond_t synced;
	int busy, gone;
};

void handover_init(struct handover *h, struct later *l, int control_fd);

/* Holds a duplicate of socket `s` for a new handover. Returns its id, or
 * 0 (errno set: EMFILE, ENFILE) when it could not. */
unsigned handover_add(struct handover *h, int s);

/* Lets go of handover `id` (connected, or its record never reached the
 * proxy). */
void handover_drop(struct handover *h, unsigned id);

/* Starts the thread that reads the control fd (after the program is
 * forked: the child must not inherit a second thread's state). */
void handover_start(struct handover *h);

/* Returns once every control line written before the call has been
 * applied by the control thread (at once without a control thread). */
void handover_sync(struct handover *h);

/* One control line (without its newline): what the thread does with it.
 * Returns 0, or -1 with *why for a line it could not read. */
int handover_answer(struct handover *h, const char *line, size_t len, const char **why);

#endif
