/* SOCKS message codecs.  No I/O, no allocation: table-testable. */
#include <arpa/inet.h>
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

	if (have < 5)
		return 5;   /* through the name length byte, or 1 address byte */
	if (buf[0] != 5)
		return PROTO_BAD_VERSION;
	if (buf[2] != 0)
		return PROTO_BAD_RESERVED;
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

const char *socks_proto_strerror(int code)
{
	switch (code) {
	case PROTO_BAD_VERSION: return "unsupported SOCKS version";
	case PROTO_NO_METHODS: return "greeting offers no methods";
	case PROTO_BAD_RESERVED: return "reserved byte is not zero";
	case PROTO_BAD_ATYP: return "unsupported address type";
	case PROTO_BAD_NAME: return "invalid host name";
	default: return "malformed message";
	}
}
