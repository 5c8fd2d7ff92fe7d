/* Address and port primitives shared by the parser, matcher and session. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static bool v6_is_mapped(const struct in6_addr *a)
{
	return IN6_IS_ADDR_V4MAPPED(a);
}

int addr_parse_literal(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		if (v6_is_mapped(&s6->sin6_addr))
			return -1;
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

bool addr_mask_prefix(uint8_t *bytes, size_t nbytes, unsigned prefix)
{
	bool had_host_bits = false;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 :
				prefix > 8 * i ? prefix - 8 * i : 0;
		uint8_t mask = keep ? (uint8_t)(0xff << (8 - keep)) : 0;
		if (bytes[i] & ~mask)
			had_host_bits = true;
		bytes[i] &= mask;
	}
	return had_host_bits;
}

int addr_parse_prefix(const char *s, struct rule_addr *r, char *err,
		      size_t errlen)
{
	char ip[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	unsigned long prefix;
	bool host_bits = false;

	err[0] = '\0';
	if (!slash) {
		snprintf(err, errlen, "address \"%.64s\" needs a prefix length "
			 "(\"%.64s/%s\")", s, s, strchr(s, ':') ? "128" : "32");
		return -1;
	}
	if ((size_t)(slash - s) >= sizeof(ip)) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (strcmp(s, "0/0") == 0) {
		r->kind = ADDR_ANY;
		r->prefix = 0;
		return 0;
	}
	if (inet_pton(AF_INET, ip, &r->a.v4) == 1) {
		if (parse_uint(slash + 1, 32, &prefix)) {
			snprintf(err, errlen, "IPv4 prefix length \"%.16s\": "
				 "legal range is 0 - 32", slash + 1);
			return -1;
		}
		r->kind = ADDR_IPV4;
		host_bits = addr_mask_prefix((uint8_t *)&r->a.v4, 4, (unsigned)prefix);
	} else if (inet_pton(AF_INET6, ip, &r->a.v6) == 1) {
		if (v6_is_mapped(&r->a.v6)) {
			snprintf(err, errlen, "IPv4-mapped IPv6 address \"%.64s\": "
				 "write the IPv4 address", ip);
			return -1;
		}
		if (parse_uint(slash + 1, 128, &prefix)) {
			snprintf(err, errlen, "IPv6 prefix length \"%.16s\": "
				 "legal range is 0 - 128", slash + 1);
			return -1;
		}
		r->kind = ADDR_IPV6;
		host_bits = addr_mask_prefix(r->a.v6.s6_addr, 16, (unsigned)prefix);
	} else {
		snprintf(err, errlen, "\"%.64s\" is not an IPv4 or IPv6 address",
			 ip);
		return -1;
	}
	r->prefix = (uint8_t)prefix;
	err[0] = '\0';
	if (host_bits)
		snprintf(err, errlen, "\"%.80s\" has host bits set beyond the "
			 "prefix; they are ignored", s);
	return 0;
}

void addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (ss->ss_family != AF_INET6 || !v6_is_mapped(&s6->sin6_addr))
		return;
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool addr_in_prefix(const struct rule_addr *r,
		    const struct sockaddr_storage *ss)
{
	if (r->kind == ADDR_ANY)
		return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
	if (r->kind == ADDR_IPV4 && ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		return prefix_equal((const uint8_t *)&s4->sin_addr,
				    (const uint8_t *)&r->a.v4, r->prefix);
	}
	if (r->kind == ADDR_IPV6 && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		return prefix_equal(s6->sin6_addr.s6_addr, r->a.v6.s6_addr,
				    r->prefix);
	}
	return false;
}

bool port_match(const struct port_spec *p, uint16_t port)
{
	switch (p->op) {
	case PORT_ANY: return true;
	case PORT_EQ: return port == p->lo;
	case PORT_NE: return port != p->lo;
	case PORT_LT: return port < p->lo;
	case PORT_GT: return port > p->lo;
	case PORT_LE: return port <= p->lo;
	case PORT_GE: return port >= p->lo;
	case PORT_RANGE: return port >= p->lo && port <= p->hi;
	}
	return false;
}

uint16_t addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

void addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

socklen_t addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

void addr_ntop(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		snprintf(buf, len, "?");
		return;
	}
	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

void addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	addr_ntop(ss, ip, sizeof(ip));
	snprintf(buf, len, "%s.%u", ip, addr_port(ss));
}

bool addr_equal(const struct sockaddr_storage *a,
		const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family || addr_port(a) != addr_port(b))
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

bool addr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == 0;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
			&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

bool addr_is_unspecified_dest(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr)[0] == 0;
	return addr_is_any(ss);
}
