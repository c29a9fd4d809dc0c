/* The sockets graft redirected, so getpeername and getsockname can tell
 * the program the truth (names.c answers them). Pure: no system calls.
 *
 * An entry is keyed by the program socket's local address and port as the
 * kernel reports them once the socket is connected to graft (the loopback
 * address and port the tracer bound, or the program's own bind), and holds
 * the socket's inode: a local port is reused by later sockets, an inode is
 * not within a run (a counter hands them out). A later redirect with the
 * same local address and port replaces the entry.
 *
 * Bounded: PEERS_SLOTS entries of 408 bytes on x86-64 (1.6 MB), allocated
 * at the first redirect. The table is a hash of PEERS_SLOTS slots probed
 * PEERS_PROBE at a time; a new entry whose probe window is full replaces
 * the oldest entry in it. No entry is removed otherwise: a closed socket's
 * entry stays until replaced, and matches no later socket (its inode
 * differs). A program holding thousands of redirected sockets at once may
 * see the loopback address again on an old one (eviction can begin before
 * the table is full, when the PEERS_PROBE slots a key hashes to are taken). */
#ifndef GRAFT_PEERS_H
#define GRAFT_PEERS_H

#include <stdint.h>
#include <sys/types.h>

#include "sockaddr.h"

#define PEERS_SLOTS 4096
#define PEERS_PROBE 8

struct peer {
	union sa local; /* the key: family 0 marks a free slot */
	ino_t ino;
	union sa dst;  /* the destination as the program gave it, as getpeername reports it */
	union sa bind; /* the program's own non-loopback bind (family 0: none) */
	int rule;
	uint64_t seq; /* age, for eviction */
};

/* The source address the route gave for a destination (names.c asks the
 * kernel, a few system calls), kept PEERS_ROUTE_MS for the next
 * getsockname of a socket to the same destination by the same rule. */
#define PEERS_ROUTES 16
#define PEERS_ROUTE_MS 1000
struct peer_route {
	union sa dst; /* family 0: unused */
	int rule;
	union sa src;
	uint64_t at;
};

struct peers {
	struct peer *slot; /* PEERS_SLOTS, or NULL until the first entry */
	uint64_t seq;
	int count;
	struct peer_route routes[PEERS_ROUTES];
	int next_route;
};

/* Remembers a redirected socket: `local` its local address and port once
 * connected (the key), `ino` its inode, `dst` the destination the program
 * gave connect, `rule` the rule index, `bind` the address the program bound
 * before the connect (any family-0, wildcard or loopback one means none).
 * Returns 0, or -1 when no memory (the socket then shows loopback). */
int peers_put(struct peers *p, const union sa *local, ino_t ino, const union sa *dst, int rule, const union sa *bind);

/* The entry for a socket with this local address and port and inode, or NULL. */
const struct peer *peers_find(const struct peers *p, const union sa *local, ino_t ino);

void peers_free(struct peers *p);

/* Whether `peer` is one of graft's loopback ports (127.0.0.1, ::1 or
 * ::ffff:127.0.0.1; `ports`, `n` of them, 0s ignored). */
int peers_is_graft(const union sa *peer, const uint16_t *ports, int n);

/* The destination as getpeername reports it: the program's sockaddr with
 * flowinfo 0, the scope id only for a link-local address, padding zeroed. */
void peers_as_reported(const union sa *given, union sa *out);

/* An address in the form a socket of `domain` reports it: an IPv4
 * address on an AF_INET6 socket becomes ::ffff:a.b.c.d. */
void peers_in_family(const union sa *a, int domain, union sa *out);

/* The kernel's rule for writing an address of `actual` bytes back to a
 * program that passed a length of `ulen` (read: `have_len` 0 when the
 * length pointer was unreadable): returns -EFAULT or -EINVAL, or 0 with
 * `copy` bytes to write before the length is set to `actual`. */
int peers_copy_len(int have_len, int32_t ulen, uint32_t actual, uint32_t *copy);

#endif
