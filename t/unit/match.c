/* Unit tests: the matcher's decisions, including the unsafe-in-Dante cases. */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "rules_match.h"
#include "tap.h"

static const char rules[] =
	"socksmethod: none username pam.username gssapi\n"   /* 1 */
	"client block { from: 127.0.0.2/32 to: 0/0 }\n"        /* 2 */
	"client pass { from: 127.0.0.0/8 to: 127.0.0.1/32 port = 1080 }\n" /* 3 */
	"client pass { from: ::1/128 to: 0/0 socksmethod: username }\n" /* 4 */
	"socks block { from: 0/0 to: .example.com }\n"          /* 5 */
	"socks block { from: 0/0 to: 127.0.0.0/8 port = 9 }\n"  /* 6 */
	"socks pass { from: 0/0 to: 10.0.0.0/8 socksmethod: username pam.username\n"
	"  user: alice }\n"                                     /* 7-8 */
	"socks pass { from: 0/0 to: 10.0.0.0/8 socksmethod: username group: staff }\n" /* 9 */
	"socks pass { from: 0/0 to: 192.0.2.0/24 port 1000-2000 command: connect }\n" /* 10 */
	"socks pass { from: 0/0 to: ::/0 }\n"                    /* 11 */
	"socks pass { from: 0/0 to: 127.0.0.0/8 proxyprotocol: socks_v5 }\n"; /* 12 */

static struct sockaddr_storage lit(const char *s, uint16_t port)
{
	struct sockaddr_storage ss;
	addr_parse_literal(s, &ss);
	addr_set_port(&ss, port);
	return ss;
}

struct scase {
	const char *name;
	const char *dest, *dname;
	uint16_t port;
	enum method method;
	const char *user;
	int version;
	unsigned cmd;
	int pass;
	unsigned line;   /* 0 = default */
};

static void socks_cases(const struct conf *c)
{
	static const char *const staff[] = { "staff" };
	const struct scase t[] = {
		{ "domain blocks below it", "192.0.2.1", "www.example.com", 1500,
		  METHOD_NONE, NULL, 5, CMD_CONNECT, 0, 5 },
		{ "domain blocks itself", "192.0.2.1", "example.com", 1500,
		  METHOD_NONE, NULL, 5, CMD_CONNECT, 0, 5 },
		{ "label boundary: badexample.com is not example.com",
		  "192.0.2.1", "badexample.com", 1500, METHOD_NONE, NULL, 5,
		  CMD_CONNECT, 1, 10 },
		{ "address request never matches a domain rule", "192.0.2.1",
		  NULL, 1500, METHOD_NONE, NULL, 5, CMD_CONNECT, 1, 10 },
		{ "port = 9 blocked", "127.0.0.1", NULL, 9, METHOD_NONE, NULL, 5,
		  CMD_CONNECT, 0, 6 },
		{ "other loopback port passes rule 12", "127.0.0.1", NULL, 80,
		  METHOD_NONE, NULL, 5, CMD_CONNECT, 1, 12 },
		{ "SOCKS4 cannot use a socks_v5 rule", "127.0.0.1", NULL, 80,
		  METHOD_NONE, NULL, 4, CMD_CONNECT, 0, 0 },
		{ "user rule with username", "10.1.1.1", NULL, 80,
		  METHOD_USERNAME, "alice", 5, CMD_CONNECT, 1, 7 },
		{ "user rule, other user: next rules", "10.1.1.1", NULL, 80,
		  METHOD_USERNAME, "mallory", 5, CMD_CONNECT, 0, 0 },
		{ "method none never satisfies user: (claimed name)", "10.1.1.1",
		  NULL, 80, METHOD_NONE, "alice", 5, CMD_CONNECT, 0, 0 },
		{ "SOCKS4 never satisfies user:", "10.1.1.1", NULL, 80,
		  METHOD_NONE, "alice", 4, CMD_CONNECT, 0, 0 },
		{ "method not in the rule's list", "10.1.1.1", NULL, 80,
		  METHOD_GSSAPI, "alice", 5, CMD_CONNECT, 0, 0 },
		{ "port range low edge", "192.0.2.9", NULL, 1000, METHOD_NONE,
		  NULL, 5, CMD_CONNECT, 1, 10 },
		{ "port range outside", "192.0.2.9", NULL, 999, METHOD_NONE, NULL,
		  5, CMD_CONNECT, 0, 0 },
		{ "command condition", "192.0.2.9", NULL, 1500, METHOD_NONE, NULL,
		  5, CMD_BIND, 0, 0 },
		{ "::/0 takes IPv6", "2001:db8::1", NULL, 80, METHOD_NONE, NULL, 5,
		  CMD_CONNECT, 1, 11 },
		{ "::/0 does not take IPv4", "198.51.100.1", NULL, 80, METHOD_NONE,
		  NULL, 5, CMD_CONNECT, 0, 0 },
	};
	struct sockaddr_storage client = lit("127.0.0.1", 40000);

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage d = lit(t[i].dest, t[i].port);
		struct facts f = { .client = &client, .client_port_known = true,
				   .method = t[i].method, .user = t[i].user,
				   .version = t[i].version, .command = t[i].cmd,
				   .dest = &d, .dest_name = t[i].dname,
				   .dest_port = t[i].port, .dest_port_known = true };
		struct verdict v;
		enum match_result m = rules_decide_socks(c, &f, &v);
		unsigned line = v.rule ? v.rule->line : 0;
		if (!tap_ok(m == MATCH_YES && v.pass == t[i].pass &&
			    line == t[i].line, "%s", t[i].name))
			tap_diag("got %s line %u", v.pass ? "pass" : "block", line);
	}
	/* 0.0.0.0/8 and :: mean this host: refused before any rule, even
	 * rule 12 that passes 127.0.0.0/8 (the pass that would relay there) */
	const char *const unspec[] = { "0.0.0.0", "0.1.2.3", "::" };
	for (size_t i = 0; i < 3; i++) {
		struct sockaddr_storage d0 = lit(unspec[i], 80);
		struct facts f0 = { .client = &client, .client_port_known = true,
				    .method = METHOD_NONE, .version = 5,
				    .command = CMD_CONNECT, .dest = &d0,
				    .dest_port = 80, .dest_port_known = true };
		struct verdict v0;
		tap_ok(rules_decide_socks(c, &f0, &v0) == MATCH_YES && !v0.pass &&
		       v0.unspecified && !v0.rule, "%s is never a destination",
		       unspec[i]);
		f0.command = CMD_BIND;   /* for BIND it names "any peer" */
		tap_ok(rules_decide_socks(c, &f0, &v0) == MATCH_YES &&
		       !v0.unspecified, "%s in BIND is decided by the rules",
		       unspec[i]);
	}
	/* group from the caller (sockd-check's group=) */
	struct sockaddr_storage d = lit("10.1.1.1", 80);
	struct facts f = { .client = &client, .client_port_known = true,
			   .method = METHOD_USERNAME, .user = "bob",
			   .groups = staff, .ngroups = 1, .version = 5,
			   .command = CMD_CONNECT, .dest = &d, .dest_port = 80,
			   .dest_port_known = true };
	struct verdict v;
	rules_decide_socks(c, &f, &v);
	tap_ok(v.pass && v.rule && v.rule->line == 9, "group: staff passes bob");
	f.user = NULL;
	f.groups = NULL;
	tap_ok(rules_decide_socks(c, &f, &v) == MATCH_MISSING &&
	       !strcmp(v.missing, "user"), "a user rule without a user: MISSING user");
	f.user = "bob";
	f.dest_port_known = false;
	d = lit("192.0.2.1", 0);
	tap_ok(rules_decide_socks(c, &f, &v) == MATCH_MISSING &&
	       !strcmp(v.missing, "port"), "a port rule without a port: MISSING port");
}

