#include "faults.h"

void faults_seed(struct fault_table *t, uint64_t seed)
{
	t->rng = seed * 0x9e3779b97f4a7c15ull | 1;
}

/* xorshift64*, in [0, 1) */
static double rng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (double)((*state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int selected(struct fault *f, unsigned long seen, uint64_t *rng)
{
	switch (f->sel) {
	case SEL_ALL:
		return 1;
	case SEL_PROB:
		return rng_next(rng) < f->prob;
	case SEL_FIRST:
		return seen <= f->n;
	case SEL_EVERY:
		return f->n && seen % f->n == 0;
	case SEL_AFTER:
		return f->passed >= f->n;
	}
	return 0;
}

int faults_select(struct fault_table *t, const union sa *dst)
{
	if (!t->n)
		return -1;
	int chosen = -1;
	struct dest_key k = dest_key_of(dst);
	unsigned long now = ++t->connects_seen;
	for (int i = 0; i < t->n; i++) {
		struct fault *f = &t->faults[i];
		if (!match_covers(&f->where, &k))
			continue;
		f->last = now;
		unsigned long seen = ++f->seen;
		if (selected(f, seen, &t->rng) && chosen < 0)
			chosen = i;
	}
	if (chosen < 0 || !t->faults[chosen].err) {
		for (int i = 0; i < t->n; i++)
			if (t->faults[i].last == now)
				t->faults[i].passed++;
	}
	return chosen;
}
