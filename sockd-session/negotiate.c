/* SOCKS5 negotiation (RFC 1928 sections 3-4), exact reads only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_pam.h"
#include "auth_passwd.h"
#include "log.h"
#include "negotiate.h"
#include "netio.h"

/* The protected session, once GSSAPI agreed on integrity or more: the
 * request and every reply travel wrapped. */
static struct gss_sess *protected;

int negotiate_method_available(enum method m)
{
	return m < METHOD_COUNT;
}

int negotiate_reply(int fd, int version, uint8_t rep,
		    const struct sockaddr_storage *bnd, int64_t deadline)
{
	uint8_t out[SOCKS_REPLY_MAX];
	size_t n = version == 4
		? socks4_reply_encode(out, rep == REP_SUCCEEDED, bnd)
		: socks5_reply_encode(out, rep, bnd);

	if (protected)
		return gss_send(protected, fd, deadline, out, n);
	return netio_write_all(fd, out, n, deadline);
}

static int read_failed(struct negotiation *n, const char *what, size_t have)
{
	if (errno == ETIMEDOUT)
		snprintf(n->reason, sizeof(n->reason), "timeout.negotiate expired "
			 "while reading the %s (%zu bytes read)", what, have);
	else if (errno == ECONNRESET)
		snprintf(n->reason, sizeof(n->reason), "client closed during the "
			 "%s (%zu bytes read)", what, have);
	else
		snprintf(n->reason, sizeof(n->reason), "reading the %s: %s", what,
			 strerror(errno));
	return -1;
}

/* Our list, in our order, against what the client offered. */
static int choose_method(const struct method_list *ours,
			 const struct socks5_greeting *g, enum method *out)
{
	for (size_t i = 0; i < ours->n; i++) {
		if (!negotiate_method_available(ours->m[i]))
			continue;
		int wire = method_wire(ours->m[i]);
		for (unsigned j = 0; j < g->nmethods; j++) {
			if (g->methods[j] == wire) {
				*out = ours->m[i];
				return 0;
			}
		}
	}
	return -1;
}

/* Under GSSAPI protection the request is the plaintext of one mtyp 3
 * token; what follows the request in it is early data for the target. */
static int read_protected_request(int fd, int64_t deadline,
				  struct negotiation *n)
{
	uint8_t *plain = malloc(4 + GSS_TOKEN_MAX);
	long got;
	int need;

	if (!plain) {
		snprintf(n->reason, sizeof(n->reason), "out of memory");
		return -1;
	}
	got = gss_recv(n->gss, fd, deadline, plain, 4 + GSS_TOKEN_MAX, n->reason,
		       sizeof(n->reason));
	if (got < 0) {
		free(plain);
		return -1;
	}
	need = socks5_request_decode(plain, (size_t)got, &n->req);
	if (need != 0) {
		snprintf(n->reason, sizeof(n->reason), "bad request: %s",
			 need > 0 ? "truncated in its token"
				  : socks_proto_strerror(need));
		free(plain);
		if (need != PROTO_BAD_VERSION) {
			negotiate_reply(fd, 5, need == PROTO_BAD_ATYP
					? REP_ATYP_UNSUPPORTED : REP_GENERAL_FAILURE,
					NULL, deadline);
			n->replied = 1;
		}
		return -1;
	}
	size_t used = socks5_request_length(plain);
	n->nearly = (size_t)got - used;
	memmove(plain, plain + used, n->nearly);
	n->early = plain;
	return 0;
}

static int read_request(int fd, int64_t deadline, struct negotiation *n)
{
	if (protected)
		return read_protected_request(fd, deadline, n);

	uint8_t buf[SOCKS5_REQUEST_MAX];
	size_t have = 0;
	int need;

	while ((need = socks5_request_decode(buf, have, &n->req)) > 0) {
		if (netio_read_exact(fd, buf, &have, (size_t)need, deadline))
			return read_failed(n, "request", have);
	}
	if (need == 0)
		return 0;
	snprintf(n->reason, sizeof(n->reason), "bad request: %s",
		 socks_proto_strerror(need));
	uint8_t rep = need == PROTO_BAD_ATYP ? REP_ATYP_UNSUPPORTED
		    : need == PROTO_BAD_NAME ? REP_HOST_UNREACHABLE
		    : REP_GENERAL_FAILURE;
	if (need != PROTO_BAD_VERSION) {
		negotiate_reply(fd, 5, rep, NULL, deadline);
		n->replied = 1;
	}
	return -1;
}

