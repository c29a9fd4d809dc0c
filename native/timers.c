#define _GNU_SOURCE
#include "timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/time.h>

#include "util.h"

volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

void timers_setup(void)
{
	struct sigaction alrm;
	memset(&alrm, 0, sizeof alrm);
	alrm.sa_handler = on_alarm;
	sigemptyset(&alrm.sa_mask);
	sigaction(SIGALRM, &alrm, NULL);
}

void wake_at(struct timers *tm, uint64_t at_ms)
{
	if (tm->alarm_at && tm->alarm_at <= at_ms)
		return;
	tm->alarm_at = at_ms;
	uint64_t now = now_ms();
	uint64_t in = at_ms > now ? at_ms - now : 1;
	struct itimerval it = {
		.it_value = { .tv_sec = (time_t)(in / 1000), .tv_usec = (suseconds_t)((in % 1000) * 1000) },
		.it_interval = { .tv_sec = 0, .tv_usec = 1000 },
	};
	setitimer(ITIMER_REAL, &it, NULL);
}

void stop_alarm(struct timers *tm)
{
	static const struct itimerval off;
	tm->alarm_at = 0;
	setitimer(ITIMER_REAL, &off, NULL);
}

void timers_nudge(void)
{
	/* setitimer is a bare system call in glibc, safe in a handler */
	static const struct itimerval soon = {
		.it_value = { .tv_sec = 0, .tv_usec = 1000 },
		.it_interval = { .tv_sec = 0, .tv_usec = 1000 },
	};
	setitimer(ITIMER_REAL, &soon, NULL);
}

void hold_task(struct timers *tm, pid_t tid, uint64_t due, char *record)
{
	if (tm->nheld == tm->capheld) {
		tm->capheld = tm->capheld ? tm->capheld * 2 : 16;
		tm->held = realloc(tm->held, (size_t)tm->capheld * sizeof *tm->held);
		if (!tm->held)
			die(2, "out of memory");
	}
	tm->held[tm->nheld++] = (struct held){ tid, due, record };
	wake_at(tm, due);
}

void forget_held(struct timers *tm, pid_t tid)
{
	for (int i = 0; i < tm->nheld; i++) {
		if (tm->held[i].tid == tid) {
			free(tm->held[i].record);
			tm->held[i--] = tm->held[--tm->nheld];
		}
	}
}

uint64_t resume_due_tasks(struct timers *tm, struct channel *ch, uint64_t now)
{
	uint64_t next = 0;
	for (int i = 0; i < tm->nheld; i++) {
		struct held *h = &tm->held[i];
		if (h->due <= now) {
			if (ptrace(PTRACE_CONT, h->tid, NULL, NULL) < 0 && errno != ESRCH)
				note("resuming task %d: %s", h->tid, strerror(errno));
			channel_send_kept(ch, h->record);
			tm->held[i--] = tm->held[--tm->nheld];
		} else if (!next || h->due < next) {
			next = h->due;
		}
	}
	return next;
}
