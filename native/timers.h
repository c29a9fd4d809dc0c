/* One SIGALRM timer for the tracer's deferred work: flushing held channel
 * records, resuming tasks a fault holds stopped for a while, failing
 * sockets whose fault is due. The loop waits in waitpid; the alarm
 * interrupts it (EINTR) and the loop does what is due. An alarm that
 * fires while the tracer is busy handling stops interrupts nothing, and
 * the wait that follows could last as long as the program stays quiet: so
 * the timer repeats every millisecond once due, until the loop re-arms or
 * stops it, and the loop also looks at alarm_fired before it waits. */
#ifndef GRAFT_TIMERS_H
#define GRAFT_TIMERS_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"

/* Set by the SIGALRM handler, read and cleared by the loop: a global
 * because a signal handler cannot be handed any other state. */
extern volatile sig_atomic_t alarm_fired;

/* Tasks held in their seccomp stop by a delay fault, with the record of
 * what their call then does (a failure is logged when the program sees it,
 * not when the fault was chosen); NULL: nothing to log. */
struct held {
	pid_t tid;
	uint64_t due;
	char *record;
};

struct timers {
	uint64_t alarm_at; /* what the timer is armed for; 0: not armed */
	struct held *held;
	int nheld, capheld;
};

/* Installs the SIGALRM handler (without SA_RESTART: it must interrupt
 * waitpid). */
void timers_setup(void);
/* Asks for the loop to wake at `at_ms` (now_ms) at the latest. */
void wake_at(struct timers *tm, uint64_t at_ms);
/* Disarms the timer (nothing is due). */
void stop_alarm(struct timers *tm);
/* Async-signal-safe, for other handlers: the alarm fires within a
 * millisecond and repeats, so the loop wakes even when the handler ran
 * just before it waited; the loop then re-arms or stops the timer by its
 * own state (alarm_at is left alone, the loop's work recomputes it). */
void timers_nudge(void);

/* Keeps task `tid` stopped until `due`; then it resumes and `record`
 * (from record_keep, or NULL) is sent. */
void hold_task(struct timers *tm, pid_t tid, uint64_t due, char *record);
/* A held task that died. */
void forget_held(struct timers *tm, pid_t tid);
/* Resumes the held tasks whose time has come. Returns the next due time
 * of those still held (0: none). */
uint64_t resume_due_tasks(struct timers *tm, struct channel *ch, uint64_t now);

#endif
