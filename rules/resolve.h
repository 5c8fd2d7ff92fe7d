/* Forward name resolution, the one way both programs turn names into
 * addresses.  Reverse lookups are never made: they authorize nothing. */
#ifndef SOCKD_RESOLVE_H
#define SOCKD_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RESOLVE_MAX 16

/* Resolves canonical NAME for TCP PORT into at most MAX addresses, in the
 * resolver's order, IPv4-mapped forms unmapped, duplicates removed.
 * Returns the count (> 0) or -1 with a reason in ERR. */
int resolve_name(const char *name, uint16_t port, struct sockaddr_storage *out,
		 size_t max, char *err, size_t errlen);

#endif
