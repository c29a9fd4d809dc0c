/*
 * graft-tracer: runs a program under ptrace with a seccomp filter that traps
 * connect(2) (and what egress and faults need), and decides every TCP
 * connect to a non-loopback address by the rule table: redirect to graft's
 * local proxy, mark in place, refuse, or pass. The real destination of a
 * redirect is written to the proxy over a pipe (records.h) before the
 * program's connect resumes.
 *
 * Usage (spawned by graft's Node side, not meant to be run by hand):
 *   graft-tracer --channel-fd N --rules-fd N [--control-fd N]
 *                [--relay-base SIG] [--seed N] [--keep-fds N,N,...]
 *                [--sig-ignored HEX] [--sig-blocked HEX] [--nofile N|unlimited]
 *                -- program [args...]
 * (--rules-fd: the rule table, see table.h; --control-fd: the proxy's
 * answers to redirected connects, see handover.h; --keep-fds: the descriptors
 * the program gets, default 0,1,2, every other one is closed at its exec;
 * --sig-ignored, --sig-blocked: the signals it starts ignoring and
 * blocking, bit N-1 for signal N as in /proc/PID/status, default none;
 * --nofile: its soft open-files limit, default the tracer's own)
 *
 * Exit status: the program's, or 128+signal when it was killed by one; 127/126
 * when it cannot be found/executed; 2 when tracing cannot be set up.
 *
 * This file: arguments, set-up, and the wait loop. See native/README.md
 * for the other units.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch/arch.h"
#include "decide.h"
#include "dns.h"
#include "signals.h"
#include "spawn.h"
#include "table.h"
#include "tracer.h"
#include "util.h"

static void usage(void)
{
	dprintf(2, "usage: graft-tracer --channel-fd N --rules-fd N [--control-fd N] -- program [args...]\n");
	exit(2);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die(2, "bad %s: %s", what, s);
	return v;
}

static void load_table(struct tracer *tr, int fd)
{
	FILE *f = fdopen(fd, "r");
	if (!f)
		die(2, "--rules-fd %d: %s", fd, strerror(errno));
	char err[1024];
	if (table_read(f, &tr->rules, &tr->faults, err, sizeof err) < 0)
		die(2, "%s", err);
	fclose(f);
}

static uint64_t parse_hex(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	if (errno || *end || end == s || *s == '-')
		die(2, "bad %s: %s", what, s);
	return (uint64_t)v;
}

/* "0,1,2,5": the descriptors the program keeps. */
static void parse_keep(struct program_start *ps, const char *s, const char *what)
{
	int n = 1;
	for (const char *c = s; *c; c++)
		n += *c == ',';
	int *keep = calloc((size_t)n, sizeof *keep);
	if (!keep)
		die(2, "out of memory");
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		die(2, "out of memory");
	int k = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		keep[k++] = (int)parse_num(tok, 0, INT_MAX, what);
	free(copy);
	ps->keep = keep;
	ps->nkeep = k;
}

/* Parses the options; returns the index of the program in argv. */
static int parse_args(struct tracer *tr, struct program_start *ps, int argc, char **argv, int *relay_base)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *opt = argv[i];
		int has_value = i + 1 < argc;
		if (!strcmp(opt, "--")) {
			i++;
			break;
		} else if (!strcmp(opt, "--channel-fd") && has_value) {
			tr->chan.fd = (int)parse_num(argv[++i], 0, INT_MAX, opt);
		} else if (!strcmp(opt, "--control-fd") && has_value) {
			tr->handover.control_fd = (int)parse_num(argv[++i], 0, INT_MAX, opt);
		} else if (!strcmp(opt, "--relay-base") && has_value) {
			*relay_base = (int)parse_num(argv[++i], SIGRTMIN, SIGRTMAX - SIGNALS_FORWARDED + 1, opt);
		} else if (!strcmp(opt, "--seed") && has_value) {
			faults_seed(&tr->faults, (uint64_t)parse_num(argv[++i], 0, LONG_MAX, opt));
		} else if (!strcmp(opt, "--rules-fd") && has_value) {
			load_table(tr, (int)parse_num(argv[++i], 0, INT_MAX, opt));
		} else if (!strcmp(opt, "--keep-fds") && has_value) {
			parse_keep(ps, argv[++i], opt);
		} else if (!strcmp(opt, "--sig-ignored") && has_value) {
			ps->sig_ignored = parse_hex(argv[++i], opt);
		} else if (!strcmp(opt, "--sig-blocked") && has_value) {
			ps->sig_blocked = parse_hex(argv[++i], opt);
		} else if (!strcmp(opt, "--nofile") && has_value) {
			const char *v = argv[++i];
			ps->has_nofile = 1;
			ps->nofile = !strcmp(v, "unlimited") ? RLIM_INFINITY : (rlim_t)parse_num(v, 0, LONG_MAX, opt);
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();
	return i;
}

