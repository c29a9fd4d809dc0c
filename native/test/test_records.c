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
	size_t n = record_redirect(line, sizeof line, &who, &dst, &peer, 40000, 2);
	CHECK_STR(line, "C 100 101 192.0.2.1 443 127.0.0.1 40000 2 /usr/bin/curl\n");
	CHECK_INT(n, strlen(line));
	dst = addr_of("2001:db8::1", 80);
	peer = addr_of("::ffff:127.0.0.1", 0);
	record_redirect(line, sizeof line, &who, &dst, &peer, 40001, 0);
	CHECK_STR(line, "C 100 101 2001:db8::1 80 ::ffff:127.0.0.1 40001 0 /usr/bin/curl\n");
	/* must arrive whole */
	CHECK_INT(record_redirect(line, 20, &who, &dst, &peer, 40001, 0), 0);
}

TEST(wait_record)
{
	char line[RECORD_MAX];
	union sa dst = addr_of("192.0.2.1", 443), peer = addr_of("127.0.0.1", 0);
	record_wait(line, sizeof line, &who, &dst, &peer, 40000, 1, 39999, 3, 400);
	CHECK_STR(line, "W 100 101 192.0.2.1 443 127.0.0.1 40000 1 39999 3 400 /usr/bin/curl\n");
	CHECK_INT(record_wait(line, 30, &who, &dst, &peer, 40000, 1, 39999, 3, 400), 0);
}

TEST(inplace_held_failed_diag_records)
{
	char line[RECORD_MAX];
	union sa dst = addr_of("198.51.100.7", 8080);
	record_inplace(line, sizeof line, &who, &dst, 4);
	CHECK_STR(line, "I 100 101 198.51.100.7 8080 4 /usr/bin/curl\n");
	record_held(line, sizeof line, &who, &dst, 0);
	CHECK_STR(line, "H 100 101 198.51.100.7 8080 0 /usr/bin/curl\n");
	record_failed(line, sizeof line, &who, &dst, ECONNREFUSED, -1, "fault 2");
	CHECK_STR(line, "F 100 101 198.51.100.7 8080 ECONNREFUSED -1 /usr/bin/curl fault 2\n");
	record_failed(line, sizeof line, &who, &dst, ETIMEDOUT, 3, "refused by rule");
	CHECK_STR(line, "F 100 101 198.51.100.7 8080 ETIMEDOUT 3 /usr/bin/curl refused by rule\n");
	record_diag(line, sizeof line, 100, 101, "cannot mark a new datagram socket: Operation not permitted");
	CHECK_STR(line, "D 100 101 cannot mark a new datagram socket: Operation not permitted\n");
}

TEST(logged_records_are_cut_not_dropped)
{
	char line[24];
	union sa dst = addr_of("198.51.100.7", 8080);
	size_t n = record_inplace(line, sizeof line, &who, &dst, 4);
	CHECK_INT(n, sizeof line - 1);
	CHECK_STR(line, "I 100 101 198.51.100.7\n");
}

TEST(errno_names)
{
	CHECK_STR(errno_name(ENETUNREACH), "ENETUNREACH");
	CHECK_STR(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
	CHECK_STR(errno_name(100000), "EIO");
}

TEST(exe_is_percent_encoded)
{
	char out[64];
	const char raw[] = "/tmp/my prog%\x01\x7f";
	record_encode_exe(raw, sizeof raw - 1, out, sizeof out);
	CHECK_STR(out, "/tmp/my%20prog%25%01%7F");
	record_encode_exe("/usr/bin/ok", 11, out, 8); /* stops rather than overflow */
	CHECK_STR(out, "/usr");
}
