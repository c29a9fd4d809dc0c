/* Unit tests of the x86-64 arch file, built and run by
 * scripts/test-native.mjs with native/test/ on an x86-64 build machine.
 * The seccomp filter (filter.c and this arch's part), run through a small
 * classic-BPF interpreter: which calls of which ABI stop in the tracer. */
#include "../filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/net.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "../test/check.h"

#define TRACE SECCOMP_RET_TRACE
#define ALLOW SECCOMP_RET_ALLOW
#define NOSYS (SECCOMP_RET_ERRNO | ENOSYS)
#define X32 0x40000000u
#define FASTOPEN 0x20000000u

/* Runs the filter on one call; the instructions filter.c emits only. */
static uint32_t run(const struct bpf_asm *a, const struct seccomp_data *d)
{
	uint32_t acc = 0;
	for (int pc = 0; pc < a->n; pc++) {
		const struct sock_filter *i = &a->insn[pc];
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			memcpy(&acc, (const char *)d + i->k, sizeof acc);
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += acc == i->k ? i->jt : i->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (acc & i->k) ? i->jt : i->jf;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			acc &= i->k;
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			return 0xbad;
		}
	}
	return 0xbad; /* fell off the end */
}

static uint32_t call(const struct filter_needs *need, uint32_t arch, uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4)
{
	struct bpf_asm a;
	filter_build(&a, need);
	struct seccomp_data d = { .nr = (int)nr, .arch = arch, .args = { a0, a1, a2, a3, a4, 0 } };
	return run(&a, &d);
}

TEST(filter_connect_only_by_default)
{
	struct filter_needs none = { 0 };
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 42, 3, 0x1000, 16, 0, 0), TRACE);       /* connect */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, X32 | 42, 3, 0x1000, 16, 0, 0), TRACE); /* x32 connect */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 0, 3, 0, 0, 0, 0), ALLOW);              /* read */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 41, AF_INET, SOCK_DGRAM, 0, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 49, 3, 0x1000, 16, 0, 0), ALLOW); /* bind */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 55, 3, SOL_SOCKET, SO_ERROR, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 425, 0, 0, 0, 0, 0), NOSYS); /* io_uring_setup */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, X32 | 425, 0, 0, 0, 0, 0), NOSYS);
	CHECK_INT(call(&none, AUDIT_ARCH_AARCH64, 42, 0, 0, 0, 0, 0), ALLOW); /* another arch: not ours */
}

TEST(filter_fast_open_sends)
{
	struct filter_needs none = { 0 };
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 44, 3, 0, 1, FASTOPEN, 0x1000), TRACE); /* sendto */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 44, 3, 0, 1, 0, 0x1000), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 46, 3, 0x1000, FASTOPEN, 0, 0), TRACE); /* sendmsg */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 46, 3, 0x1000, 0, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 307, 3, 0x1000, 1, 0, 0), ALLOW); /* sendmmsg */
}

TEST(filter_egress_needs)
{
	struct filter_needs all = { .socket_create = 1, .datagram_sends = 1, .binds = 1 };
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 41, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 41, AF_INET6, SOCK_RAW, 0, 0, 0), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 41, AF_INET, SOCK_STREAM, 0, 0, 0), ALLOW);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 41, AF_UNIX, SOCK_DGRAM, 0, 0, 0), ALLOW);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 49, 3, 0x1000, 16, 0, 0), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 44, 3, 0, 1, 0, 0x1000), TRACE);     /* sendto with an address */
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 44, 3, 0, 1, 0, 1ull << 32), TRACE); /* (high half) */
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 44, 3, 0, 1, 0, 0), ALLOW);          /* connected */
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 44, 3, 0, 1, FASTOPEN, 0), TRACE);   /* Fast Open */
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 46, 3, 0x1000, 0, 0, 0), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 307, 3, 0x1000, 1, 0, 0), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_I386, 102, SYS_SOCKET, 0x1000, 0, 0, 0), ALLOW); /* not for i386 */
}

TEST(filter_so_error)
{
	struct filter_needs none = { 0 }, so = { .so_error = 1 };
	CHECK_INT(call(&so, AUDIT_ARCH_X86_64, 55, 3, SOL_SOCKET, SO_ERROR, 0x1000, 0x1008), TRACE);
	CHECK_INT(call(&so, AUDIT_ARCH_X86_64, 55, 3, SOL_SOCKET, SO_TYPE, 0x1000, 0x1008), ALLOW);
	CHECK_INT(call(&so, AUDIT_ARCH_X86_64, 55, 3, IPPROTO_TCP, SO_ERROR, 0x1000, 0x1008), ALLOW);
	CHECK_INT(call(&so, AUDIT_ARCH_X86_64, X32 | 542, 3, SOL_SOCKET, SO_ERROR, 0, 0), TRACE);
	CHECK_INT(call(&so, AUDIT_ARCH_I386, 365, 3, SOL_SOCKET, SO_ERROR, 0, 0), TRACE);
	CHECK_INT(call(&so, AUDIT_ARCH_I386, 102, SYS_GETSOCKOPT, 0x1000, 0, 0, 0), TRACE); /* arguments in memory */
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_GETSOCKOPT, 0x1000, 0, 0, 0), ALLOW);
}