/* SOCKS4/4a: no negotiation, so no authentication: method none, which
 * the client rule must allow (a rule that demands authentication must
 * not be walked around by speaking SOCKS4). */
static int negotiate_socks4(int fd, const struct conf *c,
			    const struct rule *client_rule, int64_t deadline,
			    uint8_t *buf, size_t have, struct negotiation *n)
{
	int need;

	n->version = 4;
	n->method = METHOD_NONE;
	while ((need = socks4_request_decode(buf, have, &n->req)) > 0) {
		if (netio_read_exact(fd, buf, &have, (size_t)need, deadline))
			return read_failed(n, "SOCKS4 request", have);
	}
	if (need < 0) {
		snprintf(n->reason, sizeof(n->reason), "bad SOCKS4 request: %s",
			 socks_proto_strerror(need));
		negotiate_reply(fd, 4, REP_GENERAL_FAILURE, NULL, deadline);
		n->replied = 1;
		return -1;
	}
	if (!rules_client_allows_method(c, client_rule, METHOD_NONE, 4)) {
		snprintf(n->reason, sizeof(n->reason), "SOCKS4 has no "
			 "authentication, and method none is not offered to "
			 "this client");
		negotiate_reply(fd, 4, REP_NOT_ALLOWED, NULL, deadline);
		n->replied = 1;
		return -1;
	}
	return 0;
}

/* RFC 1929: read the name and password, verify them now (PAM or the
 * password database), answer 01 00 only after a yes; 01 01 and close
 * otherwise.  The password is wiped on every path. */
static int authenticate_password(int fd, const struct auth_ctx *ac,
				 int64_t deadline, struct negotiation *n)
{
	uint8_t buf[RFC1929_MAX];
	struct rfc1929_creds cr;
	size_t have = 0;
	int need, rc = -1;
	uint8_t status[2] = { 1, 1 };

	while ((need = rfc1929_decode(buf, have, &cr)) > 0) {
		if (netio_read_exact(fd, buf, &have, (size_t)need, deadline)) {
			explicit_bzero(buf, sizeof(buf));
			return read_failed(n, "username/password", have);
		}
	}
	explicit_bzero(buf, sizeof(buf));
	if (need < 0) {
		snprintf(n->reason, sizeof(n->reason), "bad username/password "
			 "message: %s", socks_proto_strerror(need));
		goto reply;
	}
	char esc[4 * sizeof(cr.user)];
	log_escape(cr.user, strlen(cr.user), esc, sizeof(esc));
	if (n->method == METHOD_USERNAME) {
		char why[160];
		if (auth_passwd(cr.user, cr.pass, why, sizeof(why)) == 0) {
			snprintf(n->user, sizeof(n->user), "%s", cr.user);
			rc = 0;
		} else {
			snprintf(n->reason, sizeof(n->reason), "user '%.60s': %s",
				 esc, why);
		}
	} else {
		struct pam_request rq = { ac->pam_service, cr.user, cr.pass,
					  ac->rhost, ac->pam_session };
		struct pam_result res;
		if (auth_pam(&rq, &res) == 0) {
			snprintf(n->user, sizeof(n->user), "%s", res.user);
			rc = 0;
		} else {
			snprintf(n->reason, sizeof(n->reason), "pam.username user "
				 "'%.60s' service %s: %s", esc, ac->pam_service,
				 res.reason);
		}
	}
reply:
	explicit_bzero(&cr, sizeof(cr));
	status[1] = rc == 0 ? 0 : 1;
	if (netio_write_all(fd, status, 2, deadline) && rc == 0) {
		snprintf(n->reason, sizeof(n->reason), "client went away after "
			 "authenticating");
		rc = -1;
	}
	n->replied = 1;
	return rc;
}

/* RFC 1961: context, identity, protection level.  The user for rules is
 * the local name the principal maps to ("" when none: no user: rule
 * matches it); the principal goes to the logs. */
