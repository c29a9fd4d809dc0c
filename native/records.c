#define _GNU_SOURCE
#include "records.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(RECORD_MAX == PIPE_BUF, "a record must fit one atomic pipe write");

/* How a line that does not fit is handled: C and W records must reach the
 * proxy whole (none is made); the others are only logged (cut, still
 * ending in a newline). */
enum fit { FIT_WHOLE, FIT_CUT };

static size_t record_printf(char *line, size_t cap, enum fit fit, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t record_printf(char *line, size_t cap, enum fit fit, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, cap, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return 0;
	if ((size_t)n >= cap) {
		if (fit == FIT_WHOLE)
			return 0;
		n = (int)cap - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

const char *errno_name(int e)
{
	const char *name = strerrorname_np(e);
	return name ? name : "EIO";
}

size_t record_redirect(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, unsigned peer_port,
		       int rule)
{
	char daddr[SA_ADDRSTRLEN], paddr[SA_ADDRSTRLEN];
	unsigned dport, unused;
	sa_format(dst, daddr, sizeof daddr, &dport);
	sa_format(peer, paddr, sizeof paddr, &unused);
	return record_printf(line, cap, FIT_WHOLE, "C %d %d %s %u %s %u %d %s\n", w->pid, w->tid, daddr, dport, paddr, peer_port, rule,
			     w->exe);
}

size_t record_wait(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, unsigned peer_port, int rule,
		   unsigned hole_port, int fault, unsigned delay_ms)
{
	char daddr[SA_ADDRSTRLEN], paddr[SA_ADDRSTRLEN];
	unsigned dport, unused;
	sa_format(dst, daddr, sizeof daddr, &dport);
	sa_format(peer, paddr, sizeof paddr, &unused);
	return record_printf(line, cap, FIT_WHOLE, "W %d %d %s %u %s %u %d %u %d %u %s\n", w->pid, w->tid, daddr, dport, paddr, peer_port,
			     rule, hole_port, fault, delay_ms, w->exe);
}

size_t record_inplace(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule)
{
	char addr[SA_ADDRSTRLEN];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	return record_printf(line, cap, FIT_CUT, "I %d %d %s %u %d %s\n", w->pid, w->tid, addr, port, rule, w->exe);
}

size_t record_failed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int err, int rule, const char *why)
{
	char addr[SA_ADDRSTRLEN];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	return record_printf(line, cap, FIT_CUT, "F %d %d %s %u %s %d %s %s\n", w->pid, w->tid, addr, port, errno_name(err), rule, w->exe,
			     why);
}

size_t record_held(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int fault)
{
	char addr[SA_ADDRSTRLEN];
	unsigned port;
	sa_format(dst, addr, sizeof addr, &port);
	return record_printf(line, cap, FIT_CUT, "H %d %d %s %u %d %s\n", w->pid, w->tid, addr, port, fault, w->exe);
}

size_t record_diag(char *line, size_t cap, pid_t pid, pid_t tid, const char *msg)
{
	return record_printf(line, cap, FIT_CUT, "D %d %d %s\n", pid, tid, msg);
}

void record_encode_exe(const char *raw, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c <= 0x20 || c == '%' || c == 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}
