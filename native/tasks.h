/* The tracer's table of traced tasks: tid -> thread group id and per-task
 * state. Included once, by tracer.c. */
/* ---------- task table: tid -> thread group id ---------- */

struct task {
	pid_t tid;
	pid_t tgid;          /* 0 until known */
	int awaiting_exit;   /* resumed with PTRACE_SYSCALL to see a socket() return */
	int pidfd;           /* cached pidfd_open(tid, PIDFD_THREAD), or -1 */
	char *exe;           /* thread group leaders: cached, encoded /proc/PID/exe */
};
static struct task *tasks;
static size_t tasks_cap, tasks_len;
/* pidfds held in the cache, and how many may be: the rest of the fd limit
 * stays free for the duplicates the tracer takes */
static long pidfds_cached, pidfds_max = 512;

static size_t task_slot(pid_t tid)
{
	size_t i = ((uint32_t)tid * 2654435761u) & (tasks_cap - 1);
	while (tasks[i].tid != 0 && tasks[i].tid != tid)
		i = (i + 1) & (tasks_cap - 1);
	return i;
}

static void task_put(pid_t tid, pid_t tgid);
static struct task *task_get(pid_t tid);

static void tasks_grow(void)
{
	struct task *old = tasks;
	size_t old_cap = tasks_cap;
	tasks_cap = old_cap ? old_cap * 2 : 1024;
	tasks = calloc(tasks_cap, sizeof *tasks);
	if (!tasks)
		die(2, "out of memory");
	tasks_len = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].tid > 0) {
			task_put(old[i].tid, old[i].tgid);
			*task_get(old[i].tid) = old[i];
		}
	free(old);
}

static void task_put(pid_t tid, pid_t tgid)
{
	if ((tasks_len + 1) * 2 > tasks_cap)
		tasks_grow();
	size_t i = task_slot(tid);
	if (tasks[i].tid == 0) {
		tasks_len++;
		tasks[i].awaiting_exit = 0;
		tasks[i].pidfd = -1;
		tasks[i].exe = NULL;
	}
	tasks[i].tid = tid;
	tasks[i].tgid = tgid;
}

static struct task *task_get(pid_t tid)
{
	if (!tasks_cap)
		return NULL;
	size_t i = task_slot(tid);
	return tasks[i].tid == tid ? &tasks[i] : NULL;
}

/* Drops what was cached about a task's process image (after an exec). */
static void task_forget_image(struct task *t)
{
	if (t->pidfd >= 0) {
		close(t->pidfd);
		pidfds_cached--;
	}
	t->pidfd = -1;
	free(t->exe);
	t->exe = NULL;
}

static void task_del(pid_t tid)
{
	if (!tasks_cap)
		return;
	size_t i = task_slot(tid);
	if (tasks[i].tid != tid)
		return;
	task_forget_image(&tasks[i]);
	/* backward-shift deletion keeps linear probing chains intact */
	size_t j = i;
	for (;;) {
		j = (j + 1) & (tasks_cap - 1);
		if (tasks[j].tid == 0)
			break;
		size_t home = ((uint32_t)tasks[j].tid * 2654435761u) & (tasks_cap - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			tasks[i] = tasks[j];
			i = j;
		}
	}
	memset(&tasks[i], 0, sizeof tasks[i]);
	tasks_len--;
}

static pid_t tgid_of(pid_t tid)
{
	struct task *t = task_get(tid);
	if (t && t->tgid)
		return t->tgid;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/status", tid);
	pid_t tgid = tid;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			char *p = strstr(buf, "\nTgid:");
			if (p)
				tgid = (pid_t)atoi(p + 6);
		}
	}
	task_put(tid, tgid);
	return tgid;
}

