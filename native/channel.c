#define _GNU_SOURCE
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int write_now(struct channel *ch, const char *line, size_t len)
{
	for (;;) {
		ssize_t n = write(ch->fd, line, len);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

void channel_flush(struct channel *ch)
{
	ch->flush_at = 0;
	if (ch->deferred_len && ch->fd >= 0)
		write_now(ch, ch->deferred, ch->deferred_len);
	ch->deferred_len = 0;
}

uint64_t channel_defer(struct channel *ch, const char *line, size_t len)
{
	if (ch->fd < 0)
		return 0;
	if (ch->deferred_len + len > sizeof ch->deferred)
		channel_flush(ch);
	if (len > sizeof ch->deferred) {
		write_now(ch, line, len);
		return 0;
	}
	uint64_t wake = 0;
	if (ch->deferred_len == 0)
		wake = ch->flush_at = now_ms() + CHANNEL_DEFER_MS;
	memcpy(ch->deferred + ch->deferred_len, line, len);
	ch->deferred_len += len;
	return wake;
}

int channel_write(struct channel *ch, const char *line, size_t len)
{
	if (ch->fd < 0)
		return -1;
	if (ch->deferred_len && ch->deferred_len + len <= sizeof ch->deferred) {
		memcpy(ch->deferred + ch->deferred_len, line, len);
		ch->deferred_len += len;
		ch->flush_at = 0;
		int rc = write_now(ch, ch->deferred, ch->deferred_len);
		ch->deferred_len = 0;
		return rc;
	}
	channel_flush(ch);
	return write_now(ch, line, len);
}

char *record_keep(const char *line, size_t len)
{
	return len ? strndup(line, len) : NULL;
}

void channel_send_kept(struct channel *ch, char *kept)
{
	if (kept)
		channel_write(ch, kept, strlen(kept));
	free(kept);
}
