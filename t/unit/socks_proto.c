/* Unit tests: SOCKS5 codecs, whole and byte by byte. */
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "socks_proto.h"
#include "tap.h"

typedef int (*decoder)(const uint8_t *, size_t, void *);

/* Runs DEC as the session does: feed exactly what it asks for.  With
 * BYTEWISE, one byte at a time even when it asks for more. */
static int feed(decoder dec, const uint8_t *msg, size_t len, void *out,
		int bytewise, size_t *consumed)
{
	size_t have = 0;
	int need;

	while ((need = dec(msg, have, out)) > 0) {
		if ((size_t)need > len)
			return 1000;   /* wants more than the message has */
		have = bytewise ? have + 1 : (size_t)need;
	}
	*consumed = have;
	return need;
}

static int greet(const uint8_t *b, size_t n, void *o)
{
	return socks5_greeting_decode(b, n, o);
}

static int req(const uint8_t *b, size_t n, void *o)
{
	return socks5_request_decode(b, n, o);
}

struct rcase {
	const char *name;
	uint8_t msg[300];
	size_t len;
	int want;
};

static void request_cases(void)
{
	struct rcase t[] = {
		{ "IPv4 CONNECT", { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 }, 10, 0 },
		{ "IPv6 CONNECT", { 5, 1, 0, 4, [19] = 1, 0x1f, 0x90 }, 22, 0 },
		{ "name CONNECT", { 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o',
				    's', 't', 0, 80 }, 16, 0 },
		{ "name with NUL", { 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80 }, 10,
		  PROTO_BAD_NAME },
		{ "name with blank", { 5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80 }, 10,
		  PROTO_BAD_NAME },
		{ "name with %", { 5, 1, 0, 3, 3, 'a', '%', 'b', 0, 80 }, 10,
		  PROTO_BAD_NAME },
		{ "empty name", { 5, 1, 0, 3, 0, 0, 80 }, 7, PROTO_BAD_NAME },
		{ "ATYP 5", { 5, 1, 0, 5, 1, 2, 3, 4, 0, 80 }, 10, PROTO_BAD_ATYP },
		{ "ATYP 0", { 5, 1, 0, 0, 1, 2, 3, 4, 0, 80 }, 10, PROTO_BAD_ATYP },
		{ "version 4 in a SOCKS5 request", { 4, 1, 0, 1, 1, 2, 3, 4, 0, 80 },
		  10, PROTO_BAD_VERSION },
		{ "reserved byte set", { 5, 1, 1, 1, 1, 2, 3, 4, 0, 80 }, 10,
		  PROTO_BAD_RESERVED },
		{ "undefined command decodes (answered 07)",
		  { 5, 9, 0, 1, 1, 2, 3, 4, 0, 80 }, 10, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct socks_request a, b;
		size_t ca = 0, cb = 0;
		int ra = feed(req, t[i].msg, t[i].len, &a, 0, &ca);
		int rb = feed(req, t[i].msg, t[i].len, &b, 1, &cb);
		tap_ok(ra == t[i].want && rb == ra &&
		       (ra != 0 || (ca == t[i].len && cb == t[i].len &&
				    !memcmp(&a, &b, sizeof(a)))),
		       "request: %s (whole %d, bytewise %d)", t[i].name, ra, rb);
	}
	/* a 255-byte name, and what follows the request is not consumed */
	uint8_t m[300] = { 5, 1, 0, 3, 255 };
	memset(m + 5, 'a', 255);
	m[260] = 0x01;
	m[261] = 0xbb;
	memcpy(m + 262, "GET", 3);
	struct socks_request r;
	size_t used;
	tap_ok(feed(req, m, 265, &r, 0, &used) == 0 && used == 262 &&
	       r.port == 443 && strlen(r.name) == 255,
	       "255-byte name; early data left unread");
	uint8_t v6[22] = { 5, 1, 0, 4, [14] = 0xff, 0xff, 127, 0, 0, 1, 0, 80 };
	tap_ok(feed(req, v6, 22, &r, 0, &used) == 0 && r.addr.ss_family == AF_INET,
	       "IPv4-mapped IPv6 destination becomes IPv4");
}

static int req4(const uint8_t *b, size_t n, void *o)
{
	return socks4_request_decode(b, n, o);
}

static void socks4_cases(void)
{
	struct rcase t[] = {
		{ "SOCKS4 CONNECT, empty user id", { 4, 1, 0, 80, 127, 0, 0, 1, 0 },
		  9, 0 },
		{ "SOCKS4 CONNECT with user id", { 4, 1, 0, 80, 127, 0, 0, 1, 'b',
		  'o', 'b', 0 }, 12, 0 },
		{ "SOCKS4a", { 4, 1, 0, 80, 0, 0, 0, 1, 'u', 0, 'l', 'o', 'c', 'a',
		  'l', 'h', 'o', 's', 't', 0 }, 20, 0 },
		{ "SOCKS4a bad name", { 4, 1, 0, 80, 0, 0, 0, 1, 0, 'a', ' ', 'b',
		  0 }, 13, PROTO_BAD_NAME },
		{ "SOCKS4a empty name", { 4, 1, 0, 80, 0, 0, 0, 1, 0, 0 }, 10,
		  PROTO_BAD_NAME },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct socks_request a, b;
		size_t ca = 0, cb = 0;
		int ra = feed(req4, t[i].msg, t[i].len, &a, 0, &ca);
		int rb = feed(req4, t[i].msg, t[i].len, &b, 1, &cb);
		tap_ok(ra == t[i].want && rb == ra &&
		       (ra != 0 || (ca == t[i].len && !memcmp(&a, &b, sizeof(a)))),
		       "request: %s (whole %d, bytewise %d)", t[i].name, ra, rb);
	}
	struct socks_request r;
	size_t used = 0;
	uint8_t m[600] = { 4, 1, 0, 80, 0, 0, 0, 1 };
	feed(req4, m, 20, &r, 0, &used);
	memcpy(m + 8, "u\0www.Example.com\0", 18);
	tap_ok(feed(req4, m, 26, &r, 0, &used) == 0 && r.atyp == SOCKS5_ATYP_NAME &&
	       !strcmp(r.name, "www.example.com") && r.port == 80 &&
	       !strcmp(r.userid, "u"), "SOCKS4a name and user id decoded");
	memset(m + 8, 'x', 400);
	tap_ok(feed(req4, m, 600, &r, 0, &used) == PROTO_FIELD_TOO_LONG &&
	       used <= 8 + 256, "unterminated 400-byte user id refused after 256");
	memcpy(m + 8, "u\0", 2);
	memset(m + 10, 'x', 400);
	tap_ok(feed(req4, m, 600, &r, 0, &used) == PROTO_FIELD_TOO_LONG,
	       "unterminated SOCKS4a host name refused");
	uint8_t out[8];
	struct sockaddr_storage ss;
	addr_parse_literal("192.0.2.1", &ss);
	addr_set_port(&ss, 1080);
	const uint8_t ok4[] = { 0, 0x5a, 0x04, 0x38, 192, 0, 2, 1 };
	const uint8_t no4[] = { 0, 0x5b, 0, 0, 0, 0, 0, 0 };
	tap_ok(socks4_reply_encode(out, 1, &ss) == 8 && !memcmp(out, ok4, 8),
	       "SOCKS4 granted reply");
	tap_ok(socks4_reply_encode(out, 0, &ss) == 8 && !memcmp(out, no4, 8),
	       "SOCKS4 rejected reply");
}

static int up(const uint8_t *b, size_t n, void *o)
{
	return rfc1929_decode(b, n, o);
}

static void rfc1929_cases(void)
{
	struct rcase t[] = {
		{ "alice/secret", { 1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c',
		  'r', 'e', 't' }, 14, 0 },
		{ "version 5", { 5, 1, 'a', 1, 'b' }, 5, PROTO_BAD_SUBVERSION },
		{ "ulen 0", { 1, 0, 1, 'b' }, 4, PROTO_EMPTY_FIELD },
		{ "plen 0", { 1, 1, 'a', 0 }, 4, PROTO_EMPTY_FIELD },
		{ "NUL in the name", { 1, 3, 'a', 0, 'b', 1, 'p' }, 7, PROTO_BAD_BYTES },
		{ "newline in the name", { 1, 3, 'a', '\n', 'b', 1, 'p' }, 7,
		  PROTO_BAD_BYTES },
		{ "NUL in the password", { 1, 1, 'a', 3, 'p', 0, 'q' }, 7,
		  PROTO_BAD_BYTES },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct rfc1929_creds a, b;
		size_t ca = 0, cb = 0;
		int ra = feed(up, t[i].msg, t[i].len, &a, 0, &ca);
		int rb = feed(up, t[i].msg, t[i].len, &b, 1, &cb);
		tap_ok(ra == t[i].want && rb == ra && (ra != 0 || ca == t[i].len),
		       "rfc1929: %s (whole %d, bytewise %d)", t[i].name, ra, rb);
	}
	uint8_t m[RFC1929_MAX];
	struct rfc1929_creds c;
	size_t used = 0;
	m[0] = 1;
	m[1] = 255;
	memset(m + 2, 'u', 255);
	m[257] = 255;
	memset(m + 258, 'p', 255);
	tap_ok(feed(up, m, sizeof(m), &c, 0, &used) == 0 && used == RFC1929_MAX &&
	       strlen(c.user) == 255 && strlen(c.pass) == 255,
	       "rfc1929: 255-byte name and password");
	tap_ok(feed(up, m, 100, &c, 0, &used) == 1000,
	       "rfc1929: truncated message asks for more");
}

static void udp_cases(void)
{
	struct socks_request r;
	uint8_t d4[] = { 0, 0, 0, 1, 127, 0, 0, 1, 0, 53, 'q', 'u' };
	uint8_t dn[] = { 0, 0, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't',
			 0, 53, 'x' };
	uint8_t frag[] = { 0, 0, 1, 1, 127, 0, 0, 1, 0, 53, 'q' };
	uint8_t rsv[] = { 0, 1, 0, 1, 127, 0, 0, 1, 0, 53, 'q' };
	uint8_t shorth[] = { 0, 0, 0, 1, 127, 0 };
	uint8_t badat[] = { 0, 0, 0, 9, 127, 0, 0, 1, 0, 53 };

	tap_ok(socks5_udp_decode(d4, sizeof(d4), &r) == 10 && r.port == 53 &&
	       r.atyp == SOCKS5_ATYP_IPV4, "udp: IPv4 header, payload after 10");
	tap_ok(socks5_udp_decode(dn, sizeof(dn), &r) == 16 &&
	       !strcmp(r.name, "localhost"), "udp: name header");
	tap_ok(socks5_udp_decode(frag, sizeof(frag), &r) == PROTO_UDP_FRAGMENT,
	       "udp: FRAG != 0 refused");
	tap_ok(socks5_udp_decode(rsv, sizeof(rsv), &r) == PROTO_BAD_RESERVED,
	       "udp: RSV != 0 refused");
	tap_ok(socks5_udp_decode(shorth, sizeof(shorth), &r) == PROTO_BAD_RESERVED,
	       "udp: truncated header refused");
	tap_ok(socks5_udp_decode(badat, sizeof(badat), &r) == PROTO_BAD_ATYP,
	       "udp: bad ATYP refused");
	struct sockaddr_storage ss;
	uint8_t out[SOCKS5_UDP_HEADER_MAX];
	addr_parse_literal("::1", &ss);
	addr_set_port(&ss, 53);
	size_t n = socks5_udp_header(out, &ss);
	tap_ok(n == 22 && out[0] == 0 && out[2] == 0 && out[3] == 4 && out[21] == 53,
	       "udp: IPv6 header for an answer");
}

static int gss_auth(const uint8_t *b, size_t n, void *o)
{
	const uint8_t *tok;
	size_t len;
	(void)o;
	return gss_msg_decode(b, n, GSS_MTYP_AUTH, &tok, &len);
}

static void gss_framing_cases(void)
{
	struct rcase t[] = {
		{ "token of 3", { 1, 1, 0, 3, 'a', 'b', 'c' }, 7, 0 },
		{ "zero-length token", { 1, 1, 0, 0 }, 4, PROTO_GSS_EMPTY },
		{ "abort", { 1, 0xff }, 2, PROTO_GSS_ABORT },
		{ "wrong version", { 5, 1, 0, 1, 'a' }, 5, PROTO_GSS_BAD_VERSION },
		{ "wrong mtyp", { 1, 3, 0, 1, 'a' }, 5, PROTO_GSS_BAD_MTYP },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t ca = 0, cb = 0;
		int ra = feed(gss_auth, t[i].msg, t[i].len, NULL, 0, &ca);
		int rb = feed(gss_auth, t[i].msg, t[i].len, NULL, 1, &cb);
		tap_ok(ra == t[i].want && rb == ra, "gss: %s (whole %d, bytewise %d)",
		       t[i].name, ra, rb);
	}
	static uint8_t big[4 + 65535] = { 1, 1, 0xff, 0xff };
	const uint8_t *tok;
	size_t len;
	tap_ok(gss_msg_decode(big, 4, GSS_MTYP_AUTH, &tok, &len) == 4 + 65535 &&
	       gss_msg_decode(big, sizeof(big), GSS_MTYP_AUTH, &tok, &len) == 0 &&
	       len == 65535, "gss: a 65535-byte token is read whole");
	uint8_t hdr[4];
	gss_msg_header(hdr, GSS_MTYP_DATA, 0x1234);
	tap_ok(hdr[0] == 1 && hdr[1] == 3 && hdr[2] == 0x12 && hdr[3] == 0x34,
	       "gss: header encoding");
}

static void greeting_cases(void)
{
	uint8_t g1[] = { 5, 1, 0 }, g2[] = { 5, 0 }, g3[] = { 4, 1, 0 };
	uint8_t g4[257] = { 5, 255 };
	struct socks5_greeting a;
	size_t used;

	tap_ok(feed(greet, g1, 3, &a, 1, &used) == 0 && a.nmethods == 1 &&
	       used == 3, "greeting with one method, bytewise");
	tap_ok(feed(greet, g2, 2, &a, 0, &used) == PROTO_NO_METHODS,
	       "greeting with no methods");
	tap_ok(feed(greet, g3, 3, &a, 0, &used) == PROTO_BAD_VERSION,
	       "greeting version 4");
	tap_ok(feed(greet, g4, 257, &a, 0, &used) == 0 && a.nmethods == 255 &&
	       used == 257, "greeting with 255 methods");
}

static void reply_cases(void)
{
	uint8_t out[SOCKS_REPLY_MAX];
	struct sockaddr_storage ss;

	addr_parse_literal("192.0.2.1", &ss);
	addr_set_port(&ss, 1080);
	size_t n = socks5_reply_encode(out, REP_SUCCEEDED, &ss);
	const uint8_t want4[] = { 5, 0, 0, 1, 192, 0, 2, 1, 0x04, 0x38 };
	tap_ok(n == 10 && !memcmp(out, want4, 10), "IPv4 reply bytes");
	addr_parse_literal("::1", &ss);
	addr_set_port(&ss, 80);
	n = socks5_reply_encode(out, REP_SUCCEEDED, &ss);
	tap_ok(n == 22 && out[3] == 4 && out[19] == 1 && out[21] == 80,
	       "IPv6 reply bytes");
	n = socks5_reply_encode(out, REP_CONN_REFUSED, NULL);
	const uint8_t want0[] = { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 };
	tap_ok(n == 10 && !memcmp(out, want0, 10), "failure reply with zero address");
}

int main(void)
{
	request_cases();
	socks4_cases();
	rfc1929_cases();
	udp_cases();
	gss_framing_cases();
	greeting_cases();
	reply_cases();
	return tap_done();
}
