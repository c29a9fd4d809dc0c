/* The generic encoder and decoder of the boundary's lines (boundary.h). */
#define _GNU_SOURCE
#include "boundary.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* errnos are few below this; strerrorname_np knows every one the kernel has */
#define ERRNO_LIMIT 4096

/* Names that share a number with another, which strerrorname_np does not
 * give back but Node's os.constants.errno lists. */
static const struct {
	const char *name;
	int err;
} errno_aliases[] = { { "EWOULDBLOCK", EWOULDBLOCK }, { "EDEADLOCK", EDEADLOCK }, { "ENOTSUP", ENOTSUP } };

int bnd_errno_number(const char *name)
{
	for (int e = 1; e < ERRNO_LIMIT; e++) {
		const char *n = strerrorname_np(e);
		if (n && !strcmp(n, name))
			return e;
	}
	for (size_t i = 0; i < sizeof errno_aliases / sizeof errno_aliases[0]; i++)
		if (!strcmp(errno_aliases[i].name, name))
			return errno_aliases[i].err;
	return -1;
}

const char *bnd_errno_name(int err)
{
	return err > 0 ? strerrorname_np(err) : NULL;
}

static int escaped(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '%' || c == '-';
}

/* A valid address: what inet_pton takes, an IPv6 one with an optional
 * numeric %scope. */
static int addr_valid(const char *s)
{
	char buf[BND_ADDR_MAX];
	unsigned char bin[16];
	size_t len = strnlen(s, BND_ADDR_MAX);
	if (len == 0 || len >= BND_ADDR_MAX)
		return 0;
	memcpy(buf, s, len + 1);
	char *scope = strchr(buf, '%');
	if (scope) {
		*scope++ = 0;
		if (!*scope || strspn(scope, "0123456789") != strlen(scope))
			return 0;
		return inet_pton(AF_INET6, buf, bin) == 1;
	}
	return inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1;
}

static int enum_count(const char *const *words)
{
	int n = 0;
	while (words[n])
		n++;
	return n;
}

/* Appends to a bounded buffer; `ok` drops to 0 once anything did not fit. */
struct sink {
	char *p;
	size_t len, cap;
	int ok;
};

static void put(struct sink *s, const char *text, size_t n)
{
	if (!s->ok || s->len + n >= s->cap) {
		s->ok = 0;
		return;
	}
	memcpy(s->p + s->len, text, n);
	s->len += n;
}

static void putf(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct sink *s, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		s->ok = 0;
	else
		put(s, tmp, (size_t)n);
}

static void put_text(struct sink *s, const char *text)
{
	if (!*text)
		s->ok = 0; /* texts are never empty: "-" would read as absent */
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (escaped(*c))
			putf(s, "%%%02X", *c);
		else
			put(s, (const char *)c, 1);
	}
}

static void encode_field(struct sink *s, const struct bnd_field *f, const char *msg)
{
	const void *v = msg + f->offset;
	if (f->has_offset != BND_REQUIRED && !*(const int *)(const void *)(msg + f->has_offset)) {
		put(s, "-", 1);
		return;
	}
	switch (f->type) {
	case BND_T_INT:
		putf(s, "%d", (int)*(const int32_t *)v);
		break;
	case BND_T_UINT:
		putf(s, "%u", (unsigned)*(const uint32_t *)v);
		break;
	case BND_T_PORT:
		putf(s, "%u", (unsigned)*(const uint16_t *)v);
		break;
	case BND_T_DOUBLE: {
		double d = *(const double *)v;
		if (!isfinite(d))
			s->ok = 0;
		else
			putf(s, "%.17g", d);
		break;
	}
	case BND_T_BOOL: {
		int b = *(const int *)v;
		if (b != 0 && b != 1)
			s->ok = 0;
		else
			put(s, b ? "1" : "0", 1);
		break;
	}
	case BND_T_ADDR:
		if (!addr_valid(v))
			s->ok = 0;
		else
			put(s, v, strlen(v));
		break;
	case BND_T_ERRNO: {
		const char *name = bnd_errno_name(*(const int *)v);
		if (!name)
			s->ok = 0;
		else
			put(s, name, strlen(name));
		break;
	}
	case BND_T_TEXT:
		put_text(s, v);
		break;
	case BND_T_ENUM: {
		int i = *(const int *)v;
		if (i < 0 || i >= enum_count(f->words))
			s->ok = 0;
		else
			put(s, f->words[i], strlen(f->words[i]));
		break;
	}
	}
}

size_t bnd_encode(enum bnd_kind kind, const void *msg, char *out, size_t cap)
{
	if ((unsigned)kind >= BND_KINDS)
		return 0;
	const struct bnd_message *m = &bnd_messages[kind];
	struct sink s = { out, 0, cap < BND_LINE_MAX ? cap : BND_LINE_MAX, 1 };
	put(&s, m->tag, strlen(m->tag));
	for (int i = 0; i < m->nfields; i++) {
		put(&s, " ", 1);
		encode_field(&s, &m->fields[i], msg);
	}
	put(&s, "\n", 1);
	if (!s.ok)
		return 0;
	out[s.len] = 0;
	return s.len;
}

