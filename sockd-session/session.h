/* The state of the one session this process serves, shared by the
 * steps of main() and the commands (CONNECT, BIND, UDP ASSOCIATE). */
#ifndef SOCKD_SESSION_H
#define SOCKD_SESSION_H

#include <stdint.h>

#include "activation.h"
#include "addr.h"
#include "conf.h"
#include "negotiate.h"
#include "privdrop.h"
#include "relay.h"
#include "rules_match.h"
#include "sandbox.h"

/* Exit codes (documented in sockd-session(8)). */
enum {
	EXIT_RELAYED = 0,
	EXIT_REFUSED = 1,
	EXIT_CONF = 2,
	EXIT_ACTIVATION = 3,
	EXIT_PRIVDROP = 4,
	EXIT_USAGE = 64,
};

struct session {
	const char *conf_file;
	struct conf *conf;
	struct client_conn cc;
	char client[ADDR_STRLEN], local[ADDR_STRLEN];
	char client_ip[ADDR_STRLEN];       /* PAM_RHOST */
	char user[4 * 256];                /* authenticated name, escaped;
					      "-" when none */
	const struct rule *client_rule;
	struct negotiation neg;
	struct auth_ctx auth;
	enum method clientmethod;          /* none or pam.address */
	struct privdrop_target unpriv;
	struct relay_pipes pipes;
	int64_t started;
};

/* "FILE:LINE socks-rule=#N", or "default". */
void session_rule_where(const struct session *s, const struct rule *r,
			char *buf, size_t len);

/* Ends a session that will not relay, with exit status 1.  EVENT is
 * "block" when a rule (or the default) said no, "fail" when a rule passed
 * but the request could not be carried out.  Explicit rules log per their
 * log: keywords; the default block and ALWAYS events are always logged. */
void session_end(const struct session *s, const char *event,
		 const struct rule *r, int always, const char *reason)
	__attribute__((noreturn));

/* The facts of this session for the socks rules of COMMAND: client,
 * method, user.  The destination is the command's to fill in. */
void session_facts(const struct session *s, unsigned command,
		   struct facts *f);

/* Deadline for replies: the negotiation's. */
int64_t session_reply_deadline(const struct session *s);

/* "pass ..." when a relay starts (per the rule's log: connect). */
void session_log_start(const struct session *s, const struct rule *r,
		       const char *command, const struct sockaddr_storage *dest,
		       const struct sockaddr_storage *bound);

/* "end ..." when it ends (per log: disconnect). */
void session_log_end(const struct session *s, const struct rule *r,
		     const struct sockaddr_storage *dest, uint64_t from_client,
		     uint64_t to_client, const char *reason);

/* Enters the relay sandbox (seccomp, limits); ends the session if it
 * cannot. */
void session_sandbox(const struct session *s, enum sandbox_profile p);

/* Relays CLIENT <-> TARGET: splice, or wrap/unwrap under GSSAPI
 * protection, with rule R's timeouts; logs start and end. */
void session_relay(struct session *s, const struct rule *r, int target,
		   const char *command, const struct sockaddr_storage *dest,
		   const struct sockaddr_storage *bound);

/* The commands. */
int cmd_connect(struct session *s);
int cmd_bind(struct session *s);
int cmd_udp_associate(struct session *s);

#endif
