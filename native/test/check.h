/* A tiny test harness: TEST(name) { ... } registers a test case; CHECK*
 * macros record a failure (with file and line) and go on. main() in
 * check.c runs every case and prints "tests: N passed, M failed". */
#ifndef GRAFT_CHECK_H
#define GRAFT_CHECK_H

#include <string.h>

typedef void (*test_fn)(void);
void check_register(const char *name, test_fn fn);
/* Records a failed check in the running case. */
void check_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                     \
	static void name(void);                                        \
	static void __attribute__((constructor)) name##_register(void) \
	{                                                              \
		check_register(#name, name);                           \
	}                                                              \
	static void name(void)

#define CHECK(cond)                                                  \
	do {                                                         \
		if (!(cond))                                         \
			check_fail(__FILE__, __LINE__, "%s", #cond); \
	} while (0)

#define CHECK_INT(got, want)                                                                          \
	do {                                                                                          \
		long long got_ = (long long)(got), want_ = (long long)(want);                         \
		if (got_ != want_)                                                                    \
			check_fail(__FILE__, __LINE__, "%s: got %lld, want %lld", #got, got_, want_); \
	} while (0)

#define CHECK_STR(got, want)                                                                                        \
	do {                                                                                                        \
		const char *got_ = (got), *want_ = (want);                                                          \
		if (strcmp(got_, want_) != 0)                                                                       \
			check_fail(__FILE__, __LINE__, "%s:\n    got  \"%s\"\n    want \"%s\"", #got, got_, want_); \
	} while (0)

#endif
