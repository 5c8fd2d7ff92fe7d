/* SOCKS negotiation: greeting, method choice, request.  Runs as root, under
 * one deadline for the whole exchange. */
#ifndef SOCKD_NEGOTIATE_H
#define SOCKD_NEGOTIATE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "gss.h"
#include "rules_match.h"
#include "socks_proto.h"

/* What authentication needs to know about the connection. */
struct auth_ctx {
	const char *rhost;        /* client address as text (PAM_RHOST) */
	const char *pam_service;  /* from the client rule */
	bool pam_session;         /* open a PAM session */
	struct gss_params gss;    /* from the client rule */
};

struct negotiation {
	int version;          /* 4 or 5 */
	enum method method;
	char user[256];       /* the authenticated name (PAM_USER after the
				 stack, or the RFC 1929 name), "" if none */
	struct socks_request req;
	char principal[256];  /* GSSAPI: the client principal, for logs */
	struct gss_sess *gss; /* GSSAPI protection above clear, or NULL */
	uint8_t *early;       /* plaintext that came in the request's token */
	size_t nearly;
	char reason[512];     /* why it failed */
	int replied;          /* a failure reply was already sent */
};

/* Methods this build of sockd-session can carry out. */
int negotiate_method_available(enum method m);

/* Reads a SOCKS4/4a request, or a SOCKS5 greeting, method choice (from
 * the client rule's or the global socksmethod list, in our order, never
 * the client's) and request.  Returns 0, or -1 with n->reason (and the
 * reply sent where the protocol defines one). */
int negotiate(int fd, const struct conf *c, const struct rule *client_rule,
	      const struct auth_ctx *ac, int64_t deadline, struct negotiation *n);

/* Sends the reply of protocol VERSION: REP for SOCKS5; for SOCKS4 any
 * REP but REP_SUCCEEDED is 5B.  Best effort: the session ends after a
 * failure. */
int negotiate_reply(int fd, int version, uint8_t rep,
		    const struct sockaddr_storage *bnd, int64_t deadline);

#endif
