/* The names map: which by_name rules each address matches. graft's DNS
 * server hands out addresses for names and tells the tracer, in a names
 * control message, which by_name rules (rules.h) the name matched, before
 * the program gets the answer; a by_name rule then matches that address
 * and nothing else. Pure: no system calls, no locking (the caller's).
 *
 * Bounded: BYNAME_MAX addresses; setting one more replaces the least
 * recently set. Each entry holds a bit per rule of the table. Memory grows
 * with use, to about 64 + 8 * ceil(rules / 64) bytes an address (4.6 MB at
 * the bound for up to 64 rules). */
#ifndef GRAFT_BYNAME_H
#define GRAFT_BYNAME_H

#include <stdint.h>

#define BYNAME_MAX 65536
#define BYNAME_BUCKETS 16384 /* a power of two */

/* An address as the map keys it: 16 bytes, IPv4 (and v4-mapped IPv6) as
 * ::ffff:a.b.c.d, so both forms find the same entry. */
struct byname_key {
	unsigned char b[16];
};

struct byname_entry {
	struct byname_key key;
	int32_t chain;        /* next in its bucket, -1: none */
	int32_t older, newer; /* set order, -1: none */
};

struct byname {
	int nrules; /* the rule table's size: valid indices */
	int words;  /* 64-bit words of rule bits an entry holds */
	int cap, used;
	struct byname_entry *e; /* cap entries, e[0..used) ever taken */
	uint64_t *bits;         /* cap * words */
	int32_t *bucket;        /* BYNAME_BUCKETS heads, NULL until the first set */
	int32_t oldest, newest;
	int32_t free; /* freed entries, chained through `chain` */
	int count;
};

void byname_init(struct byname *m, int nrules);
void byname_free(struct byname *m);

/* The key of an IPv4 (family 4) or IPv6 (family 6) address's bytes. */
struct byname_key byname_key_of(int family, const unsigned char *addr);
/* The key of an address as text (inet_pton forms); -1 when it is none. */
int byname_key_parse(const char *text, struct byname_key *k);

/* Sets what `k` matches from a names message's list ("3,5,9": ascending
 * decimal rule indices; NULL or "" forgets `k`). Returns 0, or -1 (the map
 * unchanged) for a list that is not ascending, names a rule the table does
 * not have, or when memory ran out. */
int byname_set(struct byname *m, const struct byname_key *k, const char *rules);

/* The rule bits of `k` (bit i of word i / 64: rule i), or NULL. */
const uint64_t *byname_find(const struct byname *m, const struct byname_key *k);

static inline int byname_has(const uint64_t *bits, int rule)
{
	return bits && (bits[rule / 64] >> (rule % 64)) & 1;
}

#endif
