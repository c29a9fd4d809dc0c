#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_TESTS 256

static struct {
	const char *name;
	test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int failed_checks; /* in the running case */
static const char *running;

void check_register(const char *name, test_fn fn)
{
	if (ntests == MAX_TESTS) {
		fprintf(stderr, "check: more than %d tests\n", MAX_TESTS);
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	if (!failed_checks)
		printf("FAIL %s\n", running);
	failed_checks++;
	printf("  %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	int verbose = argc > 1 && !strcmp(argv[1], "-v");
	for (int i = 0; i < ntests; i++) {
		running = tests[i].name;
		failed_checks = 0;
		tests[i].fn();
		if (failed_checks) {
			failed++;
		} else {
			passed++;
			if (verbose)
				printf("ok   %s\n", running);
		}
	}
	printf("tests: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
