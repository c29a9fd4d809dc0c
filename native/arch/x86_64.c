/* x86-64, with its x32 and i386 compat ABIs. */
#define _GNU_SOURCE
#include "arch.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/net.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/user.h>

#include "../tracee.h"

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_SYSCALL_INFO_SECCOMP
#define PTRACE_SYSCALL_INFO_SECCOMP 3
#endif

/* Our own copy of the kernel's struct so the build does not depend on the
 * installed linux headers being new enough to have it. */
struct syscall_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint32_t ret_data;
		} seccomp;
		uint8_t raw[80];
	};
};

#define X32_BIT 0x40000000u
/* x86_64 */
#define NR64_CONNECT 42
#define NR64_SENDTO 44
#define NR64_SENDMSG 46
#define NR64_SOCKET 41
#define NR64_BIND 49
#define NR64_SENDMMSG 307
#define NR64_GETSOCKOPT 55
#define NR64_GETSOCKNAME 51 /* (x32: the same, with X32_BIT) */
#define NR64_GETPEERNAME 52
#define NR64_RECVFROM 45 /* (x32: the same, with X32_BIT) */
#define NR64_RECVMSG 47
#define NR64_RECVMMSG 299
#define NR_X32_GETSOCKOPT 542 /* x32 has its own number, with X32_BIT */
#define NR_IO_URING_SETUP 425 /* same number on x86_64 and i386 */
/* i386 */
#define NR32_SOCKETCALL 102
#define NR32_CONNECT 362
#define NR32_GETSOCKOPT 365
#define NR32_GETSOCKNAME 367
#define NR32_GETPEERNAME 368
#define NR32_RECVFROM 371

/* How the trapped syscall passes its arguments, so the rewrite can point
 * the right register (or socketcall argument block) at the scratch copy. */
enum call_abi { ABI_64, ABI_X32, ABI_I386, ABI_I386_SOCKETCALL };

/* Scratch space for the rewritten sockaddr: below the x86_64 red zone (128
 * bytes) but well within the few hundred bytes any stack (Go's small
 * goroutine stacks included) keeps free below the stack pointer at a
 * syscall. The kernel copies the sockaddr in at syscall entry, so the
 * scratch only has to live until then. */
#define SCRATCH_BELOW_SP 256

void arch_check(void)
{
}

/* A 64-bit or x32 call. */
static void decode_64(pid_t tid, uint64_t nr, const uint64_t *a, struct call *c)
{
	c->site.abi = (nr & X32_BIT) ? ABI_X32 : ABI_64;
	nr &= ~(uint64_t)X32_BIT;
	c->fd = (int)a[0];
	int abi64 = c->site.abi == ABI_64;
	struct msghdr mh;
	switch (nr) {
	case NR64_CONNECT:
	case NR64_BIND:
		c->kind = nr == NR64_CONNECT ? CALL_CONNECT : CALL_BIND;
		c->addr = a[1];
		c->addrlen = (uint32_t)a[2];
		break;
	case NR64_SENDTO:
		c->kind = CALL_SENDTO;
		c->addr = a[4];
		c->addrlen = (uint32_t)a[5];
		c->flags = a[3];
		break;
	case NR64_SENDMSG:
	case NR64_SENDMMSG: /* struct mmsghdr starts with its msghdr */
		c->kind = nr == NR64_SENDMSG ? CALL_SENDMSG : CALL_SENDMMSG;
		if (peek(tid, a[1], &mh, sizeof mh) == 0) {
			c->addr = (uint64_t)(uintptr_t)mh.msg_name;
			c->addrlen = mh.msg_namelen;
		}
		c->flags = nr == NR64_SENDMSG ? a[2] : a[3];
		c->msg = a[1];
		c->vlen = nr == NR64_SENDMMSG ? (uint32_t)a[2] : 1;
		break;
	case NR64_RECVFROM:
		c->kind = CALL_RECVFROM;
		c->addr = a[4];
		c->addrlen = a[5];
		break;
	case NR64_RECVMSG:
	case NR64_RECVMMSG: /* x32 has its own numbers for these: not trapped */
		if (!abi64)
			break;
		c->kind = nr == NR64_RECVMSG ? CALL_RECVMSG : CALL_RECVMMSG;
		c->msg = a[1];
		c->vlen = nr == NR64_RECVMSG ? 1 : (uint32_t)a[2];
		break;
	case NR64_GETSOCKOPT:
	case NR_X32_GETSOCKOPT: /* (level and name checked by the filter) */
		c->kind = CALL_GETSOCKOPT_SO_ERROR;
		c->optval = a[3];
		c->optlen = a[4];
		break;
	case NR64_SOCKET:
		c->kind = CALL_SOCKET;
		break;
	case NR64_GETPEERNAME:
	case NR64_GETSOCKNAME:
		c->kind = nr == NR64_GETPEERNAME ? CALL_GETPEERNAME : CALL_GETSOCKNAME;
		c->addr = a[1];
		c->addrlen = a[2];
		break;
	}
}

