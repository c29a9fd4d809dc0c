/* The architecture seam: everything that depends on the machine's
 * registers, syscall numbers and ABIs. One file per target implements it
 * (arch/x86_64.c, arch/aarch64.c); the build picks it by the compiler's
 * target. The rest of the tracer sees syscalls only as a neutral
 * `struct call`. */
#ifndef GRAFT_ARCH_H
#define GRAFT_ARCH_H

#include <stdint.h>
#include <sys/types.h>

#include "../filter.h"
#include "../sockaddr.h"

/* The calls the seccomp filter traps, by what they do. */
enum call_kind {
	CALL_NONE, /* nothing the tracer handles: resume */
	CALL_CONNECT,
	CALL_BIND,
	CALL_SENDTO,
	CALL_SENDMSG,  /* addr/addrlen from the msghdr (0 when unreadable) */
	CALL_SENDMMSG, /* ... from the first mmsghdr */
	CALL_GETSOCKOPT_SO_ERROR,
	CALL_SOCKET,      /* socket() at entry: see its return at syscall-exit */
	CALL_GETPEERNAME, /* addr, and addrlen the address of its socklen_t */
	CALL_GETSOCKNAME, /* ... */
	CALL_RECVFROM,    /* with a source pointer: addr, and addrlen the address of its socklen_t */
	CALL_RECVMSG,     /* msg: the msghdr */
	CALL_RECVMMSG,    /* msg: the mmsghdr vector, vlen its length */
};

/* Where the call came from, for rewriting it: arch-private meaning. */
struct call_site {
	int abi;           /* which of the arch's ABIs */
	uint64_t sp;       /* the stack pointer at the stop */
	uint64_t args_mem; /* arguments passed in memory (i386 socketcall), or 0 */
};

struct call {
	enum call_kind kind;
	pid_t tid;
	int fd;
	uint64_t addr, addrlen;  /* the sockaddr (connect, bind, sends; getpeername/getsockname: addrlen points at the length) */
	uint64_t flags;          /* send flags */
	uint64_t optval, optlen; /* getsockopt(SO_ERROR) */
	uint64_t msg, vlen;      /* sendmsg, recvmsg: the msghdr; sendmmsg, recvmmsg: the vector and its length */
	struct call_site site;
};

/* Refuses at start, with one line on stderr and exit status 2, when the
 * tracer cannot run on this architecture. */
void arch_check(void);

/* Decodes the seccomp stop of task `tid` into `c` (kind CALL_NONE when it
 * is nothing to handle, or cannot be read). */
void arch_decode(pid_t tid, struct call *c);

/* Skips the stopped call and makes it return `rv` (-errno for a failure).
 * Returns 0, or -1 with errno set. */
int arch_set_return(pid_t tid, long rv);

/* Writes `to` into scratch space on the tracee's stack (below the red
 * zone, the program's own memory is never touched) and points the call's
 * address argument at it (connect, bind; sendto on the x86-64 ABI).
 * Returns 0, or -1 with errno set. */
int arch_point_addr(const struct call *c, const union sa *to);

/* sendmsg / sendmmsg: writes `to` and a copy of the call's (first)
 * msghdr naming it into scratch space on the tracee's stack and points
 * the call at the copy; a sendmmsg is cut to that one message (vlen 1: it
 * returns how many it sent, and the program sends the rest in its next
 * call). *copy_at: where the copy is, whose msg_len the kernel sets (see
 * arch_mmsg_len_at). x86-64 ABI only (the filter traps no other's sends):
 * -1 with errno ENOSYS for the others. */
int arch_point_msg(const struct call *c, const union sa *to, uint64_t *copy_at);

/* The layout of the x86-64 ABI's struct mmsghdr and struct msghdr, for
 * reading the vectors of recvmsg, recvmmsg and sendmmsg (CALL_RECVMSG and
 * CALL_RECVMMSG are decoded for that ABI only): where entry `i` of a
 * vector at `vec` keeps its msg_name pointer, msg_namelen, and msg_len. */
uint64_t arch_mmsg_name_at(uint64_t vec, unsigned i);
uint64_t arch_mmsg_namelen_at(uint64_t vec, unsigned i);
uint64_t arch_mmsg_len_at(uint64_t vec, unsigned i);

/* At a syscall-exit stop: the call's return value. Returns 0 or -1. */
int arch_exit_value(pid_t tid, long *rv);
/* At a syscall-exit stop: changes the call's return value. */
int arch_set_exit_value(pid_t tid, long rv);

/* Emits the arch-specific start of the seccomp filter: the audit arch
 * checks and the syscall numbers, jumping to filter.h's shared labels. */
void arch_filter(struct bpf_asm *a, const struct filter_needs *need);

#endif
