/* The exact line of each record kind (records.h). */
#include "../records.h"

#include <errno.h>
#include <string.h>

#include "check.h"
#include "helpers.h"

static const struct rec_who who = { 100, 101, "/usr/bin/curl" };

TEST(redirect_record)
{
	char line[RECORD_MAX];
	union sa dst = addr_of("192.0.2.1", 443), peer = addr_of("127.0.0.1", 0);
	struct handover_record h = { .id = 7, .peer_port = 40000, .hole_port = 39999, .rule = 2, .fault = -1 };
	size_t n = record_redirect(line, sizeof line, &who, &dst, &peer, &h);
	CHECK_STR(line, "C 100 101 7 192.0.2.1 443 127.0.0.1 40000 39999 2 - 0 /usr/bin/curl\n");
	CHECK_INT(n, strlen(line));
	dst = addr_of("2001:db8::1", 80);
	peer = addr_of("::ffff:127.0.0.1", 0);
	h = (struct handover_record){ .id = 8, .peer_port = 40001, .hole_port = 39999, .rule = 0, .fault = 3, .delay_ms = 400 };
	record_redirect(line, sizeof line, &who, &dst, &peer, &h);
	CHECK_STR(line, "C 100 101 8 2001:db8::1 80 ::ffff:127.0.0.1 40001 39999 0 3 400 /usr/bin/curl\n");
	/* must arrive whole */
	CHECK_INT(record_redirect(line, 20, &who, &dst, &peer, &h), 0);
}

TEST(inplace_held_failed_diag_records)
{
	char line[RECORD_MAX];
	union sa dst = addr_of("198.51.100.7", 8080);
	record_inplace(line, sizeof line, &who, &dst, 4);
	CHECK_STR(line, "I 100 101 198.51.100.7 8080 4 /usr/bin/curl\n");
	record_held(line, sizeof line, &who, &dst, 0);
	CHECK_STR(line, "H 100 101 198.51.100.7 8080 0 /usr/bin/curl\n");
	record_failed(line, sizeof line, &who, &dst, ECONNREFUSED, -1, 2, "connect fault");
	CHECK_STR(line, "F 100 101 198.51.100.7 8080 ECONNREFUSED -1 2 /usr/bin/curl connect%20fault\n");
	record_failed(line, sizeof line, &who, &dst, ETIMEDOUT, 3, -1, "refused by rule");
	CHECK_STR(line, "F 100 101 198.51.100.7 8080 ETIMEDOUT 3 - /usr/bin/curl refused%20by%20rule\n");
	record_failed(line, sizeof line, &who, &dst, 100000, 3, -1, "x");
	CHECK_STR(line, "F 100 101 198.51.100.7 8080 EIO 3 - /usr/bin/curl x\n"); /* an errno without a name */
	record_diag(line, sizeof line, 100, 101, "cannot mark a new datagram socket: Operation not permitted");
	CHECK_STR(line, "D 100 101 cannot%20mark%20a%20new%20datagram%20socket:%20Operation%20not%20permitted\n");
}

TEST(a_logged_record_too_long_gets_a_short_executable)
{
	char line[RECORD_MAX], exe[1200];
	memset(exe, ' ', sizeof exe - 1); /* each space takes three bytes encoded */
	exe[sizeof exe - 1] = 0;
	struct rec_who long_exe = { 100, 101, exe };
	union sa dst = addr_of("198.51.100.7", 8080);
	size_t n = record_inplace(line, sizeof line, &long_exe, &dst, 4);
	CHECK(n > 0 && n < sizeof line);
	CHECK_INT(strncmp(line, "I 100 101 198.51.100.7 8080 4 %20", 33), 0);
	/* a redirect must arrive whole: none is made that does not fit */
	union sa peer = addr_of("127.0.0.1", 0);
	struct handover_record h = { .id = 1, .peer_port = 40000, .hole_port = 39999, .rule = 2, .fault = -1 };
	CHECK_INT(record_redirect(line, 40, &who, &dst, &peer, &h), 0);
}

TEST(exe_is_percent_encoded)
{
	char line[RECORD_MAX];
	struct rec_who odd = { 1, 2, "/tmp/my prog%\x01\x7f-x" };
	union sa dst = addr_of("192.0.2.1", 80);
	record_inplace(line, sizeof line, &odd, &dst, 0);
	CHECK_STR(line, "I 1 2 192.0.2.1 80 0 /tmp/my%20prog%25%01%7F%2Dx\n");
}

TEST(dns_socket_record)
{
	char line[RECORD_MAX];
	union sa dst = addr_of("192.0.2.53", 53);
	size_t n = record_dns_socket(line, sizeof line, &who, 0, 40123, &dst);
	CHECK_STR(line, "Q 100 101 ip4 40123 192.0.2.53 53 /usr/bin/curl\n");
	CHECK_INT(n, strlen(line));
	dst = addr_of("::ffff:192.0.2.53", 53);
	record_dns_socket(line, sizeof line, &who, 0, 40124, &dst);
	CHECK_STR(line, "Q 100 101 ip4 40124 ::ffff:192.0.2.53 53 /usr/bin/curl\n");
	dst = addr_of("2001:db8::53", 5353);
	record_dns_socket(line, sizeof line, &who, 1, 1, &dst);
	CHECK_STR(line, "Q 100 101 ip6 1 2001:db8::53 5353 /usr/bin/curl\n");
}
