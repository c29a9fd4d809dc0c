/* A stopped tracee: its memory, and its sockets seen through duplicates. */
#ifndef GRAFT_TRACEE_H
#define GRAFT_TRACEE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockaddr.h"
#include "tasks.h"

/* Reads/writes `len` bytes at `addr` in task `tid`. Return 0 or -1. */
int peek(pid_t tid, uint64_t addr, void *buf, size_t len);
int poke(pid_t tid, uint64_t addr, const void *buf, size_t len);

/* A duplicate of the program's socket `fd` in task `tid` (pidfd_getfd).
 * It shares the open file description, so a bind on it binds the
 * program's socket. Returns the duplicate, or -errno. */
int grab_socket(struct task_table *tt, pid_t tid, int fd);

/* Domain, type, protocol, TCP state and IPV6_V6ONLY of socket `s`.
 * Returns 0 or -errno. */
int inspect_socket(int s, struct sockinfo *si);

/* Reads the sockaddr (addr, addrlen) in task `tid`. Returns 0 for an IPv4
 * or IPv6 address the kernel would accept; -1 for anything else, which is
 * left to the kernel so the program gets exactly its native error. */
int read_sockaddr(pid_t tid, uint64_t addr, uint64_t addrlen, union sa *out);

/* pidfd_open / pidfd_getfd (no libc wrappers everywhere). */
long xpidfd_open(pid_t pid, unsigned flags);
long xpidfd_getfd(int pidfd, int fd);

#endif
