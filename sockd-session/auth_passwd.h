/* The "username" method: RFC 1929 checked against the system password
 * database (shadow + crypt(3)), for hosts without a PAM stack for it. */
#ifndef SOCKD_AUTH_PASSWD_H
#define SOCKD_AUTH_PASSWD_H

#include <stddef.h>

/* Returns 0 when USER exists, is not locked or expired, needs no password
 * change and PASSWORD matches; -1 with a reason otherwise.  Must run as
 * root (shadow).  libcrypt is loaded on first use. */
int auth_passwd(const char *user, const char *password, char *reason,
		size_t len);

#endif
