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

/* Values that may be refused: a double that is not finite, a bool other
 * than 0 or 1, an invalid address, an errno without a name, an enum value
 * out of range. */
static const char *checked_word(const struct bnd_field *f, const void *v, char *tmp, size_t cap)
{
	switch (f->type) {
	case BND_T_DOUBLE: {
		double d = *(const double *)v;
		return isfinite(d) && snprintf(tmp, cap, "%.17g", d) < (int)cap ? tmp : NULL;
	}
	case BND_T_BOOL: {
		int b = *(const int *)v;
		return b == 0 ? "0" : b == 1 ? "1" : NULL;
	}
	case BND_T_ADDR:
		return addr_valid(v) ? v : NULL;
	case BND_T_ERRNO:
		return bnd_errno_name(*(const int *)v);
	case BND_T_ENUM: {
		int i = *(const int *)v;
		return i >= 0 && i < enum_count(f->words) ? f->words[i] : NULL;
	}
	default:
		return NULL;
	}
}

static void encode_field(struct sink *s, const struct bnd_field *f, const char *msg)
{
	const void *v = msg + f->offset;
	if (f->has_offset != BND_REQUIRED && !*(const int *)(const void *)(msg + f->has_offset)) {
		put(s, "-", 1);
		return;
	}
	char tmp[64];
	const char *word;
	switch (f->type) {
	case BND_T_INT:
		putf(s, "%d", (int)*(const int32_t *)v);
		break;
	case BND_T_UINT:
		putf(s, "%u", (unsigned)*(const uint32_t *)v);
		break;
	case BND_T_COUNT:
		if (*(const uint64_t *)v > BND_COUNT_MAX)
			s->ok = 0;
		else
			putf(s, "%llu", (unsigned long long)*(const uint64_t *)v);
		break;
	case BND_T_PORT:
		putf(s, "%u", (unsigned)*(const uint16_t *)v);
		break;
	case BND_T_TEXT:
		put_text(s, v);
		break;
	default:
		word = checked_word(f, v, tmp, sizeof tmp);
		if (!word)
			s->ok = 0;
		else
			put(s, word, strlen(word));
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

/* The token as a C string in `buf` (`cap` bytes); -1 when empty or too long. */
static int token_str(const char *tok, size_t n, char *buf, size_t cap)
{
	if (n == 0 || n >= cap)
		return -1;
	memcpy(buf, tok, n);
	buf[n] = 0;
	return 0;
}

/* int, uint, count, port and bool: decimal within the type's range. */
static int decode_whole(const struct bnd_field *f, const char *tok, size_t n, void *v)
{
	long long i;
	switch (f->type) {
	case BND_T_INT:
		if (decode_integer(tok, n, INT32_MIN, INT32_MAX, &i) < 0)
			return -1;
		*(int32_t *)v = (int32_t)i;
		return 0;
	case BND_T_UINT:
		if (decode_integer(tok, n, 0, UINT32_MAX, &i) < 0)
			return -1;
		*(uint32_t *)v = (uint32_t)i;
		return 0;
	case BND_T_COUNT:
		if (decode_integer(tok, n, 0, (long long)BND_COUNT_MAX, &i) < 0)
			return -1;
		*(uint64_t *)v = (uint64_t)i;
		return 0;
	case BND_T_PORT:
		if (decode_integer(tok, n, 0, 65535, &i) < 0)
			return -1;
		*(uint16_t *)v = (uint16_t)i;
		return 0;
	default: /* BND_T_BOOL */
		if (decode_integer(tok, n, 0, 1, &i) < 0)
			return -1;
		*(int *)v = (int)i;
		return 0;
	}
}

static int decode_double(const char *tok, size_t n, double *v)
{
	char buf[64];
	if (token_str(tok, n, buf, sizeof buf) < 0 || strspn(buf, "0123456789.eE+-") < n)
		return -1;
	char *end;
	double d = strtod(buf, &end);
	if (*end || !isfinite(d))
		return -1;
	*v = d;
	return 0;
}

static int decode_enum(const char *const *words, const char *tok, size_t n, int *v)
{
	for (int w = 0; words[w]; w++) {
		if (strlen(words[w]) == n && !memcmp(words[w], tok, n)) {
			*v = w;
			return 0;
		}
	}
	return -1;
}

static int decode_value(const struct bnd_field *f, const char *tok, size_t n, void *v)
{
	char buf[BND_ADDR_MAX];
	switch (f->type) {
	case BND_T_INT:
	case BND_T_UINT:
	case BND_T_COUNT:
	case BND_T_PORT:
	case BND_T_BOOL:
		return decode_whole(f, tok, n, v);
	case BND_T_DOUBLE:
		return decode_double(tok, n, v);
	case BND_T_ADDR:
		if (token_str(tok, n, buf, sizeof buf) < 0 || !addr_valid(buf))
			return -1;
		memcpy(v, buf, n + 1);
		return 0;
	case BND_T_ERRNO: {
		int e = token_str(tok, n, buf, sizeof buf) < 0 ? -1 : bnd_errno_number(buf);
		if (e < 0)
			return -1;
		*(int *)v = e;
		return 0;
	}
	case BND_T_TEXT:
		return decode_text(tok, n, v);
	case BND_T_ENUM:
		return decode_enum(f->words, tok, n, v);
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
