/* The seccomp filter installed in the program. Included once, by tracer.c.
 *
 * Only the calls graft must see stop in the tracer; everything else runs at
 * native speed. Which calls depends on the egress options (struct egress):
 *   always        connect (x86_64, x32, i386 connect and socketcall
 *                 SYS_CONNECT); sendto/sendmsg with MSG_FASTOPEN (TCP Fast
 *                 Open would send a SYN without connect)
 *   --mark        socket() for IPv4/IPv6 datagram and raw sockets, to mark
 *                 them as they are made
 *   --interface or --source
 *                 sendto with an address, sendmsg and sendmmsg (unconnected
 *                 datagram sends), to bind such a socket before it first
 *                 sends
 *   --source      bind(), to put the source address into a datagram
 *                 socket's bind to the wildcard address
 *   connect faults answered later
 *                 getsockopt(SOL_SOCKET, SO_ERROR), to answer it for a
 *                 socket graft failed (later.h)
 * io_uring_setup fails with ENOSYS, as under many container runtimes:
 * IORING_OP_CONNECT would bypass connect(2); programs fall back. */

struct filter_needs {
	int socket_create;  /* trap socket() for datagram/raw sockets */
	int datagram_sends; /* trap unconnected sends */
	int binds;          /* trap bind() */
	int so_error;       /* trap getsockopt(SOL_SOCKET, SO_ERROR) */
};

/* A tiny assembler: jumps name labels, resolved when the program is done. */
#define MAX_INSNS 96
#define MAX_LABELS 16
enum label { L_NEXT = -1, L_TRACE, L_NOSYS, L_ALLOW, L_I386, L_SENDTO, L_TFO3, L_TFO2, L_SOCKET, L_SOCKTYPE, L_SO_ERROR, L_COUNT };

struct bpf_asm {
	struct sock_filter insn[MAX_INSNS];
	int jt[MAX_INSNS], jf[MAX_INSNS];
	int at[MAX_LABELS];
	int n;
};

static void emit(struct bpf_asm *a, uint16_t code, uint32_t k, int jt, int jf)
{
	if (a->n >= MAX_INSNS)
		die(2, "internal error: seccomp filter too long");
	a->insn[a->n] = (struct sock_filter){ code, 0, 0, k };
	a->jt[a->n] = jt;
	a->jf[a->n] = jf;
	a->n++;
}

static void ld_abs(struct bpf_asm *a, uint32_t off) { emit(a, BPF_LD | BPF_W | BPF_ABS, off, L_NEXT, L_NEXT); }
static void ret(struct bpf_asm *a, uint32_t v) { emit(a, BPF_RET | BPF_K, v, L_NEXT, L_NEXT); }
static void jeq(struct bpf_asm *a, uint32_t k, int jt, int jf) { emit(a, BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf); }
static void jset(struct bpf_asm *a, uint32_t k, int jt, int jf) { emit(a, BPF_JMP | BPF_JSET | BPF_K, k, jt, jf); }
static void label(struct bpf_asm *a, enum label l) { a->at[l] = a->n; }

#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_ARG_LO(i) offsetof(struct seccomp_data, args[i])
#define OFF_ARG_HI(i) (offsetof(struct seccomp_data, args[i]) + 4)

static void resolve(struct bpf_asm *a)
{
	for (int i = 0; i < a->n; i++) {
		int cls = BPF_CLASS(a->insn[i].code);
		if (cls != BPF_JMP)
			continue;
		int t = a->jt[i] == L_NEXT ? i + 1 : a->at[a->jt[i]];
		int f = a->jf[i] == L_NEXT ? i + 1 : a->at[a->jf[i]];
		if (t <= i || f <= i || t - i - 1 > 255 || f - i - 1 > 255)
			die(2, "internal error: bad seccomp filter jump at %d (%d, %d)", i, t, f);
		a->insn[i].jt = (uint8_t)(t - i - 1);
		a->insn[i].jf = (uint8_t)(f - i - 1);
	}
}

