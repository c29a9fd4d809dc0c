#define _GNU_SOURCE
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "boundary.h"
#include "util.h"

#define HANDOVER_MIN_CAP 64
/* The epoll key of the control fd (ids start at 1). */
#define CONTROL_KEY 0

void handover_init(struct handover *h, struct later *l, int control_fd)
{
	pthread_mutex_init(&h->lock, NULL);
	h->later = l;
	h->control_fd = control_fd;
	h->epfd = -1;
	h->next_id = 1;
	pthread_mutex_init(&h->names_lock, NULL);
	pthread_mutex_init(&h->sync_lock, NULL);
	pthread_cond_init(&h->synced, NULL);
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

/* A failure answered before the program's task ran its connect is tried
 * again this often, for this long: the task runs it once scheduled (a
 * machine busy with hundreds of the program's threads can take a while),
 * unless the program gave the connect up (then nothing waits). Before,
 * the thread waited 100 ms and gave up, and a connect that started later
 * waited at the black hole until the kernel's SYN retries ended it. */
#define UNSTARTED_RETRY_MS 5
#define UNSTARTED_GIVE_UP_MS 30000

static void keep_unstarted(struct handover *h, int fd, int err)
{
	if (h->nunstarted == h->capunstarted) {
		size_t cap = h->capunstarted ? h->capunstarted * 2 : 16;
		struct unstarted *u = realloc(h->unstarted, cap * sizeof *u);
		if (!u) {
			close(fd);
			return;
		}
		h->unstarted = u;
		h->capunstarted = cap;
	}
	h->unstarted[h->nunstarted++] = (struct unstarted){ fd, err, now_ms() + UNSTARTED_GIVE_UP_MS };
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
	/* edge-triggered: the socket reports itself once connected (or
	 * failed); the event it gives at once, unconnected, is ignored */
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.u64 = id };
	if (h->epfd >= 0)
		epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev);
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
	/* the program holds the socket too: closing ours alone would leave it
	 * registered */
	if (fd >= 0 && h->epfd >= 0)
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
	return fd;
}

void handover_drop(struct handover *h, unsigned id)
{
	int fd = take(h, id);
	if (fd >= 0)
		close(fd);
}

/* A names message into the names map. */
static int set_names(struct handover *h, const struct bnd_names *m, const char **why)
{
	struct byname_key k;
	if (byname_key_parse(m->ip, &k) < 0) {
		*why = "names: not an address";
		return -1;
	}
	if (!h->names)
		return 0; /* no by_name rule: nothing to match */
	pthread_mutex_lock(&h->names_lock);
	int rc = byname_set(h->names, &k, m->has_rules ? m->rules : NULL);
	pthread_mutex_unlock(&h->names_lock);
	if (rc < 0)
		*why = "names: a rule list that is not ascending by_name rule indices (or out of memory)";
	return rc;
}

int handover_answer(struct handover *h, const char *line, size_t len, const char **why)
{
	union bnd_any msg;
	int kind = bnd_decode(line, len, &msg, sizeof msg, why);
	if (kind == BND_NAMES)
		return set_names(h, &msg.names, why);
	if (kind != BND_REFUSED) {
		if (kind >= 0)
			*why = "not a control message";
		return -1;
	}
	const struct bnd_refused m = msg.refused;
	int fd = take(h, m.id);
	if (fd < 0)
		return 0; /* connected or failed already: nothing held */
	if (later_fail_handed(h->later, fd, m.error))
		keep_unstarted(h, fd, m.error);
	else
		close(fd);
	return 0;
}

/* Tries the failures whose connect had not started again; returns the
 * epoll timeout until the next try (-1: none waits). */
