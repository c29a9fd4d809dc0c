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
static int channel_write(const char *line, size_t len)
{
	if (channel_fd < 0)
		return -1;
	for (;;) {
		ssize_t n = write(channel_fd, line, len);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

static void channel_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void channel_printf(const char *fmt, ...)
{
	char line[PIPE_BUF];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	channel_write(line, (size_t)n);
}

