/* The tracer's table of traced tasks: tid -> thread group id and per-task
 * state (an open-addressing hash table). */
#ifndef GRAFT_TASKS_H
#define GRAFT_TASKS_H

#include <stddef.h>
#include <sys/types.h>

struct task {
	pid_t tid;
	pid_t tgid;        /* 0 until known */
	int awaiting_exit; /* resumed with PTRACE_SYSCALL to see a socket() return */
	int pidfd;         /* cached pidfd_open(tid, PIDFD_THREAD), or -1 */
	char *exe;         /* thread group leaders: cached /proc/PID/exe */
};

struct task_table {
	struct task *tasks;
	size_t cap, len;
	/* pidfds held in the cache, and how many may be: the rest of the fd
	 * limit stays free for the duplicates the tracer takes */
	long pidfds_cached, pidfds_max;
};

#define TASKS_PIDFDS_DEFAULT 512

void task_put(struct task_table *tt, pid_t tid, pid_t tgid);
struct task *task_get(struct task_table *tt, pid_t tid);
void task_del(struct task_table *tt, pid_t tid);
/* Drops what was cached about a task's process image (after an exec). */
void task_forget_image(struct task_table *tt, struct task *t);
/* The thread group of `tid` (from /proc when not known yet). */
pid_t task_tgid(struct task_table *tt, pid_t tid);
/* The executable of process `pid`, as /proc/PID/exe reads;
 * cached until the process execs. "?" when unknown. */
const char *task_exe(struct task_table *tt, pid_t pid);

#endif
