/* Connect fault selection: all, prob with a seed, first, every, after. */
#include "../faults.h"

#include <errno.h>
#include <stdlib.h>

#include "../table.h"
#include "check.h"
#include "helpers.h"

static struct fault_table faults_of(const char *const *lines, int n)
{
	struct fault_table t = { .faults = calloc((size_t)n, sizeof(struct fault)), .n = n, .rng = FAULTS_RNG_DEFAULT };
	for (int i = 0; i < n; i++)
		if (parse_fault(lines[i], &t.faults[i]) < 0)
			check_fail(__FILE__, __LINE__, "bad line %s", lines[i]);
	return t;
}

/* Selects for `count` connects to ip:port; writes the chosen fault (or -1)
 * of each as a digit or '-' into `out`. */
static const char *picks(struct fault_table *t, const char *ip, unsigned port, int count)
{
	static char out[64];
	union sa a = addr_of(ip, port);
	for (int i = 0; i < count; i++) {
		int f = faults_select(t, &a);
		out[i] = f < 0 ? '-' : (char)('0' + f);
	}
	out[count] = 0;
	return out;
}

TEST(all_and_only_matching)
{
	const char *lines[] = { "fault ip4 192.0.2.0 24 0 65535 1 ECONNREFUSED 0 all 0 0" };
	struct fault_table t = faults_of(lines, 1);
	CHECK_STR(picks(&t, "192.0.2.9", 80, 3), "000");
	CHECK_STR(picks(&t, "198.51.100.1", 80, 2), "--");
	CHECK_STR(picks(&t, "127.0.0.1", 80, 1), "-");
	CHECK_INT(t.faults[0].seen, 3);
	CHECK_INT(t.connects_seen, 6);
	free(t.faults);
}

/* The picks of a fresh table of `lines` for `count` connects to
 * 192.0.2.1:80. */
static const char *series(const char *const *lines, int n, int count)
{
	struct fault_table t = faults_of(lines, n);
	const char *out = picks(&t, "192.0.2.1", 80, count);
	free(t.faults);
	return out;
}

TEST(first_every_after)
{
	const char *first[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 first 2 0" };
	const char *every[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 every 3 0" };
	const char *after[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 after 2 0" };
	const char *every0[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 every 0 0" };
	CHECK_STR(series(first, 1, 5), "00---");
	CHECK_STR(series(every, 1, 7), "--0--0-");
	CHECK_STR(series(after, 1, 5), "--000");
	CHECK_STR(series(every0, 1, 3), "---");
}

TEST(first_selected_fault_wins_and_all_count)
{
	const char *lines[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 every 2 0", "fault any - 0 0 65535 0 ETIMEDOUT 0 all 0 0" };
	struct fault_table t = faults_of(lines, 2);
	CHECK_STR(picks(&t, "192.0.2.1", 80, 4), "1010");
	CHECK_INT(t.faults[0].seen, 4);
	CHECK_INT(t.faults[1].seen, 4);
	free(t.faults);
}

TEST(after_counts_connects_that_went_through)
{
	/* a connect another fault failed does not count ... */
	const char *failed[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 first 1 0", "fault any - 0 0 65535 0 ETIMEDOUT 0 after 1 0" };
	CHECK_STR(series(failed, 2, 4), "0-11");
	/* ... a delayed one (errno 0) does */
	const char *delayed[] = { "fault any - 0 0 65535 0 - 200 first 1 0", "fault any - 0 0 65535 0 ETIMEDOUT 0 after 1 0" };
	CHECK_STR(series(delayed, 2, 3), "011");
}

TEST(prob_is_seeded)
{
	const char *lines[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 prob 0 0.5" };
	struct fault_table a = faults_of(lines, 1), b = faults_of(lines, 1), c = faults_of(lines, 1);
	faults_seed(&a, 42);
	faults_seed(&b, 42);
	faults_seed(&c, 7);
	char pa[64];
	strcpy(pa, picks(&a, "192.0.2.1", 80, 40));
	CHECK_STR(picks(&b, "192.0.2.1", 80, 40), pa);
	CHECK(strcmp(picks(&c, "192.0.2.1", 80, 40), pa) != 0);
	/* the series of seed 42, as graft has always drawn it */
	CHECK_STR(pa, "0--0-0--0-00-00-0-000--0--0000--00-00000");
	int taken = 0;
	for (int i = 0; i < 1000; i++) {
		union sa d = addr_of("192.0.2.1", 80);
		taken += faults_select(&a, &d) == 0;
	}
	CHECK(taken > 400 && taken < 600);
	free(a.faults);
	free(b.faults);
	free(c.faults);
}

TEST(prob_zero_and_one)
{
	const char *never[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 prob 0 0" };
	const char *always[] = { "fault any - 0 0 65535 0 ECONNREFUSED 0 prob 0 1" };
	CHECK_STR(series(never, 1, 20), "--------------------");
	CHECK_STR(series(always, 1, 20), "00000000000000000000");
}
