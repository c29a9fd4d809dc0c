/* The table of redirected sockets (peers.h) and how an answer is written
 * back to getpeername/getsockname. */
#include "../peers.h"

#include <errno.h>

#include "check.h"
#include "helpers.h"

TEST(peers_remember_and_find)
{
	struct peers p = { 0 };
	union sa local = addr_of("127.0.0.1", 40001), dst = addr_of("192.0.2.7", 443), none = { 0 };
	CHECK(peers_find(&p, &local, 11) == NULL); /* empty, not even allocated */
	CHECK_INT(peers_put(&p, &local, 11, &dst, 3, &none), 0);
	const struct peer *e = peers_find(&p, &local, 11);
	CHECK(e != NULL);
	if (e) {
		CHECK_STR(text_of(&e->dst), "192.0.2.7 443");
		CHECK_INT(e->rule, 3);
		CHECK_INT(e->bind.sa.sa_family, 0);
	}
	CHECK(peers_find(&p, &local, 12) == NULL); /* another socket on the port since */
	union sa other = addr_of("127.0.0.1", 40002), v6 = addr_of("::1", 40001), mapped = addr_of("::ffff:127.0.0.1", 40001);
	CHECK(peers_find(&p, &other, 11) == NULL);
	CHECK(peers_find(&p, &v6, 11) == NULL);
	CHECK(peers_find(&p, &mapped, 11) == NULL);
	peers_free(&p);
}

TEST(peers_later_redirect_replaces)
{
	struct peers p = { 0 };
	union sa local = addr_of("::ffff:127.0.0.1", 40001), none = { 0 };
	union sa d1 = addr_of("::ffff:192.0.2.7", 80), d2 = addr_of("2001:db8::9", 8080);
	peers_put(&p, &local, 11, &d1, 0, &none);
	peers_put(&p, &local, 11, &d2, 1, &none); /* a reconnect after AF_UNSPEC */
	const struct peer *e = peers_find(&p, &local, 11);
	CHECK(e && e->rule == 1);
	if (e)
		CHECK_STR(text_of(&e->dst), "2001:db8::9 8080");
	peers_put(&p, &local, 12, &d1, 2, &none); /* a new socket on the port */
	CHECK(peers_find(&p, &local, 11) == NULL);
	CHECK(peers_find(&p, &local, 12) != NULL);
	CHECK_INT(p.count, 1);
	peers_free(&p);
}

TEST(peers_own_bind_kept_loopback_and_wildcard_not)
{
	struct peers p = { 0 };
	union sa local = addr_of("10.0.0.2", 5555), dst = addr_of("192.0.2.7", 443);
	union sa own = addr_of("10.0.0.2", 5555), lo = addr_of("127.0.0.1", 5555), any = addr_of("0.0.0.0", 5555);
	peers_put(&p, &local, 1, &dst, 0, &own);
	const struct peer *e = peers_find(&p, &local, 1);
	CHECK(e && e->bind.sa.sa_family == AF_INET);
	if (e)
		CHECK_STR(text_of(&e->bind), "10.0.0.2 0");
	local = addr_of("127.0.0.1", 5555);
	peers_put(&p, &local, 2, &dst, 0, &lo);
	e = peers_find(&p, &local, 2);
	CHECK(e && e->bind.sa.sa_family == 0);
	local = addr_of("127.0.0.1", 5556);
	peers_put(&p, &local, 3, &dst, 0, &any);
	e = peers_find(&p, &local, 3);
	CHECK(e && e->bind.sa.sa_family == 0);
	peers_free(&p);
}

/* More redirects than the table holds: it stays within PEERS_SLOTS, the
 * newest are all found, and an evicted entry is simply not found. */