static int retry_unstarted(struct handover *h)
{
	uint64_t now = now_ms();
	for (size_t i = 0; i < h->nunstarted; i++) {
		struct unstarted *u = &h->unstarted[i];
		if (u->until > now && later_fail_handed(h->later, u->fd, u->err))
			continue;
		close(u->fd);
		h->unstarted[i--] = h->unstarted[--h->nunstarted];
	}
	return h->nunstarted ? UNSTARTED_RETRY_MS : -1;
}

/* Reads the control lines available; returns -1 once Node closed the fd.
 * A line that cannot be read is an internal error: said on stderr, skipped. */
static int read_answers(struct handover *h, char *buf, size_t cap, size_t *len)
{
	for (;;) {
		ssize_t n = read(h->control_fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		*len += (size_t)n;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
			const char *why = "";
			if (handover_answer(h, start, (size_t)(nl - start), &why) < 0)
				note("unreadable control message (%s)", why);
			start = nl + 1;
		}
		*len -= (size_t)(start - buf);
		memmove(buf, start, *len);
		if (*len == cap)
			*len = 0; /* no newline in a whole buffer: drop it */
	}
}

/* A held socket reported itself: once it has connected (the proxy's
 * handshake), or ended on its own (the kernel's SYN retries ran out), the
 * tracer lets it go. One that has not started its connect yet (the event
 * at registration) or still waits stays held. */
static int still_waiting(int fd)
{
	int started, state = later_tcp_state(fd, &started);
	return state == TCP_SYN_SENT || (state == TCP_CLOSE && !started);
}

static void socket_ready(struct handover *h, unsigned id)
{
	pthread_mutex_lock(&h->lock);
	struct handed *s = h->cap ? slot(h, id) : NULL;
	int fd = s && s->id == id ? s->fd : -1;
	int waiting = fd >= 0 && still_waiting(fd);
	pthread_mutex_unlock(&h->lock);
	if (fd >= 0 && !waiting)
		handover_drop(h, id);
}

static void set_reading(struct handover *h, int busy, int gone)
{
	pthread_mutex_lock(&h->sync_lock);
	h->busy = busy;
	h->gone = gone;
	pthread_cond_broadcast(&h->synced);
	pthread_mutex_unlock(&h->sync_lock);
}

/* Whether the control fd holds bytes nobody has read. */
static int control_pending(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

void handover_sync(struct handover *h)
{
	if (h->epfd < 0)
		return;
	/* the control thread marks itself busy before it reads and clears it
	 * once the fd is drained and every line applied: neither busy nor
	 * anything pending means all written so far is in force */
	pthread_mutex_lock(&h->sync_lock);
	while (!h->gone && (h->busy || control_pending(h->control_fd)))
		pthread_cond_wait(&h->synced, &h->sync_lock);
	pthread_mutex_unlock(&h->sync_lock);
}

/* The control thread: the proxy's answers, names, and sockets that
 * connected. */
static void *control_loop(void *arg)
{
	struct handover *h = arg;
	char buf[2 * BND_LINE_MAX];
	size_t len = 0;
	struct epoll_event events[64];
	int timeout = -1;
	for (;;) {
		int n = epoll_wait(h->epfd, events, 64, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 != CONTROL_KEY) {
				socket_ready(h, (unsigned)events[i].data.u64);
				continue;
			}
			set_reading(h, 1, 0);
			if (read_answers(h, buf, sizeof buf, &len) < 0) {
				set_reading(h, 0, 1);
				return NULL; /* Node is gone: the tracer follows shortly */
			}
			set_reading(h, 0, 0);
		}
		timeout = h->nunstarted ? retry_unstarted(h) : -1;
	}
	set_reading(h, 0, 1);
	return NULL;
}

void handover_start(struct handover *h)
{
	if (h->control_fd < 0)
		return;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = CONTROL_KEY };
	int flags = fcntl(h->control_fd, F_GETFL);
	if (h->epfd < 0 || flags < 0 || fcntl(h->control_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->control_fd, &ev) < 0)
		die(2, "cannot watch the control fd: %s", strerror(errno));
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
