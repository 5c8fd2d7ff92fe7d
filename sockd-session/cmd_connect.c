/* CONNECT: resolve, decide, connect, reply, relay. */
#include <stdio.h>

#include "connect.h"
#include "session.h"

/* Rules, connect and reply in a frame of their own (noinline), gone
 * before the relay: its buffers (the reason, the refusal's text) do not
 * sit under the relay's stack for the session's life. */
static __attribute__((noinline)) int connect_or_end(struct session *s,
		struct sockaddr_storage *dest, struct sockaddr_storage *bound,
		const struct rule **rule)
{
	struct facts f;
	struct connect_result cr;
	int64_t deadline = session_reply_deadline(s);

	session_facts(s, CMD_CONNECT, &f);
	connect_destination(s->conf, &f, &s->neg.req, &s->cc, &cr);
	if (cr.fd < 0) {
		char d[ADDR_STRLEN], why[640];
		addr_format(&cr.dest, d, sizeof(d));
		negotiate_reply(s->cc.fd, s->neg.version, cr.rep, NULL, deadline);
		snprintf(why, sizeof(why), "%s%s%s (dest=%s reply=%02x)",
			 cr.reason, s->neg.req.atyp == SOCKS5_ATYP_NAME ? " name=" : "",
			 s->neg.req.atyp == SOCKS5_ATYP_NAME ? s->neg.req.name : "",
			 d, cr.rep);
		session_end(s, cr.rep == REP_NOT_ALLOWED ? "block" : "fail",
			    cr.verdict.rule, !cr.verdict.rule, why);
	}
	if (negotiate_reply(s->cc.fd, s->neg.version, REP_SUCCEEDED, &cr.bound,
			    deadline))
		session_end(s, "fail", cr.verdict.rule, 0,
			    "client went away before the reply");
	*dest = cr.dest;
	*bound = cr.bound;
	*rule = cr.verdict.rule;
	return cr.fd;
}

int cmd_connect(struct session *s)
{
	struct sockaddr_storage dest, bound;
	const struct rule *rule;
	int fd = connect_or_end(s, &dest, &bound, &rule);

	session_relay(s, rule, fd, "connect", &dest, &bound);
	return EXIT_RELAYED;
}
