#define _GNU_SOURCE
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

#define CREDIT_MS 1500
static const int forwarded[SIGNALS_FORWARDED] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

/* The state below is global because on_signal, a signal handler, reads
 * and writes it; each handler masks all the others (signals_setup), so
 * they never interleave. */
/* the first relay signal (0: none), set before the handlers are installed */
static volatile sig_atomic_t relay_base;
/* the process forwarded signals go to; 0 once it is gone */
static volatile sig_atomic_t target_pid;
/* terminal-sent signals not yet matched by Node's relay, and when */
static volatile sig_atomic_t credits[65];
static volatile uint64_t credit_at[65];

static void forward_to_program(int sig)
{
	if (target_pid > 0)
		kill(target_pid, sig);
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
			forward_to_program(orig);
	} else if (info->si_code == SI_KERNEL) {
		credits[sig]++;
		credit_at[sig] = t;
	} else {
		forward_to_program(sig);
	}
	errno = saved;
}

void signals_setup(int base)
{
	relay_base = base;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
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

void signals_target(pid_t pid)
{
	target_pid = pid;
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
