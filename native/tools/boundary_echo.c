/* Reads boundary lines on stdin and writes each back as the tracer's own
 * decoder and encoder see it: decoded, then encoded again; "! WHY" for a
 * line either refuses. The round-trip test drives it from TypeScript
 * (test/unit/boundary.test.ts), so both sides are checked against each
 * other across the real boundary. */
#include <stdio.h>
#include <string.h>

#include "../boundary.h"

int main(void)
{
	static char line[BND_LINE_MAX + 2];
	while (fgets(line, sizeof line, stdin)) {
		union bnd_any msg;
		const char *why = "";
		int kind = bnd_decode(line, strlen(line), &msg, sizeof msg, &why);
		char out[BND_LINE_MAX];
		if (kind < 0)
			printf("! %s\n", why);
		else if (bnd_encode((enum bnd_kind)kind, &msg, out, sizeof out) == 0)
			printf("! cannot encode\n");
		else
			fputs(out, stdout);
		fflush(stdout);
	}
	return 0;
}
