/* The permanent privilege drop (after authentication, before any name a
 * client chose is resolved). */
#ifndef SOCKD_PRIVDROP_H
#define SOCKD_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct privdrop_target {
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* Looks USER up (NULL: "nobody") while NSS may still be read.
 * Returns 0 or -1 with a reason. */
int privdrop_lookup(const char *user, struct privdrop_target *t, char *err,
		    size_t errlen);

/* setgroups, setresgid, setresuid to T, ambient capabilities cleared,
 * no_new_privs, not dumpable; then verifies: all ids equal T, no
 * capability left, and setuid(0)/setgid(0) fail.  Any surprise is a
 * failure (-1): the caller must not go on.  When the process is not root
 * it cannot change ids: it only verifies it is not root and seals. */
int privdrop_permanently(const struct privdrop_target *t, char *err,
			 size_t errlen);

#endif
