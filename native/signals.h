/* Signals sent to graft reach the traced processes once. A terminal's ^C
 * or ^\ goes to the whole foreground process group, so it already has it.
 * graft's Node side relays every signal it gets, as a real-time signal of
 * its own (relay_base + the signal's index in the forwarded list, which
 * src/supervisor.ts keeps in the same order): real-time signals queue
 * instead of merging with a pending standard one, and the kernel delivers
 * a pending standard signal before any real-time one. So a terminal-sent
 * signal (SI_KERNEL) is always seen here before Node's relay of it, and
 * gives one credit that the relay uses up; a relay without a credit is a
 * signal sent to graft itself, forwarded. Credits expire so one left over
 * (Node may merge two quick ^C into one) cannot swallow a later kill.
 *
 * The handler only counts what arrived and wakes the wait loop (through
 * the timer, timers_nudge); the loop forwards, in signals_act:
 * - SIGINT, SIGTERM, SIGHUP, SIGQUIT (ending signals) to every process
 *   graft traces, once each, as `timeout` and `tini` forward them: graft
 *   runs until the whole tree is gone, so the tree must hear them;
 * - SIGUSR1, SIGUSR2, SIGWINCH to the first program only, while it runs:
 *   their meaning is the program's (the default action of SIGUSR1 ends a
 *   process), and a terminal resize already reaches its whole group.
 * The same ending signal a second time, when a traced process ignores it,
 * ends every traced process with SIGKILL: the tree would otherwise keep
 * graft running with the signal ignored. A process that handles the
 * signal is left to do so (a REPL's ^C, a server's graceful shutdown);
 * ^C and ^\ escalate only once the first program has exited (see
 * act_ending). */
#ifndef GRAFT_SIGNALS_H
#define GRAFT_SIGNALS_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "tasks.h"

/* How many signals are forwarded (and relayed from relay_base on). */
#define SIGNALS_FORWARDED 7

/* Set by the handler when signals_act has something to do: a global
 * because a signal handler cannot be handed any other state. */
extern volatile sig_atomic_t signals_due;

/* Installs the handlers; relay_base 0: Node relays nothing. Also ignores
 * SIGPIPE (a gone proxy is seen as a failed write). */
void signals_setup(int relay_base);

/* What signals_act remembers between calls. */
struct forwarding {
	int received[65]; /* ending signals received so far, by number */
	int escalated;    /* the tree was sent SIGKILL */
};

/* In the wait loop: forwards what the handler recorded to the traced
 * processes in `tt` (their thread groups; the first program is main_pid,
 * 0 once it has exited), or kills them all (see above). */
void signals_act(struct forwarding *fw, struct task_table *tt, pid_t main_pid);

/* In the child before exec: every signal default but those the caller
 * ignored (bit N-1 for signal N), so the program starts as it would
 * without graft (exec keeps ignored dispositions). */
void signals_set_for_program(uint64_t ignored);

/* In the child just before exec: the caller's signal mask. */
void signals_mask_for_program(uint64_t blocked);

#endif
