/* getaddrinfo wrapper: numeric and named hosts, bounded results. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "resolve.h"

int resolve_name(const char *name, uint16_t port, struct sockaddr_storage *out,
		 size_t max, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_protocol = IPPROTO_TCP };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(name, NULL, &hints, &res);

	if (rc != 0) {
		snprintf(err, errlen, "could not resolve \"%s\": %s", name,
			 gai_strerror(rc));
		return -1;
	}
	size_t n = 0;
	for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_addrlen > sizeof(out[n]))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
		addr_unmap(&out[n]);
		addr_set_port(&out[n], port);
		int dup = 0;
		for (size_t i = 0; i < n; i++)
			if (addr_equal(&out[i], &out[n]))
				dup = 1;
		if (!dup)
			n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		snprintf(err, errlen, "\"%s\" has no IPv4 or IPv6 address", name);
		return -1;
	}
	return (int)n;
}