/* The i386 socketcall calls the tracer handles, and their argument counts. */
static size_t socketcall_args(uint32_t call)
{
	switch (call) {
	case SYS_CONNECT:
	case SYS_GETSOCKNAME:
	case SYS_GETPEERNAME:
		return 3;
	case SYS_GETSOCKOPT:
		return 5;
	case SYS_RECVFROM:
		return 6;
	}
	return 0;
}

/* An i386 direct call as the socketcall call it stands for, or 0. */
static uint32_t as_socketcall(uint64_t nr)
{
	switch (nr) {
	case NR32_CONNECT:
		return SYS_CONNECT;
	case NR32_GETSOCKOPT:
		return SYS_GETSOCKOPT;
	case NR32_GETSOCKNAME:
		return SYS_GETSOCKNAME;
	case NR32_GETPEERNAME:
		return SYS_GETPEERNAME;
	case NR32_RECVFROM:
		return SYS_RECVFROM;
	}
	return 0;
}

/* An i386 call: direct, or through socketcall with its arguments in memory. */
static void decode_i386(pid_t tid, uint64_t nr, const uint64_t *a, struct call *c)
{
	int sc = nr == NR32_SOCKETCALL;
	uint32_t call = sc ? (uint32_t)a[0] : as_socketcall(nr);
	size_t n = socketcall_args(call);
	if (!n)
		return;
	uint32_t g[6]; /* the call's own arguments: fd, then its others */
	for (int k = 0; k < 6; k++)
		g[k] = (uint32_t)a[k];
	if (sc) {
		c->site.args_mem = (uint32_t)a[1];
		if (peek(tid, c->site.args_mem, g, n * sizeof g[0]) < 0)
			return; /* EFAULT natively */
	}
	c->site.abi = sc ? ABI_I386_SOCKETCALL : ABI_I386;
	c->fd = (int)g[0];
	switch (call) {
	case SYS_CONNECT:
		c->kind = CALL_CONNECT;
		c->addr = g[1];
		c->addrlen = g[2];
		break;
	case SYS_GETSOCKNAME:
	case SYS_GETPEERNAME:
		c->kind = call == SYS_GETPEERNAME ? CALL_GETPEERNAME : CALL_GETSOCKNAME;
		c->addr = g[1];
		c->addrlen = g[2];
		break;
	case SYS_RECVFROM:
		c->kind = g[4] ? CALL_RECVFROM : CALL_NONE; /* (socketcall's pointer is checked here) */
		c->addr = g[4];
		c->addrlen = g[5];
		break;
	case SYS_GETSOCKOPT:
		if (g[1] == SOL_SOCKET && g[2] == SO_ERROR) {
			c->kind = CALL_GETSOCKOPT_SO_ERROR;
			c->optval = g[3];
			c->optlen = g[4];
		}
		break;
	}
}

void arch_decode(pid_t tid, struct call *c)
{
	memset(c, 0, sizeof *c);
	c->tid = tid;
	c->kind = CALL_NONE;
	struct syscall_info info;
	memset(&info, 0, sizeof info);
	if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof info, &info) <= 0 || info.op != PTRACE_SYSCALL_INFO_SECCOMP)
		return;
	c->site.sp = info.stack_pointer;
	if (info.arch == AUDIT_ARCH_X86_64)
		decode_64(tid, info.seccomp.nr, info.seccomp.args, c);
	else if (info.arch == AUDIT_ARCH_I386)
		decode_i386(tid, info.seccomp.nr, info.seccomp.args, c);
}

int arch_set_return(pid_t tid, long rv)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -1;
	r.orig_rax = (unsigned long long)-1; /* skip the syscall ... */
	r.rax = (unsigned long long)rv;      /* ... and return this */
	return ptrace(PTRACE_SETREGS, tid, NULL, &r);
}