static void build_filter(struct bpf_asm *a, const struct filter_needs *need)
{
	memset(a, 0, sizeof *a);
	ld_abs(a, OFF_ARCH);
	jeq(a, AUDIT_ARCH_X86_64, L_NEXT, L_I386);
	ld_abs(a, OFF_NR);
	jeq(a, NR64_CONNECT, L_TRACE, L_NEXT);
	jeq(a, X32_BIT | NR64_CONNECT, L_TRACE, L_NEXT);
	jeq(a, NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	jeq(a, X32_BIT | NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	if (need->socket_create)
		jeq(a, NR64_SOCKET, L_SOCKET, L_NEXT);
	if (need->binds)
		jeq(a, NR64_BIND, L_TRACE, L_NEXT);
	if (need->so_error) {
		jeq(a, NR64_GETSOCKOPT, L_SO_ERROR, L_NEXT);
		jeq(a, X32_BIT | NR_X32_GETSOCKOPT, L_SO_ERROR, L_NEXT);
	}
	if (need->datagram_sends) {
		jeq(a, NR64_SENDMSG, L_TRACE, L_NEXT);
		jeq(a, NR64_SENDMMSG, L_TRACE, L_NEXT);
		jeq(a, NR64_SENDTO, L_SENDTO, L_NEXT);
	} else {
		jeq(a, NR64_SENDTO, L_TFO3, L_NEXT);
		jeq(a, NR64_SENDMSG, L_TFO2, L_NEXT);
	}
	ret(a, SECCOMP_RET_ALLOW);

	/* sendto(fd, buf, len, flags, addr, addrlen): an address means an
	 * unconnected send; without one, only Fast Open matters */
	label(a, L_SENDTO);
	ld_abs(a, OFF_ARG_LO(4));
	jeq(a, 0, L_NEXT, L_TRACE);
	ld_abs(a, OFF_ARG_HI(4));
	jeq(a, 0, L_TFO3, L_TRACE);
	label(a, L_TFO3);
	ld_abs(a, OFF_ARG_LO(3));
	jset(a, MSG_FASTOPEN, L_TRACE, L_ALLOW);
	label(a, L_TFO2);
	ld_abs(a, OFF_ARG_LO(2));
	jset(a, MSG_FASTOPEN, L_TRACE, L_ALLOW);

	/* socket(domain, type, protocol): IPv4/IPv6 datagram or raw */
	label(a, L_SOCKET);
	ld_abs(a, OFF_ARG_LO(0));
	jeq(a, AF_INET, L_SOCKTYPE, L_NEXT);
	jeq(a, AF_INET6, L_SOCKTYPE, L_ALLOW);
	label(a, L_SOCKTYPE);
	ld_abs(a, OFF_ARG_LO(1));
	emit(a, BPF_ALU | BPF_AND | BPF_K, 0xf, L_NEXT, L_NEXT);
	jeq(a, SOCK_DGRAM, L_TRACE, L_NEXT);
	jeq(a, SOCK_RAW, L_TRACE, L_ALLOW);


	/* i386: connect, socketcall(SYS_CONNECT); egress for datagram
	 * sockets is not handled for 32-bit programs */
	label(a, L_I386);
	jeq(a, AUDIT_ARCH_I386, L_NEXT, L_ALLOW);
	ld_abs(a, OFF_NR);
	jeq(a, NR32_CONNECT, L_TRACE, L_NEXT);
	jeq(a, NR_IO_URING_SETUP, L_NOSYS, L_NEXT);
	if (need->so_error)
		jeq(a, NR32_GETSOCKOPT, L_SO_ERROR, L_NEXT);
	jeq(a, NR32_SOCKETCALL, L_NEXT, L_ALLOW);
	ld_abs(a, OFF_ARG_LO(0));
	jeq(a, SYS_CONNECT, L_TRACE, need->so_error ? L_NEXT : L_ALLOW);
	if (need->so_error) {
		/* socketcall's arguments are in memory: the tracer checks them */
		jeq(a, SYS_GETSOCKOPT, L_TRACE, L_ALLOW);
		/* getsockopt(fd, level, name, ...), either ABI: SOL_SOCKET, SO_ERROR */
		label(a, L_SO_ERROR);
		ld_abs(a, OFF_ARG_LO(1));
		jeq(a, SOL_SOCKET, L_NEXT, L_ALLOW);
		ld_abs(a, OFF_ARG_LO(2));
		jeq(a, SO_ERROR, L_TRACE, L_ALLOW);
	}

	/* shared exits last: classic BPF only jumps forward */
	label(a, L_TRACE);
	ret(a, SECCOMP_RET_TRACE);
	label(a, L_NOSYS);
	ret(a, SECCOMP_RET_ERRNO | ENOSYS);
	label(a, L_ALLOW);
	ret(a, SECCOMP_RET_ALLOW);
	resolve(a);
}

/* Built by the tracer before it forks, installed by the child. */
static struct bpf_asm filter_prog;

static int install_filter(void)
{
	struct sock_fprog prog = { .len = (unsigned short)filter_prog.n, .filter = filter_prog.insn };
	/* This filter routes, it does not sandbox: keep the kernel from
	 * turning on speculative-store-bypass mitigation for the program, which
	 * some kernels do for every seccomp-filtered task and which slows it. */
	unsigned long flags = SECCOMP_FILTER_FLAG_SPEC_ALLOW;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) == 0)
			return 0;
		if (errno == EINVAL && flags) {
			flags = 0; /* a kernel without the flag (before 4.17) */
		} else if (errno == EACCES) {
			/* Unprivileged: the kernel requires no_new_privs first. */
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	return -1;
}
