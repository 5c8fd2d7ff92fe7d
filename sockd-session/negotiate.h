/* SOCKS negotiation: greeting, method choice, request.  Runs as root, under
 * one deadline for the whole exchange. */
#ifndef SOCKD_NEGOTIATE_H
#define SOCKD_NEGOTIATE_H

#include <stdint.h>

#include "conf.h"
#include "socks_proto.h"

struct negotiation {
	enum method method;
	struct socks_request req;
	char reason[160];     /* why it failed */
	int replied;          /* a failure reply was already sent */
};

/* Methods this build of sockd-session can carry out. */
int negotiate_method_available(enum method m);

/* Reads the greeting, picks the method from METHODS (our order, never the
 * client's), answers, and reads the request.  Returns 0, or -1 with
 * n->reason (and the RFC reply sent where one is defined). */
int negotiate(int fd, const struct method_list *methods, int64_t deadline,
	      struct negotiation *n);

/* Sends a SOCKS5 reply (best effort; the session ends after a failure). */
int negotiate_reply(int fd, uint8_t rep, const struct sockaddr_storage *bnd,
		    int64_t deadline);

#endif