/* Whether connects may be handed to the proxy: a rule redirects, or a
 * handshake delay fault hands a connect over. */
static int hands_over(const struct tracer *tr)
{
	for (int r = 0; r < tr->rules.n; r++)
		if (tr->rules.rules[r].tcp == TCP_REDIRECT)
			return 1;
	for (int f = 0; f < tr->faults.n; f++)
		if (!tr->faults.faults[f].err)
			return 1;
	return 0;
}

/* The loopback ports redirects and connect faults need, and whether
 * getsockopt(SO_ERROR) must be trapped: a connect the proxy could not
 * make, or a fault, fails a socket with an errno the kernel cannot be
 * made to set (later.h). A socket with no IPv6 black hole (no ::1 here)
 * is refused (decide.c). */
static void plan_loopback_ports(struct tracer *tr)
{
	struct later *l = &tr->later;
	int handing = hands_over(tr);
	if (handing || tr->faults.n) {
		l->hole4 = black_hole(AF_INET);
		l->hole6 = black_hole(AF_INET6);
		if (!l->hole4)
			die(2, "cannot set up a loopback listener on 127.0.0.1: %s", strerror(errno));
	}
	l->so_error_trapped = handing;
	for (int f = 0; f < tr->faults.n; f++) {
		const struct fault *fault = &tr->faults.faults[f];
		if (fault->err == ECONNREFUSED && !tr->ports.refuse4) {
			tr->ports.refuse4 = closed_port(AF_INET);
			tr->ports.refuse6 = closed_port(AF_INET6);
		}
		/* an errno other than ECONNRESET is answered through SO_ERROR
		 * (a delay can end in a rule's refusal) */
		if (fault->err != ECONNRESET)
			l->so_error_trapped = fault->err || l->so_error_trapped;
		for (int r = 0; !fault->err && r < tr->rules.n; r++)
			l->so_error_trapped |= tr->rules.rules[r].tcp == TCP_REFUSE && tr->rules.rules[r].err != ECONNRESET;
	}
}

/* With by_name rules, the names map names messages fill (handover.h). */
static void plan_names(struct tracer *tr)
{
	for (int r = 0; r < tr->rules.n; r++) {
		if (tr->rules.rules[r].by_name) {
			byname_init(&tr->byname, tr->rules.n);
			tr->rules.names = &tr->byname;
			tr->handover.names = &tr->byname;
			return;
		}
	}
}

/* The tracer marks the program's sockets itself when a rule marks in
 * place: check it may, before the program starts. */
static void check_mark_allowed(const struct rule_table *rt)
{
	for (int r = 0; r < rt->n; r++) {
		const struct egress *eg = &rt->rules[r].eg;
		if (!eg->has_mark || (rt->rules[r].tcp != TCP_INPLACE && rt->rules[r].udp != UDP_EGRESS))
			continue;
		int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && setsockopt(probe, SOL_SOCKET, SO_MARK, &eg->mark, sizeof eg->mark) < 0 &&
		    (errno == EPERM || errno == EACCES))
			die(2,
			    "--mark needs the CAP_NET_ADMIN capability in graft's tracer (%s); run graft as root or grant it "
			    "(setcap cap_net_admin+ep build/graft-tracer)",
			    strerror(errno));
		if (probe >= 0)
			close(probe);
		return;
	}
}

/* Whether a connect may be redirected: a redirect rule, or a handshake
 * delay fault (a non-blocking connect then waits for the proxy). */
static struct filter_needs filter_needs_of(const struct tracer *tr)
{
	const struct rule_table *rt = &tr->rules;
	int uniform = rt->dgram_mode == DGRAM_UNIFORM;
	return (struct filter_needs){
		.socket_create = uniform && rt->dgram_egress->has_mark,
		.datagram_sends =
			rt->dgram_mode == DGRAM_PER_DEST || (uniform && (rt->dgram_egress->iface[0] || egress_sources(rt->dgram_egress))),
		.binds = uniform && egress_sources(rt->dgram_egress),
		.so_error = tr->later.so_error_trapped,
		.names = hands_over(tr) || rt->dns,
		.dns_receives = rt->dns,
	};
}

