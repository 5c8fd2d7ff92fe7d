/* Rules engine speed: load + decide on a generated N-rule file, the work
 * every connection does before its first byte is relayed.
 * usage: rules_load [N rules] [rounds] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "rules_match.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 50;
	size_t cap = (size_t)n * 128 + 1024, len = 0;
	char *text = malloc(cap);

	len += (size_t)snprintf(text + len, cap - len,
		"socksmethod: none\nclient pass { from: 127.0.0.0/8 to: 0/0 }\n");
	/* worst case: the request matches only the last rule */
	for (int i = 0; i < n - 1; i++)
		len += (size_t)snprintf(text + len, cap - len,
			"socks block { from: 10.%d.%d.0/24 to: 0/0 port = %d "
			"log: error }\n", (i >> 8) & 255, i & 255, 1 + i % 65000);
	len += (size_t)snprintf(text + len, cap - len,
		"socks pass { from: 0/0 to: 0/0 log: connect }\n");

	struct sockaddr_storage cl, dst;
	addr_parse_literal("127.0.0.1", &cl);
	addr_parse_literal("192.0.2.1", &dst);
	addr_set_port(&dst, 443);
	double *t = calloc((size_t)rounds, sizeof(double));
	for (int r = 0; r < rounds; r++) {
		struct conf_diags d;
		double t0 = now();
		struct conf *c = conf_parse_buffer("bench.conf", text, len, &d);
		struct facts f = { .client = &cl, .local = &cl,
				   .client_port_known = true,
				   .local_port_known = true, .version = 5,
				   .command = CMD_CONNECT, .dest = &dst,
				   .dest_port = 443, .dest_port_known = true };
		struct verdict v;
		if (!c || rules_decide_client(c, &f, &v) != MATCH_YES || !v.pass ||
		    rules_decide_socks(c, &f, &v) != MATCH_YES || !v.pass) {
			fprintf(stderr, "bench: unexpected decision\n");
			return 1;
		}
		t[r] = now() - t0;
		conf_free(c);
		conf_diags_free(&d);
	}
	qsort(t, (size_t)rounds, sizeof(double), cmp);
	printf("rules=%d bytes=%zu rounds=%d load+decide median=%.3f ms "
	       "min=%.3f ms max=%.3f ms\n", n, len, rounds, t[rounds / 2] * 1e3,
	       t[0] * 1e3, t[rounds - 1] * 1e3);
	free(t);
	free(text);
	return 0;
}
