/* SOCKS message codecs.  No I/O, no allocation: table-testable. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "addr.h"
#include "socks_proto.h"

int socks5_greeting_decode(const uint8_t *buf, size_t have,
			   struct socks5_greeting *g)
{
	if (have < 2)
		return 2;
	if (buf[0] != 5)
		return PROTO_BAD_VERSION;
	if (buf[1] == 0)
		return PROTO_NO_METHODS;
	size_t need = 2 + (size_t)buf[1];
	if (have < need)
		return (int)need;
	g->nmethods = buf[1];
	memcpy(g->methods, buf + 2, buf[1]);
	return 0;
}

int socks5_request_decode(const uint8_t *buf, size_t have,
			  struct socks_request *r)
{
	size_t need;

	if (have < 4)
		return 4;   /* judge VER, RSV and ATYP before asking for more */
	if (buf[0] != 5)
		return PROTO_BAD_VERSION;
	if (buf[2] != 0)
		return PROTO_BAD_RESERVED;
	if (buf[3] == SOCKS5_ATYP_NAME && have < 5)
		return 5;   /* the name's length byte */
	switch (buf[3]) {
	case SOCKS5_ATYP_IPV4: need = 4 + 4 + 2; break;
	case SOCKS5_ATYP_IPV6: need = 4 + 16 + 2; break;
	case SOCKS5_ATYP_NAME: need = 4 + 1 + (size_t)buf[4] + 2; break;
	default: return PROTO_BAD_ATYP;
	}
	if (have < need)
		return (int)need;
	memset(r, 0, sizeof(*r));
	r->version = 5;
	r->command = buf[1];
	r->atyp = buf[3];
	r->port = (uint16_t)(buf[need - 2] << 8 | buf[need - 1]);
	if (buf[3] == SOCKS5_ATYP_IPV4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&r->addr;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, buf + 4, 4);
	} else if (buf[3] == SOCKS5_ATYP_IPV6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&r->addr;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, buf + 4, 16);
		addr_unmap(&r->addr);
	} else if (names_canonical((const char *)buf + 5, buf[4], r->name,
				   sizeof(r->name))) {
		return PROTO_BAD_NAME;
	}
	if (r->atyp != SOCKS5_ATYP_NAME)
		addr_set_port(&r->addr, r->port);
	return 0;
}

size_t socks5_request_length(const uint8_t *buf)
{
	switch (buf[3]) {
	case SOCKS5_ATYP_IPV4: return 4 + 4 + 2;
	case SOCKS5_ATYP_IPV6: return 4 + 16 + 2;
	default: return 4 + 1 + (size_t)buf[4] + 2;
	}
}

size_t socks5_reply_encode(uint8_t *out, uint8_t rep,
			   const struct sockaddr_storage *bnd)
{
	size_t n = 0;

	out[n++] = 5;
	out[n++] = rep;
	out[n++] = 0;
	if (bnd && bnd->ss_family == AF_INET6) {
		out[n++] = SOCKS5_ATYP_IPV6;
		memcpy(out + n, &((const struct sockaddr_in6 *)bnd)->sin6_addr, 16);
		n += 16;
	} else {
		out[n++] = SOCKS5_ATYP_IPV4;
		if (bnd && bnd->ss_family == AF_INET)
			memcpy(out + n, &((const struct sockaddr_in *)bnd)->sin_addr, 4);
		else
			memset(out + n, 0, 4);
		n += 4;
	}
	uint16_t port = bnd ? addr_port(bnd) : 0;
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)port;
	return n;
}

/* Finds the NUL that ends a field starting at FROM: 0 with *END set,
 * or a decoder status (> 0 bytes needed, < 0 too long). */
static int field_end(const uint8_t *buf, size_t have, size_t from, size_t *end)
{
	const uint8_t *nul = have > from ? memchr(buf + from, 0, have - from)
					 : NULL;
	if (nul) {
		*end = (size_t)(nul - buf);
		return 0;
	}
	if (have - from > SOCKS4_FIELD_MAX)
		return PROTO_FIELD_TOO_LONG;
	return (int)have + 1;
}

int socks4_request_decode(const uint8_t *buf, size_t have,
			  struct socks_request *r)
{
	size_t uend, nend = 0;
	int rc;

	if (have < 8)
		return 8;
	if (buf[0] != 4)
		return PROTO_BAD_VERSION;
	if ((rc = field_end(buf, have, 8, &uend)) != 0)
		return rc;
	bool is_4a = buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] != 0;
	if (is_4a && (rc = field_end(buf, have, uend + 1, &nend)) != 0)
		return rc;
	memset(r, 0, sizeof(*r));
	r->version = 4;
	r->command = buf[1];
	r->port = (uint16_t)(buf[2] << 8 | buf[3]);
	r->userid_len = uend - 8;
	memcpy(r->userid, buf + 8, r->userid_len);
	if (is_4a) {
		r->atyp = SOCKS5_ATYP_NAME;
		if (names_canonical((const char *)buf + uend + 1, nend - uend - 1,
				    r->name, sizeof(r->name)))
			return PROTO_BAD_NAME;
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&r->addr;
	r->atyp = SOCKS5_ATYP_IPV4;
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, buf + 4, 4);
	s4->sin_port = htons(r->port);
	return 0;
}