/* Room for the pidfd cache and the sockets held for the proxy; only once
 * the program runs, so it keeps the limits it would have had without
 * graft (the child restores the caller's soft limit, spawn.c). Under a low
 * hard limit the cache takes at most a quarter of it: a program with many
 * threads must not leave no room to hold their connects (each waiting
 * one holds a descriptor). */
static void raise_fd_limit(struct task_table *tt)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur > 1024)
			tt->pidfds_max = (long)(rl.rlim_cur > 1 << 20 ? 1 << 19 : rl.rlim_cur / 2);
		else if ((long)rl.rlim_cur / 4 < tt->pidfds_max)
			tt->pidfds_max = (long)rl.rlim_cur / 4;
	}
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

/* What the alarm woke the loop for: held records, held tasks, sockets due
 * to fail. */
static void run_due_work(struct tracer *tr)
{
	alarm_fired = 0;
	tr->timers.alarm_at = 0;
	uint64_t now = now_ms();
	if (tr->chan.flush_at && tr->chan.flush_at <= now)
		channel_flush(&tr->chan);
	uint64_t next = earliest(tr->chan.flush_at, resume_due_tasks(&tr->timers, &tr->chan, now));
	if (tr->later.ndoomed)
		next = earliest(next, later_fail_due(&tr->later, &tr->chan, now));
	if (next)
		wake_at(&tr->timers, next);
	else
		stop_alarm(&tr->timers);
}

/* A task exited or was killed. */
static void on_task_gone(struct tracer *tr, pid_t tid, int st, const char *prog)
{
	task_del(&tr->tasks, tid);
	forget_held(&tr->timers, tid);
	if (tid == tr->main_pid && tr->main_status < 0) {
		tr->main_status = st;
		if (!tr->main_execed)
			explain_start_failure(tr->errfd, prog);
	}
}

static void on_exec(struct tracer *tr, pid_t tid)
{
	unsigned long former = 0;
	ptrace(PTRACE_GETEVENTMSG, tid, NULL, &former);
	/* the execing thread took over the thread group id */
	if ((pid_t)former != tid)
		task_del(&tr->tasks, (pid_t)former);
	task_put(&tr->tasks, tid, tid);
	task_forget_image(&tr->tasks, task_get(&tr->tasks, tid));
	if (tid == tr->main_pid && !tr->main_execed) {
		tr->main_execed = 1;
		close(tr->errfd);
		tr->errfd = -1;
	}
}

/* A ptrace stop of `tid`: handles it and resumes the task (or leaves it
 * stopped: job control, a fault's hold). */
static void on_stop(struct tracer *tr, pid_t tid, int st)
{
	if (!task_get(&tr->tasks, tid))
		task_put(&tr->tasks, tid, 0);
	int sig = WSTOPSIG(st);
	int inject = 0;
	enum __ptrace_request resume = PTRACE_CONT;
	switch (st >> 16) {
	case PTRACE_EVENT_SECCOMP: {
		struct outcome o = decide_seccomp_stop(tr, tid);
		if (o.hold_ms) {
			hold_task(&tr->timers, tid, now_ms() + o.hold_ms, o.hold_record);
			return;
		}
		if (o.want_exit)
			resume = PTRACE_SYSCALL;
		break;
	}
	case PTRACE_EVENT_EXEC:
		on_exec(tr, tid);
		break;
	case PTRACE_EVENT_STOP:
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			/* group-stop: stay stopped (job control) but let us
			 * see the SIGCONT that ends it */
			if (ptrace(PTRACE_LISTEN, tid, NULL, NULL) < 0 && errno != ESRCH)
				note("PTRACE_LISTEN %d: %s", tid, strerror(errno));
			return;
		}
		break;
	case 0:
		if (sig == (SIGTRAP | 0x80)) {
			/* syscall-exit-stop, asked for by a seccomp stop */
			struct task *task = task_get(&tr->tasks, tid);
			enum awaited_exit what = task ? task->awaiting_exit : EXIT_NONE;
			if (task)
				task->awaiting_exit = EXIT_NONE;
			if (what == EXIT_SOCKET)
				decide_socket_exit(tr, tid);
			else if (what == EXIT_CONNECT)
				decide_connect_exit(tr, tid, task->exit_fd);
			else if (what == EXIT_DNS_RECV)
				dns_recv_exit(tr, tid, task);
			else if (what == EXIT_DNS_SENDMMSG)
				dns_sendmmsg_exit(tid, task);
			break;
		}
		inject = sig; /* signal-delivery-stop: deliver it */
		break;
	default:
		break; /* clone/fork/vfork: the new task reports itself */
	}
	if (ptrace(resume, tid, NULL, (void *)(long)inject) < 0 && errno != ESRCH)
		note("resuming task %d: %s", tid, strerror(errno));
}

