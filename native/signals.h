/* Signals sent to graft reach the program once. A terminal's ^C or ^\ goes
 * to the whole foreground process group, so the program already has it.
 * graft's Node side relays every signal it gets, as a real-time signal of
 * its own (relay_base + the signal's index in the forwarded list, which
 * src/supervisor.ts keeps in the same order): real-time signals queue
 * instead of merging with a pending standard one, and the kernel delivers
 * a pending standard signal before any real-time one. So a terminal-sent
 * signal (SI_KERNEL) is always seen here before Node's relay of it, and
 * gives one credit that the relay uses up; a relay without a credit is a
 * signal sent to graft itself, forwarded. Credits expire so one left over
 * (Node may merge two quick ^C into one) cannot swallow a later kill. */
#ifndef GRAFT_SIGNALS_H
#define GRAFT_SIGNALS_H

#include <stdint.h>
#include <sys/types.h>

/* How many signals are forwarded (and relayed from relay_base on). */
#define SIGNALS_FORWARDED 7

/* Installs the handlers; relay_base 0: Node relays nothing. Also ignores
 * SIGPIPE (a gone proxy is seen as a failed write). */
void signals_setup(int relay_base);

/* Where forwarded signals go: the main program, until it is gone
 * (pid 0). */
void signals_target(pid_t pid);

/* In the child before exec: every signal default but those the caller
 * ignored (bit N-1 for signal N), so the program starts as it would
 * without graft (exec keeps ignored dispositions). */
void signals_set_for_program(uint64_t ignored);

/* In the child just before exec: the caller's signal mask. */
void signals_mask_for_program(uint64_t blocked);

#endif
