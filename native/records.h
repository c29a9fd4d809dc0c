/* The records the tracer sends graft's Node side (src/channel.ts decodes
 * them): one line each, fields separated by single spaces. This unit is
 * the only one that knows their format; it is pure.
 *
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
 *
 * Each function writes one line into `line` (`cap` bytes) and returns its
 * length. C and W must reach the proxy whole: they return 0 when the line
 * does not fit. The others are only logged: a line too long is cut and
 * still ends in a newline. */
#ifndef GRAFT_RECORDS_H
#define GRAFT_RECORDS_H

#include <stddef.h>
#include <sys/types.h>

#include "sockaddr.h"

/* Whose call a record is about. */
struct rec_who {
	pid_t pid, tid;
	const char *exe; /* encoded, see record_encode_exe */
};

/* Records fit one pipe write (PIPE_BUF): atomic, never interleaved */
#define RECORD_MAX 4096

size_t record_redirect(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, unsigned peer_port,
		       int rule);
size_t record_wait(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, unsigned peer_port, int rule,
		   unsigned hole_port, int fault, unsigned delay_ms);
size_t record_inplace(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule);
size_t record_failed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int err, int rule, const char *why);
size_t record_held(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int fault);
size_t record_diag(char *line, size_t cap, pid_t pid, pid_t tid, const char *msg);

/* The errno's name (ECONNREFUSED), "EIO" for one without a name. */
const char *errno_name(int e);

/* Percent-encodes the `n` bytes of an executable's path (space, %,
 * control bytes and DEL) into `out`, NUL-terminated; stops early rather
 * than overflow. */
void record_encode_exe(const char *raw, size_t n, char *out, size_t cap);

#endif
