/* Starting the program: the kernel check, the fork, PTRACE_SEIZE, the
 * child's filter and exec, and the shell-like message when it cannot
 * start. */
#ifndef GRAFT_SPAWN_H
#define GRAFT_SPAWN_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "filter.h"

/* What the program starts with that graft's own start would otherwise
 * change: the descriptors, ignored signals, signal mask and soft open-files
 * limit its caller gave graft (src/tracer/caller.ts records them). */
struct program_start {
	/* descriptors left as they are; every other one is closed at exec */
	const int *keep;
	int nkeep;
	/* bit N-1 for signal N, as in /proc/PID/status SigIgn and SigBlk */
	uint64_t sig_ignored;
	uint64_t sig_blocked;
	/* the soft RLIMIT_NOFILE to restore, when has_nofile */
	int has_nofile;
	rlim_t nofile;
};

/* Dies (exit 2) when the kernel lacks pidfd_open/pidfd_getfd. */
void check_kernel(void);

/* Forks and seizes the program, which installs `filter` and execs argv
 * with what `ps` says. Returns its pid; `*errfd` is a pipe that says why
 * the child failed before its exec. */
pid_t start_program(char **argv, const struct bpf_asm *filter, const struct program_start *ps, int *errfd);

/* The main child died before its exec: dies with the reason, as a shell
 * would (127 not found, 126 not executable, 2 set-up). Returns when the
 * pipe says nothing. */
void explain_start_failure(int errfd, const char *prog);

#endif
