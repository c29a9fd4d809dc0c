#define _GNU_SOURCE
#include "spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "signals.h"
#include "tracee.h"
#include "util.h"

enum child_stage { STAGE_SYNC = 1, STAGE_SECCOMP, STAGE_EXEC, STAGE_FDS };
struct child_error {
	int stage;
	int err;
};

void check_kernel(void)
{
	int pidfd = (int)xpidfd_open(getpid(), 0);
	if (pidfd < 0 && errno == ENOSYS)
		die(2, "this kernel has no pidfd_open; graft needs Linux 5.6 or newer");
	if (pidfd >= 0) {
		int d = (int)xpidfd_getfd(pidfd, 2);
		if (d < 0 && errno == ENOSYS)
			die(2, "this kernel has no pidfd_getfd; graft needs Linux 5.6 or newer");
		if (d >= 0)
			close(d);
		close(pidfd);
	}
}

static int is_kept(const struct program_start *ps, int fd)
{
	for (int i = 0; i < ps->nkeep; i++)
		if (ps->keep[i] == fd)
			return 1;
	return 0;
}

/* Marks close-on-exec every descriptor the caller did not give: the
 * tracer's own and whatever Node handed down. */
static int close_others_at_exec(const struct program_start *ps)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d) && !is_kept(ps, fd))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

static void restore_nofile(const struct program_start *ps)
{
	struct rlimit rl;
	if (!ps->has_nofile || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = ps->nofile;
	if (rl.rlim_max != RLIM_INFINITY && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > rl.rlim_max))
		rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The child: waits until it is traced, installs the filter, execs with
 * the caller's descriptors, signals and limit. */
static void __attribute__((noreturn))
run_child(char **argv, const struct bpf_asm *filter, const struct program_start *ps, int sync_rd, int err_wr)
{
	struct child_error ce = { 0, 0 };
	char go;
	signals_set_for_program(ps->sig_ignored);
	if (read(sync_rd, &go, 1) != 1) {
		ce.stage = STAGE_SYNC;
	} else if (filter_install(filter) < 0) {
		ce.stage = STAGE_SECCOMP;
		ce.err = errno;
	} else if (close_others_at_exec(ps) < 0) {
		ce.stage = STAGE_FDS;
		ce.err = errno;
	} else {
		restore_nofile(ps);
		signals_mask_for_program(ps->sig_blocked);
		execvp(argv[0], argv);
		ce.stage = STAGE_EXEC;
		ce.err = errno;
	}
	if (write(err_wr, &ce, sizeof ce) < 0) { /* nothing more to do */
	}
	_exit(127);
}

pid_t start_program(char **argv, const struct bpf_asm *filter, const struct program_start *ps, int *errfd)
{
	int sync[2], errp[2];
	if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		die(2, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die(2, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(sync[1]);
		close(errp[0]);
		run_child(argv, filter, ps, sync[0], errp[1]);
	}
	close(sync[0]);
	close(errp[1]);
	long opts = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
		    PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)opts) < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		if (e == EPERM)
			die(2,
			    "cannot trace %s: ptrace is not permitted here (%s). In a container, allow it "
			    "(e.g. docker run --cap-add SYS_PTRACE, or a seccomp profile that permits ptrace); "
			    "with Yama, check /proc/sys/kernel/yama/ptrace_scope",
			    argv[0], strerror(e));
		die(2, "cannot trace %s: ptrace: %s", argv[0], strerror(e));
	}
	/* Only now, with TRACESECCOMP set, may the child install its filter: a
	 * RET_TRACE filter without a tracer makes connect fail with ENOSYS. */
	if (write(sync[1], "g", 1) != 1)
		die(2, "cannot start %s: %s", argv[0], strerror(errno));
	close(sync[1]);
	*errfd = errp[0];
	return pid;
}

void explain_start_failure(int errfd, const char *prog)
{
	struct child_error ce = { 0, 0 };
	ssize_t n = read(errfd, &ce, sizeof ce);
	if (n != (ssize_t)sizeof ce)
		return;
	switch (ce.stage) {
	case STAGE_EXEC:
		if (ce.err == ENOENT) {
			if (strchr(prog, '/'))
				die(127, "%s: no such file or directory", prog);
			die(127, "%s: command not found", prog);
		}
		if (ce.err == EACCES || ce.err == EISDIR || ce.err == ENOEXEC)
			die(126, "%s: cannot execute: %s", prog, ce.err == ENOEXEC ? "exec format error" : "permission denied");
		die(126, "%s: cannot execute: %s", prog, strerror(ce.err));
	case STAGE_FDS:
		die(2, "cannot start %s: /proc/self/fd: %s", prog, strerror(ce.err));
	case STAGE_SECCOMP:
		die(2,
		    "cannot install the seccomp filter that traps connect (%s); graft needs a kernel "
		    "with seccomp filters (CONFIG_SECCOMP_FILTER) and a runtime that allows them",
		    strerror(ce.err));
	default:
		die(2, "cannot start %s", prog);
	}
}
