#define _GNU_SOURCE
#include "byname.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

void byname_init(struct byname *m, int nrules)
{
	memset(m, 0, sizeof *m);
	m->nrules = nrules;
	m->words = nrules > 0 ? (nrules + 63) / 64 : 1;
	m->oldest = m->newest = m->free = -1;
}

void byname_free(struct byname *m)
{
	free(m->e);
	free(m->bits);
	free(m->bucket);
	byname_init(m, m->nrules);
}

struct byname_key byname_key_of(int family, const unsigned char *addr)
{
	struct byname_key k;
	memset(&k, 0, sizeof k);
	if (family == 4) {
		k.b[10] = k.b[11] = 0xff;
		memcpy(&k.b[12], addr, 4);
	} else {
		memcpy(k.b, addr, 16);
	}
	return k;
}

int byname_key_parse(const char *text, struct byname_key *k)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, text, a) == 1) {
		*k = byname_key_of(4, a);
		return 0;
	}
	/* a v4-mapped IPv6 address already has the IPv4 key's bytes */
	if (inet_pton(AF_INET6, text, a) == 1) {
		*k = byname_key_of(6, a);
		return 0;
	}
	return -1;
}

static uint32_t hash(const struct byname_key *k)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ k->b[i]) * 16777619u;
	return h & (BYNAME_BUCKETS - 1);
}

static uint64_t *bits_of(const struct byname *m, int32_t i)
{
	return &m->bits[(size_t)i * (size_t)m->words];
}

static int32_t find(const struct byname *m, const struct byname_key *k)
{
	if (!m->bucket)
		return -1;
	for (int32_t i = m->bucket[hash(k)]; i >= 0; i = m->e[i].chain)
		if (!memcmp(&m->e[i].key, k, sizeof *k))
			return i;
	return -1;
}

/* Takes entry i out of its bucket and out of the set order; onto the free
 * list. */
static void drop(struct byname *m, int32_t i)
{
	struct byname_entry *e = &m->e[i];
	int32_t *p = &m->bucket[hash(&e->key)];
	while (*p != i)
		p = &m->e[*p].chain;
	*p = e->chain;
	if (e->older >= 0)
		m->e[e->older].newer = e->newer;
	else
		m->oldest = e->newer;
	if (e->newer >= 0)
		m->e[e->newer].older = e->older;
	else
		m->newest = e->older;
	e->chain = m->free;
	m->free = i;
	m->count--;
}

/* A free entry: a freed one, a never used one (growing the arrays), or
 * the least recently set one. -1 when out of memory. */
static int32_t take(struct byname *m)
{
	if (m->free < 0 && m->used == m->cap && m->cap < BYNAME_MAX) {
		int cap = m->cap ? m->cap * 2 : 64;
		struct byname_entry *e = realloc(m->e, (size_t)cap * sizeof *e);
		if (e)
			m->e = e;
		uint64_t *bits = e ? realloc(m->bits, (size_t)cap * (size_t)m->words * sizeof *bits) : NULL;
		if (!bits)
			return -1;
		m->bits = bits;
		m->cap = cap;
	}
	if (m->free < 0 && m->used < m->cap)
		return m->used++;
	if (m->free < 0)
		drop(m, m->oldest);
	int32_t i = m->free;
	m->free = m->e[i].chain;
	return i;
}

/* Parses a rule list into `bits` (m->words words). */
static int parse_rules(const struct byname *m, const char *s, uint64_t *bits)
{
	memset(bits, 0, (size_t)m->words * sizeof *bits);
	long last = -1;
	while (*s) {
		if (*s < '0' || *s > '9')
			return -1;
		char *end;
		long r = strtol(s, &end, 10);
		if (r <= last || r >= m->nrules || (*end && *end != ','))
			return -1;
		bits[r / 64] |= (uint64_t)1 << (r % 64);
		last = r;
		s = *end ? end + 1 : end;
		if (end[0] == ',' && !end[1])
			return -1; /* a trailing comma */
	}
	return 0;
}

int byname_set(struct byname *m, const struct byname_key *k, const char *rules)
{
	int32_t at = find(m, k);
	if (!rules || !*rules) {
		if (at >= 0)
			drop(m, at);
		return 0;
	}
	uint64_t local[4], *parsed = m->words <= 4 ? local : malloc((size_t)m->words * sizeof *parsed);
	if (!parsed || parse_rules(m, rules, parsed) < 0) {
		if (parsed != local)
			free(parsed);
		return -1;
	}
	if (!m->bucket) {
		m->bucket = malloc(BYNAME_BUCKETS * sizeof *m->bucket);
		if (!m->bucket)
			goto fail;
		memset(m->bucket, 0xff, BYNAME_BUCKETS * sizeof *m->bucket); /* all -1 */
	}
	if (at >= 0)
		drop(m, at); /* set again: the newest now */
	at = take(m);
	if (at < 0)
		goto fail;
	struct byname_entry *e = &m->e[at];
	uint32_t h = hash(k);
	*e = (struct byname_entry){ *k, m->bucket[h], m->newest, -1 };
	m->bucket[h] = at;
	if (m->newest >= 0)
		m->e[m->newest].newer = at;
	else
		m->oldest = at;
	m->newest = at;
	m->count++;
	memcpy(bits_of(m, at), parsed, (size_t)m->words * sizeof *parsed);
	if (parsed != local)
		free(parsed);
	return 0;
fail:
	if (parsed != local)
		free(parsed);
	return -1;
}

const uint64_t *byname_find(const struct byname *m, const struct byname_key *k)
{
	int32_t i = find(m, k);
	return i >= 0 ? bits_of(m, i) : NULL;
}
