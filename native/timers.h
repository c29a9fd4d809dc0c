/* One SIGALRM timer for the tracer's deferred work: flushing held channel
 * records, resuming tasks a fault holds stopped for a while, failing
 * sockets whose fault is due. The loop waits in waitpid; the alarm
 * interrupts it (EINTR) and run_due_work() does what is due. An alarm that
 * fires while the tracer is busy handling stops interrupts nothing, and
 * the wait that follows could last as long as the program stays quiet: so
 * the timer repeats every millisecond once due, until run_due_work()
 * re-arms or stops it, and the loop also looks at alarm_fired before it
 * waits. Included once, by tracer.c, before channel.h. */

static volatile sig_atomic_t alarm_fired;
static uint64_t alarm_at; /* what the timer is armed for; 0: not armed */

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

/* Asks for the loop to wake at `at_ms` (CLOCK_MONOTONIC ms) at the latest. */
static void wake_at(uint64_t at_ms)
{
	if (alarm_at && alarm_at <= at_ms)
		return;
	alarm_at = at_ms;
	uint64_t now = now_ms();
	uint64_t in = at_ms > now ? at_ms - now : 1;
	struct itimerval it = {
		.it_value = { .tv_sec = (time_t)(in / 1000), .tv_usec = (suseconds_t)((in % 1000) * 1000) },
		.it_interval = { .tv_sec = 0, .tv_usec = 1000 },
	};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_alarm(void)
{
	static const struct itimerval off;
	alarm_at = 0;
	setitimer(ITIMER_REAL, &off, NULL);
}

/* Tasks held in their seccomp stop by a delay fault, with the record of
 * what their call then does (a failure is logged when the program sees it,
 * not when the fault was chosen); NULL: nothing to log. */
struct held { pid_t tid; uint64_t due; char *record; };
static struct held *held;
static int nheld, capheld;

static void hold_task(pid_t tid, uint64_t due, char *record)
{
	if (nheld == capheld) {
		capheld = capheld ? capheld * 2 : 16;
		held = realloc(held, (size_t)capheld * sizeof *held);
		if (!held)
			die(2, "out of memory");
	}
	held[nheld++] = (struct held){ tid, due, record };
	wake_at(due);
}

static void forget_held(pid_t tid)
{
	for (int i = 0; i < nheld; i++) {
		if (held[i].tid == tid) {
			free(held[i].record);
			held[i--] = held[--nheld];
		}
	}
}
