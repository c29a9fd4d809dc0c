/* Small helpers every unit may use: dying with a message, warnings,
 * the monotonic clock. */
#ifndef GRAFT_UTIL_H
#define GRAFT_UTIL_H

#include <stdint.h>

#define PROGNAME "graft"

/* Prints "graft: <message>" on stderr and exits with `code`. */
void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Prints "graft: <message>" on stderr and goes on. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);
/* The same in microseconds. */
uint64_t now_us(void);

#endif
