/* aarch64: not supported yet. This file keeps the tracer building for
 * aarch64 (npm run build:cross) so the arch seam stays honest; the tracer
 * refuses at start. An implementation needs: PTRACE_GETREGSET with
 * NT_PRSTATUS for x0..x7/sp, NT_ARM_SYSTEM_CALL to skip or change a call,
 * the generic syscall numbers (connect 203, ...), AUDIT_ARCH_AARCH64 in the
 * filter, and no red zone (scratch just below sp). */
#define _GNU_SOURCE
#include "arch.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../util.h"

void arch_check(void)
{
	dprintf(2, "%s: aarch64 is not supported yet\n", PROGNAME);
	exit(2);
}

void arch_decode(pid_t tid, struct call *c)
{
	memset(c, 0, sizeof *c);
	c->tid = tid;
	c->kind = CALL_NONE;
}

int arch_set_return(pid_t tid, long rv)
{
	(void)tid;
	(void)rv;
	errno = ENOSYS;
	return -1;
}

int arch_point_addr(const struct call *c, const union sa *to)
{
	(void)c;
	(void)to;
	errno = ENOSYS;
	return -1;
}

int arch_point_msg(const struct call *c, const union sa *to, uint64_t *copy_at)
{
	(void)c;
	(void)to;
	(void)copy_at;
	errno = ENOSYS;
	return -1;
}

/* (never called: no call is decoded here) */
uint64_t arch_mmsg_name_at(uint64_t vec, unsigned i)
{
	(void)vec;
	(void)i;
	return 0;
}

uint64_t arch_mmsg_namelen_at(uint64_t vec, unsigned i)
{
	(void)vec;
	(void)i;
	return 0;
}

uint64_t arch_mmsg_len_at(uint64_t vec, unsigned i)
{
	(void)vec;
	(void)i;
	return 0;
}

int arch_exit_value(pid_t tid, long *rv)
{
	(void)tid;
	(void)rv;
	errno = ENOSYS;
	return -1;
}

int arch_set_exit_value(pid_t tid, long rv)
{
	return arch_set_return(tid, rv);
}

void arch_filter(struct bpf_asm *a, const struct filter_needs *need)
{
	(void)need;
	bpf_ret(a, 0); /* never installed: arch_check refused at start */
}
