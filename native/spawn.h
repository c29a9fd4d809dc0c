/* Starting the program: the kernel check, the fork, PTRACE_SEIZE, the
 * child's filter and exec, and the shell-like message when it cannot
 * start. */
#ifndef GRAFT_SPAWN_H
#define GRAFT_SPAWN_H

#include <sys/types.h>

#include "filter.h"

/* Dies (exit 2) when the kernel lacks pidfd_open/pidfd_getfd. */
void check_kernel(void);

/* Forks and seizes the program, which installs `filter` and execs argv.
 * `close_fd` (or -1) is closed in the child. Returns its pid; `*errfd`
 * is a pipe that says why the child failed before its exec. */
pid_t start_program(char **argv, const struct bpf_asm *filter, int close_fd, int *errfd);

/* The main child died before its exec: dies with the reason, as a shell
 * would (127 not found, 126 not executable, 2 set-up). Returns when the
 * pipe says nothing. */
void explain_start_failure(int errfd, const char *prog);

#endif