int arch_point_addr(const struct call *c, const union sa *to)
{
	socklen_t len = sa_len(to);
	uint64_t scratch = (c->site.sp - SCRATCH_BELOW_SP) & ~(uint64_t)15;
	if (c->site.abi != ABI_64)
		scratch &= 0xffffffffu; /* a 32-bit pointer */
	if (poke(c->tid, scratch, to, len) < 0)
		return -1;
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, c->tid, NULL, &r) < 0)
		return -1;
	switch (c->site.abi) {
	case ABI_64:
	case ABI_X32:
		if (c->kind == CALL_SENDTO) {
			r.r8 = scratch; /* sendto(fd, buf, len, flags, addr, addrlen) */
			r.r9 = len;
		} else {
			r.rsi = scratch;
			r.rdx = len;
		}
		break;
	case ABI_I386:
		r.rcx = scratch;
		r.rdx = len;
		break;
	case ABI_I386_SOCKETCALL: {
		uint32_t block[3] = { (uint32_t)c->fd, (uint32_t)scratch, len };
		uint64_t bscratch = (scratch - 16) & ~(uint64_t)15;
		if (poke(c->tid, bscratch, block, sizeof block) < 0)
			return -1;
		r.rcx = bscratch;
		break;
	}
	}
	return ptrace(PTRACE_SETREGS, c->tid, NULL, &r);
}

/* The x86-64 ABI's struct mmsghdr: a struct msghdr, then msg_len. */
_Static_assert(sizeof(struct mmsghdr) == 64 && offsetof(struct mmsghdr, msg_len) == 56, "x86-64 struct mmsghdr");

uint64_t arch_mmsg_name_at(uint64_t vec, unsigned i)
{
	return vec + (uint64_t)i * sizeof(struct mmsghdr) + offsetof(struct msghdr, msg_name);
}

uint64_t arch_mmsg_namelen_at(uint64_t vec, unsigned i)
{
	return vec + (uint64_t)i * sizeof(struct mmsghdr) + offsetof(struct msghdr, msg_namelen);
}

uint64_t arch_mmsg_len_at(uint64_t vec, unsigned i)
{
	return vec + (uint64_t)i * sizeof(struct mmsghdr) + offsetof(struct mmsghdr, msg_len);
}

int arch_point_msg(const struct call *c, const union sa *to, uint64_t *copy_at)
{
	if (c->site.abi != ABI_64 || (c->kind != CALL_SENDMSG && c->kind != CALL_SENDMMSG)) {
		errno = ENOSYS;
		return -1;
	}
	/* the sockaddr where arch_point_addr puts one; the header below it */
	socklen_t len = sa_len(to);
	uint64_t scratch = (c->site.sp - SCRATCH_BELOW_SP) & ~(uint64_t)15;
	uint64_t copy = (scratch - sizeof(struct mmsghdr)) & ~(uint64_t)15;
	struct mmsghdr m;
	memset(&m, 0, sizeof m);
	if (peek(c->tid, c->msg, &m, c->kind == CALL_SENDMMSG ? sizeof m : sizeof m.msg_hdr) < 0)
		return -1;
	m.msg_hdr.msg_name = (void *)(uintptr_t)scratch;
	m.msg_hdr.msg_namelen = len;
	if (poke(c->tid, scratch, to, len) < 0 || poke(c->tid, copy, &m, sizeof m) < 0)
		return -1;
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, c->tid, NULL, &r) < 0)
		return -1;
	r.rsi = copy;
	if (c->kind == CALL_SENDMMSG)
		r.rdx = 1; /* vlen */
	*copy_at = copy;
	return ptrace(PTRACE_SETREGS, c->tid, NULL, &r);
}

int arch_exit_value(pid_t tid, long *rv)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -1;
	*rv = (long)r.rax;
	return 0;
}

int arch_set_exit_value(pid_t tid, long rv)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -1;
	r.rax = (unsigned long long)(long long)rv;
	return ptrace(PTRACE_SETREGS, tid, NULL, &r);
}

