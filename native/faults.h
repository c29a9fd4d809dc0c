/* Connect faults, from "fault" lines of the rule table (table.h), checked
 * before the rules: the first one selected decides the connect. Selection
 * is pure apart from the table's own counters and seeded PRNG. */
#ifndef GRAFT_FAULTS_H
#define GRAFT_FAULTS_H

#include <stdint.h>

#include "rules.h"
#include "sockaddr.h"

enum select_kind { SEL_ALL, SEL_PROB, SEL_FIRST, SEL_EVERY, SEL_AFTER };

struct fault {
	struct match where;
	int err;           /* 0: a handshake delay only */
	unsigned delay_ms; /* the connect fails (or goes on) after this */
	enum select_kind sel;
	unsigned long n;      /* first N, every Nth, after N */
	double prob;          /* SEL_PROB: 0 to 1 */
	unsigned long seen;   /* matching connects so far */
	unsigned long passed; /* ... of which no fault failed */
	unsigned long last;   /* the connect (connects_seen) it matched last */
};

struct fault_table {
	struct fault *faults;
	int n;
	unsigned long connects_seen;
	uint64_t rng; /* xorshift64* state */
};

#define FAULTS_RNG_DEFAULT 0x9e3779b97f4a7c15ull

/* --seed: probabilistic faults then repeat run to run. */
void faults_seed(struct fault_table *t, uint64_t seed);

/* The index of the fault that takes this connect, or -1. Every matching
 * fault counts the connect, selected or not, so "every 3rd" means the
 * connects to its destinations; "after 5" means after five of them went
 * through (a connect another fault failed does not count; a delayed one
 * does). */
int faults_select(struct fault_table *t, const union sa *dst);

#endif