/* Waits for stops until no traced task is left. The alarm interrupts the
 * wait (EINTR); a signal to forward sets the alarm too (timers_nudge). */
static void wait_loop(struct tracer *tr, const char *prog)
{
	for (;;) {
		int st;
		if (alarm_fired)
			run_due_work(tr);
		if (signals_due)
			signals_act(&tr->forwarding, &tr->tasks, tr->main_status < 0 ? tr->main_pid : 0);
		pid_t tid = waitpid(-1, &st, __WALL);
		if (tid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			die(2, "waitpid: %s", strerror(errno));
		}
		if (WIFEXITED(st) || WIFSIGNALED(st))
			on_task_gone(tr, tid, st, prog);
		else if (WIFSTOPPED(st))
			on_stop(tr, tid, st);
	}
}

/* The relay's thread, when a rule relays (after the fork, as the control
 * thread). */
static void start_relay(struct tracer *tr)
{
	relay_init(&tr->relay, &tr->later, tr->chan.fd);
	tr->relay.dial = tr->rules.dial;
	for (int i = 0; i < tr->rules.n; i++) {
		if (tr->rules.rules[i].relay && tr->rules.rules[i].tcp == TCP_REDIRECT) {
			relay_start(&tr->relay);
			return;
		}
	}
}

/* Everything before the program starts. */
static void set_up(struct tracer *tr, int relay_base)
{
	if (tr->chan.fd >= 0 && fcntl(tr->chan.fd, F_SETFD, FD_CLOEXEC) < 0)
		die(2, "--channel-fd %d: %s", tr->chan.fd, strerror(errno));
	if (tr->handover.control_fd >= 0 && fcntl(tr->handover.control_fd, F_SETFD, FD_CLOEXEC) < 0)
		die(2, "--control-fd %d: %s", tr->handover.control_fd, strerror(errno));

	/* Die with graft; EXITKILL then takes the traced tree down too. */
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		exit(2);

	check_kernel();
	/* the alarm's handler first: a signal's handler arms the alarm */
	timers_setup();
	signals_setup(relay_base);
	if (tr->rules.n == 0)
		die(2, "internal error: no rule table (--rules-fd)");
	rules_plan_datagrams(&tr->rules);
	plan_names(tr);
	plan_loopback_ports(tr);
	check_mark_allowed(&tr->rules);
	struct filter_needs need = filter_needs_of(tr);
	filter_build(&tr->filter, &need);
}

int main(int argc, char **argv)
{
	arch_check();
	struct tracer *tr = calloc(1, sizeof *tr);
	if (!tr)
		die(2, "out of memory");
	tr->chan.fd = -1;
	tr->faults.rng = FAULTS_RNG_DEFAULT;
	tr->tasks.pidfds_max = TASKS_PIDFDS_DEFAULT;
	tr->main_status = -1;
	handover_init(&tr->handover, &tr->later, -1);
	pthread_mutex_init(&tr->later.lock, NULL);
	int relay_base = 0;
	static const int stdio_fds[] = { 0, 1, 2 };
	struct program_start ps = { .keep = stdio_fds, .nkeep = 3 };
	int prog = parse_args(tr, &ps, argc, argv, &relay_base);
	set_up(tr, relay_base);

	tr->main_pid = start_program(argv + prog, &tr->filter, &ps, &tr->errfd);
	task_put(&tr->tasks, tr->main_pid, tr->main_pid);
	raise_fd_limit(&tr->tasks);
	handover_start(&tr->handover);
	start_relay(tr);
	wait_loop(tr, argv[prog]);

	/* what the program sent on relayed connections is handed on, as the
	 * Node proxy winds its own down (at most a second) */
	relay_finish(&tr->relay, RELAY_EXIT_FLUSH_MS);
	channel_flush(&tr->chan);
	if (tr->main_status < 0)
		return 2;
	if (WIFEXITED(tr->main_status))
		return WEXITSTATUS(tr->main_status);
	return 128 + WTERMSIG(tr->main_status);
}
