/* Authentication methods by their sockd.conf names, and ordered lists. */
#ifndef SOCKD_METHODS_H
#define SOCKD_METHODS_H

#include <stdbool.h>
#include <stddef.h>

enum method {
	METHOD_NONE,
	METHOD_USERNAME,      /* RFC 1929 against the system password db */
	METHOD_PAM_USERNAME,  /* RFC 1929 through PAM */
	METHOD_PAM_ADDRESS,   /* PAM on the client address alone */
	METHOD_GSSAPI,        /* RFC 1961 */
	METHOD_COUNT,
};

#define METHOD_LIST_MAX METHOD_COUNT

/* Bytes, not enums and a size_t: a rule holds two of these, and the
 * compiled rules image (10 000 rules read per connection) is mostly
 * struct rule. */
struct method_list {
	unsigned char m[METHOD_LIST_MAX];   /* enum method values */
	unsigned char n;
};

/* "none", "pam.username", ... */
const char *method_name(enum method m);

/* Looks NAME up (also the old alias "pam" = pam.username).  Returns 0 and
 * sets *m, or -1 when NAME is not a method we implement. */
int method_lookup(const char *name, enum method *m);

bool method_list_has(const struct method_list *l, enum method m);

/* True when method M gives an authenticated user name, the only kind
 * that can satisfy user: and group: conditions. */
bool method_yields_user(enum method m);

/* The SOCKS5 wire method that carries M (0x00, 0x01 or 0x02). */
int method_wire(enum method m);

#endif
