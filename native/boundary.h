/* The tracer's side of the boundary with graft's Node side: one generic
 * encoder and decoder for every message spec/tracer-boundary.json defines
 * (the structs and descriptor tables are generated from it into
 * boundary_messages.h/.c). src/tracer/codec.ts is the other side. */
#ifndef GRAFT_BOUNDARY_H
#define GRAFT_BOUNDARY_H

#include <stddef.h>
#include <sys/types.h>

#include "boundary_messages.h"

enum bnd_type { BND_T_INT, BND_T_UINT, BND_T_COUNT, BND_T_PORT, BND_T_DOUBLE, BND_T_BOOL, BND_T_ADDR, BND_T_ERRNO, BND_T_TEXT, BND_T_ENUM };

/* has_offset of a field that is always present */
#define BND_REQUIRED ((size_t)-1)
/* the largest count: 2^53 - 1, exact in a JavaScript number */
#define BND_COUNT_MAX ((1ULL << 53) - 1)

struct bnd_field {
	const char *name;
	enum bnd_type type;
	size_t offset;            /* of the value in the message's struct */
	size_t has_offset;        /* of its int has_ flag, or BND_REQUIRED */
	const char *const *words; /* BND_T_ENUM: the words, NULL-terminated */
};

struct bnd_message {
	const char *tag;
	const char *name;
	const struct bnd_field *fields;
	int nfields;
	size_t size; /* of the message's struct */
};

/* Indexed by enum bnd_kind (generated). */
extern const struct bnd_message bnd_messages[BND_KINDS];

/* Writes message `msg` (a struct bnd_<kind>) as one line, newline
 * included, into `out`. Returns the line's length, or 0 when it would not
 * fit in `cap` (or BND_LINE_MAX) bytes or a value cannot be written (an
 * empty text, an unknown errno or enum value, a number out of range). */
size_t bnd_encode(enum bnd_kind kind, const void *msg, char *out, size_t cap);

/* Reads one line (without or with its newline) into `out`, a struct of
 * `cap` bytes that must hold the message found (every struct
 * bnd_<kind> fits in a union of them all). Returns the kind, or -1 with
 * *why saying what was wrong. */
int bnd_decode(const char *line, size_t len, void *out, size_t cap, const char **why);

/* errno name <-> number, as the boundary writes them; -1 / NULL when unknown. */
int bnd_errno_number(const char *name);
const char *bnd_errno_name(int err);

#endif
