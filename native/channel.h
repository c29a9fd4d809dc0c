/* The channel to graft's Node side: one record per line (see tracer.c).
 * Included once, by tracer.c. */
/* ---------- channel ---------- */

/* The executable of process `pid`, percent-encoded (space, %, control
 * bytes) so it stays one field; cached until the process execs. */
static const char *exe_of(pid_t pid)
{
	struct task *t = task_get(pid);
	if (t && t->exe)
		return t->exe;
	char path[64], raw[PATH_MAX], out[PATH_MAX * 3 + 1];
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	ssize_t n = readlink(path, raw, sizeof raw - 1);
	if (n <= 0)
		return "?";
	raw[n] = 0;
	size_t o = 0;
	for (ssize_t i = 0; i < n && o + 4 < sizeof out; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c <= 0x20 || c == '%' || c == 0x7f)
			o += (size_t)snprintf(out + o, sizeof out - o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
	if (!t)
		return "?";
	t->exe = strdup(out);
	return t->exe ? t->exe : "?";
}

/* Returns 0 when the whole line reached the proxy. Lines stay below
 * PIPE_BUF, so a pipe write is atomic and never interleaves. */
/* Records only logged (in-place connects) wait here, so graft's Node side
 * is not woken for each: waking it per connect cost a connect-heavy program
 * a third of its connects/s on a 2-vCPU machine. They go out when the
 * buffer fills, before any other record (order is kept), and at most
 * DEFER_MS after the first was held (see timers.h). */
#define DEFER_MS 100
static char deferred[PIPE_BUF];
static size_t deferred_len;
static uint64_t flush_at; /* when held records must go out; 0: none held */

static int channel_write_now(const char *line, size_t len)
{
	for (;;) {
		ssize_t n = write(channel_fd, line, len);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

static void channel_flush(void)
{
	flush_at = 0;
	if (deferred_len && channel_fd >= 0)
		channel_write_now(deferred, deferred_len);
	deferred_len = 0;
}

static void channel_defer(const char *line, size_t len)
{
	if (channel_fd < 0)
		return;
	if (deferred_len + len > sizeof deferred)
		channel_flush();
	if (len > sizeof deferred) {
		channel_write_now(line, len);
		return;
	}
	if (deferred_len == 0) {
		flush_at = now_ms() + DEFER_MS;
		wake_at(flush_at);
	}
	memcpy(deferred + deferred_len, line, len);
	deferred_len += len;
}

/* Sends a record now, after any held ones (in one write when they fit
 * together, so order is kept without a second system call). */
static int channel_write(const char *line, size_t len)
{
	if (channel_fd < 0)
		return -1;
	if (deferred_len && deferred_len + len <= sizeof deferred) {
		memcpy(deferred + deferred_len, line, len);
		deferred_len += len;
		flush_at = 0;
		int rc = channel_write_now(deferred, deferred_len);
		deferred_len = 0;
		return rc;
	}
	channel_flush();
	return channel_write_now(line, len);
}

/* Formats one record line into `line`; a line too long is cut and still
 * ends in a newline. Returns its length, 0 when nothing was formatted. */
static size_t format_line(char *line, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(line, cap, fmt, ap);
	if (n <= 0)
		return 0;
	if ((size_t)n >= cap) {
		n = (int)cap - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

/* A record, formatted now and sent with send_record, now or later (a copy;
 * NULL when nothing was formatted or out of memory). */
static char *record_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *record_printf(const char *fmt, ...)
{
	char line[PIPE_BUF];
	va_list ap;
	va_start(ap, fmt);
	size_t n = format_line(line, sizeof line, fmt, ap);
	va_end(ap);
	return n ? strndup(line, n) : NULL;
}

/* Sends a record made by record_printf, and frees it. */
static void send_record(char *line)
{
	if (line)
		channel_write(line, strlen(line));
	free(line);
}

/* A record only logged: may wait (see channel_defer). */
static void channel_defer_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void channel_defer_printf(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	size_t n = format_line(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n)
		channel_defer(line, n);
}