static int authenticate_gssapi(int fd, const struct auth_ctx *ac,
			       int64_t deadline, struct negotiation *n)
{
	struct gss_identity id;
	char why[300];

	memset(&id, 0, sizeof(id));
	n->gss = gss_authenticate(fd, &ac->gss, deadline, &id, why, sizeof(why));
	/* the principal, once known, names the client even in a refusal */
	snprintf(n->principal, sizeof(n->principal), "%s", id.principal);
	if (!n->gss) {
		snprintf(n->reason, sizeof(n->reason), "gssapi (service %s, "
			 "keytab %s): %s", ac->gss.service, ac->gss.keytab, why);
		n->replied = 1;
		return -1;
	}
	snprintf(n->principal, sizeof(n->principal), "%s", id.principal);
	snprintf(n->user, sizeof(n->user), "%s", id.localname);
	if (gss_level(n->gss) >= GSS_LEVEL_INTEGRITY)
		protected = n->gss;
	return 0;
}

/* pam.address: PAM decides on the client address alone. */
static int authenticate_address(const struct auth_ctx *ac,
				struct negotiation *n)
{
	struct pam_request rq = { ac->pam_service, PAM_ADDRESS_USER, NULL,
				  ac->rhost, ac->pam_session };
	struct pam_result res;

	if (auth_pam(&rq, &res) == 0)
		return 0;
	snprintf(n->reason, sizeof(n->reason), "pam.address service %s: %s",
		 ac->pam_service, res.reason);
	return -1;
}

int negotiate(int fd, const struct conf *c, const struct rule *client_rule,
	      const struct auth_ctx *ac, int64_t deadline,
	      struct negotiation *n)
{
	uint8_t buf[SOCKS4_REQUEST_MAX > SOCKS5_GREETING_MAX
		    ? SOCKS4_REQUEST_MAX : SOCKS5_GREETING_MAX];
	struct socks5_greeting g;
	size_t have = 0;
	int need;

	memset(n, 0, sizeof(*n));
	if (netio_read_exact(fd, buf, &have, 1, deadline))
		return read_failed(n, "greeting", have);
	if (buf[0] == 4)
		return negotiate_socks4(fd, c, client_rule, deadline, buf, have, n);
	if (buf[0] != 5) {
		snprintf(n->reason, sizeof(n->reason), "not a SOCKS request "
			 "(first byte 0x%02x)", buf[0]);
		return -1;
	}
	n->version = 5;
	while ((need = socks5_greeting_decode(buf, have, &g)) > 0) {
		if (netio_read_exact(fd, buf, &have, (size_t)need, deadline))
			return read_failed(n, "greeting", have);
	}
	if (need < 0) {
		snprintf(n->reason, sizeof(n->reason), "bad greeting: %s",
			 socks_proto_strerror(need));
		if (need == PROTO_NO_METHODS) {   /* RFC 1928: X'FF' */
			static const uint8_t none[2] = { 5, 0xff };
			netio_write_all(fd, none, 2, deadline);
			n->replied = 1;
		}
		return -1;
	}
	uint8_t answer[2] = { 5, 0xff };
	if (choose_method(rules_socks_methods(c, client_rule), &g, &n->method)) {
		netio_write_all(fd, answer, 2, deadline);
		n->replied = 1;
		snprintf(n->reason, sizeof(n->reason),
			 "client offered no acceptable authentication method");
		return -1;
	}
	if (n->method == METHOD_PAM_ADDRESS && authenticate_address(ac, n)) {
		netio_write_all(fd, answer, 2, deadline);   /* 05 FF */
		n->replied = 1;
		return -1;
	}
	answer[1] = (uint8_t)method_wire(n->method);
	if (netio_write_all(fd, answer, 2, deadline)) {
		snprintf(n->reason, sizeof(n->reason), "writing the method: %s",
			 strerror(errno));
		return -1;
	}
	if (method_wire(n->method) == 0x02 &&
	    authenticate_password(fd, ac, deadline, n))
		return -1;
	if (n->method == METHOD_GSSAPI && authenticate_gssapi(fd, ac, deadline, n))
		return -1;
	n->replied = 0;
	return read_request(fd, deadline, n);
}
