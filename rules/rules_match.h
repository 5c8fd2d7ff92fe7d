/* The matcher: what sockd-session does with a connection, and what
 * sockd-check reports.  Both fill a struct facts and call the same
 * functions; a rule that needs a fact the caller did not give is reported
 * (MATCH_MISSING, naming the fact), never silently skipped. */
#ifndef SOCKD_RULES_MATCH_H
#define SOCKD_RULES_MATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

struct facts {
	/* the client connection */
	const struct sockaddr_storage *client;   /* required */
	const struct sockaddr_storage *local;    /* NULL = unknown */
	bool client_port_known, local_port_known;
	/* authentication */
	enum method clientmethod;                /* none or pam.address */
	enum method method;                      /* negotiated socks method */
	const char *user;        /* authenticated name; NULL = none.  Only
				    trusted when method_yields_user(method) */
	const char *const *groups;  /* when non-NULL, the user's groups as
				       given (sockd-check's group=); else
				       the system's group database decides */
	size_t ngroups;
	const char *pam_service; /* the service the user was authenticated
				    with (pam.* methods) */
	int version;             /* 4 or 5 */
	/* the request */
	unsigned command;        /* one CMD_* bit */
	const char *dest_name;   /* canonical name as requested, or NULL */
	const struct sockaddr_storage *dest;     /* concrete address, or NULL */
	uint16_t dest_port;
	bool dest_port_known;
};

enum match_result { MATCH_NO, MATCH_YES, MATCH_MISSING };

struct verdict {
	bool pass;
	const struct rule *rule;   /* NULL: no rule matched (default block) */
	bool unspecified;          /* refused before any rule: 0.0.0.0/8 or ::
				      as a CONNECT or UDP destination means
				      this host */
	const char *missing;       /* with rc MATCH_MISSING: the fact needed */
	const struct rule *missing_rule;
};

/* Decides the client rules (from = client, to = local address).
 * Returns MATCH_YES with *v filled, or MATCH_MISSING. */
enum match_result rules_decide_client(const struct conf *c,
				      const struct facts *f, struct verdict *v);

/* Decides the socks rules for one concrete destination.  An unspecified
 * destination of CONNECT or UDP (0.0.0.0/8, ::) reaches this host past
 * every rule about its addresses: it is refused first (v->unspecified). */
enum match_result rules_decide_socks(const struct conf *c,
				     const struct facts *f, struct verdict *v);

/* The methods a client rule R lets its clients use (R's own list, or the
 * global one). */
const struct method_list *rules_socks_methods(const struct conf *c,
					      const struct rule *r);

/* The first socks rule that passes F or may pass it once the facts it is
 * missing are known (a UDP association before its first datagram); NULL
 * when none can. */
const struct rule *rules_first_possible_pass(const struct conf *c,
					     const struct facts *f);

/* May a client that matched client rule R use socks method M with SOCKS
 * VERSION?  M must be in R's (or the global) socksmethod list; a SOCKS4
 * client has no negotiation and always means "none", so a client rule
 * that leaves "none" out refuses SOCKS4 (the CVE-2024-54662 lesson). */
bool rules_client_allows_method(const struct conf *c, const struct rule *r,
				enum method m, int version);

/* Does SS lie in one of the networks of local interface IFNAME?  (How an
 * interface name in from:/to: matches.) */
bool rules_in_interface(const char *ifname, const struct sockaddr_storage *ss);

#endif