static void client_cases(const struct conf *c)
{
	struct sockaddr_storage cl = lit("127.0.0.2", 5000);
	struct sockaddr_storage lo = lit("127.0.0.1", 1080);
	struct facts f = { .client = &cl, .local = &lo, .client_port_known = true,
			   .local_port_known = true, .version = 5 };
	struct verdict v;

	rules_decide_client(c, &f, &v);
	tap_ok(!v.pass && v.rule && v.rule->line == 2, "client 127.0.0.2 blocked");
	cl = lit("127.0.0.5", 5000);
	rules_decide_client(c, &f, &v);
	tap_ok(v.pass && v.rule && v.rule->line == 3, "client 127.0.0.5 passes");
	lo = lit("127.0.0.1", 1081);
	rules_decide_client(c, &f, &v);
	tap_ok(!v.pass && !v.rule, "other local port: default block");
	f.local = NULL;
	tap_ok(rules_decide_client(c, &f, &v) == MATCH_MISSING &&
	       !strcmp(v.missing, "laddr"), "local address unknown: MISSING laddr");
	cl = lit("::1", 5000);
	f.local = &lo;
	rules_decide_client(c, &f, &v);
	tap_ok(v.pass && v.rule->line == 4, "IPv6 client");
	tap_ok(!rules_client_allows_method(c, v.rule, METHOD_NONE, 5),
	       "client rule socksmethod: username refuses none");
	tap_ok(!rules_client_allows_method(c, v.rule, METHOD_NONE, 4),
	       "... and so refuses SOCKS4 (CVE-2024-54662)");
	tap_ok(rules_client_allows_method(c, v.rule, METHOD_USERNAME, 5),
	       "... and allows username");
	cl = lit("127.0.0.5", 5000);
	lo = lit("127.0.0.1", 1080);
	rules_decide_client(c, &f, &v);
	tap_ok(rules_client_allows_method(c, v.rule, METHOD_NONE, 4),
	       "global list with none allows SOCKS4");
}

int main(void)
{
	struct conf_diags d;
	struct conf *c = conf_parse_buffer("m.conf", rules, sizeof(rules) - 1, &d);

	if (!tap_ok(c != NULL, "rules load")) {
		for (size_t i = 0; i < d.n; i++)
			tap_diag("%u: %s", d.v[i].line, d.v[i].msg);
		return tap_done();
	}
	conf_diags_free(&d);
	socks_cases(c);
	client_cases(c);
	conf_free(c);
	return tap_done();
}