/* x86_64 and x32 (the same audit arch; x32 numbers carry X32_BIT). */
static void filter_64(struct bpf_asm *a, const struct filter_needs *need)
{
	bpf_ld_nr(a);
	bpf_jeq(a, NR64_CONNECT, L_TRACE, L_NEXT);
	bpf_jeq(a, X32_BIT | NR64_CONNECT, L_TRACE, L_NEXT);
	bpf_jeq(a, NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	bpf_jeq(a, X32_BIT | NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	if (need->socket_create)
		bpf_jeq(a, NR64_SOCKET, L_SOCKET, L_NEXT);
	if (need->binds)
		bpf_jeq(a, NR64_BIND, L_TRACE, L_NEXT);
	if (need->so_error) {
		bpf_jeq(a, NR64_GETSOCKOPT, L_SO_ERROR, L_NEXT);
		bpf_jeq(a, X32_BIT | NR_X32_GETSOCKOPT, L_SO_ERROR, L_NEXT);
	}
	if (need->names) {
		bpf_jeq(a, NR64_GETSOCKNAME, L_TRACE, L_NEXT);
		bpf_jeq(a, NR64_GETPEERNAME, L_TRACE, L_NEXT);
		bpf_jeq(a, X32_BIT | NR64_GETSOCKNAME, L_TRACE, L_NEXT);
		bpf_jeq(a, X32_BIT | NR64_GETPEERNAME, L_TRACE, L_NEXT);
	}
	if (need->dns_receives) {
		bpf_jeq(a, NR64_RECVFROM, L_RECVFROM, L_NEXT);
		bpf_jeq(a, X32_BIT | NR64_RECVFROM, L_RECVFROM, L_NEXT);
		bpf_jeq(a, NR64_RECVMSG, L_TRACE, L_NEXT);
		bpf_jeq(a, NR64_RECVMMSG, L_TRACE, L_NEXT);
	}
	if (need->datagram_sends) {
		bpf_jeq(a, NR64_SENDMSG, L_TRACE, L_NEXT);
		bpf_jeq(a, NR64_SENDMMSG, L_TRACE, L_NEXT);
		bpf_jeq(a, NR64_SENDTO, L_SENDTO, L_NEXT);
	} else {
		bpf_jeq(a, NR64_SENDTO, L_TFO3, L_NEXT);
		bpf_jeq(a, NR64_SENDMSG, L_TFO2, L_NEXT);
	}
	bpf_ret(a, SECCOMP_RET_ALLOW);
}

/* i386: connect, socketcall(SYS_CONNECT), and getsockopt, getsockname,
 * getpeername, recvfrom (direct and through socketcall) when needed;
 * egress for datagram sockets, and sends with an address, are not handled
 * for 32-bit programs */
static void filter_i386(struct bpf_asm *a, const struct filter_needs *need)
{
	bpf_ld_nr(a);
	bpf_jeq(a, NR32_CONNECT, L_TRACE, L_NEXT);
	bpf_jeq(a, NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	if (need->so_error)
		bpf_jeq(a, NR32_GETSOCKOPT, L_SO_ERROR, L_NEXT);
	if (need->names) {
		bpf_jeq(a, NR32_GETSOCKNAME, L_TRACE, L_NEXT);
		bpf_jeq(a, NR32_GETPEERNAME, L_TRACE, L_NEXT);
	}
	if (need->dns_receives)
		bpf_jeq(a, NR32_RECVFROM, L_RECVFROM, L_NEXT);
	bpf_jeq(a, NR32_SOCKETCALL, L_NEXT, L_ALLOW);
	bpf_ld_arg(a, 0, 0);
	bpf_jeq(a, SYS_CONNECT, L_TRACE, L_NEXT);
	/* socketcall's arguments are in memory: the tracer checks them */
	if (need->so_error)
		bpf_jeq(a, SYS_GETSOCKOPT, L_TRACE, L_NEXT);
	if (need->names) {
		bpf_jeq(a, SYS_GETSOCKNAME, L_TRACE, L_NEXT);
		bpf_jeq(a, SYS_GETPEERNAME, L_TRACE, L_NEXT);
	}
	if (need->dns_receives)
		bpf_jeq(a, SYS_RECVFROM, L_TRACE, L_NEXT);
	bpf_ret(a, SECCOMP_RET_ALLOW);
}

void arch_filter(struct bpf_asm *a, const struct filter_needs *need)
{
	/* Check the audit arch: 32-bit and x32 syscalls otherwise pass
	 * unfiltered. */
	bpf_ld_arch(a);
	bpf_jeq(a, AUDIT_ARCH_X86_64, L_NEXT, L_ARCH0);
	filter_64(a, need);
	bpf_label(a, L_ARCH0);
	bpf_jeq(a, AUDIT_ARCH_I386, L_NEXT, L_ALLOW);
	filter_i386(a, need);
}
