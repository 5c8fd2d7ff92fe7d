/* BIND (RFC 1928 section 4, SOCKS4): listen on the external side, tell
 * the client where, accept exactly one connection, check it against the
 * bindreply rules, tell the client who came, relay. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "connect.h"
#include "log.h"
#include "netio.h"
#include "session.h"

/* The address peers will reach us by: the external address of the
 * family, or with same-same rotation the one the client reached; else the
 * address the kernel would use towards the expected peer. */
static int listen_address(const struct session *s, const struct sockaddr_storage *peer,
			  struct sockaddr_storage *out)
{
	int fam = peer->ss_family;
	int rc = connect_source_address(s->conf, &s->cc, fam, out);

	if (rc < 0)
		return -1;
	if (rc > 0)
		return 0;
	if (addr_is_any(peer)) {
		*out = s->cc.local;   /* nothing better known */
		addr_set_port(out, 0);
		return out->ss_family == fam ? 0 : -1;
	}
	int u = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(*out);
	struct sockaddr_storage p = *peer;
	if (addr_port(&p) == 0)
		addr_set_port(&p, 9);   /* any port: no datagram is sent */
	if (u < 0 || connect(u, (struct sockaddr *)&p, addr_len(&p)) < 0 ||
	    getsockname(u, (struct sockaddr *)out, &len) < 0) {
		if (u >= 0)
			close(u);
		return -1;
	}
	close(u);
	addr_set_port(out, 0);
	return 0;
}

/* Waits for one connection on LFD while watching the control connection.
 * Returns the accepted fd, or -1 with REASON. */
/* Waits for one connection on LFD while watching the control connection:
 * the client may send data ahead of the peer (it waits in the socket for
 * the relay), only its close ends the wait.  Returns the accepted fd, or
 * -1 with REASON. */
static int accept_one(const struct session *s, int lfd, int timeout,
		      struct sockaddr_storage *from, const char **reason)
{
	int64_t deadline = netio_deadline(timeout);

	for (;;) {
		if (netio_wait(lfd, POLLIN, s->cc.fd, deadline) < 0) {
			*reason = errno == ETIMEDOUT
				? "no connection before timeout.io"
				: errno == ECONNABORTED
				? "client closed while waiting for the connection"
				: "poll error";
			return -1;
		}
		socklen_t len = sizeof(*from);
		int fd = accept4(lfd, (struct sockaddr *)from, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			addr_unmap(from);
			return fd;
		}
	}
}

int cmd_bind(struct session *s)
{
	const struct socks_request *req = &s->neg.req;
	struct sockaddr_storage expected, bound, from;
	struct facts f;
	struct verdict v;
	int64_t deadline = session_reply_deadline(s);
	const char *why = NULL;
	char text[300], a[ADDR_STRLEN];

	if (req->atyp == SOCKS5_ATYP_NAME) {
		negotiate_reply(s->cc.fd, s->neg.version, REP_ATYP_UNSUPPORTED, NULL,
				deadline);
		session_end(s, "fail", NULL, 1, "BIND names the expected peer by "
			    "address only");
	}
	expected = req->addr;
	session_facts(s, CMD_BIND, &f);
	f.dest = &expected;
	f.dest_port = req->port;
	f.dest_port_known = true;
	if (rules_decide_socks(s->conf, &f, &v) != MATCH_YES || !v.pass) {
		negotiate_reply(s->cc.fd, s->neg.version, REP_NOT_ALLOWED, NULL,
				deadline);
		session_end(s, "block", v.rule, 1, v.rule ? "blocked by socks-rule"
			    : "no socks-rule allows bind");
	}
	const struct rule *rule = v.rule;
	int lfd = -1;
	if (listen_address(s, &expected, &bound) == 0)
		lfd = socket(bound.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t blen = sizeof(bound);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&bound, addr_len(&bound)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&bound, &blen) < 0) {
		snprintf(text, sizeof(text), "cannot listen: %s", strerror(errno));
		negotiate_reply(s->cc.fd, s->neg.version, REP_GENERAL_FAILURE, NULL,
				deadline);
		session_end(s, "fail", rule, 1, text);
	}
	addr_unmap(&bound);
	if (negotiate_reply(s->cc.fd, s->neg.version, REP_SUCCEEDED, &bound,
			    deadline))
		session_end(s, "fail", rule, 0, "client went away");
	addr_format(&bound, a, sizeof(a));
	log_msg(LOGL_DEBUG, "client=%s bind listening on %s", s->client, a);

	int fd = accept_one(s, lfd, CONF_TIMEOUT(s->conf, rule, io_tcp), &from,
			    &why);
	close(lfd);    /* exactly one connection */
	if (fd < 0) {
		negotiate_reply(s->cc.fd, s->neg.version, REP_TTL_EXPIRED, NULL,
				netio_deadline(2));
		session_end(s, "fail", rule, 1, why);
	}
	/* the peer must be the one the client named, when it named one */
	struct sockaddr_storage peer_ip = from, want_ip = expected;
	addr_set_port(&peer_ip, 0);
	addr_set_port(&want_ip, 0);
	bool expected_ok = addr_is_any(&expected) || addr_equal(&peer_ip, &want_ip);
	/* bindreply: from = the peer that connected, to = our client */
	struct facts rf;
	session_facts(s, CMD_BINDREPLY, &rf);
	rf.client = &from;
	rf.dest = &s->cc.peer;
	rf.dest_port = addr_port(&s->cc.peer);
	rf.dest_port_known = true;
	struct verdict rv;
	addr_format(&from, a, sizeof(a));
	if (!expected_ok || rules_decide_socks(s->conf, &rf, &rv) != MATCH_YES ||
	    !rv.pass) {
		close(fd);
		negotiate_reply(s->cc.fd, s->neg.version, REP_NOT_ALLOWED, NULL,
				netio_deadline(2));
		snprintf(text, sizeof(text), "bindreply from %s %s", a,
			 !expected_ok ? "is not the peer the client named"
				      : "blocked by the socks rules");
		session_end(s, "block", expected_ok ? rv.rule : rule, 1, text);
	}
	if (negotiate_reply(s->cc.fd, s->neg.version, REP_SUCCEEDED, &from,
			    netio_deadline(CONF_TIMEOUT(s->conf, s->client_rule,
							negotiate))))
		session_end(s, "fail", rule, 0, "client went away");
	session_relay(s, rule, fd, "bind", &from, &bound);
	return EXIT_RELAYED;
}
