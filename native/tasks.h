/* The tracer's table of traced tasks: tid -> thread group id and per-task
 * state (an open-addressing hash table). */
#ifndef GRAFT_TASKS_H
#define GRAFT_TASKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Why a task was resumed with PTRACE_SYSCALL: the syscall-exit stop it owes. */
enum awaited_exit {
	EXIT_NONE,
	EXIT_SOCKET,       /* a datagram socket() returns: mark the new socket */
	EXIT_CONNECT,      /* a blocking connect handed to the proxy returns */
	EXIT_DNS_RECV,     /* a receive on a socket pointed at graft's DNS server returns (dns.h) */
	EXIT_DNS_SENDMMSG, /* a sendmmsg re-addressed to graft's DNS server returns */
};

/* What EXIT_DNS_RECV and EXIT_DNS_SENDMMSG need at the exit, read at the
 * entry: each message's source address buffer, the address of its length,
 * and the length the program gave (the kernel overwrites it). */
#define TASK_NAMES_MAX 8
struct exit_names {
	unsigned n;
	uint64_t name[TASK_NAMES_MAX], namelen[TASK_NAMES_MAX];
	uint32_t ulen[TASK_NAMES_MAX];
	uint64_t copy, vec; /* sendmmsg: graft's copy of the header, the program's vector */
};

struct task {
	pid_t tid;
	pid_t tgid; /* 0 until known */
	enum awaited_exit awaiting_exit;
	int exit_fd;             /* EXIT_CONNECT: the connect's socket, in the task */
	struct exit_names names; /* EXIT_DNS_RECV, EXIT_DNS_SENDMMSG */
	int pidfd;               /* cached pidfd_open(tid, PIDFD_THREAD), or -1 */
	char *exe;               /* thread group leaders: cached /proc/PID/exe */
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
