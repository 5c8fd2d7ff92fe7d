/* Unit tests: prefixes, literals, ports, names. */
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "names.h"
#include "tap.h"

static void prefix_cases(void)
{
	static const struct { const char *in; int ok; int kind; int prefix; } c[] = {
		{ "0/0", 1, ADDR_ANY, 0 },
		{ "0.0.0.0/0", 1, ADDR_IPV4, 0 },
		{ "::/0", 1, ADDR_IPV6, 0 },
		{ "10.0.0.0/8", 1, ADDR_IPV4, 8 },
		{ "192.0.2.7/32", 1, ADDR_IPV4, 32 },
		{ "2001:db8::/32", 1, ADDR_IPV6, 32 },
		{ "::1/128", 1, ADDR_IPV6, 128 },
		{ "10.0.0.0/33", 0, 0, 0 },
		{ "::1/129", 0, 0, 0 },
		{ "10.0.0.0/-1", 0, 0, 0 },
		{ "10.0.0.0/", 0, 0, 0 },
		{ "10.0.0.0/255.0.0.0", 0, 0, 0 },
		{ "10.0.0.0", 0, 0, 0 },
		{ "::ffff:127.0.0.1/128", 0, 0, 0 },
		{ "300.1.1.1/8", 0, 0, 0 },
		{ "example.com/8", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rule_addr r = { 0 };
		char err[200];
		int rc = addr_parse_prefix(c[i].in, &r, err, sizeof(err));
		tap_ok((rc == 0) == c[i].ok && (!c[i].ok || ((int)r.kind == c[i].kind &&
			r.prefix == c[i].prefix)), "prefix %s %s", c[i].in,
		       c[i].ok ? "parses" : "is refused");
	}
	struct rule_addr r = { 0 };
	char err[200];
	tap_ok(addr_parse_prefix("10.1.2.3/8", &r, err, sizeof(err)) == 0 &&
	       strstr(err, "host bits") != NULL, "host bits set: a warning");
}

static struct sockaddr_storage lit(const char *s)
{
	struct sockaddr_storage ss;
	addr_parse_literal(s, &ss);
	return ss;
}

static void match_cases(void)
{
	struct rule_addr r = { 0 };
	char err[200];
	struct sockaddr_storage a;

	addr_parse_prefix("10.0.0.0/8", &r, err, sizeof(err));
	a = lit("10.255.1.1");
	tap_ok(addr_in_prefix(&r, &a), "10.255.1.1 in 10.0.0.0/8");
	a = lit("11.0.0.1");
	tap_ok(!addr_in_prefix(&r, &a), "11.0.0.1 not in 10.0.0.0/8");
	a = lit("::1");
	tap_ok(!addr_in_prefix(&r, &a), "::1 not in an IPv4 prefix");
	addr_parse_prefix("0.0.0.0/0", &r, err, sizeof(err));
	tap_ok(!addr_in_prefix(&r, &a), "0.0.0.0/0 is IPv4 only");
	addr_parse_prefix("::/0", &r, err, sizeof(err));
	a = lit("10.0.0.1");
	tap_ok(!addr_in_prefix(&r, &a), "::/0 is IPv6 only");
	addr_parse_prefix("0/0", &r, err, sizeof(err));
	tap_ok(addr_in_prefix(&r, &a), "0/0 has IPv4");
	a = lit("2001:db8::1");
	tap_ok(addr_in_prefix(&r, &a), "0/0 has IPv6");
	addr_parse_prefix("2001:db8::/33", &r, err, sizeof(err));
	a = lit("2001:db8:7fff::1");
	tap_ok(addr_in_prefix(&r, &a), "odd IPv6 prefix, inside");
	a = lit("2001:db8:8000::1");
	tap_ok(!addr_in_prefix(&r, &a), "odd IPv6 prefix, outside");

	struct sockaddr_storage m = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m;
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6->sin6_addr);
	s6->sin6_port = htons(80);
	addr_unmap(&m);
	addr_parse_prefix("127.0.0.0/8", &r, err, sizeof(err));
	tap_ok(m.ss_family == AF_INET && addr_in_prefix(&r, &m) &&
	       addr_port(&m) == 80, "IPv4-mapped IPv6 is matched as IPv4");
	tap_ok(addr_parse_literal("::ffff:10.0.0.1", &m) != 0,
	       "IPv4-mapped literal refused");
}

static void port_cases(void)
{
	struct { struct port_spec p; uint16_t port; int want; } c[] = {
		{ { PORT_ANY, 0, 0 }, 1, 1 }, { { PORT_EQ, 80, 0 }, 80, 1 },
		{ { PORT_EQ, 80, 0 }, 81, 0 }, { { PORT_NE, 25, 0 }, 25, 0 },
		{ { PORT_NE, 25, 0 }, 26, 1 }, { { PORT_LT, 1024, 0 }, 1023, 1 },
		{ { PORT_LT, 1024, 0 }, 1024, 0 }, { { PORT_GT, 1023, 0 }, 1024, 1 },
		{ { PORT_LE, 1023, 0 }, 1023, 1 }, { { PORT_GE, 1024, 0 }, 1023, 0 },
		{ { PORT_RANGE, 1000, 2000 }, 1000, 1 },
		{ { PORT_RANGE, 1000, 2000 }, 2000, 1 },
		{ { PORT_RANGE, 1000, 2000 }, 2001, 0 },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		tap_ok(port_match(&c[i].p, c[i].port) == c[i].want,
		       "port case %zu (op %d, port %u)", i, c[i].p.op, c[i].port);
}

static void name_cases(void)
{
	char out[256];

	tap_ok(names_canonical("WWW.Example.COM.", 16, out, sizeof(out)) == 0 &&
	       !strcmp(out, "www.example.com"), "canonical: lower case, no dot");
	tap_ok(names_canonical("a\0b", 3, out, sizeof(out)) < 0, "NUL refused");
	tap_ok(names_canonical("a b", 3, out, sizeof(out)) < 0, "blank refused");
	tap_ok(names_canonical("a\nb", 3, out, sizeof(out)) < 0, "newline refused");
	tap_ok(names_canonical("fe80::1%eth0", 12, out, sizeof(out)) < 0,
	       "%% refused");
	tap_ok(names_canonical("", 0, out, sizeof(out)) < 0, "empty refused");
	tap_ok(names_canonical(".", 1, out, sizeof(out)) < 0, "lone dot refused");
	tap_ok(names_canonical("a..b", 4, out, sizeof(out)) < 0,
	       "empty label refused");
	char big[300];
	memset(big, 'a', sizeof(big));
	tap_ok(names_canonical(big, 256, out, sizeof(out)) < 0, "256 bytes refused");
	tap_ok(names_in_domain("example.com", "example.com"), "domain itself");
	tap_ok(names_in_domain("a.b.example.com", "example.com"), "below domain");
	tap_ok(!names_in_domain("badexample.com", "example.com"),
	       "label boundary: badexample.com is not in example.com");
	tap_ok(!names_in_domain("com", "example.com"), "parent is not in");
}

int main(void)
{
	prefix_cases();
	match_cases();
	port_cases();
	name_cases();
	return tap_done();
}
