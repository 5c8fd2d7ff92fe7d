/* Host and domain names as the rules compare them. */
#ifndef SOCKD_NAMES_H
#define SOCKD_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 255

/* Copies NAME (LEN bytes, not NUL-terminated: it may come off the wire)
 * to OUT in canonical form: lower case, one trailing dot removed.  Fails
 * (-1) on an empty name and on any byte outside letters, digits, '-', '_'
 * and '.', which covers NUL, control bytes, blanks and '%' (scope ids):
 * such a name is refused, never matched. */
int names_canonical(const char *name, size_t len, char *out, size_t outlen);

/* True when NAME equals DOMAIN or lies below it on a label boundary
 * ("a.example.com" is in "example.com"; "badexample.com" is not).  Both in
 * canonical form. */
bool names_in_domain(const char *name, const char *domain);

/* True when WORD, a bare word of an address (from:, to:, external:),
 * names an interface of this host now: no dot, short enough for an
 * interface name, and present.  The parser decides "interface or host
 * name" with it, and a compiled image asks it again at every load, since
 * interfaces come and go (conf_image.c). */
bool names_is_interface(const char *word);

/* True when the system's group database puts USER in GROUP (its primary
 * group or a supplementary one). */
bool names_user_in_group(const char *user, const char *group);

#endif
