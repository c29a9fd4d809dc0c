/* Reading the table graft's Node side hands over on a file descriptor
 * before the program starts (src/rules/compile.ts, src/chaos/
 * connect-faults.ts write it). This unit is the only one that knows the
 * wire format. One entry a line; empty lines and lines starting with '#'
 * are skipped.
 *
 * A rule:
 *   FAMILY ADDR PREFIX PORTLO PORTHI EXPLICIT TCP UDP ERRNO MARK IFACE SRC4 SRC6
 * FAMILY 0 (any), 4 or 6; ADDR "-" with FAMILY 0; EXPLICIT 1 when the rule
 * names a network, the only kind that may match a loopback destination;
 * TCP pass|refuse|redirect|inplace; UDP pass|refuse|egress; ERRNO a number
 * (for refuse); MARK, IFACE, SRC4, SRC6 the egress options or "-".
 *
 * A connect fault:
 *   fault FAMILY ADDR PREFIX PORTLO PORTHI EXPLICIT ERRNO DELAY_MS SELECT N PROB
 * ERRNO 0: a handshake delay only (the connect goes on after DELAY_MS);
 * else the connect fails with it (after DELAY_MS). SELECT all|prob|first|
 * every|after with N (first N, every Nth, after N) or PROB (0 to 1). */
#ifndef GRAFT_TABLE_H
#define GRAFT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "faults.h"
#include "rules.h"

/* One rule line; 0, or -1 when it is malformed. */
int table_parse_rule(const char *line, struct rule *r);
/* One fault line without its "fault " prefix; 0 or -1. */
int table_parse_fault(const char *line, struct fault *f);

/* Reads the whole table, adding to `rules` and `faults`. Returns 0, or -1
 * with a message in `err`. */
int table_read(FILE *in, struct rule_table *rules, struct fault_table *faults, char *err, size_t errlen);

#endif
