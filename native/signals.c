#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "timers.h"
#include "util.h"

#define CREDIT_MS 1500
static const int forwarded[SIGNALS_FORWARDED] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

volatile sig_atomic_t signals_due;

/* The state below is global because on_signal, a signal handler, reads
 * and writes it; each handler masks all the others (signals_setup), so
 * they never interleave, and signals_act blocks them while it takes the
 * counts. The handover thread blocks every signal, so the handler always
 * interrupts the wait loop's thread. */
/* the first relay signal (0: none), set before the handlers are installed */
static volatile sig_atomic_t relay_base;
/* terminal-sent signals not yet matched by Node's relay, and when */
static volatile sig_atomic_t credits[65];
static volatile uint64_t credit_at[65];
/* per signal: forwards owed; forwards owed for a signal sent to the tracer
 * itself while Node relays (a kill of graft's process group also reaches
 * Node, whose relay is the one counted towards escalation); ending signals
 * the terminal already delivered */
static volatile sig_atomic_t owed[65], direct[65], heard[65];

static int is_ending(int sig)
{
	return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
}

/* Async-signal-safe: counts and wakes the loop. */
static void record(volatile sig_atomic_t *count)
{
	(*count)++;
	signals_due = 1;
	timers_nudge();
}

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	int saved = errno;
	uint64_t t = now_ms();
	if (relay_base && sig >= relay_base && sig < relay_base + SIGNALS_FORWARDED) {
		int orig = forwarded[sig - relay_base];
		if (credits[orig] > 0 && t - credit_at[orig] < CREDIT_MS)
			credits[orig]--;
		else
			record(&owed[orig]);
	} else if (info->si_code == SI_KERNEL) {
		credits[sig]++;
		credit_at[sig] = t;
		if (is_ending(sig))
			record(&heard[sig]);
	} else {
		record(relay_base ? &direct[sig] : &owed[sig]);
	}
	errno = saved;
}

void signals_setup(int base)
{
	relay_base = base;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	/* SA_RESTART: the tracer's own calls carry on; the timer's nudge
	 * (without it) is what interrupts waitpid */
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < SIGNALS_FORWARDED; i++) {
		sigaddset(&sa.sa_mask, forwarded[i]);
		if (base)
			sigaddset(&sa.sa_mask, base + i);
	}
	for (int i = 0; i < SIGNALS_FORWARDED; i++) {
		sigaction(forwarded[i], &sa, NULL);
		if (base)
			sigaction(base + i, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

struct pids {
	pid_t *v;
	size_t n, cap;
};

static void pids_add(struct pids *p, pid_t pid)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = realloc(p->v, p->cap * sizeof *p->v);
		if (!p->v)
			die(2, "out of memory");
	}
	p->v[p->n++] = pid;
}

/* The children of task `tid`: a fork the loop has not seen yet is traced
 * already (auto-attached) and should hear the signal too, as it would
 * from a kill of a process group. */
static void add_children(struct pids *p, pid_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", tid, tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return; /* gone, or a kernel without CONFIG_PROC_CHILDREN */
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		pids_add(p, pid);
	fclose(f);
}

/* The traced processes: each thread group once (a kill of any thread
 * reaches its whole group, so one per group). Returns how many; *out is
 * malloc'd. */
static size_t thread_groups(struct task_table *tt, pid_t **out)
{
	struct pids p = { 0 };
	/* the tids first: task_tgid may add to the table */
	for (size_t i = 0; i < tt->cap && p.n < tt->len; i++)
		if (tt->tasks[i].tid > 0)
			pids_add(&p, tt->tasks[i].tid);
	size_t ntasks = p.n;
	for (size_t i = 0; i < ntasks; i++) {
		add_children(&p, p.v[i]);
		p.v[i] = task_tgid(tt, p.v[i]);
	}
	pids_add(&p, 0); /* *out is never NULL */
	qsort(p.v, p.n, sizeof *p.v, by_pid);
	size_t k = 0;
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i] > 0 && (k == 0 || p.v[k - 1] != p.v[i]))
			p.v[k++] = p.v[i];
	*out = p.v;
	return k;
}

/* Whether process `pid` ignores `sig` (SigIgn in /proc/PID/status). */
static int ignores(pid_t pid, int sig)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *p = strstr(buf, "\nSigIgn:");
	return p && (strtoull(p + 8, NULL, 16) >> (sig - 1) & 1);
}

static void kill_each(const pid_t *groups, size_t n, int sig)
{
	for (size_t i = 0; i < n; i++)
		kill(groups[i], sig);
}

/* An ending signal: `times` to forward, `count` received (sent to graft,
 * or by the terminal), `keyed` of those by the terminal. main_gone: the
 * first program has exited. */
static void act_ending(struct forwarding *fw, struct task_table *tt, int sig, int times, int count, int keyed, int main_gone)
{
	pid_t *groups;
	size_t n = thread_groups(tt, &groups);
	/* Only the same signal again escalates: the first may be ignored by
	 * design (nohup, a shell's background job and ^C), another signal
	 * may mean something else (a reload's SIGHUP, a REPL's ^C). A
	 * terminal's key reached the program itself, which decides what it
	 * does with it (an interactive shell ignores ^\); once it has exited,
	 * graft waits only for what natively would be left in the background. */
	int again = fw->received[sig] > 0 || count > 1;
	int may_escalate = !fw->escalated && again && (count > keyed || main_gone);
	int ignored = 0;
	for (size_t i = 0; may_escalate && i < n && !ignored; i++)
		ignored = ignores(groups[i], sig);
	if (fw->escalated || ignored) {
		fw->escalated = 1;
		kill_each(groups, n, SIGKILL);
	} else {
		for (int k = 0; k < times; k++)
			kill_each(groups, n, sig);
	}
	fw->received[sig] += count;
	free(groups);
}

void signals_act(struct forwarding *fw, struct task_table *tt, pid_t main_pid)
{
	int owed_now[SIGNALS_FORWARDED], direct_now[SIGNALS_FORWARDED], heard_now[SIGNALS_FORWARDED];
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	signals_due = 0;
	for (int i = 0; i < SIGNALS_FORWARDED; i++) {
		int sig = forwarded[i];
		owed_now[i] = owed[sig];
		direct_now[i] = direct[sig];
		heard_now[i] = heard[sig];
		owed[sig] = direct[sig] = heard[sig] = 0;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < SIGNALS_FORWARDED; i++) {
		int sig = forwarded[i], times = owed_now[i] + direct_now[i];
		if (is_ending(sig) && times + heard_now[i] > 0)
			act_ending(fw, tt, sig, times, owed_now[i] + heard_now[i], heard_now[i], main_pid == 0);
		else
			for (int k = 0; k < times && main_pid > 0; k++)
				kill(main_pid, sig);
	}
}

void signals_set_for_program(uint64_t ignored)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa.sa_handler = ignored & (1ULL << (sig - 1)) ? SIG_IGN : SIG_DFL;
		sigaction(sig, &sa, NULL); /* fails only for glibc's own (32, 33) */
	}
}

void signals_mask_for_program(uint64_t blocked)
{
	sigset_t set;
	sigemptyset(&set);
	for (int sig = 1; sig <= 64 && sig < NSIG; sig++)
		if (blocked & (1ULL << (sig - 1)))
			sigaddset(&set, sig);
	sigprocmask(SIG_SETMASK, &set, NULL);
}
