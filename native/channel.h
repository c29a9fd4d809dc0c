/* The channel to graft's Node side: a pipe of records (records.h). Records
 * that are only logged (in-place connects) may wait, so graft's Node side
 * is not woken for each: waking it per connect cost a connect-heavy
 * program a third of its connects/s on a 2-vCPU machine. They go out when
 * the buffer fills, before any other record (order is kept), and at most
 * CHANNEL_DEFER_MS after the first was held. */
#ifndef GRAFT_CHANNEL_H
#define GRAFT_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "records.h"

#define CHANNEL_DEFER_MS 100

struct channel {
	int fd; /* -1: no channel */
	char deferred[RECORD_MAX];
	size_t deferred_len;
	uint64_t flush_at; /* when held records must go out; 0: none held */
};

/* Sends a record now, after any held ones (in one write when they fit
 * together, so order is kept without a second system call). Returns 0
 * when the whole line reached the proxy. */
int channel_write(struct channel *ch, const char *line, size_t len);

/* Holds a record that is only logged. Returns the time (now_ms) by which
 * channel_flush must run when this started a new batch, else 0. */
uint64_t channel_defer(struct channel *ch, const char *line, size_t len);

/* Sends the held records. */
void channel_flush(struct channel *ch);

/* A record kept to be sent later: a heap copy of the line (NULL when
 * `len` is 0 or out of memory). */
char *record_keep(const char *line, size_t len);

/* Sends a record made by record_keep (now, see channel_write), and frees it. */
void channel_send_kept(struct channel *ch, char *kept);

#endif
