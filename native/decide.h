/* The decisions at each stop: connect (faults, then the rule), datagram
 * sends and binds (egress), getsockopt(SO_ERROR) for faults answered
 * later, and socket() for marking datagram sockets. */
#ifndef GRAFT_DECIDE_H
#define GRAFT_DECIDE_H

#include <sys/types.h>

#include "tracer.h"

/* What the loop does with the task after a seccomp stop. */
struct outcome {
	int want_exit;     /* resume with PTRACE_SYSCALL to see the call's return */
	unsigned hold_ms;  /* > 0: keep the task stopped this long (hold_task) */
	char *hold_record; /* ... and then send this record (record_keep; or NULL) */
};

struct outcome decide_seccomp_stop(struct tracer *tr, pid_t tid);

/* The syscall-exit stop a CALL_SOCKET asked for: marks the new socket. */
void decide_socket_exit(struct tracer *tr, pid_t tid);

/* A blocking connect handed to the proxy returned (its socket is `fd` in
 * the task): a failure of graft's gets its errno. */
void decide_connect_exit(struct tracer *tr, pid_t tid, int fd);

#endif