/* ---------- decoding ---------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int decode_text(const char *tok, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)tok[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = hexval(tok[i + 1]), lo = hexval(tok[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (escaped((unsigned char)c)) {
			return -1; /* must have been encoded */
		}
		if (c == 0 || o >= BND_TEXT_MAX)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return o ? 0 : -1;
}

/* A decimal number token in [lo, hi]. */
static int decode_integer(const char *tok, size_t n, long long lo, long long hi, long long *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, tok, n);
	buf[n] = 0;
	if (!(buf[0] == '-' && n > 1) && (buf[0] < '0' || buf[0] > '9'))
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int decode_value(const struct bnd_field *f, const char *tok, size_t n, void *v)
{
	long long i;
	char buf[BND_ADDR_MAX];
	switch (f->type) {
	case BND_T_INT:
		if (decode_integer(tok, n, INT32_MIN, INT32_MAX, &i) < 0)
			return -1;
		*(int32_t *)v = (int32_t)i;
		return 0;
	case BND_T_UINT:
	case BND_T_PORT:
	case BND_T_BOOL: {
		long long hi = f->type == BND_T_UINT ? UINT32_MAX : f->type == BND_T_PORT ? 65535 : 1;
		if (decode_integer(tok, n, 0, hi, &i) < 0)
			return -1;
		if (f->type == BND_T_UINT)
			*(uint32_t *)v = (uint32_t)i;
		else if (f->type == BND_T_PORT)
			*(uint16_t *)v = (uint16_t)i;
		else
			*(int *)v = (int)i;
		return 0;
	}
	case BND_T_DOUBLE: {
		char dbuf[64];
		if (n == 0 || n >= sizeof dbuf || strspn(tok, "0123456789.eE+-") < n)
			return -1;
		memcpy(dbuf, tok, n);
		dbuf[n] = 0;
		char *end;
		double d = strtod(dbuf, &end);
		if (*end || !isfinite(d))
			return -1;
		*(double *)v = d;
		return 0;
	}
	case BND_T_ADDR:
		if (n >= BND_ADDR_MAX)
			return -1;
		memcpy(buf, tok, n);
		buf[n] = 0;
		if (!addr_valid(buf))
			return -1;
		memcpy(v, buf, n + 1);
		return 0;
	case BND_T_ERRNO: {
		char ebuf[32];
		if (n == 0 || n >= sizeof ebuf)
			return -1;
		memcpy(ebuf, tok, n);
		ebuf[n] = 0;
		int e = bnd_errno_number(ebuf);
		if (e < 0)
			return -1;
		*(int *)v = e;
		return 0;
	}
	case BND_T_TEXT:
		return decode_text(tok, n, v);
	case BND_T_ENUM:
		for (int w = 0; f->words[w]; w++) {
			if (strlen(f->words[w]) == n && !memcmp(f->words[w], tok, n)) {
				*(int *)v = w;
				return 0;
			}
		}
		return -1;
	}
	return -1;
}

static const struct bnd_message *message_of(const char *tag, size_t n)
{
	for (int k = 0; k < BND_KINDS; k++)
		if (strlen(bnd_messages[k].tag) == n && !memcmp(bnd_messages[k].tag, tag, n))
			return &bnd_messages[k];
	return NULL;
}

int bnd_decode(const char *line, size_t len, void *out, size_t cap, const char **why)
{
	if (len && line[len - 1] == '\n')
		len--;
	if (len + 1 > BND_LINE_MAX) {
		*why = "line too long";
		return -1;
	}
	const char *end = line + len;
	const char *tok = line;
	const char *sp = memchr(tok, ' ', len);
	size_t n = sp ? (size_t)(sp - tok) : len;
	const struct bnd_message *m = message_of(tok, n);
	if (!m) {
		*why = "unknown message";
		return -1;
	}
	if (m->size > cap) {
		*why = "no room for the message";
		return -1;
	}
	memset(out, 0, m->size);
	for (int i = 0; i < m->nfields; i++) {
		const struct bnd_field *f = &m->fields[i];
		if (!sp) {
			*why = "too few fields";
			return -1;
		}
		tok = sp + 1;
		sp = memchr(tok, ' ', (size_t)(end - tok));
		n = sp ? (size_t)(sp - tok) : (size_t)(end - tok);
		if (n == 1 && *tok == '-') {
			if (f->has_offset == BND_REQUIRED) {
				*why = f->name;
				return -1;
			}
			continue;
		}
		if (decode_value(f, tok, n, (char *)out + f->offset) < 0) {
			*why = f->name;
			return -1;
		}
		if (f->has_offset != BND_REQUIRED)
			*(int *)(void *)((char *)out + f->has_offset) = 1;
	}
	if (sp) {
		*why = "too many fields";
		return -1;
	}
	return (int)(m - bnd_messages);
}
