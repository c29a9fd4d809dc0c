#define _GNU_SOURCE
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boundary.h"
#include "util.h"

#define HANDOVER_MIN_CAP 64

void handover_init(struct handover *h, struct later *l, int control_fd)
{
	pthread_mutex_init(&h->lock, NULL);
	h->later = l;
	h->control_fd = control_fd;
	h->next_id = 1;
}

static struct handed *slot(struct handover *h, unsigned id)
{
	return &h->slots[id & (h->cap - 1)];
}

/* Doubles the table until every held id has a slot of its own (ids are
 * consecutive, so this ends). */
static void grow(struct handover *h)
{
	size_t old_cap = h->cap;
	struct handed *old = h->slots;
	for (h->cap = old_cap ? old_cap * 2 : HANDOVER_MIN_CAP;; h->cap *= 2) {
		h->slots = calloc(h->cap, sizeof *h->slots);
		if (!h->slots)
			die(2, "out of memory");
		int clash = 0;
		for (size_t i = 0; i < old_cap && !clash; i++) {
			if (!old[i].id)
				continue;
			struct handed *s = slot(h, old[i].id);
			clash = s->id != 0;
			*s = old[i];
		}
		if (!clash)
			break;
		free(h->slots);
	}
	free(old);
}

unsigned handover_add(struct handover *h, int s)
{
	int fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	pthread_mutex_lock(&h->lock);
	unsigned id = h->next_id++;
	if (!h->next_id)
		h->next_id = 1; /* 0 marks a free slot */
	while (!h->cap || slot(h, id)->id)
		grow(h);
	*slot(h, id) = (struct handed){ id, fd };
	h->n++;
	pthread_mutex_unlock(&h->lock);
	return id;
}

/* Takes handover `id` out of the table: its duplicate, or -1. */
static int take(struct handover *h, unsigned id)
{
	int fd = -1;
	pthread_mutex_lock(&h->lock);
	struct handed *s = h->cap ? slot(h, id) : NULL;
	if (s && s->id == id && id) {
		fd = s->fd;
		*s = (struct handed){ 0, -1 };
		h->n--;
	}
	pthread_mutex_unlock(&h->lock);
	return fd;
}

void handover_drop(struct handover *h, unsigned id)
{
	int fd = take(h, id);
	if (fd >= 0)
		close(fd);
}

int handover_answer(struct handover *h, const char *line, size_t len, const char **why)
{
	union {
		struct bnd_connected ok;
		struct bnd_refused fail;
	} m;
	int kind = bnd_decode(line, len, &m, sizeof m, why);
	if (kind != BND_CONNECTED && kind != BND_REFUSED) {
		if (kind >= 0)
			*why = "not a control message";
		return -1;
	}
	int fd = take(h, kind == BND_CONNECTED ? m.ok.id : m.fail.id);
	if (fd < 0)
		return 0; /* answered twice, or dropped: nothing held */
	if (kind == BND_REFUSED)
		later_fail_handed(h->later, fd, m.fail.error);
	close(fd);
	return 0;
}

/* Reads control lines until Node closes the fd. A line that cannot be
 * read is an internal error: said once on stderr, skipped. */
static void *control_loop(void *arg)
{
	struct handover *h = arg;
	char buf[2 * BND_LINE_MAX];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(h->control_fd, buf + len, sizeof buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
			const char *why = "";
			if (handover_answer(h, start, (size_t)(nl - start), &why) < 0)
				note("unreadable control message (%s)", why);
			start = nl + 1;
		}
		len -= (size_t)(start - buf);
		memmove(buf, start, len);
		if (len == sizeof buf)
			len = 0; /* no newline in a whole buffer: drop it */
	}
	return NULL;
}

void handover_start(struct handover *h)
{
	if (h->control_fd < 0)
		return;
	/* signals are the main thread's: it relays and forwards them */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int rc = pthread_create(&t, NULL, control_loop, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		die(2, "cannot start the control thread: %s", strerror(rc));
	pthread_detach(t);
}
