/* Reading the table graft's Node side hands over on a file descriptor
 * before the program starts (src/tracer/table.ts writes it): rule, fault
 * and dns messages of spec/tracer-boundary.json, one a line, read by the one
 * decoder (boundary.h). This unit turns them into the tracer's tables. */
#ifndef GRAFT_TABLE_H
#define GRAFT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "boundary_messages.h"
#include "faults.h"
#include "rules.h"

/* A decoded rule or fault message as the tracer's own; 0, or -1 when a
 * value the decoder cannot check is wrong (an address of the wrong
 * family, a prefix too long, an interface name too long). */
int table_rule(const struct bnd_rule *b, struct rule *r);
int table_fault(const struct bnd_fault *b, struct fault *f);
int table_dial(const struct bnd_dial *b, struct dial_settings *d);

/* Reads the whole table, adding to `rules` and `faults` (a dns message
 * sets rules->dns and its ports; a rule with udp dns needs one). Returns
 * 0, or -1 with a message in `err`. */
int table_read(FILE *in, struct rule_table *rules, struct fault_table *faults, char *err, size_t errlen);

#endif