TEST(peers_bounded)
{
	struct peers p = { 0 };
	union sa dst = addr_of("192.0.2.7", 443), none = { 0 };
	int total = PEERS_SLOTS * 3;
	for (int i = 0; i < total; i++) {
		union sa local = addr_of(i % 2 ? "127.0.0.1" : "::1", 1024 + (unsigned)i % 60000);
		if (i >= 60000)
			local = addr_of("::ffff:127.0.0.1", 1024 + (unsigned)i % 60000);
		CHECK_INT(peers_put(&p, &local, (ino_t)i + 1, &dst, 0, &none), 0);
	}
	CHECK(p.count <= PEERS_SLOTS);
	int newest = 0, found = 0;
	for (int i = 0; i < total; i++) {
		union sa local = addr_of(i % 2 ? "127.0.0.1" : "::1", 1024 + (unsigned)i % 60000);
		if (i >= 60000)
			local = addr_of("::ffff:127.0.0.1", 1024 + (unsigned)i % 60000);
		int hit = peers_find(&p, &local, (ino_t)i + 1) != NULL;
		found += hit;
		if (i >= total - PEERS_PROBE)
			newest += hit;
	}
	CHECK_INT(newest, PEERS_PROBE);
	CHECK(found <= PEERS_SLOTS);
	CHECK(found > PEERS_SLOTS / 2); /* the probe window keeps most slots in use */
	peers_free(&p);
}

TEST(peers_graft_ports)
{
	const uint16_t ports[] = { 4000, 0, 4002, 4003 };
	union sa a = addr_of("127.0.0.1", 4000);
	CHECK(peers_is_graft(&a, ports, 4));
	a = addr_of("::1", 4003);
	CHECK(peers_is_graft(&a, ports, 4));
	a = addr_of("::ffff:127.0.0.1", 4002);
	CHECK(peers_is_graft(&a, ports, 4));
	a = addr_of("127.0.0.1", 0); /* a 0 port is no listener */
	CHECK(!peers_is_graft(&a, ports, 4));
	a = addr_of("127.0.0.2", 4000);
	CHECK(!peers_is_graft(&a, ports, 4));
	a = addr_of("192.0.2.1", 4000);
	CHECK(!peers_is_graft(&a, ports, 4));
	a = addr_of("127.0.0.1", 4001);
	CHECK(!peers_is_graft(&a, ports, 4));
}

TEST(peers_reported_form)
{
	union sa given = addr_of("fe80::1", 22), out;
	given.in6.sin6_scope_id = 3;
	given.in6.sin6_flowinfo = htonl(0x12345);
	peers_as_reported(&given, &out);
	CHECK_INT(out.in6.sin6_scope_id, 3);
	CHECK_INT(out.in6.sin6_flowinfo, 0);
	given = addr_of("2001:db8::1", 22);
	given.in6.sin6_scope_id = 3; /* not link-local: the kernel reports 0 */
	peers_as_reported(&given, &out);
	CHECK_INT(out.in6.sin6_scope_id, 0);
	given = addr_of("::ffff:192.0.2.1", 80);
	peers_as_reported(&given, &out);
	CHECK_INT(out.sa.sa_family, AF_INET6);
	CHECK_STR(text_of(&out), "::ffff:192.0.2.1 80");
	given = addr_of("192.0.2.1", 80);
	memset(given.in4.sin_zero, 0xee, sizeof given.in4.sin_zero);
	peers_as_reported(&given, &out);
	CHECK_INT(out.in4.sin_zero[3], 0);
	peers_in_family(&given, AF_INET6, &out);
	CHECK_STR(text_of(&out), "::ffff:192.0.2.1 80");
	peers_in_family(&given, AF_INET, &out);
	CHECK_STR(text_of(&out), "192.0.2.1 80");
}

/* The kernel's move_addr_to_user: min(length, actual) bytes, the length
 * set to the actual size; EINVAL for a negative length; EFAULT. */
TEST(peers_copy_length)
{
	uint32_t copy;
	CHECK_INT(peers_copy_len(1, 128, 16, &copy), 0);
	CHECK_INT(copy, 16);
	CHECK_INT(peers_copy_len(1, 8, 28, &copy), 0); /* truncated */
	CHECK_INT(copy, 8);
	CHECK_INT(peers_copy_len(1, 0, 28, &copy), 0);
	CHECK_INT(copy, 0);
	CHECK_INT(peers_copy_len(1, -1, 16, &copy), -EINVAL);
	CHECK_INT(peers_copy_len(0, 16, 16, &copy), -EFAULT);
}
