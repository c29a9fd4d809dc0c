/* Reading and writing a stopped tracee's memory and registers. Included
 * once, by tracer.c. */
/* ---------- tracee memory and registers ---------- */

static int peek(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	return process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -1;
}

static int poke(pid_t tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)(uintptr_t)addr, len };
	if (process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	/* process_vm_writev honours page protections; POKEDATA (like a debugger)
	 * does not, which matters for an unusual stack mapping. */
	const unsigned char *p = buf;
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long word;
		errno = 0;
		word = ptrace(PTRACE_PEEKDATA, tid, (void *)(uintptr_t)(addr + off), NULL);
		if (errno)
			return -1;
		size_t n = len - off < sizeof(long) ? len - off : sizeof(long);
		memcpy(&word, p + off, n);
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(uintptr_t)(addr + off), (void *)word) < 0)
			return -1;
	}
	return 0;
}

/* How the trapped syscall passes its arguments, so the rewrite can point
 * the right register (or socketcall argument block) at the scratch copy. */
enum call_abi { ABI_64, ABI_X32, ABI_I386, ABI_I386_SOCKETCALL };

struct trapped {
	pid_t tid;
	enum call_abi abi;
	int fd;
	uint64_t addr;     /* sockaddr pointer in the tracee */
	uint64_t addrlen;
	uint64_t sp;
	uint64_t sc_args;  /* socketcall: pointer to the u32 argument block */
	int rule;          /* the rule that decided, for the records; -1 none */
};

/* Skips the trapped syscall and makes it return `rv` (-errno for a failure). */
static int set_regs_return(pid_t tid, long rv)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r) < 0)
		return -1;
	r.orig_rax = (unsigned long long)-1; /* skip the syscall ... */
	r.rax = (unsigned long long)rv;      /* ... and return this */
	return ptrace(PTRACE_SETREGS, tid, NULL, &r);
}

static int set_regs_fail(pid_t tid, int err)
{
	return set_regs_return(tid, -err);
}

/* Writes `to` into scratch space on the tracee's stack and points the
 * syscall at it; the program's own sockaddr is never touched. */
static int redirect_regs(const struct trapped *t, const union sa *to)
{
	socklen_t len = sa_len(to);
	uint64_t scratch = (t->sp - SCRATCH_BELOW_SP) & ~(uint64_t)15;
	if (t->abi == ABI_X32 || t->abi == ABI_I386 || t->abi == ABI_I386_SOCKETCALL)
		scratch &= 0xffffffffu;
	if (poke(t->tid, scratch, to, len) < 0)
		return -1;
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, t->tid, NULL, &r) < 0)
		return -1;
	switch (t->abi) {
	case ABI_64:
	case ABI_X32:
		r.rsi = scratch;
		r.rdx = len;
		break;
	case ABI_I386:
		r.rcx = scratch;
		r.rdx = len;
		break;
	case ABI_I386_SOCKETCALL: {
		uint32_t block[3] = { (uint32_t)t->fd, (uint32_t)scratch, len };
		uint64_t bscratch = (scratch - 16) & ~(uint64_t)15;
		if (poke(t->tid, bscratch, block, sizeof block) < 0)
			return -1;
		r.rcx = bscratch;
		break;
	}
	}
	return ptrace(PTRACE_SETREGS, t->tid, NULL, &r);
}

