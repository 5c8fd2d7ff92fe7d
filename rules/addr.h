/* Addresses, prefixes and ports: parsing, matching and printing. */
#ifndef SOCKD_ADDR_H
#define SOCKD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

/* Parses "A/P" (IPv4 or IPv6 prefix), "0/0", into R.  Returns 0, or -1
 * with a reason in ERR. */
int addr_parse_prefix(const char *s, struct rule_addr *r, char *err,
		      size_t errlen);

/* Parses a bare literal IPv4 or IPv6 address into SS (port 0).  Refuses
 * IPv4-mapped IPv6 and scoped forms.  Returns 0 or -1. */
int addr_parse_literal(const char *s, struct sockaddr_storage *ss);

/* Rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4, so
 * that IPv4 rules see it: a client must not slip past "to: 127.0.0.0/8"
 * by writing the address the other way. */
void addr_unmap(struct sockaddr_storage *ss);

/* Clears the bits of BYTES (NBYTES long) past the first PREFIX; true when
 * any was set.  The parser masks prefixes with it, the rules image's index
 * its keys (rules/conf_index.c) and the addresses it looks up. */
bool addr_mask_prefix(uint8_t *bytes, size_t nbytes, unsigned prefix);

/* True when SS (AF_INET or AF_INET6) lies inside prefix rule R. */
bool addr_in_prefix(const struct rule_addr *r,
		    const struct sockaddr_storage *ss);

bool port_match(const struct port_spec *p, uint16_t port);

uint16_t addr_port(const struct sockaddr_storage *ss);
void addr_set_port(struct sockaddr_storage *ss, uint16_t port);
socklen_t addr_len(const struct sockaddr_storage *ss);

/* "127.0.0.1" / "::1", without port. */
void addr_ntop(const struct sockaddr_storage *ss, char *buf, size_t len);

/* "127.0.0.1.1080" / "::1.1080": Dante's address.port form. */
void addr_format(const struct sockaddr_storage *ss, char *buf, size_t len);

/* True for 0.0.0.0 and :: (any port). */
bool addr_is_any(const struct sockaddr_storage *ss);

/* True for addresses that name no host but mean "this host" to a
 * connect() or sendto(): 0.0.0.0/8 and ::.  Never a destination. */
bool addr_is_unspecified_dest(const struct sockaddr_storage *ss);

/* Equality of address and port. */
bool addr_equal(const struct sockaddr_storage *a,
		const struct sockaddr_storage *b);

#define ADDR_STRLEN 64

#endif
