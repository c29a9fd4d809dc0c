/* The seccomp filter installed in the program: a tiny classic-BPF
 * assembler, the arch-neutral part of the filter, and its installation.
 * The arch-specific part (audit arch checks, syscall numbers) comes from
 * arch_filter (arch/arch.h).
 *
 * Only the calls graft must see stop in the tracer; everything else runs at
 * native speed. Which calls depends on the egress options (struct egress):
 *   always        connect; sendto/sendmsg with MSG_FASTOPEN (TCP Fast
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
 *   redirects     getpeername and getsockname (all ABIs), to show a
 *                 redirected socket its destination and source (names.h):
 *                 in runs with a redirect rule or a fault that redirects,
 *                 or with DNS capture (the datagram sockets pointed at
 *                 graft's DNS server)
 *   DNS capture   (a dns table message) recvfrom with a source pointer,
 *                 recvmsg, recvmmsg: an answer's source becomes the server
 *                 the program asked (dns.h); x86-64 all three, x32 and
 *                 i386 (direct and socketcall) recvfrom only
 * io_uring_setup fails with ENOSYS, as under many container runtimes:
 * IORING_OP_CONNECT would bypass connect(2); programs fall back. */
#ifndef GRAFT_FILTER_H
#define GRAFT_FILTER_H

#include <linux/filter.h>
#include <stdint.h>

struct filter_needs {
	int socket_create;  /* trap socket() for datagram/raw sockets */
	int datagram_sends; /* trap unconnected sends */
	int binds;          /* trap bind() */
	int so_error;       /* trap getsockopt(SOL_SOCKET, SO_ERROR) */
	int names;          /* trap getpeername and getsockname */
	int dns_receives;   /* trap recvfrom with a source pointer, recvmsg, recvmmsg */
};

#define FILTER_MAX_INSNS 128

/* Jump targets, resolved when the program is done. The arch part jumps to
 * the shared ones (L_TRACE ... L_SO_ERROR) and may use L_ARCH0..3 inside. */
enum label {
	L_NEXT = -1,
	L_TRACE,    /* stop in the tracer */
	L_NOSYS,    /* fail with ENOSYS */
	L_ALLOW,    /* run */
	L_SENDTO,   /* sendto: trap with an address or MSG_FASTOPEN */
	L_TFO3,     /* trap when argument 3 has MSG_FASTOPEN (sendto) */
	L_TFO2,     /* ... argument 2 (sendmsg) */
	L_SOCKET,   /* socket(): trap IPv4/IPv6 datagram and raw */
	L_SOCKTYPE, /* (inside L_SOCKET) */
	L_SO_ERROR, /* getsockopt: trap (SOL_SOCKET, SO_ERROR); needs.so_error only */
	L_RECVFROM, /* recvfrom: trap with a source pointer; needs.dns_receives only */
	L_ARCH0,
	L_ARCH1,
	L_ARCH2,
	L_ARCH3,
	L_COUNT
};

struct bpf_asm {
	struct sock_filter insn[FILTER_MAX_INSNS];
	int jt[FILTER_MAX_INSNS], jf[FILTER_MAX_INSNS];
	int at[L_COUNT];
	int n;
};

void bpf_emit(struct bpf_asm *a, uint16_t code, uint32_t k, int jt, int jf);
void bpf_label(struct bpf_asm *a, enum label l);
void bpf_ld_nr(struct bpf_asm *a);
void bpf_ld_arch(struct bpf_asm *a);
/* The low (hi 0) or high (hi 1) 32 bits of syscall argument i. */
void bpf_ld_arg(struct bpf_asm *a, int i, int hi);
void bpf_jeq(struct bpf_asm *a, uint32_t k, int jt, int jf);
void bpf_jset(struct bpf_asm *a, uint32_t k, int jt, int jf);
void bpf_ret(struct bpf_asm *a, uint32_t v);

/* The whole filter for these needs. */
void filter_build(struct bpf_asm *a, const struct filter_needs *need);

/* Installs it in the calling process (the child, before exec). Returns 0,
 * or -1 with errno set. */
int filter_install(const struct bpf_asm *a);

#endif
