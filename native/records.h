/* The records the tracer sends graft's Node side (src/tracer/channel.ts
 * reads them): each kind is a message of spec/tracer-boundary.json, written
 * by the one encoder (boundary.h). This unit fills the messages from the
 * tracer's own types; it is pure.
 *
 * Each function writes one line into `line` (`cap` bytes, at most
 * RECORD_MAX count) and returns its length, or 0 when none could be made.
 * C must reach the proxy whole: 0 when they do not fit. A logged
 * record that does not fit is sent with a shorter executable name. */
#ifndef GRAFT_RECORDS_H
#define GRAFT_RECORDS_H

#include <stddef.h>
#include <sys/types.h>

#include "boundary_messages.h"
#include "sockaddr.h"

/* Whose call a record is about. */
struct rec_who {
	pid_t pid, tid;
	const char *exe; /* as /proc/PID/exe reads */
};

/* Records fit one pipe write (PIPE_BUF): atomic, never interleaved */
#define RECORD_MAX BND_LINE_MAX

/* A connect handed to the proxy (the C record): its id, the program's
 * port, the black hole it waits at, its rule, and a handshake delay fault
 * (-1: none) with its delay. */
struct handover_record {
	unsigned id;
	unsigned peer_port, hole_port;
	int rule;
	int fault;
	unsigned delay_ms;
};

size_t record_redirect(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer,
		       const struct handover_record *h);
size_t record_inplace(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule);
size_t record_kept_local(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule);
/* `fault`: the connect fault that failed the call, or -1 */
size_t record_failed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int err, int rule, int fault, const char *why);
size_t record_held(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int fault);
/* A datagram socket pointed at graft's DNS server (the Q record, sent at
 * once; a long executable name is shortened as for logged records):
 * `listener_v6` which listener, `local_port` the socket's port,
 * `dst` where the program meant to send. */
size_t record_dns_socket(char *line, size_t cap, const struct rec_who *w, int listener_v6, unsigned local_port, const union sa *dst);
/* How a connection the tracer relayed ended (the R record). */
struct relay_outcome {
	uint64_t bytes_up, bytes_down;
	unsigned duration_ms;
	enum bnd_relay_end end;
	int err;        /* 0: none */
	int socks_code; /* a SOCKS5 failure reply's REP, or -1 */
	int at_exit;
};
size_t record_relayed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, int rule,
		      const struct relay_outcome *o);
/* A connection the tracer relays has opened (the O record). */
size_t record_opened(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer);
size_t record_diag(char *line, size_t cap, pid_t pid, pid_t tid, const char *msg);

#endif
