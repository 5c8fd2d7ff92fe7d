/* libFuzzer: the rules parser never crashes, and what loads survives the
 * round trip: parse, dump (-T's code), parse again, dump again: the same
 * text; and the matcher runs on what loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "rules_match.h"

static char *dump(const struct conf *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	conf_dump(c, f);
	fclose(f);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_diags d;
	struct conf *c = conf_parse_buffer("fuzz.conf", (const char *)data, size, &d);

	conf_diags_free(&d);
	if (!c)
		return 0;
	size_t l1, l2;
	char *t1 = dump(c, &l1);
	struct conf *c2 = conf_parse_buffer("fuzz.conf", t1, l1, &d);
	conf_diags_free(&d);
	if (!c2)
		abort();                 /* the canonical form must load */
	char *t2 = dump(c2, &l2);
	if (l1 != l2 || memcmp(t1, t2, l1))
		abort();                 /* and be a fixpoint */
	struct sockaddr_storage cl, dst;
	addr_parse_literal("192.0.2.1", &cl);
	addr_parse_literal("198.51.100.1", &dst);
	addr_set_port(&dst, 443);
	struct facts f = { .client = &cl, .local = &cl, .client_port_known = true,
			   .local_port_known = true, .version = 5,
			   .command = CMD_CONNECT, .dest = &dst, .dest_name = "a.example.com",
			   .dest_port = 443, .dest_port_known = true };
	struct verdict v;
	rules_decide_client(c, &f, &v);
	rules_decide_socks(c, &f, &v);
	free(t1);
	free(t2);
	conf_free(c);
	conf_free(c2);
	return 0;
}
