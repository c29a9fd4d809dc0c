#define _GNU_SOURCE
#include "filter.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/arch.h"
#include "util.h"

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bpf_ld_arg assumes a little-endian seccomp_data"
#endif

void bpf_emit(struct bpf_asm *a, uint16_t code, uint32_t k, int jt, int jf)
{
	if (a->n >= FILTER_MAX_INSNS)
		die(2, "internal error: seccomp filter too long");
	a->insn[a->n] = (struct sock_filter){ code, 0, 0, k };
	a->jt[a->n] = jt;
	a->jf[a->n] = jf;
	a->n++;
}

void bpf_label(struct bpf_asm *a, enum label l)
{
	a->at[l] = a->n;
}

static void ld_abs(struct bpf_asm *a, uint32_t off)
{
	bpf_emit(a, BPF_LD | BPF_W | BPF_ABS, off, L_NEXT, L_NEXT);
}

void bpf_ld_nr(struct bpf_asm *a)
{
	ld_abs(a, offsetof(struct seccomp_data, nr));
}

void bpf_ld_arch(struct bpf_asm *a)
{
	ld_abs(a, offsetof(struct seccomp_data, arch));
}

void bpf_ld_arg(struct bpf_asm *a, int i, int hi)
{
	ld_abs(a, (uint32_t)(offsetof(struct seccomp_data, args) + (size_t)i * sizeof(uint64_t) + (hi ? 4 : 0)));
}

void bpf_jeq(struct bpf_asm *a, uint32_t k, int jt, int jf)
{
	bpf_emit(a, BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
}

void bpf_jset(struct bpf_asm *a, uint32_t k, int jt, int jf)
{
	bpf_emit(a, BPF_JMP | BPF_JSET | BPF_K, k, jt, jf);
}

void bpf_ret(struct bpf_asm *a, uint32_t v)
{
	bpf_emit(a, BPF_RET | BPF_K, v, L_NEXT, L_NEXT);
}

static void resolve(struct bpf_asm *a)
{
	for (int i = 0; i < a->n; i++) {
		if (BPF_CLASS(a->insn[i].code) != BPF_JMP)
			continue;
		int t = a->jt[i] == L_NEXT ? i + 1 : a->at[a->jt[i]];
		int f = a->jf[i] == L_NEXT ? i + 1 : a->at[a->jf[i]];
		if (t <= i || f <= i || t - i - 1 > 255 || f - i - 1 > 255)
			die(2, "internal error: bad seccomp filter jump at %d (%d, %d)", i, t, f);
		a->insn[i].jt = (uint8_t)(t - i - 1);
		a->insn[i].jf = (uint8_t)(f - i - 1);
	}
}

/* The arch-neutral checks of arguments the arch part jumps to. */
static void emit_argument_checks(struct bpf_asm *a, const struct filter_needs *need)
{
	/* sendto(fd, buf, len, flags, addr, addrlen): an address means an
	 * unconnected send; without one, only Fast Open matters */
	bpf_label(a, L_SENDTO);
	bpf_ld_arg(a, 4, 0);
	bpf_jeq(a, 0, L_NEXT, L_TRACE);
	bpf_ld_arg(a, 4, 1);
	bpf_jeq(a, 0, L_TFO3, L_TRACE);
	bpf_label(a, L_TFO3);
	bpf_ld_arg(a, 3, 0);
	bpf_jset(a, MSG_FASTOPEN, L_TRACE, L_ALLOW);
	bpf_label(a, L_TFO2);
	bpf_ld_arg(a, 2, 0);
	bpf_jset(a, MSG_FASTOPEN, L_TRACE, L_ALLOW);

	/* socket(domain, type, protocol): IPv4/IPv6 datagram or raw */
	bpf_label(a, L_SOCKET);
	bpf_ld_arg(a, 0, 0);
	bpf_jeq(a, AF_INET, L_SOCKTYPE, L_NEXT);
	bpf_jeq(a, AF_INET6, L_SOCKTYPE, L_ALLOW);
	bpf_label(a, L_SOCKTYPE);
	bpf_ld_arg(a, 1, 0);
	bpf_emit(a, BPF_ALU | BPF_AND | BPF_K, 0xf, L_NEXT, L_NEXT);
	bpf_jeq(a, SOCK_DGRAM, L_TRACE, L_NEXT);
	bpf_jeq(a, SOCK_RAW, L_TRACE, L_ALLOW);

	if (need->dns_receives) {
		/* recvfrom(fd, buf, len, flags, src, srclen): a source pointer
		 * means the program reads where an answer came from */
		bpf_label(a, L_RECVFROM);
		bpf_ld_arg(a, 4, 0);
		bpf_jeq(a, 0, L_NEXT, L_TRACE);
		bpf_ld_arg(a, 4, 1);
		bpf_jeq(a, 0, L_ALLOW, L_TRACE);
	}

	if (need->so_error) {
		/* getsockopt(fd, level, name, ...), any ABI: SOL_SOCKET, SO_ERROR */
		bpf_label(a, L_SO_ERROR);
		bpf_ld_arg(a, 1, 0);
		bpf_jeq(a, SOL_SOCKET, L_NEXT, L_ALLOW);
		bpf_ld_arg(a, 2, 0);
		bpf_jeq(a, SO_ERROR, L_TRACE, L_ALLOW);
	}
}

void filter_build(struct bpf_asm *a, const struct filter_needs *need)
{
	memset(a, 0, sizeof *a);
	arch_filter(a, need);
	emit_argument_checks(a, need);
	/* shared exits last: classic BPF only jumps forward */
	bpf_label(a, L_TRACE);
	bpf_ret(a, SECCOMP_RET_TRACE);
	bpf_label(a, L_NOSYS);
	bpf_ret(a, SECCOMP_RET_ERRNO | ENOSYS);
	bpf_label(a, L_ALLOW);
	bpf_ret(a, SECCOMP_RET_ALLOW);
	resolve(a);
}

int filter_install(const struct bpf_asm *a)
{
	struct sock_fprog prog = { .len = (unsigned short)a->n, .filter = (struct sock_filter *)a->insn };
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
