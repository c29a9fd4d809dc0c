/* Addresses, and which loopback listener a socket of each kind goes to. */
#include "../sockaddr.h"

#include <netinet/in.h>

#include "check.h"
#include "helpers.h"

TEST(loopback_and_unspecified_are_local)
{
	const char *local[] = { "127.0.0.1", "127.255.0.9", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0" };
	const char *remote[] = { "10.0.0.1", "192.0.2.1", "128.0.0.1", "2001:db8::1", "::ffff:192.0.2.1", "::2" };
	for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
		union sa a = addr_of(local[i], 80);
		if (!sa_is_local(&a))
			check_fail(__FILE__, __LINE__, "%s should be local", local[i]);
	}
	for (size_t i = 0; i < sizeof remote / sizeof *remote; i++) {
		union sa a = addr_of(remote[i], 80);
		if (sa_is_local(&a))
			check_fail(__FILE__, __LINE__, "%s should not be local", remote[i]);
	}
}

TEST(format_with_scope_and_port)
{
	union sa a = addr_of("192.0.2.1", 443);
	CHECK_STR(text_of(&a), "192.0.2.1 443");
	a = addr_of("fe80::1", 22);
	a.in6.sin6_scope_id = 3;
	CHECK_STR(text_of(&a), "fe80::1%3 22");
	a = addr_of("::ffff:192.0.2.1", 80);
	a.in6.sin6_scope_id = 3; /* no scope for a v4-mapped address */
	CHECK_STR(text_of(&a), "::ffff:192.0.2.1 80");
}

TEST(v4_mapped_counts_as_v4)
{
	union sa a = addr_of("::ffff:192.0.2.1", 80), b = addr_of("2001:db8::1", 80), c = addr_of("192.0.2.1", 80);
	CHECK(sa_is_v4(&a) && sa_is_v4mapped(&a));
	CHECK(!sa_is_v4(&b) && !sa_is_v4mapped(&b));
	CHECK(sa_is_v4(&c) && !sa_is_v4mapped(&c));
	CHECK_INT(sa_len(&c), sizeof(struct sockaddr_in));
	CHECK_INT(sa_len(&b), sizeof(struct sockaddr_in6));
}

/* Where proxy_target sends a TCP socket of `domain` (v6only) bound to
 * `local` and connecting to `dst`, with listeners at 4000 (IPv4) and
 * `port6` (IPv6): "addr port", "leave" or "no v6". */
static const char *target(int domain, int v6only, const char *local, const char *dst, uint16_t port6)
{
	struct sockinfo si = { .domain = domain, .type = SOCK_STREAM, .protocol = IPPROTO_TCP, .state = -1, .v6only = v6only };
	union sa l = addr_of(local, 0), d = addr_of(dst, 443), to;
	switch (proxy_target(&si, &d, &l, 4000, port6, &to)) {
	case TARGET_OK:
		return text_of(&to);
	case TARGET_LEAVE:
		return "leave";
	case TARGET_NO_V6:
		return "no v6";
	}
	return "?";
}

TEST(proxy_target_ipv4_socket_goes_to_ipv4_listener)
{
	CHECK_STR(target(AF_INET, 0, "0.0.0.0", "192.0.2.1", 6000), "127.0.0.1 4000");
	CHECK_STR(target(AF_INET, 0, "192.0.2.5", "192.0.2.1", 6000), "127.0.0.1 4000");
}

TEST(proxy_target_dual_stack_socket_goes_to_ipv4_listener_mapped)
{
	/* an IPv6 destination too: binding to ::1 would make it IPv6-only */
	CHECK_STR(target(AF_INET6, 0, "::", "2001:db8::1", 6000), "::ffff:127.0.0.1 4000");
	CHECK_STR(target(AF_INET6, 0, "::", "::ffff:192.0.2.1", 6000), "::ffff:127.0.0.1 4000");
	/* bound to a v4-mapped address: stays mapped */
	CHECK_STR(target(AF_INET6, 0, "::ffff:192.0.2.5", "::ffff:198.51.100.1", 6000), "::ffff:127.0.0.1 4000");
}

TEST(proxy_target_ipv6_only_socket_goes_to_ipv6_listener)
{
	CHECK_STR(target(AF_INET6, 1, "::", "2001:db8::1", 6000), "::1 6000");
	/* a dual-stack socket bound to an IPv6 address is IPv6 from now on */
	CHECK_STR(target(AF_INET6, 0, "2001:db8::5", "2001:db8::1", 6000), "::1 6000");
	CHECK_STR(target(AF_INET6, 1, "::", "2001:db8::1", 0), "no v6");
}

TEST(proxy_target_leaves_what_the_kernel_refuses)
{
	/* v4 and v6 do not mix: the kernel answers ENETUNREACH itself */
	CHECK_STR(target(AF_INET6, 1, "::", "::ffff:192.0.2.1", 6000), "leave");
	CHECK_STR(target(AF_INET6, 0, "::ffff:192.0.2.5", "2001:db8::1", 6000), "leave");
	CHECK_STR(target(AF_INET6, 0, "2001:db8::5", "::ffff:192.0.2.1", 6000), "leave");
}

TEST(loopback_for_black_hole_and_refusal_ports)
{
	struct sockinfo v4 = { .domain = AF_INET }, dual = { .domain = AF_INET6 }, v6only = { .domain = AF_INET6, .v6only = 1 };
	union sa to, d4 = addr_of("192.0.2.1", 80), d6 = addr_of("2001:db8::1", 80), dm = addr_of("::ffff:192.0.2.1", 80);
	loopback_for(&to, &v4, &d4, 4000, 6000);
	CHECK_STR(text_of(&to), "127.0.0.1 4000");
	loopback_for(&to, &dual, &d6, 4000, 6000);
	CHECK_STR(text_of(&to), "::ffff:127.0.0.1 4000");
	loopback_for(&to, &v6only, &d6, 4000, 6000);
	CHECK_STR(text_of(&to), "::1 6000");
	loopback_for(&to, &v6only, &dm, 4000, 6000);
	CHECK_STR(text_of(&to), "::ffff:127.0.0.1 4000");
	loopback_for(&to, &v6only, &d6, 4000, 0);
	CHECK_INT(sa_port(&to), 0); /* none */
}
