#define _GNU_SOURCE
#include "tasks.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static size_t task_home(const struct task_table *tt, pid_t tid)
{
	return ((uint32_t)tid * 2654435761u) & (tt->cap - 1);
}

static size_t task_slot(const struct task_table *tt, pid_t tid)
{
	size_t i = task_home(tt, tid);
	while (tt->tasks[i].tid != 0 && tt->tasks[i].tid != tid)
		i = (i + 1) & (tt->cap - 1);
	return i;
}

static void tasks_grow(struct task_table *tt)
{
	struct task *old = tt->tasks;
	size_t old_cap = tt->cap;
	tt->cap = old_cap ? old_cap * 2 : 1024;
	tt->tasks = calloc(tt->cap, sizeof *tt->tasks);
	if (!tt->tasks)
		die(2, "out of memory");
	tt->len = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].tid > 0) {
			task_put(tt, old[i].tid, old[i].tgid);
			*task_get(tt, old[i].tid) = old[i];
		}
	free(old);
}

void task_put(struct task_table *tt, pid_t tid, pid_t tgid)
{
	if ((tt->len + 1) * 2 > tt->cap)
		tasks_grow(tt);
	struct task *t = &tt->tasks[task_slot(tt, tid)];
	if (t->tid == 0) {
		tt->len++;
		t->awaiting_exit = 0;
		t->pidfd = -1;
		t->exe = NULL;
	}
	t->tid = tid;
	t->tgid = tgid;
}

struct task *task_get(struct task_table *tt, pid_t tid)
{
	if (!tt->cap)
		return NULL;
	size_t i = task_slot(tt, tid);
	return tt->tasks[i].tid == tid ? &tt->tasks[i] : NULL;
}

void task_forget_image(struct task_table *tt, struct task *t)
{
	if (t->pidfd >= 0) {
		close(t->pidfd);
		tt->pidfds_cached--;
	}
	t->pidfd = -1;
	free(t->exe);
	t->exe = NULL;
}

void task_del(struct task_table *tt, pid_t tid)
{
	if (!tt->cap)
		return;
	size_t i = task_slot(tt, tid);
	if (tt->tasks[i].tid != tid)
		return;
	task_forget_image(tt, &tt->tasks[i]);
	/* backward-shift deletion keeps linear probing chains intact */
	size_t j = i;
	for (;;) {
		j = (j + 1) & (tt->cap - 1);
		if (tt->tasks[j].tid == 0)
			break;
		size_t home = task_home(tt, tt->tasks[j].tid);
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			tt->tasks[i] = tt->tasks[j];
			i = j;
		}
	}
	memset(&tt->tasks[i], 0, sizeof tt->tasks[i]);
	tt->len--;
}

pid_t task_tgid(struct task_table *tt, pid_t tid)
{
	struct task *t = task_get(tt, tid);
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
	task_put(tt, tid, tgid);
	return tgid;
}

const char *task_exe(struct task_table *tt, pid_t pid)
{
	struct task *t = task_get(tt, pid);
	if (t && t->exe)
		return t->exe;
	char path[64], raw[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, raw, sizeof raw - 1);
	if (n <= 0 || !t)
		return "?";
	raw[n] = 0;
	t->exe = strdup(raw);
	return t->exe ? t->exe : "?";
}
