/* getpeername and getsockname of the sockets graft redirected: the
 * program sees its destination and the source address the kernel would
 * have used, not graft's loopback addresses. The table is peers.h; the
 * seccomp filter traps both calls in runs that redirect (filter.h). */
#ifndef GRAFT_NAMES_H
#define GRAFT_NAMES_H

#include "arch/arch.h"
#include "peers.h"
#include "tracer.h"

/* Remembers a redirected socket, at the connect's stop, once its local
 * port is fixed: `s` the tracer's duplicate of the program's socket;
 * `addr` and `port` its local address and port as getsockname will
 * report them once connected to graft (the address the proxy sees as
 * the peer's); `dst` the destination as the program gave it; `rule` the
 * rule index; `local` the socket's local address after graft's bind (a
 * non-loopback, non-wildcard one is the program's own bind). */
void names_remember(struct tracer *tr, int s, const union sa *addr, unsigned port, const union sa *dst, int rule, const union sa *local);

/* getpeername(fd, addr, addrlen) trapped: answers it for a redirected
 * socket connected to graft, or lets it run. */
void names_getpeername(struct tracer *tr, const struct call *c);

/* getsockname(fd, addr, addrlen) trapped: likewise. */
void names_getsockname(struct tracer *tr, const struct call *c);

/* What the local routing answers a connect to `dst` under rule `rule`
 * (its mark and interface): 0 when there is a route (or graft itself
 * could not tell: the proxy's dial answers then), else the errno a
 * connect gets at once natively (ENETUNREACH, EHOSTUNREACH, EACCES for a
 * prohibit route, EPERM, EINVAL). Routes found are remembered a second. */
int names_route_error(struct tracer *tr, int rule, const union sa *dst);

#endif
