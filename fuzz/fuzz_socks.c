/* libFuzzer: every SOCKS decoder fed the input whole and byte by byte
 * must give the same result (the session reads exactly what a decoder
 * asks for, so both are what a client can make it see). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks_proto.h"

typedef int (*decoder)(const uint8_t *, size_t, void *);

static int d_greet(const uint8_t *b, size_t n, void *o) { return socks5_greeting_decode(b, n, o); }
static int d_req5(const uint8_t *b, size_t n, void *o) { return socks5_request_decode(b, n, o); }
static int d_req4(const uint8_t *b, size_t n, void *o) { return socks4_request_decode(b, n, o); }
static int d_up(const uint8_t *b, size_t n, void *o) { return rfc1929_decode(b, n, o); }
static int d_gss(const uint8_t *b, size_t n, void *o)
{
	const uint8_t *t;
	size_t len;
	(void)o;
	int rc = gss_msg_decode(b, n, GSS_MTYP_AUTH, &t, &len);
	if (rc == 0 && (t < b || t + len > b + n))
		abort();
	return rc;
}

/* As the session drives it: ask, read what was asked, ask again.
 * BYTEWISE gives one byte at a time instead.  Returns the final status
 * and the bytes consumed. */
static int drive(decoder d, const uint8_t *in, size_t len, void *out,
		 int bytewise, size_t *used)
{
	size_t have = 0;
	int need;

	while ((need = d(in, have, out)) > 0) {
		if ((size_t)need <= have)
			abort();            /* a decoder must ask for more */
		if ((size_t)need > len) {
			*used = have;
			return 1;           /* the input ends first */
		}
		have = bytewise ? have + 1 : (size_t)need;
	}
	*used = have;
	return need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const decoder decs[] = { d_greet, d_req5, d_req4, d_up, d_gss };
	union {
		struct socks5_greeting g;
		struct socks_request r;
		struct rfc1929_creds c;
	} a, b;

	if (size == 0)
		return 0;
	decoder d = decs[data[0] % 5];
	data++;
	size--;
	size_t ua = 0, ub = 0;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	int ra = drive(d, data, size, &a, 0, &ua);
	int rb = drive(d, data, size, &b, 1, &ub);
	if (ra != rb || (ra == 0 && (ua != ub || memcmp(&a, &b, sizeof(a)))))
		abort();
	if (ra == 0 && d == d_req5 && socks5_request_length(data) != ua)
		abort();
	struct socks_request u;
	(void)socks5_udp_decode(data, size, &u);
	return 0;
}