size_t socks4_reply_encode(uint8_t *out, int granted,
			   const struct sockaddr_storage *bnd)
{
	memset(out, 0, 8);
	out[1] = granted ? 0x5a : 0x5b;
	if (granted && bnd && bnd->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)bnd;
		memcpy(out + 2, &s4->sin_port, 2);
		memcpy(out + 4, &s4->sin_addr, 4);
	}
	return 8;
}

int rfc1929_decode(const uint8_t *buf, size_t have, struct rfc1929_creds *c)
{
	if (have < 2)
		return 2;
	if (buf[0] != 1)
		return PROTO_BAD_SUBVERSION;
	size_t ulen = buf[1];
	if (ulen == 0)
		return PROTO_EMPTY_FIELD;
	if (have < 2 + ulen + 1)
		return (int)(2 + ulen + 1);
	size_t plen = buf[2 + ulen];
	if (plen == 0)
		return PROTO_EMPTY_FIELD;
	if (have < 3 + ulen + plen)
		return (int)(3 + ulen + plen);
	for (size_t i = 0; i < ulen; i++)
		if (buf[2 + i] < 0x20 || buf[2 + i] == 0x7f)
			return PROTO_BAD_BYTES;
	if (memchr(buf + 3 + ulen, 0, plen))
		return PROTO_BAD_BYTES;
	memcpy(c->user, buf + 2, ulen);
	c->user[ulen] = '\0';
	memcpy(c->pass, buf + 3 + ulen, plen);
	c->pass[plen] = '\0';
	return 0;
}

int gss_msg_decode(const uint8_t *buf, size_t have, int want_mtyp,
		   const uint8_t **token, size_t *len)
{
	if (have < 2)
		return 2;
	if (buf[0] != 1)
		return PROTO_GSS_BAD_VERSION;
	if (buf[1] == GSS_MTYP_ABORT)
		return PROTO_GSS_ABORT;
	if (buf[1] != want_mtyp)
		return PROTO_GSS_BAD_MTYP;
	if (have < 4)
		return 4;
	size_t n = (size_t)buf[2] << 8 | buf[3];
	if (n == 0)
		return PROTO_GSS_EMPTY;
	if (have < 4 + n)
		return (int)(4 + n);
	*token = buf + 4;
	*len = n;
	return 0;
}

void gss_msg_header(uint8_t out[4], int mtyp, size_t len)
{
	out[0] = 1;
	out[1] = (uint8_t)mtyp;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

int socks5_udp_decode(const uint8_t *buf, size_t len, struct socks_request *r)
{
	uint8_t req[SOCKS5_REQUEST_MAX];

	if (len < 4 || buf[0] || buf[1])
		return PROTO_BAD_RESERVED;
	if (buf[2])
		return PROTO_UDP_FRAGMENT;
	/* the same address encoding as a request: reuse its decoder */
	size_t n = len - 3 < sizeof(req) - 3 ? len - 3 : sizeof(req) - 3;
	req[0] = 5;
	req[1] = SOCKS_CMD_UDP;
	req[2] = 0;
	memcpy(req + 3, buf + 3, n);
	int rc = socks5_request_decode(req, n + 3, r);
	if (rc > 0)
		return PROTO_BAD_RESERVED;   /* truncated */
	if (rc < 0)
		return rc;
	return (int)socks5_request_length(req);
}

size_t socks5_udp_header(uint8_t *out, const struct sockaddr_storage *from)
{
	uint8_t rep[SOCKS_REPLY_MAX];
	size_t n = socks5_reply_encode(rep, 0, from);

	/* a reply is VER REP RSV ATYP ADDR PORT: the UDP header is
	 * RSV RSV FRAG ATYP ADDR PORT */
	out[0] = 0;
	out[1] = 0;
	out[2] = 0;
	memcpy(out + 3, rep + 3, n - 3);
	return n;
}

const char *socks_proto_strerror(int code)
{
	switch (code) {
	case PROTO_BAD_VERSION: return "unsupported SOCKS version";
	case PROTO_NO_METHODS: return "greeting offers no methods";
	case PROTO_BAD_RESERVED: return "reserved byte is not zero";
	case PROTO_BAD_ATYP: return "unsupported address type";
	case PROTO_BAD_NAME: return "invalid host name";
	case PROTO_FIELD_TOO_LONG: return "SOCKS4 field longer than 255 bytes";
	case PROTO_BAD_SUBVERSION: return "username/password version is not 1";
	case PROTO_EMPTY_FIELD: return "empty user name or password";
	case PROTO_BAD_BYTES: return "NUL or control byte in user name or "
				     "password";
	case PROTO_GSS_ABORT: return "client aborted GSSAPI (01 FF)";
	case PROTO_GSS_BAD_MTYP: return "unexpected GSSAPI message type";
	case PROTO_GSS_EMPTY: return "zero-length GSSAPI token";
	case PROTO_GSS_BAD_VERSION: return "GSSAPI message version is not 1";
	case PROTO_UDP_FRAGMENT: return "fragmented UDP datagram";
	default: return "malformed message";
	}
}
