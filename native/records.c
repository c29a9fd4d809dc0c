#define _GNU_SOURCE
#include "records.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "boundary.h"

_Static_assert(RECORD_MAX == PIPE_BUF, "a record must fit one atomic pipe write");

/* What a logged record's executable is cut to when the line would not fit
 * otherwise (every byte may take three when encoded). */
#define EXE_SHORT 200

/* A text field from a C string: cut to what the field holds; an empty one
 * (the boundary has no empty texts) reads "?". */
static void set_text(char *field, const char *text, size_t max)
{
	size_t n = strnlen(text, max < BND_TEXT_MAX ? max : BND_TEXT_MAX);
	if (n == 0)
		text = "?", n = 1;
	memcpy(field, text, n);
	field[n] = 0;
}

/* An address field and its port. */
static void set_addr(char *field, uint16_t *port, const union sa *a)
{
	unsigned p;
	sa_format(a, field, BND_ADDR_MAX, &p);
	*port = (uint16_t)p;
}

/* Encodes into the caller's line, at most cap and RECORD_MAX bytes. */
static size_t encode(enum bnd_kind kind, const void *msg, char *line, size_t cap)
{
	return bnd_encode(kind, msg, line, cap < RECORD_MAX ? cap : RECORD_MAX);
}

/* A logged record: if it does not fit, once more with a short executable. */
static size_t encode_logged(enum bnd_kind kind, void *msg, char *exe, const char *full, char *line, size_t cap)
{
	size_t n = encode(kind, msg, line, cap);
	if (n || strlen(full) <= EXE_SHORT)
		return n;
	set_text(exe, full, EXE_SHORT);
	return encode(kind, msg, line, cap);
}

size_t record_redirect(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer,
		       const struct handover_record *h)
{
	struct bnd_redirect m = { .pid = w->pid,
				  .tid = w->tid,
				  .id = h->id,
				  .peer_port = (uint16_t)h->peer_port,
				  .hole_port = (uint16_t)h->hole_port,
				  .rule = h->rule,
				  .has_fault = h->fault >= 0,
				  .fault = h->fault,
				  .delay_ms = h->delay_ms };
	uint16_t unused;
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_addr(m.peer_ip, &unused, peer);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode(BND_REDIRECT, &m, line, cap);
}

size_t record_inplace(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule)
{
	struct bnd_inplace m = { .pid = w->pid, .tid = w->tid, .rule = rule };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_INPLACE, &m, m.exe, w->exe, line, cap);
}

size_t record_kept_local(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int rule)
{
	struct bnd_kept_local m = { .pid = w->pid, .tid = w->tid, .rule = rule };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_KEPT_LOCAL, &m, m.exe, w->exe, line, cap);
}

size_t record_failed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int err, int rule, int fault, const char *why)
{
	struct bnd_failed m = { .pid = w->pid,
				.tid = w->tid,
				.error = bnd_errno_name(err) ? err : EIO,
				.rule = rule,
				.has_fault = fault >= 0,
				.fault = fault };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	set_text(m.reason, why, BND_TEXT_MAX);
	return encode_logged(BND_FAILED, &m, m.exe, w->exe, line, cap);
}

size_t record_held(char *line, size_t cap, const struct rec_who *w, const union sa *dst, int fault)
{
	struct bnd_delayed m = { .pid = w->pid, .tid = w->tid, .fault = fault };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_DELAYED, &m, m.exe, w->exe, line, cap);
}

size_t record_dns_socket(char *line, size_t cap, const struct rec_who *w, int listener_v6, unsigned local_port, const union sa *dst)
{
	struct bnd_dns_socket m = {
		.pid = w->pid, .tid = w->tid, .family = listener_v6 ? BND_FAMILY_IP6 : BND_FAMILY_IP4, .local_port = (uint16_t)local_port
	};
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_DNS_SOCKET, &m, m.exe, w->exe, line, cap);
}

size_t record_relayed(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer, int rule,
		      const struct relay_outcome *o)
{
	struct bnd_relayed m = { .pid = w->pid,
				 .tid = w->tid,
				 .rule = rule,
				 .bytes_up = o->bytes_up,
				 .bytes_down = o->bytes_down,
				 .duration_ms = o->duration_ms,
				 .end = o->end,
				 .has_error = o->err != 0,
				 .error = bnd_errno_name(o->err) ? o->err : EIO,
				 .has_socks_code = o->socks_code >= 0,
				 .socks_code = o->socks_code >= 0 ? (uint32_t)o->socks_code : 0,
				 .at_exit = o->at_exit };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_addr(m.peer_ip, &m.peer_port, peer);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_RELAYED, &m, m.exe, w->exe, line, cap);
}

size_t record_opened(char *line, size_t cap, const struct rec_who *w, const union sa *dst, const union sa *peer)
{
	struct bnd_opened m = { .pid = w->pid };
	set_addr(m.dst_ip, &m.dst_port, dst);
	set_addr(m.peer_ip, &m.peer_port, peer);
	set_text(m.exe, w->exe, BND_TEXT_MAX);
	return encode_logged(BND_OPENED, &m, m.exe, w->exe, line, cap);
}

size_t record_diag(char *line, size_t cap, pid_t pid, pid_t tid, const char *msg)
{
	struct bnd_diagnostic m = { .pid = pid, .tid = tid };
	set_text(m.message, msg, BND_TEXT_MAX);
	return encode(BND_DIAGNOSTIC, &m, line, cap);
}