TEST(filter_i386)
{
	struct filter_needs none = { 0 };
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 362, 3, 0x1000, 16, 0, 0), TRACE);          /* connect */
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_CONNECT, 0x1000, 0, 0, 0), TRACE); /* socketcall */
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_SENDTO, 0x1000, 0, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 425, 0, 0, 0, 0, 0), NOSYS);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 42, 0, 0, 0, 0, 0), ALLOW); /* 42 is not connect on i386 */
}

TEST(filter_names)
{
	struct filter_needs none = { 0 }, names = { .names = 1 }, all = { 1, 1, 1, 1, 1, 0 };
	const struct filter_needs *with[] = { &names, &all };
	for (int i = 0; i < 2; i++) {
		const struct filter_needs *n = with[i];
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, 51, 3, 0x1000, 0x1010, 0, 0), TRACE);       /* getsockname */
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, 52, 3, 0x1000, 0x1010, 0, 0), TRACE);       /* getpeername */
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, X32 | 51, 3, 0x1000, 0x1010, 0, 0), TRACE); /* x32 */
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, X32 | 52, 3, 0x1000, 0x1010, 0, 0), TRACE);
		CHECK_INT(call(n, AUDIT_ARCH_I386, 367, 3, 0x1000, 0x1010, 0, 0), TRACE); /* i386 getsockname */
		CHECK_INT(call(n, AUDIT_ARCH_I386, 368, 3, 0x1000, 0x1010, 0, 0), TRACE); /* i386 getpeername */
		CHECK_INT(call(n, AUDIT_ARCH_I386, 102, SYS_GETSOCKNAME, 0x1000, 0, 0, 0), TRACE);
		CHECK_INT(call(n, AUDIT_ARCH_I386, 102, SYS_GETPEERNAME, 0x1000, 0, 0, 0), TRACE);
		CHECK_INT(call(n, AUDIT_ARCH_I386, 102, SYS_CONNECT, 0x1000, 0, 0, 0), TRACE);
		CHECK_INT(call(n, AUDIT_ARCH_I386, 102, SYS_SENDTO, 0x1000, 0, 0, 0), ALLOW);
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, 42, 3, 0x1000, 16, 0, 0), TRACE); /* connect still */
		CHECK_INT(call(n, AUDIT_ARCH_X86_64, 0, 3, 0, 0, 0, 0), ALLOW);
		CHECK_INT(call(n, AUDIT_ARCH_I386, 51, 3, 0, 0, 0, 0), ALLOW); /* 51 is acct on i386 */
	}
	CHECK_INT(call(&all, AUDIT_ARCH_I386, 102, SYS_GETSOCKOPT, 0x1000, 0, 0, 0), TRACE);
	/* without redirects: untouched, every ABI */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 51, 3, 0x1000, 0x1010, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 52, 3, 0x1000, 0x1010, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, X32 | 52, 3, 0x1000, 0x1010, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 368, 3, 0x1000, 0x1010, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_GETPEERNAME, 0x1000, 0, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_GETSOCKNAME, 0x1000, 0, 0, 0), ALLOW);
}

TEST(filter_dns_receives)
{
	struct filter_needs none = { 0 }, dns = { .dns_receives = 1 };
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 45, 3, 0x1000, 512, 0, 0x2000), TRACE);       /* recvfrom with a source */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 45, 3, 0x1000, 512, 0, 1ull << 32), TRACE);   /* (high half) */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 45, 3, 0x1000, 512, 0, 0), ALLOW);            /* recv(): no source */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, X32 | 45, 3, 0x1000, 512, 0, 0x2000), TRACE); /* x32 */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 47, 3, 0x1000, 0, 0, 0), TRACE);              /* recvmsg */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 299, 3, 0x1000, 2, 0, 0), TRACE);             /* recvmmsg */
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, X32 | 519, 3, 0x1000, 0, 0, 0), ALLOW);       /* x32 recvmsg: not covered */
	CHECK_INT(call(&dns, AUDIT_ARCH_I386, 371, 3, 0x1000, 512, 0, 0x2000), TRACE);        /* i386 recvfrom */
	CHECK_INT(call(&dns, AUDIT_ARCH_I386, 371, 3, 0x1000, 512, 0, 0), ALLOW);
	CHECK_INT(call(&dns, AUDIT_ARCH_I386, 102, SYS_RECVFROM, 0x1000, 0, 0, 0), TRACE); /* arguments in memory */
	CHECK_INT(call(&dns, AUDIT_ARCH_I386, 102, SYS_RECVMSG, 0x1000, 0, 0, 0), ALLOW);
	CHECK_INT(call(&dns, AUDIT_ARCH_X86_64, 0, 3, 0, 0, 0, 0), ALLOW); /* read */
	/* runs without DNS capture pay nothing */
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 45, 3, 0x1000, 512, 0, 0x2000), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 47, 3, 0x1000, 0, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_X86_64, 299, 3, 0x1000, 2, 0, 0), ALLOW);
	CHECK_INT(call(&none, AUDIT_ARCH_I386, 102, SYS_RECVFROM, 0x1000, 0, 0, 0), ALLOW);
	/* all needs at once still fit the filter */
	struct filter_needs all = { 1, 1, 1, 1, 1, 1 };
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 45, 3, 0x1000, 512, 0, 0x2000), TRACE);
	CHECK_INT(call(&all, AUDIT_ARCH_X86_64, 44, 3, 0, 1, 0, 0x1000), TRACE);
}
